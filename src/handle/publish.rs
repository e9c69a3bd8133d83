//! PUBLISH from a client: resolve its topic alias, validate, store if retained, route,
//! acknowledge.

use std::rc::Rc;

use log::debug;

use super::Ctx;
use super::ack::send_ack;
use crate::auth::Access;
use crate::auth::hooks::{Intercepted, PublishProperties, Verdict};
use crate::core::alias::AliasError;
use crate::core::budget::Shed;
use crate::core::drops::DropReason;
use crate::core::lifecycle;
use crate::core::message::Message;
use crate::core::payload::{Payload, SHARE_MIN};
use crate::core::route;
use crate::core::state::{Close, State};
use crate::core::topic::{TopicError, validate_name};
use crate::ids::SessionId;
use crate::wire::{PacketType, Publish, QoS, Version, reason};

/// Handles an inbound PUBLISH.
pub fn handle(state: &mut State, ctx: Ctx, publish: &Publish<'_>) -> Result<(), Close> {
    let Ctx {
        id,
        sid,
        version,
        listener,
    } = ctx;
    // Parse: the topic, through the connection's topic aliases (v5).
    let v5 = version == Version::V5;
    let props = &publish.properties;
    let alias_maximum = state
        .config
        .listeners
        .get(usize::from(listener))
        .map_or(0, |l| l.max_topic_alias);
    let aliased: Option<Rc<str>> = match state
        .sessions
        .get_mut(sid.0 as usize)
        .and_then(|s| s.link.as_deref_mut())
    {
        Some(link) => link
            .inbound_aliases
            .resolve(publish.topic, props.topic_alias, alias_maximum)
            .map_err(|e| match e {
                AliasError::Invalid => {
                    Close::Reason(reason::TOPIC_ALIAS_INVALID, "topic alias invalid")
                }
                // An empty topic needs an alias the client set before (v5 3.3.4).
                AliasError::Unknown => Close::Protocol("unknown topic alias"),
            })?,
        None => None,
    };
    let topic = aliased.as_deref().unwrap_or(publish.topic);
    // A client that keeps publishing to one topic reuses the copy validated the first time.
    let known_topic = state
        .sessions
        .get(sid.0 as usize)
        .and_then(|s| s.known_topic(topic));

    // Validate.
    let limits = state.topic_limits();
    let over_limits = match known_topic {
        Some(_) => false,
        None => match validate_name(topic, limits) {
            Ok(()) => false,
            // Well-formed but longer or deeper than this broker keeps: refused by reason
            // code (v5 0x90; 3.1.1 acknowledged and dropped), not by closing.
            Err(TopicError::TooLong) => true,
            Err(_) => {
                debug!("invalid topic name in PUBLISH from {:?}", id);
                return Err(Close::Protocol("invalid topic name"));
            }
        },
    };
    // [MQTT-3.3.4-6] a client's PUBLISH carries no Subscription Identifier: those are the
    // Server's to add, per matching subscription.
    if props.subscription_identifier.is_some() {
        debug!("subscription identifier in PUBLISH from {:?}", id);
        return Err(Close::Protocol("subscription identifier from a client"));
    }
    // [MQTT-3.3.2-13] [MQTT-3.3.2-14] a response topic is a topic name, without wildcards.
    if props
        .response_topic
        .is_some_and(|t| validate_name(t, limits).is_err())
    {
        return Err(Close::Protocol("invalid response topic"));
    }
    // v5 3.3.2.3.2: a payload declared UTF-8 must be UTF-8; QoS 0 has no ack to say so.
    let bad_format =
        props.payload_format_indicator == Some(1) && std::str::from_utf8(publish.payload).is_err();
    if bad_format && publish.qos == QoS::AtMostOnce {
        return Err(Close::Reason(
            reason::PAYLOAD_FORMAT_INVALID,
            "payload is not UTF-8",
        ));
    }
    // [MQTT-3.2.2-14] RETAIN when retain is not available.
    if v5 && publish.retain && !state.config.retain_available {
        return Err(Close::Reason(
            reason::RETAIN_NOT_SUPPORTED,
            "retain not supported",
        ));
    }
    let session = state
        .sessions
        .get_mut(sid.0 as usize)
        .ok_or(Close::Protocol("no session"))?;
    // [MQTT-3.3.4-7] [MQTT-3.3.4-8] more unacknowledged QoS 2 than our Receive Maximum.
    // A bridge's remote is held to its `bridge_receive_maximum`, if set, for QoS 1 (the
    // PUBACKs still held for the disk) and QoS 2 alike.
    let bridge_maximum = (session.bridge)
        .and_then(|b| state.bridges.get(usize::from(b)))
        .map(|b| b.config.receive_maximum)
        .filter(|&r| r > 0);
    let receive_maximum = bridge_maximum.unwrap_or(state.config.max_inflight_messages.max(1));
    let held = match bridge_maximum {
        Some(_) => state
            .conns
            .get(id)
            .map_or(0, |c| usize::from(c.held_pubacks)),
        None => 0,
    };
    let counted = match publish.qos {
        QoS::ExactlyOnce => true,
        QoS::AtLeastOnce => bridge_maximum.is_some(),
        QoS::AtMostOnce => false,
    };
    if v5
        && counted
        && session.inbound_qos2_len() + held >= usize::from(receive_maximum)
        // A retransmission of a packet id we already hold is not a new message; the DUP
        // flag alone proves nothing, so it does not exempt a PUBLISH.
        && !(publish.qos == QoS::ExactlyOnce && session.holds_qos2(publish.packet_id))
    {
        return Err(Close::Reason(
            reason::RECEIVE_MAXIMUM_EXCEEDED,
            "receive maximum exceeded",
        ));
    }
    state.stats.publish_received += 1;
    state.stats.publish_bytes_received += publish.payload.len() as u64;
    let size_limit = state.config.message_size_limit;
    let oversize = size_limit != 0 && publish.payload.len() > size_limit as usize;

    // Validate, before anything changes: every refusal, with its reason code and why the
    // message is dropped (a PUBLISH the broker refuses leaves no QoS 2 state behind).
    let refusal = if over_limits {
        debug!(
            "dropping PUBLISH to a topic of {} bytes over the topic length or level bound",
            topic.len()
        );
        Some((reason::TOPIC_NAME_INVALID, DropReason::TooLarge))
    } else if !state.allowed(sid, topic, Access::Write) {
        // `$SYS` topics are the broker's, whatever the ACL says.
        debug!("PUBLISH to {topic:?} not authorised; dropped");
        Some((reason::NOT_AUTHORIZED, DropReason::Acl))
    } else if oversize {
        debug!(
            "dropping {}-byte PUBLISH over message_size_limit",
            publish.payload.len()
        );
        Some((reason::PACKET_TOO_LARGE, DropReason::TooLarge))
    } else if bad_format {
        debug!("PUBLISH to {topic:?} declared UTF-8 but is not");
        Some((reason::PAYLOAD_FORMAT_INVALID, DropReason::TooLarge))
    } else if state.budget.sheds(Shed::Publishes)
        && publish.qos != QoS::AtMostOnce
        // A QoS 2 packet id already held was accepted (PUBREC sent): its resend is answered.
        && !(publish.qos == QoS::ExactlyOnce && session_holds_qos2(state, sid, publish.packet_id))
    {
        // Refused, never acknowledged and then dropped: the publisher keeps the message.
        // 3.1.1 can only withhold the PUBACK/PUBREC, so the client sends it again later.
        let client_id = session_client_id(state, sid);
        debug!("client {client_id}: QoS 1/2 PUBLISH to {topic:?} refused under memory_limit");
        state.budget.count(Shed::Publishes, &client_id);
        if !v5 {
            state.count_drop(sid, DropReason::MemoryLimit, 1);
            return Ok(());
        }
        Some((reason::QUOTA_EXCEEDED, DropReason::MemoryLimit))
    } else if state.journal.low_space && publish.qos != QoS::AtMostOnce {
        // Refused rather than stored on a full disk; 3.1.1 has no way to say so but
        // withholding the PUBACK, so the client sends it again later.
        debug!("PUBLISH to {topic:?} refused: the store is short of free space");
        if !v5 {
            state.count_drop(sid, DropReason::QueueFull, 1);
            return Ok(());
        }
        Some((reason::QUOTA_EXCEEDED, DropReason::QueueFull))
    } else {
        None
    };

    // Apply.
    let code = match refusal {
        Some((code, why)) => {
            if code != reason::PAYLOAD_FORMAT_INVALID {
                state.count_drop(sid, why, 1);
            }
            // 3.1.1 has no way to refuse a PUBLISH: it is acknowledged and dropped, as
            // Mosquitto does; v5 says why. A payload over the size limit is refused in both.
            if v5 || code == reason::PACKET_TOO_LARGE {
                code
            } else {
                reason::SUCCESS
            }
        }
        // QoS 2 is routed once per packet id until PUBREL [MQTT-4.3.3-9].
        None if publish.qos == QoS::ExactlyOnce
            && !lifecycle::receive_qos2(state, sid, publish.packet_id) =>
        {
            reason::SUCCESS
        }
        // `$CONTROL/...` (the dynamic security control API): for the broker, not for
        // subscribers.
        None if super::dynsec::is_control(topic) => {
            super::dynsec::control(state, sid, listener, topic, publish.payload);
            reason::SUCCESS
        }
        None => match intercept(state, sid, topic, publish) {
            Verdict::Keep => {
                // Routing remembers the topic as the session's last one (`route::LastTopic`).
                let shared_topic = known_topic
                    .or_else(|| aliased.clone())
                    .unwrap_or_else(|| Rc::from(topic));
                route_publish(state, sid, shared_topic, publish.payload, publish, v5)
            }
            Verdict::Drop => {
                debug!("PUBLISH to {topic:?} dropped by the intercept hook");
                reason::SUCCESS
            }
            Verdict::Rewrite {
                topic: new,
                payload,
                properties,
            } => rewritten(state, sid, topic, (&new, &payload, properties), publish, v5),
        },
    };

    let kind = match publish.qos {
        QoS::AtMostOnce => return Ok(()),
        // [MQTT-4.3.2-2] PUBACK; [MQTT-4.3.3-2] PUBREC.
        QoS::AtLeastOnce => PacketType::Puback,
        QoS::ExactlyOnce => PacketType::Pubrec,
    };
    send_ack(state, id, kind, publish.packet_id, code);
    Ok(())
}

/// Whether session `sid` holds inbound QoS 2 `packet_id` (accepted, awaiting PUBREL).
fn session_holds_qos2(state: &State, sid: SessionId, packet_id: u16) -> bool {
    (state.sessions.get(sid.0 as usize)).is_some_and(|s| s.holds_qos2(packet_id))
}

/// Session `sid`'s client id, for a log line.
fn session_client_id(state: &State, sid: SessionId) -> String {
    (state.sessions.get(sid.0 as usize)).map_or_else(String::new, |s| s.client_id.to_string())
}

/// What the embedder's intercept hook, if any, says about `publish` on `topic` from `sid`.
fn intercept(state: &mut State, sid: SessionId, topic: &str, publish: &Publish<'_>) -> Verdict {
    let State {
        hooks, sessions, ..
    } = state;
    let Some(hook) = hooks.intercept.as_mut() else {
        return Verdict::Keep;
    };
    let session = sessions.get(sid.0 as usize);
    hook.on_publish(&Intercepted {
        client_id: session.map_or("", |s| &s.client_id),
        username: session.and_then(|s| s.username.as_deref()),
        topic,
        payload: publish.payload,
        qos: publish.qos,
        retain: publish.retain,
        properties: &publish.properties,
    })
}

/// Routes what the intercept hook rewrote `topic`'s PUBLISH to: a new topic, payload and,
/// if given, properties. A rewrite that breaks a rule a client's PUBLISH is held to (a
/// topic name [MQTT-3.3.2-1], a response topic [MQTT-3.3.2-13], a payload declared UTF-8
/// [MQTT-3.3.2-4], strings that fit) is dropped: the publisher is acknowledged with success.
fn rewritten(
    state: &mut State,
    sid: SessionId,
    topic: &str,
    (new, payload, properties): (&str, &[u8], Option<PublishProperties>),
    publish: &Publish<'_>,
    v5: bool,
) -> u8 {
    let limits = state.topic_limits();
    let Some(properties) = properties else {
        if validate_name(new, limits).is_err() {
            debug!("the intercept hook rewrote {topic:?} to {new:?}, not a topic name");
            return reason::SUCCESS;
        }
        return route_publish(state, sid, Rc::from(new), payload, publish, v5);
    };
    let user_properties = properties.encoded_user_properties();
    let why = if validate_name(new, limits).is_err() {
        "its topic is not a topic name"
    } else if (properties.response_topic.as_deref())
        .is_some_and(|t| validate_name(t, limits).is_err())
    {
        "its response topic is not a topic name"
    } else if properties.payload_format_indicator == Some(1)
        && std::str::from_utf8(payload).is_err()
    {
        "its payload is declared UTF-8 but is not"
    } else if user_properties.is_none()
        || properties
            .content_type
            .as_ref()
            .is_some_and(|s| s.len() > usize::from(u16::MAX))
    {
        "a string property is over 65,535 bytes"
    } else {
        ""
    };
    if !why.is_empty() {
        debug!("the intercept hook's rewrite of {topic:?} to {new:?} is dropped: {why}");
        return reason::SUCCESS;
    }
    let block = user_properties.unwrap_or_default();
    let props = properties.borrowed(&block);
    let rewritten = Publish {
        properties: props,
        ..*publish
    };
    // The publisher's version decides nothing here: the hook chose the properties.
    route_publish(state, sid, Rc::from(new), payload, &rewritten, true)
}

/// The payload of a message for `bytes`: a large payload in the receive buffer being handled
/// shares it while the pool can let it (`net::pool::MAX_RETIRED`), anything else is copied.
fn payload_of(state: &mut State, bytes: &[u8]) -> Payload {
    if bytes.len() >= SHARE_MIN
        && let Some(buf) = &state.receiving
        && state.pool.may_share()
    {
        // Where `bytes` is in the buffer, if it is there (a hook's rewrite is not).
        let at = (bytes.as_ptr() as usize).wrapping_sub(buf.as_ptr() as usize);
        if let Some(shared) = Payload::shared(buf, at, bytes.len()) {
            return shared;
        }
    }
    bytes.into()
}

/// Routes `payload` on `topic` with `publish`'s QoS, retain flag and (from an MQTT 5
/// publisher, `v5`) properties; the reason code for the publisher.
fn route_publish(
    state: &mut State,
    sid: SessionId,
    topic: Rc<str>,
    payload: &[u8],
    publish: &Publish<'_>,
    v5: bool,
) -> u8 {
    let payload = payload_of(state, payload);
    let message = if v5 {
        Message::with_properties(
            topic,
            payload,
            publish.qos,
            publish.retain,
            &publish.properties,
            state.now,
        )
    } else {
        Message::of(topic, payload, publish.qos, publish.retain)
    };
    // A stored publisher's QoS 2 message is stored too, so its deliveries can wait
    // until the record of its packet id is durable (`Journal::durable`).
    if publish.qos == QoS::ExactlyOnce
        && state
            .sessions
            .get(sid.0 as usize)
            .is_some_and(|s| s.store_key != 0)
    {
        state.journal.message(&message);
    }
    if route::publish(state, &message, Some(sid)) == 0 {
        reason::NO_MATCHING_SUBSCRIBERS
    } else {
        reason::SUCCESS
    }
}
