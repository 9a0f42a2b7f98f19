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
# docker-py 6.1.3's own test suite and the venv it runs in (make dockerpy):
# a slow measurement of brandpyd against it (tests/dockerpy).
export BRANDPY_DOCKERPY_SUITE ?= /var/cache/brandpy/docker-py-6.1.3
export BRANDPY_DOCKERPY_VENV ?= /opt/brandpy/dockerpy-venv

APT_PKGS := python3-venv python3-dev gcc make busybox-static debootstrap \
            proot runsc docker-registry skopeo umoci zstd strace procps \
            util-linux apache2-utils ca-certificates curl xz-utils \
            linux-libc-dev libc6-dev docker.io containerd iproute2 docker-compose nftables passt

PYTEST_ARGS ?=

.PHONY: all deps venv install lint images dockerpy demo test test-slow fuzz bench bench-images bench-coverage bench-stressng bench-debs clean

all: install

deps:
	@missing=$$(for p in $(APT_PKGS); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "apt-get install $$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	fi
	@# pasta (an unprivileged daemon's container networks) opens /dev/net/tun:
	@# 0666 as udev makes it, where no udev did
	@if [ -c /dev/net/tun ] && [ "$$(stat -c %a /dev/net/tun)" != 666 ]; then \
	  echo "chmod 0666 /dev/net/tun"; chmod 0666 /dev/net/tun; fi

$(PY):
	mkdir -p $(dir $(VENV))
	/usr/bin/python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

venv: deps $(PY)

# `pip install -e .` compiles the cffi extension (native/) and the C launcher
# into brandpy/; the launcher becomes the venv's `brandpy` command (pip's
# script runs the same CLI through Python: `brandpy run` then pays Python's
# start-up and imports; see README's Performance).
# The link is removed first: one left dangling by a deleted checkout makes
# pip's replacement of the entry-point script fail with ENOENT.
install: venv
	rm -f $(VENV)/bin/brandpy
	PYTHONWARNINGS=ignore $(PY) -m pip install -q -e '.[test,bench,lint]'
	ln -sf "$$($(PY) -c 'import brandpy, os; print(os.path.dirname(brandpy.__file__))')/_launcher" \
	    $(VENV)/bin/brandpy

# ruff's rules and mypy's strictness per layer, and the reasons for what is
# turned off, are in pyproject.toml.
lint: install
	$(PY) -m ruff check .
	$(PY) -m mypy

images: deps
	tests/images/build.sh $(IMAGES)
	tests/images/tools.sh $(IMAGES)

dockerpy: deps
	tests/dockerpy/fetch.sh $(BRANDPY_DOCKERPY_SUITE) $(BRANDPY_DOCKERPY_VENV)

# The daemon on a private socket, driven by the real docker CLI; stopped at the end.
# As root it runs in a network namespace of its own (DEMO_NETNS), where its
# containers' bridges, addresses and rules live: "the host" of the demo.
DEMO_DIR ?= /tmp/brandpy-demo
DEMO_NETNS ?= brandpy-demo
demo: install images
	@echo "== brandpy run: the busybox rootfs, no daemon =="
	$(PY) -m brandpy run --rootfs $(IMAGES)/busybox -- /bin/sh -c 'echo hello from $$(uname -s) in brandpy; id'
	@echo "== brandpyd, driven by the docker CLI =="
	@rm -rf $(DEMO_DIR) && mkdir -p $(DEMO_DIR)
	@ip netns del $(DEMO_NETNS) 2>/dev/null; ip netns add $(DEMO_NETNS) && \
	ip netns exec $(DEMO_NETNS) ip link set lo up; \
	nsenter --net=/run/netns/$(DEMO_NETNS) $(PY) -m brandpy daemon -H unix://$(DEMO_DIR)/docker.sock \
	    --data-root $(DEMO_DIR)/root > $(DEMO_DIR)/daemon.log 2>&1 & echo $$! > $(DEMO_DIR)/daemon.pid; \
	export DOCKER_HOST=unix://$(DEMO_DIR)/docker.sock; \
	trap 'set +e; docker rm -f web >/dev/null 2>&1; docker network rm demo-net >/dev/null 2>&1; \
	      kill $$(cat $(DEMO_DIR)/daemon.pid); sleep 1; ip netns del $(DEMO_NETNS)' EXIT; \
	for i in $$(seq 100); do docker version >/dev/null 2>&1 && break; sleep 0.1; done; \
	set -ex; \
	docker version --format 'client {{.Client.Version}}, server {{.Server.Version}} ({{.Server.Os}})'; \
	docker import $(IMAGES)/busybox.tar busybox:demo; \
	docker run --rm --hostname demo busybox:demo sh -c 'echo "hello from $$(hostname), pid $$$$, as $$(id -un)"; ls /'; \
	docker run -d --name web -p 127.0.0.1:8080:80 busybox:demo httpd -f -p 80 -h /etc; \
	sleep 0.5; docker ps --format '{{.Names}} {{.Status}} {{.Ports}}'; \
	ip netns exec $(DEMO_NETNS) wget -q -O - http://127.0.0.1:8080/hostname; \
	docker exec web ps -o pid,user,comm; \
	docker inspect -f 'web has its own address: {{.NetworkSettings.IPAddress}}' web; \
	docker network create demo-net; \
	docker network connect --alias www demo-net web; \
	docker run --rm --network demo-net busybox:demo wget -q -O - http://www/hostname; \
	docker stop -t 1 web; docker rm web; docker network rm demo-net; \
	docker run --label brandpy.trace=1 --name traced busybox:demo ls / > /dev/null; \
	curl -s --unix-socket $(DEMO_DIR)/docker.sock http://d/brandpy/containers/traced/trace | head -4; \
	docker inspect -f 'ptrace stops: {{.Brandpy.PtraceStops}}' traced; \
	docker rm traced

# A hung run fails with what it printed rather than outlasting CI (the suite
# takes about 5 minutes here). A run that leaves brandpy's or its tests'
# files in /tmp or /dev/shm fails (tests/conftest.py lists them).
test: install lint images
	BRANDPY_TMP_STRICT=1 timeout --kill-after=60 45m $(PY) -m pytest $(PYTEST_ARGS)

test-slow: install images dockerpy
	BRANDPY_TMP_STRICT=1 $(PY) -m pytest -m slow $(PYTEST_ARGS)

# schemathesis over the whole Engine API (tests/fuzz/run.py says what fails
# it), with the daemon in a network namespace of its own, as uid 65534 and
# as root; schemathesis is pinned in pyproject's test extras.
FUZZ_EXAMPLES ?= 30
FUZZ_SEED ?= 1
fuzz: install images
	unshare --net $(PY) -m tests.fuzz.run --user nobody --examples $(FUZZ_EXAMPLES) --seed $(FUZZ_SEED)
	unshare --net $(PY) -m tests.fuzz.run --user root --examples $(FUZZ_EXAMPLES) --seed $(FUZZ_SEED)

bench: install images
	$(PY) -m benchmarks.run
	$(PY) -m benchmarks.startup

bench-images: install images
	$(PY) -m benchmarks.images

# The two public suites under each runner: CPython's regression tests (hours for
# every module; COVERAGE_ARGS="--modules test_os,test_posix" for a part), then
# stress-ng's stressors (STRESS_CLASSES=pipe or STRESSORS=fork,pipe for a part;
# STRESS_ARGS for more options, see python -m benchmarks.stressng --help).
COVERAGE_ARGS ?=
STRESS_ARGS ?=
bench-coverage: install images bench-debs
	$(PY) -m benchmarks.coverage $(COVERAGE_ARGS)
	$(PY) -m benchmarks.stressng $(STRESS_ARGS)

bench-stressng: install images bench-debs
	$(PY) -m benchmarks.stressng $(STRESS_ARGS)

# stress-ng and the packages it needs beyond the Debian test image, as .debs the
# benchmark unpacks into its private copy of the image (the test images stay as
# `make test` uses them).
BENCH_DEBS ?= /var/cache/brandpy/bench-debs
export BRANDPY_BENCH_DEBS := $(BENCH_DEBS)
bench-debs: deps images
	benchmarks/fetch_debs.sh $(BENCH_DEBS) $(IMAGES)/debian stress-ng

clean:
	rm -rf build *.egg-info brandpy/_native*.so .pytest_cache
