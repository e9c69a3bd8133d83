#!/usr/bin/env bash
# Cross-builds release binaries of pipit for 64-bit and 32-bit ARM Linux (aarch64,
# armv7 hard-float), prints their stripped sizes and smoke-tests each under qemu-user: start
# the broker, pass one QoS 1 message through it with the Mosquitto clients, stop it.
#
# Installs what it needs when missing: the rustup targets, Debian's cross gcc and libc
# (used as linkers), qemu-user and mosquitto-clients. Linkers are chosen here through
# CARGO_TARGET_<TRIPLE>_LINKER, not a .cargo/config.toml. Exits non-zero on the first failure.
#
# Environment:
#   CROSS_TARGETS  targets to build [aarch64-unknown-linux-gnu armv7-unknown-linux-gnueabihf]
#   CROSS_CONNS    idle connections opened by pipit-load to estimate the memory per
#                  connection under emulation; 0 skips it [1000]
set -euo pipefail
cd "$(dirname "$0")/.."

read -r -a targets <<<"${CROSS_TARGETS:-aarch64-unknown-linux-gnu armv7-unknown-linux-gnueabihf}"
conns=${CROSS_CONNS:-1000}

# Per target: GNU triple prefix of the cross tools, Debian packages, qemu binary.
gnu_prefix() {
    case "$1" in
        aarch64-unknown-linux-gnu) echo aarch64-linux-gnu ;;
        armv7-unknown-linux-gnueabihf) echo arm-linux-gnueabihf ;;
        *) echo "cross.sh: unsupported target $1" >&2; return 1 ;;
    esac
}
debian_packages() {
    case "$1" in
        aarch64-unknown-linux-gnu) echo gcc-aarch64-linux-gnu libc6-dev-arm64-cross ;;
        armv7-unknown-linux-gnueabihf) echo gcc-arm-linux-gnueabihf libc6-dev-armhf-cross ;;
    esac
}
qemu_binary() {
    case "$1" in
        aarch64-unknown-linux-gnu) echo qemu-aarch64 ;;
        armv7-unknown-linux-gnueabihf) echo qemu-arm ;;
    esac
}

# --- install what is missing (idempotent: nothing is fetched when all is present)
sudo=""
[ "$(id -u)" -eq 0 ] || sudo=sudo
installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }
wanted=(qemu-user mosquitto-clients)
for t in "${targets[@]}"; do
    gnu_prefix "$t" >/dev/null
    read -r -a pkgs <<<"$(debian_packages "$t")"
    wanted+=("${pkgs[@]}")
done
missing=()
for p in "${wanted[@]}"; do installed "$p" || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
    echo "installing ${missing[*]}"
    $sudo apt-get update -qq
    $sudo env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
installed_targets=$(rustup target list --installed)
for t in "${targets[@]}"; do
    grep -qx "$t" <<<"$installed_targets" || rustup target add "$t"
done

# --- build and size
for t in "${targets[@]}"; do
    prefix=$(gnu_prefix "$t")
    upper=$(tr 'a-z-' 'A-Z_' <<<"$t")
    export "CARGO_TARGET_${upper}_LINKER=${prefix}-gcc"
    export "CC_${t//-/_}=${prefix}-gcc" # for any build script using the cc crate
    cargo build --release --quiet --target "$t" --bin pipit
done

work=$(mktemp -d)
broker_pid=""
sub_pid=""
cleanup() {
    [ -n "$sub_pid" ] && kill "$sub_pid" 2>/dev/null && wait "$sub_pid" 2>/dev/null
    [ -n "$broker_pid" ] && kill "$broker_pid" 2>/dev/null && wait "$broker_pid" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT

echo
echo "stripped release binary sizes (bytes):"
[ -x target/release/pipit ] && printf '  %-32s %9d  (host, as last built)\n' \
    "$(rustc -vV | sed -n 's/^host: //p')" "$(stat -c %s target/release/pipit)"
for t in "${targets[@]}"; do
    bin="target/$t/release/pipit"
    "$(gnu_prefix "$t")-strip" -o "$work/pipit-$t" "$bin"
    printf '  %-32s %9d  (file %d)\n' "$t" "$(stat -c %s "$work/pipit-$t")" "$(stat -c %s "$bin")"
done

# --- smoke test under qemu-user
fail() {
    echo "FAIL [$1]: $2"
    echo "--- broker log"
    tail -20 "$work/broker.log" 2>/dev/null || true
    exit 1
}
stop_broker() {
    kill "$broker_pid" 2>/dev/null || true
    wait "$broker_pid" 2>/dev/null || true
    broker_pid=""
}
vmrss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }
json_field() { grep -o "\"$2\":[0-9]*" "$1" | head -1 | cut -d: -f2; }

load=""
if [ "$conns" != 0 ]; then
    cargo build --release --quiet --bin pipit-load
    load=target/release/pipit-load
fi

for t in "${targets[@]}"; do
    echo
    echo "=== $t under $(qemu_binary "$t")"
    sysroot="/usr/$(gnu_prefix "$t")"
    # Port 0: the kernel picks a free port and the broker logs it.
    RUST_LOG=info "$(qemu_binary "$t")" -L "$sysroot" "target/$t/release/pipit" --port 0 \
        2>"$work/broker.log" &
    broker_pid=$!
    port=""
    for _ in $(seq 200); do
        port=$(sed -n 's/.*listening on [^ ]*:\([0-9][0-9]*\)$/\1/p' "$work/broker.log" | head -1)
        [ -n "$port" ] && break
        kill -0 "$broker_pid" 2>/dev/null || fail "$t" "broker exited at startup"
        sleep 0.1
    done
    [ -n "$port" ] || fail "$t" "broker did not report a listening port within 20 s"
    echo "broker pid $broker_pid listening on port $port"

    # Subscribe at QoS 1; -d prints the SUBACK (line-buffered by stdbuf, since stdout is a
    # file), so the publish is sent only once the subscription is in.
    payload="hello from $t"
    stdbuf -oL mosquitto_sub -d -p "$port" -t cross/smoke -q 1 -C 1 -W 10 >"$work/sub.out" 2>&1 &
    sub_pid=$!
    for _ in $(seq 100); do
        grep -q 'received SUBACK' "$work/sub.out" && break
        kill -0 "$sub_pid" 2>/dev/null || break
        sleep 0.1
    done
    grep -q 'received SUBACK' "$work/sub.out" || fail "$t" "no SUBACK: $(cat "$work/sub.out")"
    mosquitto_pub -p "$port" -t cross/smoke -q 1 -m "$payload" || fail "$t" "mosquitto_pub failed"
    wait "$sub_pid" || { sub_pid=""; fail "$t" "subscriber got nothing: $(cat "$work/sub.out")"; }
    sub_pid=""
    grep 'received PUBLISH' "$work/sub.out"
    grep -q 'received PUBLISH (d0, q1' "$work/sub.out" || fail "$t" "message not delivered at QoS 1"
    grep -qxF "$payload" "$work/sub.out" || fail "$t" "payload differs: $(cat "$work/sub.out")"
    echo "ok: QoS 1 message published and received through the $t broker"

    # The broker runs inside the qemu process: its VmRSS adds qemu itself, its translated
    # code cache and the host libraries to the broker's own pages. It is an upper bound only.
    echo "idle VmRSS of the qemu process: $(vmrss_kib "$broker_pid") KiB (qemu + broker: NOT the broker's own RSS)"
    if [ -n "$load" ]; then
        # Growth per idle connection, after the connect path is already translated (the
        # smoke test ran it), is mostly the broker's own heap on this target's ABI.
        if "$load" conns --port "$port" --conns "$conns" --conn-rate 0 --hold 2 \
            --broker-pid "$broker_pid" --quiet >"$work/conns.json" 2>"$work/conns.err"; then
            per=$(awk -v s="$(json_field "$work/conns.json" rss_start)" \
                -v e="$(json_field "$work/conns.json" rss_end)" \
                -v n="$(json_field "$work/conns.json" conns_ok)" \
                'BEGIN { if (n > 0 && e != "") printf "%d", (e - s) * 1024 / n }')
            echo "approx. broker bytes per idle connection (qemu RSS growth over $conns connections): ${per:-n/a}"
        else
            echo "pipit-load conns failed (not a smoke-test failure): $(tail -3 "$work/conns.err")"
        fi
    fi
    stop_broker
    echo "ok: broker stopped"
done

echo
echo "cross: all passed"
