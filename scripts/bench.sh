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
# Three sets, chosen with BENCH_SETS:
#   standard  the scenarios above, on pipit and Mosquitto without persistence.
#   persist   fan-in and p2p QoS 1 to persistent subscribers (clean session 0: what a broker
#             writes to disk) on five fresh brokers side by side: pipit with persistence off,
#             `persistence_sync fsync`, `interval 1000` and `none`, and Mosquitto with
#             `persistence true` (it writes only at autosave, every 1,800 s, and at exit):
#             msg/s, msg per broker CPU-s, bytes written to disk per message (write_bytes of
#             /proc/PID/io over the run: file pages the broker dirtied, which is what reaches
#             the device), and QoS 0 latency while a persistent QoS 1 stream of
#             BENCH_STREAM_RATE msg/s runs. The stores are in the temporary directory.
#   startup   pipit only: fills a store (persistence_sync none) with BENCH_STARTUP_MSGS QoS 1
#             messages queued for an offline persistent subscriber and BENCH_STARTUP_RETAINED
#             retained topics, stops pipit, starts it again on the store and times exec to the
#             port accepting and to the first queued message delivered; RSS before and after,
#             and the start-up peak (VmHWM). Heavy (a minute or more), so off unless asked for.
#   scale     BENCH_SCALE_CONNS idle connections (keepalive 600 s) to a fresh pipit and a fresh
#             Mosquitto in turn, from one load-generator process per 15,000, each to its own
#             loopback address (127.0.0.1, .2, ...: one address's ephemeral ports run out at
#             ~28,000), held BENCH_SECONDS: connections ok, RSS and bytes per connection. A
#             broker holds at most its descriptor limit (ulimit -n) less 64, so the count is
#             lowered to that, with a notice. Heavy, so off unless asked for.
# CI's short run (BENCH_SECONDS=1) runs standard and persist; persist adds under a minute.
#
# Environment:
#   BENCH_SECONDS    seconds per run (publishing time, conns hold time)        [5]
#   BENCH_CONNS      idle connections for the conns scenario                    [10000]
#   BENCH_IDLE       idle connections held open during the lat0i/lat1i latency runs
#                    (keepalive 600 s, so none pings during the run)       [BENCH_CONNS]
#   BENCH_SCALE_CONNS  scale: idle connections to open                          [100000]
#   SCALE_PORT       port of the scale set's brokers (one at a time)              [18839]
#   BENCH_CONN_RATE  connections opened per second                              [5000]
#   PIPIT_PORT       port for pipit                                             [18831]
#   MOSQ_PORT        port for Mosquitto                                         [18832]
#   BENCH_PIN        1: load generator on CPU 0, brokers on CPU 1 (if >= 2 CPUs) [1]
#   BENCH_BROKERS    which brokers to run: "pipit mosquitto", or just one       [pipit mosquitto]
#   BENCH_GLIBC      1: measure the glibc build, not the static musl one          [0]
#   BENCH_SETS       which sets to run (see above)                   [standard persist]
#   PERSIST_PORT     first of the persist set's five ports                       [18833]
#   BENCH_STREAM_RATE  persist: msg/s of the QoS 1 stream under the latency probe [10000]
#   STARTUP_PORT     port of the startup set's pipit                             [18838]
#   BENCH_STARTUP_MSGS      startup: queued messages in the store             [1000000]
#   BENCH_STARTUP_RETAINED  startup: retained topics in the store              [100000]
#
# Exits 1 if a pipit run failed or lost, duplicated or reordered a message (in the startup
# set: did not get its whole backlog back), so CI can run it short (BENCH_SECONDS=1
# BENCH_CONNS=1000) as a check that the load scripts work end to end.
# Only processes this script started are stopped, by PID, on exit.
set -euo pipefail

cd "$(dirname "$0")/.."
# shellcheck source=scripts/load_lib.sh
source scripts/load_lib.sh
SECS=${BENCH_SECONDS:-5}
CONNS=${BENCH_CONNS:-10000}
CONN_RATE=${BENCH_CONN_RATE:-5000}
PIPIT_PORT=${PIPIT_PORT:-18831}
MOSQ_PORT=${MOSQ_PORT:-18832}
PIN=${BENCH_PIN:-1}
BROKERS=${BENCH_BROKERS:-pipit mosquitto}
SETS=${BENCH_SETS:-standard persist}
PERSIST_PORT=${PERSIST_PORT:-18833}
STREAM_RATE=${BENCH_STREAM_RATE:-10000}
STARTUP_PORT=${STARTUP_PORT:-18838}
STARTUP_MSGS=${BENCH_STARTUP_MSGS:-1000000}
STARTUP_RETAINED=${BENCH_STARTUP_RETAINED:-100000}
SCALE_CONNS=${BENCH_SCALE_CONNS:-100000}
SCALE_PORT=${SCALE_PORT:-18839}
SCALE_PROCS=1 # scale: load-generator processes, each to its own listener address
OUT_DIR=target/bench
STAMP=$(date +%Y%m%d-%H%M%S)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/pipit-bench.XXXXXX")
PIDS=()

log() { printf '[bench] %s\n' "$*" >&2; }
in_sets() { [[ " $SETS " == *" $1 "* ]]; }
measures() { [[ " $BROKERS " == *" $1 "* ]]; }

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
IDLE=${BENCH_IDLE:-$CONNS}
if [ "$NOFILE" != unlimited ] && [ "$NOFILE" -lt $((IDLE + 64)) ]; then
    log "ulimit -n is $NOFILE: lowering BENCH_IDLE from $IDLE to $((NOFILE - 64))"
    IDLE=$((NOFILE - 64))
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
# Names: pipit and mosquitto (standard set); pipit-off, pipit-fsync, pipit-interval,
# pipit-none and mosquitto-p (persist set); pipit-startup (startup set).
PERSIST_BROKERS=(pipit-off pipit-fsync pipit-interval pipit-none mosquitto-p)

write_config() { # file port name
    local queued=1000000
    # pipit declares a stalled reader slow after slow_subscriber_timeout (default 5 s) and
    # holds its publishers back until then; the slow scenario measures what happens after.
    case $3 in pipit*) echo "slow_subscriber_timeout 1" >"$1" ;; esac
    # The start-up store holds more than the bounds allow: 0 is unlimited for both.
    if [ "$3" = pipit-startup ]; then
        queued=0
        echo "max_retained_messages 0" >>"$1"
    fi
    load_config "$2" "$queued" >>"$1"
    case $3 in
        *-scale) for k in $(seq 2 "$SCALE_PROCS"); do echo "listener $2 127.0.0.$k" >>"$1"; done ;;
    esac
    case $3 in
        pipit-fsync | pipit-interval | pipit-none | pipit-startup | mosquitto-p)
            mkdir -p "$WORK/store-$3"
            # Started as root, both brokers run as user mosquitto: let them reach the store.
            chmod a+x "$WORK" && chmod 777 "$WORK/store-$3"
            printf 'persistence true\npersistence_location %s/\n' "$WORK/store-$3" >>"$1"
            ;;
        *) echo "persistence false" >>"$1" ;;
    esac
    case $3 in
        pipit-fsync) echo "persistence_sync fsync" >>"$1" ;;
        pipit-interval) echo "persistence_sync interval 1000" >>"$1" ;;
        pipit-none | pipit-startup) echo "persistence_sync none" >>"$1" ;;
    esac
}

# Bytes of file pages the process dirtied (counted when dirtied, so what later reaches the
# device, whenever it is synced): a broker's disk writes.
write_bytes() { awk '/^write_bytes:/ { print $2 }' "/proc/$1/io" 2>/dev/null || true; }
now_ns() { date +%s%N; }

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
    "${BROKER_PIN[@]}" "$bin" -c "$conf" >>"$WORK/$name.log" 2>&1 &
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

# stop_broker NAME: SIGTERM (a clean shutdown, which is when Mosquitto saves), at most 120 s.
stop_broker() {
    local pid=${BPID[$1]:-}
    [ -n "$pid" ] || return 0
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1200); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -9 "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    unset "BPID[$1]"
}

if in_sets standard; then
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
fi

# --- runs -------------------------------------------------------------------------------
mkdir -p "$OUT_DIR"
RAW="$OUT_DIR/bench-$STAMP.jsonl"
: >"$RAW"

# The brokers `run` measures, in this order.
ON=(pipit mosquitto)

# alive NAME: the broker was started and is still running.
alive() { [ -n "${BPID[$1]:-}" ] && kill -0 "${BPID[$1]}" 2>/dev/null; }

# keep LABEL BROKER: adds a finished run's JSON to the raw file.
keep() {
    printf '{"label":"%s","broker":"%s","run":%s}\n' "$1" "$2" "$(cat "$WORK/$1.$2.json")" >>"$RAW"
}

# run LABEL ARGS...: the scenario on every running broker of ON, back to back.
run() {
    local label=$1 b pid sampler w0 w1
    shift
    for b in "${ON[@]}"; do
        [ -n "${BPID[$b]:-}" ] || continue
        pid=${BPID[$b]}
        if ! alive "$b"; then
            log "$b is no longer running; skipping $label"
            continue
        fi
        log "$label on $b: pipit-load $*"
        # The peak RSS (VmHWM) of this run alone: reset it (5 > clear_refs), read it after.
        echo 5 >"/proc/$pid/clear_refs" 2>/dev/null || true
        # Broker RSS every 0.5 s while the run lasts (the slow-subscriber figure).
        (while kill -0 "$pid" 2>/dev/null; do rss_kb "$pid"; sleep 0.5; done) >"$WORK/$label.$b.rss" &
        sampler=$!
        w0=$(write_bytes "$pid")
        if "${LOAD_PIN[@]}" "$LOAD" "$@" --port "${BPORT[$b]}" --broker-pid "$pid" --quiet \
            >"$WORK/$label.$b.json"; then
            keep "$label" "$b"
        else
            log "$label on $b failed"
            rm -f "$WORK/$label.$b.json"
        fi
        w1=$(write_bytes "$pid")
        [ -n "$w0" ] && [ -n "$w1" ] && echo $((w1 - w0)) >"$WORK/$label.$b.wbytes"
        hwm_kb "$pid" >"$WORK/$label.$b.hwm"
        kill "$sampler" 2>/dev/null || true
        wait "$sampler" 2>/dev/null || true
    done
}

# run_under_stream LABEL: on every running broker of ON, QoS 0 latency (as lat0) while 16
# publishers send a persistent fan-in QoS 1 stream of STREAM_RATE msg/s, which starts a
# second before the probe and ends two seconds after it. Both load generators share the
# load generator's CPU.
run_under_stream() {
    local label=$1 b pid stream w0 w1
    for b in "${ON[@]}"; do
        alive "$b" || continue
        pid=${BPID[$b]}
        w0=$(write_bytes "$pid")
        log "$label on $b: QoS 0 latency under a persistent QoS 1 stream of $STREAM_RATE msg/s"
        "${LOAD_PIN[@]}" "$LOAD" fanin --qos 1 --persistent --publishers 16 --size 64 \
            --rate "$STREAM_RATE" --duration $((SECS + 3)) --port "${BPORT[$b]}" --quiet \
            >"$WORK/$label-stream.$b.json" &
        stream=$!
        PIDS+=("$stream")
        sleep 1
        if "${LOAD_PIN[@]}" "$LOAD" latency --qos 0 --rate 1000 --size 64 "${D[@]}" \
            --port "${BPORT[$b]}" --broker-pid "$pid" --quiet >"$WORK/$label.$b.json"; then
            keep "$label" "$b"
        else
            log "$label on $b failed"
            rm -f "$WORK/$label.$b.json"
        fi
        if wait "$stream"; then
            keep "$label-stream" "$b"
        else
            log "$label-stream on $b failed"
            rm -f "$WORK/$label-stream.$b.json"
        fi
        w1=$(write_bytes "$pid")
        [ -n "$w0" ] && [ -n "$w1" ] && echo $((w1 - w0)) >"$WORK/$label-stream.$b.wbytes"
    done
}

# run_with_idle LABEL ARGS...: `run LABEL ARGS` on every running broker of ON while IDLE
# idle connections are held open to it (opened before, closed after).
run_with_idle() {
    local label=$1 b holder
    shift
    local on=("${ON[@]}")
    for b in "${on[@]}"; do
        alive "$b" || continue
        log "$label on $b: $IDLE idle connections held open"
        holder=$(hold_idle "${BPORT[$b]}" "${BPID[$b]}" "$IDLE")
        PIDS+=("$holder")
        ON=("$b")
        run "$label" "$@"
        kill "$holder" 2>/dev/null || true
        wait "$holder" 2>/dev/null || true
    done
    ON=("${on[@]}")
}

D=(--duration "$SECS")
if in_sets standard; then
    # conns first, so "idle" is a fresh broker and the per-connection delta is clean; slow
    # next, before QoS 1/2 runs leave the broker's heap large enough to hide a backlog's growth.
    run conns conns --conns "$CONNS" --conn-rate "$CONN_RATE" --hold "$SECS"
    run slow slow --qos 0 --publishers 1 --subscribers 4 --size 64 "${D[@]}"
    # The same three readers with nobody stalled: what "the others' throughput" is compared to.
    run slowbase fanout --qos 0 --publishers 1 --subscribers 3 --size 64 "${D[@]}"
    run fanin0 fanin --qos 0 --publishers 16 --size 64 "${D[@]}"
    run fanin1 fanin --qos 1 --publishers 16 --size 64 "${D[@]}"
    run fanin2 fanin --qos 2 --publishers 16 --size 64 "${D[@]}"
    run fanin200 fanin --qos 0 --publishers 200 --size 64 "${D[@]}"
    run fanin16k fanin --qos 1 --publishers 16 --size 16384 "${D[@]}"
    run fanout0 fanout --qos 0 --publishers 1 --subscribers 100 --size 64 "${D[@]}"
    run fanout1k fanout --qos 0 --publishers 1 --subscribers 1000 --size 64 "${D[@]}"
    run p2p1 p2p --qos 1 --pairs 100 --size 64 "${D[@]}"
    run lat0 latency --qos 0 --rate 1000 --size 64 "${D[@]}"
    run lat1 latency --qos 1 --rate 1000 --size 64 "${D[@]}"
    run_with_idle lat0i latency --qos 0 --rate 1000 --size 64 "${D[@]}"
    run_with_idle lat1i latency --qos 1 --rate 1000 --size 64 "${D[@]}"
fi

MOSQ_SAVED=
if in_sets persist; then
    port=$PERSIST_PORT
    for b in "${PERSIST_BROKERS[@]}"; do
        case $b in
            pipit-*) measures pipit && start_broker "$b" "$PIPIT_BIN" "$port" ;;
            mosquitto-p) measures mosquitto && start_broker "$b" "$MOSQ_BIN" "$port" ;;
        esac
        port=$((port + 1))
    done
    ON=("${PERSIST_BROKERS[@]}")
    # Subscribers with clean session 0 keep one session per index across runs (their
    # earlier subscriptions get no traffic); QoS 1 to them is what a store writes.
    P=(--qos 1 --persistent --size 64 "${D[@]}")
    run fanin1p fanin --publishers 16 "${P[@]}"
    run p2p1p p2p --pairs 100 "${P[@]}"
    run_under_stream lat0s
    # What Mosquitto writes at exit (its only write in these runs, autosave being 30 min).
    if alive mosquitto-p; then
        stop_broker mosquitto-p
        MOSQ_SAVED=$(stat -c %s "$WORK/store-mosquitto-p/mosquitto.db" 2>/dev/null || true)
    fi
fi

# startup_set: fill a store, restart pipit on it, time it (see the header). Figures go to ST.
declare -A ST
startup_set() {
    local name=pipit-startup port=$STARTUP_PORT pid t0 t1 sampler per=$(((STARTUP_MSGS + 7) / 8))
    local topics=$(((STARTUP_RETAINED + 3) / 4))
    start_broker "$name" "$PIPIT_BIN" "$port"
    alive "$name" || return 0
    pid=${BPID[$name]}
    log "startup: $((topics * 4)) retained topics"
    "${LOAD_PIN[@]}" "$LOAD" fanin --qos 1 --retain --topics "$topics" --publishers 4 \
        --count "$topics" --inflight 100 --port "$port" --quiet --timeout 600 \
        >"$WORK/fillret.pipit.json" || log "startup: the retained fill failed"
    log "startup: $((per * 8)) QoS 1 messages queued for an offline persistent subscriber"
    "${LOAD_PIN[@]}" "$LOAD" fanin --qos 1 --persistent --offline --publishers 8 --inflight 100 \
        --count "$per" --size 64 --port "$port" --broker-pid "$pid" --quiet --timeout 900 \
        >"$WORK/fillq.pipit.json" || log "startup: the queued fill failed"
    ST[filled_rss]=$(rss_kb "$pid")
    stop_broker "$name"
    ST[store_bytes]=$(du -sb "$WORK/store-$name" | cut -f1)
    ST[expected]=$((per * 8))
    ST[retained_fill]=$((topics * 4))

    log "startup: starting pipit on the store"
    t0=$(now_ns)
    "${BROKER_PIN[@]}" "$PIPIT_BIN" -c "$WORK/$name.conf" >>"$WORK/$name.log" 2>&1 &
    pid=$!
    PIDS+=("$pid")
    BPID[$name]=$pid
    ST[t0]=$t0
    # RSS with its time every 20 ms, to read it at CONNACK: the port accepts before the load.
    (while kill -0 "$pid" 2>/dev/null; do echo "$(now_ns) $(rss_kb "$pid")"; sleep 0.02; done) \
        >"$WORK/startup.rss" &
    sampler=$!
    until port_open "$port"; do
        if ! kill -0 "$pid" 2>/dev/null || [ $(($(now_ns) - t0)) -gt 300000000000 ]; then
            log "startup: pipit did not listen: $(tail -c 300 "$WORK/$name.log" | tr '\n' ' ')"
            return 0
        fi
        sleep 0.005
    done
    ST[port_ms]=$((($(now_ns) - t0) / 1000000))
    ST[port_rss]=$(rss_kb "$pid")
    t1=$(now_ns)
    ST[launch_ms]=$(((t1 - t0) / 1000000))
    # The subscriber's CONNACK waits for the store to load (the port accepts before).
    "${LOAD_PIN[@]}" "$LOAD" resume --qos 1 --count "${ST[expected]}" --duration 300 \
        --port "$port" --broker-pid "$pid" --quiet >"$WORK/resume.pipit.json" \
        || log "startup: resume failed"
    kill "$sampler" 2>/dev/null || true
    wait "$sampler" 2>/dev/null || true
    ST[end_rss]=$(rss_kb "$pid")
    ST[end_hwm]=$(hwm_kb "$pid")
    if command -v mosquitto_sub >/dev/null; then
        ST[retained]=$(mosquitto_sub -p "$port" -t '$SYS/broker/retained messages/count' \
            -C 1 -W 15 2>/dev/null || true)
    fi
    stop_broker "$name"
}
if in_sets startup && measures pipit; then
    startup_set
fi

# scale_set: for pipit, then Mosquitto, a fresh broker with one listener per load-generator
# process (127.0.0.1, .2, ...: write_config) takes SCALE_CONNS idle connections; figures go
# to SC.
PER_PROCESS=15000
declare -A SC
scale_set() {
    local b name bin n procs holders k ok base per
    n=$SCALE_CONNS
    if [ "$NOFILE" != unlimited ] && [ "$NOFILE" -lt $((n + 64)) ]; then
        log "scale: ulimit -n is $NOFILE, so a broker holds at most $((NOFILE - 64)) connections here; lowering $n to that"
        n=$((NOFILE - 64))
    fi
    SC[target]=$n
    procs=$(((n + PER_PROCESS - 1) / PER_PROCESS))
    SCALE_PROCS=$procs
    for b in pipit mosquitto; do
        measures "$b" || continue
        name=$b-scale bin=$PIPIT_BIN
        [ "$b" = mosquitto ] && bin=$MOSQ_BIN
        start_broker "$name" "$bin" "$SCALE_PORT"
        alive "$name" || continue
        SC[$b.idle]=$(rss_kb "${BPID[$name]}")
        base=$(fd_count "${BPID[$name]}")
        log "scale: $n idle connections to $b from $procs load generators"
        holders=()
        for k in $(seq 1 "$procs"); do
            per=$((n / procs))
            [ "$k" = "$procs" ] && per=$((n - per * (procs - 1)))
            "${LOAD_PIN[@]}" "$LOAD" conns --conns "$per" \
                --conn-rate $((CONN_RATE / procs + 1)) --hold "$SECS" --keepalive 600 \
                --host "127.0.0.$k" --port "$SCALE_PORT" --quiet >"$WORK/scale$k.$b.json" 2>/dev/null &
            holders+=($!)
            PIDS+=($!)
        done
        # RSS once every connection is open (or after n / 1,000 + 30 s), while they are held.
        for _ in $(seq $(((n / 1000 + 30) * 10))); do
            [ "$(fd_count "${BPID[$name]}")" -ge $((base + n)) ] && break
            sleep 0.1
        done
        sleep 1
        SC[$b.rss]=$(rss_kb "${BPID[$name]}")
        ok=0
        for k in "${!holders[@]}"; do
            wait "${holders[$k]}" 2>/dev/null || true
            ok=$((ok + $(grep -o '"conns_ok":[0-9]*' "$WORK/scale$((k + 1)).$b.json" | cut -d: -f2 | grep . || echo 0)))
        done
        SC[$b.ok]=$ok
        stop_broker "$name"
    done
}
if in_sets scale; then
    scale_set
fi

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
echo "Loopback, ${SECS} s per run, $(nproc) CPUs, $(date -u +%Y-%m-%dT%H:%MZ); sets: $SETS;" \
    "Mosquitto ${MOSQ_VERSION:-absent}." >"$TABLE"

if in_sets standard; then
    {
        echo
        echo "pipit: ${PIPIT_STATE:-absent}; Mosquitto: ${MOSQ_STATE:-absent}."
        echo "Ratio = pipit / Mosquitto: higher is better for msg/s and msg per CPU-s, lower for latency and memory."
        echo
        echo "| scenario | figure | pipit | Mosquitto | ratio |"
        echo "|---|---|---:|---:|---:|"
    } >>"$TABLE"
    row "idle" "broker RSS after start, KiB" "${IDLE_RSS[pipit]:-}" "${IDLE_RSS[mosquitto]:-}"
    both "conns $CONNS" "RSS with idle connections, KiB" conns rss_end
    row "conns $CONNS" "user-space bytes per connection" "$(per_conn pipit)" "$(per_conn mosquitto)"
    both "conns $CONNS" "connections ok" conns conns_ok
    both "conns $CONNS" "connect rate, conn/s" conns conn_rate_per_s
    for spec in "fanin0|fanin QoS 0, 16->1, 64 B" "fanin1|fanin QoS 1, 16->1, 64 B" \
        "fanin2|fanin QoS 2, 16->1, 64 B" "fanin200|fanin QoS 0, 200->1, 64 B" \
        "fanin16k|fanin QoS 1, 16->1, 16 KiB" "fanout0|fanout QoS 0, 1->100, 64 B" \
        "fanout1k|fanout QoS 0, 1->1000, 64 B" \
        "p2p1|p2p QoS 1, 100 pairs, 64 B"; do
        label=${spec%%|*} name=${spec#*|}
        both "$name" "delivered msg/s" "$label" delivered_per_s
        both "$name" "msg per broker CPU-s" "$label" msgs_per_broker_cpu_s
        printf '| %s | lost/dup/out-of-order | %s | %s | |\n' "$name" "$(errors "$label" pipit)" "$(errors "$label" mosquitto)" >>"$TABLE"
        if [ "$label" = fanin16k ]; then
            row "$name" "broker peak RSS of the run (VmHWM), KiB" "$(cat "$WORK/$label.pipit.hwm" 2>/dev/null)" "$(cat "$WORK/$label.mosquitto.hwm" 2>/dev/null)"
        fi
    done
    for spec in "lat0|latency QoS 0, 1,000 msg/s" "lat1|latency QoS 1, 1,000 msg/s" \
        "lat0i|latency QoS 0, 1,000 msg/s, $(fmt "$IDLE") idle connections held" \
        "lat1i|latency QoS 1, 1,000 msg/s, $(fmt "$IDLE") idle connections held"; do
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
fi

# --- persistence table: one column per PERSIST_BROKERS, then fsync / Mosquitto and
# interval / off.
pf() { field "$1" "$3" "$2"; } # LABEL KEY BROKER
per_msg() {                    # LABEL BROKER: disk bytes written per message sent
    local w sent
    w=$(cat "$WORK/$1.$2.wbytes" 2>/dev/null || true) sent=$(field "$1" "$2" sent)
    [ -n "$w" ] && [ -n "$sent" ] && [ "$sent" != 0 ] && awk -v w="$w" -v n="$sent" 'BEGIN { print w / n }'
    return 0
}
prow() { # scenario figure FUNCTION ARGS...: FUNCTION ARGS BROKER for each broker
    local name=$1 fig=$2 fn=$3 b line
    shift 3
    declare -A v
    for b in "${PERSIST_BROKERS[@]}"; do v[$b]=$("$fn" "$@" "$b"); done
    line="| $name | $fig |"
    for b in "${PERSIST_BROKERS[@]}"; do line+=" $(fmt "${v[$b]}") |"; done
    line+=" $(ratio "${v[pipit-fsync]}" "${v[mosquitto-p]}") | $(ratio "${v[pipit-interval]}" "${v[pipit-off]}") |"
    echo "$line" >>"$TABLE"
}
perr() { # scenario LABEL: lost/dup/out-of-order per broker
    local line="| $1 | lost/dup/out-of-order |" b
    for b in "${PERSIST_BROKERS[@]}"; do line+=" $(errors "$2" "$b") |"; done
    echo "$line | |" >>"$TABLE"
}
if in_sets persist; then
    {
        echo
        echo "Persistence: QoS 1 to persistent subscribers (clean session 0), 64 B. Disk bytes: write_bytes of"
        echo "/proc/PID/io over the run (file pages dirtied). Mosquitto writes only at autosave (1,800 s) and"
        echo "at exit: ${MOSQ_SAVED:-n/a} bytes at the end of this set. Last two columns: pipit fsync / Mosquitto"
        echo "and pipit interval 1000 / pipit off (for latency, lower is better)."
        echo
        echo "| scenario | figure | pipit off | pipit fsync | pipit interval 1000 | pipit none | Mosquitto persistence | fsync / Mosquitto | interval / off |"
        echo "|---|---|---:|---:|---:|---:|---:|---:|---:|"
    } >>"$TABLE"
    for spec in "fanin1p|fanin QoS 1, 16->1 persistent" "p2p1p|p2p QoS 1, 100 persistent pairs"; do
        label=${spec%%|*} name=${spec#*|}
        prow "$name" "delivered msg/s" pf "$label" delivered_per_s
        prow "$name" "msg per broker CPU-s" pf "$label" msgs_per_broker_cpu_s
        prow "$name" "disk bytes written per message" per_msg "$label"
        perr "$name" "$label"
    done
    name="latency QoS 0, 1,000 msg/s, under a persistent QoS 1 stream of $(fmt "$STREAM_RATE") msg/s"
    for p in p50 p99 p999 max; do
        prow "$name" "${p/999/99.9} latency, us" pf lat0s "$p"
    done
    prow "$name" "the stream's delivered msg/s" pf lat0s-stream delivered_per_s
    prow "$name" "disk bytes written per stream message" per_msg lat0s-stream
    perr "$name (stream)" lat0s-stream
fi

# --- start-up table
plus() { [ -n "$1" ] && [ -n "$2" ] && awk -v a="$1" -v b="$2" 'BEGIN { print a + b }'; return 0; }
# rss_until MS max|last: the largest RSS sampled up to MS after exec, or the last one.
rss_until() {
    [ -n "$1" ] && [ -s "$WORK/startup.rss" ] && awk -v t="$((ST[t0] + ${1%.*} * 1000000))" -v how="$2" \
        '$1 <= t && $2 != "" { last = $2; if ($2 > max) max = $2 }
         END { if (last != "") print (how == "max" ? max : last) }' "$WORK/startup.rss"
    return 0
}
srow() { printf '| %s | %s | %s |\n' "$1" "$2" "$(fmt "$3")" >>"$TABLE"; }
if in_sets startup; then
    name="start-up, $(fmt "${ST[expected]:-$STARTUP_MSGS}") queued + $(fmt "${ST[retained_fill]:-$STARTUP_RETAINED}") retained"
    fill_rate=$(awk -v n="$(field fillq pipit sent)" -v s="$(field fillq pipit publish_s)" \
        'BEGIN { if (n != "" && s > 0) print n / s }')
    {
        echo
        echo "Start-up: pipit on a store of ${ST[expected]:-$STARTUP_MSGS} QoS 1 messages (64 B) queued for one offline"
        echo "persistent subscriber and ${ST[retained_fill]:-$STARTUP_RETAINED} retained topics, filled with persistence_sync none."
        echo "Times are from exec; the port accepts TCP before the store is loaded, CONNACK after."
        echo
        echo "| scenario | figure | pipit |"
        echo "|---|---|---:|"
    } >>"$TABLE"
    srow "$name" "retained fill, msg/s" "$(field fillret pipit delivered_per_s)"
    srow "$name" "queued fill, msg/s" "$fill_rate"
    srow "$name" "broker RSS when filled (before the restart), KiB" "${ST[filled_rss]:-}"
    srow "$name" "store on disk after a clean stop, bytes" "${ST[store_bytes]:-}"
    srow "$name" "exec to the port accepting, ms" "${ST[port_ms]:-}"
    connack=$(plus "${ST[launch_ms]:-}" "$(field resume pipit connack_ms)")
    srow "$name" "exec to CONNACK, ms" "$connack"
    srow "$name" "exec to the first queued message, ms" "$(plus "${ST[launch_ms]:-}" "$(field resume pipit first_arrival_ms)")"
    srow "$name" "RSS when the port accepts, KiB" "${ST[port_rss]:-}"
    srow "$name" "RSS at CONNACK (20 ms samples), KiB" "$(rss_until "$connack" last)"
    srow "$name" "RSS max up to CONNACK (loading the store), KiB" "$(rss_until "$connack" max)"
    srow "$name" "queued messages delivered after the restart" "$(field resume pipit delivered)"
    srow "$name" "backlog delivery, msg/s (from the first connect)" "$(field resume pipit delivered_per_s)"
    srow "$name" "RSS after the backlog was delivered, KiB" "${ST[end_rss]:-}"
    srow "$name" "peak RSS since the restart (VmHWM), KiB" "${ST[end_hwm]:-}"
    srow "$name" "retained messages after the restart (\$SYS count, with \$SYS topics)" "${ST[retained]:-}"
fi

if in_sets scale; then
    name="$(fmt "${SC[target]:-}") idle connections"
    per() { [ -n "${SC[$1.rss]:-}" ] && [ -n "${SC[$1.idle]:-}" ] && [ "${SC[$1.ok]:-0}" != 0 ] \
        && echo $(((SC[$1.rss] - SC[$1.idle]) * 1024 / SC[$1.ok])); return 0; }
    {
        echo
        echo "Scale: idle connections (keepalive 600 s) to a fresh broker, $(fmt "$PER_PROCESS") per load generator,"
        echo "each to its own loopback address; asked for $(fmt "$SCALE_CONNS"), ulimit -n $NOFILE."
        echo
        echo "| scenario | figure | pipit | Mosquitto | ratio |"
        echo "|---|---|---:|---:|---:|"
    } >>"$TABLE"
    row "$name" "connections ok" "${SC[pipit.ok]:-}" "${SC[mosquitto.ok]:-}"
    row "$name" "broker RSS before, KiB" "${SC[pipit.idle]:-}" "${SC[mosquitto.idle]:-}"
    row "$name" "broker RSS with them, KiB" "${SC[pipit.rss]:-}" "${SC[mosquitto.rss]:-}"
    row "$name" "bytes per connection" "$(per pipit)" "$(per mosquitto)"
fi

cp "$TABLE" "$OUT_DIR/bench-$STAMP.md"
cp "$TABLE" "$OUT_DIR/latest.md"
echo
cat "$TABLE"
log "table saved to $OUT_DIR/bench-$STAMP.md (and latest.md); raw runs in $RAW"

# Exit status: 1 if pipit was to be measured and a run of it failed or lost, duplicated or
# reordered a message (Mosquitto's losses are reported, not failed on).
status=0
check() { # label broker
    if [ ! -f "$WORK/$1.$2.json" ]; then
        log "FAIL: $1: no result from $2"
        status=1
    elif [ "$1" != conns ] && [ "$(errors "$1" "$2")" != 0/0/0 ]; then
        log "FAIL: $1: $2 lost/duplicated/out-of-order $(errors "$1" "$2")"
        status=1
    fi
}
if measures pipit && in_sets standard; then
    for label in conns slow slowbase fanin0 fanin1 fanin2 fanin200 fanin16k fanout0 fanout1k p2p1 lat0 lat1 lat0i lat1i; do
        check "$label" pipit
    done
    if [ "$(field conns pipit conns_ok)" != "$CONNS" ]; then
        log "FAIL: conns: pipit accepted $(field conns pipit conns_ok) of $CONNS connections"
        status=1
    fi
fi
if measures pipit && in_sets persist; then
    for b in pipit-off pipit-fsync pipit-interval pipit-none; do
        for label in fanin1p p2p1p lat0s lat0s-stream; do
            check "$label" "$b"
        done
    done
fi
if measures pipit && in_sets scale && [ "${SC[pipit.ok]:-0}" != "${SC[target]:-}" ]; then
    log "FAIL: scale: pipit held ${SC[pipit.ok]:-0} of ${SC[target]:-} idle connections"
    status=1
fi
if measures pipit && in_sets startup \
    && [ "$(field resume pipit delivered)" != "${ST[expected]:-$STARTUP_MSGS}" ]; then
    log "FAIL: startup: $(field resume pipit delivered) of ${ST[expected]:-$STARTUP_MSGS} queued messages after the restart"
    status=1
fi
exit "$status"
