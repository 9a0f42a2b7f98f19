"""Building real tars, layers and docker-archives for the image store tests."""
from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import stat
import tarfile
from pathlib import Path

import zstandard


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def make_tar(entries: list[tuple]) -> bytes:
    """entries: (name, kind, extra) with kind file (extra=bytes), dir, symlink
    (extra=target), link (extra=target), fifo, char (extra=(major, minor));
    an optional 4th item is a dict of TarInfo attributes (uid, gid, mode)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for entry in entries:
            name, kind, extra = entry[:3]
            attrs = entry[3] if len(entry) > 3 else {}
            info = tarfile.TarInfo(name)
            info.mtime = 1700000000
            info.mode = 0o755 if kind == "dir" else 0o644
            data = None
            if kind == "file":
                data = extra
                info.size = len(data)
            elif kind == "dir":
                info.type = tarfile.DIRTYPE
            elif kind == "symlink":
                info.type, info.linkname = tarfile.SYMTYPE, extra
            elif kind == "link":
                info.type, info.linkname = tarfile.LNKTYPE, extra
            elif kind == "fifo":
                info.type = tarfile.FIFOTYPE
            elif kind == "char":
                info.type = tarfile.CHRTYPE
                info.devmajor, info.devminor = extra
            for k, v in attrs.items():
                setattr(info, k, v)
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def compress(data: bytes, how: str | None) -> bytes:
    if how == "gzip":
        return gzip.compress(data, mtime=0)
    if how == "zstd":
        return zstandard.ZstdCompressor().compress(data)
    return data


def config_for(layers: list[bytes], **container_config) -> bytes:
    return json.dumps({
        "architecture": "amd64", "os": "linux", "created": "2024-01-02T03:04:05Z",
        "config": container_config,
        "rootfs": {"type": "layers", "diff_ids": [sha(layer) for layer in layers]},
        "history": [{"created": "2024-01-02T03:04:05Z", "created_by": f"layer {i}"}
                    for i in range(len(layers))],
    }).encode()


def legacy_archive(layers: list[bytes], repo_tags: list[str], compressions: list[str | None] | None = None,
                   **container_config) -> bytes:
    """A pre-25 docker save layout: <id>/layer.tar, <config>.json, manifest.json."""
    compressions = compressions or [None] * len(layers)
    config = config_for(layers, **container_config)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        def add(name: str, data: bytes) -> None:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        names = []
        for i, (layer, how) in enumerate(zip(layers, compressions, strict=True)):
            name = f"{i:064x}/layer.tar"
            add(name, compress(layer, how))
            names.append(name)
        add(sha(config)[7:] + ".json", config)
        add("manifest.json", json.dumps([{"Config": sha(config)[7:] + ".json", "RepoTags": repo_tags,
                                          "Layers": names}]).encode())
    return buf.getvalue()


def store_listing(root: Path) -> dict[str, object]:
    """Everything in a store: path → (type, size, mode, content digest for files)."""
    out: dict[str, object] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = os.path.join(dirpath, name)
            rel = os.path.relpath(p, root)
            st = os.lstat(p)
            if stat.S_ISREG(st.st_mode):
                with open(p, "rb") as f:
                    out[rel] = ("f", st.st_size, st.st_mode, hashlib.sha256(f.read()).hexdigest())
            else:
                out[rel] = ("d" if os.path.isdir(p) else "o", st.st_mode)
    return out


def tree_listing(root: Path) -> dict[str, tuple]:
    """A tree's shape: path → (type, content or link target)."""
    out: dict[str, tuple] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = os.path.join(dirpath, name)
            rel = os.path.relpath(p, root)
            st = os.lstat(p)
            if stat.S_ISLNK(st.st_mode):
                out[rel] = ("l", os.readlink(p))
            elif stat.S_ISDIR(st.st_mode):
                out[rel] = ("d",)
            elif stat.S_ISREG(st.st_mode):
                with open(p, "rb") as f:
                    out[rel] = ("f", f.read())
            else:
                out[rel] = ("special", stat.S_IFMT(st.st_mode), st.st_rdev)
    return out
