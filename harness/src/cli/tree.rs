//! The real client's front end before the operation, per release: the
//! mode/operation tree (`src/usr/argp/main.c`), its walk (`Unexpected
//! token`, `Ambiguous token`, `More arguments expected.`, prefixes) and
//! the texts of `--help`, `--usage` and `-V`.
//!
//! What changed between releases (read from Jool's tags; the 4.1.9,
//! 4.1.13 and 4.1.15 texts are checked against `fixtures/captures/cli`):
//! `joold advertise` from 4.0.8; `denylist4` beside `blacklist4` from
//! 4.1.4; `session follow|proxy|advertise` and `joold` hidden from 4.1.13
//! (and 4.2.0-rc3, `main`); the bug address `ydahhrk@gmail.com` from
//! 4.1.11 (not in 4.2.0-rc1/rc2). 4.0.0 and 4.0.1 had another client;
//! jool-stats gives them 4.0.2's front end.

use std::cmp::Ordering;

use jool_sim::{
    kernel::Xlator,
    versions::{cmp_releases, Profile},
};

/// One node of the tree.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Node {
    /// Its token.
    pub label: &'static str,
    /// Only an exact token reaches it, and listings leave it out.
    pub hidden: bool,
    /// Its operations (none for a leaf).
    pub children: Vec<Self>,
}

impl Node {
    fn leaf(label: &'static str) -> Self {
        Self { label, hidden: false, children: Vec::new() }
    }

    fn mode(label: &'static str, ops: &[&'static str]) -> Self {
        Self {
            label,
            hidden: false,
            children: ops.iter().map(|o| Self::leaf(o)).collect(),
        }
    }

    fn hide(mut self) -> Self {
        self.hidden = true;
        self
    }
}

/// A release's front end.
#[derive(Clone, Copy, Debug)]
pub struct Frontend {
    /// The release.
    pub profile: &'static Profile,
}

fn since(p: &Profile, release: &str) -> bool {
    cmp_releases(&p.release, release) != Ordering::Less
}

impl Frontend {
    /// The front end of `profile`'s client.
    pub fn of(profile: &'static Profile) -> Self {
        Self { profile }
    }

    fn early_rc(&self) -> bool {
        matches!(self.profile.release.as_str(), "4.2.0-rc1" | "4.2.0-rc2")
    }

    /// `argp_program_bug_address`.
    pub fn bug_address(&self) -> &'static str {
        if since(self.profile, "4.1.11") && !self.early_rc() {
            "ydahhrk@gmail.com"
        } else {
            "jool@nic.mx"
        }
    }

    /// `JOOL_VERSION_STR`, what `-V` prints.
    pub fn version(&self) -> String {
        self.profile.version_quad()
    }

    /// The modes `xlator`'s binary has, in the tree's order.
    pub fn tree(&self, xlator: Xlator) -> Vec<Node> {
        let p = self.profile;
        let (siit, nat64) = (xlator == Xlator::Siit, xlator == Xlator::Nat64);
        let new_session = since(p, "4.1.13") && !self.early_rc();
        let table = ["display", "add", "remove", "flush"];
        let mut t = vec![
            Node::mode(
                "instance",
                &["display", "add", "remove", "flush", "status"],
            ),
            Node::mode("stats", &["display"]),
        ];
        if siit {
            t.push(Node::mode("address", &["query"]));
        }
        t.push(Node::mode("global", &["display", "update"]));
        if siit {
            t.push(Node::mode("eamt", &table));
            t.push(Node::mode("blacklist4", &table));
            if since(p, "4.1.4") {
                t.push(Node::mode("denylist4", &table));
            }
        }
        if nat64 {
            t.push(Node::mode("pool4", &table));
            t.push(Node::mode("bib", &["display", "add", "remove"]));
            let session: &[&str] = match new_session {
                true => &["display", "follow", "proxy", "advertise"],
                false => &["display"],
            };
            t.push(Node::mode("session", session));
        }
        t.push(Node::mode("file", &["handle"]));
        if nat64 && since(p, "4.0.8") {
            let joold = Node::mode("joold", &["advertise"]);
            t.push(match new_session {
                true => Node {
                    children: vec![Node::leaf("advertise").hide()],
                    ..joold.hide()
                },
                false => joold,
            });
        }
        t.push(Node::leaf("autocomplete").hide());
        t
    }

    /// `show_usage()`.
    pub fn usage(&self, program: &[u8]) -> Vec<u8> {
        let mut s = program.to_vec();
        s.extend_from_slice(b" (\n        [<ARGP1>] <MODE> <OPERATION> [<ARGP2>]\n        | [-h|--help]\n        | (-V|--version)\n        | --usage\n)\n");
        s
    }

    /// `show_help()`.
    pub fn help(&self, program: &[u8], xlator: Xlator) -> Vec<u8> {
        let mut s = b"Usage\n=====\n".to_vec();
        s.extend(self.usage(program));
        s.extend_from_slice(b"\n<ARGP1>\n=======\nEither (--instance|-i) <INSTANCE> or (--file|-f) <FILE>.\n- <INSTANCE> is the instance name\n- <FILE> is a path to a JSON file that contains the instance name\n\n<MODE>s -> <OPERATION>s\n=======================\n");
        for m in self.tree(xlator).iter().filter(|m| !m.hidden) {
            s.extend_from_slice(format!("- {} -> ", m.label).as_bytes());
            s.extend(list(m.children.iter()));
            s.push(b'\n');
        }
        s.extend_from_slice(b"\n<ARGP2>\n======\nDepends on <MODE> and <OPERATION>. Normally, see respective --help for details.\n(Example: ");
        s.extend_from_slice(program);
        s.extend_from_slice(b" instance add --help)\n\n");
        s.extend_from_slice(
            format!("Report bugs to {}.\n", self.bug_address()).as_bytes(),
        );
        s
    }
}

/// `label label ... ` (each followed by a space), hidden ones left out.
fn list<'a>(nodes: impl Iterator<Item = &'a Node>) -> Vec<u8> {
    let mut s = Vec::new();
    for n in nodes.filter(|n| !n.hidden) {
        s.extend_from_slice(n.label.as_bytes());
        s.push(b' ');
    }
    s
}

/// Where the tree walk ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Walk {
    /// A handler: the path of labels (mode, operation) and the arguments
    /// from the operation's own token on (its `argv`).
    Handler(Vec<&'static str>, Vec<Vec<u8>>),
    /// The walk failed: stderr text (exit status `-EINVAL`).
    Failed(Vec<u8>),
}

/// `find_matches()`: the exact label (hidden ones only so), else every
/// visible label `token` starts.
fn matches<'n>(nodes: &'n [Node], token: &[u8]) -> Vec<&'n Node> {
    let mut found = Vec::new();
    for n in nodes {
        if n.hidden {
            if n.label.as_bytes() == token {
                return vec![n];
            }
            continue;
        }
        if n.label.as_bytes().starts_with(token) {
            if n.label.as_bytes() == token {
                return vec![n];
            }
            found.push(n);
        }
    }
    found
}

fn failed(
    head: &[u8],
    token: Option<&[u8]>,
    what: &[u8],
    nodes: Vec<u8>,
) -> Walk {
    let mut s = head.to_vec();
    if let Some(t) = token {
        s.extend_from_slice(b": '");
        s.extend_from_slice(t);
        s.extend_from_slice(b"'");
    }
    s.push(b'\n');
    s.extend_from_slice(what);
    s.extend(nodes);
    s.push(b'\n');
    Walk::Failed(s)
}

fn more_expected(nodes: &[Node]) -> Walk {
    failed(
        b"More arguments expected.",
        None,
        b"Possible follow-ups: ",
        list(nodes.iter()),
    )
}

/// `__handle()`: walks `args` (after the global options) down `tree`.
pub fn walk(tree: &[Node], args: &[Vec<u8>]) -> Walk {
    let mut nodes = tree;
    let mut path = Vec::new();
    for (i, token) in args.iter().enumerate() {
        let found = matches(nodes, token);
        let node = match found.as_slice() {
            [] => {
                return failed(
                    b"Unexpected token",
                    Some(token),
                    b"Available options: ",
                    list(nodes.iter()),
                )
            }
            [one] => *one,
            many => {
                return failed(
                    b"Ambiguous token",
                    Some(token),
                    b"Available options: ",
                    list(many.iter().copied()),
                )
            }
        };
        path.push(node.label);
        if node.children.is_empty() {
            return Walk::Handler(path, args[i..].to_vec());
        }
        nodes = &node.children;
    }
    more_expected(nodes)
}

#[cfg(test)]
mod test {
    use super::*;

    fn fe(r: &str) -> Frontend {
        Frontend::of(Profile::get(r).unwrap())
    }

    fn args(v: &[&str]) -> Vec<Vec<u8>> {
        v.iter().map(|a| a.as_bytes().to_vec()).collect()
    }

    fn failed_text(w: Walk) -> String {
        match w {
            Walk::Failed(t) => String::from_utf8(t).unwrap(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn test_walk_prefixes_and_errors() {
        let t = fe("4.1.9").tree(Xlator::Siit);
        assert_eq!(
            walk(&t, &args(&["stat", "disp", "-a"])),
            Walk::Handler(vec!["stats", "display"], args(&["disp", "-a"]))
        );
        assert_eq!(
            failed_text(walk(&t, &args(&["stats"]))),
            "More arguments expected.\nPossible follow-ups: display \n"
        );
        assert_eq!(
            failed_text(walk(&t, &args(&[""]))),
            "Ambiguous token: ''\nAvailable options: instance stats address global eamt blacklist4 denylist4 file \n"
        );
        let n = fe("4.1.9").tree(Xlator::Nat64);
        assert!(
            failed_text(walk(&n, &args(&["s"]))).ends_with("stats session \n")
        );
        assert_eq!(
            walk(&n, &args(&["autocomplete"])),
            Walk::Handler(vec!["autocomplete"], args(&["autocomplete"]))
        );
        assert!(matches!(walk(&n, &args(&["autocomp"])), Walk::Failed(_)));
    }

    #[test]
    fn test_release_differences() {
        let j = |r: &str, a: &[&str]| {
            failed_text(walk(&fe(r).tree(Xlator::Nat64), &args(a)))
        };
        assert_eq!(
            j("4.1.9", &["joold"]),
            "More arguments expected.\nPossible follow-ups: advertise \n"
        );
        assert_eq!(
            j("4.1.13", &["joold"]),
            "More arguments expected.\nPossible follow-ups: \n"
        );
        assert_eq!(j("4.1.15", &["session"]), "More arguments expected.\nPossible follow-ups: display follow proxy advertise \n");
        assert_eq!(
            j("4.2.0-rc2", &["session"]),
            "More arguments expected.\nPossible follow-ups: display \n"
        );
        assert!(!j("4.0.7", &["bogus"]).contains("joold"));
        assert!(!failed_text(walk(
            &fe("4.1.3").tree(Xlator::Siit),
            &args(&["x"])
        ))
        .contains("denylist4"));
        assert_eq!(fe("4.1.10").bug_address(), "jool@nic.mx");
        assert_eq!(fe("4.1.11").bug_address(), "ydahhrk@gmail.com");
        assert_eq!(fe("4.2.0-rc1").bug_address(), "jool@nic.mx");
        assert_eq!(fe("main").bug_address(), "ydahhrk@gmail.com");
    }
}
