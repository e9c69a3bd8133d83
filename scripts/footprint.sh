#!/usr/bin/env bash
# The README's footprint figures (issue 18): stripped size and idle RSS of the pipit binary
# built full (default features) and minimal (--no-default-features), static musl
# (scripts/static.sh) and glibc (cargo build --release), and of benches/examples/embed_idle.rs
# (a program that embeds the broker with one local client subscribed), glibc, full and
# minimal. Idle RSS is VmRSS 2.5 s after the broker listens, once the binary has given back
# the pages only start-up touched (at 1.5 s: src/startup_pages.rs), or 0.5 s after the
# example's client's SUBACK (a library does not do that for its program), nothing connected; each is measured FOOTPRINT_RUNS times (default 5) and printed
# as min-max. Honours CARGO_TARGET_DIR. Release builds take minutes each: with
# FOOTPRINT_DIR=DIR the binaries are kept there, and one already there is measured as it is
# (delete it to build it again).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
source scripts/lib.sh
runs=${FOOTPRINT_RUNS:-5}
target_dir=${CARGO_TARGET_DIR:-target}
work=$(mktemp -d)
bins=${FOOTPRINT_DIR:-$work}
mkdir -p "$bins"
broker_pid=""
trap 'cleanup_run' EXIT

vmrss() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }

# Builds a variant and keeps a copy (the next build of the same target overwrites it).
build() { # name, built path, build command...
    local name=$1 path=$2
    shift 2
    [ -e "$bins/$name" ] && return
    "$@" >&2
    cp "$path" "$bins/$name"
}
static() { # name, arguments for scripts/static.sh
    local name=$1
    shift
    [ -e "$bins/$name" ] && return
    cp "$(scripts/static.sh "$@")" "$bins/$name"
}
build glibc-full "$target_dir/release/pipit" cargo build --release --bin pipit
build glibc-min "$target_dir/release/pipit" cargo build --release --bin pipit --no-default-features
static musl-full
static musl-min --no-default-features
build embed-full "$target_dir/release/examples/embed_idle" cargo build --release --example embed_idle
build embed-min "$target_dir/release/examples/embed_idle" \
    cargo build --release --example embed_idle --no-default-features

# Idle RSS of the broker binary: its listener on an ephemeral loopback port.
broker_rss() {
    RUST_LOG=info "$1" --port 0 2>"$work/broker.log" &
    broker_pid=$!
    logged_port "$work/broker.log" "$broker_pid" 10 >/dev/null || fail "$1 did not start"
    sleep 2.5
    vmrss "$broker_pid"
    kill "$broker_pid"
    wait "$broker_pid" 2>/dev/null || true
    broker_pid=""
}

# Idle RSS of the embedding example: it prints `ready PID` once subscribed, and runs until
# its standard input closes.
embed_rss() {
    local fifo="$work/stdin"
    rm -f "$fifo"
    mkfifo "$fifo"
    "$1" <"$fifo" >"$work/embed.out" &
    broker_pid=$!
    exec 3>"$fifo"
    for _ in $(seq 100); do
        grep -q '^ready' "$work/embed.out" && break
        sleep 0.1
    done
    grep -q '^ready' "$work/embed.out" || fail "$1 did not get ready"
    sleep 0.5
    vmrss "$broker_pid"
    exec 3>&-
    wait "$broker_pid"
    broker_pid=""
}

printf '%-11s %10s %16s\n' variant bytes "idle RSS, KiB"
for name in glibc-full glibc-min musl-full musl-min embed-full embed-min; do
    measure=broker_rss
    [[ $name == embed-* ]] && measure=embed_rss
    samples=()
    for _ in $(seq "$runs"); do
        samples+=("$("$measure" "$bins/$name")")
    done
    sorted=$(printf '%s\n' "${samples[@]}" | sort -n)
    printf '%-11s %10s %16s\n' "$name" "$(stat -c %s "$bins/$name")" \
        "$(head -1 <<<"$sorted")-$(tail -1 <<<"$sorted")"
done
