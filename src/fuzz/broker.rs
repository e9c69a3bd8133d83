//! The broker target: up to four clients at once, each fed a byte stream through the real
//! loop, handlers and state (`Driver`), with time as input.
//!
//! The input is a script of operations, each an opcode byte (operation in the high three
//! bits, client slot in the low two) and its arguments:
//!
//! | opcode `>> 5` | operation | arguments |
//! |---|---|---|
//! | 0-3 | the slot's client sends bytes | a length byte, then that many bytes |
//! | 4 | the slot's client sends bytes | a little-endian `u16` length, then that many bytes |
//! | 5 | the slot's client closes its side | |
//! | 6 | the slot's client reads all output, with room for more | a byte `w`: `w * 256` bytes of room |
//! | 7 | time passes | a byte `t`: `t³` milliseconds (up to 4.6 hours) |
//!
//! A slot whose connection is closed (by either side) connects anew on its next send, so
//! sessions are resumed and taken over. The script ends where the input does (a short
//! argument is cut); then the broker shuts down, publishing wills and closing everything.

use std::time::Duration;

use super::{ALLOCATION_SLACK, alloc, check_largest_allocation};
use crate::broker::drive::Driver;
use crate::config::Config;

/// The maximum packet size the broker target runs with.
pub const BROKER_MAX_PACKET_SIZE: u32 = 8 * 1024;

/// Connections per run, so a script of reconnects stays quick.
const MAX_CONNECTIONS: usize = 64;
/// Room for output a new connection starts with.
const INITIAL_WINDOW: usize = 64 * 1024;

/// Runs the broker target on `data`; panics on a finding.
pub fn broker(data: &[u8]) {
    let Ok(mut driver) = Driver::new(config()) else {
        return;
    };
    let mut slots = [None::<usize>; 4];
    let mut script = data;
    alloc::reset();
    while let Some((&opcode, rest)) = script.split_first() {
        script = rest;
        let slot = usize::from(opcode & 0x03);
        match opcode >> 5 {
            op @ 0..=4 => {
                let len = if op == 4 {
                    let Some((bytes, rest)) = script.split_first_chunk::<2>() else {
                        break;
                    };
                    script = rest;
                    usize::from(u16::from_le_bytes(*bytes))
                } else {
                    let Some((&len, rest)) = script.split_first() else {
                        break;
                    };
                    script = rest;
                    usize::from(len)
                };
                let (bytes, rest) = script.split_at(len.min(script.len()));
                script = rest;
                let open = slots[slot].filter(|&index| driver.is_open(index));
                let index = match open {
                    Some(index) => index,
                    None if driver.connections() < MAX_CONNECTIONS => {
                        let index = driver.connect(INITIAL_WINDOW);
                        slots[slot] = Some(index);
                        index
                    }
                    None => continue,
                };
                driver.send(index, bytes);
            }
            5 => {
                if let Some(index) = slots[slot] {
                    driver.close(index);
                }
            }
            6 => {
                let Some((&w, rest)) = script.split_first() else {
                    break;
                };
                script = rest;
                if let Some(index) = slots[slot] {
                    driver.drain(index, usize::from(w) * 256);
                }
            }
            _ => {
                let Some((&t, rest)) = script.split_first() else {
                    break;
                };
                script = rest;
                driver.advance(Duration::from_millis(u64::from(t).pow(3)));
            }
        }
    }
    driver.shutdown();
    check_largest_allocation("broker", BROKER_MAX_PACKET_SIZE as usize + ALLOCATION_SLACK);
}

/// The default configuration with small bounds, so a short script reaches them: every
/// queue, table and buffer stays within the maximum packet size.
fn config() -> Config {
    Config {
        // Also what the connection and session slabs reserve up front, per run.
        max_connections: Some(MAX_CONNECTIONS),
        max_packet_size: BROKER_MAX_PACKET_SIZE,
        max_inflight_messages: 4,
        max_queued_messages: 16,
        max_subscriptions_per_client: 16,
        max_retained_messages: 32,
        max_output_buffer: 4 * 1024,
        max_keepalive: 60,
        persistent_client_expiration: Some(Duration::from_secs(3600)),
        // No `$SYS`: its 70 topics, the broker's own publishing, took half of the fuzzer's
        // time (perf), even when first due after a day of script time, which the fuzzer
        // learnt to wait for. Wills and retained messages go through the same `route`.
        sys_interval: 0,
        ..Config::default()
    }
}
