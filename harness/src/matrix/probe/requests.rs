//! The probe's crafted requests, valid and malformed, for any release.
//!
//! For 4.0.8 and later: the 91 requests of `fixtures/conformance-4.1.9`
//! (its `conformance.py`, groups a–h and z), built from the release's
//! protocol facts instead of 4.1.9's constants: its version word, its
//! `joolnlhdr` layout (24 bytes without magic up to 4.1.4 and in rc1),
//! its numbering of operations and root attributes (4.2.0-rc's MAP-T
//! insertions). For 4.1.9 they are byte for byte the corpus's requests
//! (`test_4_1_9_requests_are_the_corpus_requests`). A few requests that
//! only mean something relative to a release are added in group `i`.
//! For 4.0.0 – 4.0.7 (`request_hdr` inside `ATTR_DATA`, per-module
//! families up to 4.0.5): [`legacy`], the same questions in that protocol.

use jool_sim::{
    kernel::Xlator,
    versions::{LegacyLayout, Profile, Protocol},
    wire::{
        family::{Attr, InstanceAddAttr, Numbering, Op, PrefixAttr},
        genl::{CTRL_ATTR_FAMILY_NAME, CTRL_CMD_GETFAMILY},
        jool::{FLAG_ERROR, FLAG_M, INAME_LEN, XT_NAT64, XT_SIIT},
        legacy::{self, ConfigOp},
        nla::F_NESTED,
        nlmsg::{F_ACK, F_DUMP, F_REQUEST, GENL_ID_CTRL},
    },
};

/// One crafted request: what the probe sends, and how.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    /// Group letter (a–i, z), as in the corpus.
    pub group: char,
    /// Stable name (the corpus's where it has one).
    pub name: String,
    /// What is sent, in words.
    pub description: String,
    /// The datagram (0, 1 or 2 netlink messages).
    pub datagram: Vec<u8>,
    /// The `nlmsg_seq` values it uses.
    pub seqs: Vec<u32>,
    /// Whether the socket sets `NETLINK_EXT_ACK`.
    pub ext_ack: bool,
}

/// The families the requests go to: Jool's (or, in 4.0.0 – 4.0.5,
/// SIIT_Jool's and NAT64_Jool's), as resolved on the kernel; a
/// placeholder when absent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Families {
    /// "Jool", or "SIIT_Jool".
    pub siit: u16,
    /// "Jool", or "NAT64_Jool".
    pub nat64: u16,
}

impl Families {
    /// One family for both translators.
    pub fn one(id: u16) -> Self {
        Self { siit: id, nat64: id }
    }

    fn of(self, xt: u8) -> u16 {
        if xt == XT_NAT64 {
            self.nat64
        } else {
            self.siit
        }
    }
}

/// The id used when a family does not exist (the corpus's placeholder).
pub const FAMILY_PLACEHOLDER: u16 = 0xffff;

/// What the probe asks of a run: the corpus's requests, and with
/// `with_rm` (a throwaway namespace) the two of group z.
pub fn requests(p: &Profile, fam: Families, with_rm: bool) -> Vec<Request> {
    let mut b = Builder::new(p, fam);
    if p.is_legacy() {
        legacy(&mut b, with_rm);
    } else {
        joolnl(&mut b, with_rm);
    }
    b.out
}

/// Assembles requests with consecutive sequence numbers from 1.
struct Builder<'p> {
    p: &'p Profile,
    fam: Families,
    seq: u32,
    used: Vec<u32>,
    out: Vec<Request>,
}

/// The Jool header fields of a request (defaults: what the client sends).
#[derive(Clone, Debug)]
struct Hdr {
    xt: u8,
    flags: u8,
    iname: Vec<u8>,
    raw_iname: bool,
    magic: [u8; 4],
    version: Option<u32>,
    reserved: [u8; 2],
}

impl Default for Hdr {
    fn default() -> Self {
        Self {
            xt: XT_SIIT,
            flags: 0,
            iname: b"default".to_vec(),
            raw_iname: false,
            magic: *b"jool",
            version: None,
            reserved: [0; 2],
        }
    }
}

/// How a Jool request is framed (defaults: what the client sends).
#[derive(Clone, Debug)]
struct Frame {
    flags: u16,
    genl_version: u8,
    len: Option<u32>,
    attrs: Vec<u8>,
    hdr: Hdr,
}

impl Default for Frame {
    fn default() -> Self {
        Self {
            flags: F_REQUEST,
            genl_version: 1,
            len: None,
            attrs: Vec::new(),
            hdr: Hdr::default(),
        }
    }
}

fn pad4(mut b: Vec<u8>) -> Vec<u8> {
    b.resize(b.len().div_ceil(4) * 4, 0);
    b
}

/// One attribute, padded; `len` overrides `nla_len`.
fn nla(kind: u16, payload: &[u8], len: Option<u16>) -> Vec<u8> {
    let l = len.unwrap_or((4 + payload.len()) as u16);
    let mut v = l.to_le_bytes().to_vec();
    v.extend_from_slice(&kind.to_le_bytes());
    v.extend_from_slice(payload);
    pad4(v)
}

fn genlhdr(cmd: u8, version: u8) -> [u8; 4] {
    [cmd, version, 0, 0]
}

impl<'p> Builder<'p> {
    fn new(p: &'p Profile, fam: Families) -> Self {
        Self { p, fam, seq: 0, used: Vec::new(), out: Vec::new() }
    }

    fn numbering(&self) -> Numbering {
        self.p.numbering
    }

    fn attr(&self, a: Attr) -> u16 {
        self.numbering().attr(a).unwrap_or_default()
    }

    fn cmd(&self, op: Op) -> u8 {
        self.numbering().cmd(op).unwrap_or(op as u8)
    }

    fn nlmsg(
        &mut self,
        kind: u16,
        flags: u16,
        payload: &[u8],
        len: Option<u32>,
    ) -> Vec<u8> {
        self.seq += 1;
        self.used.push(self.seq);
        let l = len.unwrap_or((16 + payload.len()) as u32);
        let mut v = l.to_le_bytes().to_vec();
        v.extend_from_slice(&kind.to_le_bytes());
        v.extend_from_slice(&flags.to_le_bytes());
        v.extend_from_slice(&self.seq.to_le_bytes());
        v.extend_from_slice(&0u32.to_le_bytes());
        v.extend_from_slice(payload);
        v
    }

    /// The `joolnlhdr` of this release: 28 bytes with magic, or 24.
    fn joolhdr(&self, h: &Hdr) -> Vec<u8> {
        let mut v = Vec::new();
        if self.p.has_magic() {
            v.extend_from_slice(&h.magic);
        }
        v.extend_from_slice(
            &h.version.unwrap_or(self.p.wire_version).to_be_bytes(),
        );
        v.extend_from_slice(&[h.xt, h.flags, h.reserved[0], h.reserved[1]]);
        let mut name = h.iname.clone();
        if !h.raw_iname {
            name.truncate(INAME_LEN);
            name.resize(INAME_LEN, 0);
        }
        v.extend_from_slice(&name);
        v
    }

    fn jool(&mut self, cmd: u8, f: Frame) -> Vec<u8> {
        let mut payload = genlhdr(cmd, f.genl_version).to_vec();
        payload.extend(self.joolhdr(&f.hdr));
        payload.extend(&f.attrs);
        let fam = self.fam.of(f.hdr.xt);
        self.nlmsg(fam, f.flags, &payload, f.len)
    }

    fn stats(&mut self, f: Frame) -> Vec<u8> {
        let cmd = self.cmd(Op::StatsForeach);
        self.jool(cmd, f)
    }

    fn getfamily(&mut self, name: &str, flags: u16) -> Vec<u8> {
        let mut n = name.as_bytes().to_vec();
        n.push(0);
        let mut payload = genlhdr(CTRL_CMD_GETFAMILY, 1).to_vec();
        payload.extend(nla(CTRL_ATTR_FAMILY_NAME, &n, None));
        self.nlmsg(GENL_ID_CTRL, flags, &payload, None)
    }

    fn add(&mut self, group: char, name: &str, desc: &str, datagram: Vec<u8>) {
        self.add_ext(group, name, desc, datagram, false);
    }

    fn add_ext(
        &mut self,
        group: char,
        name: &str,
        desc: &str,
        datagram: Vec<u8>,
        ext_ack: bool,
    ) {
        let seqs = std::mem::take(&mut self.used);
        self.out.push(Request {
            group,
            name: name.to_owned(),
            description: desc.to_owned(),
            datagram,
            seqs,
            ext_ack,
        });
    }

    /// `INSTANCE_ADD`'s operand as `jool_siit instance add --netfilter
    /// --pool6 64:ff9b::/96` sends it.
    fn operand(&self, nested_flag: bool) -> Vec<u8> {
        let nf = if nested_flag { F_NESTED } else { 0 };
        let mut addr = [0u8; 16];
        addr[..4].copy_from_slice(&[0x00, 0x64, 0xff, 0x9b]);
        let mut pool6 = nla(PrefixAttr::Addr.into(), &addr, None);
        pool6.extend(nla(PrefixAttr::Len.into(), &[96], None));
        let mut operand = nla(InstanceAddAttr::Xf.into(), &[1 << 2], None);
        operand.extend(nla(
            u16::from(InstanceAddAttr::Pool6) | nf,
            &pool6,
            None,
        ));
        nla(self.attr(Attr::Operand) | nf, &operand, None)
    }
}

fn with_attrs(attrs: Vec<u8>) -> Frame {
    Frame { attrs, ..Frame::default() }
}

fn with_hdr(hdr: Hdr) -> Frame {
    Frame { hdr, ..Frame::default() }
}

fn with_flags(flags: u16) -> Frame {
    Frame { flags, ..Frame::default() }
}

fn nat64() -> Hdr {
    Hdr { xt: XT_NAT64, ..Hdr::default() }
}

/// Groups a–h (and z) of the corpus, for the `joolnlhdr` protocol.
fn joolnl(b: &mut Builder<'_>, with_rm: bool) {
    // a. controller
    let r = b.getfamily("Jool", F_REQUEST);
    b.add(
        'a',
        "ctrl_getfamily_jool",
        "CTRL_CMD_GETFAMILY name=\"Jool\" (genl version 1, flags REQUEST)",
        r,
    );
    let r = b.getfamily("NoSuchFamily", F_REQUEST);
    b.add(
        'a',
        "ctrl_getfamily_nosuchfamily",
        "CTRL_CMD_GETFAMILY name=\"NoSuchFamily\"",
        r,
    );
    let r = b.getfamily("Jool", F_REQUEST | F_ACK);
    b.add(
        'a',
        "ctrl_getfamily_jool_ack",
        "CTRL_CMD_GETFAMILY name=\"Jool\" with NLM_F_ACK",
        r,
    );
    basics(b);
    offsets(b);
    headers(b);
    framing(b);
    others(b);
    privileged(b);
    ext_acks(b);
    relative(b);
    if with_rm {
        let r = b.jool(b.cmd(Op::InstanceRm), Frame::default());
        b.add(
            'z',
            "instance_rm_default",
            "INSTANCE_RM (cmd 3) xt=SIIT iname=default",
            r,
        );
        let r = b.stats(Frame::default());
        b.add(
            'z',
            "stats_siit_after_rm",
            "STATS_FOREACH SIIT default after the instance was removed",
            r,
        );
    }
}

/// b. STATS_FOREACH basics
fn basics(b: &mut Builder<'_>) {
    let r = b.stats(Frame::default());
    b.add('b', "stats_siit", "STATS_FOREACH, xt=SIIT, iname=default, no attributes (what `jool_siit stats display` sends)", r);
    let r = b.stats(with_hdr(nat64()));
    b.add('b', "stats_nat64", "STATS_FOREACH, xt=NAT64, iname=default", r);
    let r = b.stats(with_flags(F_REQUEST | F_ACK));
    b.add(
        'b',
        "stats_siit_ack",
        "STATS_FOREACH SIIT with NLM_F_REQUEST|NLM_F_ACK",
        r,
    );
    let r = b.stats(with_flags(F_REQUEST | F_DUMP));
    b.add('b', "stats_siit_dump", "STATS_FOREACH SIIT with NLM_F_REQUEST|NLM_F_DUMP (0x301); the op has no dumpit", r);
    let r = b.stats(Frame { genl_version: 2, ..Frame::default() });
    b.add(
        'b',
        "stats_siit_genlv2",
        "STATS_FOREACH SIIT with genl version 2 (the client sends 1)",
        r,
    );
    let r = b.stats(Frame { genl_version: 0, ..Frame::default() });
    b.add(
        'b',
        "stats_siit_genlv0",
        "STATS_FOREACH SIIT with genl version 0",
        r,
    );
    let r = b.stats(with_flags(0));
    b.add(
        'b',
        "stats_siit_no_request_flag",
        "STATS_FOREACH SIIT with nlmsg_flags=0 (no NLM_F_REQUEST)",
        r,
    );
    let r = b.stats(with_flags(F_ACK));
    b.add('b', "stats_siit_no_request_flag_ack", "STATS_FOREACH SIIT with nlmsg_flags=NLM_F_ACK only (no NLM_F_REQUEST)", r);
}

/// c. the offset attribute, and attributes in general
fn offsets(b: &mut Builder<'_>) {
    let off = b.attr(Attr::OffsetU8);
    for o in [0u8, 30, 68, 69, 70, 200, 255] {
        let r = b.stats(with_attrs(nla(off, &[o], None)));
        let d = format!(
            "STATS_FOREACH SIIT with JNLAR_OFFSET_U8 (type {off}, u8) = {o}"
        );
        b.add('c', &format!("stats_offset_{o}"), &d, r);
    }
    let r = b.stats(with_attrs(nla(off, &30u32.to_le_bytes(), None)));
    b.add(
        'c',
        "stats_offset_4byte_payload",
        "JNLAR_OFFSET_U8 with a 4-byte payload (u32 30), nla_len=8",
        r,
    );
    let short = [3u16.to_le_bytes(), off.to_le_bytes()].concat();
    let r = b.stats(with_attrs(short));
    b.add('c', "stats_offset_nla_len_3", "JNLAR_OFFSET_U8 whose nla_len=3 (< NLA_HDRLEN); 4 attribute bytes sent", r);
    let r = b.stats(with_attrs(nla(off, &[30], None)[..3].to_vec()));
    b.add(
        'c',
        "stats_offset_cut_3_bytes",
        "only the first 3 bytes of an 8-byte JNLAR_OFFSET_U8 attribute sent",
        r,
    );
    let beyond =
        [12u16.to_le_bytes(), off.to_le_bytes(), [0x1e, 0], [0, 0]].concat();
    let r = b.stats(with_attrs(beyond));
    b.add('c', "stats_offset_nla_len_beyond", "JNLAR_OFFSET_U8 with nla_len=12 but only 8 attribute bytes in the message", r);
    let two = [nla(off, &[30], None), nla(off, &[60], None)].concat();
    let r = b.stats(with_attrs(two));
    b.add(
        'c',
        "stats_two_offsets",
        "two JNLAR_OFFSET_U8 attributes: 30 then 60",
        r,
    );
    let r = b.stats(with_attrs(nla(off, &[], None)));
    b.add(
        'c',
        "stats_offset_zero_payload",
        "JNLAR_OFFSET_U8 with an empty payload (nla_len=4)",
        r,
    );
    let past = b.numbering().maxattr() + 1;
    let r = b.stats(with_attrs(nla(past, &[1], None)));
    let d = format!(
        "unknown root attribute type {past} (> JNLAR_MAX={}), u8 payload",
        past - 1
    );
    b.add('c', &format!("stats_attr_type_{past}"), &d, r);
    let r = b.stats(with_attrs(nla(0, &[1], None)));
    b.add(
        'c',
        "stats_attr_type_0",
        "root attribute type 0 (unspec), u8 payload",
        r,
    );
    let nested = b.attr(Attr::Offset);
    let r = b.stats(with_attrs(nla(nested, &[], None)));
    let d = format!(
        "JNLAR_OFFSET (type {nested}, NLA_NESTED) without NLA_F_NESTED, empty"
    );
    b.add('c', "stats_attr_offset_nested", &d, r);
    let r = b.stats(with_attrs(vec![0; 4]));
    b.add(
        'c',
        "stats_trailing_junk",
        "4 zero bytes after the Jool header (an nla of length 0)",
        r,
    );
}

/// The wire versions group d sends (label, word).
const VERSIONS: [(&str, u32); 9] = [
    ("4_1_8_0", 0x0401_0800),
    ("4_1_10_0", 0x0401_0A00),
    ("4_0_9_0", 0x0400_0900),
    ("4_2_0_0", 0x0402_0000),
    ("4_1_255_5_4_2_0_rc3", 0x0401_FF05),
    ("5_0_0_0", 0x0500_0000),
    ("4_1_9_255", 0x0401_09FF),
    ("0_0_0_0", 0),
    ("3_1_9_0", 0x0301_0900),
];

/// d. header variants
fn headers(b: &mut Builder<'_>) {
    if b.p.has_magic() {
        let r = b.stats(with_hdr(Hdr { magic: *b"jooX", ..Hdr::default() }));
        b.add('d', "hdr_bad_magic", "magic \"jooX\"", r);
    }
    for (label, v) in VERSIONS {
        let r = b.stats(with_hdr(Hdr { version: Some(v), ..Hdr::default() }));
        let d = format!(
            "wire version {} (0x{v:08x}, big-endian)",
            label.replace('_', ".")
        );
        b.add('d', &format!("hdr_version_{label}"), &d, r);
    }
    let le = b.p.wire_version.swap_bytes();
    let r = b.stats(with_hdr(Hdr { version: Some(le), ..Hdr::default() }));
    b.add(
        'd',
        "hdr_version_little_endian",
        "the release's version word written little-endian",
        r,
    );
    for xt in [0u8, 3, 4, 255] {
        let r = b.stats(with_hdr(Hdr { xt, ..Hdr::default() }));
        b.add('d', &format!("hdr_xt_{xt}"), &format!("xt={xt}"), r);
    }
    let named = |n: &[u8]| Hdr { iname: n.to_vec(), ..Hdr::default() };
    let r = b.stats(with_hdr(named(b"nonexistent")));
    b.add('d', "hdr_iname_nonexistent", "iname \"nonexistent\"", r);
    let r =
        b.stats(with_hdr(Hdr { iname: b"nonexistent".to_vec(), ..nat64() }));
    b.add(
        'd',
        "hdr_iname_nonexistent_nat64",
        "xt=NAT64, iname \"nonexistent\"",
        r,
    );
    let r = b.stats(with_hdr(Hdr {
        iname: vec![b'A'; 16],
        raw_iname: true,
        ..Hdr::default()
    }));
    b.add(
        'd',
        "hdr_iname_16A",
        "iname = 16 x 'A', no NUL inside the 16 bytes",
        r,
    );
    let r = b.stats(with_hdr(named(&[b'A'; 15])));
    b.add(
        'd',
        "hdr_iname_15A",
        "iname = 15 x 'A' + NUL (longest valid name, no such instance)",
        r,
    );
    let r = b.stats(with_hdr(named(b"")));
    b.add(
        'd',
        "hdr_iname_empty",
        "iname = 16 NUL bytes (kernel substitutes \"default\")",
        r,
    );
    let r = b.stats(with_hdr(named(b"def\x01ult")));
    b.add(
        'd',
        "hdr_iname_nonprintable",
        "iname \"def\\x01ult\" (control character)",
        r,
    );
    let r = b.stats(with_hdr(Hdr {
        iname: b"default\0XXXXXXXX".to_vec(),
        raw_iname: true,
        ..Hdr::default()
    }));
    b.add(
        'd',
        "hdr_iname_default_junk_after_nul",
        "iname \"default\\0XXXXXXXX\" (junk after the NUL)",
        r,
    );
    let flagged = |flags| Hdr { flags, ..Hdr::default() };
    let r = b.stats(with_hdr(flagged(FLAG_ERROR)));
    b.add('d', "hdr_flags_error", "Jool header flags = ERROR (0x01)", r);
    let r = b.stats(with_hdr(flagged(FLAG_M)));
    b.add('d', "hdr_flags_m", "flags = M (0x08)", r);
    let r = b.stats(with_hdr(flagged(0xff)));
    b.add('d', "hdr_flags_ff", "flags = 0xff", r);
    let r =
        b.stats(with_hdr(Hdr { reserved: [0xaa, 0x55], ..Hdr::default() }));
    b.add('d', "hdr_reserved_nonzero", "reserved1=0xAA reserved2=0x55", r);
    let h = Hdr {
        flags: FLAG_ERROR | FLAG_M,
        iname: b"nonexistent".to_vec(),
        ..nat64()
    };
    let r = b.stats(with_hdr(h));
    b.add('d', "hdr_flags_error_nat64_nonexistent", "flags=ERROR|M, xt=NAT64, iname nonexistent (error reply keeps/ORs flags?)", r);
}

/// e. truncation and framing
fn framing(b: &mut Builder<'_>) {
    let stats = b.cmd(Op::StatsForeach);
    let fam = b.fam.siit;
    let genl = genlhdr(stats, 1);
    let r = b.nlmsg(fam, F_REQUEST, &genl, None);
    b.add(
        'e',
        "trunc_genl_only",
        "genl header only, no joolnlhdr (nlmsg_len=20)",
        r,
    );
    let r = b.nlmsg(fam, F_REQUEST | F_ACK, &genl, None);
    b.add('e', "trunc_genl_only_ack", "genl header only, with NLM_F_ACK", r);
    let hdr = b.joolhdr(&Hdr::default());
    let cut = |n: usize| [&genl[..], &hdr[..n]].concat();
    let r = b.nlmsg(fam, F_REQUEST, &cut(10), None);
    b.add(
        'e',
        "trunc_joolhdr_10",
        "joolnlhdr cut to 10 bytes (nlmsg_len=30)",
        r,
    );
    let hl = hdr.len();
    let r = b.nlmsg(fam, F_REQUEST, &cut(hl - 1), None);
    let d = format!(
        "joolnlhdr cut to {} bytes (nlmsg_len={})",
        hl - 1,
        20 + hl - 1
    );
    b.add('e', &format!("trunc_joolhdr_{}", hl - 1), &d, r);
    let full = 20 + hl;
    for (name, len, flags, what) in [
        ("nlmsg_len_too_big", 100, F_REQUEST, "but nlmsg_len=100"),
        (
            "nlmsg_len_too_big_ack",
            100,
            F_REQUEST | F_ACK,
            "but nlmsg_len=100, with NLM_F_ACK",
        ),
        (
            "nlmsg_len_18",
            18,
            F_REQUEST,
            "but nlmsg_len=18 (< nlmsghdr+genlhdr)",
        ),
        ("nlmsg_len_16", 16, F_REQUEST, "but nlmsg_len=16 (header only)"),
        ("nlmsg_len_8", 8, F_REQUEST, "but nlmsg_len=8 (< nlmsghdr)"),
    ] {
        let r = b.stats(Frame { len: Some(len), flags, ..Frame::default() });
        b.add(
            'e',
            name,
            &format!("valid stats request ({full} bytes sent) {what}"),
            r,
        );
    }
    let last = (full - 1) as u32;
    let r = b.stats(Frame { len: Some(last), ..Frame::default() });
    let d = format!("valid stats request ({full} bytes sent) but nlmsg_len={last} (last iname byte outside)");
    b.add('e', &format!("nlmsg_len_{last}"), &d, r);
    b.add('e', "send_zero_length", "zero-length datagram", Vec::new());
    let mut r = b.stats(Frame::default());
    r.truncate(12);
    b.add('e', "send_12_bytes", "12-byte datagram (shorter than nlmsghdr)", r);
    let r = [b.stats(Frame::default()), b.stats(with_hdr(nat64()))].concat();
    b.add(
        'e',
        "two_stats_in_one_datagram",
        "two STATS_FOREACH (SIIT, then NAT64) concatenated in one datagram",
        r,
    );
    let acked =
        |h| Frame { flags: F_REQUEST | F_ACK, hdr: h, ..Frame::default() };
    let r = [b.stats(acked(Hdr::default())), b.stats(acked(nat64()))].concat();
    b.add(
        'e',
        "two_stats_in_one_datagram_ack",
        "same, both with NLM_F_ACK",
        r,
    );
    let bad = if b.p.has_magic() {
        Hdr { magic: *b"jooX", ..Hdr::default() }
    } else {
        Hdr { version: Some(0), ..Hdr::default() }
    };
    let r = [b.stats(with_hdr(bad)), b.stats(Frame::default())].concat();
    b.add('e', "bad_then_good_in_one_datagram", "bad (magic, or version 0 without magic) stats request followed by a valid one, one datagram", r);
    let payload = [&genl[..], &hdr[..]].concat();
    let r = b.nlmsg(0x7ff0, F_REQUEST, &payload, None);
    b.add(
        'e',
        "unknown_family_id",
        "valid stats payload sent to nlmsg_type 0x7ff0 (no such family)",
        r,
    );
}

/// f. other commands
fn others(b: &mut Builder<'_>) {
    let foreach = b.cmd(Op::InstanceForeach);
    let r = b.jool(foreach, Frame::default());
    b.add(
        'f',
        "instance_foreach_siit",
        "INSTANCE_FOREACH (cmd 0), xt=SIIT",
        r,
    );
    let r = b.jool(foreach, with_hdr(nat64()));
    b.add(
        'f',
        "instance_foreach_nat64",
        "INSTANCE_FOREACH (cmd 0), xt=NAT64",
        r,
    );
    let hello = b.cmd(Op::InstanceHello);
    let r = b.jool(hello, Frame::default());
    b.add(
        'f',
        "instance_hello_default",
        "INSTANCE_HELLO (cmd 2) iname=default",
        r,
    );
    let r = b.jool(
        hello,
        with_hdr(Hdr { iname: b"nonexistent".to_vec(), ..Hdr::default() }),
    );
    b.add(
        'f',
        "instance_hello_nonexistent",
        "INSTANCE_HELLO (cmd 2) iname=nonexistent",
        r,
    );
    let r = b.jool(200, Frame::default());
    b.add('f', "cmd_200", "unknown genl cmd 200 with a valid Jool header", r);
    let r = b.jool(30, Frame::default());
    b.add('f', "cmd_30", "genl cmd 30 (first value past 4.1's JNLOP_JOOLD_ACK=29; 4.2.0-rc's FILE_HANDLE)", r);
    let globals = b.cmd(Op::GlobalForeach);
    let r = b.jool(globals, Frame::default());
    b.add('f', "global_foreach_siit", "GLOBAL_FOREACH (cmd 8), xt=SIIT", r);
}

/// g. privileged operations: INSTANCE_ADD as `jool_siit instance add
/// --netfilter --pool6 64:ff9b::/96` sends it, and INSTANCE_RM
fn privileged(b: &mut Builder<'_>) {
    let add = b.cmd(Op::InstanceAdd);
    let named = |n: &[u8]| Hdr { iname: n.to_vec(), ..Hdr::default() };
    let r = b.jool(add, with_attrs(b.operand(true)));
    b.add('g', "instance_add_default", "INSTANCE_ADD (cmd 1) xt=SIIT iname=default, OPERAND{XF=netfilter, POOL6{ADDR=64:ff9b::, LEN=96}} with NLA_F_NESTED, as the client sends it (instance already exists)", r);
    let r = b.jool(
        add,
        Frame {
            hdr: named(b"conftest"),
            attrs: b.operand(true),
            ..Frame::default()
        },
    );
    b.add(
        'g',
        "instance_add_conftest",
        "same INSTANCE_ADD with iname=conftest (new instance)",
        r,
    );
    let rm = b.cmd(Op::InstanceRm);
    let r = b.jool(rm, with_hdr(named(b"conftest")));
    b.add(
        'g',
        "instance_rm_conftest",
        "INSTANCE_RM (cmd 3) xt=SIIT iname=conftest",
        r,
    );
    let r = b.jool(add, with_hdr(named(b"conftest2")));
    b.add(
        'g',
        "instance_add_minimal",
        "INSTANCE_ADD (cmd 1) xt=SIIT iname=conftest2 with no attributes",
        r,
    );
    let r = b.jool(
        add,
        Frame {
            hdr: named(b"conftest3"),
            attrs: b.operand(false),
            ..Frame::default()
        },
    );
    b.add(
        'g',
        "instance_add_no_nested_flag",
        "INSTANCE_ADD iname=conftest3 with OPERAND/POOL6 lacking NLA_F_NESTED",
        r,
    );
}

/// h. error cases again with `NETLINK_EXT_ACK` on the socket
fn ext_acks(b: &mut Builder<'_>) {
    let off = b.attr(Attr::OffsetU8);
    let r = b.stats(with_attrs(nla(off, &30u32.to_le_bytes(), None)));
    b.add_ext(
        'h',
        "extack_stats_offset_4byte_payload",
        "as stats_offset_4byte_payload, socket has NETLINK_EXT_ACK=1",
        r,
        true,
    );
    let short = [3u16.to_le_bytes(), off.to_le_bytes()].concat();
    let r = b.stats(with_attrs(short));
    b.add_ext(
        'h',
        "extack_stats_offset_nla_len_3",
        "as stats_offset_nla_len_3, NETLINK_EXT_ACK=1",
        r,
        true,
    );
    let past = b.numbering().maxattr() + 1;
    let r = b.stats(with_attrs(nla(past, &[1], None)));
    b.add_ext(
        'h',
        &format!("extack_stats_attr_type_{past}"),
        &format!("as stats_attr_type_{past}, NETLINK_EXT_ACK=1"),
        r,
        true,
    );
    let r = b.stats(with_flags(F_REQUEST | F_DUMP));
    b.add_ext(
        'h',
        "extack_stats_siit_dump",
        "as stats_siit_dump, NETLINK_EXT_ACK=1",
        r,
        true,
    );
    let r = b.jool(200, Frame::default());
    b.add_ext('h', "extack_cmd_200", "as cmd_200, NETLINK_EXT_ACK=1", r, true);
    let genl = genlhdr(b.cmd(Op::StatsForeach), 1);
    let fam = b.fam.siit;
    let r = b.nlmsg(fam, F_REQUEST, &genl, None);
    b.add_ext(
        'h',
        "extack_trunc_genl_only",
        "as trunc_genl_only, NETLINK_EXT_ACK=1",
        r,
        true,
    );
    let r = b.stats(with_flags(F_REQUEST | F_ACK));
    b.add_ext(
        'h',
        "extack_stats_siit_ack",
        "as stats_siit_ack, NETLINK_EXT_ACK=1",
        r,
        true,
    );
    if b.p.has_magic() {
        let h = Hdr { magic: *b"jooX", ..Hdr::default() };
        let r = b.stats(Frame {
            flags: F_REQUEST | F_ACK,
            hdr: h,
            ..Frame::default()
        });
        b.add_ext(
            'h',
            "extack_hdr_bad_magic_ack",
            "bad magic with NLM_F_ACK, NETLINK_EXT_ACK=1",
            r,
            true,
        );
    }
}

/// i. questions relative to the release (not in the 4.1.9 corpus): its
/// neighbours' version words, the first command past its last, and
/// `instance add` of a MAP-T instance.
fn relative(b: &mut Builder<'_>) {
    let own = b.p.wire_version;
    for (label, v) in [
        ("rev_plus_1", own.wrapping_add(0x100)),
        ("rev_minus_1", own.wrapping_sub(0x100)),
        ("minor_plus_1", own.wrapping_add(0x1_0000)),
        ("dev_plus_1", own.wrapping_add(1)),
    ] {
        let r = b.stats(with_hdr(Hdr { version: Some(v), ..Hdr::default() }));
        let d = format!("wire version 0x{v:08x} (the release's {label})");
        b.add('i', &format!("hdr_version_{label}"), &d, r);
    }
    let past = b.numbering().op_count();
    let r = b.jool(past, Frame::default());
    b.add(
        'i',
        "cmd_past_last",
        &format!(
            "genl cmd {past}: the first past the release's last operation"
        ),
        r,
    );
    let add = b.cmd(Op::InstanceAdd);
    let mut operand = nla(InstanceAddAttr::Xf.into(), &[1 << 2], None);
    operand.extend(nla(
        u16::from(InstanceAddAttr::Pool6) | F_NESTED,
        &[],
        None,
    ));
    let attrs = nla(b.attr(Attr::Operand) | F_NESTED, &operand, None);
    let h = Hdr { xt: 4, iname: b"conftest4".to_vec(), ..Hdr::default() };
    let r = b.jool(add, Frame { hdr: h, attrs, ..Frame::default() });
    b.add('i', "instance_add_mapt", "INSTANCE_ADD xt=MAP-T (4) iname=conftest4, OPERAND{XF=4 (4.1's netfilter), empty POOL6}", r);
}

/// The same questions in the 4.0.0 – 4.0.7 protocol: one genl command
/// (`JOOL_COMMAND`), `ATTR_INAME` and `ATTR_DATA` = `request_hdr` +
/// payload; per-translator families up to 4.0.5.
fn legacy(b: &mut Builder<'_>, with_rm: bool) {
    let split = matches!(
        b.p.protocol,
        Protocol::Legacy(LegacyLayout::TypeChar | LegacyLayout::NoType)
    );
    let names: &[&str] =
        if split { &["SIIT_Jool", "NAT64_Jool"] } else { &["Jool"] };
    for n in names {
        let r = b.getfamily(n, F_REQUEST);
        b.add(
            'a',
            &format!("ctrl_getfamily_{}", n.to_lowercase()),
            &format!("CTRL_CMD_GETFAMILY name=\"{n}\""),
            r,
        );
    }
    let r = b.getfamily("NoSuchFamily", F_REQUEST);
    b.add(
        'a',
        "ctrl_getfamily_nosuchfamily",
        "CTRL_CMD_GETFAMILY name=\"NoSuchFamily\"",
        r,
    );
    let stats = legacy_stats_mode(b.p);
    let foreach = ConfigOp::Foreach.into();
    let s =
        |x: Xlator| L { xlator: x, mode: stats, op: foreach, ..L::default() };
    let cases: Vec<(char, &str, &str, L)> = vec![
        ('b', "stats_siit", "stats foreach, SIIT, ATTR_INAME default (what `jool_siit stats display` sends)", s(Xlator::Siit)),
        ('b', "stats_nat64", "stats foreach, NAT64", s(Xlator::Nat64)),
        ('b', "stats_siit_ack", "stats foreach with NLM_F_ACK", L { flags: F_REQUEST | F_ACK, ..s(Xlator::Siit) }),
        ('b', "stats_siit_dump", "stats foreach with NLM_F_DUMP", L { flags: F_REQUEST | F_DUMP, ..s(Xlator::Siit) }),
        ('b', "stats_siit_no_iname", "stats foreach without ATTR_INAME", L { iname: None, ..s(Xlator::Siit) }),
        ('d', "hdr_bad_magic", "request_hdr magic \"jooX\"", L { magic: *b"jooX", ..s(Xlator::Siit) }),
        ('d', "hdr_version_0_0_0_0", "request_hdr version 0", L { version: Some(0), ..s(Xlator::Siit) }),
        ('d', "hdr_version_4_1_9_0", "request_hdr version 4.1.9.0", L { version: Some(0x0401_0900), ..s(Xlator::Siit) }),
        ('d', "hdr_version_rev_plus_1", "request_hdr version: the release's + one revision", L { version: Some(b.p.wire_version + 0x100), ..s(Xlator::Siit) }),
        ('d', "hdr_mode_200", "config mode 200", L { mode: 200, ..s(Xlator::Siit) }),
        ('d', "hdr_op_7", "stats mode, operation ACK (7)", L { op: ConfigOp::Ack.into(), ..s(Xlator::Siit) }),
        ('d', "hdr_iname_nonexistent", "ATTR_INAME \"nonexistent\"", L { iname: Some(b"nonexistent\0".to_vec()), ..s(Xlator::Siit) }),
        ('d', "hdr_iname_16A", "ATTR_INAME of 16 'A' and no NUL", L { iname: Some(vec![b'A'; 16]), ..s(Xlator::Siit) }),
        ('d', "hdr_iname_empty", "ATTR_INAME \"\"", L { iname: Some(vec![0]), ..s(Xlator::Siit) }),
        ('e', "trunc_data_15", "ATTR_DATA holding 15 bytes of the 16-byte request_hdr", L { cut: Some(15), ..s(Xlator::Siit) }),
        ('e', "no_data", "no ATTR_DATA", L { cut: Some(usize::MAX), ..s(Xlator::Siit) }),
        ('f', "instance_test_default", "instance TEST (hello) default", L { mode: 0, op: ConfigOp::Test.into(), ..s(Xlator::Siit) }),
        ('f', "instance_foreach_siit", "instance FOREACH", L { mode: 0, ..s(Xlator::Siit) }),
        ('f', "cmd_1", "genl cmd 1 (only JOOL_COMMAND=0 exists)", L { cmd: 1, ..s(Xlator::Siit) }),
    ];
    for (g, name, desc, l) in cases {
        let r = l.build(b);
        b.add(g, name, desc, r);
    }
    let r = b.nlmsg(
        b.fam.siit,
        F_REQUEST,
        &genlhdr(legacy::JOOL_COMMAND, 1),
        None,
    );
    b.add('e', "trunc_genl_only", "genl header only, no attributes", r);
    b.add('e', "send_zero_length", "zero-length datagram", Vec::new());
    let rm = L { mode: 0, op: ConfigOp::Remove.into(), ..s(Xlator::Siit) };
    let add = L { mode: 0, op: ConfigOp::Add.into(), ..s(Xlator::Siit) };
    let fw = if b.p.is_before("4.0.6") { 1 } else { 1 << 2 };
    for (name, desc, l) in [
        (
            "instance_add_conftest",
            "instance ADD conftest, netfilter",
            L { body: [vec![fw], pad_name(b"conftest")].concat(), ..add },
        ),
        (
            "instance_rm_conftest",
            "instance REMOVE conftest",
            L { body: pad_name(b"conftest"), ..rm.clone() },
        ),
    ] {
        let r = l.build(b);
        b.add('g', name, desc, r);
    }
    if with_rm {
        let r = L { body: pad_name(b"default"), ..rm }.build(b);
        b.add('z', "instance_rm_default", "instance REMOVE default", r);
        let r = s(Xlator::Siit).build(b);
        b.add(
            'z',
            "stats_siit_after_rm",
            "stats foreach after the instance was removed",
            r,
        );
    }
}

/// A 16-byte NUL-padded instance name (`INAME_MAX_SIZE`).
fn pad_name(n: &[u8]) -> Vec<u8> {
    let mut v = n.to_vec();
    v.resize(INAME_LEN, 0);
    v
}

/// `MODE_STATS` of a 4.0.x release (`MODE_ADDRESS` came in 4.0.5).
fn legacy_stats_mode(p: &Profile) -> u8 {
    if p.is_before("4.0.5") {
        1
    } else {
        2
    }
}

/// One 4.0.x request: family of `xlator`, genl `cmd`, `ATTR_INAME`,
/// `ATTR_DATA` = `request_hdr` (+ `body`), cut to `cut` bytes
/// (`usize::MAX`: no `ATTR_DATA`).
#[derive(Clone, Debug)]
struct L {
    xlator: Xlator,
    flags: u16,
    cmd: u8,
    mode: u8,
    op: u8,
    magic: [u8; 4],
    version: Option<u32>,
    iname: Option<Vec<u8>>,
    body: Vec<u8>,
    cut: Option<usize>,
}

impl Default for L {
    fn default() -> Self {
        Self {
            xlator: Xlator::Siit,
            flags: F_REQUEST,
            cmd: legacy::JOOL_COMMAND,
            mode: 0,
            op: 0,
            magic: *b"jool",
            version: None,
            iname: Some(b"default\0".to_vec()),
            body: Vec::new(),
            cut: None,
        }
    }
}

impl L {
    fn build(&self, b: &mut Builder<'_>) -> Vec<u8> {
        let p = b.p;
        let b4 = match p.protocol {
            Protocol::Legacy(LegacyLayout::TypeChar) => [
                if self.xlator == Xlator::Siit { b's' } else { b'n' },
                b'u',
                0,
                0,
            ],
            Protocol::Legacy(LegacyLayout::NoType) => [b'u', 0, 0, 0],
            _ => [self.xlator.xt(), b'u', 0, 0],
        };
        let version = self.version.unwrap_or(p.wire_version);
        let mut data =
            legacy::request_bytes(b4, version, self.mode, self.op).to_vec();
        data[..4].copy_from_slice(&self.magic);
        data.extend_from_slice(&self.body);
        let mut attrs = Vec::new();
        if let Some(n) = &self.iname {
            attrs.extend(nla(legacy::ATTR_INAME, n, None));
        }
        match self.cut {
            Some(usize::MAX) => {}
            Some(n) => attrs.extend(nla(
                legacy::ATTR_DATA,
                &data[..n.min(data.len())],
                None,
            )),
            None => attrs.extend(nla(legacy::ATTR_DATA, &data, None)),
        }
        let mut payload = genlhdr(self.cmd, 1).to_vec();
        payload.extend(attrs);
        let fam = if self.xlator == Xlator::Nat64 {
            b.fam.nat64
        } else {
            b.fam.siit
        };
        b.nlmsg(fam, self.flags, &payload, None)
    }
}

#[cfg(test)]
mod test {
    use super::*;
    use jool_sim::wire::hex;

    fn corpus(file: &str) -> serde_json::Value {
        let p =
            crate::vm::default_fixtures().join("conformance-4.1.9").join(file);
        serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
    }

    /// The generalized requests of 4.1.9 are the corpus's, byte for
    /// byte, same names, same order, same sequence numbers.
    #[test]
    fn test_4_1_9_requests_are_the_corpus_requests() {
        let p = Profile::get("4.1.9").unwrap();
        for (file, with_rm) in [("root.json", false)] {
            let doc = corpus(file);
            let fam = doc["jool_family_id"].as_u64().unwrap() as u16;
            let ours = requests(p, Families::one(fam), with_rm);
            let theirs = doc["requests"].as_array().unwrap();
            assert!(theirs.len() >= 91);
            let ours: Vec<&Request> =
                ours.iter().filter(|r| r.group != 'i').collect();
            assert_eq!(ours.len(), theirs.len());
            for (o, t) in ours.iter().zip(theirs) {
                assert_eq!(o.name, t["name"].as_str().unwrap());
                assert_eq!(
                    hex::encode(&o.datagram),
                    t["request_hex"].as_str().unwrap(),
                    "{}",
                    o.name
                );
                let seqs: Vec<u64> = t["seqs"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|s| s.as_u64().unwrap())
                    .collect();
                assert_eq!(
                    o.seqs.iter().map(|s| u64::from(*s)).collect::<Vec<_>>(),
                    seqs,
                    "{}",
                    o.name
                );
                assert_eq!(
                    o.ext_ack,
                    t["netlink_ext_ack"].as_bool().unwrap_or(false),
                    "{}",
                    o.name
                );
                assert_eq!(
                    o.group.to_string(),
                    t["group"].as_str().unwrap(),
                    "{}",
                    o.name
                );
            }
        }
    }

    #[test]
    fn test_every_release_has_a_request_set() {
        for p in Profile::all() {
            let r = requests(p, Families::one(0x20), true);
            assert!(r.len() >= 20, "{}: {}", p.release, r.len());
            let mut names: Vec<&str> =
                r.iter().map(|r| r.name.as_str()).collect();
            names.sort_unstable();
            names.dedup();
            assert_eq!(names.len(), r.len(), "{}: duplicate names", p.release);
            assert!(r.iter().any(|x| x.group == 'z'));
        }
    }

    #[test]
    fn test_mapt_numbering_moves_the_offset_and_operand() {
        let p = Profile::get("4.2.0-rc3").unwrap();
        let r = requests(p, Families::one(0x20), false);
        let off = r.iter().find(|r| r.name == "stats_offset_30").unwrap();
        // nlmsghdr 16 + genl 4 + joolnlhdr 28, then type 10 (OFFSET_U8).
        assert_eq!(&off.datagram[48..52], [5, 0, 10, 0]);
        assert!(r.iter().any(|r| r.name == "stats_attr_type_15"));
        let past = r.iter().find(|r| r.name == "cmd_past_last").unwrap();
        assert_eq!(past.datagram[16], 34);
    }
}
