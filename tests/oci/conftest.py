"""Fixtures for brandpy as an OCI runtime: the brandpy-runc command, bundles
made from the busybox test image, and a check that every test leaves no
process behind (no monitor, nothing running from a bundle)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from brandpy.oci.namespaces import PRIVATE_BASE
from tests.conftest import REPO, Result, copy_rootfs

MONITOR = "brandpy.oci.monitor"


def runtime_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    env["PYTHONPATH"] = str(REPO)
    return env


@pytest.fixture(scope="session")
def runtime_bin(world_tmp: Path) -> str:
    """The brandpy-runc executable: the installed entry point, else a
    wrapper that runs this checkout's."""
    installed = Path(sys.executable).parent / "brandpy-runc"
    if installed.exists():
        return str(installed)
    wrapper = world_tmp / "brandpy-runc"
    wrapper.write_text(f"#!/bin/sh\nPYTHONPATH={REPO} exec {sys.executable} -m brandpy.oci "
                       '"$@"\n')
    wrapper.chmod(0o755)
    return str(wrapper)


class Runc:
    """brandpy-runc with its own --root and a JSON log, as containerd runs it."""

    def __init__(self, root: Path, log: Path) -> None:
        self.root = root
        self.log = log

    def cmd(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "brandpy.oci", "--root", str(self.root), "--log",
                str(self.log), "--log-format", "json", *args]

    def __call__(self, *args: str, input: str | None = None, timeout: float = 60) -> Result:
        """Output goes to files, not pipes: after create or run -d the
        container holds the command's stdout (runc's pass-through stdio),
        so a pipe would not see EOF before the container exits."""
        with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
            p = subprocess.run(self.cmd(*args), input=input, stdout=out, stderr=err, text=True,
                               timeout=timeout, env=runtime_env(), cwd="/")
            out.seek(0)
            err.seek(0)
            return Result(p.returncode, out.read(), err.read())

    def ok(self, *args: str, **kw: Any) -> str:
        r = self(*args, **kw)
        assert r.status == 0, r
        return r.out

    def fails(self, *args: str, **kw: Any) -> str:
        """The error message of a command that must fail (exit 1), also
        checked to be the last error line of the JSON log."""
        r = self(*args, **kw)
        assert r.status == 1, r
        message = r.err.strip()
        assert message, r
        assert last_log_error(self.log) == message
        return message

    def state(self, cid: str) -> dict[str, Any]:
        return json.loads(self.ok("state", cid))

    def status(self, cid: str) -> str:
        return self.state(cid)["status"]

    def wait_status(self, cid: str, status: str, timeout: float = 10) -> None:
        deadline = time.monotonic() + timeout
        while self.status(cid) != status:
            assert time.monotonic() < deadline, f"{cid} never became {status}"
            time.sleep(0.05)


def last_log_error(log: Path) -> str:
    """What containerd reports: the last error line of the JSON log (every
    line must be JSON, or containerd cannot read it)."""
    message = ""
    for line in log.read_text().splitlines():
        entry = json.loads(line)
        assert set(entry) == {"level", "msg", "time"}
        if entry["level"] == "error":
            message = entry["msg"]
    return message


@pytest.fixture
def runc(tmp_path: Path) -> Runc:
    return Runc(tmp_path / "root", tmp_path / "log.json")


@pytest.fixture(scope="session")
def template(world_tmp: Path) -> dict[str, Any]:
    """`brandpy-runc spec`'s config.json, non-interactive."""
    # tests/security imports this fixture too, so each gets its own dir
    d = Path(tempfile.mkdtemp(prefix="spec-", dir=world_tmp))
    subprocess.run([sys.executable, "-m", "brandpy.oci", "spec", "-b", str(d)], check=True,
                   env=runtime_env())
    config = json.loads((d / "config.json").read_text())
    config["process"]["terminal"] = False
    return config


Bundle = Callable[..., Path]


@pytest.fixture
def workdir(world_tmp: Path) -> Path:
    """Where this test's bundles live: a directory any container user can
    traverse (pytest's tmp_path is root's alone)."""
    path = Path(tempfile.mkdtemp(dir=world_tmp))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def bundle(workdir: Path, busybox_image: Path, template: dict[str, Any]) -> Bundle:
    """make(args, **changes): a bundle with a private busybox rootfs;
    `changes` are merged into config.json (process.* keys as process_KEY)."""
    def make(args: list[str], name: str = "bundle", under: Path | None = None,
             **changes: Any) -> Path:
        d = (under or workdir) / name
        d.mkdir()
        copy_rootfs(busybox_image, d / "rootfs")
        config = json.loads(json.dumps(template))
        config["process"]["args"] = args
        for key, value in changes.items():
            if key.startswith("process_"):
                config["process"][key[len("process_"):]] = value
            else:
                config[key] = value
        (d / "config.json").write_text(json.dumps(config))
        return d

    return make


def monitors() -> list[str]:
    found = []
    for pid in os.listdir("/proc"):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if any(a.decode(errors="replace") == MONITOR for a in cmdline):
            found.append(f"{pid} {b' '.join(cmdline).decode(errors='replace')}")
    return found


def from_dir(path: Path) -> list[str]:
    """Processes running from below path (cwd or executable), or from any
    container's private view of its files (brandpy/oci/namespaces.py)."""
    found = []
    for pid in os.listdir("/proc"):
        for link in ("cwd", "exe"):
            try:
                target = os.readlink(f"/proc/{pid}/{link}")
            except OSError:
                continue
            if target.startswith((str(path), PRIVATE_BASE + "/")):
                found.append(f"{pid} {link}={target}")
                break
    return found


def wait_for_none(probe: Callable[[], list[str]], timeout: float = 10) -> list[str]:
    deadline = time.monotonic() + timeout
    while (left := probe()) and time.monotonic() < deadline:
        time.sleep(0.05)
    return left


@pytest.fixture(autouse=True)
def no_leftovers(tmp_path: Path, workdir: Path):
    """After each test: no container process and no monitor of this test
    still alive (the docker/containerd tests check their own daemons)."""
    yield
    left = wait_for_none(lambda: [m for m in monitors() if str(tmp_path) in m])
    for line in left:   # do not let one failure leak into the next tests
        os.kill(int(line.split()[0]), signal.SIGKILL)
    assert left == []
    assert wait_for_none(lambda: from_dir(workdir)) == []


# -- containerd and dockerd, once per session ------------------------------------

@pytest.fixture(scope="session")
def daemons_dir(world_tmp: Path) -> Path:
    path = world_tmp / "daemons"
    path.mkdir()
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def netns(daemons_dir: Path):
    from .daemons import NetNS

    ns = NetNS(f"brandpy-oci-{os.getpid()}")
    yield ns
    ns.remove()


@pytest.fixture(scope="session")
def containerd(daemons_dir: Path, netns, busybox_image: Path):
    from .daemons import Containerd, require

    require("containerd", "ctr")
    base = daemons_dir / "containerd"
    base.mkdir()
    daemon = Containerd(base, netns)
    try:
        daemon.import_busybox(busybox_image.with_suffix(".tar"))
        yield daemon
    finally:
        daemon.stop()


@pytest.fixture(scope="session")
def dockerd(daemons_dir: Path, netns, containerd, runtime_bin: str, busybox_image: Path):
    from .daemons import Dockerd, require

    require("dockerd", "docker")
    base = daemons_dir / "docker"
    base.mkdir()
    daemon = Dockerd(base, netns, containerd, runtime_bin)
    try:
        daemon.ok("import", str(busybox_image.with_suffix(".tar")), "busybox:latest")
        yield daemon
    finally:
        daemon.stop()
