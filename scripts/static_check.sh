#!/usr/bin/env bash
# Checks the small static build (scripts/static.sh): it builds, needs no shared library, and
# passes a QoS 1 message between mosquitto_sub and mosquitto_pub. Prints its size and idle RSS
# (figures, not pass/fail: scripts/bench.sh is where they are compared). Installs
# mosquitto-clients if missing (static.sh installs musl-tools and the rustup target).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
source scripts/lib.sh
need_mosquitto_clients
work=$(mktemp -d)
broker_pid=""
trap 'cleanup_run' EXIT

bin=$(scripts/static.sh)
echo "built $bin: $(stat -c %s "$bin") bytes"
linkage=$(ldd "$bin" 2>&1 || true) # ldd exits 1 for a static binary
if ! grep -q 'not a dynamic executable' <<<"$linkage"; then
    echo "FAIL: $bin is dynamically linked: $(head -3 <<<"$linkage")"
    exit 1
fi
echo "ok: statically linked (ldd: not a dynamic executable)"
# scripts/link_ordered.sh laid out the functions the idle loop runs together; most of the list
# must still name functions of this build, or the list is stale.
read -r matched listed <"$(ls -t "$(dirname "$bin")"/deps/pipit-*.order-count | head -1)"
echo "idle functions laid out together: $matched of the $listed in scripts/idle_functions.txt"
if [ "$matched" -lt $((listed * 9 / 10)) ]; then
    echo "FAIL: scripts/idle_functions.txt is stale: regenerate it with scripts/idle_profile.sh"
    exit 1
fi

# Port 0: the kernel picks a free port and the broker logs it.
RUST_LOG=info "$bin" --port 0 2>"$work/broker.log" &
broker_pid=$!
port=$(logged_port "$work/broker.log" "$broker_pid" 10) || fail "$port"
# The broker gives back start-up's pages after 1.5 s of running (src/startup_pages.rs).
sleep 2.5
echo "idle RSS: $(awk '/^VmRSS:/ { print $2 }' "/proc/$broker_pid/status") KiB, of which program text" \
    "$(awk '/^[0-9a-f]+-[0-9a-f]+ r-xp .*\/pipit$/ { text = 1; next } /^[0-9a-f]+-/ { text = 0 }
            text && /^Rss:/ { print $2 }' "/proc/$broker_pid/smaps") KiB"

payload="hello from the static build"
why=$(qos1_round_trip "$port" static/smoke "$payload" "$work/sub.out") || fail "$why"
echo "ok: QoS 1 message published and received through the static broker"
