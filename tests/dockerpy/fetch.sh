#!/bin/sh
# tests/dockerpy/fetch.sh SUITE_DIR VENV: docker-py 6.1.3's own test suite
# (its sdist is the last that ships tests/), pinned by hash, and a venv with
# the requirements it was released with (docker-py itself is not installed
# there: the suite imports the sdist's own `docker` package).
set -eu
dest=$1
venv=$2
version=6.1.3
sha256=aa6d17830045ba5ef0168d5eaa34d37beeb113948c413affe1d5991fc11f9a20
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
    "$venv/bin/python" -m pip install -q websocket-client==1.3.3 requests==2.28.1 \
        urllib3==1.26.11 packaging==21.3 paramiko==2.11.0 pytest==7.1.2 pytest-timeout==2.1.0
fi
if [ ! -f "$dest/READY" ]; then
    tmp=$(mktemp -d)
    trap 'rm -rf "$tmp"' EXIT
    "$venv/bin/python" -m pip download -q --no-deps --no-binary :all: -d "$tmp" \
        "docker==$version"
    echo "$sha256  $tmp/docker-$version.tar.gz" | sha256sum -c --quiet
    rm -rf "$dest"
    mkdir -p "$dest"
    tar xzf "$tmp/docker-$version.tar.gz" -C "$dest" --strip-components=1
    touch "$dest/READY"
fi
