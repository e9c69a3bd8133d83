#!/usr/bin/env bash
# TLS listeners against the Mosquitto command-line clients (Debian mosquitto-clients,
# installed if missing). Makes a throw-away CA, a server certificate for 127.0.0.1 and a
# client certificate (CN sensor-7) with openssl, starts target/release/pipit -c on a config
# with three TLS listeners, and checks that mosquitto_sub receives what mosquitto_pub sends:
# server certificate only; client certificate required; the certificate CN as username under
# an ACL. Also checks a client without a certificate, and a plain MQTT client, are refused
# while the broker keeps serving. Stops only the broker it started. Exits non-zero on the
# first failure.
set -euo pipefail
cd "$(dirname "$0")/.."

. scripts/lib.sh
need_mosquitto_clients
setup_run


# A test CA, a server certificate valid for 127.0.0.1 and localhost, a client certificate.
(
    cd "$work"
    key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }
    key ca.key
    openssl req -x509 -new -key ca.key -subj "/CN=pipit interop CA" -days 2 -out ca.crt \
        -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign
    echo "subjectAltName=IP:127.0.0.1,DNS:localhost" >server.ext
    echo "extendedKeyUsage=clientAuth" >client.ext
    for pair in server:localhost:server.ext client:sensor-7:client.ext; do
        IFS=: read -r name cn ext <<<"$pair"
        key "$name.key"
        openssl req -new -key "$name.key" -subj "/CN=$cn" -out "$name.csr"
        openssl x509 -req -in "$name.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 \
            -extfile "$ext" -out "$name.crt" 2>/dev/null
    done
)

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
p_server=$(free_port) p_client=$(free_port) p_identity=$(free_port)
cat >"$work/acl" <<EOF
topic readwrite tls/#
user sensor-7
topic readwrite sensors/#
EOF
cat >"$work/pipit.conf" <<EOF
allow_anonymous true
acl_file $work/acl

# Server certificate only.
listener $p_server 127.0.0.1
certfile $work/server.crt
keyfile $work/server.key

# Client certificates signed by the CA required.
listener $p_client 127.0.0.1
certfile $work/server.crt
keyfile $work/server.key
cafile $work/ca.crt
require_certificate true

# The client certificate's CN is the username.
listener $p_identity 127.0.0.1
certfile $work/server.crt
keyfile $work/server.key
cafile $work/ca.crt
require_certificate true
use_identity_as_username true
EOF

RUST_LOG=info target/release/pipit -c "$work/pipit.conf" 2>"$work/broker.log" &
broker_pid=$!
tls=(-h 127.0.0.1 --cafile "$work/ca.crt")
cert=(--cert "$work/client.crt" --key "$work/client.key")
for _ in $(seq 50); do
    mosquitto_pub "${tls[@]}" -p "$p_server" -t tls/ping -m x 2>/dev/null && break
    kill -0 "$broker_pid" 2>/dev/null || fail "broker did not start"
    sleep 0.1
done

count=200
# pubsub NAME PORT TOPIC [client options...]: $count QoS 1 messages, in order.
pubsub() {
    local name=$1 port=$2 topic=$3
    shift 3
    local out="$work/sub.out"
    sub_until_suback "$out" "${tls[@]}" "$@" -p "$port" -t "$topic" -q 1 -C "$count" -W 20 \
        || fail "$name: subscriber got no SUBACK: $(cat "$out")"
    seq 1 "$count" | mosquitto_pub "${tls[@]}" "$@" -p "$port" -t "$topic" -q 1 -l \
        || fail "$name: publisher failed"
    wait "$sub_pid" || fail "$name: subscriber did not get $count messages ($(payloads "$out" | wc -l))"
    seq 1 "$count" | diff -q - <(payloads "$out") >/dev/null || fail "$name: messages differ"
    echo "ok: $name, $count QoS 1 messages in order"
}

pubsub "server certificate only" "$p_server" tls/a
pubsub "tls_version tlsv1.2 client" "$p_server" tls/b --tls-version tlsv1.2
pubsub "client certificate required" "$p_client" tls/c "${cert[@]}"
pubsub "CN sensor-7 as username under the ACL" "$p_identity" sensors/t "${cert[@]}"

if mosquitto_pub "${tls[@]}" -p "$p_client" -t tls/x -m no 2>/dev/null; then
    fail "a client without a certificate was accepted where one is required"
fi
echo "ok: no client certificate, refused"

if mosquitto_pub -h 127.0.0.1 -p "$p_server" -t tls/x -m plain 2>/dev/null; then
    fail "plain MQTT was accepted on a TLS listener"
fi
kill -0 "$broker_pid" 2>/dev/null || fail "broker died"
echo "ok: plain MQTT on a TLS listener, refused"
pubsub "after the refusals" "$p_client" tls/d "${cert[@]}"

echo "tls interop: all passed"
