"""`docker pull`: fetch an image from a registry into the store.

Progress is reported as dicts shaped like the Docker Engine API's JSON
progress messages ({"status", "id", "progressDetail"}), so the API can send
them as they are and the CLI renders its usual per-layer lines. Everything
is staged in a store transaction: an error or an interrupted pull registers
nothing, and running the pull again starts cleanly."""
from __future__ import annotations

import http.client
import json
import time
from collections.abc import Callable
from pathlib import Path

from brandpy.images import manifests as mf
from brandpy.images import reference
from brandpy.images.auth import Credentials, credentials_for
from brandpy.images.compression import STREAM_ERRORS as DECOMPRESS_ERRORS
from brandpy.images.endpoints import Registries
from brandpy.images.registry import STREAM_ERRORS, Client, RegistryError, on_endpoints
from brandpy.images.store import DigestMismatch, LayerRecord, Store, Transaction, sha256_bytes

Progress = Callable[[dict], None]


def _short(digest: str) -> str:
    return digest.removeprefix("sha256:")[:12]


class _Throttle:
    """At most one progress message per 100 ms per layer, plus the last one."""

    def __init__(self, emit: Progress, status: str, layer_id: str, total: int):
        self.emit, self.status, self.id, self.total, self.last = emit, status, layer_id, total, 0.0

    def __call__(self, current: int) -> None:
        now = time.monotonic()
        if now - self.last >= 0.1 or current >= self.total:
            self.last = now
            self.emit({"status": self.status, "progressDetail": {"current": current, "total": self.total},
                       "id": self.id})


def pull(store: Store, name: str, *, progress: Progress | None = None, creds: Credentials | None = None,
         docker_config: Path | None = None, platform: tuple[str, str] = ("linux", "amd64"),
         registries: Registries | None = None) -> str:
    """Pull name (tag or digest reference) and return the image ID, from
    the registries' mirrors first for a Docker Hub image (on_endpoints)."""
    emit: Progress = progress or (lambda msg: None)
    ref = reference.parse(name)
    creds = creds or credentials_for(ref.domain, docker_config) \
        or credentials_for(ref.registry_host, docker_config)
    return on_endpoints(ref, creds, registries,
                        lambda client: _pull_from(store, ref, client, emit, platform))


def _pull_from(store: Store, ref: reference.Reference, client: Client, emit: Progress,
               platform: tuple[str, str]) -> str:
    tag_or_digest = ref.digest or ref.tag or reference.DEFAULT_TAG
    emit({"status": f"Pulling from {ref.path}", "id": tag_or_digest})
    raw, media_type, top_digest = client.get_manifest(tag_or_digest)
    if media_type in mf.INDEX_TYPES:
        desc = mf.choose_platform(json.loads(raw), *platform)
        raw, media_type, digest = client.get_manifest(desc["digest"])
        if media_type not in mf.MANIFEST_TYPES:
            raise RegistryError(f"{ref.familiar()}: the {'/'.join(platform)} entry is not an image manifest")
    else:
        digest = top_digest
    manifest = json.loads(raw)
    config_desc = manifest["config"]
    layer_descs = manifest.get("layers") or []
    for desc in layer_descs:
        mf.layer_compression(desc.get("mediaType", ""))

    resp = client.open_blob(config_desc["digest"])
    config = _read_all(resp, config_desc, "image config", ref)
    if sha256_bytes(config) != config_desc["digest"]:
        raise DigestMismatch(f"image config {config_desc['digest']} from {client.host} failed digest "
                             f"verification (content is {sha256_bytes(config)})")
    diff_ids = json.loads(config).get("rootfs", {}).get("diff_ids", [])
    if len(diff_ids) != len(layer_descs):
        raise RegistryError(f"{ref.familiar()}: the manifest has {len(layer_descs)} layers but the config "
                            f"has {len(diff_ids)} diff_ids; the image is malformed")
    image_id = config_desc["digest"]
    existed = image_id in store.records()

    with store.transaction() as txn:
        todo = [(desc, diff_id) for desc, diff_id in zip(layer_descs, diff_ids, strict=True)
                if txn.blob_path(desc["digest"]) is None or not txn.has_layer(diff_id)]
        for desc, diff_id in zip(layer_descs, diff_ids, strict=True):
            # Docker lists no layers at all for an image it already has.
            if (desc, diff_id) in todo:
                emit({"status": "Pulling fs layer", "progressDetail": {}, "id": _short(desc["digest"])})
            elif todo or not existed:
                emit({"status": "Already exists", "progressDetail": {}, "id": _short(desc["digest"])})
        for desc, _ in todo:
            if txn.blob_path(desc["digest"]) is None:
                _download(txn, client, desc, emit, ref)
            else:
                emit({"status": "Download complete", "progressDetail": {}, "id": _short(desc["digest"])})
        records = []
        for desc, diff_id in zip(layer_descs, diff_ids, strict=True):
            lid = _short(desc["digest"])
            if txn.has_layer(diff_id):
                size = txn.layer_size(diff_id)
            else:
                size = txn.unpack_blob(desc["digest"], diff_id, f"layer {desc['digest']}",
                                       on_read=_Throttle(emit, "Extracting", lid, desc["size"])).size
            if (desc, diff_id) in todo:
                emit({"status": "Pull complete", "progressDetail": {}, "id": lid})
            records.append(LayerRecord(diff_id, size, desc["digest"], desc["mediaType"], desc["size"]))
        manifest_digest = txn.put_bytes(raw, digest, what="manifest")
        txn.add_image(config, records, repo_digest=f"{ref.name}@{top_digest}",
                      manifest=(manifest_digest, media_type))
        if not ref.digest:
            txn.tag(str(ref), image_id)
        previous = store.tags().get(str(ref))
    emit({"status": f"Digest: {top_digest}"})
    shown = ref.familiar()
    if existed and (ref.digest or previous == image_id):
        emit({"status": f"Status: Image is up to date for {shown}"})
    else:
        emit({"status": f"Status: Downloaded newer image for {shown}"})
    return image_id


def _read_all(resp, desc: dict, what: str, ref: reference.Reference) -> bytes:  # noqa: ANN001
    try:
        data = resp.read(desc["size"] + 1)
    except STREAM_ERRORS as e:
        raise RegistryError(f"download of {what} {desc['digest']} for {ref.familiar()} was interrupted "
                            f"({e.__class__.__name__}); run the pull again") from None
    if len(data) != desc["size"]:
        raise DigestMismatch(f"{what} {desc['digest']} has {len(data)} bytes, the manifest says "
                             f"{desc['size']}; run the pull again")
    return data


class _Exact:
    """http.client returns a short body silently when the connection drops; make it an error."""

    def __init__(self, resp, total: int):  # noqa: ANN001
        self.resp, self.total, self.n = resp, total, 0

    def read(self, size: int = -1) -> bytes:
        data = self.resp.read(size)
        self.n += len(data)
        if not data and size and self.n < self.total:
            raise http.client.IncompleteRead(b"", self.total - self.n)
        return data


def _download(txn: Transaction, client: Client, desc: dict, emit: Progress, ref: reference.Reference) -> None:
    lid = _short(desc["digest"])
    resp = client.open_blob(desc["digest"])
    try:
        txn.write_blob(_Exact(resp, desc["size"]), desc["digest"], desc["size"],
                       _Throttle(emit, "Downloading", lid, desc["size"]), what="layer")
    except STREAM_ERRORS + DECOMPRESS_ERRORS as e:
        if isinstance(e, OSError) and not isinstance(e, ConnectionError) and e.errno is not None:
            raise
        raise RegistryError(f"download of layer {desc['digest']} for {ref.familiar()} from {client.host} was "
                            f"interrupted ({e.__class__.__name__}: {e}); nothing was stored, run the pull "
                            "again") from None
    finally:
        resp.close()
    emit({"status": "Verifying Checksum", "progressDetail": {}, "id": lid})
    emit({"status": "Download complete", "progressDetail": {}, "id": lid})
