//! Jool 4.0.0 – 4.0.7: one genl command, `request_hdr` inside `ATTR_DATA`.
//! (Filled in below.)

use super::{netlink::Reject, Caller, Kernel};

pub(super) fn rcv(
    _k: &mut Kernel,
    _caller: &Caller,
    _msg: &[u8],
    _out: &mut Vec<Vec<u8>>,
) -> Result<(), Reject> {
    Err(Reject::plain(super::EINVAL))
}
