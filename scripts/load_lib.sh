# shellcheck shell=bash
# Shared by the load scripts (sourced, not run): scripts/bench.sh and scripts/rounds.sh. The
# broker settings of bench.sh's sets, readiness and /proc probes, and idle connections held
# open with pipit-load. The callers set LOAD (pipit-load's path), LOAD_PIN (a command prefix
# such as `taskset -c 0`, or empty) and PIDS (the processes they stop on exit).

# The settings every broker of a load run gets (pipit and Mosquitto read them alike):
# listening on 127.0.0.1:PORT, anonymous clients, no connection limit, QUEUED queued
# messages per client (default 1,000,000; 0 is no limit), no byte bound, no log.
load_config() { # port [queued]
    printf 'listener %s 127.0.0.1\nallow_anonymous true\nmax_connections -1\n' "$1"
    printf 'max_queued_messages %s\nmax_queued_bytes 0\nlog_dest none\n' "${2:-1000000}"
}

# Whether something accepts connections on 127.0.0.1:PORT.
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status" 2>/dev/null || true; }
hwm_kb() { awk '/^VmHWM:/ { print $2 }' "/proc/$1/status" 2>/dev/null || true; }

# fd_count PID: open descriptors of a process (a broker's connections, plus a few).
fd_count() { find "/proc/$1/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l; }

# hold_idle PORT PID N [HOST]: opens N idle connections (keepalive 600 s: no PINGREQ during
# a run) to the broker on HOST:PORT in the background, at CONN_RATE a second (default
# 5,000), waiting until its descriptor count shows them (at most N / 1,000 + 20 s); prints
# the holder's PID. Called as `holder=$(hold_idle ...)`, so the caller adds it to PIDS.
hold_idle() {
    local port=$1 pid=$2 n=$3 host=${4:-127.0.0.1} holder base
    base=$(fd_count "$pid")
    "${LOAD_PIN[@]}" "$LOAD" conns --conns "$n" --conn-rate "${CONN_RATE:-5000}" --hold 100000 \
        --keepalive 600 --host "$host" --port "$port" --quiet >/dev/null 2>&1 &
    holder=$!
    for _ in $(seq $(((n / 1000 + 20) * 10))); do
        [ "$(fd_count "$pid")" -ge $((base + n)) ] && break
        sleep 0.1
    done
    echo "$holder"
}
