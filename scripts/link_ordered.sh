#!/usr/bin/env bash
# The linker scripts/static.sh builds with: the C compiler driver, as rustc would run it, with
# the toolchain's own lld, placing the functions an idle broker runs (scripts/idle_functions.txt)
# next to each other at the start of the program text.
#
# Why: the kernel maps program text 64 KiB around each page a fault touches (fault-around).
# The idle loop runs about 200 KiB of code, scattered over 2.4 MiB of text, so after start-up's
# pages are given back (src/startup_pages.rs) its faults brought back 704 KiB; laid out
# together they bring back about 300 KiB.
#
# idle_functions.txt names functions without their hashes or crate disambiguators (see
# `normalize`), so it survives rebuilds; scripts/idle_profile.sh regenerates it. The symbols of
# the link's input objects and archives that match it are written, in its order, to
# OUTPUT.order beside the output and handed to lld (--symbol-ordering-file); the count goes to
# OUTPUT.order-count ("matched listed"), which scripts/static_check.sh checks. Anything that
# stops the list from being made (no nm or c++filt, a response file) links without it: the
# order is a matter of memory use, not of behaviour.
#
#   scripts/link_ordered.sh CC-ARGS...     link (what rustc calls)
#   scripts/link_ordered.sh --normalize    mangled names on stdin -> normalized names on stdout
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)

# Demangled names with the parts that change between builds removed: legacy Rust hashes
# (::h0123456789abcdef), v0 crate disambiguators ([0123abcd]), and the numbered suffixes of
# compiler-made copies (.constprop.0, .llvm.1234, .778).
normalize() {
    c++filt | sed -E 's/::h[0-9a-f]{16}$//; s/\[[0-9a-f]+\]//g; s/(\.[a-z]+\.[0-9]+|\.[0-9]+)+$//'
}

if [ "${1:-}" = --normalize ]; then
    normalize
    exit
fi

gcc_ld="$(${RUSTC:-rustc} --print sysroot)/lib/rustlib/$(uname -m)-unknown-linux-gnu/bin/gcc-ld"
lld=yes
link=(cc "$@" -fuse-ld=lld "-B$gcc_ld")
[ -x "$gcc_ld/ld.lld" ] || { lld=no && link=(cc "$@"); }

# The output and the inputs whose symbols may be ordered: objects and archives named, and
# the static libraries -l names (the C library among them) found in the -L directories.
out="" inputs=() dirs=() libs=() previous=""
for arg in "$@"; do
    case $previous in
        -o) out=$arg ;;
        -L) dirs+=("$arg") ;;
    esac
    case $arg in
        @*) out="" && break ;;
        -L?*) dirs+=("${arg#-L}") ;;
        -l?*) libs+=("${arg#-l}") ;;
        *.o | *.a | *.rlib) [ -f "$arg" ] && inputs+=("$arg") ;;
    esac
    previous=$arg
done
for lib in "${libs[@]}"; do
    for dir in "${dirs[@]}"; do
        [ -f "$dir/lib$lib.a" ] && inputs+=("$dir/lib$lib.a") && break
    done
done

order_file() {
    local names
    names=$(mktemp) || return 1
    # Defined text symbols (global and local), mangled, one per line. nm's status is not
    # looked at: it fails for an archive member without symbols, which is not a reason to
    # drop the order; an empty list is.
    { nm -P --defined-only "${inputs[@]}" 2>/dev/null || true; } \
        | awk '$2 ~ /^[tTwW]$/ { print $1 }' | sort -u >"$names"
    [ -s "$names" ] || { rm -f "$names" && return 1; }
    paste "$names" <(normalize <"$names") \
        | awk -F'\t' -v count="$out.order-count" '
            NR == FNR { if ($0 !~ /^#/ && $0 != "") { rank[$0] = ++listed } next }
            ($2 in rank) { print rank[$2] "\t" $1; if (!seen[$2]++) matched++ }
            END { print matched + 0, listed + 0 > count }' "$here/idle_functions.txt" - \
        | sort -n -s -k1,1 | cut -f2 >"$out.order"
    rm -f "$names"
}

# A count from an earlier link must not speak for this one.
[ -n "$out" ] && rm -f "$out.order" "$out.order-count"
if [ -n "$out" ] && [ $lld = yes ] && [ ${#inputs[@]} -gt 0 ] && order_file; then
    exec "${link[@]}" "-Wl,--symbol-ordering-file=$out.order" -Wl,--no-warn-symbol-ordering
fi
echo "link_ordered.sh: linking without the idle functions' order" >&2
# Nothing matched: scripts/static_check.sh reports it instead of reading an old count.
[ -n "$out" ] && echo "0 $(grep -vc '^#' "$here/idle_functions.txt")" >"$out.order-count"
exec "${link[@]}"
