#!/usr/bin/env bash
# Connection storm: STORM_RATE new connections per second for STORM_SECONDS against the
# release build of pipit (`pipit-load storm`): each connection closes as soon as its CONNACK
# arrives, every third with a reset (SO_LINGER 0), the others with DISCONNECT and a close.
# The broker's RSS (VmRSS) and open file descriptors (/proc/PID/fd) are sampled before,
# every 0.5 s during, and after the storm into a CSV; the script fails unless both are back
# to the pre-storm level (RSS within 10% or 512 KiB, fds within 10%, see `within`) within
# STORM_SETTLE seconds after the storm, and every connection got its CONNACK.
#
# The pre-storm level is that of a broker in service: 2 s after start (once the binary has
# given back the pages only start-up touched, src/startup_pages.rs) it has taken one second
# of the same storm, 10,000 connections, and it has published `$SYS` once (12 s after start).
# So the code that serves a storm is paged in (its rarer paths too: slab growth and shrink,
# trims; RssFile in the CSV, next to RssAnon, the heap), and what a burst leaves in the
# allocator is in the base. The storm then opens ten times as many: anything it keeps per
# connection shows.
# A storm must leave nothing behind beyond that: not its peak's connection slots, buffers or
# heap. The CSV also has the RSS at start, for comparison.
#
# Environment:
#   STORM_RATE     connections per second                     [10000]
#   STORM_SECONDS  storm length                               [10]
#   STORM_SETTLE   seconds allowed to get back                [10]
#   STORM_PORT     pipit's port                               [18871]
#   STORM_OUT      where the CSV goes (storm-<time>.csv)      [target/storm]
#   STORM_PIN      1: load generator on CPU 0, pipit on CPU 1  [0: on a busy shared machine
#                  pinning starves both]
#   PIPIT_BIN      the broker binary (to compare builds)       [target/release/pipit]
# Only processes this script started are stopped, by PID, on exit.
set -euo pipefail
cd "$(dirname "$0")/.."

RATE=${STORM_RATE:-10000}
SECS=${STORM_SECONDS:-10}
SETTLE=${STORM_SETTLE:-10}
PORT=${STORM_PORT:-18871}
OUT=${STORM_OUT:-target/storm}

log() { echo "[storm] $*" >&2; }

cargo build --release --bins --quiet
PIPIT=${PIPIT_BIN:-target/release/pipit}
mkdir -p "$OUT"
CSV="$OUT/storm-$(date -u +%Y%m%dT%H%M%SZ).csv"
work=$(mktemp -d /tmp/pipit-storm.XXXXXX)
PIDS=()
cleanup() {
    local p
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT

# The load generator on CPU 0 and the broker on CPU 1, where there are two.
LOAD_PIN=() BROKER_PIN=()
if [ "${STORM_PIN:-0}" = 1 ] && [ "$(nproc)" -ge 2 ] && command -v taskset >/dev/null; then
    LOAD_PIN=(taskset -c 0) BROKER_PIN=(taskset -c 1)
fi

printf 'listener %s 127.0.0.1\nallow_anonymous true\n' "$PORT" >"$work/pipit.conf"
"${BROKER_PIN[@]}" "$PIPIT" -c "$work/pipit.conf" >"$work/pipit.log" 2>&1 &
BPID=$!
STARTED=$SECONDS
PIDS+=("$BPID")
for _ in $(seq 100); do
    grep -q "listening on" "$work/pipit.log" && break
    kill -0 "$BPID" 2>/dev/null || { log "pipit exited: $(cat "$work/pipit.log")"; exit 1; }
    sleep 0.1
done

rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$BPID/status"; }
fds() { find "/proc/$BPID/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l; }
T0=$(date +%s%N)
kb() { awk -v k="$1:" '$1 == k { print $2 }' "/proc/$BPID/status"; }
sample() {
    echo "$(((($(date +%s%N) - T0) / 1000000))),$1,$(rss_kb),$(kb RssAnon),$(kb RssFile),$(fds)" >>"$CSV"
}
echo "ms,phase,rss_kb,anon_kb,file_kb,fds" >"$CSV"

storm() { # seconds json
    "${LOAD_PIN[@]}" target/release/pipit-load storm --port "$PORT" --conn-rate "$RATE" \
        --duration "$1" --broker-pid "$BPID" --quiet >"$2"
}

sample start
log "pipit $BPID: RSS $(rss_kb) KiB, $(fds) fds at start; one second of the storm first"
sleep 2
storm 1 "$work/warmup.json" 2>/dev/null
# The base waits for the first `$SYS` publication (sys_interval 10 s after start) too: its
# code and its retained topics are part of a broker in service (in one CI run they came
# during the storm, +380 KiB of code pages and +200 KiB of heap, and failed the check).
to_base=$((STARTED + 12 - SECONDS))
sleep $((to_base > 3 ? to_base : 3))
sample before
BEFORE_RSS=$(rss_kb) BEFORE_FDS=$(fds)
log "before: RSS $BEFORE_RSS KiB, $BEFORE_FDS fds; storm of $RATE conn/s for $SECS s"
(while kill -0 "$BPID" 2>/dev/null; do sample during; sleep 0.5; done) &
SAMPLER=$!
PIDS+=("$SAMPLER")
storm "$SECS" "$work/storm.json" || log "pipit-load storm failed"
kill "$SAMPLER" 2>/dev/null || true
wait "$SAMPLER" 2>/dev/null || true
kill -0 "$BPID" 2>/dev/null || { log "FAIL: pipit died: $(tail -5 "$work/pipit.log")"; exit 1; }

field() { grep -o "\"$1\":[^,}]*" "$work/storm.json" | head -1 | cut -d: -f2; }
ok=$(field conns_ok) failed=$(field conns_failed) dropped=$(field conns_dropped)
resets=$(field conns_reset) rate=$(field conn_rate_per_s)
peak_rss=$(awk -F, '$2 == "during" && $3 > m { m = $3 } END { print m + 0 }' "$CSV")
peak_fds=$(awk -F, '$2 == "during" && $6 > m { m = $6 } END { print m + 0 }' "$CSV")
log "storm: ${ok:-?} connections ok (${resets:-?} reset), ${failed:-?} failed, ${dropped:-?}" \
    "dropped, ${rate:-?} conn/s; peak RSS $peak_rss KiB, peak fds $peak_fds"

# RSS moves by a few hundred KiB with no leak in it: 64 KiB of code fault-around per rarely
# run function, the allocator's arenas. Against a base of ~2.2 MiB (since start-up's pages are
# given back) 10% is ~220 KiB, under that noise, so RSS gets 10% or 512 KiB, whichever is
# more; a leak of 6 bytes per storm connection (100,000) is still over it. fds: 10%.
within() { # value base [floor]: within 10% of base, or within floor of it
    awk -v v="$1" -v b="$2" -v f="${3:-0}" \
        'BEGIN { d = b * 0.10; if (f > d) d = f; exit !(v <= b + d && v >= b - d) }'
}
settled=""
for i in $(seq $((SETTLE * 2))); do
    sample after
    if within "$(rss_kb)" "$BEFORE_RSS" 512 && within "$(fds)" "$BEFORE_FDS"; then
        settled=$((i * 500))
        break
    fi
    sleep 0.5
done
AFTER_RSS=$(rss_kb) AFTER_FDS=$(fds)
log "after: RSS $AFTER_RSS KiB (anon $(kb RssAnon), file $(kb RssFile)), $AFTER_FDS fds" \
    "(before: $BEFORE_RSS KiB, $BEFORE_FDS fds; $(grep ',before,' "$CSV" | cut -d, -f4,5 | sed 's/,/ anon, file /'))"

status=0
want=$(awk -v r="$RATE" -v s="$SECS" 'BEGIN { printf "%d", r * s }')
if [ -z "$ok" ] || [ "${failed:-1}" != 0 ] || [ "${dropped:-1}" != 0 ]; then
    log "FAIL: ${failed:-?} connections got no CONNACK within 10 s, ${dropped:-?} were dropped"
    status=1
elif [ "$ok" != "$want" ]; then
    # Connections are opened on schedule whatever the broker does: fewer means the load
    # generator itself was short of CPU (a busy machine), not that pipit refused any.
    log "note: the load generator opened $ok of $want connections in the time (CPU-bound)"
fi
if [ -z "$settled" ]; then
    log "FAIL: RSS (10% or 512 KiB) or fds (10%) not back to the pre-storm level in $SETTLE s"
    status=1
else
    log "back to the pre-storm level (RSS 10% or 512 KiB, fds 10%) ${settled} ms after the storm"
fi
cp "$CSV" "$OUT/latest.csv"
log "samples in $CSV"
[ "$status" = 0 ] && log "storm passed" || log "storm FAILED"
exit "$status"
