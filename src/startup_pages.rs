//! Gives back, once start-up is over, the pages of program text and read-only data that only
//! start-up touched.
//!
//! The kernel maps a program's code as it is first run, 64 KiB around each page touched
//! (fault-around), and keeps it mapped. Start-up runs most of the binary once: argument and
//! configuration parsing, TLS set-up (rustls, ring), password files, the logger, the store's
//! recovery. In the static musl build that left 1,476 of its 2,372 KiB of text and 312 KiB of
//! read-only data resident, three quarters of its idle RSS, while the running loop (reads,
//! writes, the once-a-second sweep) touches 376 KiB of text and none of the rest.
//!
//! What the loop faults back in after [`release`] comes 64 KiB at a time too, so the static
//! build lays the functions the idle loop runs out next to each other (`scripts/static.sh`
//! links through `scripts/link_ordered.sh`): 356-424 KiB of text idle instead of 704.
//!
//! [`release`] unmaps every read-only, file-backed mapping's pages from this process with
//! `madvise(MADV_DONTNEED)`: they stay in the page cache, and a page the broker needs again is
//! mapped back by the next fault, from memory, not from disk. Only mappings without private
//! (copy-on-write) pages are given back: for those, `MADV_DONTNEED` would throw away what the
//! loader wrote (relocations in `RELRO`) and map the file's bytes instead. Linux only
//! (`/proc/self/smaps`); elsewhere, and on any error, it does nothing: the figure is memory
//! use, not behaviour.

use log::debug;

/// Unmaps the resident pages of this process's read-only file mappings (program text and
/// read-only data, its own and any shared library's); returns how many KiB were resident in
/// them. Best effort: a mapping that cannot be read or advised is left as it is.
pub fn release() -> u64 {
    // First, so that the pages its own code touches are given back with the rest.
    collect_heap();
    let Ok(smaps) = std::fs::read_to_string("/proc/self/smaps") else {
        return 0;
    };
    let mut released = 0;
    for mapping in read_only_file_mappings(&smaps) {
        // SAFETY: the range is a whole mapping of this process, read-only and backed by an
        // unmodified file: dropping its pages changes no byte a later access reads.
        let advised = unsafe {
            libc::madvise(
                mapping.start as *mut libc::c_void,
                mapping.len,
                libc::MADV_DONTNEED,
            )
        };
        if advised == 0 {
            released += mapping.rss_kib;
        }
    }
    debug!("start-up pages released: {released} KiB of read-only file mappings");
    released
}

/// Returns the free pages start-up left in mimalloc's arena (the static musl build's
/// allocator) to the kernel now, not after its purge delay.
#[cfg(target_env = "musl")]
fn collect_heap() {
    unsafe extern "C" {
        /// mimalloc's `void mi_collect(bool force)`.
        fn mi_collect(force: bool);
    }
    // SAFETY: mi_collect takes no pointers; it frees only memory no block is allocated in.
    unsafe { mi_collect(true) }
}

/// glibc's free memory is trimmed by the broker's own sweep (`malloc_trim`).
#[cfg(not(target_env = "musl"))]
fn collect_heap() {}

/// One entry of `/proc/self/smaps` that [`release`] may give back.
#[derive(Debug, PartialEq)]
struct Mapping {
    /// First address.
    start: usize,
    /// Length in bytes.
    len: usize,
    /// Resident KiB (`Rss:`).
    rss_kib: u64,
}

/// The mappings of an smaps text that are file-backed, not writable, resident and hold no
/// private copy of any page (`Anonymous: 0`).
fn read_only_file_mappings(smaps: &str) -> Vec<Mapping> {
    let mut found = Vec::new();
    // The mapping whose fields are being read: its range, and whether it qualifies so far.
    let mut current: Option<(usize, usize, bool)> = None;
    let mut rss_kib = 0;
    for line in smaps.lines() {
        let mut fields = line.split_whitespace();
        let Some(first) = fields.next() else { continue };
        if let Some((start, end)) = first.split_once('-').and_then(|(a, b)| {
            Some((
                usize::from_str_radix(a, 16).ok()?,
                usize::from_str_radix(b, 16).ok()?,
            ))
        }) {
            // A header: "start-end perms offset dev inode [path]".
            let perms = fields.next().unwrap_or("");
            let path = fields.nth(3).unwrap_or("");
            let read_only = perms.starts_with('r') && perms.get(1..2) == Some("-");
            current = Some((start, end, read_only && path.starts_with('/')));
            rss_kib = 0;
            continue;
        }
        let value = fields
            .next()
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0);
        match (first, current) {
            ("Rss:", Some(_)) => rss_kib = value,
            ("Anonymous:", Some((start, end, true))) if value == 0 && rss_kib > 0 => {
                found.push(Mapping {
                    start,
                    len: end - start,
                    rss_kib,
                });
            }
            _ => {}
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::{Mapping, read_only_file_mappings, release};

    const SMAPS: &str = "\
00400000-00401000 r--p 00000000 fe:01 123 /usr/bin/pipit
Rss:                   4 kB
Anonymous:             0 kB
00401000-00650000 r-xp 00001000 fe:01 123 /usr/bin/pipit
Size:               2372 kB
Rss:                1476 kB
Anonymous:             0 kB
00700000-00708000 rw-p 00300000 fe:01 123 /usr/bin/pipit
Rss:                  32 kB
Anonymous:            20 kB
7f0000000000-7f0000010000 r--p 00000000 fe:01 456 /usr/lib/libc.so.6
Rss:                  16 kB
Anonymous:             4 kB
7f0000020000-7f0000030000 r--p 00000000 fe:01 457 /usr/lib/other.so
Rss:                   0 kB
Anonymous:             0 kB
7ffd00000000-7ffd00021000 rw-p 00000000 00:00 0 [stack]
Rss:                  36 kB
Anonymous:            36 kB
7ffd10000000-7ffd10002000 r-xp 00000000 00:00 0 [vdso]
Rss:                   4 kB
Anonymous:             0 kB
";

    /// Text and read-only data of a file qualify; writable, copied-on-write (relocated),
    /// unresident and anonymous or special mappings do not.
    #[test]
    fn only_unmodified_read_only_file_pages_are_given_back() {
        assert_eq!(
            read_only_file_mappings(SMAPS),
            vec![
                Mapping {
                    start: 0x400000,
                    len: 0x1000,
                    rss_kib: 4
                },
                Mapping {
                    start: 0x401000,
                    len: 0x24f000,
                    rss_kib: 1476
                },
            ]
        );
    }

    /// On this process: its text is resident before, gives back pages, and the code runs on
    /// afterwards (faulted back in from the page cache).
    #[test]
    fn release_unmaps_resident_text_and_code_still_runs() {
        let released = release();
        assert!(released > 0, "nothing resident was given back");
        let again: u64 = (1..=10u64).map(|i| i * i).sum();
        assert_eq!(again, 385);
        let smaps = std::fs::read_to_string("/proc/self/smaps").expect("smaps readable");
        assert!(
            !read_only_file_mappings(&smaps).is_empty(),
            "text mapped back by faults"
        );
    }
}
