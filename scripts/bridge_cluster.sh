#!/usr/bin/env bash
# Issue 15, "into a cluster": two pipit gateways bridged into a two-node RabbitMQ cluster on
# loopback, as a site that outgrows one box would grow. Gateway A is bridged to node 1 with
# the address list "node 1, node 2"; gateway B to node 2. QoS 1 messages from A's devices
# reach B's subscribers and B's reach A's; node 1 is stopped while A's stream is running, A
# fails over to node 2, and every message A acknowledged arrives at B, in order.
#
# Installs Debian rabbitmq-server (with its rabbitmq_mqtt plugin) if missing. If RabbitMQ
# cannot be installed or started this says so and exits non-zero: there is no skip. Every
# process started here is stopped by its PID on exit, and the scratch directory is removed.
set -euo pipefail
cd "$(dirname "$0")/.."

# shellcheck source=scripts/lib.sh
. scripts/lib.sh
need_mosquitto_clients

RMQ=/usr/lib/rabbitmq/bin
if [ ! -x "$RMQ/rabbitmq-server" ]; then
    apt-get install -y rabbitmq-server >/dev/null 2>&1 \
        || { apt-get update >/dev/null && apt-get install -y rabbitmq-server >/dev/null; } \
        || { echo "FAIL: cannot install Debian rabbitmq-server"; exit 1; }
fi
# The Debian package starts no broker of its own under a container without systemd; this
# script runs the nodes itself, straight from /usr/lib/rabbitmq/bin (the /usr/sbin wrappers
# switch to the rabbitmq user, whose home holds another Erlang cookie).

cargo build --release --quiet
work=$(mktemp -d)
pids=()           # background processes, stopped in reverse order on exit
rabbit_pids=()    # rabbitmq-server scripts (they stop their Erlang VM on TERM)

cleanup() {
    local pid i
    for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
        pid=${pids[i]}
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    for pid in "${rabbit_pids[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${rabbit_pids[@]}"; do
        for _ in $(seq 150); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    done
    # The Erlang VMs themselves (their PID files), should a script have gone before its VM.
    for f in "$work"/rabbit*.pid; do
        [ -f "$f" ] && kill -9 "$(cat "$f")" 2>/dev/null || true
    done
    # Our own epmd (on our own port, so no other Erlang node's registry is touched).
    [ -n "${ERL_EPMD_PORT:-}" ] && epmd -kill >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT
# Stopped from outside (.ci/run's timeout): exit, which runs cleanup.
trap 'exit 143' TERM INT

fail() {
    echo "FAIL: $*"
    for f in "$work"/gw*.log; do echo "--- $f"; tail -15 "$f"; done
    for f in "$work"/log/*/rabbit*.log; do [ -f "$f" ] && { echo "--- $f"; tail -15 "$f"; }; done
    exit 1
}

# Free loopback ports, picked by the kernel (two nodes x AMQP, distribution, MQTT; epmd;
# two gateways).
read -r -a ports <<<"$(python3 -c '
import socket
ss = [socket.socket() for _ in range(9)]
for s in ss: s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in ss))')"
export ERL_EPMD_PORT=${ports[0]} ERL_EPMD_ADDRESS=127.0.0.1
amqp=("" "${ports[1]}" "${ports[2]}")
dist=("" "${ports[3]}" "${ports[4]}")
mqtt=("" "${ports[5]}" "${ports[6]}")
gw_a=${ports[7]}
gw_b=${ports[8]}

# One Erlang cookie for both nodes and for rabbitmqctl: HOME is the scratch directory for
# every RabbitMQ command (not for cargo, which ran above).
mkdir -p "$work/home"
python3 -c 'import secrets; print(secrets.token_hex(16).upper(), end="")' >"$work/home/.erlang.cookie"
chmod 400 "$work/home/.erlang.cookie"
echo '[rabbitmq_mqtt].' >"$work/enabled_plugins"
: >"$work/rabbitmq-env.conf"

node() { echo "rabbit$1@localhost"; }
ctl() { # n args...: rabbitmqctl against node n
    local n=$1
    shift
    # The enabled plugins file: rabbitmqctl loads the MQTT plugin's commands from it.
    HOME="$work/home" RABBITMQ_ENABLED_PLUGINS_FILE="$work/enabled_plugins" \
        timeout 90 "$RMQ/rabbitmqctl" -n "$(node "$n")" "$@"
}

start_node() { # n
    local n=$1
    cat >"$work/rabbit$n.conf" <<CONF
listeners.tcp.default = 127.0.0.1:${amqp[n]}
mqtt.listeners.tcp.default = 127.0.0.1:${mqtt[n]}
mqtt.allow_anonymous = true
CONF
    mkdir -p "$work/mnesia" "$work/log/$n"
    HOME="$work/home" \
        RABBITMQ_NODENAME="$(node "$n")" \
        RABBITMQ_NODE_PORT="${amqp[n]}" \
        RABBITMQ_DIST_PORT="${dist[n]}" \
        RABBITMQ_CONFIG_FILE="$work/rabbit$n.conf" \
        RABBITMQ_ADVANCED_CONFIG_FILE="$work/advanced$n.config" \
        RABBITMQ_CONF_ENV_FILE="$work/rabbitmq-env.conf" \
        RABBITMQ_ENABLED_PLUGINS_FILE="$work/enabled_plugins" \
        RABBITMQ_MNESIA_BASE="$work/mnesia" \
        RABBITMQ_LOG_BASE="$work/log/$n" \
        RABBITMQ_PID_FILE="$work/rabbit$n.pid" \
        RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}" \
        "$RMQ/rabbitmq-server" >"$work/rabbit$n.out" 2>&1 &
    rabbit_pids+=($!)
}

echo "starting RabbitMQ nodes $(node 1) (MQTT ${mqtt[1]}) and $(node 2) (MQTT ${mqtt[2]})"
start_node 1
start_node 2
# await_startup fails at once while a node is not yet registered with epmd: wait for that.
node_up() { # n: 0 once node n runs its application, 1 after 60 s or if it exited
    local n=$1
    for _ in $(seq 60); do
        kill -0 "${rabbit_pids[n - 1]}" 2>/dev/null || return 1
        if ctl "$n" ping >/dev/null 2>&1; then
            ctl "$n" await_startup --timeout 60 >/dev/null 2>&1
            return
        fi
        sleep 1
    done
    return 1
}
for n in 1 2; do
    node_up "$n" || {
        echo "FAIL: RabbitMQ node $(node "$n") did not start; its output:"
        tail -20 "$work/rabbit$n.out"
        exit 1
    }
done
ctl 2 stop_app >/dev/null
ctl 2 join_cluster "$(node 1)" >/dev/null || fail "node 2 could not join node 1"
ctl 2 start_app >/dev/null
ctl 2 await_startup --timeout 60 >/dev/null || fail "node 2 did not come back after joining"
ctl 1 cluster_status | grep -q "$(node 2)" || fail "cluster status does not list node 2"
echo "ok: two-node cluster up"

# The gateways. RabbitMQ speaks MQTT 3.1.1 and refuses try_private's protocol level, so
# try_private false; without the bit a `both` bridge sees its own messages come back from
# the remote, which the local side's no-local subscription keeps from going out again, and
# the devices here subscribe to the other gateway's topics only.
# A's session on the remote is clean: RabbitMQ keeps a persistent MQTT session's queue on the
# node it was made on, and that node is the one that goes away.
gateway() { # name port remote-clientid cleansession addresses...
    local name=$1 port=$2 id=$3 clean=$4
    shift 4
    cat >"$work/$name.conf" <<CONF
listener $port 127.0.0.1
allow_anonymous true
connection cluster
addresses $*
remote_clientid $id
try_private false
cleansession $clean
restart_timeout 1
keepalive_interval 10
topic # both 1 site/ cloud/
CONF
    RUST_LOG=info target/release/pipit -c "$work/$name.conf" 2>"$work/$name.log" &
    pids+=($!)
}
gateway gwa "$gw_a" gw-a true "127.0.0.1:${mqtt[1]}" "127.0.0.1:${mqtt[2]}"
gateway gwb "$gw_b" gw-b false "127.0.0.1:${mqtt[2]}"

connected_to() { # log port secs: waits for "bridge cluster: connected to 127.0.0.1:PORT"
    for _ in $(seq $(($3 * 10))); do
        grep -q "bridge cluster: connected to 127.0.0.1:$2\$" "$1" && return 0
        sleep 0.1
    done
    return 1
}
connected_to "$work/gwa.log" "${mqtt[1]}" 20 || fail "gateway A did not connect to node 1"
connected_to "$work/gwb.log" "${mqtt[2]}" 20 || fail "gateway B did not connect to node 2"
echo "ok: gateway A bridged to node 1, gateway B to node 2"

# Waits up to SECS seconds for FILE (mosquitto_sub -d output) to hold COUNT distinct
# messages. (Not mosquitto_sub -C: a QoS 1 resend after the failover may repeat a few, and
# a repeat would count as one of COUNT.)
wait_distinct() { # file count secs
    for _ in $(seq $(($3 * 10))); do
        [ "$(payloads "$1" | sort -u | wc -l)" -ge "$2" ] && return 0
        sleep 0.1
    done
    return 1
}

# Checks that FILE (mosquitto_sub -d output) holds 1..COUNT, each number's first arrival in
# order; repeats (QoS 1 is at least once) are counted, not failed.
check_sequence() { # file count what
    payloads "$1" | python3 -c '
import sys
count, what = int(sys.argv[1]), sys.argv[2]
got = [int(l) for l in sys.stdin.read().split()]
seen, firsts = set(), []
for n in got:
    if n not in seen:
        seen.add(n)
        firsts.append(n)
missing = sorted(set(range(1, count + 1)) - seen)
if missing:
    sys.exit(f"{what}: {len(missing)} of {count} missing, first {missing[:10]}")
if firsts != list(range(1, count + 1)):
    sys.exit(f"{what}: out of order")
print(f"ok: {what}: {count} of {count} in order ({len(got) - count} repeated)")
' "$2" "$3"
}

# Warm-up, both ways: a device on each gateway, the message through the cluster.
back=50
sub_until_suback "$work/at_a1" -p "$gw_a" -t site/b/1 -q 1 -W 150 || fail "no SUBACK on A"
pids+=("$sub_pid")
at_a1=$sub_pid
stream=400
sub_until_suback "$work/at_b" -p "$gw_b" -t site/a/stream -q 1 -W 150 \
    || fail "no SUBACK on B"
pids+=("$sub_pid")
at_b=$sub_pid
# The bridges' subscriptions on the cluster are made when they connect; give the remote a
# moment to bind them before the first message.
sleep 1

seq 1 "$back" | mosquitto_pub -p "$gw_b" -t site/b/1 -q 1 -l || fail "publish on B"
wait_distinct "$work/at_a1" "$back" 30 || fail "A's device got $(payloads "$work/at_a1" | wc -l) of $back from B"
check_sequence "$work/at_a1" "$back" "B to A before the failover" || fail "B to A"

# A's stream: one message every 20 ms, so node 1 goes away mid-stream.
(for i in $(seq 1 "$stream"); do echo "$i"; sleep 0.02; done) \
    | mosquitto_pub -p "$gw_a" -t site/a/stream -q 1 -l &
pub_a=$!
pids+=("$pub_a")
for _ in $(seq 100); do
    [ "$(payloads "$work/at_b" | wc -l)" -ge 100 ] && break
    sleep 0.1
done
[ "$(payloads "$work/at_b" | wc -l)" -ge 100 ] || fail "A's stream did not start arriving at B"
# RabbitMQ 3.10 keeps MQTT client ids in a Raft group across the nodes; with one of two
# nodes down there is no majority and no MQTT connection is accepted. Taking node 1 out of
# that group first (decommission_mqtt_node, which also closes node 1's MQTT connections) is
# RabbitMQ's procedure before a node is stopped; then node 1's application stops.
echo "stopping node 1 after $(payloads "$work/at_b" | wc -l) messages at B"
ctl 2 decommission_mqtt_node "$(node 1)" >/dev/null || fail "decommission_mqtt_node failed"
ctl 1 stop_app >/dev/null || fail "node 1 did not stop"
kill -0 "$pub_a" 2>/dev/null || fail "A's stream ended before node 1 stopped: not mid-stream"
echo "ok: node 1 stopped, A's stream still running"
connected_to "$work/gwa.log" "${mqtt[2]}" 30 || fail "gateway A did not fail over to node 2"
echo "ok: gateway A failed over to node 2 ($(payloads "$work/at_b" | wc -l) of $stream messages at B by then)"
wait "$pub_a" || fail "mosquitto_pub on A failed (not every message acknowledged)"
wait_distinct "$work/at_b" "$stream" 60 || fail "B's device got $(payloads "$work/at_b" | wc -l) of $stream from A"
check_sequence "$work/at_b" "$stream" "A to B through the failover" || fail "A to B"

# And back again, now that A's link is on node 2.
sub_until_suback "$work/at_a2" -p "$gw_a" -t site/b/2 -q 1 -W 150 || fail "no SUBACK on A"
pids+=("$sub_pid")
at_a2=$sub_pid
sleep 1
seq 1 "$back" | mosquitto_pub -p "$gw_b" -t site/b/2 -q 1 -l || fail "publish on B"
wait_distinct "$work/at_a2" "$back" 30 || fail "A's device got $(payloads "$work/at_a2" | wc -l) of $back from B after the failover"
check_sequence "$work/at_a2" "$back" "B to A after the failover" || fail "B to A"

echo "--- gateway A's bridge, as its log tells it"
grep -E 'bridge cluster' "$work/gwa.log" | sed 's/^/    /'
echo "bridge_cluster: all passed"
