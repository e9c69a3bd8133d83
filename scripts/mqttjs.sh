#!/usr/bin/env bash
# MQTT.js (the npm `mqtt` package, installed under target/mqttjs if missing; needs node and
# npm) against pipit:
# - subscribe() of 1,500 topics with one call, which sends one SUBSCRIBE, in MQTT 3.1.1 and
#   5.0: every topic must be granted without the client reconnecting (pipit used to close
#   the connection above 1,024 filters, and MQTT.js retried forever);
# - over WebSockets, ws:// and wss:// (a throw-away CA and server certificate made with
#   openssl), MQTT 3.1.1 and 5.0, with a TCP client hearing what they send
#   (scripts/mqttjs_ws.js);
# - in headless Chromium (Debian `chromium`, installed if missing): a page that loads the
#   MQTT.js browser bundle from a file connects over ws://, subscribes, and must show a
#   message mosquitto_pub publishes over TCP, read back with --dump-dom
#   (scripts/mqttjs_page.html).
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
kill "$broker_pid" && wait "$broker_pid" 2>/dev/null || true

# Installs Debian packages, updating the package lists only if the first try fails.
apt_install() {
    apt-get install -y "$@" >/dev/null 2>&1 \
        || { apt-get update >/dev/null && apt-get install -y "$@" >/dev/null; }
}

# WebSockets: a plain listener, a ws:// one and a wss:// one, each on an ephemeral port.
need_mosquitto_clients
command -v openssl >/dev/null || apt_install openssl
(
    cd "$work"
    key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }
    key ca.key
    openssl req -x509 -new -key ca.key -subj "/CN=pipit mqttjs CA" -days 2 -out ca.crt \
        -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign
    key server.key
    openssl req -new -key server.key -subj "/CN=localhost" -out server.csr
    echo "subjectAltName=IP:127.0.0.1,DNS:localhost" >server.ext
    openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 \
        -extfile server.ext -out server.crt 2>/dev/null
)
printf '%s\n' "listener 0 127.0.0.1" "allow_anonymous true" \
    "listener 0 127.0.0.1" "protocol websockets" \
    "listener 0 127.0.0.1" "protocol websockets" \
    "certfile $work/server.crt" "keyfile $work/server.key" >"$work/ws.conf"
RUST_LOG=info "$PIPIT_BIN" -c "$work/ws.conf" 2>"$work/broker.log" &
broker_pid=$!
logged_port "$work/broker.log" "$broker_pid" 10 >/dev/null || fail "no listener"
for _ in $(seq 50); do
    [ "$(grep -c 'listening on' "$work/broker.log")" -ge 3 ] && break
    sleep 0.1
done
read -r tcp ws wss < <(sed -n 's/.*listening on [^ ]*:\([0-9][0-9]*\)$/\1/p' "$work/broker.log" | xargs)
[ -n "${wss:-}" ] || fail "three listeners expected"

NODE_PATH="$modules/node_modules" node scripts/mqttjs_ws.js "$ws" "$wss" "$work/ca.crt" "$tcp" \
    || fail "MQTT.js over WebSockets"

# Headless Chromium: the page subscribes over ws://, and mosquitto_pub publishes over TCP
# every 0.2 s until the browser has dumped its DOM (the page subscribes after the first).
command -v chromium >/dev/null || apt_install chromium
cp "$modules/node_modules/mqtt/dist/mqtt.min.js" "$work/"
# A listening socket that never accepts: the page's iframe loading from it holds back the
# load event, at which the DOM is dumped, until the page has shown the message.
python3 -c 'import socket, time
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(8)
print(s.getsockname()[1], flush=True); time.sleep(600)' >"$work/hold.port" &
holder=$!
for _ in $(seq 50); do [ -s "$work/hold.port" ] && break; sleep 0.1; done
sed -e "s/WS_PORT/$ws/" -e "s/HOLD_PORT/$(cat "$work/hold.port")/" scripts/mqttjs_page.html \
    >"$work/page.html"
shown=""
for attempt in 1 2 3; do
    (for _ in $(seq 300); do
        mosquitto_pub -p "$tcp" -t browser/hello -q 1 -m "hello from mosquitto_pub" || true
        sleep 0.2
    done) &
    publisher=$!
    # root needs --no-sandbox.
    timeout 60 chromium --headless --no-sandbox --disable-gpu \
        --dump-dom "file://$work/page.html" >"$work/dom.html" 2>"$work/chromium.log" || true
    kill "$publisher" 2>/dev/null && wait "$publisher" 2>/dev/null || true
    if grep -q '<pre id="out">got browser/hello: hello from mosquitto_pub</pre>' "$work/dom.html"; then
        shown=yes
        break
    fi
    echo "chromium attempt $attempt: $(grep -o '<pre id="out">[^<]*' "$work/dom.html" || echo 'no DOM')"
done
kill "$holder" 2>/dev/null && wait "$holder" 2>/dev/null || true
[ -n "$shown" ] || fail "the page did not show the message: $(cat "$work/dom.html")"
echo "ok: headless $(chromium --version 2>/dev/null | head -1) showed a message from mosquitto_pub, received over ws://"
echo "mqttjs: all passed"
