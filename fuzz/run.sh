#!/bin/sh
# Builds and runs one pipit fuzz target with libFuzzer on the stable toolchain (no
# cargo-fuzz, no nightly): libfuzzer-sys links libFuzzer (built from source with the C++
# compiler), and rustc's stable codegen flags add the SanitizerCoverage instrumentation it
# feeds on. --target is explicit so build scripts and proc macros are built without it.
#
#   fuzz/run.sh codec|broker [libFuzzer options]     e.g. fuzz/run.sh codec -runs=10000000
#
# New inputs go to fuzz/work/<target>/ (ignored by git), findings to fuzz/artifacts/<target>/.
# fuzz/corpus/<target>/ is the kept, minimised corpus (read only here; see README, Fuzzing).
set -eu
target=${1:?usage: fuzz/run.sh codec|broker [libFuzzer options]}
shift
cd "$(dirname "$0")"
triple=$(rustc -vV | sed -n 's/^host: //p')
RUSTFLAGS="-Cpasses=sancov-module \
 -Cllvm-args=-sanitizer-coverage-level=4 \
 -Cllvm-args=-sanitizer-coverage-inline-8bit-counters \
 -Cllvm-args=-sanitizer-coverage-pc-table \
 -Cllvm-args=-sanitizer-coverage-trace-compares \
 -Cllvm-args=-sanitizer-coverage-stack-depth \
 --cfg fuzzing" \
  cargo build --release --target "$triple" --bin "$target"
mkdir -p "work/$target" "artifacts/$target"
case $target in
  broker) defaults="-max_len=16384 -timeout=10 -rss_limit_mb=2048" ;;
  *) defaults="-max_len=4096 -timeout=5 -rss_limit_mb=2048" ;;
esac
# shellcheck disable=SC2086 # $defaults is a list of options
exec "target/$triple/release/$target" $defaults -artifact_prefix="artifacts/$target/" \
  "$@" "work/$target" "corpus/$target"
