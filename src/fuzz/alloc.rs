//! `PeakAlloc`: the system allocator, recording the largest single request per thread, so a
//! fuzz target can assert that no input makes the broker allocate beyond its bounds (a
//! length a peer sent, trusted before it was checked). The harness and the replay test
//! install it as their global allocator; the broker itself never does.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicBool, Ordering};

/// The system allocator, recording the largest request of each thread since `reset`.
#[derive(Debug)]
pub struct PeakAlloc;

/// Set by the first allocation through `PeakAlloc`: it is the global allocator.
static INSTALLED: AtomicBool = AtomicBool::new(false);

thread_local! {
    /// The largest request of this thread since `reset`. A const-initialised `Cell` has no
    /// destructor to register, so reading it never allocates (no recursion into `alloc`).
    static LARGEST: Cell<usize> = const { Cell::new(0) };
}

fn note(size: usize) {
    INSTALLED.store(true, Ordering::Relaxed);
    // During thread teardown the slot may be gone; such late requests are not counted.
    let _ = LARGEST.try_with(|largest| {
        if size > largest.get() {
            largest.set(size);
        }
    });
}

/// Starts recording afresh on this thread.
pub(super) fn reset() {
    LARGEST.with(|largest| largest.set(0));
}

/// The largest request on this thread since `reset`; `None` when `PeakAlloc` is not the
/// global allocator.
pub(super) fn largest() -> Option<usize> {
    INSTALLED
        .load(Ordering::Relaxed)
        .then(|| LARGEST.with(Cell::get))
}

// SAFETY: every call is passed to `System` unchanged; `note` neither allocates nor unwinds.
unsafe impl GlobalAlloc for PeakAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        // SAFETY: the caller's contract, passed on.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        // SAFETY: the caller's contract, passed on.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note(new_size);
        // SAFETY: the caller's contract, passed on.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's contract, passed on.
        unsafe { System.dealloc(ptr, layout) }
    }
}
