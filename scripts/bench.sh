#!/usr/bin/env bash
# Compare pipit with Eclipse Mosquitto using the bundled load generator, pipit-load.
#
# Starts pipit (the static musl build of scripts/static.sh, building it) and Mosquitto
# (installing it with apt-get if missing and possible), each on its own loopback port with the
# same settings, runs the standard set against both in alternation (each scenario on pipit,
# then at once on Mosquitto) and prints one markdown table, also saved under target/bench/. A
# broker that is missing or does not start is reported as "n/a"; the other one is still
# measured.
#
# Environment:
#   BENCH_SECONDS    seconds per run (publishing time, conns hold time)        [5]
#   BENCH_CONNS      idle connections for the conns scenario                    [10000]
#   BENCH_CONN_RATE  connections opened per second                              [5000]
#   PIPIT_PORT       port for pipit                                             [18831]
#   MOSQ_PORT        port for Mosquitto                                         [18832]
#   BENCH_PIN        1: load generator on CPU 0, brokers on CPU 1 (if >= 2 CPUs) [1]
#   BENCH_BROKERS    which brokers to run: "pipit mosquitto", or just one       [pipit mosquitto]
#   BENCH_GLIBC      1: measure the glibc build, not the static musl one          [0]
#
# Exits 1 if a pipit run failed or lost, duplicated or reordered a message, so CI can run it
# short (BENCH_SECONDS=1 BENCH_CONNS=1000) as a check that the load scripts work end to end.
# Only processes this script started are stopped, by PID, on exit.
set -euo pipefail

cd "$(dirname "$0")/.."
SECS=${BENCH_SECONDS:-5}
CONNS=${BENCH_CONNS:-10000}
CONN_RATE=${BENCH_CONN_RATE:-5000}
PIPIT_PORT=${PIPIT_PORT:-18831}
MOSQ_PORT=${MOSQ_PORT:-18832}
PIN=${BENCH_PIN:-1}
BROKERS=${BENCH_BROKERS:-pipit mosquitto}
OUT_DIR=target/bench
STAMP=$(date +%Y%m%d-%H%M%S)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/pipit-bench.XXXXXX")
PIDS=()

log() { printf '[bench] %s\n' "$*" >&2; }

# shellcheck disable=SC2317 # run by the EXIT trap
cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# 10,000 connections need 10,000+ descriptors in the load generator and in each broker;
# brokers inherit this limit from the script.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
NOFILE=$(ulimit -n)
if [ "$NOFILE" != unlimited ] && [ "$NOFILE" -lt $((CONNS + 64)) ]; then
    log "ulimit -n is $NOFILE: lowering BENCH_CONNS from $CONNS to $((NOFILE - 64))"
    CONNS=$((NOFILE - 64))
fi

LOAD_PIN=() BROKER_PIN=()
if [ "$PIN" = 1 ] && command -v taskset >/dev/null && [ "$(nproc)" -ge 2 ]; then
    LOAD_PIN=(taskset -c 0)
    BROKER_PIN=(taskset -c 1)
fi

# --- binaries ---------------------------------------------------------------------------
# The broker is the static musl build (scripts/static.sh), the small one; the default glibc
# build (`cargo build --release`) if that cannot be built here, or with BENCH_GLIBC=1.
log "building (cargo build --release)"
if ! cargo build --release >&2; then
    log "full build failed; building only the load generator"
    cargo build --release --bin pipit-load >&2
fi
LOAD=target/release/pipit-load
PIPIT_BIN=$PWD/target/release/pipit
if [ "${BENCH_GLIBC:-0}" != 1 ]; then
    log "building the static musl broker (scripts/static.sh)"
    if static_bin=$(scripts/static.sh); then
        case $static_bin in /*) PIPIT_BIN=$static_bin ;; *) PIPIT_BIN=$PWD/$static_bin ;; esac
    else
        log "static musl build failed; measuring the glibc build"
    fi
fi

MOSQ_BIN=$(command -v mosquitto || true)
[ -z "$MOSQ_BIN" ] && [ -x /usr/sbin/mosquitto ] && MOSQ_BIN=/usr/sbin/mosquitto
if [ -z "$MOSQ_BIN" ] && [[ " $BROKERS " == *" mosquitto "* ]] && command -v apt-get >/dev/null; then
    log "installing mosquitto"
    if [ "$(id -u)" = 0 ]; then apt-get install -y mosquitto >&2 || true
    else sudo -n apt-get install -y mosquitto >&2 || true; fi
    MOSQ_BIN=$(command -v mosquitto || true)
    [ -z "$MOSQ_BIN" ] && [ -x /usr/sbin/mosquitto ] && MOSQ_BIN=/usr/sbin/mosquitto
fi

# --- brokers ----------------------------------------------------------------------------
write_config() { # file port name
    # pipit declares a stalled reader slow after slow_subscriber_timeout (default 5 s) and
    # holds its publishers back until then; the slow scenario measures what happens after.
    [ "$3" = pipit ] && echo "slow_subscriber_timeout 1" >"$1"
    cat >>"$1" <<EOF
listener $2 127.0.0.1
allow_anonymous true
max_connections -1
max_queued_messages 1000000
max_queued_bytes 0
persistence false
log_dest none
EOF
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status" 2>/dev/null || true; }

declare -A BPID BPORT IDLE_RSS
start_broker() { # name binary port
    local name=$1 bin=$2 port=$3 conf="$WORK/$1.conf" pid
    if [ -z "$bin" ] || [ ! -x "$bin" ]; then
        log "$name: not available"
        return
    fi
    if port_open "$port"; then
        log "$name: port $port is already in use; skipping"
        return
    fi
    : >"$conf"
    write_config "$conf" "$port" "$name"
    "${BROKER_PIN[@]}" "$bin" -c "$conf" >"$WORK/$name.log" 2>&1 &
    pid=$!
    PIDS+=("$pid")
    for _ in $(seq 50); do
        if ! kill -0 "$pid" 2>/dev/null; then
            log "$name: exited at startup: $(tail -c 300 "$WORK/$name.log" | tr '\n' ' ')"
            return
        fi
        if port_open "$port"; then
            sleep 0.2
            BPID[$name]=$pid
            BPORT[$name]=$port
            IDLE_RSS[$name]=$(rss_kb "$pid")
            log "$name: pid $pid on port $port, idle RSS ${IDLE_RSS[$name]} KiB"
            return
        fi
        sleep 0.1
    done
    log "$name: not listening on $port after 5 s"
}

for b in $BROKERS; do
    case $b in
        pipit) start_broker pipit "$PIPIT_BIN" "$PIPIT_PORT" ;;
        mosquitto) start_broker mosquitto "$MOSQ_BIN" "$MOSQ_PORT" ;;
        *) log "unknown broker $b" ;;
    esac
done
if [ ${#BPID[@]} -eq 0 ]; then
    log "no broker running; nothing to measure"
    exit 1
fi

# --- runs -------------------------------------------------------------------------------
mkdir -p "$OUT_DIR"
RAW="$OUT_DIR/bench-$STAMP.jsonl"
: >"$RAW"

# run LABEL ARGS...: the scenario on every running broker, back to back.
run() {
    local label=$1 b pid sampler
    shift
    for b in pipit mosquitto; do
        [ -n "${BPID[$b]:-}" ] || continue
        pid=${BPID[$b]}
        if ! kill -0 "$pid" 2>/dev/null; then
            log "$b is no longer running; skipping $label"
            continue
        fi
        log "$label on $b: pipit-load $*"
        # Broker RSS every 0.5 s while the run lasts (the slow-subscriber figure).
        (while kill -0 "$pid" 2>/dev/null; do rss_kb "$pid"; sleep 0.5; done) >"$WORK/$label.$b.rss" &
        sampler=$!
        if "${LOAD_PIN[@]}" "$LOAD" "$@" --port "${BPORT[$b]}" --broker-pid "$pid" --quiet \
            >"$WORK/$label.$b.json"; then
            printf '{"label":"%s","broker":"%s","run":%s}\n' "$label" "$b" "$(cat "$WORK/$label.$b.json")" >>"$RAW"
        else
            log "$label on $b failed"
            rm -f "$WORK/$label.$b.json"
        fi
        kill "$sampler" 2>/dev/null || true
        wait "$sampler" 2>/dev/null || true
    done
}

D=(--duration "$SECS")
# conns first, so "idle" is a fresh broker and the per-connection delta is clean; slow next,
# before QoS 1/2 runs leave the broker's heap large enough to hide a backlog's growth.
run conns conns --conns "$CONNS" --conn-rate "$CONN_RATE" --hold "$SECS"
run slow slow --qos 0 --publishers 1 --subscribers 4 --size 64 "${D[@]}"
# The same three readers with nobody stalled: what "the others' throughput" is compared to.
run slowbase fanout --qos 0 --publishers 1 --subscribers 3 --size 64 "${D[@]}"
run fanin0 fanin --qos 0 --publishers 16 --size 64 "${D[@]}"
run fanin1 fanin --qos 1 --publishers 16 --size 64 "${D[@]}"
run fanin2 fanin --qos 2 --publishers 16 --size 64 "${D[@]}"
run fanout0 fanout --qos 0 --publishers 1 --subscribers 100 --size 64 "${D[@]}"
run fanout1k fanout --qos 0 --publishers 1 --subscribers 1000 --size 64 "${D[@]}"
run p2p1 p2p --qos 1 --pairs 100 --size 64 "${D[@]}"
run lat0 latency --qos 0 --rate 1000 --size 64 "${D[@]}"
run lat1 latency --qos 1 --rate 1000 --size 64 "${D[@]}"

# --- table ------------------------------------------------------------------------------
# field LABEL BROKER KEY: a number from that run's JSON (keys are unique), or empty.
field() {
    local f="$WORK/$1.$2.json"
    [ -f "$f" ] || return 0
    grep -o "\"$3\":[^,}]*" "$f" | head -1 | cut -d: -f2 | sed 's/null//' || true
}

# fmt VALUE: thousands-separated integer, or n/a.
fmt() {
    if [ -z "$1" ]; then echo "n/a"; else awk -v v="$1" 'BEGIN {
        s = sprintf("%.0f", v); out = ""; n = length(s); neg = substr(s, 1, 1) == "-"
        if (neg) { s = substr(s, 2); n-- }
        for (i = 1; i <= n; i++) { out = out substr(s, i, 1); if ((n - i) % 3 == 0 && i < n) out = out "," }
        print (neg ? "-" : "") out }'; fi
}

ratio() {
    if [ -z "$1" ] || [ -z "$2" ]; then echo "n/a"; else
        awk -v a="$1" -v b="$2" 'BEGIN { if (b == 0) print "n/a"; else printf "%.2f\n", a / b }'; fi
}

TABLE="$WORK/table.md"
row() { # scenario figure pipit mosquitto
    printf '| %s | %s | %s | %s | %s |\n' "$1" "$2" "$(fmt "$3")" "$(fmt "$4")" "$(ratio "$3" "$4")" >>"$TABLE"
}
both() { # scenario figure label key
    row "$1" "$2" "$(field "$3" pipit "$4")" "$(field "$3" mosquitto "$4")"
}
per_conn() { # broker: (RSS with conns - RSS before) * 1024 / conns_ok
    local s e ok
    s=$(field conns "$1" rss_start) e=$(field conns "$1" rss_end) ok=$(field conns "$1" conns_ok)
    [ -n "$s" ] && [ -n "$e" ] && [ -n "$ok" ] && [ "$ok" != 0 ] && echo $(((e - s) * 1024 / ok))
    return 0
}
sampled_max() { # label broker
    [ -s "$WORK/$1.$2.rss" ] && sort -n "$WORK/$1.$2.rss" | tail -1
    return 0
}
errors() { # label broker: lost/dup/out-of-order
    local l
    l=$(field "$1" "$2" lost)
    [ -n "$l" ] && echo "$l/$(field "$1" "$2" duplicated)/$(field "$1" "$2" out_of_order)" || echo "n/a"
}

MOSQ_VERSION=$("${MOSQ_BIN:-false}" -h 2>/dev/null | head -1 | sed 's/^mosquitto version //' || true)
PIPIT_STATE=${BPID[pipit]:+measured}
MOSQ_STATE=${BPID[mosquitto]:+measured}
{
    echo "Loopback, ${SECS} s per run, $(nproc) CPUs, $(date -u +%Y-%m-%dT%H:%MZ);" \
        "pipit: ${PIPIT_STATE:-absent}; Mosquitto ${MOSQ_VERSION}: ${MOSQ_STATE:-absent}."
    echo "Ratio = pipit / Mosquitto: higher is better for msg/s and msg per CPU-s, lower for latency and memory."
    echo
    echo "| scenario | figure | pipit | Mosquitto | ratio |"
    echo "|---|---|---:|---:|---:|"
} >"$TABLE"

row "idle" "broker RSS after start, KiB" "${IDLE_RSS[pipit]:-}" "${IDLE_RSS[mosquitto]:-}"
both "conns $CONNS" "RSS with idle connections, KiB" conns rss_end
row "conns $CONNS" "user-space bytes per connection" "$(per_conn pipit)" "$(per_conn mosquitto)"
both "conns $CONNS" "connections ok" conns conns_ok
both "conns $CONNS" "connect rate, conn/s" conns conn_rate_per_s
for spec in "fanin0|fanin QoS 0, 16->1, 64 B" "fanin1|fanin QoS 1, 16->1, 64 B" \
    "fanin2|fanin QoS 2, 16->1, 64 B" "fanout0|fanout QoS 0, 1->100, 64 B" \
    "fanout1k|fanout QoS 0, 1->1000, 64 B" \
    "p2p1|p2p QoS 1, 100 pairs, 64 B"; do
    label=${spec%%|*} name=${spec#*|}
    both "$name" "delivered msg/s" "$label" delivered_per_s
    both "$name" "msg per broker CPU-s" "$label" msgs_per_broker_cpu_s
    printf '| %s | lost/dup/out-of-order | %s | %s | |\n' "$name" "$(errors "$label" pipit)" "$(errors "$label" mosquitto)" >>"$TABLE"
done
for spec in "lat0|latency QoS 0, 1,000 msg/s" "lat1|latency QoS 1, 1,000 msg/s"; do
    label=${spec%%|*} name=${spec#*|}
    for p in p50 p90 p99 p999 max; do
        both "$name" "${p/999/99.9} latency, us" "$label" "$p"
    done
done
both "slow subscriber, 1->3+1 stalled" "others' delivered msg/s" slow delivered_per_s
both "slow subscriber, 1->3+1 stalled" "same 3 readers, none stalled, msg/s" slowbase delivered_per_s
both "slow subscriber, 1->3+1 stalled" "broker RSS at start, KiB" slow rss_start
both "slow subscriber, 1->3+1 stalled" "broker RSS at end, KiB" slow rss_end
row "slow subscriber, 1->3+1 stalled" "broker RSS max (0.5 s samples), KiB" "$(sampled_max slow pipit)" "$(sampled_max slow mosquitto)"

cp "$TABLE" "$OUT_DIR/bench-$STAMP.md"
cp "$TABLE" "$OUT_DIR/latest.md"
echo
cat "$TABLE"
log "table saved to $OUT_DIR/bench-$STAMP.md (and latest.md); raw runs in $RAW"

# Exit status: 1 if pipit was to be measured and a run of it failed or lost, duplicated or
# reordered a message (Mosquitto's losses are reported, not failed on).
status=0
if [[ " $BROKERS " == *" pipit "* ]]; then
    for label in conns slow slowbase fanin0 fanin1 fanin2 fanout0 fanout1k p2p1 lat0 lat1; do
        if [ ! -f "$WORK/$label.pipit.json" ]; then
            log "FAIL: $label: no result from pipit"
            status=1
        elif [ "$label" != conns ] && [ "$(errors "$label" pipit)" != 0/0/0 ]; then
            log "FAIL: $label: pipit lost/duplicated/out-of-order $(errors "$label" pipit)"
            status=1
        fi
    done
    if [ "$(field conns pipit conns_ok)" != "$CONNS" ]; then
        log "FAIL: conns: pipit accepted $(field conns pipit conns_ok) of $CONNS connections"
        status=1
    fi
fi
exit "$status"
