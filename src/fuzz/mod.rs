//! Fuzz targets, shared by the coverage-guided harness in `fuzz/` and by `tests/fuzz_corpus.rs`,
//! which replays the kept corpus under `cargo test`. Not part of the broker's API.
//!
//! Each target takes arbitrary bytes and panics on a finding: a panic inside pipit, a round
//! trip that does not hold, or (with [`PeakAlloc`] as the global allocator) one allocation
//! larger than the target's bound. A hang is caught by the fuzzer's timeout.

mod alloc;
mod broker;
mod codec;

pub use crate::broker::drive::Driver;
pub use crate::net::mem::RECEIVE_BUFFER;
pub use alloc::PeakAlloc;
pub use broker::{BROKER_MAX_PACKET_SIZE, broker};
pub use codec::{CODEC_MAX_PACKET_SIZE, codec};

/// Bytes an allocation may exceed a target's maximum packet size by: frame headers, a boxed
/// CONNECT, small tables.
pub const ALLOCATION_SLACK: usize = 1024;

/// Panics if, since `alloc::reset`, one allocation of this thread was larger than `bound`
/// (only with [`PeakAlloc`] installed; without it nothing is counted).
fn check_largest_allocation(target: &str, bound: usize) {
    if let Some(largest) = alloc::largest() {
        assert!(
            largest <= bound,
            "{target}: an allocation of {largest} bytes, over the bound of {bound}"
        );
    }
}
