#!/usr/bin/env bash
# Regenerates scripts/idle_functions.txt: the functions the static build runs while it idles,
# which scripts/link_ordered.sh lays out together (see there for why). Builds the static binary
# with its symbols (in target/idle-profile), runs it under valgrind's callgrind with a plain
# and a TLS listener and nobody connected, zeroes the counts once start-up is over and its
# pages are given back, and lists every function that ran in the next IDLE_SECONDS (default
# 25: two $SYS reports and the once-a-second sweeps). Installs valgrind if missing. Takes about
# two minutes; run it after a change to what the idle loop does, and commit the list.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v valgrind >/dev/null || apt-get install -y -qq valgrind >/dev/null \
    || { apt-get update -qq && apt-get install -y -qq valgrind >/dev/null; }
IDLE_SECONDS=${IDLE_SECONDS:-25}
bin=$(CARGO_PROFILE_RELEASE_STRIP=false CARGO_TARGET_DIR=target/idle-profile scripts/static.sh)
work=$(mktemp -d)
vg_pid=""
trap '[ -n "$vg_pid" ] && kill "$vg_pid" 2>/dev/null; rm -rf "$work"' EXIT

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 \
    -subj /CN=localhost -keyout "$work/key.pem" -out "$work/cert.pem" 2>/dev/null
# Fixed ports: callgrind's start-up is slow enough that reading a logged port 0 races nothing,
# but a TLS listener needs its own line. `user` keeps the broker this script's user, so
# callgrind_control may talk to it.
cat >"$work/pipit.conf" <<CONF
user $(id -un)
listener 18941 127.0.0.1
allow_anonymous true
listener 18942 127.0.0.1
certfile $work/cert.pem
keyfile $work/key.pem
CONF
valgrind --tool=callgrind --demangle=no --dump-instr=no \
    --callgrind-out-file="$work/callgrind.out" "$bin" -c "$work/pipit.conf" 2>"$work/vg.log" &
vg_pid=$!
# Start-up pages are given back 1.5 s after the broker runs; under callgrind that is later.
for _ in $(seq 100); do grep -q "listening on 127.0.0.1:18942" "$work/vg.log" && break; sleep 0.2; done
grep -q "listening on 127.0.0.1:18942" "$work/vg.log" \
    || { echo "the broker did not start under callgrind:" && tail "$work/vg.log" && exit 1; } >&2
sleep 8
callgrind_control -z "$vg_pid" >/dev/null
sleep "$IDLE_SECONDS"
callgrind_control -d "$vg_pid" >/dev/null
sleep 1
dump=$(ls "$work"/callgrind.out.* | head -1)
# Written aside first: a run that saw nothing must not replace the committed list.
{
    echo "# Functions the static build ran while idle (plain and TLS listener, nobody connected),"
    echo "# $IDLE_SECONDS s: made by scripts/idle_profile.sh, used by scripts/link_ordered.sh."
    # "fn=(id) name" or "cfn=(id) name" names a function the first time it appears; later
    # "fn=(id)" refers to it. A function ran if it has a "fn=" block (costs of its own).
    awk '/^c?fn=\(/ {
            kind = substr($0, 1, index($0, "=") - 1)
            rest = substr($0, index($0, "(") + 1)
            id = substr(rest, 1, index(rest, ")") - 1)
            name = substr(rest, index(rest, ")") + 2)
            if (name != "") names[id] = name
            if (kind == "fn") ran[id] = 1
        }
        END { for (id in ran) if (id in names) print names[id] }' "$dump" | grep -v '^0x\|^(' \
        | scripts/link_ordered.sh --normalize | sort -u
} >"$work/idle_functions.txt"
found=$(grep -vc '^#' "$work/idle_functions.txt" || true)
[ "$found" -gt 0 ] || { echo "no function ran in the profile: list left as it was" >&2 && exit 1; }
mv "$work/idle_functions.txt" scripts/idle_functions.txt
echo "$found functions in scripts/idle_functions.txt"
