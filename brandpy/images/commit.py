"""`docker commit`: a container's changes become a new image layer."""
from __future__ import annotations

import copy
import json
from collections.abc import Iterable
from pathlib import Path

from brandpy.images import changes as changelib
from brandpy.images import rootfs as rootfslib
from brandpy.images.importer import OCI_LAYER_TAR, now_rfc3339
from brandpy.images.store import LayerRecord, Store


def commit(store: Store, container_rootfs: Path, image: str, *, tag: str | None = None,
           changes: Iterable[str] = (), message: str = "", author: str = "",
           config: dict | None = None, created_by: str = "",
           container: tuple[str, dict] | None = None) -> str:
    """Commit container_rootfs (made from image) as a new image; returns its ID.

    config replaces the image's container config (Env, Cmd, …) when given
    (the engine passes the container's); changes (Dockerfile instructions)
    are applied on top. container: the committed container's ID and
    config, which Docker's image config keeps (`container`,
    `container_config`)."""
    base = store.get(image)
    cfg = copy.deepcopy(base.config)
    container_config = copy.deepcopy(config if config is not None else cfg.get("config") or {})
    for line in changes:
        changelib.apply(container_config, line)
    created = now_rfc3339()
    history: dict[str, str | bool] = {"created": created}
    if author:
        history["author"] = author
    if created_by:
        history["created_by"] = created_by
    if message:
        history["comment"] = message
    with store.transaction() as txn:
        scratch = txn.tmpdir("commit") / "layer.tar"
        with open(scratch, "wb") as f:
            n = rootfslib.write_changes(container_rootfs, base.tree, f)
        layers = list(base.record.layers)
        if n:
            with open(scratch, "rb") as f:
                digest, size = txn.write_blob(f, what="committed layer")
            info = txn.unpack_blob(digest, digest, "committed layer")
            layers.append(LayerRecord(digest, info.size, digest, OCI_LAYER_TAR, size))
            cfg["rootfs"]["diff_ids"] = [x.diff_id for x in layers]
        else:
            history["empty_layer"] = True
        cfg["config"] = container_config
        if container is not None:
            cfg["container"], cfg["container_config"] = container[0], copy.deepcopy(container[1])
        cfg["created"] = created
        cfg["history"] = [*cfg.get("history", []), history]
        if author:
            cfg["author"] = author
        if message:
            cfg["comment"] = message
        raw = json.dumps(cfg, separators=(",", ":")).encode()
        image_id = txn.add_image(raw, layers, parent=base.id)
        if tag:
            txn.tag(tag, image_id)
    return image_id
