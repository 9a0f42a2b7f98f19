"""`docker import`: a rootfs tar (plain or compressed) becomes a one-layer image."""
from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import BinaryIO

from brandpy.images import changes as changelib
from brandpy.images.compression import decompressed
from brandpy.images.store import LayerRecord, Store

OCI_LAYER_TAR = "application/vnd.oci.image.layer.v1.tar"


def now_rfc3339() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def new_config(diff_ids: list[str], container_config: dict, *, comment: str = "",
               created: str | None = None, history: list[dict] | None = None,
               author: str = "") -> bytes:
    """Serialise an image config the way Docker lays it out."""
    created = created or now_rfc3339()
    cfg: dict = {
        "architecture": "amd64",
        "config": container_config,
        "created": created,
        "history": history if history is not None else [{"created": created, "comment": comment}],
        "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    }
    if comment:
        cfg["comment"] = comment
    if author:
        cfg["author"] = author
    return json.dumps(cfg, separators=(",", ":")).encode()


def apply_changes(container_config: dict, lines: Iterable[str]) -> dict:
    for line in lines:
        changelib.apply(container_config, line)
    return container_config


def import_rootfs(store: Store, src: BinaryIO, *, tag: str | None = None, changes: Iterable[str] = (),
                  message: str = "", source: str = "-") -> str:
    """Import a rootfs tar; returns the new image ID. `source` names the input
    in the history comment as Docker does ("Imported from -")."""
    config = apply_changes({}, changes)
    with store.transaction() as txn:
        plain, _ = decompressed(src)
        digest, size = txn.write_blob(plain, what="rootfs tar")
        txn.unpack_blob(digest, digest, name="rootfs tar")
        cfg = new_config([digest], config, comment=message or f"Imported from {source}")
        image_id = txn.add_image(cfg, [LayerRecord(digest, size, digest, OCI_LAYER_TAR, size)])
        if tag:
            txn.tag(tag, image_id)
    return image_id

