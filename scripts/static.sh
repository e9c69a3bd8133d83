#!/usr/bin/env bash
# Builds the small release binary of pipit: statically linked with musl, non-PIE, allocating
# with mimalloc (Cargo.toml says why), at target/<arch>-unknown-linux-musl/release/pipit. It
# needs no shared library, not even ld.so, so its idle RSS is about half that of the default
# glibc build (`cargo build --release`), whose glibc and ld.so pages alone are ~1.4 MiB.
# Non-PIE (`-C relocation-model=static`) leaves the loader no relocations to apply at start.
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
cargo build --release --target "$target" --bin pipit "$@" >&2
echo "${CARGO_TARGET_DIR:-target}/$target/release/pipit"
