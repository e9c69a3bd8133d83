#!/usr/bin/env bash
# Interleaved rounds: one pipit-load scenario against several brokers in turn, ROUNDS times,
# for differences smaller than one bench.sh run can resolve on a shared machine (the static
# build against the glibc one, pipit against FlashMQ, a change against the build before it).
# Each round runs the scenario once on every broker, in order; machine noise that lasts
# longer than a run then falls on all of them alike, and the medians are compared.
#
#   scripts/rounds.sh [NAME=BINARY ...] -- SCENARIO [PIPIT-LOAD ARGS...]
#
# A broker's configuration syntax follows its NAME's prefix: pipit*, mosquitto* or flashmq*
# (FlashMQ is not packaged by Debian: build it from https://github.com/halfgaar/FlashMQ with
# cmake; it runs here with `thread_count 1`, so every broker has one core). Without brokers
# named, it compares pipit-static (scripts/static.sh), pipit-glibc (cargo build --release)
# and mosquitto. Every broker runs with the settings of bench.sh's standard set, on its own
# port from ROUNDS_PORT up, pinned to CPU 1 and the load generator to CPU 0 (BENCH_PIN=0: not
# pinned).
#
# Environment:
#   ROUNDS        rounds                                                              [5]
#   ROUNDS_FIELD  the pipit-load JSON figure compared: msgs_per_broker_cpu_s, delivered_per_s,
#                 or latency_us.p50/.p99/.p999                     [msgs_per_broker_cpu_s]
#   ROUNDS_IDLE   idle connections held open to each broker during its runs (keepalive
#                 600 s, so none pings during a run)                                  [0]
#   ROUNDS_PORT   first port                                                      [18851]
#   ROUNDS_PERSIST  fsync, interval MS or none: pipit and Mosquitto run with persistence
#                 (each a fresh store in the temporary directory; pipit with that
#                 persistence_sync), as bench.sh's persist set; use --persistent     [off]
#   ROUNDS_LOAD   the load generator; given, nothing is built (binaries stay fixed while
#                 the tree changes)                                 [target/release/pipit-load]
#
# Prints one line per run (round, broker, the figure, peak RSS in KiB, lost), then each
# broker's median, its ratio to the first broker's, and the median and lowest of its ratios
# to the first broker within a round. Exits 1 if a pipit run lost, duplicated or reordered a
# message. Only processes it started are stopped, by PID.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/load_lib.sh
source scripts/load_lib.sh

ROUNDS=${ROUNDS:-5}
FIELD=${ROUNDS_FIELD:-msgs_per_broker_cpu_s}
IDLE=${ROUNDS_IDLE:-0}
PORT=${ROUNDS_PORT:-18851}
NAMES=() BINS=()
while [ $# -gt 0 ] && [ "$1" != -- ]; do
    NAMES+=("${1%%=*}")
    BINS+=("${1#*=}")
    shift
done
[ "${1:-}" = -- ] && shift
[ $# -gt 0 ] || { echo "usage: $0 [NAME=BINARY ...] -- SCENARIO [ARGS...]" >&2; exit 2; }

log() { printf '[rounds] %s\n' "$*" >&2; }
LOAD=${ROUNDS_LOAD:-}
if [ -z "$LOAD" ]; then
    cargo build --release --quiet --bin pipit --bin pipit-load
    LOAD=target/release/pipit-load
fi
if [ ${#NAMES[@]} -eq 0 ]; then
    static=$(scripts/static.sh)
    NAMES=(pipit-static pipit-glibc mosquitto)
    BINS=("$static" target/release/pipit "$(command -v mosquitto || echo /usr/sbin/mosquitto)")
fi

LOAD_PIN=() BROKER_PIN=()
if [ "${BENCH_PIN:-1}" = 1 ] && command -v taskset >/dev/null && [ "$(nproc)" -ge 2 ]; then
    LOAD_PIN=(taskset -c 0)
    BROKER_PIN=(taskset -c 1)
fi
[ "$IDLE" -gt 0 ] && ulimit -n "$(ulimit -Hn)"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/pipit-rounds.XXXXXX")
PIDS=()
cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    rm -rf "$WORK"
}
trap cleanup EXIT

write_config() { # name port file
    case $1 in
        flashmq*)
            printf 'thread_count 1\nallow_anonymous true\nlog_level error\nlog_file %s\n' \
                "$WORK/$1.log" >"$3"
            printf 'listen {\n  port %s\n  inet4_bind_address 127.0.0.1\n}\n' "$2" >>"$3"
            ;;
        *)
            case $1 in pipit*) echo "slow_subscriber_timeout 1" ;; esac >"$3"
            load_config "$2" >>"$3"
            if [ -n "${ROUNDS_PERSIST:-}" ]; then
                # Started as root, both brokers run as user mosquitto: let them reach it.
                mkdir -p "$WORK/store-$1" && chmod a+x "$WORK" && chmod 777 "$WORK/store-$1"
                printf 'persistence true\npersistence_location %s/\n' "$WORK/store-$1" >>"$3"
                case $1 in pipit*) echo "persistence_sync $ROUNDS_PERSIST" >>"$3" ;; esac
            else
                echo "persistence false" >>"$3"
            fi
            ;;
    esac
}

BPIDS=()
for i in "${!NAMES[@]}"; do
    name=${NAMES[$i]} bin=${BINS[$i]} port=$((PORT + i)) conf="$WORK/${NAMES[$i]}.conf"
    [ -x "$bin" ] || { log "$name: $bin is not an executable"; exit 2; }
    port_open "$port" && { log "port $port is in use"; exit 2; }
    write_config "$name" "$port" "$conf"
    case $name in
        flashmq*) "${BROKER_PIN[@]}" "$bin" --config-file "$conf" >"$WORK/$name.out" 2>&1 & ;;
        *) "${BROKER_PIN[@]}" "$bin" -c "$conf" >"$WORK/$name.out" 2>&1 & ;;
    esac
    PIDS+=($!)
    BPIDS+=($!)
    for _ in $(seq 50); do port_open "$port" && break; sleep 0.1; done
    port_open "$port" || { log "$name did not start: $(tail -c 300 "$WORK/$name.out")"; exit 2; }
    log "$name: pid ${BPIDS[$i]}, port $port, $bin"
done

# figure JSON [PATH]: the figure at PATH (dotted; default ROUNDS_FIELD's) in pipit-load's
# JSON output, rounded; n/a if the file or the figure is missing.
figure() {
    python3 - "$1" "${2:-$FIELD}" 2>/dev/null <<'EOF' || echo n/a
import json, sys
j = json.load(open(sys.argv[1]))
for key in sys.argv[2].split("."):
    j = (j or {}).get(key)
print("n/a" if j is None else round(j))
EOF
}

failed=0
for round in $(seq "$ROUNDS"); do
    for i in "${!NAMES[@]}"; do
        name=${NAMES[$i]} pid=${BPIDS[$i]} port=$((PORT + i)) holder=""
        if [ "$IDLE" -gt 0 ]; then
            holder=$(hold_idle "$port" "$pid" "$IDLE")
            PIDS+=("$holder")
        fi
        echo 5 >"/proc/$pid/clear_refs" 2>/dev/null || true
        json="$WORK/$round.$name.json"
        "${LOAD_PIN[@]}" "$LOAD" "$@" --port "$port" --broker-pid "$pid" --quiet \
            >"$json" 2>/dev/null || log "round $round on $name: pipit-load failed"
        if [ -n "$holder" ]; then
            kill "$holder" 2>/dev/null || true
            wait "$holder" 2>/dev/null || true
        fi
        hwm=$(hwm_kb "$pid")
        errors=$(figure "$json" lost)/$(figure "$json" duplicated)/$(figure "$json" out_of_order)
        case $name in pipit*) [ "$errors" = 0/0/0 ] || failed=1 ;; esac
        value=$(figure "$json")
        echo "$value" >>"$WORK/$name.values"
        printf '%s\t%s\t%s\t%s KiB\tlost/dup/ooo %s\n' \
            "$round" "$name" "$value" "$hwm" "$errors"
    done
done

# median FILE: the median of the figures in FILE, one per line (n/a ones left out).
median() {
    { grep -v n/a "$1" || true; } | sort -n | awk '{ v[NR] = $1 } END {
        if (!NR) print "n/a"
        else print (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2)
    }'
}
# round_ratios NAME: the median and the lowest of NAME's ratios to the first broker, each
# taken within one round. The brokers of a round share that round's machine state, so these
# move less than the ratio of medians when the machine's speed changes during a set.
round_ratios() {
    paste "$WORK/$1.values" "$WORK/${NAMES[0]}.values" \
        | awk '$1 != "n/a" && $2 != "n/a" && $2 + 0 { print $1 / $2 }' | sort -n \
        | awk '{ v[NR] = $1 } END {
            if (!NR) print "n/a\tn/a"
            else printf "%.2f\t%.2f\n", (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2), v[1]
        }'
}
first=$(median "$WORK/${NAMES[0]}.values")
echo "median $FIELD over $ROUNDS rounds: $*"
printf 'broker\tmedian\tratio\tper-round ratio: median\tlowest\n'
for name in "${NAMES[@]}"; do
    m=$(median "$WORK/$name.values")
    ratio=$(awk -v a="$m" -v b="$first" \
        'BEGIN { if (a + 0 && b + 0) printf "%.2f", a / b; else print "n/a" }')
    printf '%s\t%s\t%s\t%s\n' "$name" "$m" "$ratio" "$(round_ratios "$name")"
done
exit "$failed"
