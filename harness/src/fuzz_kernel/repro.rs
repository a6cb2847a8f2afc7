//! Standalone reproducers and `--reproduce` / `--bisect`.
//!
//! [`c_source`] writes a C program that needs nothing of this project:
//! it enters a new network namespace, resolves Jool's family, puts the
//! fuzzer's base state and sends the crash's requests, each from a fresh
//! `NETLINK_GENERIC` socket. `--reproduce DIR` compiles it on the host
//! (static), runs it in a fresh guest booted as the crash's was, and
//! prints `reproduced` or `not reproduced`; `--bisect` runs it on the
//! stock module of every release with a cached image.

use std::{
    fmt::Write as _,
    path::{Path, PathBuf},
    process::Command,
};

use jool_sim::{
    requests::op,
    versions::{cmp_releases, Profile},
};

use super::{
    crash::console_crash,
    discover::base_requests,
    error::{fs, Error, Result},
    guest::Task,
    journal::Entry,
    request::{get_family, request, FAMILY_PLACEHOLDER, TAG_PLACEHOLDER},
    setup::{self, Target, SHARED},
    target::is_crash_line,
    Modules, Settings, Verdict,
};

/// `bytes` as a C array named `name`.
fn c_array(out: &mut String, name: &str, bytes: &[u8]) {
    let _ = writeln!(out, "static const unsigned char {name}[] = {{");
    for chunk in bytes.chunks(12) {
        let line: Vec<String> =
            chunk.iter().map(|b| format!("0x{b:02x}")).collect();
        let _ = writeln!(out, "\t{},", line.join(", "));
    }
    if bytes.is_empty() {
        out.push_str("\t0x00,\n");
    }
    out.push_str("};\n");
}

/// The C reproducer of `seq` for release `p`; `info` goes in its header
/// comment.
pub fn c_source(p: &Profile, info: &str, seq: &[Entry]) -> String {
    let mut s = String::new();
    s.push_str("/*\n * Standalone reproducer written by jool-harness fuzz-kernel.\n *\n");
    for l in info.lines() {
        let _ = writeln!(s, " *   {l}");
    }
    let text = format!(
        "Build: gcc -O1 -static -o repro repro.c\n\
         Run as root on a (throwaway!) machine with Jool's modules loaded\n\
         (modprobe jool_siit; modprobe jool). It enters a new network\n\
         namespace, resolves the \"Jool\" generic netlink family, flushes the\n\
         namespace's instances and adds SIIT and NAT64 \"default\" (netfilter,\n\
         pool6 64:ff9b::/96), then sends the {n} request(s) below, each from a\n\
         fresh NETLINK_GENERIC socket. A kernel oops kills it inside\n\
         sendto(); it prints \"done\" if nothing happened.\n\
         \n\
         Requests carry family id 0x{fam:02x} and namespace tag \"{tag}\" as\n\
         placeholders, replaced at run time by the real ones.",
        n = seq.len(),
        fam = FAMILY_PLACEHOLDER,
        tag = String::from_utf8_lossy(&TAG_PLACEHOLDER),
    );
    s.push_str(" *\n");
    for l in text.lines() {
        let _ = writeln!(s, " *{}{l}", if l.is_empty() { "" } else { " " });
    }
    s.push_str(" */\n");
    s.push_str(C_HEAD);
    let _ = writeln!(s, "#define PLACEHOLDER 0x{FAMILY_PLACEHOLDER:x}\n#define JOOL_HDR_LEN {}\n", p.header_len());
    c_array(&mut s, "getfamily", &get_family("Jool", 1));
    c_array(
        &mut s,
        "foreach_siit",
        &request(p, op::INSTANCE_FOREACH, 1, b"", &[]),
    );
    let base = base_requests(p);
    for (i, b) in base.iter().enumerate() {
        c_array(&mut s, &format!("base{i}"), b);
    }
    for (i, e) in seq.iter().enumerate() {
        c_array(&mut s, &format!("seq{i}"), &e.request);
    }
    s.push_str("\nstatic const struct req base[] = {\n");
    for i in 0..base.len() {
        let _ = writeln!(s, "\t{{ base{i}, sizeof(base{i}), 0 }},");
    }
    s.push_str("};\n\nstatic const struct req seq[] = {\n");
    for (i, e) in seq.iter().enumerate() {
        let _ = writeln!(
            s,
            "\t{{ seq{i}, sizeof(seq{i}), {} }},",
            u8::from(e.ext_ack)
        );
    }
    s.push_str("};\n");
    s.push_str(C_BODY);
    s
}

const C_HEAD: &str = r#"#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <linux/netlink.h>

#ifndef NETLINK_EXT_ACK
#define NETLINK_EXT_ACK 11
#endif
#ifndef SOL_NETLINK
#define SOL_NETLINK 270
#endif

struct req {
	const unsigned char *bytes;
	size_t len;
	int ext_ack;
};

"#;

const C_BODY: &str = r#"
static unsigned char reply[65536];
static unsigned char out[65536];

/* Sends one datagram from a fresh socket and reads every reply; the
 * first reply stays in `reply`. Returns its length, or -1. */
static ssize_t exchange(const unsigned char *d, size_t len, int ext_ack)
{
	struct sockaddr_nl kernel = { .nl_family = AF_NETLINK };
	ssize_t first = -1, n;
	int fd, one = 1, k;

	fd = socket(AF_NETLINK, SOCK_RAW, NETLINK_GENERIC);
	if (fd < 0) {
		perror("socket(AF_NETLINK, NETLINK_GENERIC)");
		exit(2);
	}
	if (ext_ack)
		setsockopt(fd, SOL_NETLINK, NETLINK_EXT_ACK, &one, sizeof(one));
	if (sendto(fd, d, len, 0, (struct sockaddr *)&kernel, sizeof(kernel)) >= 0) {
		for (k = 0; k < 512; k++) {
			n = recv(fd, k ? out : reply, sizeof(reply), MSG_DONTWAIT);
			if (n <= 0)
				break;
			if (k == 0)
				first = n;
		}
	}
	close(fd);
	return first;
}

static uint16_t get16(const unsigned char *p) { return p[0] | p[1] << 8; }
static uint32_t get32(const unsigned char *p) { return get16(p) | (uint32_t)get16(p + 2) << 16; }

/* The value of the first attribute of type `type` in [b, b + len). */
static const unsigned char *attr(const unsigned char *b, size_t len, int type, size_t *vlen)
{
	size_t off = 0;

	while (off + 4 <= len) {
		size_t alen = get16(b + off);
		if (alen < 4 || off + alen > len)
			return NULL;
		if ((get16(b + off + 2) & 0x3fff) == type) {
			*vlen = alen - 4;
			return b + off + 4;
		}
		off += (alen + 3) & ~3u;
	}
	return NULL;
}

/* A copy of `r` with the placeholders replaced: Jool's family id in
 * every message of type PLACEHOLDER, the namespace tag for "nsT!". */
static size_t patch(const struct req *r, uint16_t family, uint32_t tag)
{
	size_t off = 0, i;

	memcpy(out, r->bytes, r->len);
	while (off + 16 <= r->len) {
		size_t mlen = get32(out + off);
		if (mlen < 16 || off + mlen > r->len)
			break;
		if (get16(out + off + 4) == PLACEHOLDER) {
			out[off + 4] = family & 0xff;
			out[off + 5] = family >> 8;
		}
		off += (mlen + 3) & ~(size_t)3;
	}
	for (i = 0; i + 4 <= r->len; i++) {
		if (memcmp(out + i, "nsT!", 4) == 0) {
			memcpy(out + i, &tag, 4);
			i += 3;
		}
	}
	return r->len;
}

static void send_req(const struct req *r, uint16_t family, uint32_t tag)
{
	static unsigned char copy[65536];
	size_t len = patch(r, family, tag);

	memcpy(copy, out, len);
	exchange(copy, len, r->ext_ack);
}

int main(void)
{
	const struct req gf = { getfamily, sizeof(getfamily), 0 };
	const struct req fe = { foreach_siit, sizeof(foreach_siit), 0 };
	const unsigned char *v, *e;
	size_t vlen, elen, i, n = sizeof(seq) / sizeof(seq[0]);
	uint16_t family;
	uint32_t tag = 0;
	ssize_t got;

	if (unshare(CLONE_NEWNET)) {
		perror("unshare(CLONE_NEWNET) (run as root)");
		return 2;
	}
	got = exchange(gf.bytes, gf.len, 0);
	v = got > 20 ? attr(reply + 20, got - 20, 1, &vlen) : NULL;
	if (get16(reply + 4) != 0x10 || !v || vlen < 2) {
		fprintf(stderr, "the \"Jool\" generic netlink family is not registered (modprobe jool_siit; modprobe jool)\n");
		return 2;
	}
	family = get16(v);
	for (i = 0; i < sizeof(base) / sizeof(base[0]); i++)
		send_req(&base[i], family, 0);
	patch(&fe, family, 0);
	memcpy(reply, out, fe.len);
	got = exchange(reply, fe.len, 0);
	if (got > 20 + JOOL_HDR_LEN) {
		e = attr(reply + 20 + JOOL_HDR_LEN, got - 20 - JOOL_HDR_LEN, 1, &elen);
		v = e ? attr(e, elen, 1, &vlen) : NULL;
		if (v && vlen >= 4)
			tag = get32(v);
	}
	printf("Jool family 0x%x, namespace tag %08x; sending %zu request(s)\n", family, tag, n);
	for (i = 0; i < n; i++) {
		printf("request %zu/%zu\n", i + 1, n);
		fflush(stdout);
		send_req(&seq[i], family, tag);
	}
	printf("done: the kernel did not kill this process (check dmesg)\n");
	return 0;
}
"#;

/// `key=value` of a crash folder's `info.txt`.
fn info_value(info: &str, key: &str) -> Option<String> {
    info.lines()
        .find_map(|l| l.strip_prefix(&format!("{key}=")).map(str::to_owned))
}

/// The target a crash folder was found on (its modules and kernel, when
/// they still exist; else what `--modules`/`--kasan` resolve).
fn crash_target(args: &Settings, info: &str) -> Result<Target> {
    let release = info_value(info, "release").ok_or_else(|| {
        Error::Usage("the crash folder's info.txt has no release=".into())
    })?;
    let existing = |k: &str| {
        info_value(info, k).map(PathBuf::from).filter(|p| p.exists())
    };
    let mut t = setup::target(args, &release)?;
    if args.modules == Modules::Auto {
        if let Some(m) = existing("modules") {
            t.modules = Some(m);
        } else if info_value(info, "modules").as_deref() == Some("stock") {
            t.modules = None;
        }
    }
    if let Some(k) = existing("kasan") {
        t.image = k.join("image");
        t.kasan = Some(k);
    }
    Ok(t)
}

/// Compiles `repro.c` of `dir` statically into `to`.
fn compile(dir: &Path, to: &Path) -> Result<()> {
    let st = Command::new("cc")
        .args(["-O1", "-static", "-o"])
        .arg(to)
        .arg(dir.join("repro.c"))
        .status()
        .map_err(|e| {
            Error::io("run cc (a C compiler is needed for --reproduce)", e)
        })?;
    if !st.success() {
        return Err(Error::Usage(format!(
            "cc {} failed ({st})",
            dir.join("repro.c").display()
        )));
    }
    Ok(())
}

/// Runs the compiled reproducer `bin` in a fresh guest of `t`: the crash
/// lines it caused (empty: none).
pub fn run_in_guest(
    args: &Settings,
    t: &Target,
    bin: &Path,
) -> Result<Vec<String>> {
    let shared = setup::private_dir("repro")?;
    let guest = repro_guest(args, t, bin, &shared);
    // The folder is ours: made by mkdtemp above.
    let _ = std::fs::remove_dir_all(&shared);
    let guest = guest?;
    let result = std::fs::read_to_string(guest.out().join("result.txt"))
        .unwrap_or_default();
    let console = std::fs::read_to_string(guest.console()).unwrap_or_default();
    let mut lines: Vec<String> = result
        .lines()
        .filter(|l| is_crash_line(l))
        .map(str::to_owned)
        .collect();
    if result.contains("signal: 9") && lines.is_empty() {
        lines.push("the reproducer was killed (SIGKILL)".into());
    }
    if !result.contains("exit ") {
        lines.extend(console_crash(&console));
    }
    Ok(lines)
}

/// Boots the guest that runs the reproducer `bin`, sharing `shared`.
fn repro_guest(
    args: &Settings,
    t: &Target,
    bin: &Path,
    shared: &Path,
) -> Result<crate::vm::GuestRun> {
    fs::copy(bin, &shared.join("repro"))?;
    let task = Task::Exec {
        program: format!("{SHARED}/repro").into(),
        result: "/h/out/result.txt".into(),
    };
    setup::boot_task(args, t, shared, task, (150, ""))
}

/// Runs `--reproduce DIR` (and `--bisect`).
pub fn run(args: &Settings, dir: &Path) -> Result<Verdict> {
    let info = std::fs::read_to_string(dir.join("info.txt")).map_err(|e| {
        Error::io(
            format!(
                "read {}/info.txt (not a crash folder of fuzz-kernel?)",
                dir.display()
            ),
            e,
        )
    })?;
    let work = setup::private_dir("repro-bin")?;
    let bin = work.join("repro");
    let result = compile(dir, &bin).and_then(|()| {
        if args.bisect {
            bisect(args, &info, &bin)
        } else {
            reproduce(args, &info, &bin)
        }
    });
    // The folder is ours: made by mkdtemp above.
    let _ = std::fs::remove_dir_all(&work);
    result
}

fn reproduce(args: &Settings, info: &str, bin: &Path) -> Result<Verdict> {
    let t = crash_target(args, info)?;
    eprintln!(
        "fuzz-kernel: reproducing on {} ({})",
        t.release,
        t.image.display()
    );
    let lines = run_in_guest(args, &t, bin)?;
    match lines.first() {
        Some(l) => {
            println!("reproduced: {}", l.trim());
            Ok(Verdict::Pass)
        }
        None => {
            println!("not reproduced");
            Ok(Verdict::Fail)
        }
    }
}

/// The images in the cache whose module is a release's stock one (the
/// images of before cells: `jool_src=none...`; cells: `result=built`),
/// one per release (the first by folder name): (release, folder), by
/// release.
fn cached_images() -> Vec<(String, PathBuf)> {
    let cache = crate::vm::cell::images_dir();
    let mut v: Vec<(String, PathBuf)> = std::fs::read_dir(cache)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let m = std::fs::read_to_string(e.path().join("manifest")).ok()?;
            let stock = info_value(&m, "jool_src")
                .is_some_and(|s| s.starts_with("none"))
                || info_value(&m, "result").as_deref() == Some("built");
            stock.then_some(())?;
            Some((info_value(&m, "release")?, e.path()))
        })
        .collect();
    v.sort_by(|a, b| cmp_releases(&a.0, &b.0).then(a.1.cmp(&b.1)));
    v.dedup_by(|a, b| a.0 == b.0);
    v
}

fn bisect(args: &Settings, info: &str, bin: &Path) -> Result<Verdict> {
    let images = cached_images();
    if images.is_empty() {
        return Err(Error::Usage(
            "no cached image (scripts/vm-image --release R)".into(),
        ));
    }
    let found_on = info_value(info, "release").unwrap_or_default();
    let mut table = Vec::new();
    for (release, image) in &images {
        let t = Target {
            release: release.clone(),
            image: image.clone(),
            base_image: image.clone(),
            ..Target::default()
        };
        eprintln!(
            "fuzz-kernel: bisect: {release} (stock module, {})",
            image.display()
        );
        let lines = run_in_guest(args, &t, bin)?;
        println!(
            "{release}: {}",
            lines.first().map_or("no crash".to_owned(), |l| format!(
                "crash: {}",
                l.trim()
            ))
        );
        table.push((release.clone(), !lines.is_empty()));
    }
    let first_fixed = table
        .iter()
        .skip_while(|(_, crashed)| !crashed)
        .find(|(_, crashed)| !crashed)
        .map(|(r, _)| r.clone());
    match first_fixed {
        Some(r) => println!("first release where it no longer crashes: {r} (found on {found_on})"),
        None if table.iter().any(|(_, c)| *c) => println!("it crashes on every release after the first crashing one"),
        None => println!("it crashes on none of the cached releases' stock modules"),
    }
    Ok(Verdict::Pass)
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn test_c_source_holds_every_request() {
        let p = Profile::get("4.1.9").unwrap();
        let seq = vec![
            Entry {
                exec: 3,
                ext_ack: true,
                request: request(p, 19, 1, b"default", &[]),
            },
            Entry { exec: 4, ext_ack: false, request: vec![] },
        ];
        let c = c_source(p, "release=4.1.9\nkernel=6.1", &seq);
        assert!(c.contains("static const unsigned char seq1[]"));
        assert!(c.contains("{ seq0, sizeof(seq0), 1 },"));
        assert!(c.contains("#define JOOL_HDR_LEN 28"));
        assert!(c.contains(" *   release=4.1.9"));
        // Every line of the header comment is one of its " *" lines.
        let header: Vec<&str> =
            c.lines().skip(1).take_while(|l| *l != " */").collect();
        assert!(header.iter().all(|l| l.starts_with(" *")), "{header:?}");
        assert!(header.iter().any(|l| l.starts_with(" * Build: gcc")));
        // POOL4_ADD (19) to SIIT "default": the 48 bytes of the request.
        assert!(c.contains("0x30, 0x00, 0x00, 0x00, 0x20, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00, 0x00,\n\t0x00, 0x00, 0x00, 0x00, 0x13,"));
    }

    /// The reproducer compiles with the host's C compiler (skipped, loudly,
    /// without one).
    #[test]
    fn test_c_source_compiles() {
        if Command::new("cc").arg("--version").output().is_err() {
            eprintln!(
                "SKIPPED test_c_source_compiles: no `cc` on this machine"
            );
            return;
        }
        let p = Profile::get("4.1.9").unwrap();
        let seq = vec![Entry {
            exec: 1,
            ext_ack: false,
            request: request(p, 19, 1, b"default", &[]),
        }];
        let dir = crate::host::TempDir::new("jool-repro-test").unwrap();
        let c = dir.path().join("repro.c");
        std::fs::write(&c, c_source(p, "test", &seq)).unwrap();
        let st = Command::new("cc")
            .args(["-Wall", "-Werror", "-fsyntax-only"])
            .arg(&c)
            .status()
            .unwrap();
        assert!(st.success());
    }
}
