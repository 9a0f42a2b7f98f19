# brandpy: the two commands are `make demo` and `make test`; everything they
# need (Debian packages, the virtualenv, the cffi extension, test images) is
# installed by the targets below, so a fresh Debian 12 machine needs nothing else.

# The venv lives outside the checkout and is world-readable so the supervisor
# can also be run as an unprivileged user (uid 65534) in the tests.
VENV       ?= /opt/brandpy/venv
PY         := $(VENV)/bin/python
# Test rootfs cache, built once per machine and shared by tests and benchmarks.
IMAGES     ?= /var/cache/brandpy/images
export BRANDPY_TEST_IMAGES := $(IMAGES)

APT_PKGS := python3-venv python3-dev gcc make busybox-static debootstrap \
            proot runsc docker-registry skopeo umoci zstd strace procps \
            util-linux apache2-utils ca-certificates curl xz-utils \
            linux-libc-dev libc6-dev docker.io

PYTEST_ARGS ?=

.PHONY: all deps venv install images demo test test-slow bench clean

all: install

deps:
	@missing=$$(for p in $(APT_PKGS); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "apt-get install $$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	fi

$(PY):
	mkdir -p $(dir $(VENV))
	/usr/bin/python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

venv: deps $(PY)

# `pip install -e .` compiles the cffi extension (native/) into brandpy/.
install: venv
	PYTHONWARNINGS=ignore $(PY) -m pip install -q -e '.[test,bench]'

images: deps
	tests/images/build.sh $(IMAGES)

demo: install images
	@echo "== brandpy run: busybox rootfs, as the current user =="
	$(PY) -m brandpy run --rootfs $(IMAGES)/busybox -- /bin/sh -c 'echo hello from $$(uname -s) in brandpy; ls /; id'

test: install images
	$(PY) -m pytest $(PYTEST_ARGS)

test-slow: install images
	$(PY) -m pytest -m slow $(PYTEST_ARGS)

bench: install images
	$(PY) -m benchmarks.run

clean:
	rm -rf build *.egg-info brandpy/_native*.so .pytest_cache
