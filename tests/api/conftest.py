"""The Docker endpoint under test: a real `brandpy daemon` on a temp socket
with a temp data root, driven by the real docker CLI and the docker SDK.

One daemon serves the module's tests (tests clean up their containers);
tests that kill or restart the daemon make their own with `Daemon`.

As root the daemon gives each container a network namespace, bridges,
veths and nftables rules: so every root daemon here runs inside a network
namespace the test makes first (Netns) and removes at the end, never
in the machine's own; there "the host" is that namespace."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from brandpy.network import netns
from tests.conftest import IMAGES, NOBODY, SETPRIV, Result

DOCKER = shutil.which("docker") or "docker"


def image_tar(name: str) -> Path:
    path = IMAGES / f"{name}.tar"
    if not (IMAGES / "READY").exists() or not path.exists():
        pytest.fail(f"test image {path} missing: run `make images` (tests/images/build.sh)")
    return path


class Netns:
    """A network namespace of the test's own (`ip netns add
    brandpy-test-XXXXXXXX`, loopback up), removed by remove()."""

    def __init__(self) -> None:
        self.name = f"brandpy-test-{secrets.token_hex(4)}"
        self.path = f"/run/netns/{self.name}"
        subprocess.run(["ip", "netns", "add", self.name], check=True)
        self.run(["ip", "link", "set", "lo", "up"], check=True)

    def run(self, argv: list[str], **kw) -> subprocess.CompletedProcess:
        """A command inside the namespace."""
        return subprocess.run(["ip", "netns", "exec", self.name, *argv],
                              capture_output=True, text=True, **kw)

    def call(self, fn):   # noqa: ANN001, ANN201 - any callable and its result
        """fn() on a thread inside the namespace (sockets it makes are there)."""
        return netns.run_in(self.path, fn)

    def fetch(self, url: str, timeout: float = 3) -> str | None:
        """GET url from inside the namespace; None if it does not answer."""
        def get() -> str | None:
            try:
                with urllib.request.urlopen(url, timeout=timeout) as resp:
                    return resp.read().decode()
            except OSError:
                return None
        return self.call(get)

    def remove(self) -> None:
        subprocess.run(["ip", "netns", "del", self.name], check=False)


def in_netns(ino: int) -> list[str]:
    """The PIDs of the processes in the network namespace of inode ino."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if os.stat(f"/proc/{pid}/ns/net").st_ino == ino:
                found.append(pid)
        except OSError:
            continue
    return found


class Daemon:
    """`brandpy daemon` in a subprocess; `root` holds its data and socket
    (kept short: container paths end up inside AF_UNIX socket paths).
    netns: run it in a Netns of its own (the default for a root test
    process), in the one given (the caller removes it), or with False in
    the caller's (e.g. one `unshare --net` made)."""

    def __init__(self, root: Path | None = None, env: dict | None = None,
                 user: list[str] | None = None, args: list[str] | None = None,
                 netns: bool | Netns | None = None) -> None:
        self.root = root or Path(tempfile.mkdtemp(prefix="bpd-", dir="/tmp"))
        self.root.chmod(0o755)    # containers running as other users traverse it
        self.sock = self.root / "d.sock"
        self.host = f"unix://{self.sock}"
        self.env = env
        self.user = user or []
        self.args = args or []
        self.proc: subprocess.Popen | None = None
        self.log = self.root / "daemon.log"
        self.own_netns = netns is True or (netns is None and os.geteuid() == 0)
        self.netns: Netns | None = Netns() if self.own_netns else \
            netns if isinstance(netns, Netns) else None

    def start(self) -> Daemon:
        env = dict(self.env or os.environ)
        env.pop("DOCKER_HOST", None)
        log = open(self.log, "ab")
        enter = ["nsenter", f"--net={self.netns.path}"] if self.netns else []
        self.proc = subprocess.Popen(
            enter + self.user + [sys.executable, "-m", "brandpy", "daemon", "--data-root",
                         str(self.root / "data"), "-H", self.host, *self.args],
            stdout=subprocess.PIPE, stderr=log, env=env, cwd="/")
        log.close()
        line = self.proc.stdout.readline().decode()
        if not line.startswith("export DOCKER_HOST="):
            self.proc.kill()
            raise RuntimeError(f"the daemon did not start: {line!r}\n{self.log.read_text()}")
        return self

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(30)
        self.proc = None

    def shim_pids(self) -> list[int]:
        pids = []
        for state in (self.root / "data" / "containers").glob("*/state.json"):
            try:
                pid = int(json.loads(state.read_text()).get("ShimPid") or 0)
            except (OSError, ValueError):
                continue
            if pid and os.path.exists(f"/proc/{pid}"):
                pids.append(pid)
        return pids

    def internal_errors(self) -> str:
        """Tracebacks the daemon or its shims logged: bugs, whatever the
        clients saw."""
        logs = [self.log, *(self.root / "data" / "containers").glob("*/shim.log")]
        found = [p.read_text(errors="replace") for p in logs if p.exists()]
        return "\n".join(text for text in found if "Traceback" in text)

    def destroy(self) -> None:
        """Stop the daemon, kill the shims it started (by PID), remove its
        root and its network namespace."""
        self.stop()
        for pid in self.shim_pids():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        shutil.rmtree(self.root, ignore_errors=True)
        if self.netns is not None and self.own_netns:
            self.netns.remove()

    def docker(self, *args: str, input: str | bytes | None = None, timeout: float = 60,
               env: dict | None = None) -> Result:
        full_env = {**os.environ, **(env or {}), "DOCKER_HOST": self.host,
                    "DOCKER_CONFIG": str(self.root / "docker-config")}
        binary = isinstance(input, bytes)
        p = subprocess.run([DOCKER, *args], input=input, capture_output=True, text=not binary,
                           timeout=timeout, env=full_env)
        out = p.stdout.decode(errors="replace") if binary else p.stdout
        err = p.stderr.decode(errors="replace") if binary else p.stderr
        return Result(p.returncode, out, err)

    def ok(self, *args: str, **kw) -> str:
        r = self.docker(*args, **kw)
        assert r.status == 0, r
        return r.out

    def api(self, method: str, path: str, body: object = None,
            headers: dict[str, str] | None = None) -> tuple[int, str, bytes]:
        """A raw API request (for brandpy's own endpoints, which neither
        client knows, and for requests no client would send): status,
        Content-Type and body. A bytes body is sent as it is, anything
        else as JSON."""
        conn = _UnixHTTP(str(self.sock))
        try:
            if isinstance(body, bytes):
                data: bytes | None = body
            else:
                data = None if body is None else json.dumps(body).encode()
                headers = {"Content-Type": "application/json", **(headers or {})} if data \
                    else headers
            conn.request(method, path, body=data, headers=headers or {})
            resp = conn.getresponse()
            return resp.status, resp.getheader("Content-Type", ""), resp.read()
        finally:
            conn.close()

    def client(self) -> docker.DockerClient:
        return docker.DockerClient(base_url=self.host, timeout=60)


class _UnixHTTP(http.client.HTTPConnection):
    def __init__(self, path: str) -> None:
        super().__init__("localhost", timeout=60)
        self.path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(60)
        self.sock.connect(self.path)


def as_nobody(home: Path, env: dict, pythonpath: str | None) -> dict:
    """env for a daemon run as uid 65534 with its XDG dirs in home (given
    to that user)."""
    subprocess.run(["chown", "-R", f"{NOBODY}:{NOBODY}", str(home)], check=True)
    env = {**env, "HOME": str(home), "XDG_RUNTIME_DIR": str(home / "run"),
           "XDG_DATA_HOME": str(home / "data")}
    if pythonpath:
        env["PYTHONPATH"] = pythonpath
    return env


@contextlib.contextmanager
def unprivileged_daemon(pythonpath: str | None, netns: Netns | None = None,
                        prefix: list[str] | None = None) -> Iterator[Daemon]:
    """The daemon as uid 65534 with XDG dirs of its own, the busybox image
    imported (as root, in a Netns too: it still is "the host"; netns: that
    one, which the caller removes). prefix: a command it runs under, as
    root before SETPRIV."""
    if os.geteuid() != 0:
        pytest.skip("needs root to switch to uid 65534")
    home = Path(tempfile.mkdtemp(prefix="bpu-", dir="/tmp"))
    (home / "d").mkdir()
    env = as_nobody(home, {k: v for k, v in os.environ.items()
                           if not k.startswith(("XDG_", "PYTEST"))}, pythonpath)
    d = Daemon(root=home / "d", env=env, user=[*(prefix or []), *SETPRIV], netns=netns)
    try:
        d.start()
        d.ok("import", str(image_tar("busybox")), "busybox:latest")
        yield d
    finally:
        d.destroy()
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(scope="module")
def daemon() -> Daemon:
    d = Daemon().start()
    d.ok("import", str(image_tar("busybox")), "busybox:latest")
    yield d
    errors = d.internal_errors()
    d.destroy()
    assert not errors, errors[-6000:]


@pytest.fixture
def fresh() -> Daemon:
    """A daemon of the test's own, for tests that kill or restart it."""
    d = Daemon().start()
    d.ok("import", str(image_tar("busybox")), "busybox:latest")
    yield d
    d.destroy()


@pytest.fixture(scope="module")
def client(daemon: Daemon) -> docker.DockerClient:
    c = daemon.client()
    yield c
    c.close()


def wait_for(predicate, timeout: float = 10, interval: float = 0.05):   # noqa: ANN001
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {predicate}")
