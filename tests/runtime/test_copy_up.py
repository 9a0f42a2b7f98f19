"""Copy-on-write container filesystems: containers made from one image
(a hard-link farm, brandpy/images/rootfs.py) each see only their own
changes, made through the syscall handlers, and the image never changes."""

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import IMAGES, SETPRIV


def tree_digest(root: Path) -> str:
    h = hashlib.sha256()
    for dirpath, dirnames, filenames in sorted(os.walk(root)):
        dirnames.sort()
        for name in sorted(filenames):
            p = Path(dirpath, name)
            st = p.lstat()
            h.update(f"{p.relative_to(root)} {st.st_mode:o} {st.st_size}".encode())
            if p.is_file() and not p.is_symlink():
                h.update(p.read_bytes())
    return h.hexdigest()


@pytest.fixture
def two_containers(brandpy, world_tmp):
    """An image imported from the busybox tar and two container rootfs made
    from it, all owned by the runner's user."""
    root = Path(world_tmp) / f"store-{brandpy.user}-{os.urandom(3).hex()}"
    root.mkdir()
    if brandpy.user == "nobody":
        os.chown(root, 65534, 65534)
    script = f"""
import sys
from pathlib import Path
from brandpy.images.importer import import_rootfs
from brandpy.images.store import Store
from brandpy.images import rootfs
store = Store(Path("{root}/images"))
with open("{IMAGES}/busybox.tar", "rb") as src:
    image = store.get(import_rootfs(store, src, tag="bb:cow"))
for n in (1, 2):
    rootfs.create(image.tree, Path("{root}/c%d" % n))
print(image.tree)
"""
    prefix = SETPRIV if brandpy.user == "nobody" else []
    out = subprocess.run(prefix + [sys.executable, "-c", script], capture_output=True,
                         text=True, env=brandpy.env(), check=True, cwd="/")
    tree = Path(out.stdout.strip())
    return tree, root / "c1", root / "c2"


def test_two_containers_write_the_same_file(brandpy, two_containers):
    tree, c1, c2 = two_containers
    before = tree_digest(tree)
    for n, c in ((1, c1), (2, c2)):
        r = brandpy.sh(c, f"echo mine{n} >> /etc/passwd && chmod 600 /etc/group && "
                       f"touch /bin/busybox && tail -1 /etc/passwd && stat -c %a /etc/group")
        assert r.out == f"mine{n}\n600\n", r
    assert (c1 / "etc/passwd").read_text().endswith("mine1\n")
    assert (c2 / "etc/passwd").read_text().endswith("mine2\n")
    assert "mine" not in (tree / "etc/passwd").read_text()
    assert tree_digest(tree) == before
