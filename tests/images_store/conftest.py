"""Fixtures for the image store tests: a busybox rootfs tar and empty stores."""
from __future__ import annotations

import os
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

from brandpy.images.store import Store

TEST_IMAGES = Path(os.environ.get("BRANDPY_TEST_IMAGES", "/var/cache/brandpy/images"))


@pytest.fixture(scope="session")
def busybox_tar(tmp_path_factory) -> Path:
    """The shared busybox rootfs tar (tests/images/build.sh) when it is built,
    else one made here from Debian's busybox-static."""
    shared = TEST_IMAGES / "busybox.tar"
    if (TEST_IMAGES / "READY").exists() and shared.exists():
        return shared
    busybox = shutil.which("busybox")
    if busybox is None:
        pytest.skip("busybox-static is not installed (apt-get install busybox-static)")
    root = tmp_path_factory.mktemp("busybox") / "rootfs"
    for d in ("bin", "etc", "tmp", "root", "dev"):
        (root / d).mkdir(parents=True)
    shutil.copy(busybox, root / "bin" / "busybox")
    for applet in ("sh", "ls", "cat", "echo", "env"):
        os.symlink("busybox", root / "bin" / applet)
    (root / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
    (root / "etc" / "group").write_text("root:x:0:\n")
    (root / "tmp").chmod(0o1777)
    out = root.parent / "busybox.tar"
    with tarfile.open(out, "w") as tar:
        tar.add(root, arcname=".", filter=lambda ti: _root_owned(ti))
    return out


def _root_owned(ti: tarfile.TarInfo) -> tarfile.TarInfo:
    ti.uid = ti.gid = 0
    ti.uname = ti.gname = ""
    return ti


@pytest.fixture
def store(tmp_path) -> Store:
    return Store(tmp_path / "store")


def run(*cmd: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, check=True, capture_output=True, text=True, **kw)
