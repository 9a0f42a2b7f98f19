"""Issue 14, the daemon's own file work: `docker cp` into and out of a
running container that keeps exchanging a directory with a symlink to a
host directory (Docker's CVE-2018-15664) must neither read nor write
outside the container.

The container runs tests/security/programs/attack.c in `-m idle` mode: it
only swaps /w/d (a directory) with /w/s (a symlink to the canary, see
harness.py) while the test copies /w/d/secret out of it and a file into
/w/d through the archive endpoints `docker cp` uses (GET/PUT
/containers/{id}/archive), for BOUND_S seconds or until the canary shows
an escape. The daemon runs with the test-only race pause, as root and as
uid 65534.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import tarfile
import tempfile
import time
from pathlib import Path

import docker
import pytest
import requests

from tests.api.conftest import Daemon, as_nobody, image_tar
from tests.conftest import NOBODY, SETPRIV

from .harness import RACE_PAUSE_US, Canary

BOUND_S = 3.0


@pytest.fixture(scope="module", params=["root", "nobody"])
def cp_daemon(request, unpriv_pythonpath) -> Daemon:
    """A daemon with the race pause on, as root or as uid 65534."""
    user = request.param
    env = {k: v for k, v in os.environ.items() if not k.startswith(("XDG_", "PYTEST"))}
    env["BRANDPY_TEST_RACE_PAUSE_US"] = str(RACE_PAUSE_US)
    home = Path(tempfile.mkdtemp(prefix="bps-", dir="/tmp"))
    home.chmod(0o755)
    (home / "d").mkdir()
    if user == "nobody":
        d = Daemon(root=home / "d", env=as_nobody(home, env, unpriv_pythonpath), user=SETPRIV)
    else:
        d = Daemon(root=home / "d", env=env)
    d.user_name = user
    try:
        d.start()
        d.ok("import", str(image_tar("busybox")), "busybox:latest")
        yield d
    finally:
        try:
            d.stop()
        except subprocess.TimeoutExpired:
            # Seen after GETs the race broke mid-stream: the daemon can hang
            # on SIGTERM (a robustness bug of its own, not what this tests).
            d.proc.kill()
            d.proc.wait(10)
            d.proc = None
        d.destroy()
        shutil.rmtree(home, ignore_errors=True)


def _one_file_tar(name: str) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        data = b"dropped by docker cp\n"
        info = tarfile.TarInfo(name)
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _wait_for_swapper(container, deadline: float) -> None:
    while time.monotonic() < deadline:
        try:
            container.get_archive("/w/s")
            return
        except docker.errors.NotFound:
            time.sleep(0.05)
    raise AssertionError(f"the attack never set up /w/s: {container.logs()!r}")


@pytest.mark.parametrize("direction", ["out", "in"])
def test_cp_against_a_swapping_container(cp_daemon: Daemon, direction: str, world_tmp: Path,
                                         security_bin: Path) -> None:
    user = cp_daemon.user_name
    uid = NOBODY if user == "nobody" else 0
    canary = Canary.create(world_tmp, uid, security_bin / "execcanary")
    client = cp_daemon.client()
    container = client.containers.run(
        "busybox:latest", ["/sec/attack", "-m", "idle", "-c", str(canary.dir), "-t", "60"],
        detach=True, volumes={str(security_bin): {"bind": "/sec", "mode": "ro"}})
    seen, done = [], 0
    try:
        _wait_for_swapper(container, time.monotonic() + 20)
        deadline = time.monotonic() + BOUND_S
        i = 0
        while time.monotonic() < deadline:
            i += 1
            try:
                if direction == "out":
                    chunks, _ = container.get_archive("/w/d/secret")
                    seen.append(b"".join(chunks).decode(errors="replace"))
                else:
                    container.put_archive("/w/d", _one_file_tar(f"dropped{i}"))
                done += 1
            except (docker.errors.APIError, requests.exceptions.RequestException):
                # the other half of the race: d is the symlink, which leads
                # nowhere in the container (a GET can fail mid-stream)
                pass
            last = seen[-1] if seen else ""
            if canary.quick_changed() or any(p in last for p in canary.proofs.values()):
                break
        escapes = canary.evidence("".join(seen))
    finally:
        container.remove(force=True)
        client.close()
        canary.remove()
    assert not escapes, escapes
    assert done > 0, "docker cp never succeeded: the test did not exercise it"
