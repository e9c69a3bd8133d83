//! The heap figure `memory_limit` is measured by: a counting global allocator ([`Counting`])
//! that adds each allocation's size to one process-wide counter and takes each free's off
//! (relaxed atomics: one uncontended add or subtract per call, next to the allocator's own
//! work), and [`counted`], which reads it.
//!
//! The `pipit` binary installs it; an embedder's program installs it the same way to use
//! `memory_limit`:
//!
//! ```no_run
//! #[global_allocator]
//! static ALLOCATOR: pipit::heap::Counting<std::alloc::System> =
//!     pipit::heap::Counting::new(std::alloc::System);
//! ```
//!
//! Without it the figure is unknown ([`counted`] is `None`) and a configuration with
//! `memory_limit` refuses to start: a budget nobody measures would bound nothing.
//!
//! The counter is in requested bytes (`Layout::size`), not what the allocator rounds up to,
//! and it starts with the process, so it covers every allocation of every thread.

use std::alloc::{GlobalAlloc, Layout};
use std::sync::atomic::{AtomicUsize, Ordering};

/// Bytes allocated through a `Counting` allocator and not yet freed. Only a `Counting`
/// allocator writes it, so it is non-zero exactly when one is installed (by the time a
/// broker asks, the process holds allocations: its configuration, at the least).
static ALLOCATED: AtomicUsize = AtomicUsize::new(0);

/// A global allocator that counts the bytes `inner` has handed out and not had back.
#[derive(Debug)]
pub struct Counting<A> {
    inner: A,
}

impl<A> Counting<A> {
    /// Counts what `inner` allocates.
    pub const fn new(inner: A) -> Counting<A> {
        Counting { inner }
    }
}

// SAFETY: every call is passed to `inner` unchanged; the counter is only arithmetic beside it.
unsafe impl<A: GlobalAlloc> GlobalAlloc for Counting<A> {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract for `alloc` is `inner.alloc`'s.
        let block = unsafe { self.inner.alloc(layout) };
        if !block.is_null() {
            ALLOCATED.fetch_add(layout.size(), Ordering::Relaxed);
        }
        block
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract for `alloc_zeroed` is `inner.alloc_zeroed`'s.
        let block = unsafe { self.inner.alloc_zeroed(layout) };
        if !block.is_null() {
            ALLOCATED.fetch_add(layout.size(), Ordering::Relaxed);
        }
        block
    }

    unsafe fn dealloc(&self, block: *mut u8, layout: Layout) {
        // SAFETY: `block` came from this allocator with `layout`, as the caller promises.
        unsafe { self.inner.dealloc(block, layout) };
        ALLOCATED.fetch_sub(layout.size(), Ordering::Relaxed);
    }

    unsafe fn realloc(&self, block: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the caller's contract for `realloc` is `inner.realloc`'s.
        let moved = unsafe { self.inner.realloc(block, layout, new_size) };
        // On failure the old block stays allocated at its old size: nothing changes.
        if !moved.is_null() {
            if new_size >= layout.size() {
                ALLOCATED.fetch_add(new_size - layout.size(), Ordering::Relaxed);
            } else {
                ALLOCATED.fetch_sub(layout.size() - new_size, Ordering::Relaxed);
            }
        }
        moved
    }
}

/// Bytes at the top of glibc's heap that `free` keeps for reuse ([`tune_allocator`]).
pub const KEEP_TOP: usize = 4 << 20;

/// Sets glibc's malloc up for a broker's traffic; the `pipit` binary calls it first thing,
/// an embedder on glibc may too (elsewhere it does nothing: mimalloc, in the static build,
/// keeps freed pages for reuse by itself).
///
/// By default `free` returns the top of the heap to the kernel once more than 128 KiB of it
/// is free, and a stream of large messages (each payload a heap block, freed once written)
/// moves the top up and down by more than that every few turns: each time, the pages are
/// returned and then faulted back in and zeroed by the kernel. Fan-in QoS 1 16 -> 1 with
/// 16 KiB payloads took 20,000-200,000 page faults in 4 s (the count depends on where the
/// blocks happen to fall) and its rate per CPU-second swung from 71,000 to 156,000 between
/// runs; keeping up to [`KEEP_TOP`] (2 MiB was enough there) took 1,000 faults and held
/// 140,000-159,000 (median 1.10x, five interleaved rounds). Setting the trim threshold
/// also fixes glibc's otherwise adaptive mapping threshold at 128 KiB, so buffers between
/// that and 1 MiB (the receive buffer of a large packet, a backed-up subscriber's output)
/// would be mapped, faulted in and unmapped at every use: it is set to 1 MiB. What the top
/// keeps goes back once traffic quietens: the broker's sweep trims the heap then
/// (`malloc_trim`, see the README's "Memory").
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub fn tune_allocator() {
    /// Allocations from this size up are mapped on their own.
    const MAP_FROM: usize = 1 << 20;
    // SAFETY: mallopt only changes the allocator's thresholds; a refused value leaves the
    // default in place, which is correct, only slower.
    unsafe {
        libc::mallopt(libc::M_TRIM_THRESHOLD, KEEP_TOP as libc::c_int);
        libc::mallopt(libc::M_MMAP_THRESHOLD, MAP_FROM as libc::c_int);
    }
}

/// Nothing to set outside glibc.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn tune_allocator() {}

/// Heap bytes allocated and not freed, if a [`Counting`] allocator is installed.
pub fn counted() -> Option<u64> {
    match ALLOCATED.load(Ordering::Relaxed) {
        0 => None,
        bytes => Some(bytes as u64),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::alloc::System;
    use std::sync::Mutex;

    /// The library's tests run without the allocator installed, so only the test below moves
    /// the counter; the other waits for it to be back at zero.
    static COUNTER: Mutex<()> = Mutex::new(());

    #[test]
    fn allocations_through_it_are_counted_until_freed() {
        let _counter = COUNTER.lock().unwrap_or_else(|e| e.into_inner());
        let counting = Counting::new(System);
        let layout = Layout::from_size_align(4096, 8).expect("a valid layout");
        assert_eq!(
            counted(),
            None,
            "nothing counted before the first allocation"
        );
        // SAFETY: a non-zero layout; each block is freed with the layout it has.
        unsafe {
            let block = counting.alloc(layout);
            assert_eq!(counted(), Some(4096));
            let grown = counting.realloc(block, layout, 10_000);
            assert_eq!(counted(), Some(10_000));
            let grown_layout = Layout::from_size_align(10_000, 8).expect("a valid layout");
            let zeroed = counting.alloc_zeroed(layout);
            assert_eq!(counted(), Some(14_096));
            counting.dealloc(grown, grown_layout);
            counting.dealloc(zeroed, layout);
        }
        assert_eq!(counted(), None, "all freed");
    }

    #[test]
    fn a_memory_limit_without_the_counting_allocator_refuses_to_start() {
        let _counter = COUNTER.lock().unwrap_or_else(|e| e.into_inner());
        let mut config = crate::Config::default();
        config.listeners[0].addr = "127.0.0.1:0".parse().expect("an address");
        config.memory_limit = Some(64 << 20);
        let error = crate::Broker::bind(config).err().expect("refused");
        assert_eq!(error.kind(), std::io::ErrorKind::InvalidInput);
        assert!(error.to_string().contains("memory_limit"), "{error}");
    }
}
