#!/usr/bin/env bash
# MQTT.js (the npm `mqtt` package, installed under target/mqttjs if missing; needs node and
# npm) subscribes to 1,500 topics with one subscribe() call, which sends one SUBSCRIBE, in
# MQTT 3.1.1 and 5.0: every topic must be granted without the client reconnecting (pipit
# used to close the connection above 1,024 filters, and MQTT.js retried forever).
# PIPIT_BIN=path runs that binary instead of building the release one.
set -euo pipefail
cd "$(dirname "$0")/.."

. scripts/lib.sh
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    echo "skipped: node and npm are needed for MQTT.js"
    exit 0
fi
if [ -n "${PIPIT_BIN:-}" ]; then
    work=$(mktemp -d)
    broker_pid=""
    trap 'cleanup_run' EXIT
else
    setup_run
    PIPIT_BIN=target/release/pipit
fi

modules=target/mqttjs
if [ ! -d "$modules/node_modules/mqtt" ]; then
    mkdir -p "$modules"
    npm install --prefix "$modules" --no-audit --no-fund --silent mqtt@5 >/dev/null
fi

RUST_LOG=info "$PIPIT_BIN" --port 0 2>"$work/broker.log" &
broker_pid=$!
port=$(logged_port "$work/broker.log" "$broker_pid" 10) || fail "$port"

NODE_PATH="$modules/node_modules" node scripts/mqttjs_subscribe.js "$port" || fail "MQTT.js"
echo "mqttjs: all passed"
