#!/usr/bin/env bash
# The Prometheus endpoint end to end: a freshly built pipit with `metrics_listener`, scraped
# with curl and read with the Prometheus project's own parser (Python prometheus_client,
# installed into a venv under target/ if missing); the counters must move by what
# mosquitto_pub and mosquitto_sub did between two scrapes, every family must have its HELP
# and TYPE, and other paths and methods get 404 and 405. Exits non-zero on the first failure.
set -euo pipefail
cd "$(dirname "$0")/.."

. scripts/lib.sh
need_mosquitto_clients
command -v curl >/dev/null || apt-get install -y curl >/dev/null 2>&1 \
    || { apt-get update >/dev/null && apt-get install -y curl >/dev/null; }
venv=target/metrics-venv
if ! "$venv/bin/python" -c 'import prometheus_client' 2>/dev/null; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q 'prometheus_client>=0.17,<1'
fi
setup_run

cat >"$work/pipit.conf" <<CONF
listener 0 127.0.0.1
allow_anonymous true
metrics_listener 0
sys_interval 1
CONF
RUST_LOG=info target/release/pipit -c "$work/pipit.conf" 2>"$work/broker.log" &
broker_pid=$!
port=$(logged_port "$work/broker.log" "$broker_pid" 10) || fail "$port"
metrics=""
for _ in $(seq 50); do
    metrics=$(sed -n 's#.*serving metrics on \(http://[^ ]*/metrics\)$#\1#p' "$work/broker.log" | head -1)
    [ -n "$metrics" ] && break
    sleep 0.1
done
[ -n "$metrics" ] || fail "no metrics listener in the log"

curl -fsS --max-time 5 "$metrics" >"$work/scrape1" || fail "first scrape"
count=50
sub_until_suback "$work/sub" -p "$port" -t metrics/t -q 1 -C "$count" -W 20 \
    || fail "subscriber got no SUBACK"
seq 1 "$count" | mosquitto_pub -p "$port" -t metrics/t -q 1 -l
wait "$sub_pid" || fail "subscriber did not get $count messages"
curl -fsS --max-time 5 "$metrics" >"$work/scrape2" || fail "second scrape"

"$venv/bin/python" - "$work/scrape1" "$work/scrape2" "$count" <<'PY' || fail "the scrapes"
import sys
from prometheus_client.parser import text_string_to_metric_families

def read(path):
    with open(path) as f:
        text = f.read()
    # Every family declares its type and help; the parser takes each sample by its name.
    samples = {}
    for family in text_string_to_metric_families(text):
        assert family.type in ("counter", "gauge"), (family.name, family.type)
        assert family.documentation, family.name
        for s in family.samples:
            key = s.name + "".join(f",{k}={v}" for k, v in sorted(s.labels.items()))
            samples[key] = s.value
    return samples

before, after, n = read(sys.argv[1]), read(sys.argv[2]), int(sys.argv[3])
def moved(name):
    return after[name] - before.get(name, 0)

# mosquitto_pub -l sends "1".."50": 91 payload bytes.
payload = sum(len(str(i)) for i in range(1, n + 1))
checks = [
    (moved("pipit_publish_received_total") == n, "publish received"),
    (moved("pipit_publish_received_bytes_total") == payload, "publish bytes received"),
    (moved("pipit_publish_sent_total") >= n, "publish sent"),
    (moved("pipit_publish_sent_bytes_total") >= payload, "publish bytes sent"),
    (moved("pipit_packets_received_total") >= 2 * n, "packets received"),
    (moved("pipit_received_bytes_total") > payload, "bytes received"),
    (moved("pipit_sent_bytes_total") > payload, "bytes sent"),
    (moved("pipit_connects_total") == 2, "connects"),
    (after["pipit_messages_dropped_total,reason=queue_full"] == 0, "drops"),
    (after["pipit_uptime_seconds"] >= before["pipit_uptime_seconds"], "uptime"),
    ("pipit_load_per_minute,rate=publish_received,window=1min" in after, "load"),
]
failed = [what for ok, what in checks if not ok]
if failed:
    sys.exit("wrong: " + ", ".join(failed) + f"\nbefore {before}\nafter {after}")
print(f"ok: {len(after)} samples parsed; counters moved by {n} messages")
PY

code() { curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$@"; }
[ "$(code "${metrics%/metrics}/")" = 404 ] || fail "GET / is not 404"
[ "$(code -X POST "$metrics")" = 405 ] || fail "POST /metrics is not 405"
echo "ok: other paths 404, other methods 405"
echo "metrics: all passed"
