//! `memcpy` and `memmove` for the static musl build on x86_64 (`scripts/static.sh`), in place
//! of musl's own.
//!
//! musl's x86_64 `memcpy` aligns the destination and copies the tail one byte at a time
//! (single `movsb` instructions) around a `rep movsq`, and its `memmove` forwards to it: a
//! 64-byte PUBLISH copied into a subscriber's send buffer pays the `rep` start-up and up to 14
//! single-byte moves. Under `perf` it was 18% of the broker's cycles in fan-in QoS 0 and 15%
//! in fan-out (glibc's `memmove` in the same runs: 3%). The broker's copies are mostly short
//! (in fan-in QoS 0: 73% of calls 64 bytes or less, 27% 240 bytes, a few buffers of 512 KiB).
//! These copy up to 256 bytes with overlapping unaligned 16-byte loads and stores (SSE2, part
//! of x86_64), no loop and no `rep` start-up, and anything longer with one `rep movsb`, which
//! CPUs with ERMS/FSRM (Intel since Ivy Bridge, AMD since Zen 3) run as their fastest copy.
//!
//! Defining the symbols here keeps musl's: the linker takes an archive member only for a
//! symbol still undefined, and both of `memcpy.o`'s (`memcpy`, and `__memcpy_fwd` that only
//! musl's `memmove` calls) are then never needed. Every caller in the binary, Rust and the C
//! of ring and mimalloc, gets these. The bodies are loads, stores and inline assembly, nothing
//! the compiler could turn back into a call to `memcpy`.

use core::arch::asm;
use core::arch::x86_64::{__m128i, _mm_loadu_si128, _mm_storeu_si128};

/// Copies `n` bytes from `src` to `dest` (C's `memcpy`); returns `dest`.
///
/// # Safety
/// C's contract: both ranges valid for `n` bytes, not overlapping.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memcpy(dest: *mut u8, src: *const u8, n: usize) -> *mut u8 {
    // SAFETY: the caller's contract; `copy` allows overlap, so no-overlap is more than enough.
    unsafe { copy(dest, src, n) }
}

/// Copies `n` bytes from `src` to `dest`, which may overlap (C's `memmove`); returns `dest`.
///
/// # Safety
/// C's contract: both ranges valid for `n` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memmove(dest: *mut u8, src: *const u8, n: usize) -> *mut u8 {
    // A forward copy is safe unless `dest` starts inside `src..src + n` (then it would
    // overwrite source bytes before reading them); musl's test, too.
    let forward = (dest as usize).wrapping_sub(src as usize) >= n;
    let disjoint = forward && (src as usize).wrapping_sub(dest as usize) >= n;
    if n <= 64 || disjoint {
        // SAFETY: the caller's contract; `copy` reads up to 64 bytes whole before writing
        // and needs disjoint ranges only above that.
        return unsafe { copy(dest, src, n) };
    }
    if forward {
        // SAFETY: the caller's contract; `dest` is below `src`, so a forward copy reads every
        // byte before it is overwritten.
        unsafe { rep_movsb(dest, src, n) };
        return dest;
    }
    // SAFETY: backwards from the last byte with the direction flag set, as musl's memmove
    // does; the flag is cleared again before returning, as the ABI requires.
    unsafe {
        asm!(
            "std",
            "rep movsb",
            "cld",
            inout("rcx") n => _,
            inout("rdi") dest.add(n - 1) => _,
            inout("rsi") src.add(n - 1) => _,
            options(nostack, preserves_flags)
        );
    }
    dest
}

/// The copy of both: up to 64 bytes, every load before any store (so any overlap is safe);
/// up to 256, blocks of 64 that may overlap each other; longer, a forward `rep movsb`.
///
/// # Safety
/// Both ranges valid for `n` bytes; if longer than 64, the ranges do not overlap.
#[inline(always)]
unsafe fn copy(dest: *mut u8, src: *const u8, n: usize) -> *mut u8 {
    // SAFETY (all arms): every offset read or written is below `n`: a 16-byte access at
    // `n - 16` needs n >= 16, an 8-byte one at `n - 8` n >= 8, and so on, which each arm's
    // range guarantees.
    unsafe {
        match n {
            0 => {}
            1..=3 => {
                // First, middle and last byte: all of 1, 2 or 3 bytes.
                let (a, b, c) = (*src, *src.add(n / 2), *src.add(n - 1));
                *dest = a;
                *dest.add(n / 2) = b;
                *dest.add(n - 1) = c;
            }
            4..=7 => {
                let a = src.cast::<u32>().read_unaligned();
                let b = src.add(n - 4).cast::<u32>().read_unaligned();
                dest.cast::<u32>().write_unaligned(a);
                dest.add(n - 4).cast::<u32>().write_unaligned(b);
            }
            8..=15 => {
                let a = src.cast::<u64>().read_unaligned();
                let b = src.add(n - 8).cast::<u64>().read_unaligned();
                dest.cast::<u64>().write_unaligned(a);
                dest.add(n - 8).cast::<u64>().write_unaligned(b);
            }
            16..=32 => {
                let a = load(src);
                let b = load(src.add(n - 16));
                store(dest, a);
                store(dest.add(n - 16), b);
            }
            33..=64 => {
                let a = load(src);
                let b = load(src.add(16));
                let c = load(src.add(n - 32));
                let d = load(src.add(n - 16));
                store(dest, a);
                store(dest.add(16), b);
                store(dest.add(n - 32), c);
                store(dest.add(n - 16), d);
            }
            65..=128 => {
                copy64(dest, src);
                copy64(dest.add(n - 64), src.add(n - 64));
            }
            129..=256 => {
                copy64(dest, src);
                copy64(dest.add(64), src.add(64));
                copy64(dest.add(n - 128), src.add(n - 128));
                copy64(dest.add(n - 64), src.add(n - 64));
            }
            _ => rep_movsb(dest, src, n),
        }
    }
    dest
}

/// 64 bytes from `src` to `dest`, all read before any is written.
///
/// # Safety
/// Both ranges valid for 64 bytes.
#[inline(always)]
unsafe fn copy64(dest: *mut u8, src: *const u8) {
    // SAFETY: the caller's contract; offsets 0, 16, 32 and 48 plus 16 bytes stay within 64.
    unsafe {
        let (a, b, c, d) = (
            load(src),
            load(src.add(16)),
            load(src.add(32)),
            load(src.add(48)),
        );
        store(dest, a);
        store(dest.add(16), b);
        store(dest.add(32), c);
        store(dest.add(48), d);
    }
}

/// `n` bytes from `src` to `dest` with one forward `rep movsb`.
///
/// # Safety
/// Both ranges valid for `n` bytes, `dest` not inside `src..src + n`.
#[inline(always)]
unsafe fn rep_movsb(dest: *mut u8, src: *const u8, n: usize) {
    // SAFETY: the caller's contract; the direction flag is clear, as the ABI guarantees.
    unsafe {
        asm!(
            "rep movsb",
            inout("rcx") n => _,
            inout("rdi") dest => _,
            inout("rsi") src => _,
            options(nostack, preserves_flags)
        );
    }
}

/// 16 bytes from `p`, any alignment.
///
/// # Safety
/// `p..p + 16` readable.
#[inline(always)]
unsafe fn load(p: *const u8) -> __m128i {
    // SAFETY: the caller's contract; SSE2 is in every x86_64 CPU.
    unsafe { _mm_loadu_si128(p.cast()) }
}

/// 16 bytes to `p`, any alignment.
///
/// # Safety
/// `p..p + 16` writable.
#[inline(always)]
unsafe fn store(p: *mut u8, v: __m128i) {
    // SAFETY: the caller's contract; SSE2 is in every x86_64 CPU.
    unsafe { _mm_storeu_si128(p.cast(), v) }
}

#[cfg(test)]
mod tests {
    use super::{memcpy, memmove};

    /// Every length up to 300 at every source and destination offset up to 16, against a
    /// byte loop: the short arms' overlapping accesses and `rep movsb` both.
    #[test]
    fn memcpy_copies_every_length_and_alignment() {
        let src: Vec<u8> = (0..400u32).map(|i| (i * 7 + 3) as u8).collect();
        for n in 0..300 {
            for so in 0..16 {
                for d in 0..16 {
                    let mut dst = vec![0xAAu8; 340];
                    // SAFETY: so + n <= 315 < 400 and d + n <= 315 < 340; distinct buffers.
                    let r = unsafe { memcpy(dst.as_mut_ptr().add(d), src.as_ptr().add(so), n) };
                    assert_eq!(r, dst.as_mut_ptr().wrapping_add(d));
                    assert!(dst[..d].iter().all(|&b| b == 0xAA), "n {n} before dest");
                    assert_eq!(&dst[d..d + n], &src[so..so + n], "n {n} so {so} d {d}");
                    assert!(dst[d + n..].iter().all(|&b| b == 0xAA), "n {n} after dest");
                }
            }
        }
    }

    /// Overlapping moves both ways, short and long, against `Vec::copy_within`'s meaning
    /// computed by a byte loop on a copy.
    #[test]
    fn memmove_handles_overlap_in_both_directions() {
        for n in [
            0, 1, 3, 7, 8, 15, 16, 31, 32, 33, 63, 64, 65, 100, 128, 129, 240, 256, 257, 1000,
        ] {
            for (from, to) in [
                (0, 1),
                (1, 0),
                (0, 17),
                (17, 0),
                (5, 5),
                (0, 64),
                (64, 3),
                (0, 140),
                (140, 0),
            ] {
                let orig: Vec<u8> = (0..1200u32).map(|i| (i * 13 + 1) as u8).collect();
                let mut want = orig.clone();
                let tmp = want[from..from + n].to_vec();
                want[to..to + n].copy_from_slice(&tmp);
                let mut got = orig.clone();
                let base = got.as_mut_ptr();
                // SAFETY: from + n and to + n are at most 1140 < 1200, within one buffer.
                let r = unsafe { memmove(base.add(to), base.add(from), n) };
                assert_eq!(r, base.wrapping_add(to));
                assert_eq!(got, want, "n {n} from {from} to {to}");
            }
        }
    }
}
