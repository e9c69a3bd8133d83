//! SUBSCRIBE and UNSUBSCRIBE.

use log::debug;

use super::{Ctx, acknowledge};
use crate::auth::Access;
use crate::core::lifecycle;
use crate::core::session::Session;
use crate::core::state::{Close, State};
use crate::core::topic::split_shared;
use crate::ids::SessionId;
use crate::wire::{
    Properties, QoS, RetainHandling, Suback, Subscribe, Unsuback, Unsubscribe, reason,
};

/// Handles SUBSCRIBE: add each valid filter, answer SUBACK with one code per filter in order
/// [MQTT-3.8.4-1] [MQTT-3.9.3-1], then queue matching retained messages as each filter's
/// Retain Handling says.
///
/// Any number of filters is accepted: the packet is already bounded by `max_packet_size`, so
/// the work per packet is bounded by its bytes, and what the session may hold is bounded by
/// `max_subscriptions_per_client`, answered per filter (0x97 / v3 0x80), never by a close.
/// The one exception is a SUBACK too large for the client (`ack_fits`).
pub fn subscribe(state: &mut State, ctx: Ctx, packet: &Subscribe<'_>) -> Result<(), Close> {
    let Ctx {
        id, sid, version, ..
    } = ctx;
    // [MQTT-3.8.3-4] No Local on a shared subscription is a protocol error.
    if packet
        .filters
        .iter()
        .any(|(f, o)| o.no_local && f.starts_with("$share/"))
    {
        return Err(Close::Protocol("no local on a shared subscription"));
    }
    // v5 3.8.2.1.2: the Subscription Identifier applies to every filter of the packet.
    let subscription_id = packet.properties.subscription_identifier.unwrap_or(0);
    // One code per filter, sized by the packet (one byte per filter it carries).
    let mut codes = vec![reason::SUCCESS; packet.filters.len()];
    let len = Suback {
        packet_id: packet.packet_id,
        properties: Properties::default(),
        reason_codes: &codes,
    }
    .encoded_len(version);
    ack_fits(
        state,
        sid,
        len,
        "SUBACK over the client's Maximum Packet Size",
    )?;
    let mut accepted: Vec<(&str, QoS)> = Vec::new();
    let bridge_peer = state.conns.get(id).is_some_and(|c| c.bridge_peer);
    for ((raw_filter, mut options), code) in packet.filters.iter().zip(&mut codes) {
        // A bridge that set Mosquitto's bit (`try_private`) is not sent its own messages
        // back, and keeps their RETAIN flag, as Mosquitto treats it: no loop through it.
        if bridge_peer && !raw_filter.starts_with("$share/") {
            options.no_local = true;
            options.retain_as_published = true;
        }
        *code = match lifecycle::subscribe(state, sid, raw_filter, options, subscription_id) {
            Ok((granted, existed)) => {
                // [MQTT-3.3.1-9] [MQTT-3.3.1-10] [MQTT-3.3.1-11] Retain Handling.
                let send = match options.retain_handling {
                    RetainHandling::SendAtSubscribe => true,
                    RetainHandling::SendIfNew => !existed,
                    RetainHandling::DontSend => false,
                };
                if send {
                    accepted.push((raw_filter, granted));
                }
                granted as u8
            }
            Err(code) => {
                debug!("refused subscription {raw_filter:?} (reason {code:#04x})");
                code
            }
        };
    }
    if version < crate::wire::Version::V5 {
        for code in &mut codes {
            *code = reason::suback_v3(*code);
        }
    }
    let mut suback = Suback {
        packet_id: packet.packet_id,
        properties: Properties {
            reason_string: Some("one or more topic filters were refused"),
            ..Properties::default()
        },
        reason_codes: &codes,
    };
    let refused = codes.iter().any(|&c| c >= reason::UNSPECIFIED_ERROR);
    let report = super::problem_report(state, id);
    if !refused || report.is_none_or(|max| suback.encoded_len(version) > max as usize) {
        suback.properties.reason_string = None;
    }
    acknowledge(state, id, |out| suback.encode(version, out));
    for (raw_filter, granted) in accepted {
        send_retained(state, sid, raw_filter, granted, subscription_id);
    }
    Ok(())
}

/// Starts delivering the retained messages matching a new (or replaced) subscription, with
/// RETAIN set [MQTT-3.3.1-6] [MQTT-3.8.4-3], all of them, over as many loop turns as the
/// client's draining takes (`retain_walk`); shared subscriptions get none (MQTT 5, 4.8.2).
fn send_retained(
    state: &mut State,
    sid: SessionId,
    raw_filter: &str,
    granted: QoS,
    subscription_id: u32,
) {
    let Ok(split) = split_shared(raw_filter, state.topic_limits()) else {
        return;
    };
    if split.share_group.is_some() || state.retained.is_empty() {
        return;
    }
    let after = state.journal.walk_after();
    state
        .walks
        .start(sid, split.filter, granted, subscription_id, after);
}

/// Handles UNSUBSCRIBE: remove each filter and answer UNSUBACK [MQTT-3.10.4-4], with one
/// code per filter however many the packet (bounded by `max_packet_size`) carries, unless
/// that UNSUBACK is too large for the client (`ack_fits`).
pub fn unsubscribe(state: &mut State, ctx: Ctx, packet: &Unsubscribe<'_>) -> Result<(), Close> {
    let Ctx {
        id, sid, version, ..
    } = ctx;
    let mut codes = vec![reason::SUCCESS; packet.filters.len()];
    let len = Unsuback {
        packet_id: packet.packet_id,
        properties: Properties::default(),
        reason_codes: &codes,
    }
    .encoded_len(version);
    ack_fits(
        state,
        sid,
        len,
        "UNSUBACK over the client's Maximum Packet Size",
    )?;
    for (raw_filter, code) in packet.filters.iter().zip(&mut codes) {
        // Only dynamic security restricts unsubscribing; a refused filter stays subscribed
        // (3.1.1 has no code to say so).
        if !state.allowed(sid, raw_filter, Access::Unsubscribe) {
            debug!("UNSUBSCRIBE from {raw_filter:?} not authorised");
            *code = reason::NOT_AUTHORIZED;
        } else if !lifecycle::unsubscribe(state, sid, raw_filter) {
            *code = reason::NO_SUBSCRIPTION_EXISTED;
        }
    }
    let unsuback = Unsuback {
        packet_id: packet.packet_id,
        properties: Properties::default(),
        reason_codes: &codes,
    };
    acknowledge(state, id, |out| unsuback.encode(version, out));
    Ok(())
}

/// Checks, before any filter is applied, that a SUBACK or UNSUBACK of `len` bytes (one code
/// per filter, no Reason String) fits the client's Maximum Packet Size. One that does not
/// may not be sent [MQTT-3.1.2-24], and a client that never gets its ack cannot tell what
/// was applied, so nothing is: the connection closes with DISCONNECT 0x95 (Packet too
/// large; `why`), itself sent only if it fits. Mosquitto 2.0.11 sends the oversized ack.
fn ack_fits(state: &State, sid: SessionId, len: usize, why: &'static str) -> Result<(), Close> {
    let max = state
        .sessions
        .get(sid.0 as usize)
        .map_or(u32::MAX, Session::maximum_packet_size);
    if len > max as usize {
        return Err(Close::Reason(reason::PACKET_TOO_LARGE, why));
    }
    Ok(())
}
