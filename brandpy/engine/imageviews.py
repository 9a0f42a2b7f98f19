"""Images as the API shows them (ImageSummary, ImageInspect, history),
read from the images store."""

from __future__ import annotations

from typing import TYPE_CHECKING

from brandpy.images import reference
from brandpy.images.store import Image

from . import timefmt
from .filters import Filters

if TYPE_CHECKING:
    from .engine import Engine

LIST_FILTERS = ("before", "dangling", "label", "reference", "since", "until")


def names(engine: Engine) -> dict[str, str]:
    """Image ID -> a name to show for it (its first tag, else the ID)."""
    out = {}
    for img in engine.store.images():
        out[img.id] = img.repo_tags[0] if img.repo_tags else img.id
    return out


def _created(img: Image) -> int:
    return timefmt.to_ns(img.created) // 1_000_000_000


def summary(img: Image, containers: int = -1) -> dict:
    cfg = img.config.get("config") or {}
    return {"Id": img.id, "ParentId": img.record.parent, "RepoTags": img.repo_tags,
            "RepoDigests": img.repo_digests, "Created": _created(img), "Size": img.size,
            "SharedSize": -1, "Labels": cfg.get("Labels") or {}, "Containers": containers}


def summaries(engine: Engine, f: Filters | None = None, show_all: bool = True,
              with_containers: bool = False) -> list[dict]:
    f = f or Filters(None, LIST_FILTERS)
    images = engine.store.images()
    parents = {img.record.parent for img in images}
    bounds = {k: _created(engine.store.get(f.get(k)[0])) for k in ("before", "since") if k in f}
    out = []
    for img in sorted(images, key=_created, reverse=True):
        dangling = not img.repo_tags
        # Without --all, untagged images that are parents (build steps) are hidden.
        if not show_all and dangling and img.id in parents:
            continue
        want_dangling = f.bool("dangling")
        if want_dangling is not None and want_dangling != dangling:
            continue
        if not f.match_labels((img.config.get("config") or {}).get("Labels") or {}):
            continue
        tags, digests = img.repo_tags, img.repo_digests
        if "reference" in f:
            # as dockerd: only the references that match are listed
            patterns = f.get("reference")
            tags = [t for t in tags if _ref_match(t, patterns)]
            digests = [d for d in digests if _ref_match(d, patterns)]
            if not tags and not digests:
                continue
        if "before" in bounds and _created(img) >= bounds["before"]:
            continue
        if "since" in bounds and _created(img) <= bounds["since"]:
            continue
        count = (sum(1 for r in engine.containers if r.image_id == img.id)
                 if with_containers else -1)
        out.append(dict(summary(img, count), RepoTags=tags, RepoDigests=digests))
    return out


def _ref_match(ref: str, patterns: list[str]) -> bool:
    """NAME:TAG or NAME@DIGEST matches a pattern in full or by its name."""
    from fnmatch import fnmatchcase
    name = ref.split("@")[0] if "@" in ref else ref.rsplit(":", 1)[0]
    return any(fnmatchcase(ref, p) or fnmatchcase(name, p) for p in patterns)


# container.Config's fields, which dockerd's image inspect always shows
CONFIG_FIELDS = {"Hostname": "", "Domainname": "", "User": "", "AttachStdin": False,
                 "AttachStdout": False, "AttachStderr": False, "Tty": False, "OpenStdin": False,
                 "StdinOnce": False, "Env": None, "Cmd": None, "Image": "", "Volumes": None,
                 "WorkingDir": "", "Entrypoint": None, "OnBuild": None, "Labels": None}


def inspect(img: Image) -> dict:
    cfg = img.config
    return {
        "Id": img.id, "RepoTags": img.repo_tags, "RepoDigests": img.repo_digests,
        "Parent": img.record.parent, "Comment": cfg.get("comment", ""),
        "Created": img.created, "Container": cfg.get("container", ""),
        "ContainerConfig": {**CONFIG_FIELDS, **(cfg.get("container_config") or {})},
        "DockerVersion": cfg.get("docker_version", ""),
        "Author": cfg.get("author", ""),
        "Config": {**CONFIG_FIELDS, **(cfg.get("config") or {})},
        "Architecture": cfg.get("architecture", "amd64"), "Os": cfg.get("os", "linux"),
        "Variant": cfg.get("variant"), "Size": img.size,
        "GraphDriver": {"Name": "brandpy-linkfarm", "Data": {"Tree": str(img.tree)}},
        "RootFS": {"Type": "layers", "Layers": img.diff_ids},
        "Metadata": {"LastTagTime": timefmt.iso(int(img.record.last_tag_time * 1e9))
                     if img.record.last_tag_time else timefmt.ZERO},
    }


def history(img: Image) -> list[dict]:
    """Newest first; layer-less steps have size 0, the top one has the ID."""
    entries = img.config.get("history") or [{"created": img.created, "created_by": ""}]
    sizes = [layer.size for layer in img.record.layers]
    out = []
    for h in entries:
        size = 0 if h.get("empty_layer") or not sizes else sizes.pop(0)
        out.append({"Id": "<missing>", "Created": timefmt.to_ns(h.get("created", ""))
                    // 1_000_000_000, "CreatedBy": h.get("created_by", ""), "Tags": None,
                    "Size": size, "Comment": h.get("comment", "")})
    out.reverse()
    out[0].update(Id=img.id, Tags=img.repo_tags or None)
    return out


def familiar(name: str) -> str:
    return reference.parse(name).familiar()
