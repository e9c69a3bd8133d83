#!/usr/bin/env bash
# Drives a freshly built pipit with the Mosquitto command-line clients (Debian
# mosquitto-clients, installed if missing): QoS 0/1/2, retained and will messages, checking
# that every message arrives. Exits non-zero on the first failure.
set -euo pipefail
cd "$(dirname "$0")/.."

. scripts/lib.sh
need_mosquitto_clients
setup_run

# Pick a free port, start the broker on it and wait until it accepts connections.
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
RUST_LOG=info target/release/pipit --port "$port" 2>"$work/broker.log" &
broker_pid=$!
for _ in $(seq 50); do
    mosquitto_pub -p "$port" -t ping -m x 2>/dev/null && break
    sleep 0.1
done

count=200

for qos in 0 1 2; do
    mosquitto_sub -p "$port" -t "interop/q$qos" -q "$qos" -C "$count" -W 20 >"$work/sub$qos" &
    sub=$!
    sleep 0.3
    seq 1 "$count" | mosquitto_pub -p "$port" -t "interop/q$qos" -q "$qos" -l
    wait "$sub" || fail "QoS $qos subscriber did not get $count messages ($(wc -l <"$work/sub$qos"))"
    seq 1 "$count" | diff -q - "$work/sub$qos" >/dev/null || fail "QoS $qos messages differ or out of order"
    echo "ok: QoS $qos, $count messages in order"
done

mosquitto_pub -p "$port" -t interop/retained -m "kept" -r -q 1
got=$(mosquitto_sub -p "$port" -t interop/retained -C 1 -W 5 -v)
[ "$got" = "interop/retained kept" ] || fail "retained: got '$got'"
mosquitto_pub -p "$port" -t interop/retained -n -r
if mosquitto_sub -p "$port" -t interop/retained -C 1 -W 1 >/dev/null 2>&1; then
    fail "retained message not cleared"
fi
echo "ok: retained set, received, cleared"

mosquitto_sub -p "$port" -t interop/will -C 1 -W 10 >"$work/will" &
sub=$!
sleep 0.3
# A client with a will that is killed without DISCONNECT: its socket closes unannounced.
mosquitto_sub -p "$port" -t interop/idle --will-topic interop/will --will-payload "gone" --will-qos 1 &
victim=$!
sleep 0.5
kill -9 "$victim"
wait "$sub" || fail "will not received"
[ "$(cat "$work/will")" = "gone" ] || fail "will payload: $(cat "$work/will")"
echo "ok: will published when a client dies"

echo "interop: all passed"
