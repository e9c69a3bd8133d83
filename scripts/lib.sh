# Shared by the interop scripts (sourced, not run): installs the Mosquitto command-line
# clients if missing, builds the release binaries, and gives each script a scratch
# directory and a broker PID that are cleaned up on exit.

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
