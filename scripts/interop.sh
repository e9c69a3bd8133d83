#!/usr/bin/env bash
# Drives a freshly built pipit with the Mosquitto command-line clients (Debian
# mosquitto-clients, installed if missing): QoS 0/1/2, retained and will messages, checking
# that every message arrives. Exits non-zero on the first failure.
set -euo pipefail
cd "$(dirname "$0")/.."

. scripts/lib.sh
need_mosquitto_clients
setup_run

# Port 0: the kernel picks a free port and the broker logs it once it listens.
RUST_LOG=info target/release/pipit --port 0 2>"$work/broker.log" &
broker_pid=$!
port=$(logged_port "$work/broker.log" "$broker_pid" 10) || fail "$port"

count=200

for qos in 0 1 2; do
    sub_until_suback "$work/sub$qos" -p "$port" -t "interop/q$qos" -q "$qos" -C "$count" -W 20 \
        || fail "QoS $qos subscriber got no SUBACK"
    seq 1 "$count" | mosquitto_pub -p "$port" -t "interop/q$qos" -q "$qos" -l
    wait "$sub_pid" || fail "QoS $qos subscriber did not get $count messages ($(payloads "$work/sub$qos" | wc -l))"
    seq 1 "$count" | diff -q - <(payloads "$work/sub$qos") >/dev/null \
        || fail "QoS $qos messages differ or out of order"
    [ "$(grep -c "received PUBLISH (d0, q$qos" "$work/sub$qos")" = "$count" ] \
        || fail "QoS $qos messages not all delivered at QoS $qos"
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

sub_until_suback "$work/will" -p "$port" -t interop/will -C 1 -W 10 || fail "will subscriber got no SUBACK"
will_sub=$sub_pid
# A client with a will that is killed without DISCONNECT: its socket closes unannounced.
sub_until_suback "$work/victim" -p "$port" -t interop/idle --will-topic interop/will \
    --will-payload "gone" --will-qos 1 || fail "will client got no SUBACK"
kill -9 "$sub_pid"
wait "$sub_pid" 2>/dev/null || true
wait "$will_sub" || fail "will not received"
[ "$(payloads "$work/will")" = "gone" ] || fail "will payload: $(cat "$work/will")"
echo "ok: will published when a client dies"

echo "interop: all passed"
