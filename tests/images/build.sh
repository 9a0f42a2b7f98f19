#!/usr/bin/env bash
# tests/images/build.sh [DEST] — build brandpy's test root filesystems (see README.md).
#
#   DEST/busybox/      busybox-static rootfs (one binary + applet symlinks + /etc basics)
#   DEST/debian/       Debian bookworm, debootstrap --variant=minbase + python3 & co.
#   DEST/busybox.tar   plain tar of each rootfs (numeric owners), `docker import` style
#   DEST/debian.tar
#   DEST/debs/         hello_*.deb, a small real package for dpkg tests
#   DEST/READY         manifest written last; its presence means everything above is complete
#
# Runs as root. A second call is a no-op while DEST/READY matches this script.
# Everything is built in DEST/.tmp.XXXXXX and renamed into place only when complete,
# so an interrupted build never leaves a partial rootfs where tests would use it.
set -euo pipefail
umask 022
export LC_ALL=C DEBIAN_FRONTEND=noninteractive

DEST=${1:-${BRANDPY_TEST_IMAGES:-/var/cache/brandpy/images}}
SUITE=bookworm
MIRROR=${BRANDPY_DEBIAN_MIRROR:-http://deb.debian.org/debian}
DEBIAN_INCLUDE=python3,procps,libpython3.11-testsuite,ca-certificates,less
ARTIFACTS=(busybox debian)

# The recipe id is the hash of this script: editing it invalidates the cache.
RECIPE=$(sha256sum <"${BASH_SOURCE[0]}" | cut -c1-16)

log() { printf '[images] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

[ "$(id -u)" -eq 0 ] || die "must run as root (debootstrap and chroot need it)"

mkdir -p -- "$DEST"
DEST=$(realpath -- "$DEST")
chmod 755 -- "$DEST"

# --- cache check -------------------------------------------------------------------
# READY lines: "recipe ID", "date ISO8601", "NAME SHA256 NAME.tar BYTES".
is_ready() {
    local f=$DEST/READY name sha file bytes
    [ -f "$f" ] || return 1
    grep -qx "recipe $RECIPE" "$f" || return 1
    for name in "${ARTIFACTS[@]}"; do
        read -r _ sha file bytes < <(grep "^$name " "$f") || return 1
        [ -d "$DEST/$name" ] && [ -f "$DEST/$file" ] || return 1
        [ "$(stat -c %s "$DEST/$file")" = "$bytes" ] || return 1
    done
}

if is_ready; then
    log "up to date: $DEST (delete $DEST/READY to rebuild)"
    exit 0
fi

# One builder at a time per DEST; whoever waited re-checks.
exec 9>"$DEST/.lock"
if ! flock -n 9; then
    log "another build holds $DEST/.lock; waiting"
    flock 9
fi
if is_ready; then
    log "up to date: $DEST (built by a concurrent run)"
    exit 0
fi

# --- safe removal of build directories (debootstrap mounts proc, sys, dev inside) --
mounts_under() {   # mount points at or below $1, deepest first
    awk -v r="$1" '{ mp = $5; gsub(/\\040/, " ", mp); gsub(/\\011/, "\t", mp);
                     if (mp == r || index(mp, r "/") == 1) print mp }' /proc/self/mountinfo |
        sort -r
}
unmount_under() {
    local root mp i
    root=$(realpath -- "$1")
    for i in 1 2 3 4 5; do
        [ -n "$(mounts_under "$root")" ] || return 0
        while IFS= read -r mp; do
            umount -- "$mp" 2>/dev/null || umount -l -- "$mp" 2>/dev/null || true
        done < <(mounts_under "$root")
    done
    [ -z "$(mounts_under "$root")" ]
}
safe_rm() {
    [ -e "$1" ] || return 0
    unmount_under "$1" || { log "still mounted under $1; NOT deleting it:"; mounts_under "$1" >&2; return 1; }
    rm -rf --one-file-system -- "$1"
}

# Leftovers of interrupted or killed builds (we hold the lock, so nobody else owns them).
for stale in "$DEST"/.tmp.*; do
    [ -e "$stale" ] || continue
    log "removing leftover $stale"
    safe_rm "$stale"
done

rm -f -- "$DEST/READY"
WORK=$(mktemp -d "$DEST/.tmp.XXXXXX")
chmod 755 -- "$WORK"
BUILD_LOG=$DEST/build.log
: >"$BUILD_LOG"

cleanup() {
    local rc=$?
    trap - EXIT INT TERM HUP
    if [ "$rc" -ne 0 ]; then
        log "build failed or interrupted (exit $rc); removing partial build $WORK"
        log "details: $BUILD_LOG"
    fi
    safe_rm "$WORK" || rc=1
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

# --- 1. busybox ----------------------------------------------------------------------
busybox_binary() {   # path of a static busybox: the installed busybox-static, else its .deb
    local p
    if [ "$(dpkg-query -W -f='${db:Status-Status}' busybox-static 2>/dev/null)" = installed ]; then
        p=$(dpkg -L busybox-static | grep -m1 -E '^(/usr)?/bin/busybox$')
        [ -f "$p" ] && { echo "$p"; return; }
    fi
    log "busybox-static not installed; fetching the .deb"
    (cd "$WORK" && apt-get download -q busybox-static >>"$BUILD_LOG" 2>&1) ||
        die "apt-get download busybox-static failed (run apt-get update?)"
    dpkg-deb -x "$WORK"/busybox-static_*.deb "$WORK/bb-deb"
    echo "$WORK/bb-deb/bin/busybox"
}

build_busybox() {
    local r=$1 bb applet up d
    bb=$(busybox_binary)
    mkdir -m 755 -- "$r"
    for d in bin sbin usr usr/bin usr/sbin etc root proc dev sys home var run; do
        install -d -m 755 "$r/$d"
    done
    install -d -m 1777 "$r/tmp"
    install -m 755 "$bb" "$r/bin/busybox"
    # One symlink per applet, where busybox --install would put it. Relative links, so
    # they also resolve correctly when the tree is looked at from the host.
    while IFS= read -r applet; do
        [ "$applet" = bin/busybox ] && continue
        d=${applet%/*}; [ "$d" = "$applet" ] && d=.
        up=${d//[^\/]/}; up=${up//\//../}; [ "$d" = . ] || up="../$up"
        install -d -m 755 "$r/$d"
        ln -sfn "${up}bin/busybox" "$r/$applet"
    done < <("$r/bin/busybox" --list-full)
    cat >"$r/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
app:x:1000:1000:app:/home/app:/bin/sh
EOF
    cat >"$r/etc/group" <<'EOF'
root:x:0:
nogroup:x:65534:
app:x:1000:
EOF
    echo busybox >"$r/etc/hostname"
    chmod 644 "$r"/etc/passwd "$r"/etc/group "$r"/etc/hostname
    install -d -m 755 -o 1000 -g 1000 "$r/home/app"
}

# --- 2. debian -----------------------------------------------------------------------
build_debian() {
    local r=$1 rc=0
    mkdir -m 755 -- "$r"
    log "debootstrap $SUITE minbase from $MIRROR (a few minutes; log: $BUILD_LOG)"
    debootstrap --variant=minbase --components=main --include="$DEBIAN_INCLUDE" \
        "$SUITE" "$r" "$MIRROR" >>"$BUILD_LOG" 2>&1 || rc=$?
    # debootstrap unmounts on its own exit; make sure, whatever happened.
    unmount_under "$r" || die "could not unmount everything under $r"
    if [ "$rc" -ne 0 ]; then
        tail -n 20 "$BUILD_LOG" >&2
        [ -f "$r/debootstrap/debootstrap.log" ] && cat "$r/debootstrap/debootstrap.log" >>"$BUILD_LOG"
        die "debootstrap failed (exit $rc)"
    fi
    # Keep it small, and drop host-specific files debootstrap copies in (the runtime
    # provides hostname/resolv.conf, as Docker does).
    rm -f "$r"/var/cache/apt/archives/*.deb "$r"/var/cache/apt/archives/partial/*.deb \
          "$r"/var/cache/apt/*.bin
    find "$r/var/lib/apt/lists" -mindepth 1 -maxdepth 1 ! -name partial -exec rm -rf {} +
    rm -f "$r/etc/resolv.conf"
    echo debian >"$r/etc/hostname"; chmod 644 "$r/etc/hostname"
    chmod 755 "$r"
}

# --- checks before anything is published ----------------------------------------------
check_rootfs() {
    local name=$1 r=$2 bad
    case $name in
    busybox) chroot "$r" /bin/sh -c 'ls / >/dev/null && [ "$(id -u app)" = 1000 ]' ;;
    debian)  chroot "$r" /usr/bin/python3 -c 'import json, ssl, test.support' &&
             chroot "$r" /bin/sh -c 'command -v ps && command -v less' >/dev/null ;;
    esac || die "$name: smoke test in chroot failed"
    # Unprivileged (uid 65534) must be able to read/traverse the tree. Debian keeps a
    # few things private on purpose (shadow files, locks, /root, ...): those are listed
    # in the build log; anything else unreadable in / /usr /etc fails the build.
    setpriv --reuid=65534 --regid=65534 --clear-groups -- test -r "$r/etc/passwd" ||
        die "$r is not reachable by uid 65534: make $DEST and its parents mode 755"
    bad=$(setpriv --reuid=65534 --regid=65534 --clear-groups -- \
            find "$r" \( -type d \( ! -readable -o ! -executable \) -prune -print \) \
                      -o \( ! -type l ! -readable -print \) 2>/dev/null | sed "s|^$r||") || true
    [ -z "$bad" ] || printf '%s: private to root (ok):\n%s\n' "$name" "$bad" >>"$BUILD_LOG"
    bad=$(grep -E '^/([^/]*|usr/.*|etc/.*)$' <<<"$bad" |
          grep -vxE '/root|/etc/(g?shadow|passwd|group)-?|/etc/\.pwd\.lock|/etc/security/opasswd|/etc/ssl/private' || true)
    [ -z "$bad" ] || die "$name: not readable by uid 65534:"$'\n'"$bad"
}

# --- build, tar, publish ---------------------------------------------------------------
t0=$SECONDS
log "building into $WORK"
build_busybox "$WORK/busybox"
log "busybox rootfs done ($((SECONDS - t0))s)"
build_debian "$WORK/debian"
log "debian rootfs done ($((SECONDS - t0))s)"
# A small real package for dpkg -i tests (fetched here: tests stay on loopback).
mkdir -p "$WORK/debs"
(cd "$WORK/debs" && { apt-get download hello >>"$BUILD_LOG" 2>&1 ||
    { apt-get update -qq >>"$BUILD_LOG" 2>&1 && apt-get download hello >>"$BUILD_LOG" 2>&1; }; }) ||
    die "apt-get download hello failed (log: $BUILD_LOG)"
chmod -R a+rX "$WORK/debs"

for name in "${ARTIFACTS[@]}"; do
    check_rootfs "$name" "$WORK/$name"
    tar --numeric-owner --one-file-system --sort=name -C "$WORK/$name" -cf "$WORK/$name.tar" .
    chmod 644 "$WORK/$name.tar"
done
log "checked and tarred ($((SECONDS - t0))s)"

{
    echo "# brandpy test images, built by tests/images/build.sh; delete this file to rebuild"
    echo "recipe $RECIPE"
    echo "date $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    for name in "${ARTIFACTS[@]}"; do
        echo "$name $(sha256sum <"$WORK/$name.tar" | cut -d' ' -f1) $name.tar $(stat -c %s "$WORK/$name.tar")"
    done
} >"$WORK/READY"
chmod 644 "$WORK/READY"

# Swap each artifact in (the old one goes into WORK and is deleted with it), READY last.
for name in "${ARTIFACTS[@]}"; do
    if [ -e "$DEST/$name" ]; then mv -T -- "$DEST/$name" "$WORK/old.$name"; fi
    mv -T -- "$WORK/$name" "$DEST/$name"
    mv -f -T -- "$WORK/$name.tar" "$DEST/$name.tar"
done
rm -rf -- "$DEST/debs" && mv -T -- "$WORK/debs" "$DEST/debs"
mv -f -T -- "$WORK/READY" "$DEST/READY"
for name in "${ARTIFACTS[@]}"; do safe_rm "$WORK/old.$name"; done
log "ready in $((SECONDS - t0))s: $DEST ($(cd "$DEST" && du -shc busybox debian ./*.tar | tail -n1 | cut -f1))"
