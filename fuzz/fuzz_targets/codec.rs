//! libFuzzer entry for pipit's `codec` target (`pipit::fuzz::codec`); see README, Fuzzing.
#![no_main]

/// Records the largest allocation, which the target checks against its bound.
#[global_allocator]
static ALLOC: pipit::fuzz::PeakAlloc = pipit::fuzz::PeakAlloc;

libfuzzer_sys::fuzz_target!(|data: &[u8]| pipit::fuzz::codec(data));
