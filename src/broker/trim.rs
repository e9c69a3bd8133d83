//! Giving memory back after a burst. A connection storm sizes the buffer pool, the
//! connection and session slabs and the client-id index for its peak, and glibc's allocator
//! keeps what is freed in its heap; so once a second (the sweep) the pool frees the buffers
//! nobody took since the last sweep, the slabs drop their vacant slots past the last one in
//! use (after a burst past the slots reserved at start, which they keep), the index shrinks when mostly empty, and when that released enough to matter glibc
//! is asked to return its free pages (`malloc_trim`). Measured with
//! `scripts/storm.sh` (100,000 connections): see the README, "Soak and storms".

use super::Broker;
use crate::net::conn::shrink_slab;

/// Bytes released in one sweep from which the heap is trimmed: `malloc_trim` walks the
/// whole heap, which is worth it after a burst, not for a few buffers every second.
const TRIM_FROM: usize = 256 * 1024;

/// A second in which fewer bytes than this were read is quiet: the heap is trimmed if at
/// least this much was read since it last was (what traffic took is back in the free lists).
const QUIET_BELOW: u64 = 256 * 1024;

impl Broker {
    /// Frees what the last second's traffic did not use (called by the sweep).
    pub(super) fn give_back_memory(&mut self) {
        let state = &mut self.state;
        let reserved = state.reserved_slots();
        // The session slab is the state's, with no insert hook, so its peak is the larger of
        // two sweeps' counts: a burst seen at one sweep is given back at the next.
        self.session_peak = self.session_peak.max(state.sessions.len());
        let released = state.pool.trim()
            + state.conns.shrink()
            + state.client_ids.shrink(&state.sessions) * size_of::<u32>()
            + shrink_slab(&mut state.sessions, self.session_peak, reserved);
        self.session_peak = state.sessions.len();
        // Counted across sweeps: after a storm the slabs and the pool give back a little at
        // each sweep, none enough alone, and the heap kept it all (storm.sh: 840 KiB anonymous
        // after the storm against 340 before).
        self.released_since_trim += released;
        let received = state.stats.bytes_received;
        let last_second = received - std::mem::replace(&mut self.received_at_sweep, received);
        let traffic_ended =
            last_second < QUIET_BELOW && received - self.received_at_trim >= QUIET_BELOW;
        if self.released_since_trim >= TRIM_FROM || traffic_ended {
            self.released_since_trim = 0;
            self.received_at_trim = received;
            trim_heap();
        }
    }
}

/// Returns the allocator's free pages to the kernel (glibc; mimalloc in the static musl
/// build returns them by itself).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn trim_heap() {
    // SAFETY: malloc_trim takes no pointers and only releases free memory.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// No allocator call elsewhere.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn trim_heap() {}
