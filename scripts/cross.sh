#!/usr/bin/env bash
# Cross-builds release binaries of pipit for 64-bit and 32-bit ARM Linux (aarch64,
# armv7 hard-float), prints their stripped sizes and smoke-tests each under qemu-user: start
# the broker, measure its idle resident memory (see guest_rss below), pass one QoS 1 message
# through it with the Mosquitto clients, stop it.
#
# Installs what it needs when missing: the rustup targets, Debian's cross gcc and libc
# (used as linkers), qemu-user and mosquitto-clients. Linkers are chosen here through
# CARGO_TARGET_<TRIPLE>_LINKER, not a .cargo/config.toml. Exits non-zero on the first failure.
#
# Environment:
#   CROSS_TARGETS  targets to build [aarch64-unknown-linux-gnu armv7-unknown-linux-gnueabihf]
#   CROSS_CONNS    idle connections opened by pipit-load to estimate the memory per
#                  connection under emulation; 0 skips it [1000]
#   CROSS_GUEST_BASE  host address where qemu-user places guest address 0 (-B); must leave
#                  4 GiB free in the host address space [0x10000000000, i.e. 1 TiB]
#   CARGO_TARGET_DIR  honoured, as by cargo [target]
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
source scripts/lib.sh # qos1_round_trip; this script has its own fail (it names the target)

read -r -a targets <<<"${CROSS_TARGETS:-aarch64-unknown-linux-gnu armv7-unknown-linux-gnueabihf}"
conns=${CROSS_CONNS:-1000}
guest_base=${CROSS_GUEST_BASE:-0x10000000000}
tdir=${CARGO_TARGET_DIR:-target}

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
# One cargo run for all targets (150 s instead of 194 in CI): it schedules their crates
# together, so one target's link-time optimisation (a single thread with codegen-units = 1)
# overlaps the other's compiling.
target_flags=()
for t in "${targets[@]}"; do
    prefix=$(gnu_prefix "$t")
    upper=$(tr 'a-z-' 'A-Z_' <<<"$t")
    export "CARGO_TARGET_${upper}_LINKER=${prefix}-gcc"
    export "CC_${t//-/_}=${prefix}-gcc" # for any build script using the cc crate
    target_flags+=(--target "$t")
done
cargo build --release --quiet "${target_flags[@]}" --bin pipit

work=$(mktemp -d)
broker_pid=""
cleanup() {
    [ -n "$broker_pid" ] && kill "$broker_pid" 2>/dev/null && wait "$broker_pid" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT

echo
echo "stripped release binary sizes (bytes):"
[ -x "$tdir/release/pipit" ] && printf '  %-32s %9d  (host, as last built)\n' \
    "$(rustc -vV | sed -n 's/^host: //p')" "$(stat -c %s "$tdir/release/pipit")"
declare -A stripped idle_rss
for t in "${targets[@]}"; do
    bin="$tdir/$t/release/pipit"
    "$(gnu_prefix "$t")-strip" -o "$work/pipit-$t" "$bin"
    stripped[$t]=$(stat -c %s "$work/pipit-$t")
    printf '  %-32s %9d  (file %d)\n' "$t" "${stripped[$t]}" "$(stat -c %s "$bin")"
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
thousands() { sed -E ':a; s/([0-9])([0-9]{3})($|,)/\1,\2\3/; ta' <<<"$1"; }

# Idle RSS of the guest broker under qemu-user. The qemu process's VmRSS is mostly qemu's own
# (its binary and host libraries, the translated-code cache, its heap: ~15 MiB), so instead:
# qemu-user maps the guest address space linearly into its own, host = guest_base + guest. We
# fix guest_base with -B and, for the 64-bit guest, reserve a 4 GiB guest address space with
# -R (a 32-bit guest cannot address more, and qemu-arm on a 64-bit host reserves its ~4 GiB
# by default; it refuses -R 4G). qemu then places every guest mapping (the ELF segments it
# loads, the guest ld.so's mmaps of /usr/<triple>/lib, the guest's brk heap, stacks, its
# signal-trampoline or commpage page) inside [guest_base, guest_base + 4 GiB), and none of
# its own, as that range is one PROT_NONE reservation it carves guest mappings out of. Summing
# Rss: over the /proc/PID/smaps entries in that range gives the guest's resident pages, split
# here by mapped file; the in-range entries were checked to be exactly qemu's own guest page
# table (-d page) shifted by guest_base.
# Validation: the native x86_64 pipit run as a guest of qemu-x86_64 (same method, range read
# from -d page since that guest needs a full address space) shows 2,472 KiB = pipit 936 +
# libc 1,164 + ld.so 204 + libgcc_s 72 + anon 96, against 2,460..2,736 KiB natively over
# runs (pipit 848..1,088, libc 1,152..1,240, ld.so 208..212, libgcc_s 100, anon 80..92), the
# native spread coming from ASLR moving the fault-around windows. The ARM figures split the
# same way (pipit text a little smaller, libc ~1.1 / ~0.9 MiB, anon under 0.1 MiB).
# Limits: these are host pages (4 KiB on x86_64, like the guests' here; a board running a
# 16/64 KiB-page kernel would count coarser), faulted in by qemu's translator and its loads
# and stores for the guest, with the host kernel's fault-around (up to 64 KiB of neighbours
# already in the page cache per read fault on a file mapping), much as an ARM kernel with
# 4 KiB pages would do it. qemu's CPU model picks the glibc IFUNC variants, so a real board
# may touch other libc pages; its vdso/vectors pages are not here. Rss, not Pss: shared
# file pages count in full. So the figure is good to ~10%, not to the page.
# Prints "total pipit libc ld.so other-files anon" in KiB; fails if the broker binary is
# not mapped in the range (the method no longer holds).
guest_rss() {
    awk -v base="${guest_base#0x}" -v bin="$2" '
        function hex(s,  i, v) {
            v = 0; s = tolower(s)
            for (i = 1; i <= length(s); i++) v = v * 16 + index("0123456789abcdef", substr(s, i, 1)) - 1
            return v
        }
        BEGIN { lo = hex(base); hi = lo + 4294967296 }
        /^[0-9a-f]+-[0-9a-f]+ / {
            split($1, r, "-"); inside = hex(r[1]) >= lo && hex(r[2]) <= hi
            f = $6 == "" ? "anon" : $6 == bin ? "bin" : $6 ~ /\/libc\.so/ ? "libc" \
                : $6 ~ /\/ld-linux/ ? "ld" : $6 ~ /^\// ? "other" : "anon"
            next
        }
        /^Rss:/ && inside { kib[f] += $2; total += $2 }
        END {
            if (kib["bin"] == 0) exit 1 # the broker binary is not where the method expects it
            printf "%d %d %d %d %d %d\n", total, kib["bin"], kib["libc"], kib["ld"], kib["other"], kib["anon"]
        }' "/proc/$1/smaps"
}
json_field() { grep -o "\"$2\":[0-9]*" "$1" | head -1 | cut -d: -f2; }

load=""
if [ "$conns" != 0 ]; then
    cargo build --release --quiet --bin pipit-load
    load="$tdir/release/pipit-load"
fi

for t in "${targets[@]}"; do
    echo
    echo "=== $t under $(qemu_binary "$t")"
    sysroot="/usr/$(gnu_prefix "$t")"
    qemu_args=(-L "$sysroot" -B "$guest_base")
    [ "$(qemu_binary "$t")" = qemu-aarch64 ] && qemu_args+=(-R 0x100000000)
    # Port 0: the kernel picks a free port and the broker logs it (default bind: 127.0.0.1).
    RUST_LOG=info "$(qemu_binary "$t")" "${qemu_args[@]}" "$tdir/$t/release/pipit" --port 0 \
        2>"$work/broker.log" &
    broker_pid=$!
    port=$(logged_port "$work/broker.log" "$broker_pid" 20) || fail "$t" "$port"
    echo "broker pid $broker_pid listening on port $port"

    # Idle RSS: nothing connected yet, ~0.5 s after the broker listens.
    sleep 0.5
    bin_path=$(readlink -f "$tdir/$t/release/pipit")
    rss=$(guest_rss "$broker_pid" "$bin_path") \
        || fail "$t" "no guest mapping of $bin_path at guest_base $guest_base in /proc/$broker_pid/smaps"
    read -r total kbin klibc kld kother kanon <<<"$rss"
    idle_rss[$t]=$total
    echo "idle guest RSS $(thousands "$total") KiB = pipit $(thousands "$kbin") + libc $(thousands "$klibc")" \
        "+ ld.so $kld + other libs $kother + anon $kanon (qemu process VmRSS $(thousands "$(vmrss_kib "$broker_pid")") KiB)"

    payload="hello from $t"
    why=$(qos1_round_trip "$port" cross/smoke "$payload" "$work/sub.out") || fail "$t" "$why"
    grep 'received PUBLISH' "$work/sub.out"
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
for t in "${targets[@]}"; do
    echo "$t: stripped $(thousands "${stripped[$t]}") B, idle RSS ~$(thousands "${idle_rss[$t]}") KiB (guest mappings under qemu-user)"
done
echo "cross: all passed"
