"""Manifest and index media types, parsing, platform choice, and building
manifests for images in the store."""
from __future__ import annotations

import json

from brandpy.images.store import ImageRecord, StoreError

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"
DOCKER_SCHEMA1 = ("application/vnd.docker.distribution.manifest.v1+json",
                  "application/vnd.docker.distribution.manifest.v1+prettyjws")
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
OCI_LAYER_GZIP = OCI_LAYER + "+gzip"
OCI_LAYER_ZSTD = OCI_LAYER + "+zstd"

INDEX_TYPES = (OCI_INDEX, DOCKER_LIST)
MANIFEST_TYPES = (OCI_MANIFEST, DOCKER_MANIFEST)
ACCEPT = ", ".join((OCI_INDEX, DOCKER_LIST, OCI_MANIFEST, DOCKER_MANIFEST))

LAYER_TYPES = {
    OCI_LAYER: None, OCI_LAYER_GZIP: "gzip", OCI_LAYER_ZSTD: "zstd",
    "application/vnd.docker.image.rootfs.diff.tar": None, DOCKER_LAYER_GZIP: "gzip",
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip": "gzip",
    "application/vnd.oci.image.layer.nondistributable.v1.tar": None,
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip": "gzip",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd": "zstd",
}
_OCI_FOR = {None: OCI_LAYER, "gzip": OCI_LAYER_GZIP, "zstd": OCI_LAYER_ZSTD}
_DOCKER_FOR = {None: "application/vnd.docker.image.rootfs.diff.tar", "gzip": DOCKER_LAYER_GZIP}


def layer_type_for(compression: str | None, oci: bool = True) -> str:
    return (_OCI_FOR if oci else _DOCKER_FOR)[compression]


def media_type_of(raw: bytes, header_type: str | None = None) -> str:
    """The manifest's own mediaType field wins over a Content-Type header."""
    try:
        doc = json.loads(raw)
    except ValueError:
        raise StoreError("manifest is not valid JSON") from None
    mt = doc.get("mediaType") if isinstance(doc, dict) else None
    if not mt:
        mt = header_type.split(";")[0].strip() if header_type else None
    if not mt and isinstance(doc, dict):
        mt = OCI_INDEX if "manifests" in doc else OCI_MANIFEST if "config" in doc else None
    if mt in DOCKER_SCHEMA1:
        raise StoreError("this image uses the Docker schema1 manifest format, which brandpy does not "
                         "support; push it again with a current Docker or skopeo")
    if mt not in INDEX_TYPES + MANIFEST_TYPES:
        raise StoreError(f"unsupported manifest media type {mt!r}")
    return mt


def platform_name(p: dict) -> str:
    return "/".join(x for x in (p.get("os", "?"), p.get("architecture", "?"), p.get("variant")) if x)


def choose_platform(index: dict, os_: str = "linux", arch: str = "amd64") -> dict:
    """The descriptor for os/arch in an index, or an error naming what there is."""
    found = [m for m in index.get("manifests", [])
             if m.get("platform", {}).get("os") == os_ and m.get("platform", {}).get("architecture") == arch]
    if found:
        return found[0]
    available = sorted({platform_name(m.get("platform", {})) for m in index.get("manifests", [])
                        if m.get("platform")})
    raise StoreError(f"no matching manifest for {os_}/{arch} in the manifest list entries "
                     f"(available: {', '.join(available) or 'none'})")


def layer_compression(media_type: str) -> str | None:
    if media_type not in LAYER_TYPES:
        raise StoreError(f"unsupported layer media type {media_type!r}")
    return LAYER_TYPES[media_type]


def build_manifest(rec: ImageRecord, config_size: int, oci: bool | None = None) -> tuple[bytes, str]:
    """A manifest for a stored image: Docker schema2 when its layers carry
    Docker media types (as pulled from a Docker registry) and oci is not
    forced, OCI otherwise."""
    docker = not oci and bool(rec.layers) and all(
        layer.media_type.startswith("application/vnd.docker.") for layer in rec.layers)
    mt, cfg_mt = (DOCKER_MANIFEST, DOCKER_CONFIG) if docker else (OCI_MANIFEST, OCI_CONFIG)
    doc = {
        "schemaVersion": 2,
        "mediaType": mt,
        "config": {"mediaType": cfg_mt, "digest": rec.id, "size": config_size},
        "layers": [{"mediaType": layer.media_type if docker else layer_type_for(layer_compression(layer.media_type)),
                    "digest": layer.digest, "size": layer.blob_size} for layer in rec.layers],
    }
    return json.dumps(doc, indent=3).encode(), mt
