//! [`SimClient`]: the fuzz bodies' own client of the simulated kernel.
//!
//! Requests are built by hand for any release (the sim must not depend on
//! the harness's client), and every reply goes through [`Checker`]. Besides
//! the per-reply checks, each message sent must keep these promises:
//!
//! - a message answered with an error leaves the instances as they were;
//! - a caller without `CAP_NET_ADMIN` never changes them;
//! - a `STATS_FOREACH` page holds the instance's counters from the
//!   request's offset + 1 on, consecutive, and sets the M flag exactly when
//!   the next counter would not have fit.

use crate::kernel::Prefix6;
use std::collections::BTreeMap;

use super::oracle::{Checker, Reply};
use crate::requests::{
    add_operand, jool_request, legacy_op, legacy_request, legacy_stats_mode,
    op, Frame, MAX_PAGES,
};
use crate::{
    kernel::{Caller, Kernel, Netns, NetnsId, Xlator},
    wire::{
        genl,
        jool::{self, FLAG_M, INAME_LEN},
        nla::{NlasIterator, Writer, F_NESTED, TYPE_MASK},
        nlmsg::{self, Messages},
    },
};

/// What a successful call returned: header flags (0 for 4.0.x) and the
/// attributes (the payload after `response_hdr` for 4.0.x).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Answer {
    /// Jool header flags (4.0.x: `FLAG_M` for `pending_data`).
    pub flags: u8,
    /// Attributes or payload.
    pub body: Vec<u8>,
}

/// One socket of a caller on the simulated kernel.
#[derive(Debug)]
pub struct SimClient<'k> {
    k: &'k mut Kernel,
    caller: Caller,
    budget: usize,
    seq: u32,
    /// Instances known without a copy (the cached kernel a fuzz body
    /// started from).
    baseline: Option<&'static Namespaces>,
    /// The instances as they were before the message being sent: the
    /// baseline or a copy, kept from one message to the next while they
    /// stay the same.
    snapshot: Snapshot,
    /// Whether the kernel is known to still hold `snapshot`'s instances
    /// (nothing changed them since they were compared or copied).
    fresh: bool,
}

/// What [`Kernel::namespaces`] returns.
type Namespaces = BTreeMap<NetnsId, Netns>;

/// The instances before a message: the baseline, or a copy.
#[derive(Debug)]
enum Snapshot {
    None,
    Baseline(&'static Namespaces),
    Copy(Namespaces),
}

impl Snapshot {
    fn matches(&self, k: &Kernel) -> bool {
        match self {
            Self::None => false,
            Self::Baseline(b) => k.namespaces() == *b,
            Self::Copy(c) => k.namespaces() == c,
        }
    }
}

impl<'k> SimClient<'k> {
    /// A socket of `caller` on `k`, whose budget is `budget`.
    pub fn new(k: &'k mut Kernel, caller: Caller, budget: usize) -> Self {
        Self {
            k,
            caller,
            budget,
            seq: 0,
            baseline: None,
            snapshot: Snapshot::None,
            fresh: false,
        }
    }

    /// Tells the client the kernel is a fresh copy of `baseline` (a kernel
    /// that lives as long as the program), to save copies of its
    /// instances.
    pub fn with_baseline(mut self, baseline: &'static Kernel) -> Self {
        let b = baseline.namespaces();
        self.baseline = Some(b);
        self.snapshot = Snapshot::Baseline(b);
        self.fresh = true;
        self
    }

    /// Makes the snapshot hold the kernel's instances as they are now:
    /// the one already held if it still matches, else the baseline if it
    /// does, else a copy.
    fn take_snapshot(&mut self) {
        if self.fresh || self.snapshot.matches(self.k) {
            self.fresh = true;
            return;
        }
        self.snapshot = match self.baseline {
            Some(b) if self.k.namespaces() == b => Snapshot::Baseline(b),
            _ => Snapshot::Copy(self.k.namespaces().clone()),
        };
        self.fresh = true;
    }

    /// The kernel.
    pub fn kernel(&self) -> &Kernel {
        self.k
    }

    /// The kernel, to change it behind the client's back.
    pub fn kernel_mut(&mut self) -> &mut Kernel {
        self.fresh = false;
        self.k
    }

    /// Changes the budget the replies are checked against (call
    /// `set_msg_budget` on the kernel too).
    pub fn set_budget(&mut self, budget: usize) {
        self.budget = budget;
    }

    /// Changes who sends.
    pub fn set_caller(&mut self, caller: Caller) {
        self.caller = caller;
    }

    /// Sends a datagram as is; returns the checked replies, in order.
    pub fn send(&mut self, datagram: &[u8]) -> Vec<Vec<u8>> {
        let mut replies = Vec::new();
        for msg in Messages::new(datagram) {
            replies.extend(self.send_message(msg.message()));
        }
        replies
    }

    /// Sends one message; checks each reply, the stats pages, and that
    /// the instances stay as they were when a reply reports an error or
    /// the caller lacks `CAP_NET_ADMIN` (message by message, so also
    /// over a whole datagram).
    fn send_message(&mut self, msg: &[u8]) -> Vec<Vec<u8>> {
        self.exchange(msg, |_| ()).0
    }

    /// [`SimClient::send_message`], then `then` on the checked replies.
    fn exchange<T>(
        &mut self,
        msg: &[u8],
        then: impl FnOnce(&[Reply<'_>]) -> T,
    ) -> (Vec<Vec<u8>>, T) {
        self.take_snapshot();
        let replies = self.k.handle(&self.caller, msg);
        let checker = Checker::new(self.k, self.caller, self.budget);
        let checked: Vec<Reply<'_>> =
            replies.iter().map(|r| checker.check(msg, r)).collect();
        let mut failed = false;
        for (reply, r) in checked.iter().zip(&replies) {
            failed |= reply.is_error();
            if let Reply::Jool { header, attrs, error: false } = reply {
                self.check_stats_page(msg, header, attrs, r.len());
            }
        }
        if failed || !self.caller.net_admin {
            let kept = self.snapshot.matches(self.k);
            assert!(
                kept || self.caller.net_admin,
                "an unprivileged caller changed the instances"
            );
            assert!(kept, "an error reply changed the instances");
        } else {
            // A success may have changed the instances.
            self.fresh = false;
        }
        let out = then(&checked);
        drop(checked);
        (replies, out)
    }

    /// A `STATS_FOREACH` page: the counters after the offset, in order,
    /// with the values the instance holds, as many as the budget allows.
    fn check_stats_page(
        &self,
        msg: &[u8],
        header: &jool::Repr,
        attrs: &[u8],
        len: usize,
    ) {
        let prof = self.k.profile();
        if msg.get(nlmsg::HEADER_LEN) != Some(&op::STATS_FOREACH) {
            return;
        }
        let x = Xlator::from_xt(header.xt)
            .expect("a stats page for no translator");
        let name = match header.iname_str() {
            Some([]) => "default".to_owned(),
            Some(n) => String::from_utf8_lossy(n).into_owned(),
            None => panic!("a stats page for an unterminated name"),
        };
        let inst = self
            .k
            .instance(self.caller.netns, x, &name)
            .expect("a stats page for no instance");
        let at = nlmsg::HEADER_LEN + genl::HEADER_LEN + header.buffer_len();
        let offset = NlasIterator::new(&msg[at..])
            .map_while(Result::ok)
            .filter(|a| a.raw_kind() & TYPE_MASK == prof.offset_u8_attr())
            .last()
            .map_or(0, |a| a.value()[0]);
        let mut next = u16::from(offset) + 1;
        for a in NlasIterator::new(attrs) {
            let a = a.expect("stats attributes parse");
            assert_eq!(
                (a.raw_kind(), a.value().len()),
                (next, 8),
                "stats page: counter {next}"
            );
            let value =
                u64::from_le_bytes(a.value().try_into().expect("8 bytes"));
            assert_eq!(
                value,
                inst.counters[usize::from(next)],
                "stats page: value of {next}"
            );
            next += 1;
        }
        let (sent, last) = (next - u16::from(offset) - 1, next - 1);
        // The reply echoes the request's flags (but 4.2.0-rc2, rc3): an M
        // the request had tells nothing.
        let flags_at = nlmsg::HEADER_LEN
            + genl::HEADER_LEN
            + header.layout.flags_offset();
        if !prof.zero_reply_flags && msg[flags_at] & FLAG_M != 0 {
            return;
        }
        if header.flags & FLAG_M != 0 {
            assert!(
                sent > 0 && last < prof.max_id,
                "M flag after counter {last}"
            );
            assert!(
                len + 12 > self.budget,
                "M flag but room for counter {next}"
            );
        } else {
            assert!(
                last >= prof.max_id,
                "no M flag after counter {last} of {}",
                prof.max_id
            );
        }
    }

    /// 4.0.x `MODE_INSTANCE`/`OP_FOREACH`: pages of `instance_entry_usr`,
    /// each further request naming the last entry received as its offset
    /// (`offset_set`, then the entry at byte 8), until `pending_data` is
    /// clear.
    fn legacy_foreach(
        &mut self,
        x: Xlator,
    ) -> Result<Vec<(u32, u8, Vec<u8>)>, i32> {
        use crate::wire::legacy::INSTANCE_ENTRY_LEN as ENTRY;
        let mut out = Vec::new();
        let mut body = Vec::new();
        for _ in 0..4096 {
            let a = self.legacy(x, (0, legacy_op::FOREACH), None, &body)?;
            assert_eq!(a.body.len() % ENTRY, 0, "instance listing length");
            for e in a.body.chunks_exact(ENTRY) {
                let tag = u32::from_le_bytes([e[0], e[1], e[2], e[3]]);
                let name = &e[9..25];
                let end = name.iter().position(|&b| b == 0);
                let end = end.expect("an instance name without its NUL");
                out.push((tag, e[8], name[..end].to_vec()));
                body = [&[1, 0, 0, 0, 0, 0, 0, 0][..], e].concat();
            }
            if a.flags & FLAG_M == 0 {
                return Ok(out);
            }
            assert!(!a.body.is_empty(), "pending_data on an empty page");
        }
        panic!("4.0.x instance listing does not end after 4096 pages")
    }

    fn next_seq(&mut self) -> u32 {
        self.seq = self.seq.wrapping_add(1);
        self.seq
    }

    /// The family serving `x` (a made-up id when it is not registered).
    fn family(&self, x: Xlator) -> u16 {
        let families = self.k.families();
        let f = families.iter().find(|f| f.xlator.is_none_or(|fx| fx == x));
        f.map_or(0x20 + u16::from(x == Xlator::Nat64), |f| f.id)
    }

    /// Sends one request message; expects one reply.
    fn call(&mut self, msg: &[u8]) -> Result<Answer, i32> {
        let answer = |checked: &[Reply<'_>]| {
            let [reply] = checked else {
                panic!("{} replies to one request", checked.len())
            };
            answer(*reply)
        };
        self.exchange(msg, answer).1
    }

    fn jool(
        &mut self,
        cmd: u8,
        x: Xlator,
        iname: [u8; INAME_LEN],
        attrs: &[u8],
    ) -> Result<Answer, i32> {
        let (family, seq) = (self.family(x), self.next_seq());
        let msg = jool_request(
            self.k.profile(),
            family,
            seq,
            cmd,
            x.xt(),
            iname,
            attrs,
        );
        self.call(&msg)
    }

    fn legacy(
        &mut self,
        x: Xlator,
        mode_op: (u8, u8),
        iname: Option<&[u8]>,
        body: &[u8],
    ) -> Result<Answer, i32> {
        let (family, seq) = (self.family(x), self.next_seq());
        let msg = legacy_request(
            self.k.profile(),
            family,
            seq,
            x,
            mode_op,
            iname,
            body,
        );
        self.call(&msg)
    }

    /// Every counter of an instance, across as many pages as it takes:
    /// `(id, value)` in the order received.
    pub fn stats(
        &mut self,
        x: Xlator,
        iname: [u8; INAME_LEN],
    ) -> Result<Vec<(u16, u64)>, i32> {
        let prof = self.k.profile();
        if prof.is_legacy() {
            let mode = (legacy_stats_mode(prof), legacy_op::FOREACH);
            let a = self.legacy(x, mode, Some(&iname), &[])?;
            assert_eq!(
                a.body.len() % 8,
                0,
                "legacy stats payload of {} bytes",
                a.body.len()
            );
            let values = a
                .body
                .chunks_exact(8)
                .map(|c| u64::from_le_bytes(c.try_into().expect("8")));
            return Ok((0..).zip(values).collect());
        }
        let mut out: Vec<(u16, u64)> = Vec::new();
        for _ in 0..MAX_PAGES {
            let offset = out.last().map_or(0, |&(id, _)| id);
            let mut w = Writer::new();
            if offset > 0 {
                let offset = u8::try_from(offset)
                    .expect("checked: M flag below max_id");
                w.u8(prof.offset_u8_attr(), offset);
            }
            let a = self.jool(op::STATS_FOREACH, x, iname, w.as_slice())?;
            for attr in NlasIterator::new(&a.body).flatten() {
                out.push((
                    attr.kind(),
                    u64::from_le_bytes(attr.value().try_into().expect("8")),
                ));
            }
            if a.flags & FLAG_M == 0 {
                return Ok(out);
            }
        }
        panic!("stats pagination does not end after {MAX_PAGES} pages")
    }

    /// `instance add`: framework and optional pool6 (address, length).
    pub fn add(
        &mut self,
        x: Xlator,
        iname: [u8; INAME_LEN],
        frame: Frame,
        pool6: Option<Prefix6>,
    ) -> Result<(), i32> {
        let prof = self.k.profile();
        let xf = frame.byte(prof);
        if prof.is_legacy() {
            // add_instance body: framework, iname[16], pad, pool6 set, pad,
            // prefix address, prefix length.
            let mut body = vec![0; 41];
            body[0] = xf;
            body[1..17].copy_from_slice(&iname);
            if let Some((addr, len)) = pool6 {
                body[20] = 1;
                body[24..40].copy_from_slice(&addr);
                body[40] = len;
            }
            return self.legacy(x, (0, legacy_op::ADD), None, &body).map(drop);
        }
        let attrs = add_operand(prof, xf, pool6);
        self.jool(op::INSTANCE_ADD, x, iname, &attrs).map(drop)
    }

    /// `instance remove`.
    pub fn remove(
        &mut self,
        x: Xlator,
        iname: [u8; INAME_LEN],
    ) -> Result<(), i32> {
        if self.k.profile().is_legacy() {
            return self
                .legacy(x, (0, legacy_op::REMOVE), None, &iname)
                .map(drop);
        }
        self.jool(op::INSTANCE_RM, x, iname, &[]).map(drop)
    }

    /// `instance flush`.
    pub fn flush(&mut self, x: Xlator) -> Result<(), i32> {
        if self.k.profile().is_legacy() {
            return self.legacy(x, (0, legacy_op::FLUSH), None, &[]).map(drop);
        }
        self.jool(op::INSTANCE_FLUSH, x, [0; INAME_LEN], &[]).map(drop)
    }

    /// `INSTANCE_HELLO` (`OP_TEST` in 4.0.4 – 4.0.7): whether it exists.
    pub fn hello(
        &mut self,
        x: Xlator,
        iname: [u8; INAME_LEN],
    ) -> Result<bool, i32> {
        let body = if self.k.profile().is_legacy() {
            self.legacy(x, (0, legacy_op::TEST), None, &iname)?.body
        } else {
            let a = self.jool(op::INSTANCE_HELLO, x, iname, &[])?;
            let status =
                NlasIterator::new(&a.body).flatten().find(|a| a.kind() == 1);
            status.expect("hello status attribute").value().to_vec()
        };
        match body.as_slice() {
            [0] => Ok(true),
            [1] => Ok(false),
            other => panic!("hello status {other:?}"),
        }
    }

    /// `INSTANCE_FOREACH`: `(netns tag, framework, name)` of every
    /// instance of `x`, in every namespace (4.0.x: the low half of the
    /// namespace pointer, and `fw` or `xf`).
    pub fn foreach(
        &mut self,
        x: Xlator,
    ) -> Result<Vec<(u32, u8, Vec<u8>)>, i32> {
        if self.k.profile().is_legacy() {
            return self.legacy_foreach(x);
        }
        // Pages: each further request carries JNLAR_OFFSET, a nested copy
        // of the last entry received, until a reply lacks M.
        let offset_kind = match self.k.profile().numbering {
            crate::versions::Numbering::Jool41 => 8,
            crate::versions::Numbering::MapT => 9,
        };
        let mut out: Vec<(u32, u8, Vec<u8>)> = Vec::new();
        for _ in 0..4096 {
            let mut attrs = Writer::new();
            if let Some((ns, xf, name)) = out.last() {
                let at = attrs.begin_nest(offset_kind | F_NESTED);
                attrs.u32(1, *ns).u8(2, *xf).string(3, name);
                attrs.end_nest(at);
            }
            let before = out.len();
            let a = self.jool(
                op::INSTANCE_FOREACH,
                x,
                [0; INAME_LEN],
                attrs.as_slice(),
            )?;
            for entry in NlasIterator::new(&a.body).flatten() {
                let (mut ns, mut xf, mut name) = (None, None, None);
                for f in NlasIterator::new(entry.value()).flatten() {
                    match (f.kind(), f.value()) {
                        (1, v) => {
                            ns = v.try_into().ok().map(u32::from_le_bytes)
                        }
                        (2, [v]) => xf = Some(*v),
                        (3, [n @ .., 0]) => name = Some(n.to_vec()),
                        other => panic!("instance entry field {other:?}"),
                    }
                }
                match (ns, xf, name) {
                    (Some(ns), Some(xf), Some(name)) => {
                        out.push((ns, xf, name))
                    }
                    other => panic!("incomplete instance entry {other:?}"),
                }
            }
            if a.flags & FLAG_M == 0 {
                return Ok(out);
            }
            assert!(
                out.len() > before,
                "an instance page with M and no entry"
            );
        }
        panic!("instance display never ended");
    }
}

/// What a checked reply to a request of [`SimClient`] returns.
fn answer(reply: Reply<'_>) -> Result<Answer, i32> {
    match reply {
        Reply::Ack(errno) => {
            assert!(errno != 0, "an ack to a request without NLM_F_ACK");
            Err(errno)
        }
        Reply::Jool { error: true, attrs, .. } => {
            let code = NlasIterator::new(attrs)
                .flatten()
                .find(|a| a.kind() == jool::JNLAERR_CODE);
            let code =
                code.map(|a| u16::from_le_bytes([a.value()[0], a.value()[1]]));
            Err(i32::from(code.expect("checked: error reports have a code")))
        }
        Reply::Jool { header, attrs, .. } => {
            Ok(Answer { flags: header.flags, body: attrs.to_vec() })
        }
        Reply::Legacy { code: 0, payload, pending } => Ok(Answer {
            flags: if pending { FLAG_M } else { 0 },
            body: payload.to_vec(),
        }),
        Reply::Legacy { code, .. } => Err(i32::from(code)),
        other => panic!("{other:?} answering a Jool request"),
    }
}
