"""Cross-checks with skopeo and umoci: docker-archive both ways, OCI layouts both ways."""
from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from brandpy.images import archive, importer, ocilayout
from brandpy.images.store import Store
from tests.images_store.helpers import tree_listing

pytestmark = pytest.mark.skipif(shutil.which("skopeo") is None, reason="skopeo is not installed")


def skopeo(*args: str) -> str:
    return subprocess.run(["skopeo", *args], check=True, capture_output=True, text=True).stdout


@pytest.fixture
def image(tmp_path, busybox_tar):
    s = Store(tmp_path / "a")
    image_id = importer.import_rootfs(s, open(busybox_tar, "rb"), tag="x/bb:1", changes=["CMD /bin/sh"])
    return s, image_id


def test_save_skopeo_load_keeps_image_id(image, tmp_path):
    s, image_id = image
    ours = tmp_path / "ours.tar"
    with open(ours, "wb") as f:
        archive.save(s, ["x/bb:1"], f)
    # skopeo reads ours
    raw = json.loads(skopeo("inspect", "--raw", f"docker-archive:{ours}"))
    assert raw["config"]["digest"] == image_id
    # skopeo writes its own docker-archive from ours; we load it with the same ID
    theirs = tmp_path / "theirs.tar"
    skopeo("copy", "--quiet", f"docker-archive:{ours}", f"docker-archive:{theirs}:y/bb:2")
    b = Store(tmp_path / "b")
    assert archive.load(b, open(theirs, "rb")) == ["Loaded image: y/bb:2"]
    assert b.get("y/bb:2").id == image_id
    # and a compressed-layer archive skopeo made from an OCI layout of it
    oci = tmp_path / "oci"
    skopeo("copy", "--quiet", f"docker-archive:{ours}", f"oci:{oci}:v1")
    again = tmp_path / "again.tar"
    skopeo("copy", "--quiet", f"oci:{oci}:v1", f"docker-archive:{again}:z/bb:3")
    want = json.loads(skopeo("inspect", "--raw", f"docker-archive:{again}"))["config"]["digest"]
    c = Store(tmp_path / "c")
    archive.load(c, open(again, "rb"))
    assert c.get("z/bb:3").id == want
    assert tree_listing(c.get("z/bb:3").tree) == tree_listing(s.get("x/bb:1").tree)


def test_oci_layout_export_read_by_skopeo_and_umoci(image, tmp_path):
    s, image_id = image
    layout = tmp_path / "layout"
    ocilayout.export_layout(s, ["x/bb:1"], layout)
    raw = json.loads(skopeo("inspect", "--raw", f"oci:{layout}:1"))
    assert raw["config"]["digest"] == image_id
    assert raw["mediaType"] == "application/vnd.oci.image.manifest.v1+json"
    if shutil.which("umoci"):
        subprocess.run(["umoci", "unpack", "--rootless", "--image", f"{layout}:1", str(tmp_path / "bundle")],
                       check=True, capture_output=True)
        assert (tmp_path / "bundle" / "rootfs" / "bin" / "busybox").exists()
        cfg = json.loads((tmp_path / "bundle" / "config.json").read_text())
        assert cfg["process"]["args"] == ["/bin/sh", "-c", "/bin/sh"]


def test_oci_layout_import_from_skopeo(image, tmp_path):
    s, _ = image
    ours = tmp_path / "ours.tar"
    with open(ours, "wb") as f:
        archive.save(s, ["x/bb:1"], f)
    layout = tmp_path / "sk"
    skopeo("copy", "--quiet", f"docker-archive:{ours}", f"oci:{layout}:v9")   # gzip layers, OCI config
    want = json.loads(skopeo("inspect", "--raw", f"oci:{layout}:v9"))["config"]["digest"]
    b = Store(tmp_path / "b")
    found = ocilayout.import_layout(b, layout, repo="imported/bb")
    assert found == [(want, ["imported/bb:v9"])]
    img = b.get("imported/bb:v9")
    assert img.record.layers[0].media_type == "application/vnd.oci.image.layer.v1.tar+gzip"
    # a docker load of the OCI layout as a tar works too (no manifest.json)
    tarball = tmp_path / "layout.tar"
    subprocess.run(["tar", "-C", str(layout), "-cf", str(tarball), "."], check=True)
    assert archive.load(Store(tmp_path / "c"), open(tarball, "rb")) == [f"Loaded image ID: {want}"]
