//! `sim_request`: any bytes, as one datagram from one caller, to the
//! kernel of any release.
//!
//! Input: the two [`Setup`] bytes (release, caller and kernel options),
//! then the datagram. Oracles: the [`SimClient`] checks on every message
//! and reply (replies parse, errors and unprivileged callers change
//! nothing, replies fit the kernel's allocation, stats pages are exact),
//! and `sendmsg()` of the whole datagram answers as the messages sent one
//! by one.

use super::{client::SimClient, setup::Setup, Input};
use crate::{
    kernel::{EMSGSIZE, ENODATA, MAX_DATAGRAM},
    wire::nlmsg::Messages,
};

/// Runs one request datagram.
pub fn fuzz_request(data: &[u8]) {
    let mut input = Input::new(data);
    let setup = Setup::decode(&mut input);
    let datagram = input.rest();
    let mut k = setup.kernel();
    // sendmsg() of the whole datagram, where it differs from sending its
    // messages one by one: errors, and datagrams of several messages.
    let several = Messages::new(datagram).nth(1).is_some();
    let whole = (several || datagram.is_empty()).then(|| {
        let mut whole = k.clone();
        (whole.sendmsg(&setup.caller, datagram), whole)
    });
    let mut client = SimClient::new(&mut k, setup.caller, setup.budget)
        .with_baseline(setup.baseline());
    let replies = client.send(datagram);
    let Some((sent, whole)) = whole else { return };
    match sent {
        Ok(sent) => assert!(
            sent == replies,
            "sendmsg() and the messages one by one differ"
        ),
        // Past the socket buffer the kernel refuses the whole datagram
        // (EMSGSIZE): nothing ran, whatever its messages would have done.
        Err(EMSGSIZE) if datagram.len() > MAX_DATAGRAM => {
            assert!(
                whole.namespaces() == setup.kernel().namespaces(),
                "a refused sendmsg() changed the state"
            );
            return;
        }
        Err(errno) => assert!(
            errno == ENODATA && datagram.is_empty(),
            "sendmsg() failed: {errno}"
        ),
    }
    assert!(
        whole.namespaces() == k.namespaces(),
        "sendmsg() and one by one end in different states"
    );
}
