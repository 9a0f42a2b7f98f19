"""`GET /distribution/{name}/json` (`docker manifest inspect`'s daemon side,
docker-py's inspect_distribution): what the registry holds for a
reference, without pulling it: the manifest's descriptor and the
platforms it serves (an index's entries, or a single image's config)."""

from __future__ import annotations

import json

from brandpy.images import manifests as mf
from brandpy.images import reference
from brandpy.images.auth import Credentials
from brandpy.images.endpoints import Registries
from brandpy.images.registry import Client, RegistryError, on_endpoints

_MAX_CONFIG = 4 << 20
# ocispec.Platform's fields, as dockerd names them
_PLATFORM = (("architecture", "architecture"), ("os", "os"), ("os.version", "os.version"),
             ("os.features", "os.features"), ("variant", "variant"))


def _platform(doc: dict) -> dict:
    """The fields that are set (dockerd leaves the empty ones out)."""
    return {name: doc[key] for key, name in _PLATFORM if doc.get(key)}


def _inspect(client: Client, ref: reference.Reference) -> dict:
    raw, media_type, digest = client.get_manifest(ref.digest or ref.tag or reference.DEFAULT_TAG)
    doc = json.loads(raw)
    if media_type in mf.INDEX_TYPES:
        platforms = [_platform(m.get("platform") or {}) for m in doc.get("manifests") or []]
    else:
        desc = doc["config"]
        resp = client.open_blob(desc["digest"])
        try:
            config = resp.read(_MAX_CONFIG + 1)
        finally:
            resp.close()
        if len(config) > _MAX_CONFIG:
            raise RegistryError(f"image config {desc['digest']} is larger than 4 MiB")
        platforms = [_platform(json.loads(config))]
    return {"Descriptor": {"mediaType": media_type, "digest": digest, "size": len(raw)},
            "Platforms": platforms}


def inspect(name: str, creds: Credentials | None, registries: Registries) -> dict:
    ref = reference.parse(name)
    return on_endpoints(ref, creds, registries, lambda client: _inspect(client, ref))
