#!/usr/bin/env bash
# tests/images/tools.sh [DEST] — Debian's strace and gdb, with the libraries the
# Debian test image lacks, as .deb files in DEST/tools/ (tests unpack them into a
# copy of DEST/debian with dpkg-deb -x: tests/runtime/test_ptrace.py).
#
# Separate from build.sh so adding debuggers does not rebuild the images.
# DEST/tools/READY is written last; a second call is a no-op while it matches.
set -euo pipefail
umask 022
export LC_ALL=C DEBIAN_FRONTEND=noninteractive

DEST=$(realpath -- "${1:-${BRANDPY_TEST_IMAGES:-/var/cache/brandpy/images}}")
TOOLS=(strace gdb)
RECIPE=$(sha256sum <"${BASH_SOURCE[0]}" | cut -c1-16)
log() { printf '[tools] %s\n' "$*" >&2; }

[ -f "$DEST/READY" ] || { log "run tests/images/build.sh $DEST first"; exit 1; }
if grep -qx "recipe $RECIPE" "$DEST/tools/READY" 2>/dev/null; then
    log "up to date: $DEST/tools"
    exit 0
fi

# What the tools need and the image does not have (by the image's dpkg status).
needed() {
    apt-cache depends --recurse --no-recommends --no-suggests --no-conflicts --no-breaks \
        --no-replaces --no-enhances "${TOOLS[@]}" | grep -v '^ ' | grep -v '<' | sort -u
}
have() { sed -n 's/^Package: //p' "$DEST/debian/var/lib/dpkg/status" | sort -u; }

WORK=$(mktemp -d "$DEST/.tools.XXXXXX")
trap 'rm -rf -- "$WORK"' EXIT
pkgs=$(comm -23 <(needed) <(have))
(cd "$WORK" && { apt-get download -q $pkgs >/dev/null 2>&1 ||
    { apt-get update -qq && apt-get download -q $pkgs >/dev/null; }; }) ||
    { log "apt-get download failed: $pkgs"; exit 1; }
echo "recipe $RECIPE" >"$WORK/READY"
chmod -R a+rX "$WORK"
rm -rf -- "$DEST/tools" && mv -T -- "$WORK" "$DEST/tools"
trap - EXIT
log "ready: $DEST/tools ($(echo $pkgs | wc -w) packages)"
