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

import errno
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

from brandpy.engine.fsview import FsView
from brandpy.runtime.errors import Errno
from brandpy.runtime.sandbox import Sandbox, SandboxConfig, Volume
from tests.api.conftest import Daemon, as_nobody, image_tar
from tests.conftest import NOBODY, SETPRIV, copy_rootfs

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


def test_a_bind_the_container_moved_is_refused(world_tmp: Path, busybox_image: Path) -> None:
    """The daemon's view of a running container (engine/fsview.py, docker
    cp) opens the binds' host paths again: a container that renamed a file
    bind's file away inside another of its binds and put a symlink to a host
    file in its place would have it read or write that host file. The
    runtime records what each bind was when the container started (what it
    keeps using: test_containment.py), and the view refuses one that names
    something else now."""
    base = Path(tempfile.mkdtemp(dir=world_tmp))
    try:
        rootfs = copy_rootfs(busybox_image, base / "rootfs")
        vol, state, secret = base / "vol", base / "run", base / "secret"
        for d in (vol, state):
            d.mkdir()
        (vol / "f").write_text("BOUND\n")
        secret.write_text("HOST\n")
        binds = [Volume(str(vol), "/d"), Volume(str(vol / "f"), "/f")]
        Sandbox(SandboxConfig(rootfs=str(rootfs), argv=["true"], state_dir=str(state),
                              volumes=binds)).close()
        volumes = [(v.host, v.guest, False, "bind") for v in binds]
        with FsView(rootfs, volumes, state).resolve("/f") as r:
            assert os.path.samefile(f"/proc/self/fd/{r.dirfd}", vol / "f")
        (vol / "f").rename(vol / "g")
        (vol / "f").symlink_to(secret)
        with pytest.raises(Errno) as refused:
            FsView(rootfs, volumes, state)
        assert refused.value.errno == errno.ESTALE
    finally:
        shutil.rmtree(base)
