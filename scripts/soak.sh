#!/usr/bin/env bash
# Soak: pipit (release build, persistence on) under mixed traffic for SOAK_SECONDS, sampling
# its RSS and open file descriptors every 10 s into a CSV, then checking that both stayed
# flat and that every QoS 1/2 message was accounted for.
#
# Traffic, each a loop of pipit-load runs side by side until the time is up (every run is
# a fresh set of connections, so clients reconnect all the time):
#   qos2-bounce  fan-out QoS 2 to 4 persistent subscribers that leave and resume their
#                sessions every 5 s (alternately DISCONNECT and a reset): exactly once each
#   qos1-bounce  fan-in QoS 1, 4 publishers -> 2 persistent subscribers bouncing every 4 s:
#                at least once each
#   offline      QoS 2 queued for 2 offline persistent subscribers, then `resume`: exactly
#                the number sent arrives
#   retained     QoS 1 retained on 50 topics per publisher (replacing what earlier runs left),
#                a few topics cleared after each run with an empty retained message
#   churn        p2p QoS 0, 20 pairs on topics new to every run: subscriptions come and go
#   conns        200 idle connections opened and dropped every few seconds
# and SIGHUP (a configuration reload) every SOAK_HUP_SECONDS.
#
# Checks (exit 1 on any failure):
#   - every QoS 1/2 run: nothing lost, and for QoS 2 nothing duplicated (pipit-load counts
#     per (publisher, subscriber) stream by sequence number, across reconnects); no client
#     failed; every `resume` got exactly what its fill sent;
#   - RSS: after the warm-up (SOAK_SECONDS / 6, at least 30 s), every sample is within 10%
#     (or 1 MiB, if larger) of the plateau, the largest of the first three samples after it,
#     and so is the RSS 5 s after the traffic stopped;
#   - fds: never more than at idle plus the connections the traffic can hold at once (+10%),
#     and back to the idle count (+/- 2: store segments) 5 s after the traffic stopped.
#
# Environment:
#   SOAK_SECONDS      traffic time                                   [1800]
#   SOAK_PORT         pipit's port                                   [18861]
#   SOAK_HUP_SECONDS  seconds between SIGHUPs                        [60]
#   SOAK_OUT          where the CSV and the run's results are kept   [target/soak]
# The CSV (t_s,rss_kb,fds,store_kb,runs) goes to $SOAK_OUT/soak-<time>.csv and latest.csv.
# Only processes this script started are stopped, by PID, on exit.
set -euo pipefail
cd "$(dirname "$0")/.."

SECS=${SOAK_SECONDS:-1800}
PORT=${SOAK_PORT:-18861}
HUP_EVERY=${SOAK_HUP_SECONDS:-60}
OUT=${SOAK_OUT:-target/soak}
SAMPLE_EVERY=10
WARM=$((SECS / 6 > 30 ? SECS / 6 : 30))
# The most connections the workers below hold at once (5 + 6 + 4 + 3 + 40 + 200), plus 10%
# for closes the broker has not yet seen.
MAX_CLIENTS=284

log() { echo "[soak] $*" >&2; }

cargo build --release --bins --quiet
mkdir -p "$OUT"
STAMP=$(date -u +%Y%m%dT%H%M%SZ)
CSV="$OUT/soak-$STAMP.csv"
work=$(mktemp -d /tmp/pipit-soak.XXXXXX)
# Copies, so a rebuild during a long soak does not swap the binaries under it.
cp target/release/pipit target/release/pipit-load "$work/"
PIPIT=$work/pipit
LOAD=$work/pipit-load
PIDS=()
cleanup() {
    local p
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT

cat >"$work/pipit.conf" <<EOF
listener $PORT 127.0.0.1
allow_anonymous true
persistence true
persistence_location $work/store/
# Snapshots (and the deletion of older log segments) during the soak, not only at its end.
autosave_interval 120
# Bouncing subscribers are owed up to a window (1,000 per publisher) while away.
max_queued_messages 10000
EOF
mkdir -p "$work/store"
# Started as root, pipit runs as user mosquitto: let it reach the store and write its log.
chmod a+x "$work" && chmod 777 "$work/store"
"$PIPIT" -c "$work/pipit.conf" >"$work/pipit.log" 2>&1 &
BPID=$!
PIDS+=("$BPID")
for _ in $(seq 100); do
    grep -q "listening on" "$work/pipit.log" && break
    kill -0 "$BPID" 2>/dev/null || { log "pipit exited: $(cat "$work/pipit.log")"; exit 1; }
    sleep 0.1
done

rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$BPID/status"; }
fds() { find "/proc/$BPID/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l; }
store_kb() { du -sk "$work/store" | cut -f1; }
# field FILE KEY: the first value of KEY in a pipit-load JSON line.
field() { grep -o "\"$2\":[^,}]*" "$1" | head -1 | cut -d: -f2; }
fail_run() { echo "$*" >>"$work/failures"; log "FAIL: $*"; }

sleep 1
IDLE_RSS=$(rss_kb)
IDLE_FDS=$(fds)
log "pipit $BPID idle: RSS $IDLE_RSS KiB, $IDLE_FDS fds; ${SECS} s of traffic, warm-up ${WARM} s"
START=$(date +%s)
END=$((START + SECS))

# check_run NAME FILE QOS: a traffic run lost nothing (QoS >= 1), duplicated nothing (QoS 2)
# and had no client fail.
check_run() {
    local name=$1 f=$2 qos=$3 lost dup failures
    lost=$(field "$f" lost) dup=$(field "$f" duplicated) failures=$(field "$f" client_failures)
    if [ -z "$lost" ]; then
        fail_run "$name: no result: $(tail -c 300 "$f.err" | tr '\n' ' ')"
        return
    fi
    [ "$qos" -ge 1 ] && [ "$lost" != 0 ] && fail_run "$name: lost $lost ($f)"
    [ "$qos" -eq 2 ] && [ "$dup" != 0 ] && fail_run "$name: duplicated $dup ($f)"
    [ "$failures" != 0 ] && fail_run "$name: $failures client failures ($f)"
    return 0
}

# run_once NAME QOS ARGS...: one `pipit-load ARGS` run, checked.
run_once() {
    local name=$1 qos=$2 f
    shift 2
    f="$work/$name.$(date +%s%N).json"
    "$LOAD" "$@" --port "$PORT" --quiet --timeout 120 >"$f" 2>"$f.err" || true
    check_run "$name" "$f" "$qos"
    echo "$name" >>"$work/runs"
}

# worker NAME QOS ARGS...: `run_once` until the time is up.
worker() {
    while [ "$(date +%s)" -lt "$END" ]; do
        run_once "$@"
    done
}

# The offline worker: a QoS 2 fill for offline persistent subscribers, then `resume`.
offline_worker() {
    local n=0 f got want=$((2 * 300 * 2))
    while [ "$(date +%s)" -lt "$END" ]; do
        n=$((n + 1))
        f="$work/offline.$n"
        "$LOAD" fanin --qos 2 --persistent --offline --prefix soak-o --publishers 2 \
            --subscribers 2 --count 300 --rate 300 --port "$PORT" --quiet --timeout 120 \
            >"$f.fill.json" 2>"$f.fill.json.err" || true
        sleep 2
        "$LOAD" resume --qos 2 --prefix soak-o --subscribers 2 --drain 3 --port "$PORT" \
            --quiet --timeout 120 >"$f.json" 2>"$f.json.err" || true
        got=$(field "$f.json" delivered)
        [ "$got" = "$want" ] || fail_run "offline: resume got ${got:-nothing} of $want ($f.json)"
        echo offline >>"$work/runs"
    done
}

# The retained worker also clears a few of its topics after each run.
retained_worker() {
    local k
    while [ "$(date +%s)" -lt "$END" ]; do
        run_once retained 1 fanin --qos 1 --retain --topics 50 --prefix soak-r --publishers 2 \
            --subscribers 1 --duration 10 --rate 400
        if command -v mosquitto_pub >/dev/null; then
            for k in 0 7 13 21 34; do
                mosquitto_pub -p "$PORT" -r -n -q 1 -t "soak-r/in/0-$k" || true
            done
        fi
    done
}

WORKERS=()
worker qos2-bounce 2 fanout --qos 2 --persistent --bounce 5 --prefix soak-f --subscribers 4 \
    --duration 20 --rate 400 &
WORKERS+=($!)
worker qos1-bounce 1 fanin --qos 1 --persistent --bounce 4 --prefix soak-i --publishers 4 \
    --subscribers 2 --duration 20 --rate 800 &
WORKERS+=($!)
offline_worker &
WORKERS+=($!)
retained_worker &
WORKERS+=($!)
worker churn 0 p2p --qos 0 --pairs 20 --duration 5 --rate 2000 &
WORKERS+=($!)
worker conns 0 conns --conns 200 --conn-rate 100 --hold 3 &
WORKERS+=($!)
PIDS+=("${WORKERS[@]}")

echo "t_s,rss_kb,fds,store_kb,runs" >"$CSV"
sample() { # t
    echo "$1,$(rss_kb),$(fds),$(store_kb),$(wc -l <"$work/runs" 2>/dev/null || echo 0)" >>"$CSV"
}
next_hup=$((START + HUP_EVERY))
hups=0
while [ "$(date +%s)" -lt "$END" ]; do
    sleep "$SAMPLE_EVERY"
    kill -0 "$BPID" 2>/dev/null || { log "FAIL: pipit died: $(tail -5 "$work/pipit.log")"; exit 1; }
    now=$(date +%s)
    sample $((now - START))
    if [ "$now" -ge "$next_hup" ]; then
        kill -HUP "$BPID"
        hups=$((hups + 1))
        next_hup=$((now + HUP_EVERY))
    fi
    if [ $(((now - START) % 60)) -lt "$SAMPLE_EVERY" ]; then
        log "$(tail -1 "$CSV")"
    fi
done
log "time is up; waiting for the runs in progress"
for w in "${WORKERS[@]}"; do wait "$w" || true; done
sleep 5
kill -0 "$BPID" 2>/dev/null || { log "FAIL: pipit died: $(tail -5 "$work/pipit.log")"; exit 1; }
END_RSS=$(rss_kb)
END_FDS=$(fds)
cp "$CSV" "$OUT/latest.csv"

# --- checks
status=0
if [ -s "$work/failures" ]; then
    log "$(wc -l <"$work/failures") failed checks (first: $(head -1 "$work/failures"))"
    status=1
fi
runs=$(wc -l <"$work/runs" 2>/dev/null || echo 0)
log "runs: $(sort "$work/runs" | uniq -c | awk '{ printf "%s %s, ", $2, $1 }')SIGHUPs: $hups"
# totals NAME: messages published and delivered (once per subscriber) over its runs.
totals() {
    local f v sent=0 delivered=0
    for f in "$work/$1".*.json; do
        [ -f "$f" ] || continue
        v=$(field "$f" sent) && sent=$((sent + ${v:-0}))
        v=$(field "$f" delivered) && delivered=$((delivered + ${v:-0}))
    done
    printf '%s %s/%s, ' "$1" "$sent" "$delivered"
}
published=$(for n in qos2-bounce qos1-bounce offline retained churn; do totals "$n"; done)
log "messages published/delivered: ${published%, }"
plateau=$(awk -F, -v w="$WARM" 'NR > 1 && $1 >= w { if (n < 3 && $2 > m) m = $2; n++ } END { print m + 0 }' "$CSV")
if [ "$plateau" -eq 0 ]; then
    log "FAIL: no sample after the warm-up"
    status=1
else
    limit=$(awk -v p="$plateau" 'BEGIN { s = p * 0.10; if (s < 1024) s = 1024; printf "%d", p + s }')
    worst=$(awk -F, -v w="$WARM" 'NR > 1 && $1 >= w && $2 > m { m = $2 } END { print m + 0 }' "$CSV")
    log "RSS: idle $IDLE_RSS KiB, plateau $plateau KiB, largest after warm-up $worst KiB," \
        "after the traffic $END_RSS KiB (limit $limit KiB)"
    if [ "$worst" -gt "$limit" ] || [ "$END_RSS" -gt "$limit" ]; then
        log "FAIL: RSS grew past the plateau + 10%"
        status=1
    fi
fi
max_fds=$(awk -F, 'NR > 1 && $3 > m { m = $3 } END { print m + 0 }' "$CSV")
log "fds: idle $IDLE_FDS, largest $max_fds (limit $((IDLE_FDS + MAX_CLIENTS))), after the traffic $END_FDS"
if [ "$max_fds" -gt $((IDLE_FDS + MAX_CLIENTS)) ] || [ "$END_FDS" -gt $((IDLE_FDS + 2)) ] \
    || [ "$END_FDS" -lt $((IDLE_FDS - 2)) ]; then
    log "FAIL: descriptors not back to the idle count, or above the bound"
    status=1
fi
[ "$runs" -gt 0 ] || { log "FAIL: no traffic run completed"; status=1; }
log "samples in $CSV"
[ "$status" = 0 ] && log "soak passed" || log "soak FAILED"
exit "$status"
