"""How an image's config and a run's own settings combine into what the
container runs: Docker's create-time merge, shared by the daemon's `docker
create` and `brandpy run --image`."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from brandpy import scratch

from .fsutil import rmtree


def strslice(value: str | list[str] | None) -> list[str] | None:
    if value is None:
        return None
    return [value] if isinstance(value, str) else list(value)


def merge_image_config(cfg: dict, image: dict) -> dict:
    """The container's Config with the image's defaults filled in (Docker's
    daemon/create merge: Env and Labels merged by key, Cmd taken from the
    image only when neither Cmd nor Entrypoint is given)."""
    out = dict(cfg)
    env = list(image.get("Env") or [])
    for e in cfg.get("Env") or []:
        key = e.split("=", 1)[0]
        env = [x for x in env if x.split("=", 1)[0] != key] + [e]
    out["Env"] = env
    out["Labels"] = {**(image.get("Labels") or {}), **(cfg.get("Labels") or {})}
    cmd, entrypoint = strslice(cfg.get("Cmd")), strslice(cfg.get("Entrypoint"))
    if entrypoint == [""]:
        entrypoint = []          # `--entrypoint ""` resets the image's entrypoint
    elif not entrypoint:
        entrypoint = None
    if not entrypoint:
        if not cmd:
            cmd = image.get("Cmd")
        if entrypoint is None:
            entrypoint = image.get("Entrypoint")
    out["Cmd"], out["Entrypoint"] = cmd or None, entrypoint or None
    for key in ("User", "WorkingDir", "StopSignal", "Domainname", "Shell"):
        if not out.get(key) and image.get(key):
            out[key] = image[key]
    if out.get("Healthcheck") is None and image.get("Healthcheck"):
        out["Healthcheck"] = image["Healthcheck"]
    for key in ("ExposedPorts", "Volumes"):
        merged = {**(image.get(key) or {}), **(cfg.get(key) or {})}
        out[key] = merged or None
    if image.get("OnBuild"):
        out["OnBuild"] = image["OnBuild"]
    return out


@contextmanager
def scratch_container(ref: str) -> Iterator[tuple[str, dict]]:
    """A throw-away container rootfs made from an image in the store, with
    the image's config (`brandpy run --image`, `brandpy coverage --image`).
    Raises StoreError (ImageNotFound...) with a message for the user."""
    from . import rootfs
    from .store import Store

    image = Store().get(ref)
    base = Path(scratch.mkdtemp("brandpy-run-"))
    os.chmod(base, 0o755)    # a container user other than its owner must reach /
    try:
        rootfs.create(image.tree, base / "rootfs")
        yield str(base / "rootfs"), image.config.get("config") or {}
    finally:
        rmtree(base)
