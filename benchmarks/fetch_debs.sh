#!/usr/bin/env bash
# benchmarks/fetch_debs.sh DEST IMAGE PKG... — the Debian packages PKG and every
# package they depend on (recursively, no recommends) that the rootfs IMAGE does not
# have, downloaded with the host's apt into DEST, for the benchmarks to unpack into
# their private copy of IMAGE (the cached test images stay as `make test` uses them).
#
# A second call is a no-op while DEST/READY names the same packages and image.
set -euo pipefail
export LC_ALL=C
[ $# -ge 3 ] || { echo "usage: $0 DEST IMAGE PKG..." >&2; exit 2; }
DEST=$1 IMAGE=$2
shift 2
STATUS=$IMAGE/var/lib/dpkg/status
[ -f "$STATUS" ] || { echo "$0: $STATUS missing: run \`make images\`" >&2; exit 1; }
WANT="packages $* image $(sha256sum <"$STATUS" | cut -c1-16)"
if [ -f "$DEST/READY" ] && [ "$(cat "$DEST/READY")" = "$WANT" ]; then
    exit 0
fi

# What the image has, from its dpkg status (installed packages only).
have=$(awk '/^Package:/ {p = $2} /^Status: .* installed$/ {print p}' "$STATUS" | sort -u)
# Every package the wanted ones pull in; `<virtual>` names are provided by real ones
# listed beside them.
need=$(apt-cache depends --recurse --no-recommends --no-suggests --no-conflicts \
           --no-breaks --no-replaces --no-enhances "$@" | grep -v '^ ' | grep -v '^<' |
       sed 's/:any$//' | sort -u | comm -23 - <(echo "$have"))

rm -rf -- "$DEST.tmp"
mkdir -p -- "$DEST.tmp"
# shellcheck disable=SC2086  # one word per package
[ -z "$need" ] || (cd "$DEST.tmp" && { apt-get download -q $need >/dev/null 2>&1 ||
    { apt-get update -qq && apt-get download -q $need >/dev/null; }; }) ||
    { echo "$0: apt-get download $need failed" >&2; exit 1; }
echo "$WANT" >"$DEST.tmp/READY"
chmod -R a+rX "$DEST.tmp"
rm -rf -- "$DEST"
mv -T -- "$DEST.tmp" "$DEST"
echo "$0: $(find "$DEST" -name '*.deb' | wc -l) packages in $DEST" >&2
