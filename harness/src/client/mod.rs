//! A client of Jool's generic netlink family that behaves like the real C
//! client of a chosen release: it resolves the family, sends
//! `STATS_FOREACH` with that release's header, follows the M flag with the
//! offset attribute, and checks replies as that release does (libnl's
//! `response_handler` path: length, magic, version, translator type, error
//! flag), turning each failure into an [`Error`] with the real text and
//! exit status.
//!
//! Requests are built with neli ([`request`]); replies are parsed with
//! `jool_sim::wire` views, which never panic on untrusted bytes.

use jool_sim::{
    kernel::{Framework, Xlator},
    versions::{LegacyLayout, Profile, Protocol, ReplyCheck},
    wire::{
        genl::{CTRL_ATTR_FAMILY_ID, HEADER_LEN as GENL_HDRLEN},
        jool::{
            self as jhdr, Layout, FLAG_ERROR, FLAG_M, JNLAERR_CODE,
            JNLAERR_MSG,
        },
        legacy,
        nla::NlasIterator,
        nlmsg::{self, ErrorPayload, Messages, Packet},
    },
};

use crate::transport::Transport;

mod error;
mod request;

pub use error::{Error, ErrorKind, Nle};
use jool_sim::wire::family::{
    Attr as RootAttr, InstanceAddAttr, Op, PrefixAttr,
};
use request::Attr;

/// Most `STATS_FOREACH` requests one display may send (offsets are u8).
pub const MAX_PAGES: usize = 256;

/// One Jool client socket.
#[derive(Debug)]
pub struct Client<T: Transport> {
    transport: T,
    profile: &'static Profile,
    xlator: Xlator,
    family: Option<u16>,
    seq: u32,
}

/// What a successful Jool reply carried.
struct Reply {
    flags: u8,
    version: u32,
    attrs: Vec<u8>,
}

impl<T: Transport> Client<T> {
    /// A client of `profile`'s release, for `xlator` (`jool_siit` is SIIT,
    /// `jool` is NAT64).
    pub fn new(
        transport: T,
        profile: &'static Profile,
        xlator: Xlator,
    ) -> Self {
        Self { transport, profile, xlator, family: None, seq: 1 }
    }

    /// The transport.
    pub fn transport(&mut self) -> &mut T {
        &mut self.transport
    }

    /// The release this client behaves as.
    pub fn profile(&self) -> &'static Profile {
        self.profile
    }

    /// Name of the generic netlink family the release uses.
    pub fn family_name(&self) -> &'static str {
        match (self.profile.protocol, self.xlator) {
            (
                Protocol::Legacy(
                    LegacyLayout::TypeChar | LegacyLayout::NoType,
                ),
                Xlator::Siit,
            ) => "SIIT_Jool",
            (
                Protocol::Legacy(
                    LegacyLayout::TypeChar | LegacyLayout::NoType,
                ),
                Xlator::Nat64,
            ) => "NAT64_Jool",
            _ => "Jool",
        }
    }

    fn next_seq(&mut self) -> u32 {
        self.seq = self.seq.wrapping_add(1);
        self.seq
    }

    fn exchange(&mut self, request: &[u8]) -> Result<Vec<u8>, Error> {
        self.transport
            .send(request)
            .map_err(|e| Error::new(ErrorKind::Send(e)))?;
        self.transport.recv().map_err(|e| Error::new(ErrorKind::Socket(e)))
    }

    /// Resolves the family id (`genl_ctrl_resolve`). Fails as the real
    /// client does when the module is not loaded.
    pub fn connect(&mut self) -> Result<u16, Error> {
        if let Some(id) = self.family {
            return Ok(id);
        }
        let seq = self.next_seq();
        let req = request::get_family(
            self.family_name(),
            seq,
            self.transport.port_id(),
        );
        let missing = |nle| Error::new(ErrorKind::FamilyMissing(nle));
        let datagram =
            self.exchange(&req).map_err(|_| missing(Nle::ObjNotFound))?;
        let Some(msg) = Messages::new(&datagram).next() else {
            return Err(missing(Nle::MsgTooShort));
        };
        if msg.kind() == nlmsg::NLMSG_ERROR {
            let errno = ErrorPayload::new_checked(msg.payload())
                .map_or(22, |e| e.error().wrapping_neg());
            return Err(missing(Nle::from_errno(errno)));
        }
        let attrs = msg.payload().get(GENL_HDRLEN..).unwrap_or_default();
        for a in NlasIterator::new(attrs).flatten() {
            if let (CTRL_ATTR_FAMILY_ID, [lo, hi, ..]) = (a.kind(), a.value())
            {
                let id = u16::from_le_bytes([*lo, *hi]);
                self.family = Some(id);
                return Ok(id);
            }
        }
        Err(missing(Nle::ObjNotFound))
    }

    fn header(&self, iname: Option<&str>) -> Result<Vec<u8>, Error> {
        let layout =
            Layout::from_len(self.profile.header_len()).unwrap_or(Layout::V2);
        let name = iname.unwrap_or("default");
        let h = jhdr::Repr::request(
            layout,
            self.profile.wire_version,
            self.xlator.xt(),
            name,
        )
        .map_err(|_| {
            Error::new(ErrorKind::BadInstanceName(name.to_owned()))
        })?;
        Ok(h.to_vec())
    }

    /// Sends one Jool request and checks the reply like the client's
    /// `response_handler`.
    fn request(
        &mut self,
        op: Op,
        iname: Option<&str>,
        attrs: &[Attr],
    ) -> Result<Reply, Error> {
        // Every release that speaks this protocol numbers the operations
        // the client sends (stats, instance add/remove) alike.
        let cmd = self.profile.numbering.cmd(op).unwrap_or(op as u8);
        let family = self.connect()?;
        let header = self.header(iname)?;
        let seq = self.next_seq();
        let req = request::jool(
            family,
            seq,
            self.transport.port_id(),
            cmd,
            &header,
            attrs,
        );
        let datagram = self.exchange(&req)?;
        let mut messages = Messages::new(&datagram);
        let msg =
            messages.next().ok_or_else(|| Error::new(ErrorKind::TooSmall))?;
        self.check_reply(&msg)
    }

    fn check_reply(&self, msg: &Packet<&[u8]>) -> Result<Reply, Error> {
        let hdrlen = self.profile.header_len();
        let layout = Layout::from_len(hdrlen).unwrap_or(Layout::V2);
        if msg.message().len() < nlmsg::HEADER_LEN + GENL_HDRLEN + hdrlen {
            return Err(Error::new(ErrorKind::TooSmall));
        }
        let view =
            jhdr::Header::new_checked(&msg.payload()[GENL_HDRLEN..], layout)
                .map_err(|e| Error::new(ErrorKind::Malformed(e)))?;
        let h = jhdr::Repr::parse(&view)
            .map_err(|e| Error::new(ErrorKind::Malformed(e)))?;
        if let ReplyCheck::Magic(rule) = self.profile.reply_check {
            if !h.magic_ok() {
                return Err(Error::new(ErrorKind::BadMagic));
            }
            if !rule.accepts(self.profile.wire_version, h.version) {
                let (theirs, mine) = (h.version, self.profile.wire_version);
                return Err(Error::new(ErrorKind::VersionMismatch {
                    theirs,
                    mine,
                }));
            }
            if h.xt & self.xlator.xt() == 0 {
                let (theirs, mine) = (h.xt, self.xlator.xt());
                return Err(Error::new(ErrorKind::WrongTranslator {
                    theirs,
                    mine,
                }));
            }
        } else if msg.kind() == nlmsg::NLMSG_ERROR {
            let errno = ErrorPayload::new_checked(msg.payload())
                .map_or(22, |e| e.error().wrapping_neg());
            return Err(Error::new(ErrorKind::Receive(Nle::from_errno(
                errno,
            ))));
        }
        let attrs = view.payload().to_vec();
        if h.flags & FLAG_ERROR != 0 {
            return Err(self.error_report(&attrs));
        }
        Ok(Reply { flags: h.flags, version: h.version, attrs })
    }

    /// `joolnl_msg2result`.
    fn error_report(&self, attrs: &[u8]) -> Error {
        let mut code = None;
        let mut msg = None;
        for a in NlasIterator::new(attrs).flatten() {
            match (a.kind(), a.value()) {
                (JNLAERR_CODE, [lo, hi, ..]) => {
                    code = Some(u16::from_le_bytes([*lo, *hi]))
                }
                (JNLAERR_MSG, v) => {
                    let s = v.split(|&b| b == 0).next().unwrap_or_default();
                    msg = Some(String::from_utf8_lossy(s).into_owned());
                }
                _ => {}
            }
        }
        match (code, self.profile.reply_check) {
            (Some(c), _) => error::kernel_error(c, msg),
            (None, ReplyCheck::Magic(_)) => {
                Error::new(ErrorKind::ErrorWithoutCode(msg))
            }
            (None, ReplyCheck::None) => error::kernel_error(22, msg),
        }
    }

    /// Runs `stats display`'s query: calls `each(id, value)` for every
    /// counter, in the kernel's order, across as many pages as the kernel
    /// asks for. Stops at the first error, from the kernel or from `each`.
    /// Returns the version word of the last reply header.
    pub fn stats_foreach<F>(
        &mut self,
        iname: Option<&str>,
        mut each: F,
    ) -> Result<u32, Error>
    where
        F: FnMut(u16, u64) -> Result<(), Error>,
    {
        if self.profile.is_legacy() {
            return self.legacy_stats(iname, each);
        }
        let mut last: u16 = 0;
        for _ in 0..MAX_PAGES {
            let attrs = match last {
                0 => vec![],
                l => {
                    vec![Attr::u8(self.root_attr(RootAttr::OffsetU8), l as u8)]
                }
            };
            let reply = self.request(Op::StatsForeach, iname, &attrs)?;
            let before = last;
            for a in NlasIterator::new(&reply.attrs).map_while(Result::ok) {
                let id = a.kind();
                last = id;
                let Ok(v) = <[u8; 8]>::try_from(a.value()) else {
                    return Err(Error::new(ErrorKind::BadCounter {
                        id,
                        len: a.value().len(),
                    }));
                };
                each(id, u64::from_le_bytes(v))?;
            }
            if reply.flags & FLAG_M == 0 {
                return Ok(reply.version);
            }
            if last <= before || last > 255 {
                return Err(Error::new(ErrorKind::Paging(format!(
                    "The kernel module asked for another page but its offset went from {before} to {last}."
                ))));
            }
        }
        Err(Error::new(ErrorKind::Paging(format!(
            "The kernel module asked for more than {MAX_PAGES} pages."
        ))))
    }

    /// Every counter, in the kernel's order.
    pub fn stats(
        &mut self,
        iname: Option<&str>,
    ) -> Result<Vec<(u16, u64)>, Error> {
        let mut out = Vec::new();
        self.stats_foreach(iname, |id, v| {
            out.push((id, v));
            Ok(())
        })?;
        Ok(out)
    }

    /// 4.0.0 – 4.0.7: one request, a flat array of counters.
    fn legacy_stats<F>(
        &mut self,
        iname: Option<&str>,
        mut each: F,
    ) -> Result<u32, Error>
    where
        F: FnMut(u16, u64) -> Result<(), Error>,
    {
        // `MODE_STATS`: 1 until 4.0.4, 2 once MODE_ADDRESS was inserted.
        let mode = if self.profile.is_before("4.0.5") { 1 } else { 2 };
        let payload =
            self.legacy_request(mode, legacy::OP_FOREACH, iname, &[])?;
        let n = self.profile.stats.len();
        if payload.len() != n * 8 {
            let (expected, got) = (n * 8, payload.len());
            return Err(
                Error::new(ErrorKind::BogusLength { expected, got }).legacy()
            );
        }
        for (i, chunk) in payload.chunks_exact(8).enumerate() {
            let mut v = [0u8; 8];
            v.copy_from_slice(chunk);
            each(i as u16, u64::from_le_bytes(v))?;
        }
        Ok(self.profile.wire_version)
    }

    /// Sends a legacy request of `mode`/`op` (`ATTR_INAME` `iname` unless
    /// it is the default, `body` after the request header); returns the
    /// payload after the response header.
    fn legacy_request(
        &mut self,
        mode: u8,
        op: u8,
        iname: Option<&str>,
        body: &[u8],
    ) -> Result<Vec<u8>, Error> {
        let family = self.connect()?;
        let b4 = match self.profile.protocol {
            Protocol::Legacy(LegacyLayout::TypeChar) => [
                if self.xlator == Xlator::Siit { b's' } else { b'n' },
                b'u',
                0,
                0,
            ],
            Protocol::Legacy(LegacyLayout::NoType) => [b'u', 0, 0, 0],
            _ => [self.xlator.xt(), b'u', 0, 0],
        };
        let mut data =
            legacy::request_bytes(b4, self.profile.wire_version, mode, op)
                .to_vec();
        data.extend_from_slice(body);
        let iname = iname.filter(|n| *n != "default");
        let seq = self.next_seq();
        let req = request::legacy(
            family,
            seq,
            self.transport.port_id(),
            iname,
            &data,
        );
        let datagram = self.exchange(&req)?;
        let msg = Messages::new(&datagram)
            .next()
            .ok_or_else(|| Error::new(ErrorKind::TooSmall).legacy())?;
        if msg.kind() == nlmsg::NLMSG_ERROR {
            let errno = ErrorPayload::new_checked(msg.payload())
                .map_or(22, |e| e.error().wrapping_neg());
            return Err(Error::new(ErrorKind::Receive(Nle::from_errno(
                errno,
            ))));
        }
        let attrs = msg.payload().get(GENL_HDRLEN..).unwrap_or_default();
        let data = NlasIterator::new(attrs)
            .map_while(Result::ok)
            .find(|a| a.kind() == legacy::ATTR_DATA)
            .ok_or_else(|| Error::new(ErrorKind::TooSmall).legacy())?;
        let resp = legacy::ResponseHdr::new_checked(data.value())
            .map_err(|_| Error::new(ErrorKind::TooSmall).legacy())?;
        if resp.error_code() != 0 {
            let p = resp.payload();
            let msg = p
                .iter()
                .position(|&b| b == 0)
                .map(|end| String::from_utf8_lossy(&p[..end]).into_owned());
            return Err(error::kernel_error(resp.error_code(), msg).legacy());
        }
        Ok(resp.payload().to_vec())
    }

    /// `instance add NAME --netfilter|--iptables [--pool6 PREFIX]`.
    pub fn instance_add(
        &mut self,
        iname: Option<&str>,
        framework: Framework,
        pool6: Option<([u8; 16], u8)>,
    ) -> Result<(), Error> {
        if self.profile.is_legacy() {
            // `instance_add()` of v4.0.x src/usr/nl/instance.c: no
            // ATTR_INAME (the name travels in the body), FW_NETFILTER 1 /
            // FW_IPTABLES 2 until XF_* (4 / 8) replaced them in 4.0.6.
            let fw = framework.listed_by(self.profile);
            let name = iname.unwrap_or("default").as_bytes();
            let body = legacy::instance_add_body(fw, name, pool6);
            let add = legacy::ConfigOp::Add.into();
            return self
                .legacy_request(legacy::MODE_INSTANCE, add, None, &body)
                .map(drop);
        }
        let xf = framework.xf_in(self.profile.numbering);
        // The 4.0.8 client nests without NLA_F_NESTED (libnl's
        // `nla_nest_start`; 4.0.9 added `jnla_nest_start`, commit
        // fad9dc98): on Linux 5.2+ genetlink refuses its operand, Jool #326.
        let nest = if self.profile.is_before("4.0.9") {
            Attr::bytes
        } else {
            Attr::nested
        };
        let mut operand = vec![Attr::u8(InstanceAddAttr::Xf.into(), xf)];
        if let Some((addr, len)) = pool6 {
            let p = request::attrs_bytes(&[
                Attr::bytes(PrefixAttr::Addr.into(), addr.to_vec()),
                Attr::u8(PrefixAttr::Len.into(), len),
            ]);
            operand.push(nest(InstanceAddAttr::Pool6.into(), p));
        }
        let kind = self.root_attr(RootAttr::Operand);
        let attrs = [nest(kind, request::attrs_bytes(&operand))];
        self.request(Op::InstanceAdd, iname, &attrs).map(drop)
    }

    /// The type of root attribute `a` in the profile's numbering (every
    /// numbering has the ones the client sends).
    fn root_attr(&self, a: RootAttr) -> u16 {
        self.profile.numbering.attr(a).unwrap_or_default()
    }

    /// `instance remove NAME`.
    pub fn instance_remove(
        &mut self,
        iname: Option<&str>,
    ) -> Result<(), Error> {
        if self.profile.is_legacy() {
            // `instance_rm()` of v4.0.x: the name in the body only.
            let name = iname.unwrap_or("default").as_bytes();
            let body = legacy::instance_name_body(name);
            let rm = legacy::ConfigOp::Remove.into();
            return self
                .legacy_request(legacy::MODE_INSTANCE, rm, None, &body)
                .map(drop);
        }
        self.request(Op::InstanceRm, iname, &[]).map(drop)
    }
}

/// Parses `ADDR/LEN` as an IPv6 prefix.
pub fn parse_prefix6(s: &str) -> Option<([u8; 16], u8)> {
    let (addr, len) = s.split_once('/')?;
    let addr: std::net::Ipv6Addr = addr.parse().ok()?;
    let len: u8 = len.parse().ok().filter(|l| *l <= 128)?;
    Some((addr.octets(), len))
}

#[cfg(test)]
mod test;
