//! `sim_session`: a sequence of operations against one kernel with three
//! namespaces, checked after each against the [`Model`].
//!
//! Input: a release byte and a budget byte, then operations until the
//! bytes run out. Each operation is an opcode byte and its arguments; most
//! start with a "who" byte: bits 0-1 the namespace (1, 2, 3; 3 means 1),
//! bit 2 `CAP_NET_ADMIN`, bit 3 the translator (SIIT, NAT64).
//!
//! | op | operation                         | arguments                     |
//! |----|-----------------------------------|-------------------------------|
//! | 0  | `instance add`                    | who, name, framework, pool6   |
//! | 1  | `instance remove`                 | who, name                     |
//! | 2  | `instance flush`                  | who                           |
//! | 3  | `instance hello`                  | who, name                     |
//! | 4  | `stats display` (every page)      | who, name                     |
//! | 5  | `instance display`                | who                           |
//! | 6  | traffic: set a counter            | who, name, id (u16), value    |
//! | 7  | `modprobe`/`modprobe -r`          | bits 0-1: SIIT, NAT64 loaded  |
//! | 8  | change the budget                 | index into `BUDGETS`          |
//! | 9  | a raw datagram (then resync)      | who, length (u16), bytes      |
//!
//! Oracles: each operation succeeds exactly when the model says so, with
//! the model's answer; the instances equal the model's after each; stats
//! pagination returns every counter exactly once, in order; and the
//! [`SimClient`] checks on every message and reply.

use crate::{kernel::Prefix6, requests::Frame};
use std::collections::{BTreeMap, BTreeSet};

use super::{
    client::SimClient,
    model::{name_of, Key, Model},
    setup::{BUDGETS, NETNS, PORT_ID},
    Input,
};
use crate::{
    kernel::{Caller, Kernel, NetnsId, Xlator, INIT_NETNS},
    versions::Profile,
    wire::jool::INAME_LEN,
};

/// Most operations a session runs.
const MAX_OPS: usize = 64;

/// Instance names a session uses, NUL-padded: valid ones first, then two
/// the kernel rejects (a control character, no NUL in 16 bytes).
pub const NAMES: [&[u8; INAME_LEN]; 7] = [
    b"default\0\0\0\0\0\0\0\0\0",
    b"\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0",
    b"a\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0",
    b"nat-01\0\0\0\0\0\0\0\0\0\0",
    b"0123456789abcde\0",
    b"bad\x01name\0\0\0\0\0\0\0\0",
    b"0123456789abcdef",
];

/// Frameworks a session uses.
const FRAMES: [Frame; 5] = [
    Frame::Netfilter,
    Frame::Iptables,
    Frame::Invalid(0),
    Frame::Invalid(12),
    Frame::Invalid(5),
];

/// pool6 prefixes a session uses (the third has a bad length).
const POOL6S: [Option<Prefix6>; 4] = [
    None,
    Some(([0, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], 96)),
    Some(([0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], 64)),
    Some(([0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], 33)),
];

/// One operation of a session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op<'a> {
    /// `instance add`.
    Add(Who, usize, Frame, Option<Prefix6>),
    /// `instance remove`.
    Remove(Who, usize),
    /// `instance flush`.
    Flush(Who),
    /// `instance hello`.
    Hello(Who, usize),
    /// `stats display`.
    Stats(Who, usize),
    /// `instance display`.
    Foreach(Who),
    /// Traffic: counter `id` of an instance becomes `value`.
    Counter(Who, usize, u16, u64),
    /// Loaded modules (SIIT, NAT64).
    Modules(bool, bool),
    /// Budget.
    Budget(usize),
    /// A datagram sent as is.
    Raw(Who, &'a [u8]),
}

/// Who sends an operation, and for which translator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Who {
    /// The caller's namespace.
    pub netns: NetnsId,
    /// `CAP_NET_ADMIN`.
    pub admin: bool,
    /// The translator.
    pub xlator: Xlator,
}

impl Who {
    fn decode(input: &mut Input<'_>) -> Self {
        let b = input.u8();
        let netns = NETNS[usize::from(b & 3) % NETNS.len()];
        let xlator = if b & 8 == 0 { Xlator::Siit } else { Xlator::Nat64 };
        Self { netns, admin: b & 4 != 0, xlator }
    }

    /// The byte [`Who`] is read from.
    pub fn encode(self) -> u8 {
        let ns =
            NETNS.iter().position(|&n| n == self.netns).unwrap_or(0) as u8;
        ns | u8::from(self.admin) << 2
            | u8::from(self.xlator == Xlator::Nat64) << 3
    }

    fn key(self) -> (NetnsId, bool, Xlator) {
        (self.netns, self.admin, self.xlator)
    }

    fn caller(self) -> Caller {
        Caller {
            netns: self.netns,
            net_admin: self.admin,
            port_id: PORT_ID,
            ext_ack: false,
        }
    }
}

impl<'a> Op<'a> {
    /// Reads one operation.
    pub fn decode(input: &mut Input<'a>) -> Self {
        let name = |i: &mut Input<'_>| i.below(NAMES.len());
        match input.below(10) {
            0 => Self::Add(
                Who::decode(input),
                name(input),
                *input.pick(&FRAMES),
                *input.pick(&POOL6S),
            ),
            1 => Self::Remove(Who::decode(input), name(input)),
            2 => Self::Flush(Who::decode(input)),
            3 => Self::Hello(Who::decode(input), name(input)),
            4 => Self::Stats(Who::decode(input), name(input)),
            5 => Self::Foreach(Who::decode(input)),
            6 => Self::Counter(
                Who::decode(input),
                name(input),
                input.u16(),
                input.u64(),
            ),
            7 => {
                let b = input.u8();
                Self::Modules(b & 1 == 0, b & 2 == 0)
            }
            8 => Self::Budget(input.below(BUDGETS.len())),
            _ => Self::Raw(Who::decode(input), input.long_chunk()),
        }
    }

    /// The bytes [`Op::decode`] reads this operation from.
    pub fn encode(&self) -> Vec<u8> {
        let pos = |items: &[Frame], f: &Frame| {
            items.iter().position(|x| x == f).unwrap_or(0) as u8
        };
        let pool = |p| POOL6S.iter().position(|x| *x == p).unwrap_or(0) as u8;
        match *self {
            Self::Add(w, n, f, p) => {
                vec![0, w.encode(), n as u8, pos(&FRAMES, &f), pool(p)]
            }
            Self::Remove(w, n) => vec![1, w.encode(), n as u8],
            Self::Flush(w) => vec![2, w.encode()],
            Self::Hello(w, n) => vec![3, w.encode(), n as u8],
            Self::Stats(w, n) => vec![4, w.encode(), n as u8],
            Self::Foreach(w) => vec![5, w.encode()],
            Self::Counter(w, n, id, v) => {
                let mut b = vec![6, w.encode(), n as u8];
                b.extend_from_slice(&id.to_le_bytes());
                b.extend_from_slice(&v.to_le_bytes());
                b
            }
            Self::Modules(s, n) => vec![7, u8::from(!s) | u8::from(!n) << 1],
            Self::Budget(i) => vec![8, i as u8],
            Self::Raw(w, bytes) => {
                let mut b = vec![9, w.encode()];
                b.extend_from_slice(&(bytes.len() as u16).to_le_bytes());
                b.extend_from_slice(bytes);
                b
            }
        }
    }
}

/// Runs a session: release byte, budget byte, then operations.
pub fn fuzz_session(data: &[u8]) {
    let mut input = Input::new(data);
    let profile = input.pick(Profile::all());
    let budget = BUDGETS[input.below(BUDGETS.len())];
    let mut k = Kernel::new(profile);
    k.set_msg_budget(budget);
    let mut session = Session { model: Model::of(&k), budget };
    let mut client = SimClient::new(&mut k, Caller::root(INIT_NETNS), budget);
    for _ in 0..MAX_OPS {
        if input.is_empty() {
            break;
        }
        let op = Op::decode(&mut input);
        session.run(&mut client, &op);
        session.model.assert_matches(client.kernel(), &op);
    }
}

struct Session {
    model: Model,
    budget: usize,
}

impl Session {
    fn run(&mut self, c: &mut SimClient<'_>, op: &Op<'_>) {
        if let Some(who) = op.who() {
            c.set_caller(who.caller());
        }
        let m = &mut self.model;
        match *op {
            Op::Add(w, n, frame, pool6) => {
                let want = m.add(w.key(), NAMES[n], frame, pool6);
                expect(op, want, c.add(w.xlator, *NAMES[n], frame, pool6));
            }
            Op::Remove(w, n) => expect(
                op,
                m.remove(w.key(), NAMES[n]),
                c.remove(w.xlator, *NAMES[n]),
            ),
            Op::Flush(w) => expect(op, m.flush(w.key()), c.flush(w.xlator)),
            Op::Hello(w, n) => {
                let got = c.hello(w.xlator, *NAMES[n]).ok();
                assert_eq!(got, m.hello(w.key(), NAMES[n]), "{op:?}");
            }
            Op::Stats(w, n) => {
                let got = c.stats(w.xlator, *NAMES[n]).ok();
                let want = m.stats(w.key(), NAMES[n], self.budget);
                assert!(got == want, "{op:?}: kernel {got:?}\nmodel {want:?}");
            }
            Op::Foreach(w) => self.foreach(c, w),
            Op::Counter(w, n, id, value) => {
                let key: Key = (w.netns, w.xlator, name_of(NAMES[n]));
                let got = c
                    .kernel_mut()
                    .set_counter(key.0, key.1, &key.2, id, value);
                assert_eq!(
                    got.is_ok(),
                    self.model.set_counter(&key, id, value),
                    "{op:?}"
                );
            }
            Op::Modules(siit, nat64) => {
                c.kernel_mut().set_modules(siit, nat64);
                m.set_modules(siit, nat64);
            }
            Op::Budget(i) => {
                self.budget = BUDGETS[i];
                c.kernel_mut().set_msg_budget(self.budget);
                c.set_budget(self.budget);
            }
            Op::Raw(_, bytes) => {
                c.send(bytes);
                m.sync(c.kernel());
            }
        }
    }

    /// `instance display`: the model's entries, namespaces told apart by
    /// their tags (any tag, one per namespace).
    fn foreach(&self, c: &mut SimClient<'_>, w: Who) {
        let got = c.foreach(w.xlator).ok();
        let want = self.model.foreach(w.admin, w.xlator);
        let (Some(got), Some(want)) = (&got, &want) else {
            assert_eq!(
                got.is_some(),
                want.is_some(),
                "instance display of {w:?}"
            );
            return;
        };
        assert_eq!(
            got.len(),
            want.len(),
            "instance display of {w:?}: {got:?}"
        );
        let mut tags = BTreeMap::new();
        for ((tag, xf, name), (ns, fw, want_name)) in got.iter().zip(want) {
            assert_eq!(
                (*xf, name.as_slice()),
                (fw.listed_by(c.kernel().profile()), want_name.as_bytes()),
                "instance display"
            );
            assert_eq!(
                *tags.entry(*tag).or_insert(*ns),
                *ns,
                "one tag for two namespaces"
            );
        }
        let namespaces: BTreeSet<_> = tags.values().collect();
        assert_eq!(namespaces.len(), tags.len(), "two tags for one namespace");
    }
}

impl Op<'_> {
    fn who(&self) -> Option<Who> {
        match *self {
            Self::Add(w, ..)
            | Self::Remove(w, _)
            | Self::Flush(w)
            | Self::Hello(w, _)
            | Self::Stats(w, _)
            | Self::Foreach(w)
            | Self::Counter(w, ..)
            | Self::Raw(w, _) => Some(w),
            Self::Modules(..) | Self::Budget(_) => None,
        }
    }
}

fn expect(op: &Op<'_>, want: bool, got: Result<(), i32>) {
    assert_eq!(
        got.is_ok(),
        want,
        "{op:?}: kernel {got:?}, model says {}",
        if want { "ok" } else { "error" }
    );
}
