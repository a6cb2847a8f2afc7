//! Jool 4.0.0 – 4.0.7: one genl command (`JOOL_COMMAND`), no attribute
//! policy, `request_hdr` inside `ATTR_DATA`, replies in one `ATTR_DATA`
//! holding a `response_hdr` and the payload (docs/kernel-facts.md, part 3).
//!
//! Checks, in `__handle_jool_message`'s order: `ATTR_DATA` present (raw
//! `EINVAL`), `CAP_NET_ADMIN` (always), header length and magic (raw
//! `EINVAL`), translator type (per layout), exact version, then the
//! instance lookup and the mode/operation dispatch.

use super::{
    jool::version_mismatch,
    netlink::{
        self, Policy, Reject, Validate, EEXIST, EINVAL, EOPNOTSUPP, EPERM,
        ESRCH,
    },
    state::{iname_valid, Framework, Xlator},
    Caller, Family, Kernel,
};
use crate::{
    versions::{LegacyLayout, Protocol},
    wire::{
        genl,
        legacy::{ConfigOp, RequestHdr, ATTR_DATA, ATTR_INAME, REQUEST_LEN},
        nlmsg::{self, Packet},
    },
};

/// `MODE_INSTANCE`.
const MODE_INSTANCE: u8 = 0;

/// A Jool-level failure: errno and text (sent in a response_hdr).
struct Failure(i32, String);

/// How many bytes past `request_hdr` a handler may read: more than
/// `union request_instance` holds (40 bytes in every 4.0.x).
const BODY_READ: usize = 64;

/// What the handler decided.
enum Outcome {
    /// A reply: response_hdr with this error code, then this payload.
    Reply(u16, Vec<u8>),
    /// A listing's reply: error code 0, `pending_data` as given (more
    /// entries than fit), then this payload.
    Listing(bool, Vec<u8>),
    /// Returned to genetlink: a plain `NLMSG_ERROR`.
    Raw(i32),
}

pub(super) fn rcv(
    k: &mut Kernel,
    caller: &Caller,
    family: Family,
    msg: &[u8],
    out: &mut Vec<Vec<u8>>,
) -> Result<(), Reject> {
    let hdrlen = nlmsg::HEADER_LEN + genl::HEADER_LEN;
    if msg.len() < hdrlen {
        return Err(Reject::plain(EINVAL));
    }
    netlink::genl_header_check(msg)?;
    let p = Packet::new_unchecked(msg);
    if msg[nlmsg::HEADER_LEN] != 0
        || p.flags() & nlmsg::F_DUMP == nlmsg::F_DUMP
    {
        return Err(Reject::plain(EOPNOTSUPP));
    }
    // No policy: only the type range and trailing bytes are checked.
    let policy = [
        Policy::Unspec,
        Policy::Binary(0),
        Policy::Binary(0),
        Policy::Binary(0),
    ];
    let attrs = netlink::parse_attrs(msg, hdrlen, &policy, Validate::Strict)?;
    let Some(data) = attrs.get(msg, ATTR_DATA) else {
        return Err(Reject::plain(EINVAL));
    };
    let iname = attrs.get(msg, ATTR_INAME);
    let body = skb_body(msg, attrs.value_offset(ATTR_DATA));
    let req = Req { data, body: &body, iname };
    let (code, pending, payload) = match handle(k, caller, family.xlator, req)
    {
        Outcome::Raw(errno) => return Err(Reject::plain(errno)),
        Outcome::Reply(code, payload) => (code, false, payload),
        Outcome::Listing(pending, payload) => (0, pending, payload),
    };
    let mode = data.get(12).copied().unwrap_or(0);
    let mut w = netlink::begin(family.id, 0, p.seq(), caller.port_id, mode, 1);
    let mut value = response_hdr(k, data, code);
    value[18] = u8::from(pending);
    value.extend_from_slice(&payload);
    w.attr(ATTR_DATA, &value);
    out.push(netlink::finish(w));
    Ok(())
}

/// What a handler reads of a request.
#[derive(Clone, Copy)]
struct Req<'a> {
    /// `ATTR_DATA`'s value (`request_hdr` first).
    data: &'a [u8],
    /// The bytes after `request_hdr`, as the handlers read them
    /// ([`skb_body`]).
    body: &'a [u8],
    /// `ATTR_INAME`'s value.
    iname: Option<&'a [u8]>,
}

/// What `(union request_instance *)(hdr + 1)` points at: the handlers
/// read the union whatever `ATTR_DATA`'s length (no check in 4.0.x), so
/// past a short `ATTR_DATA` they read the message's next bytes (a later
/// attribute, padding), then the skb's tailroom: zeros, Debian's
/// kernels being built with `CONFIG_INIT_ON_ALLOC_DEFAULT_ON=y` (the
/// real 4.0.4 – 4.0.7 answer a bodiless OP_TEST with "dead", the empty
/// name's answer). Limit: in a datagram of several messages the real
/// read runs on into the next message; here it reads zeros.
fn skb_body(msg: &[u8], data_at: Option<usize>) -> Vec<u8> {
    let from = data_at.map_or(msg.len(), |o| o + REQUEST_LEN);
    let mut body = msg.get(from..).unwrap_or_default().to_vec();
    if body.len() < BODY_READ {
        body.resize(BODY_READ, 0);
    }
    body
}

/// The 20-byte `response_hdr`: the request header with castness forced to
/// 'u', the error code, `pending_data` 0 and a zero pad byte.
fn response_hdr(k: &Kernel, data: &[u8], code: u16) -> Vec<u8> {
    let mut h = vec![0u8; REQUEST_LEN];
    let n = data.len().min(REQUEST_LEN);
    h[..n].copy_from_slice(&data[..n]);
    let castness_at = match k.profile().protocol {
        Protocol::Legacy(LegacyLayout::NoType) => 4,
        _ => 5,
    };
    h[castness_at] = b'u';
    h.extend_from_slice(&code.to_le_bytes());
    h.extend_from_slice(&[0, 0]);
    h
}

fn handle(
    k: &mut Kernel,
    caller: &Caller,
    family_xlator: Option<Xlator>,
    req: Req<'_>,
) -> Outcome {
    match checks(k, caller, family_xlator, req.data) {
        Ok(Ok(x)) => {
            dispatch(k, caller, x, req).unwrap_or_else(|f| fail(k, f))
        }
        Ok(Err(f)) => fail(k, f),
        Err(raw) => Outcome::Raw(raw),
    }
}

/// An error reply whose payload is the logged text plus its NUL (each
/// text with a trailing newline in 4.0.0 – 4.0.5).
fn fail(k: &mut Kernel, Failure(errno, msg): Failure) -> Outcome {
    if !msg.is_empty() {
        k.log_err(&msg);
    }
    let newline = k.profile().is_before("4.0.6");
    let mut payload = msg.into_bytes();
    if newline && !payload.is_empty() {
        payload.push(b'\n');
    }
    payload.push(0);
    Outcome::Reply(
        errno.unsigned_abs().min(u32::from(u16::MAX)) as u16,
        payload,
    )
}

/// Privilege, header, type and version. `Err` is a raw errno; `Ok(Err)` a
/// Jool error reply; `Ok(Ok)` the translator the request is for.
#[allow(clippy::type_complexity)]
fn checks(
    k: &Kernel,
    caller: &Caller,
    family_xlator: Option<Xlator>,
    data: &[u8],
) -> Result<Result<Xlator, Failure>, i32> {
    let prof = k.profile();
    if !caller.net_admin {
        return Ok(Err(Failure(EPERM, prof.cap_error_text().to_owned())));
    }
    let Ok(h) = RequestHdr::new_checked(data) else { return Err(EINVAL) };
    if h.magic() != *b"jool" {
        return Err(EINVAL);
    }
    let xlator = match prof.protocol {
        Protocol::Legacy(LegacyLayout::Xt) => match Xlator::from_xt(h.byte4())
        {
            Some(x) if k.loaded(x) => x,
            Some(Xlator::Siit) => return Ok(Err(modprobe(Xlator::Siit))),
            Some(Xlator::Nat64) => return Ok(Err(modprobe(Xlator::Nat64))),
            None => {
                let m = "The instance type must be either SIIT or NAT64.";
                return Ok(Err(Failure(EINVAL, m.to_owned())));
            }
        },
        Protocol::Legacy(LegacyLayout::TypeChar) => {
            let module = family_xlator.unwrap_or(Xlator::Siit);
            match (h.byte4(), module) {
                (b's', Xlator::Siit) | (b'n', Xlator::Nat64) => module,
                (b's' | b'n', _) => return Ok(Err(type_mismatch(h.byte4()))),
                (c, _) => {
                    let m = format!(
                        "The userspace client sent a packet with an unknown stateness: '{}'",
                        c as char
                    );
                    return Ok(Err(Failure(EINVAL, m)));
                }
            }
        }
        _ => family_xlator.unwrap_or(Xlator::Siit),
    };
    if !prof.kernel_accepts(h.version()) {
        return Ok(Err(Failure(
            EINVAL,
            version_mismatch(h.version(), prof.wire_version),
        )));
    }
    Ok(Ok(xlator))
}

fn modprobe(x: Xlator) -> Failure {
    let m = match x {
        Xlator::Siit => {
            "SIIT Jool has not been modprobed. (Try `modprobe jool_siit`)"
        }
        Xlator::Nat64 => {
            "NAT64 Jool has not been modprobed. (Try `modprobe jool`)"
        }
    };
    Failure(EINVAL, m.to_owned())
}

fn type_mismatch(sent: u8) -> Failure {
    let (client, kernel) =
        if sent == b's' { ("SIIT", "NAT64") } else { ("NAT64", "SIIT") };
    Failure(
        EINVAL,
        format!("The userspace client is {client} but the kernel module is {kernel}. Please match us correctly."),
    )
}

/// Instance lookup, then `MODE_STATS`/`OP_FOREACH`.
fn dispatch(
    k: &mut Kernel,
    caller: &Caller,
    xlator: Xlator,
    req: Req<'_>,
) -> Result<Outcome, Failure> {
    let (mode, op) = (req.data[12], req.data[13]);
    if mode == MODE_INSTANCE {
        return instance(k, caller, xlator, op, req.body);
    }
    let name = lookup(k, caller, xlator, req.iname)?;
    let stats_mode = if k.profile().is_before("4.0.5") { 1 } else { 2 };
    if mode != stats_mode {
        // Other configuration modes exist in the real module; the
        // simulator only serves the stats path.
        return Err(Failure(
            EINVAL,
            format!("Unknown configuration mode: {mode}"),
        ));
    }
    if op != u8::from(ConfigOp::Foreach) {
        return Err(Failure(EINVAL, format!("Unknown operation: {op}")));
    }
    let inst =
        k.instance(caller.netns, xlator, &name).map(|i| i.counters.clone());
    let counters = inst.unwrap_or_default();
    let payload = counters.iter().flat_map(|c| c.to_le_bytes()).collect();
    Ok(Outcome::Reply(0, payload))
}

/// `get_iname()` ("default" without `ATTR_INAME`), validated and found.
fn lookup(
    k: &Kernel,
    caller: &Caller,
    xlator: Xlator,
    iname: Option<&[u8]>,
) -> Result<String, Failure> {
    let raw = iname.unwrap_or(b"default\0");
    if !iname_valid(raw) {
        let mut m = "The instance name must be a null-terminated ascii string, 15 characters max."
            .to_owned();
        if k.profile().is_before("4.0.4") {
            m.push_str("\nUnknown error -22; Jool instance not found.");
        }
        return Err(Failure(EINVAL, m));
    }
    let end = raw.iter().position(|&b| b == 0).unwrap_or(raw.len());
    let name = super::state::name_from_bytes(&raw[..end]);
    if k.instance(caller.netns, xlator, &name).is_none() {
        return Err(Failure(
            ESRCH,
            format!("This namespace lacks an instance named '{name}'."),
        ));
    }
    Ok(name)
}

/// `MODE_INSTANCE`: add, remove, flush, hello (4.0.4+).
fn instance(
    k: &mut Kernel,
    caller: &Caller,
    xlator: Xlator,
    op: u8,
    body: &[u8],
) -> Result<Outcome, Failure> {
    let iname_at = |off: usize| -> Result<String, Failure> {
        let raw = body.get(off..).unwrap_or_default();
        if !iname_valid(raw) {
            let m = "The instance name must be a null-terminated ascii string, 15 characters max.";
            return Err(Failure(EINVAL, m.to_owned()));
        }
        let end = raw.iter().position(|&b| b == 0).unwrap_or(0);
        Ok(super::state::name_from_bytes(&raw[..end]))
    };
    let hello = !k.profile().is_before("4.0.4");
    match ConfigOp::try_from(op) {
        Ok(ConfigOp::Foreach) => super::legacy_list::foreach(k, xlator, body)
            .map(|(pending, payload)| Outcome::Listing(pending, payload))
            .ok_or_else(|| Failure(ESRCH, String::new())),
        Ok(ConfigOp::Add) => {
            let name = iname_at(1)?;
            let fw = body.first().copied().unwrap_or(0);
            let framework = legacy_framework(k, fw).ok_or_else(|| {
                let m = "The instance framework must be either Netfilter or iptables.";
                Failure(EINVAL, m.to_owned())
            })?;
            let pool6_set = body.get(20).copied().unwrap_or(0) != 0;
            if xlator == Xlator::Nat64 && !pool6_set {
                return Err(Failure(
                    EINVAL,
                    "pool6 is mandatory in NAT64 instances.".to_owned(),
                ));
            }
            super::jool::check_add(k, caller.netns, xlator, &name, framework)
                .map_err(|m| Failure(EEXIST, m))?;
            let pool6 = pool6_set.then(|| {
                let mut a = [0u8; 16];
                if let Some(src) = body.get(24..40) {
                    a.copy_from_slice(src);
                }
                (a, body.get(40).copied().unwrap_or(0))
            });
            k.insert_instance(caller.netns, xlator, &name, framework, pool6);
            Ok(Outcome::Reply(0, vec![]))
        }
        Ok(ConfigOp::Remove) => {
            let name = iname_at(0)?;
            k.remove_instance(caller.netns, xlator, &name).map_err(|_| {
                Failure(
                    ESRCH,
                    "The requested instance does not exist.".to_owned(),
                )
            })?;
            Ok(Outcome::Reply(0, vec![]))
        }
        Ok(ConfigOp::Flush) => {
            if let Some(ns) = k.namespaces.get_mut(&caller.netns) {
                ns.instances.retain(|(x, _), _| *x != xlator);
            }
            Ok(Outcome::Reply(0, vec![]))
        }
        Ok(ConfigOp::Test) if hello => {
            // xlator_find: iname_validate, then the lookup (ESRCH: dead).
            let name = iname_at(0)?;
            let alive = k.instance(caller.netns, xlator, &name).is_some();
            Ok(Outcome::Reply(0, vec![u8::from(!alive)]))
        }
        _ => Err(Failure(EINVAL, format!("Unknown operation: {op}"))),
    }
}

/// The framework a request's byte names ([`Framework::listed_by`]: FW
/// 1/2 in 4.0.0 – 4.0.5, XF 4/8 in 4.0.6+).
fn legacy_framework(k: &Kernel, v: u8) -> Option<Framework> {
    [Framework::Netfilter, Framework::Iptables]
        .into_iter()
        .find(|f| f.listed_by(k.profile()) == v)
}
