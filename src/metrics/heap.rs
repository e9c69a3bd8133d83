//! The heap figure of `$SYS/broker/heap/current`: bytes allocated and not freed, as the
//! counting allocator measures them (`crate::heap`, installed by the `pipit` binary: the
//! same figure `memory_limit` is held to). Without it, as glibc's `mallinfo2` reports them
//! (`uordblks`, the arenas' chunks in use, plus `hblkhd`, the large blocks it mapped on its
//! own), read only when reported. Elsewhere the figure is not known and the heap topics are
//! not published.

/// Bytes allocated and not freed, if the allocator says.
pub fn allocated() -> Option<u64> {
    crate::heap::counted().or_else(from_malloc)
}

/// Bytes glibc's allocator has handed out and not had back.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn from_malloc() -> Option<u64> {
    // SAFETY: `mallinfo2` takes no arguments and returns a plain struct by value; it only
    // reads the allocator's statistics (under the allocator's own locks).
    let info = unsafe { libc::mallinfo2() };
    Some(info.uordblks.saturating_add(info.hblkhd) as u64)
}

/// Bytes allocated and not freed: not known with this allocator.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn from_malloc() -> Option<u64> {
    None
}

#[cfg(all(test, target_os = "linux", target_env = "gnu"))]
mod tests {
    use super::*;

    #[test]
    fn a_block_held_is_counted() {
        // Other tests allocate and free on their threads meanwhile, so only a lower bound
        // holds: what this thread keeps allocated.
        // black_box: an optimised build would otherwise never allocate it.
        let block = std::hint::black_box(vec![1u8; 4 << 20]);
        let during = from_malloc().expect("glibc reports its heap");
        assert!(during >= block.len() as u64, "{during}");
    }
}
