# shellcheck shell=bash
# Shared by the interop scripts (sourced, not run): installs the Mosquitto command-line
# clients if missing, builds the release binaries, gives each script a scratch directory and
# a broker PID that are cleaned up on exit, reads the port a broker logged, starts
# subscribers that are known to be subscribed, and passes a QoS 1 message through a broker.

# Installs Debian mosquitto-clients unless mosquitto_pub and mosquitto_sub are present.
need_mosquitto_clients() {
    if ! command -v mosquitto_pub >/dev/null || ! command -v mosquitto_sub >/dev/null; then
        apt-get install -y mosquitto-clients >/dev/null 2>&1 \
            || { apt-get update >/dev/null && apt-get install -y mosquitto-clients >/dev/null; }
    fi
}

# Builds target/release/pipit, makes $work, and stops $broker_pid (if set) on exit.
setup_run() {
    cargo build --release --quiet
    work=$(mktemp -d)
    broker_pid=""
    trap 'cleanup_run' EXIT
}

cleanup_run() {
    if [ -n "$broker_pid" ]; then
        kill "$broker_pid" 2>/dev/null && wait "$broker_pid" 2>/dev/null
    fi
    rm -rf "$work"
}

# Prints a failure with the end of the broker's log and exits.
fail() {
    echo "FAIL: $*"
    echo "--- broker log"
    tail -20 "$work/broker.log"
    exit 1
}

# Starts `mosquitto_sub -d ARGS...` in the background (its PID in $sub_pid), writing its
# debug lines and messages to OUT, and returns once it has its SUBACK, so that what is
# published next reaches it; returns 1 if no SUBACK came within 10 s.
sub_until_suback() { # out args...
    local out=$1
    shift
    # stdbuf: line-buffered, since stdout is a file and the SUBACK line is waited for.
    stdbuf -oL mosquitto_sub -d "$@" >"$out" 2>&1 &
    sub_pid=$!
    for _ in $(seq 100); do
        grep -qs 'received SUBACK' "$out" && return 0
        kill -0 "$sub_pid" 2>/dev/null || return 1
        sleep 0.1
    done
    return 1
}

# Prints the messages in a `mosquitto_sub -d` output file (its debug lines left out).
payloads() { # out
    grep -Ev '^(Client |Subscribed \(mid)' "$1" || true
}

# Passes one QoS 1 message from mosquitto_pub to mosquitto_sub through the broker listening
# on 127.0.0.1:PORT; mosquitto_sub's debug output goes to OUT. On failure prints why (for the
# caller's own failure message) and returns 1.
qos1_round_trip() { # port topic payload out
    local port=$1 topic=$2 payload=$3 out=$4
    if ! sub_until_suback "$out" -p "$port" -t "$topic" -q 1 -C 1 -W 10 \
        || ! mosquitto_pub -p "$port" -t "$topic" -q 1 -m "$payload"; then
        kill "$sub_pid" 2>/dev/null || true
        wait "$sub_pid" 2>/dev/null || true
        echo "no SUBACK, or mosquitto_pub failed: $(cat "$out")"
        return 1
    fi
    wait "$sub_pid" || { echo "subscriber got nothing: $(cat "$out")"; return 1; }
    grep -q 'received PUBLISH (d0, q1' "$out" || { echo "message not delivered at QoS 1"; return 1; }
    [ "$(payloads "$out")" = "$payload" ] || { echo "payload differs: $(cat "$out")"; return 1; }
}

# Prints the port a broker started with `--port 0` logged ("listening on ADDR:PORT" in LOG),
# waiting up to SECS seconds. On failure prints why and returns 1.
logged_port() { # log pid secs
    local log=$1 pid=$2 secs=$3 port
    for _ in $(seq $((secs * 10))); do
        port=$(sed -n 's/.*listening on [^ ]*:\([0-9][0-9]*\)$/\1/p' "$log" | head -1)
        if [ -n "$port" ]; then
            echo "$port"
            return 0
        fi
        kill -0 "$pid" 2>/dev/null || { echo "broker exited at startup"; return 1; }
        sleep 0.1
    done
    echo "broker did not report a listening port within $secs s"
    return 1
}
