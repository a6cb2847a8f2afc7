//! Symbolized stacks: the frames of an oops, a WARNING or a KASAN report
//! (`func+0x5c/0x120 [jool_common]`) resolved to source lines with
//! `addr2line` on the modules' debug info (and on the KASAN kernel's
//! `vmlinux` for the kernel's own frames).

use std::{
    collections::HashMap,
    path::Path,
    process::{Command, Stdio},
};

/// One frame of a kernel stack: function, offset, module (None: the
/// kernel itself), and whether the line was marked uncertain (`?`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    /// The function.
    pub func: String,
    /// Offset in it.
    pub offset: u64,
    /// The module, if any.
    pub module: Option<String>,
    /// A `? ` frame (found on the stack, maybe stale).
    pub uncertain: bool,
}

/// Parses `[?] func+0xOFF/0xLEN [module]` out of a kernel log line
/// (`RIP: 0010:` prefixes and timestamps allowed).
pub fn parse_frame(line: &str) -> Option<Frame> {
    let l = line.trim();
    // A console line starts with the printk time: "[    7.361649] ".
    let l = match l.strip_prefix('[') {
        Some(r) => r.split_once(']').map_or(l, |(_, rest)| rest.trim()),
        None => l,
    };
    let l = l.rsplit_once("RIP: 0010:").map_or(l, |(_, r)| r).trim();
    let uncertain = l.starts_with("? ");
    let l = l.trim_start_matches("? ");
    let (sym, rest) = l.split_once('+')?;
    if sym.is_empty() || sym.contains(' ') || sym.contains(':') {
        return None;
    }
    let (off, rest) = rest.split_once('/')?;
    let offset = u64::from_str_radix(off.trim_start_matches("0x"), 16).ok()?;
    let len_end = rest
        .find(|c: char| !c.is_ascii_hexdigit() && c != 'x')
        .unwrap_or(rest.len());
    let module = rest[len_end..]
        .trim()
        .strip_prefix('[')
        .and_then(|m| m.split(']').next())
        .map(|m| m.split_whitespace().next().unwrap_or(m).to_owned());
    Some(Frame { func: sym.to_owned(), offset, module, uncertain })
}

/// `nm` of an object: symbol -> value.
fn symbols(obj: &Path) -> HashMap<String, u64> {
    let Ok(o) = Command::new("nm").arg("--defined-only").arg(obj).output()
    else {
        return HashMap::new();
    };
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            let v = u64::from_str_radix(w.next()?, 16).ok()?;
            let _kind = w.next()?;
            Some((w.next()?.to_owned(), v))
        })
        .collect()
}

/// `addr2line -f -i` of `addr` in `obj` (section `.text` for a module):
/// the lines, innermost first, as `func at file:line`.
fn addr2line(obj: &Path, addr: u64, module: bool) -> Vec<String> {
    let mut c = Command::new("addr2line");
    c.args(["-f", "-i", "-C", "-e"]).arg(obj);
    if module {
        c.args(["-j", ".text"]);
    }
    let Ok(o) = c.arg(format!("{addr:#x}")).stderr(Stdio::null()).output()
    else {
        return Vec::new();
    };
    let text = String::from_utf8_lossy(&o.stdout);
    let lines: Vec<&str> = text.lines().collect();
    lines
        .chunks(2)
        .filter(|p| p.len() == 2 && !p[1].starts_with("??"))
        .map(|p| format!("{} at {}", p[0], p[1]))
        .collect()
}

/// The stack of `log` symbolized: each frame line, then its source lines
/// when the module's `.ko` (under `modules`) or `vmlinux` has them. The
/// offset is that of the return address, so one byte is taken off to
/// land in the call (except for the RIP frame).
///
/// Only the first report's frames are kept (a panic repeats the RIP), and
/// `strip` is taken off the front of source paths (the build folder).
pub fn symbolize(
    log: &[String],
    modules: Option<&Path>,
    vmlinux: Option<&Path>,
    strip: &str,
) -> String {
    let mut syms: HashMap<String, HashMap<String, u64>> = HashMap::new();
    let mut out = String::new();
    let mut rips = 0;
    for line in log {
        let Some(f) = parse_frame(line) else { continue };
        let rip = line.contains("RIP:");
        rips += usize::from(rip);
        if rip && rips > 1 {
            break;
        }
        let (obj, is_module) = match (&f.module, modules, vmlinux) {
            (Some(m), Some(dir), _) => (dir.join(format!("{m}.ko")), true),
            (None, _, Some(v)) => (v.to_path_buf(), false),
            _ => {
                out.push_str(&format!("{}\n", line.trim()));
                continue;
            }
        };
        let key = obj.display().to_string();
        let table = syms.entry(key).or_insert_with(|| symbols(&obj));
        out.push_str(&format!(
            "{}{}{}+{:#x}{}\n",
            if rip { "RIP " } else { "" },
            if f.uncertain { "? " } else { "" },
            f.func,
            f.offset,
            f.module.as_ref().map_or(String::new(), |m| format!(" [{m}]"))
        ));
        let Some(base) = table.get(&f.func) else { continue };
        let addr = base + f.offset - u64::from(!rip && f.offset > 0);
        for l in addr2line(&obj, addr, is_module) {
            let l = if strip.is_empty() { l } else { l.replace(strip, "") };
            out.push_str(&format!("    {l}\n"));
        }
    }
    out
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn test_parse_frames_of_the_4_1_9_oops() {
        // fixtures/fuzz-regressions/fuzz_kernel/pool4-add-siit-oops.real.txt
        let rip = "[   12.345678] RIP: 0010:jstat_put+0xe/0x50 [jool_common]";
        assert_eq!(
            parse_frame(rip),
            Some(Frame {
                func: "jstat_put".into(),
                offset: 0xe,
                module: Some("jool_common".into()),
                uncertain: false
            })
        );
        let f =
            parse_frame(" handle_pool4_add+0xd1/0x120 [jool_common]").unwrap();
        assert_eq!((f.func.as_str(), f.offset), ("handle_pool4_add", 0xd1));
        let f =
            parse_frame("  ? genl_family_rcv_msg_doit+0xfd/0x160").unwrap();
        assert_eq!(
            (f.func.as_str(), f.offset, f.module, f.uncertain),
            ("genl_family_rcv_msg_doit", 0xfd, None, true)
        );
        assert!(parse_frame("Call Trace:").is_none());
        let f = parse_frame(
            "[    7.362036]  handle_pool4_flush+0x76/0x150 [jool_common]",
        );
        assert_eq!(f.unwrap().func, "handle_pool4_flush");
        assert!(
            parse_frame("[    7.364879] RIP: 0033:0x7ffff7de8b59").is_none()
        );
        assert!(parse_frame(
            "BUG: kernel NULL pointer dereference, address: 0000000000000000"
        )
        .is_none());
    }

    #[test]
    fn test_module_frame_with_taint_list() {
        let f =
            parse_frame(" handle_pool4_add+0x5c/0x120 [jool_common 0123abcd]")
                .unwrap();
        assert_eq!(f.module.as_deref(), Some("jool_common"));
    }
}
