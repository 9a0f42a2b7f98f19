"""Images as the Docker Engine API shows them: inspect, list summary, history."""
from __future__ import annotations

from datetime import UTC, datetime

from brandpy.images.store import Image


def unix_time(rfc3339: str) -> int:
    try:
        return int(datetime.fromisoformat(rfc3339.replace("Z", "+00:00")).timestamp())
    except ValueError:
        return 0


def inspect(image: Image) -> dict:
    """GET /images/{name}/json."""
    cfg = image.config
    last_tag = image.record.last_tag_time
    return {
        "Id": image.id,
        "RepoTags": image.repo_tags,
        "RepoDigests": image.repo_digests,
        "Parent": image.record.parent,
        "Comment": cfg.get("comment", ""),
        "Created": image.created,
        "DockerVersion": cfg.get("docker_version", ""),
        "Author": cfg.get("author", ""),
        "Config": cfg.get("config") or {},
        "Architecture": cfg.get("architecture", "amd64"),
        **({"Variant": cfg["variant"]} if cfg.get("variant") else {}),
        "Os": cfg.get("os", "linux"),
        "Size": image.size,
        "GraphDriver": {"Name": "brandpy", "Data": {"RootDir": str(image.tree)}},
        "RootFS": {"Type": "layers", "Layers": image.diff_ids},
        "Metadata": {"LastTagTime": datetime.fromtimestamp(last_tag, UTC).isoformat().replace(
            "+00:00", "Z") if last_tag else "0001-01-01T00:00:00Z"},
    }


def summary(image: Image, containers: int = -1) -> dict:
    """One entry of GET /images/json."""
    return {
        "Id": image.id,
        "ParentId": image.record.parent,
        "RepoTags": image.repo_tags,
        "RepoDigests": image.repo_digests,
        "Created": unix_time(image.created),
        "Size": image.size,
        "SharedSize": -1,
        "Labels": (image.config.get("config") or {}).get("Labels") or {},
        "Containers": containers,
    }


def history(image: Image) -> list[dict]:
    """GET /images/{name}/history: newest first; only the top entry has an ID."""
    entries = image.config.get("history") or []
    sizes = [layer.size for layer in image.record.layers]
    out, layer = [], 0
    for h in entries:
        size = 0
        if not h.get("empty_layer") and layer < len(sizes):
            size, layer = sizes[layer], layer + 1
        out.append({"Id": "<missing>", "Created": unix_time(h.get("created", "")),
                    "CreatedBy": h.get("created_by", ""), "Tags": None, "Size": size,
                    "Comment": h.get("comment", "")})
    out.reverse()
    if out:
        out[0]["Id"], out[0]["Tags"] = image.id, image.repo_tags or None
    return out

