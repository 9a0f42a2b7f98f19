"""Container filesystems: hard-link farm, copy-up, diff, export, commit."""
from __future__ import annotations

import hashlib
import io
import os
import tarfile
import threading

import pytest

from brandpy.images import archive, commit, importer, rootfs
from brandpy.images.layers import MARKER
from tests.images_store.helpers import legacy_archive, make_tar, tree_listing


def image_digest(store, name: str) -> str:
    """Digest of a re-export of the image's tree: changes if any byte or mode does."""
    out = io.BytesIO()
    rootfs.export(store.get(name).tree, out)
    return hashlib.sha256(out.getvalue()).hexdigest()


@pytest.fixture
def bb(store, busybox_tar):
    importer.import_rootfs(store, open(busybox_tar, "rb"), tag="bb:1")
    return store.get("bb:1")


def test_two_containers_copy_up_independently(store, bb, tmp_path):
    before = image_digest(store, "bb:1")
    c1, c2 = tmp_path / "c1", tmp_path / "c2"
    rootfs.create(bb.tree, c1)
    rootfs.create(bb.tree, c2)
    assert tree_listing(c1) == tree_listing(bb.tree)
    for c, text in ((c1, "one"), (c2, "two")):
        target = c / "etc" / "passwd"
        assert rootfs.needs_copy_up(target)
        assert rootfs.copy_up(target)
        assert not rootfs.needs_copy_up(target) and MARKER not in os.listxattr(target)
        assert not rootfs.copy_up(target)            # already private
        with open(target, "a") as f:
            f.write(text + "\n")
    assert (c1 / "etc" / "passwd").read_text().endswith("one\n")
    assert (c2 / "etc" / "passwd").read_text().endswith("two\n")
    assert not (bb.tree / "etc" / "passwd").read_text().endswith(("one\n", "two\n"))
    st_img, st_c1 = os.stat(bb.tree / "etc" / "passwd"), os.stat(c1 / "etc" / "passwd")
    assert st_c1.st_mode == st_img.st_mode and st_c1.st_uid == st_img.st_uid
    assert image_digest(store, "bb:1") == before
    assert rootfs.diff(c1, bb.tree) == [("C", "/etc"), ("C", "/etc/passwd")]


def test_concurrent_copy_up_of_one_file(bb, tmp_path):
    c = tmp_path / "c"
    rootfs.create(bb.tree, c)
    target = c / "bin" / "busybox"
    results: list[bool] = []
    threads = [threading.Thread(target=lambda: results.append(rootfs.copy_up(target))) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results.count(True) == 1
    assert os.stat(target).st_ino != os.stat(bb.tree / "bin" / "busybox").st_ino
    assert [p for p in os.listdir(c / "bin") if p.startswith(".brandpy")] == []


def test_needs_copy_up_by_fd_and_on_symlinks(bb, tmp_path):
    c = tmp_path / "c"
    rootfs.create(bb.tree, c)
    fd = os.open(c / "bin" / "busybox", os.O_RDONLY)
    try:
        assert rootfs.needs_copy_up(fd)
    finally:
        os.close(fd)
    sh = c / "bin" / "sh"
    assert os.path.islink(sh) and not rootfs.needs_copy_up(sh) and not rootfs.copy_up(sh)
    assert os.lstat(sh).st_ino != os.lstat(bb.tree / "bin" / "sh").st_ino   # recreated, not shared


def test_diff_reports_like_docker(bb, tmp_path):
    c = tmp_path / "c"
    rootfs.create(bb.tree, c)
    (c / "new").mkdir()
    (c / "new" / "file").write_text("x")
    os.unlink(c / "etc" / "group")
    rootfs.copy_up(c / "etc" / "passwd")
    os.chmod(c / "tmp", 0o700)
    assert rootfs.diff(c, bb.tree) == [
        ("C", "/etc"), ("D", "/etc/group"), ("C", "/etc/passwd"),
        ("A", "/new"), ("A", "/new/file"), ("C", "/tmp")]


def test_export_applies_recorded_ownership(store, tmp_path):
    archive.load(store, io.BytesIO(legacy_archive([make_tar([
        ("etc", "dir", None), ("etc/f", "file", b"data", {"uid": 7, "gid": 8, "mode": 0o640}),
        ("suid", "file", b"s", {"mode": 0o4755}), ("dev", "dir", None), ("dev/null", "char", (1, 3)),
        ("fifo", "fifo", None), ("l", "symlink", "etc/f"), ("h", "link", "etc/f"),
    ])], ["own:1"])))
    c = tmp_path / "c"
    rootfs.create(store.get("own:1").tree, c)
    out = io.BytesIO()
    rootfs.export(c, out)
    with tarfile.open(fileobj=io.BytesIO(out.getvalue())) as tar:
        m = {ti.name.rstrip("/"): ti for ti in tar.getmembers()}
        assert (m["etc/f"].uid, m["etc/f"].gid, m["etc/f"].mode) == (7, 8, 0o640)
        assert tar.extractfile("etc/f").read() == b"data"
        assert m["suid"].mode == 0o4755
        assert m["dev/null"].ischr() and (m["dev/null"].devmajor, m["dev/null"].devminor) == (1, 3)
        assert m["fifo"].isfifo() and m["l"].issym() and m["l"].linkname == "etc/f"
        first, second = sorted(["etc/f", "h"])
        assert m[second].islnk() and m[second].linkname == first


def test_commit_makes_a_layer_with_whiteouts(store, bb, tmp_path):
    c = tmp_path / "c"
    rootfs.create(bb.tree, c)
    (c / "hello").write_text("hi\n")
    os.unlink(c / "etc" / "group")
    rootfs.copy_up(c / "etc" / "passwd")
    (c / "etc" / "passwd").write_text("changed\n")
    new_id = commit.commit(store, c, "bb:1", tag="bb:committed", changes=["ENV X=1", "CMD /hello"],
                           message="snap", author="me")
    img = store.get("bb:committed")
    assert img.id == new_id and img.record.parent == bb.id and len(img.diff_ids) == 2
    assert img.config["config"]["Env"] == ["X=1"] and img.config["config"]["Cmd"] == ["/bin/sh", "-c", "/hello"]
    assert img.config["history"][-1]["comment"] == "snap" and img.config["author"] == "me"
    t = tree_listing(img.tree)
    assert t["hello"] == ("f", b"hi\n") and t["etc/passwd"] == ("f", b"changed\n") and "etc/group" not in t
    # the layer tar holds a whiteout for the deletion
    with open(store.blob_path(img.record.layers[-1].digest), "rb") as f, tarfile.open(fileobj=f) as tar:
        names = tar.getnames()
    assert "etc/.wh.group" in names and "hello" in names
    with pytest.raises(Exception, match="dependent child images"):
        store.remove(bb.id)
    # a commit with no change adds no layer
    c2 = tmp_path / "c2"
    rootfs.create(img.tree, c2)
    same = commit.commit(store, c2, "bb:committed")
    assert store.get(same).diff_ids == img.diff_ids


def test_create_is_fast_for_debian(store, tmp_path):
    from tests.images_store.conftest import TEST_IMAGES
    if not (TEST_IMAGES / "READY").exists():
        pytest.skip("the Debian test rootfs is not built (make images)")
    import time
    importer.import_rootfs(store, open(TEST_IMAGES / "debian.tar", "rb"), tag="deb:1")
    tree = store.get("deb:1").tree
    t0 = time.monotonic()
    rootfs.create(tree, tmp_path / "c")
    elapsed = time.monotonic() - t0
    assert rootfs.diff(tmp_path / "c", tree) == []
    assert elapsed < 10, f"creating a Debian container rootfs took {elapsed:.1f}s"
