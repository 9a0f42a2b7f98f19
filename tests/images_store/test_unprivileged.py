"""Import, layer extraction and container filesystems as an unprivileged user
(uid 65534), with ownership, modes and device nodes recorded through fsmeta."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from tests.images_store.helpers import legacy_archive
from tests.images_store.test_store import LAYER1, LAYER2

REPO = Path(__file__).resolve().parents[2]
NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]

SCRIPT = r"""
import io, json, os, stat, sys, tarfile
from pathlib import Path
from brandpy import fsmeta
from brandpy.images import archive, importer, rootfs
from brandpy.images.store import Store
work = Path(sys.argv[1])
assert os.geteuid() == 65534
s = Store(work / "data" / "images")
importer.import_rootfs(s, open(work / "busybox.tar", "rb"), tag="bb:1")
archive.load(s, open(work / "wh.tar", "rb"))
tree = s.get("wh:test").tree
def ov(p):
    o = fsmeta.view(str(p))
    return [o.uid, o.gid, oct(o.mode), o.kind, os.major(o.rdev), os.minor(o.rdev)]
out = {name: ov(tree / name) for name in ("dev/null", "fifo", "suid", "owned", "a/y", "b")}
out["real_dev_null"] = stat.S_ISREG(os.lstat(tree / "dev/null").st_mode)
out["real_owner"] = os.lstat(tree / "owned").st_uid
c = work / "c"
rootfs.create(s.get("bb:1").tree, c)
out["copied"] = rootfs.copy_up(c / "etc" / "passwd")
(c / "etc" / "passwd").write_text("mine\n")
out["image_passwd"] = (s.get("bb:1").tree / "etc" / "passwd").read_text()
out["diff"] = rootfs.diff(c, s.get("bb:1").tree)
c2 = work / "c2"
rootfs.create(tree, c2)
buf = io.BytesIO()
rootfs.export(c2, buf)
with tarfile.open(fileobj=io.BytesIO(buf.getvalue())) as t:
    m = {x.name.rstrip("/"): x for x in t.getmembers()}
out["export"] = {n: [m[n].uid, m[n].gid, oct(m[n].mode), m[n].type.decode()]
                 for n in ("owned", "dev/null", "fifo", "suid")}
s.remove("wh:test")
print(json.dumps(out))
"""


def _python_for_nobody() -> str | None:
    for py in (sys.executable, "/opt/brandpy/venv/bin/python"):
        r = subprocess.run([*NOBODY, py, "-c", "import zstandard"], capture_output=True)
        if r.returncode == 0:
            return py
    return None


@pytest.mark.skipif(os.geteuid() != 0, reason="setpriv to uid 65534 needs root")
def test_unprivileged_import_and_layers(busybox_tar):
    py = _python_for_nobody()
    if py is None:
        pytest.skip("no Python with brandpy's dependencies is readable by uid 65534 (make install)")
    work = Path(tempfile.mkdtemp(prefix="brandpy-nobody-"))
    try:
        shutil.copy(busybox_tar, work / "busybox.tar")
        (work / "wh.tar").write_bytes(legacy_archive([LAYER1, LAYER2], ["wh:test"], ["gzip", None]))
        for p in (work, work / "busybox.tar", work / "wh.tar"):
            os.chown(p, 65534, 65534)
        env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO), "HOME": str(work)}
        r = subprocess.run([*NOBODY, py, "-c", SCRIPT, str(work)], capture_output=True, text=True,
                           env=env, cwd=work, timeout=120)
        assert r.returncode == 0, r.stderr
        out = json.loads(r.stdout)
    finally:
        shutil.rmtree(work)
    assert out["dev/null"] == [0, 0, "0o644", "char", 1, 3] and out["real_dev_null"]
    assert out["fifo"] == [0, 0, "0o644", "pipe", 0, 0]
    assert out["suid"][:3] == [0, 0, "0o4755"]
    assert out["owned"][:3] == [1000, 1001, "0o644"] and out["real_owner"] == 65534
    assert out["a/y"][:2] == [0, 0] and out["b"][3] == "dir"
    assert out["copied"] and out["image_passwd"] != "mine\n"
    assert out["diff"] == [["C", "/etc"], ["C", "/etc/passwd"]]
    assert out["export"] == {"owned": [1000, 1001, "0o644", "0"], "dev/null": [0, 0, "0o644", "3"],
                             "fifo": [0, 0, "0o644", "6"], "suid": [0, 0, "0o4755", "0"]}
