"""Pull and push against real registries (Debian's docker-registry, plus a
token-auth proxy for the Bearer flow and for injected faults)."""
from __future__ import annotations

import base64
import io
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from brandpy.images import archive, commit, importer, pull, push, rootfs
from brandpy.images.registry import RegistryError
from brandpy.images.store import DigestMismatch, Store, StoreError
from tests.images_store.helpers import store_listing, tree_listing
from tests.images_store.registries import Registry, TokenProxy

CHANGES = ['ENTRYPOINT ["/bin/sh", "-c"]', 'CMD ["echo $GREETING from $PWD"]', "ENV GREETING=hello",
           "WORKDIR /tmp", "USER 0"]


@pytest.fixture(scope="session")
def source_archive(tmp_path_factory, busybox_tar):
    """A docker-archive of busybox with an Entrypoint/Cmd/Env/WorkingDir, and its image ID."""
    d = tmp_path_factory.mktemp("src")
    s = Store(d / "store")
    image_id = importer.import_rootfs(s, open(busybox_tar, "rb"), tag="src/bb:1", changes=CHANGES)
    path = d / "bb.tar"
    with open(path, "wb") as f:
        archive.save(s, ["src/bb:1"], f)
    return path, image_id


@pytest.fixture(scope="session")
def registry(tmp_path_factory, source_archive):
    reg = Registry(tmp_path_factory.mktemp("registry"))
    reg.skopeo_copy(f"docker-archive:{source_archive[0]}", "lib/bb:1")
    yield reg
    reg.stop()


@pytest.fixture(scope="session")
def basic_registry(tmp_path_factory, source_archive):
    reg = Registry(tmp_path_factory.mktemp("registry-basic"), htpasswd=("alice", "s3cret"))
    reg.skopeo_copy(f"docker-archive:{source_archive[0]}", "priv/bb:1")
    yield reg
    reg.stop()


@pytest.fixture
def token_proxy(registry):
    proxy = TokenProxy(registry, creds=("bob", "hunter2"))
    yield proxy
    proxy.stop()


def docker_config(tmp_path, host: str, user: str, password: str):
    path = tmp_path / "config.json"
    auth = base64.b64encode(f"{user}:{password}".encode()).decode()
    path.write_text(json.dumps({"auths": {host: {"auth": auth}}}))
    return path


def test_pull_then_inspect_config(registry, source_archive, tmp_path):
    store = Store(tmp_path / "store")
    events: list[dict] = []
    image_id = pull.pull(store, f"{registry.addr}/lib/bb:1", progress=events.append)
    assert image_id == source_archive[1]          # skopeo recompressed the layer; the ID stays
    image = store.get(f"{registry.addr}/lib/bb:1")
    cfg = image.config["config"]
    assert cfg["Entrypoint"] == ["/bin/sh", "-c"] and cfg["Cmd"] == ["echo $GREETING from $PWD"]
    assert cfg["Env"] == ["GREETING=hello"] and cfg["WorkingDir"] == "/tmp" and cfg["User"] == "0"
    assert (image.tree / "bin" / "busybox").exists()
    assert image.repo_digests[0].startswith(f"{registry.addr}/lib/bb@sha256:")
    statuses = [e["status"] for e in events]
    assert statuses[0] == "Pulling from lib/bb" and events[0]["id"] == "1"
    for s in ("Pulling fs layer", "Downloading", "Verifying Checksum", "Download complete", "Extracting",
              "Pull complete"):
        assert s in statuses
    assert statuses[-2].startswith("Digest: sha256:")
    assert statuses[-1] == f"Status: Downloaded newer image for {registry.addr}/lib/bb:1"
    layer_ids = {e["id"] for e in events if e["status"] == "Downloading"}
    assert all(len(i) == 12 for i in layer_ids)
    # pulling again: nothing downloaded
    again: list[dict] = []
    pull.pull(store, f"{registry.addr}/lib/bb:1", progress=again.append)
    assert [e["status"] for e in again][-1] == f"Status: Image is up to date for {registry.addr}/lib/bb:1"
    assert not any(e["status"] == "Downloading" for e in again)
    # by digest
    digest = image.repo_digests[0].split("@")[1]
    assert pull.pull(Store(tmp_path / "s2"), f"{registry.addr}/lib/bb@{digest}") == image_id


def test_pull_skips_layers_already_present(registry, tmp_path):
    """A second image sharing the first one's layer only downloads its config."""
    src = Store(tmp_path / "src")
    pull.pull(src, f"{registry.addr}/lib/bb:1")
    c = tmp_path / "c"
    rootfs.create(src.get(f"{registry.addr}/lib/bb:1").tree, c)
    commit.commit(src, c, f"{registry.addr}/lib/bb:1", tag=f"{registry.addr}/lib/bbx:1", changes=["ENV X=1"])
    push.push(src, f"{registry.addr}/lib/bbx:1")
    store = Store(tmp_path / "store")
    pull.pull(store, f"{registry.addr}/lib/bb:1")
    events: list[dict] = []
    pull.pull(store, f"{registry.addr}/lib/bbx:1", progress=events.append)
    statuses = [e["status"] for e in events]
    assert "Already exists" in statuses and "Downloading" not in statuses
    assert store.get(f"{registry.addr}/lib/bbx:1").config["config"]["Env"][-1] == "X=1"


def test_basic_auth_with_docker_config(basic_registry, tmp_path):
    store = Store(tmp_path / "store")
    importer.import_rootfs(store, io.BytesIO(b"\0" * 1024), tag="empty:1")
    before = store_listing(store.root)
    nowhere = tmp_path / "none.json"
    with pytest.raises(RegistryError, match="requires a login"):
        pull.pull(store, f"{basic_registry.addr}/priv/bb:1", docker_config=nowhere)
    with pytest.raises(RegistryError, match="denied"):
        pull.pull(store, f"{basic_registry.addr}/priv/bb:1",
                  docker_config=docker_config(tmp_path, basic_registry.addr, "alice", "wrong"))
    assert store_listing(store.root) == before
    cfg = docker_config(tmp_path, basic_registry.addr, "alice", "s3cret")
    image_id = pull.pull(store, f"{basic_registry.addr}/priv/bb:1", docker_config=cfg)
    # push back under another name, authenticated the same way
    store.tag(image_id, f"{basic_registry.addr}/priv/copy:2")
    push.push(store, f"{basic_registry.addr}/priv/copy:2", docker_config=cfg)
    out = subprocess.run(["skopeo", "inspect", "--tls-verify=false", "--creds", "alice:s3cret", "--config",
                          f"docker://{basic_registry.addr}/priv/copy:2"], check=True, capture_output=True)
    assert json.loads(out.stdout)["config"]["WorkingDir"] == "/tmp"


def test_bearer_token_flow(token_proxy, source_archive, tmp_path):
    store = Store(tmp_path / "store")
    cfg = docker_config(tmp_path, token_proxy.addr, "bob", "hunter2")
    image_id = pull.pull(store, f"{token_proxy.addr}/lib/bb:1", docker_config=cfg)
    assert image_id == source_archive[1]
    assert ["repository:lib/bb:pull"] in token_proxy.state.scopes_requested
    # push needs a push-scoped token, and mounting from lib/bb a pull scope on it too
    store.tag(image_id, f"{token_proxy.addr}/team/bb:7")
    events: list[dict] = []
    push.push(store, f"{token_proxy.addr}/team/bb:7", docker_config=cfg, progress=events.append)
    assert any(e.get("status") == "Mounted from lib/bb" for e in events)
    assert any("repository:team/bb:pull,push" in s for s in token_proxy.state.scopes_requested)
    assert events[-1]["aux"]["Tag"] == "7"


FAULTS = [
    ("GET", r"/manifests/", "status:500", RegistryError, "answered 500"),
    ("GET", r"/manifests/", "status:404", RegistryError, "not found"),
    ("GET", r"/blobs/", "status:500", RegistryError, "answered 500"),
    ("GET", r"/blobs/", "status:401", RegistryError, "token|denied|401"),
]


@pytest.mark.parametrize("method,path,action,exc,match", FAULTS + [
    ("GET", r"/blobs/", "drop", RegistryError, "interrupted"),
    ("GET", r"/blobs/", "corrupt", DigestMismatch, "digest verification"),
])
def test_registry_failures_leave_store_unchanged(token_proxy, tmp_path, busybox_tar,
                                                 method, path, action, exc, match):
    store = Store(tmp_path / "store")
    importer.import_rootfs(store, open(busybox_tar, "rb"), tag="keep:1")
    before = store_listing(store.root)
    cfg = docker_config(tmp_path, token_proxy.addr, "bob", "hunter2")
    if action == "status:401":
        cfg = docker_config(tmp_path, token_proxy.addr, "bob", "wrong")
    if path == r"/blobs/" and action in ("drop", "corrupt", "status:500"):
        # hit the layer, not the (small) config blob
        raw, _ = token_proxy.upstream.get_manifest("lib/bb", "1")
        path = r"/blobs/sha256:(?!" + json.loads(raw)["config"]["digest"][7:] + ")"
    token_proxy.fault(method, path, action)
    with pytest.raises(exc, match=match):
        pull.pull(store, f"{token_proxy.addr}/lib/bb:1", docker_config=cfg)
    assert store_listing(store.root) == before
    token_proxy.clear_faults()
    good = docker_config(tmp_path, token_proxy.addr, "bob", "hunter2")
    assert pull.pull(store, f"{token_proxy.addr}/lib/bb:1", docker_config=good)   # resumes cleanly


def test_unknown_tag_and_bad_name(registry, tmp_path):
    store = Store(tmp_path / "store")
    with pytest.raises(RegistryError, match=r"manifest for 127\.0\.0\.1:\d+/lib/bb:nope not found: manifest unknown"):
        pull.pull(store, f"{registry.addr}/lib/bb:nope")
    with pytest.raises(ValueError, match="invalid reference format"):
        pull.pull(store, f"{registry.addr}/Lib/BB")


def test_manifest_list_platform_choice(registry, tmp_path):
    raw, media_type = registry.get_manifest("lib/bb", "1")
    from brandpy.images.store import sha256_bytes

    def index(*platforms: tuple[str, str, str | None]) -> bytes:
        return json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                           "manifests": [{"mediaType": media_type.split(";")[0], "digest": sha256_bytes(raw),
                                          "size": len(raw),
                                          "platform": {"os": o, "architecture": a, **({"variant": v} if v else {})}}
                                         for o, a, v in platforms]}).encode()
    registry.put_manifest("lib/bb", "arm", index(("linux", "arm64", None), ("linux", "arm", "v7")),
                          "application/vnd.oci.image.index.v1+json")
    registry.put_manifest("lib/bb", "multi", index(("linux", "arm64", None), ("linux", "amd64", None)),
                          "application/vnd.oci.image.index.v1+json")
    store = Store(tmp_path / "store")
    importer.import_rootfs(store, io.BytesIO(b"\0" * 1024), tag="empty:1")
    before = store_listing(store.root)
    with pytest.raises(StoreError, match=r"no matching manifest for linux/amd64.*linux/arm/v7, linux/arm64"):
        pull.pull(store, f"{registry.addr}/lib/bb:arm")
    assert store_listing(store.root) == before
    image_id = pull.pull(store, f"{registry.addr}/lib/bb:multi")
    rd = store.get(image_id).repo_digests
    assert f"{registry.addr}/lib/bb@{sha256_bytes(index(('linux', 'arm64', None), ('linux', 'amd64', None)))}" in rd


def test_push_local_image_and_read_with_skopeo(registry, busybox_tar, tmp_path):
    store = Store(tmp_path / "store")
    image_id = importer.import_rootfs(store, open(busybox_tar, "rb"), tag=f"{registry.addr}/mine/bb:v1",
                                      changes=["CMD /bin/sh"])
    events: list[dict] = []
    digest = push.push(store, f"{registry.addr}/mine/bb:v1", progress=events.append)
    assert [e["status"] for e in events if "id" in e and e.get("status") in ("Pushed", "Preparing")]
    out = subprocess.run(["skopeo", "inspect", "--tls-verify=false", "--raw",
                          f"docker://{registry.addr}/mine/bb:v1"], check=True, capture_output=True)
    assert json.loads(out.stdout)["config"]["digest"] == image_id
    assert f"{registry.addr}/mine/bb@{digest}" in store.get(image_id).repo_digests
    # pushed again: every blob is already there
    again: list[dict] = []
    push.push(store, f"{registry.addr}/mine/bb:v1", progress=again.append)
    assert "Layer already exists" in [e.get("status") for e in again]
    other = Store(tmp_path / "other")
    assert pull.pull(other, f"{registry.addr}/mine/bb:v1") == image_id
    assert tree_listing(other.get(image_id).tree) == tree_listing(store.get(image_id).tree)


def test_cli_pull_prints_like_docker(registry, tmp_path, capsys):
    from tests.images_store.test_cli import run
    rc, out, _ = run(capsys, "image", "--store", str(tmp_path / "s"), "pull", f"{registry.addr}/lib/bb:1")
    lines = out.splitlines()
    assert rc == 0 and lines[0] == "1: Pulling from lib/bb"
    layer = lines[1].split(":")[0]
    assert lines[1:5] == [f"{layer}: Pulling fs layer", f"{layer}: Verifying Checksum",
                          f"{layer}: Download complete", f"{layer}: Pull complete"]
    assert lines[5].startswith("Digest: sha256:")
    assert lines[6:] == [f"Status: Downloaded newer image for {registry.addr}/lib/bb:1", f"{registry.addr}/lib/bb:1"]


def test_pull_zstd_layers(registry, source_archive, tmp_path):
    layout = tmp_path / "zstd"
    subprocess.run(["skopeo", "copy", "--quiet", "--dest-compress-format", "zstd",
                    f"docker-archive:{source_archive[0]}", f"oci:{layout}:1"], check=True, capture_output=True)
    # preserve digests: skopeo's blob cache would otherwise reuse the gzip layer it pushed before
    registry.skopeo_copy(f"oci:{layout}:1", "lib/bbz:1", ("--preserve-digests",))
    store = Store(tmp_path / "store")
    image_id = pull.pull(store, f"{registry.addr}/lib/bbz:1")
    layer = store.get(image_id).record.layers[0]
    assert layer.media_type == "application/vnd.oci.image.layer.v1.tar+zstd"
    assert layer.digest != layer.diff_id and (store.get(image_id).tree / "bin" / "busybox").exists()
    # a save of it carries the layer uncompressed again, with the same image ID
    out = io.BytesIO()
    archive.save(store, [image_id], out)
    assert archive.load(Store(tmp_path / "b"), io.BytesIO(out.getvalue())) == [f"Loaded image ID: {image_id}"]


@pytest.mark.parametrize("user", ["root", "nobody"])
def test_brandpy_run_of_a_pulled_image(registry, world_tmp, user):
    """`brandpy image pull`, then `brandpy run --image`: the image's
    Entrypoint, Cmd, Env and WorkingDir are the defaults, run's options
    override them, and the image stays as it was."""
    root = tempfile.mkdtemp(dir=world_tmp)
    prefix = []
    if user == "nobody":
        os.chown(root, 65534, 65534)
        prefix = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
    env = {**os.environ, "BRANDPY_ROOT": root, "HOME": root}
    ref = f"{registry.addr}/lib/bb:1"

    def brandpy(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([*prefix, sys.executable, "-m", "brandpy", *args], env=env,
                              cwd="/", capture_output=True, text=True, timeout=120)

    assert brandpy("image", "pull", ref).returncode == 0
    r = brandpy("run", "--image", ref)
    assert (r.returncode, r.stdout) == (0, "hello from /tmp\n"), r
    r = brandpy("run", "--image", ref, "-e", "GREETING=bye", "-w", "/etc", "--",
                "echo $GREETING from $PWD > /tmp/x; cat /tmp/x")
    assert r.stdout == "bye from /etc\n", r
    r = brandpy("run", "--image", ref, "--entrypoint", "/bin/cat", "--", "/tmp/x")
    assert r.returncode == 1 and "No such file" in r.stderr, r   # a fresh container each run
    r = brandpy("run", "--image", f"{registry.addr}/lib/nosuch:1")
    assert r.returncode == 125 and "No such image" in r.stderr, r
    assert not list(Path(tempfile.gettempdir()).glob("brandpy-run-*")), "scratch rootfs left"
