"""Store, layers, import, docker-archive load/save (without a registry)."""
from __future__ import annotations

import gzip
import io
import json
import os
import signal
import subprocess
import sys
import tarfile
import time

import pytest
import zstandard

from brandpy.images import archive, importer, layers, reference
from brandpy.images.store import DigestMismatch, ImageNotFound, Store, StoreError
from tests.images_store.helpers import compress, legacy_archive, make_tar, sha, store_listing, tree_listing


def test_reference_normalisation():
    cases = {
        "busybox": ("docker.io/library/busybox:latest", "busybox:latest"),
        "user/app:1.0": ("docker.io/user/app:1.0", "user/app:1.0"),
        "localhost:5000/x": ("localhost:5000/x:latest", "localhost:5000/x:latest"),
        "127.0.0.1:5000/x:tag": ("127.0.0.1:5000/x:tag", "127.0.0.1:5000/x:tag"),
        "index.docker.io/library/debian:12": ("docker.io/library/debian:12", "debian:12"),
    }
    for text, (full, familiar) in cases.items():
        ref = reference.parse(text)
        assert (str(ref), ref.familiar()) == (full, familiar)
    d = "sha256:" + "ab" * 32
    assert reference.parse(f"busybox@{d}").digest == d
    assert reference.parse("127.0.0.1:5000/x").registry_host == "127.0.0.1:5000"
    assert reference.parse("busybox").registry_host == "registry-1.docker.io"
    for bad in ("Busybox", "a b", "x@sha256:12", "x:-bad"):
        with pytest.raises(reference.InvalidReference, match="invalid reference format"):
            reference.parse(bad)


@pytest.mark.parametrize("how", [None, "gzip", "zstd"])
def test_import_rootfs_with_changes(store, busybox_tar, how):
    data = compress(busybox_tar.read_bytes(), how)
    image_id = importer.import_rootfs(
        store, io.BytesIO(data), tag="bb:imported",
        changes=['CMD ["/bin/sh", "-c", "echo hi"]', "ENTRYPOINT /bin/env", "ENV A=1 B=\"two words\"",
                 "EXPOSE 80 53/udp", "LABEL k=v", "USER 1:2", "VOLUME /data", "WORKDIR /tmp",
                 "STOPSIGNAL SIGINT", 'CMD ["x"]'])
    image = store.get("bb:imported")
    assert image.id == image_id == sha(store.config_bytes(image_id))
    cfg = image.config["config"]
    assert cfg["Entrypoint"] == ["/bin/sh", "-c", "/bin/env"] and cfg["Cmd"] == ["x"]
    assert cfg["Env"] == ["A=1", "B=two words"]
    assert cfg["ExposedPorts"] == {"80/tcp": {}, "53/udp": {}}
    assert (cfg["Labels"], cfg["User"], cfg["Volumes"], cfg["WorkingDir"], cfg["StopSignal"]) == (
        {"k": "v"}, "1:2", {"/data": {}}, "/tmp", "SIGINT")
    assert image.config["history"][0]["comment"] == "Imported from -"
    # diffID is the digest of the uncompressed tar, whatever the input compression
    assert image.diff_ids == [sha(busybox_tar.read_bytes())]
    assert (image.tree / "bin" / "busybox").stat().st_size > 100_000
    assert os.readlink(image.tree / "bin" / "sh").endswith("busybox")
    assert store.get(image_id[7:19]).id == image_id


def test_import_rejects_bad_change(store, busybox_tar):
    before = store_listing(store.root)
    with pytest.raises(ValueError, match="RUN is not a valid change instruction"):
        importer.import_rootfs(store, open(busybox_tar, "rb"), changes=["RUN true"])
    assert store_listing(store.root) == before


LAYER1 = make_tar([
    ("a", "dir", None), ("a/x", "file", b"x1"), ("a/y", "file", b"y1"),
    ("b", "dir", None), ("b/1", "file", b"1"), ("b/2", "file", b"2"), ("b/sub", "dir", None),
    ("b/sub/deep", "file", b"deep"),
    ("c", "file", b"c"), ("d", "dir", None), ("d/f", "file", b"f"),
    ("hl", "file", b"hard"), ("hl2", "link", "hl"), ("ln", "symlink", "/a/x"),
    ("dev", "dir", None), ("dev/null", "char", (1, 3)), ("fifo", "fifo", None),
    ("suid", "file", b"s", {"mode": 0o4755}), ("owned", "file", b"o", {"uid": 1000, "gid": 1001}),
])
LAYER2 = make_tar([
    ("a/.wh.x", "file", b""), ("a/z", "file", b"z2"),
    ("b", "dir", None), ("b/.wh..wh..opq", "file", b""), ("b/3", "file", b"3"),
    (".wh.c", "file", b""), ("d", "file", b"now a file"), ("e", "dir", None), ("e/new", "file", b"n"),
])


def whiteout_archive(how1: str | None = "gzip", how2: str | None = "zstd") -> bytes:
    return legacy_archive([LAYER1, LAYER2], ["wh:test"], [how1, how2], Cmd=["/bin/sh"])


def test_whiteouts_and_opaque_dirs(store):
    msgs = archive.load(store, io.BytesIO(whiteout_archive()))
    assert msgs == ["Loaded image: wh:test"]
    image = store.get("wh:test")
    t = tree_listing(image.tree)
    assert t["a/y"] == ("f", b"y1") and t["a/z"] == ("f", b"z2") and "a/x" not in t
    assert sorted(k for k in t if k.startswith("b/")) == ["b/3"]  # opaque: lower children hidden
    assert "c" not in t and t["d"] == ("f", b"now a file") and "d/f" not in t
    assert t["e/new"] == ("f", b"n") and t["ln"] == ("l", "/a/x")
    assert not any(".wh." in k for k in t)
    hl, hl2 = os.stat(image.tree / "hl"), os.stat(image.tree / "hl2")
    assert hl.st_ino == hl2.st_ino
    # the lower layer's own directory is untouched by the upper one
    assert (store.layer_path(sha(LAYER1)) / "a" / "x").read_bytes() == b"x1"


def test_special_files_and_ownership_as_root(store):
    if os.geteuid() != 0:
        pytest.skip("checks real chown/mknod; the unprivileged case is test_unprivileged")
    archive.load(store, io.BytesIO(whiteout_archive()))
    tree = store.get("wh:test").tree
    st = os.lstat(tree / "dev" / "null")
    assert stat_kind(st) == "char" and os.major(st.st_rdev) == 1 and os.minor(st.st_rdev) == 3
    assert stat_kind(os.lstat(tree / "fifo")) == "pipe"
    assert os.stat(tree / "suid").st_mode & 0o7777 == 0o4755
    assert (os.stat(tree / "owned").st_uid, os.stat(tree / "owned").st_gid) == (1000, 1001)


def stat_kind(st: os.stat_result) -> str:
    import stat as s
    return {s.S_IFCHR: "char", s.S_IFIFO: "pipe", s.S_IFREG: "file"}.get(s.S_IFMT(st.st_mode), "?")


@pytest.mark.parametrize("entries,match", [
    ([("../evil", "file", b"x")], "contains '..'"),
    ([("/abs", "file", b"x")], "absolute path"),
    ([("lnk", "symlink", "/tmp"), ("lnk/evil", "file", b"x")], "refusing to write through it"),
    ([("h", "link", "../../etc/passwd")], "contains '..'"),
    ([("h", "link", "missing")], "not earlier in the same layer"),
])
def test_unsafe_layers_are_rejected(store, busybox_tar, tmp_path, entries, match):
    importer.import_rootfs(store, open(busybox_tar, "rb"), tag="keep:me")
    before = store_listing(store.root)
    with pytest.raises(layers.LayerError, match=match):
        importer.import_rootfs(store, io.BytesIO(make_tar(entries)), tag="evil:x")
    assert store_listing(store.root) == before
    assert not os.path.exists("/tmp/evil")


def test_corrupt_and_truncated_archives_leave_store_unchanged(store, busybox_tar):
    importer.import_rootfs(store, open(busybox_tar, "rb"), tag="keep:me")
    before = store_listing(store.root)
    good = legacy_archive([LAYER1], ["x:y"])
    # a layer whose content does not match the config's diffID
    wrong = legacy_archive([LAYER1], ["x:y"])
    wrong = wrong.replace(b"x1", b"X1", 1)
    with pytest.raises(DigestMismatch, match="diffID"):
        archive.load(store, io.BytesIO(wrong))
    # a truncated (gzip) layer inside an otherwise complete archive
    gz = compress(LAYER1, "gzip")
    complete = legacy_archive([LAYER1], ["x:y"], ["gzip"])
    assert gz in complete
    trunc = complete.replace(gz, gz[: len(gz) // 2] + bytes(len(gz) - len(gz) // 2))
    with pytest.raises(layers.LayerError, match="corrupt or truncated|not a valid tar"):
        archive.load(store, io.BytesIO(trunc))
    # a truncated archive
    with pytest.raises(archive.ArchiveError, match="truncated"):
        archive.load(store, io.BytesIO(good[: len(good) // 3]))
    # an OCI layout tar whose blob does not match its name
    out = io.BytesIO()
    archive.save(store, ["keep:me"], out)
    tampered = _tamper_config_blob(out.getvalue())
    with pytest.raises(StoreError, match="digest verification"):
        archive.load(store, io.BytesIO(tampered))
    assert store_listing(store.root) == before


def _tamper_config_blob(data: bytes) -> bytes:
    src = tarfile.open(fileobj=io.BytesIO(data))
    out = io.BytesIO()
    manifest = json.loads(src.extractfile("manifest.json").read())
    config_name = manifest[0]["Config"]
    with tarfile.open(fileobj=out, mode="w") as dst:
        for m in src.getmembers():
            f = src.extractfile(m) if m.isreg() else None
            if m.name == config_name:
                body = f.read().replace(b'"os"', b'"OS"')
                m.size = len(body)
                f = io.BytesIO(body)
            dst.addfile(m, f)
    return out.getvalue()


def test_shared_layers_are_reference_counted(store):
    shared = make_tar([("shared", "file", b"s")])
    archive.load(store, io.BytesIO(legacy_archive([shared, make_tar([("one", "file", b"1")])], ["one:x"])))
    archive.load(store, io.BytesIO(legacy_archive([shared, make_tar([("two", "file", b"2")])], ["two:x"])))
    store.tag("one:x", "alias:y")
    assert store.remove("one:x") == [{"Untagged": "one:x"}]          # another tag remains
    removed = store.remove("alias:y")
    assert removed[0] == {"Untagged": "alias:y"} and "Deleted" in removed[-1]
    assert store.layer_path(sha(shared)).exists() and store.has_blob(sha(shared))
    assert not store.layer_path(sha(make_tar([("one", "file", b"1")]))).exists()
    store.remove("two:x")
    assert not store.layer_path(sha(shared)).exists() and not store.has_blob(sha(shared))
    assert not list((store.root / "trees").iterdir()) and not list((store.root / "blobs" / "sha256").iterdir())
    with pytest.raises(ImageNotFound, match="No such image: two:x"):
        store.get("two:x")


def test_rmi_by_id_with_two_repositories_needs_force(store, busybox_tar):
    image_id = importer.import_rootfs(store, open(busybox_tar, "rb"), tag="a:1")
    store.tag("a:1", "b:1")
    with pytest.raises(StoreError, match="must be forced"):
        store.remove(image_id[7:19])
    out = store.remove(image_id[7:19], force=True)
    assert {"Untagged": "a:1"} in out and {"Untagged": "b:1"} in out and out[-1] == {"Deleted": image_id}


def test_prune_removes_dangling(store, busybox_tar):
    importer.import_rootfs(store, open(busybox_tar, "rb"), tag="x:1")
    dangling = importer.import_rootfs(store, io.BytesIO(make_tar([("f", "file", b"1")])))
    deleted, reclaimed = store.prune()
    assert deleted == [{"Deleted": dangling}] and reclaimed > 0
    assert [i.repo_tags for i in store.images()] == [["x:1"]]


def test_save_load_round_trip_keeps_ids(tmp_path, busybox_tar):
    a = Store(tmp_path / "a")
    image_id = importer.import_rootfs(a, open(busybox_tar, "rb"), tag="rt:1", changes=["CMD /bin/sh"])
    archive.load(a, io.BytesIO(whiteout_archive()))
    out = io.BytesIO()
    archive.save(a, ["rt:1", "wh:test"], out)
    with tarfile.open(fileobj=io.BytesIO(out.getvalue())) as tar:
        names = tar.getnames()
        manifest = json.loads(tar.extractfile("manifest.json").read())
        index = json.loads(tar.extractfile("index.json").read())
        repos = json.loads(tar.extractfile("repositories").read())
        for entry in manifest:   # layers uncompressed: blob name == diffID
            for layer in entry["Layers"]:
                assert sha(tar.extractfile(layer).read())[7:] == layer.rsplit("/", 1)[1]
    assert {"oci-layout", "index.json", "manifest.json", "repositories"} <= set(names)
    assert manifest[0]["RepoTags"] == ["rt:1"] and manifest[0]["Config"] == f"blobs/sha256/{image_id[7:]}"
    assert index["manifests"][0]["annotations"] == {"io.containerd.image.name": "docker.io/library/rt:1",
                                                    "org.opencontainers.image.ref.name": "1"}
    assert set(repos) == {"rt", "wh"}
    b = Store(tmp_path / "b")
    msgs = archive.load(b, io.BytesIO(out.getvalue()))
    assert msgs == ["Loaded image: rt:1", "Loaded image: wh:test"]
    assert b.get("rt:1").id == image_id and b.get("wh:test").id == a.get("wh:test").id
    assert tree_listing(b.get("wh:test").tree) == tree_listing(a.get("wh:test").tree)
    # saving by ID records no tag
    out2 = io.BytesIO()
    archive.save(a, [image_id[7:19]], out2)
    assert archive.load(Store(tmp_path / "c"), io.BytesIO(out2.getvalue())) == [f"Loaded image ID: {image_id}"]


def test_load_compressed_archive_and_retag_message(store):
    data = whiteout_archive()
    assert archive.load(store, io.BytesIO(zstandard.ZstdCompressor().compress(data))) == ["Loaded image: wh:test"]
    other = legacy_archive([make_tar([("f", "file", b"1")])], ["wh:test"])
    old = store.get("wh:test").id
    msgs = archive.load(store, io.BytesIO(gzip.compress(other)))
    assert msgs[0] == f"The image wh:test already exists, renaming the old one with ID {old} to empty string"
    assert store.get(old).repo_tags == []


def test_killed_mid_load_leaves_store_intact(tmp_path, busybox_tar):
    """A process killed -9 while loading leaves nothing registered, and the next
    open of the store cleans up what it had staged."""
    root = tmp_path / "store"
    s = Store(root)
    importer.import_rootfs(s, open(busybox_tar, "rb"), tag="keep:me")
    before = store_listing(root)
    big = legacy_archive([make_tar([(f"f{i}", "file", os.urandom(1 << 20)) for i in range(24)])], ["big:1"])
    code = ("import sys; from brandpy.images.store import Store; from brandpy.images import archive;"
            f"archive.load(Store({str(root)!r}), sys.stdin.buffer)")
    proc = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE,
                            cwd=os.path.dirname(os.path.dirname(os.path.dirname(__file__))))
    proc.stdin.write(big[: len(big) // 2])
    proc.stdin.flush()
    deadline = time.time() + 30
    while not any((root / "tmp").iterdir()) and time.time() < deadline:
        time.sleep(0.05)
    time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert any((root / "tmp").iterdir())      # it died with work staged
    s2 = Store(root)
    with pytest.raises(ImageNotFound):
        s2.get("big:1")
    s2.gc()
    assert store_listing(root) == before
    assert archive.load(s2, io.BytesIO(big)) == ["Loaded image: big:1"]   # and it works afterwards


def test_change_instructions():
    from brandpy.images import changes
    cfg: dict = {"WorkingDir": "/app"}
    for line in ['HEALTHCHECK --interval=5s --retries=3 CMD curl -f http://localhost/',
                 "WORKDIR sub", "ENV PATH /usr/bin:/bin", "ONBUILD RUN make", "label a=1 b=\"2 3\"",
                 'VOLUME ["/v1", "/v2"]', "EXPOSE 8000-8002/tcp"]:
        changes.apply(cfg, line)
    assert cfg["Healthcheck"] == {"Test": ["CMD-SHELL", "curl -f http://localhost/"],
                                  "Interval": 5_000_000_000, "Retries": 3}
    assert cfg["WorkingDir"] == "/app/sub" and cfg["Env"] == ["PATH=/usr/bin:/bin"]
    assert cfg["OnBuild"] == ["RUN make"] and cfg["Labels"] == {"a": "1", "b": "2 3"}
    assert cfg["Volumes"] == {"/v1": {}, "/v2": {}} and cfg["ExposedPorts"] == {"8000-8002/tcp": {}}
    changes.apply(cfg, 'HEALTHCHECK CMD ["/bin/check", "--fast"]')
    assert cfg["Healthcheck"] == {"Test": ["CMD", "/bin/check", "--fast"]}
    changes.apply(cfg, "HEALTHCHECK NONE")
    assert cfg["Healthcheck"] == {"Test": ["NONE"]}
    for bad, match in [("EXPOSE 80/xyz", "invalid port"), ("HEALTHCHECK --interval=5 CMD x", "invalid duration"),
                       ("ENV", "requires an argument"), ("ENV A", "needs a value"), ("COPY a b", "not a valid")]:
        with pytest.raises(changes.ChangeError, match=match):
            changes.apply({}, bad)


def test_load_legacy_v1_archive(store):
    """Docker < 1.10: <id>/json + <id>/layer.tar chained by parent, tags in repositories."""
    base, top = "a" * 64, "b" * 64
    l1, l2 = make_tar([("f", "file", b"1")]), make_tar([("g", "file", b"2")])
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        def add(name: str, data: bytes) -> None:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        add(f"{base}/json", json.dumps({"id": base, "created": "2015-01-01T00:00:00Z",
                                        "container_config": {"Cmd": ["/bin/sh", "-c", "#(nop) ADD f"]}}).encode())
        add(f"{base}/layer.tar", l1)
        add(f"{base}/VERSION", b"1.0")
        add(f"{top}/json", json.dumps({"id": top, "parent": base, "created": "2015-01-02T00:00:00Z",
                                       "config": {"Cmd": ["/g"]}, "architecture": "amd64", "os": "linux"}).encode())
        add(f"{top}/layer.tar", l2)
        add("repositories", json.dumps({"old/app": {"v1": top}}).encode())
    assert archive.load(store, io.BytesIO(buf.getvalue())) == ["Loaded image: old/app:v1"]
    image = store.get("old/app:v1")
    assert image.diff_ids == [sha(l1), sha(l2)] and image.config["config"]["Cmd"] == ["/g"]
    assert "id" not in image.config and "parent" not in image.config
    assert image.config["history"][0]["created_by"] == "/bin/sh -c #(nop) ADD f"
    assert tree_listing(image.tree) == {"f": ("f", b"1"), "g": ("f", b"2")}
