//! What a bridge's remote allows, from its MQTT 5 CONNACK, as `handle::connect` takes a
//! client's CONNECT: Receive Maximum caps the inflight window to the remote, Maximum Packet
//! Size (with `bridge_max_packet_size`, the smaller wins, as in Mosquitto) drops what would
//! not fit, Topic Alias Maximum lets the bridge assign aliases, Retain Available 0 clears
//! RETAIN on what is sent, and Maximum QoS downgrades it. An MQTT 3 remote says none of
//! this: no limits.

use crate::config::BridgeConfig;
use crate::core::alias::OutboundAliases;
use crate::core::session::Link;
use crate::wire::{Properties, QoS, Version};

/// The limits of the remote that are the bridge's rather than the session's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Remote {
    /// The highest QoS the remote takes [MQTT-3.2.2-11].
    pub maximum_qos: QoS,
    /// Whether the remote takes RETAIN [MQTT-3.2.2-14].
    pub retain_available: bool,
}

impl Default for Remote {
    fn default() -> Self {
        Remote {
            maximum_qos: QoS::ExactlyOnce,
            retain_available: true,
        }
    }
}

/// The remote's limits from its CONNACK `props` (MQTT 5 only), for bridge `config`; the
/// session's [`Link`] (`None` over MQTT 3) and the bridge's [`Remote`].
pub fn from_connack(
    props: &Properties<'_>,
    config: &BridgeConfig,
    alias_bytes: usize,
) -> (Option<Box<Link>>, Remote) {
    if config.protocol_version != Version::V5 {
        return (None, Remote::default());
    }
    let ours = (config.max_packet_size > 0).then_some(config.max_packet_size);
    let maximum_packet_size = [props.maximum_packet_size, ours]
        .into_iter()
        .flatten()
        .min()
        .unwrap_or(u32::MAX);
    let link = Link {
        // [MQTT-3.3.4-9] no more unacknowledged QoS 1/2 PUBLISHes than this.
        receive_maximum: props.receive_maximum.unwrap_or(u16::MAX),
        // [MQTT-3.1.2-25] nothing larger is sent.
        maximum_packet_size,
        // [MQTT-3.2.2-17] aliases up to this many; 0 none.
        topic_alias_maximum: props.topic_alias_maximum.unwrap_or(0),
        outbound_aliases: OutboundAliases::new(alias_bytes),
        ..Link::default()
    };
    let maximum_qos = match props.maximum_qos {
        Some(0) => QoS::AtMostOnce,
        Some(1) => QoS::AtLeastOnce,
        _ => QoS::ExactlyOnce,
    };
    let remote = Remote {
        maximum_qos,
        retain_available: props.retain_available != Some(0),
    };
    (Some(Box::new(link)), remote)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use std::path::Path;

    fn bridge(lines: &str) -> BridgeConfig {
        let text = format!("connection b\naddress h\ntopic t\n{lines}");
        let (c, _) = Config::parse(&text, Path::new("b.conf")).unwrap();
        c.bridges[0].clone()
    }

    #[test]
    fn the_connack_sets_the_links_limits() {
        let v5 = bridge("bridge_protocol_version mqttv50\nbridge_max_packet_size 500\n");
        let props = Properties {
            receive_maximum: Some(3),
            maximum_packet_size: Some(1000),
            topic_alias_maximum: Some(8),
            retain_available: Some(0),
            maximum_qos: Some(1),
            ..Properties::default()
        };
        let (link, remote) = from_connack(&props, &v5, 4096);
        let link = link.unwrap();
        assert_eq!(link.receive_maximum, 3);
        assert_eq!(link.maximum_packet_size, 500, "the smaller of the two");
        assert_eq!(link.topic_alias_maximum, 8);
        assert_eq!(remote.maximum_qos, QoS::AtLeastOnce);
        assert!(!remote.retain_available);
        let (link, remote) = from_connack(&Properties::default(), &v5, 4096);
        assert_eq!(link.unwrap().receive_maximum, u16::MAX);
        assert_eq!(remote, Remote::default());
        let v3 = bridge("");
        assert!(from_connack(&props, &v3, 4096).0.is_none(), "MQTT 3: none");
    }
}
