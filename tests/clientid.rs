//! Client ids the configuration constrains (issue 13): `clientid_prefixes` refuses every id
//! without the prefix. Each scenario runs against pipit and Mosquitto 2.0.11 from the same
//! configuration text (`common/mosquitto.rs`) and expects the same bytes from both.

mod common;
#[path = "common/mosquitto.rs"]
mod mosquitto;
#[path = "common/auth.rs"]
mod support;

use std::net::SocketAddr;

use common::{Connect, Props, Raw};
use mosquitto::pipit_and_mosquitto;
use support::{ACCEPTED, NOT_AUTHORIZED, Scratch};

/// MQTT 5 reason code: not authorized.
const NOT_AUTHORIZED_V5: u8 = 0x87;

/// Sends `connect` on a new connection: the connection and the CONNACK's code (the second
/// byte in every version). A refused connection is then closed by the broker.
fn connack(addr: SocketAddr, connect: &Connect) -> (Raw, u8) {
    let mut c = Raw::open(addr);
    c.send(&connect.bytes());
    let ack = c.recv().expect("no CONNACK");
    assert_eq!(ack.kind(), 2, "expected CONNACK, got {ack:?}");
    (c, ack.body[1])
}

/// The CONNACK code for `connect`, checking that a refused connection is closed.
fn code(addr: SocketAddr, connect: &Connect) -> u8 {
    let (mut c, code) = connack(addr, connect);
    if code != ACCEPTED {
        c.expect_closed();
    }
    code
}

/// Issue 13: only client ids starting with the prefix connect; the others are refused with
/// "not authorised" in every protocol version, an id the broker assigns included (Mosquitto's
/// `auto-…`, pipit's `pipit-…`), and the match is case-sensitive.
#[test]
fn clientid_prefixes_refuse_other_ids_as_mosquitto() {
    let dir = Scratch::new("clientid-prefixes");
    let body = "allow_anonymous true\nclientid_prefixes gw-\n";
    for peer in pipit_and_mosquitto(&dir, body) {
        let addr = peer.addr;
        let kind = peer.kind;
        let cases = [
            (Connect::v31("sensor-1"), NOT_AUTHORIZED),
            (Connect::v311("sensor-1"), NOT_AUTHORIZED),
            (Connect::v311("GW-1"), NOT_AUTHORIZED),
            (Connect::v311("g"), NOT_AUTHORIZED),
            (Connect::v5("sensor-1", Props::new()), NOT_AUTHORIZED_V5),
            (Connect::v5("", Props::new()), NOT_AUTHORIZED_V5),
            (Connect::v311(""), NOT_AUTHORIZED),
            (Connect::v31("gw-1"), ACCEPTED),
            (Connect::v311("gw-2"), ACCEPTED),
            (Connect::v5("gw-3", Props::new()), ACCEPTED),
        ];
        for (connect, expected) in cases {
            let id = String::from_utf8_lossy(&connect.client_id).into_owned();
            let level = connect.level;
            assert_eq!(code(addr, &connect), expected, "{kind:?}: {id:?} v{level}");
        }
    }
}
