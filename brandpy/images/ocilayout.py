"""OCI image layouts (index.json + blobs/): importing images from one (a
directory, or the OCI half of a docker-archive) and exporting to a directory."""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Protocol

from brandpy import pathnames
from brandpy.images import manifests as mf
from brandpy.images import reference
from brandpy.images.fsutil import atomic_write, atomic_write_json
from brandpy.images.store import DigestMismatch, LayerRecord, Store, StoreError, Transaction, sha256_bytes

REF_NAME = "org.opencontainers.image.ref.name"
CONTAINERD_NAME = "io.containerd.image.name"
_MAX_JSON = 16 << 20


def blob_name(digest: str) -> str:
    algo, _, hexpart = digest.partition(":")
    return f"blobs/{algo}/{hexpart}"


class Source(Protocol):
    """Files of a layout, by their path inside it."""

    def read(self, name: str) -> bytes: ...

    def stage(self, name: str, expected: str | None) -> tuple[str, int]:
        """Make the file a staged blob of the transaction; (digest, size)."""


class DirSource:
    def __init__(self, root: Path, txn: Transaction):
        self.root, self.txn = root, txn

    def _path(self, name: str) -> Path:
        try:
            return pathnames.inside(self.root, name)
        except pathnames.InvalidName:
            raise StoreError(f"{name!r} points outside the layout {self.root}") from None

    def read(self, name: str) -> bytes:
        path = self._path(name)
        try:
            if path.stat().st_size > _MAX_JSON:
                raise StoreError(f"{name} in {self.root} is too large for a JSON document")
            return path.read_bytes()
        except FileNotFoundError:
            raise StoreError(f"{self.root} is missing {name}; it is not a complete OCI layout") from None

    def stage(self, name: str, expected: str | None) -> tuple[str, int]:
        have = self.txn.blob_path(expected) if expected is not None else None
        if expected is not None and have is not None:
            return expected, have.stat().st_size
        try:
            with open(self._path(name), "rb") as f:
                return self.txn.write_blob(f, expected, what=f"blob {name}")
        except FileNotFoundError:
            raise StoreError(f"{self.root} is missing {name}; it is not a complete OCI layout") from None


def read_blob_json(src: Source, desc: dict, what: str) -> tuple[bytes, dict]:
    raw = src.read(blob_name(desc["digest"]))
    if sha256_bytes(raw) != desc["digest"]:
        raise DigestMismatch(f"{what} {desc['digest']} failed digest verification "
                             f"(content is {sha256_bytes(raw)}); the layout is corrupt")
    try:
        return raw, json.loads(raw)
    except ValueError:
        raise StoreError(f"{what} {desc['digest']} is not valid JSON") from None


def import_manifest(txn: Transaction, src: Source, raw: bytes, digest: str, what: str) -> str:
    """Stage the image a manifest describes; returns its image ID."""
    m = json.loads(raw)
    config_raw, config = read_blob_json(src, m["config"], "image config")
    diff_ids = config.get("rootfs", {}).get("diff_ids", [])
    if len(diff_ids) != len(m.get("layers", [])):
        raise StoreError(f"{what}: the manifest lists {len(m.get('layers', []))} layers but the "
                         f"config has {len(diff_ids)} diff_ids")
    records = []
    for i, (desc, diff_id) in enumerate(zip(m["layers"], diff_ids, strict=True)):
        mf.layer_compression(desc["mediaType"])
        blob, size = src.stage(blob_name(desc["digest"]), desc["digest"])
        name = f"{what} layer {i + 1} ({desc['digest'][7:19]})"
        usize = txn.layer_size(diff_id) if txn.has_layer(diff_id) else txn.unpack_blob(blob, diff_id, name).size
        records.append(LayerRecord(diff_id, usize, blob, desc["mediaType"], size))
    manifest = txn.put_bytes(raw, digest, what="manifest")
    return txn.add_image(config_raw, records, manifest=(manifest, mf.media_type_of(raw)))


def import_index(txn: Transaction, src: Source, repo: str | None = None,
                 platform: tuple[str, str] = ("linux", "amd64")) -> list[tuple[str, list[str]]]:
    """Stage every image index.json names; returns [(image ID, [references])].

    A descriptor's name is its io.containerd.image.name annotation, else its
    org.opencontainers.image.ref.name when that is a full reference, else
    repo:ref.name when repo is given; otherwise the image is left untagged."""
    try:
        index = json.loads(src.read("index.json"))
    except ValueError:
        raise StoreError("index.json is not valid JSON") from None
    out = []
    for top in index.get("manifests", []):
        desc = top
        raw, doc = read_blob_json(src, desc, "manifest")
        if mf.media_type_of(raw, desc.get("mediaType")) in mf.INDEX_TYPES:
            desc = mf.choose_platform(doc, *platform)
            raw, doc = read_blob_json(src, desc, "manifest")
        image_id = import_manifest(txn, src, raw, desc["digest"], f"image {desc['digest'][7:19]}")
        out.append((image_id, _names(top.get("annotations") or {}, repo)))
    return out


def _names(ann: dict, repo: str | None) -> list[str]:
    if ann.get(CONTAINERD_NAME):
        return [ann[CONTAINERD_NAME]]
    ref_name = ann.get(REF_NAME)
    if not ref_name:
        return []
    if "/" in ref_name or ":" in ref_name:
        try:
            return [str(reference.parse(ref_name))]
        except reference.InvalidReference:
            pass
    return [f"{repo}:{ref_name}"] if repo else []


def import_layout(store: Store, path: Path, repo: str | None = None) -> list[tuple[str, list[str]]]:
    """Import an OCI layout directory; returns [(image ID, [references])]."""
    if not (path / "oci-layout").exists():
        raise StoreError(f"{path} is not an OCI image layout (no oci-layout file)")
    with store.transaction() as txn:
        found = import_index(txn, DirSource(path, txn), repo)
        for image_id, refs in found:
            for ref in refs:
                txn.tag(ref, image_id)
    return found


def export_layout(store: Store, names: list[str], dest: Path) -> None:
    """Write images to an OCI layout directory (created, or added to), one
    index entry per name, annotated with the tag and the full name."""
    (dest / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)
    if not (dest / "oci-layout").exists():
        atomic_write_json(dest / "oci-layout", {"imageLayoutVersion": "1.0.0"})
    try:
        index = json.loads((dest / "index.json").read_bytes())
    except FileNotFoundError:
        index = {"schemaVersion": 2, "mediaType": mf.OCI_INDEX, "manifests": []}
    for name in names:
        image_id, ref = store.resolve_ref(name)
        image = store.get(image_id)
        rec = image.record
        config = store.config_bytes(rec.id)

        def put(digest: str) -> None:
            target = dest / blob_name(digest)
            if not target.exists():
                tmp = target.with_name(f".tmp-{target.name}")
                shutil.copyfile(store.blob_path(digest), tmp)
                os.replace(tmp, target)

        put(rec.id)
        for layer in rec.layers:
            put(layer.digest)
        if rec.manifest and rec.manifest_media_type == mf.OCI_MANIFEST:
            raw = store.blob_path(rec.manifest).read_bytes()
        else:
            raw, _ = mf.build_manifest(rec, len(config), oci=True)
        digest = sha256_bytes(raw)
        if not (dest / blob_name(digest)).exists():
            atomic_write(dest / blob_name(digest), raw)
        desc = {"mediaType": mf.OCI_MANIFEST, "digest": digest, "size": len(raw),
                "platform": {"architecture": image.config.get("architecture", "amd64"),
                             "os": image.config.get("os", "linux")}}
        if ref is not None and ref.tag:
            desc["annotations"] = {CONTAINERD_NAME: str(ref), REF_NAME: ref.tag}
            index["manifests"] = [d for d in index["manifests"]
                                  if (d.get("annotations") or {}).get(REF_NAME) != ref.tag]
        index["manifests"].append(desc)
    atomic_write_json(dest / "index.json", index)
