"""Cross-check with the real Docker Engine (Debian's docker.io, dockerd 20.10):
it loads our docker-archive with the same image IDs and the same tree, and we
load what `docker save` writes. dockerd runs with its own data root, socket
and network namespace, so it touches nothing else on the machine."""
from __future__ import annotations

import io
import os
import shutil
import subprocess
import tarfile
import tempfile
import time
from pathlib import Path

import pytest

from brandpy.images import archive, importer, rootfs
from brandpy.images.store import Store
from tests.images_store.test_store import whiteout_archive

pytestmark = pytest.mark.skipif(
    shutil.which("dockerd") is None or shutil.which("docker") is None or os.geteuid() != 0,
    reason="needs root and Debian's docker.io (dockerd) and a docker CLI")


@pytest.fixture(scope="module")
def docker():
    # A short path: containerd's sockets live under exec-root (108-byte limit).
    work = Path(tempfile.mkdtemp(prefix="bpd-", dir="/tmp"))
    sock = work / "d.sock"
    log = open(work / "dockerd.log", "wb")
    proc = subprocess.Popen(
        ["unshare", "--net", "dockerd", "--data-root", str(work / "data"), "--exec-root", str(work / "x"),
         "-H", f"unix://{sock}", "--pidfile", str(work / "d.pid"), "--bridge=none", "--iptables=false",
         "--ip-forward=false", "--ip-masq=false"], stdout=log, stderr=subprocess.STDOUT)
    env = {**os.environ, "DOCKER_HOST": f"unix://{sock}"}

    def cli(*args: str, **kw) -> subprocess.CompletedProcess:
        return subprocess.run(["docker", *args], env=env, check=True, capture_output=True, **kw)

    deadline = time.time() + 60
    while True:
        if subprocess.run(["docker", "version"], env=env, capture_output=True).returncode == 0:
            break
        if proc.poll() is not None or time.time() > deadline:
            proc.kill()
            pytest.fail(f"dockerd did not start: {(work / 'dockerd.log').read_text()[-2000:]}")
        time.sleep(0.3)
    try:
        yield cli
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
        subprocess.run(["umount", "-R", "-l", str(work / "data")], capture_output=True)
        shutil.rmtree(work, ignore_errors=True)


def _entries(data: bytes) -> dict[str, tuple]:
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return {m.name.rstrip("/"): (m.type, m.mode & 0o7777, m.uid, m.gid, m.linkname,
                                     tar.extractfile(m).read() if m.isreg() else b"")
                for m in tar.getmembers()}


def test_docker_loads_our_archive_and_we_load_its(docker, tmp_path, busybox_tar):
    store = Store(tmp_path / "s")
    bb = importer.import_rootfs(store, open(busybox_tar, "rb"), tag="bptest/bb:1", changes=["CMD /bin/sh"])
    archive.load(store, io.BytesIO(whiteout_archive()))
    wh = store.get("wh:test").id
    ours = tmp_path / "ours.tar"
    with open(ours, "wb") as f:
        archive.save(store, ["bptest/bb:1", "wh:test"], f)
    out = docker("load", "-i", str(ours), text=True).stdout
    assert "Loaded image: bptest/bb:1" in out and "Loaded image: wh:test" in out
    ids = docker("inspect", "-f", "{{.Id}}", "bptest/bb:1", "wh:test", text=True).stdout.split()
    assert ids == [bb, wh]
    # the tree Docker builds from our layers (whiteouts, opaque dir) is ours
    cid = docker("create", "wh:test", "/none", text=True).stdout.strip()
    theirs = _entries(docker("export", cid).stdout)
    docker("rm", cid)
    mine = io.BytesIO()
    rootfs.export(store.get("wh:test").tree, mine)
    runtime_files = {".dockerenv", "dev/console", "dev/pts", "dev/shm", "etc", "etc/hostname", "etc/hosts",
                     "etc/mtab", "etc/resolv.conf", "proc", "sys"}
    assert {k: v for k, v in theirs.items() if k not in runtime_files} == _entries(mine.getvalue())
    # and back: Docker's legacy-layout save loads here with the same IDs
    saved = tmp_path / "theirs.tar"
    docker("save", "-o", str(saved), "bptest/bb:1", "wh:test")
    other = Store(tmp_path / "o")
    assert sorted(archive.load(other, open(saved, "rb"))) == ["Loaded image: bptest/bb:1", "Loaded image: wh:test"]
    assert other.resolve("bptest/bb:1") == bb and other.resolve("wh:test") == wh
