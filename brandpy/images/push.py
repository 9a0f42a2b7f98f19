"""`docker push`: upload a local image to a registry.

Blobs the registry already has are skipped (HEAD), blobs it holds in another
repository of the same registry are mounted, the rest are uploaded; the
manifest goes last. Progress messages are shaped like the Engine API's."""
from __future__ import annotations

from pathlib import Path

from brandpy.images import manifests as mf
from brandpy.images import reference
from brandpy.images.auth import Credentials, credentials_for
from brandpy.images.endpoints import Registries
from brandpy.images.pull import Progress, _short, _Throttle
from brandpy.images.registry import Client
from brandpy.images.store import Store, StoreError


def _mount_sources(store: Store, ref: reference.Reference, digest: str) -> list[str]:
    """Other repositories on the same registry that an image holding this blob came from."""
    out = []
    for rec in store.records().values():
        if digest != rec.id and digest not in (layer.digest for layer in rec.layers):
            continue
        for rd in rec.repo_digests:
            other = reference.parse(rd.partition("@")[0], default_tag=False)
            if other.domain == ref.domain and other.path != ref.path and other.path not in out:
                out.append(other.path)
    return out


def push(store: Store, name: str, *, progress: Progress | None = None, creds: Credentials | None = None,
         docker_config: Path | None = None, registries: Registries | None = None) -> str:
    """Push the local image tagged name (never to a mirror); returns the
    manifest digest."""
    emit: Progress = progress or (lambda msg: None)
    ref = reference.parse(name)
    if ref.digest:
        raise StoreError(f"cannot push a digest reference ({name}); push a tag")
    image = store.get(str(ref))
    rec = image.record
    client = Client(ref, creds or credentials_for(ref.domain, docker_config)
                    or credentials_for(ref.registry_host, docker_config),
                    endpoint=(registries or Registries()).endpoint(ref.registry_host))
    emit({"status": f"The push refers to repository [{ref.name}]"})
    blobs = [(layer.digest, layer.blob_size) for layer in reversed(rec.layers)]
    for digest, _ in blobs:
        emit({"status": "Preparing", "progressDetail": {}, "id": _short(digest)})
    config = store.config_bytes(rec.id)
    for digest, size in [*blobs, (rec.id, len(config))]:
        lid = _short(digest)
        is_layer = digest != rec.id
        if client.blob_exists(digest):
            if is_layer:
                emit({"status": "Layer already exists", "progressDetail": {}, "id": lid})
            continue
        location = None
        for source in _mount_sources(store, ref, digest):
            location = client.mount_blob(digest, source)
            if location is None:
                if is_layer:
                    emit({"status": f"Mounted from {source}", "progressDetail": {}, "id": lid})
                break
        else:
            location = client.start_upload()
        if location is None:
            continue
        with open(store.blob_path(digest), "rb") as f:
            client.upload_blob(location, digest, f, size,
                               _Throttle(emit, "Pushing", lid, size) if is_layer else None)
        if is_layer:
            emit({"status": "Pushed", "progressDetail": {}, "id": lid})
    if rec.manifest and rec.manifest_media_type in mf.MANIFEST_TYPES and store.has_blob(rec.manifest):
        raw, media_type = store.blob_path(rec.manifest).read_bytes(), rec.manifest_media_type
    else:
        raw, media_type = mf.build_manifest(rec, len(config))
    digest = client.put_manifest(ref.tag or reference.DEFAULT_TAG, raw, media_type)
    store.add_repo_digest(rec.id, f"{ref.name}@{digest}")
    emit({"status": f"{ref.tag}: digest: {digest} size: {len(raw)}"})
    emit({"progressDetail": {}, "aux": {"Tag": ref.tag, "Digest": digest, "Size": len(raw)}})
    return digest
