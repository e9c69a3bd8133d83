#!/usr/bin/env bash
# Builds Debian packages of pipit with dpkg-deb (no debhelper, no cargo-deb: a package of one
# static-free binary and four text files needs neither), one per architecture, into
# $CARGO_TARGET_DIR/deb/: pipit_VERSION-1_ARCH.deb holding
#   /usr/sbin/pipit                      the broker (and `pipit passwd`, the password tool)
#   /lib/systemd/system/pipit.service    Type=notify unit (scripts/package/pipit.service)
#   /etc/pipit/pipit.conf, conf.d/       the default configuration (a conffile)
#   /usr/share/doc/pipit/                README.md and copyright
# and maintainer scripts that create the `pipit` system user and /var/lib/pipit, and enable
# and start the service when systemd runs (reload, stop and purge likewise).
#
# Architectures: DEB_ARCHES (default "amd64 arm64 armhf"). amd64 is this host's release
# build; arm64 and armhf are cross builds (aarch64-unknown-linux-gnu,
# armv7-unknown-linux-gnueabihf) with Debian's cross gcc as linker, installed when missing as
# scripts/cross.sh does (which CI runs first, so their binaries are usually built already).
set -euo pipefail
cd "$(dirname "$0")/.."

read -r -a arches <<<"${DEB_ARCHES:-amd64 arm64 armhf}"
tdir=${CARGO_TARGET_DIR:-target}
out="$tdir/deb"
version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -1)
revision=1
mkdir -p "$out"

triple() {
    case "$1" in
        amd64) echo "" ;;
        arm64) echo aarch64-unknown-linux-gnu ;;
        armhf) echo armv7-unknown-linux-gnueabihf ;;
        *) echo "deb.sh: unsupported architecture $1" >&2; return 1 ;;
    esac
}
gnu_prefix() {
    case "$1" in
        arm64) echo aarch64-linux-gnu ;;
        armhf) echo arm-linux-gnueabihf ;;
    esac
}
cross_packages() {
    case "$1" in
        arm64) echo gcc-aarch64-linux-gnu libc6-dev-arm64-cross ;;
        armhf) echo gcc-arm-linux-gnueabihf libc6-dev-armhf-cross ;;
    esac
}
installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }

# Builds the release binary for ARCH if needed; prints its path.
binary() {
    local arch=$1 t
    t=$(triple "$arch")
    if [ -z "$t" ]; then
        cargo build --release --quiet --bin pipit >&2
        echo "$tdir/release/pipit"
        return
    fi
    local prefix missing=()
    prefix=$(gnu_prefix "$arch")
    for p in $(cross_packages "$arch"); do installed "$p" || missing+=("$p"); done
    if [ ${#missing[@]} -gt 0 ]; then
        apt-get update -qq >&2
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
            "${missing[@]}" >/dev/null
    fi
    rustup target list --installed | grep -qx "$t" || rustup target add "$t" >&2
    local upper
    upper=$(tr 'a-z-' 'A-Z_' <<<"$t")
    env "CARGO_TARGET_${upper}_LINKER=${prefix}-gcc" "CC_${t//-/_}=${prefix}-gcc" \
        cargo build --release --quiet --target "$t" --bin pipit >&2
    echo "$tdir/$t/release/pipit"
}

# The newest glibc symbol version BINARY needs, for Depends.
glibc_needed() {
    grep -ao 'GLIBC_[0-9][0-9.]*' "$1" | sed 's/GLIBC_//' | sort -V | tail -1
}

for arch in "${arches[@]}"; do
    bin=$(binary "$arch")
    root=$(mktemp -d)
    trap 'rm -rf "$root"' EXIT
    chmod 0755 "$root" # the package's ./ entry
    install -D -m 0755 "$bin" "$root/usr/sbin/pipit"
    install -D -m 0644 scripts/package/pipit.service "$root/lib/systemd/system/pipit.service"
    install -D -m 0644 scripts/package/pipit.conf "$root/etc/pipit/pipit.conf"
    install -d -m 0755 "$root/etc/pipit/conf.d"
    install -D -m 0644 README.md "$root/usr/share/doc/pipit/README.md"
    cat >"$root/usr/share/doc/pipit/copyright" <<'COPYRIGHT'
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: pipit
Source: the pipit repository

Files: *
Copyright: the pipit authors
License: MIT or Apache-2.0
COPYRIGHT
    mkdir -p "$root/DEBIAN"
    echo /etc/pipit/pipit.conf >"$root/DEBIAN/conffiles"
    size=$(du -sk --exclude=DEBIAN "$root" | cut -f1)
    cat >"$root/DEBIAN/control" <<CONTROL
Package: pipit
Version: $version-$revision
Architecture: $arch
Maintainer: pipit developers <pipit@localhost>
Installed-Size: $size
Depends: libc6 (>= $(glibc_needed "$bin")), adduser
Section: net
Priority: optional
Description: small, fast MQTT broker for the edge
 pipit is an MQTT 3.1, 3.1.1 and 5.0 broker that reads Mosquitto's configuration,
 password, ACL and dynamic-security files, at a fraction of Mosquitto's memory and CPU.
 Acknowledged QoS 1/2 messages survive a restart and a power cut.
CONTROL
    cat >"$root/DEBIAN/postinst" <<'POSTINST'
#!/bin/sh
set -e
if [ "$1" = configure ]; then
    if ! getent passwd pipit >/dev/null; then
        adduser --system --group --home /var/lib/pipit --no-create-home \
            --gecos "pipit MQTT broker" --quiet pipit
    fi
    install -d -o pipit -g pipit -m 0750 /var/lib/pipit
    install -d -o pipit -g adm -m 2750 /var/log/pipit
    if [ -d /run/systemd/system ]; then
        systemctl daemon-reload
        systemctl enable pipit.service >/dev/null 2>&1 || true
        systemctl restart pipit.service || true
    fi
fi
POSTINST
    cat >"$root/DEBIAN/prerm" <<'PRERM'
#!/bin/sh
set -e
if [ -d /run/systemd/system ] && [ "$1" = remove ]; then
    systemctl stop pipit.service || true
    systemctl disable pipit.service >/dev/null 2>&1 || true
fi
PRERM
    cat >"$root/DEBIAN/postrm" <<'POSTRM'
#!/bin/sh
set -e
if [ -d /run/systemd/system ]; then
    systemctl daemon-reload || true
fi
# The store and the logs are the administrator's data: only purge removes them. The
# pipit user stays, as Debian policy asks (files it owned may remain elsewhere).
if [ "$1" = purge ]; then
    rm -rf /var/lib/pipit /var/log/pipit
fi
POSTRM
    chmod 0755 "$root/DEBIAN/postinst" "$root/DEBIAN/prerm" "$root/DEBIAN/postrm"
    deb="$out/pipit_${version}-${revision}_${arch}.deb"
    dpkg-deb --root-owner-group --build "$root" "$deb" >/dev/null
    rm -rf "$root"
    trap - EXIT
    printf '%s  %d bytes\n' "$deb" "$(stat -c %s "$deb")"
done
