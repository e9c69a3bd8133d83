#!/usr/bin/env bash
# Builds the small release binary of pipit: statically linked with musl, non-PIE, allocating
# with mimalloc (Cargo.toml says why), at target/<arch>-unknown-linux-musl/release/pipit. It
# needs no shared library, not even ld.so, and idles at about 1 MiB of RSS (the default
# glibc build, `cargo build --release`, maps ~1.4 MiB of glibc and ld.so pages alone).
# Non-PIE (`-C relocation-model=static`) leaves the loader no relocations to apply at start.
#
# It is as fast as the glibc build: on x86_64 the binary brings its own memcpy and memmove
# (src/memcpy.rs; musl's cost a sixth of fan-in and fan-out throughput), and mimalloc is
# faster than glibc's malloc. A static glibc build (`-C target-feature=+crt-static` on the
# gnu target) was measured instead and not kept: 0.9 MB larger, and glibc's getpwnam_r needs
# the shared NSS modules at run time, so it crashed switching away from root (`user`).
#
# Installs what it needs when missing: the rustup target and Debian's musl-tools (musl-gcc,
# the C compiler for ring's and mimalloc's C code). Native builds only (x86_64, aarch64).
# Arguments go to `cargo build` (e.g. --no-default-features); the binary's path is printed.
set -euo pipefail
cd "$(dirname "$0")/.."

target="$(uname -m)-unknown-linux-musl"
if ! command -v musl-gcc >/dev/null; then
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo=sudo
    echo "installing musl-tools" >&2
    $sudo apt-get install -y -qq musl-tools >/dev/null 2>&1 \
        || { $sudo apt-get update -qq && $sudo apt-get install -y -qq musl-tools >/dev/null; }
fi
rustup target list --installed | grep -qx "$target" || rustup target add "$target" >&2

upper=$(tr 'a-z-' 'A-Z_' <<<"$target")
export "CARGO_TARGET_${upper}_RUSTFLAGS=-C relocation-model=static"
# lld, with the functions an idle broker runs laid out together (scripts/link_ordered.sh).
export "CARGO_TARGET_${upper}_LINKER=$PWD/scripts/link_ordered.sh"
cargo build --release --target "$target" --bin pipit "$@" >&2
echo "${CARGO_TARGET_DIR:-target}/$target/release/pipit"
