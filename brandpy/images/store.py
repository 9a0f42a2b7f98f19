"""The image store: blobs, unpacked layers, image trees, records and tags.

Layout under the store root (default: <data root>/images)::

    blobs/sha256/<hex>    content-addressed blobs: configs, manifests, layer blobs
    layers/<hex>/         a layer tar unpacked once, named by its diffID
    trees/<hex>/          an image's flattened tree, named by its top chainID
    images.json           image records and tags: the only metadata, replaced atomically
    tmp/                  transactions in flight (wiped when no transaction is alive)
    lock, gc.lock, dirty  flock files; `dirty` asks for a garbage collection

New content is written by a Transaction into tmp/ and moved into place on
commit, before the one atomic write of images.json that registers it; a
crash at any point leaves at most unreferenced files, which garbage
collection removes. Nothing is reference-counted on disk: blobs, layers and
trees are kept while any image record names them, so counts cannot drift.
Transactions hold gc.lock shared; garbage collection needs it exclusively,
so it never removes what a transaction in flight relies on.
"""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import secrets
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import BinaryIO

from brandpy import datadir
from brandpy.images import layers as layerlib
from brandpy.images import reference, tree
from brandpy.images.compression import HashingReader, Reader
from brandpy.images.fsutil import atomic_write, atomic_write_json, fsync_dir, remove_any, rmtree

_CHUNK = 1 << 20


class StoreError(Exception):
    """A store operation that cannot be done; the message says what to do."""


class ImageNotFound(StoreError):
    pass


class Conflict(StoreError):
    pass


class DigestMismatch(StoreError):
    pass


def sha256_bytes(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _hex(digest: str) -> str:
    algo, _, hexpart = digest.partition(":")
    if algo != "sha256" or len(hexpart) != 64 or not all(c in "0123456789abcdef" for c in hexpart):
        raise StoreError(f"unsupported or malformed digest {digest!r} (only sha256 is supported)")
    return hexpart


@dataclass
class LayerRecord:
    diff_id: str      # sha256 of the uncompressed tar (config rootfs.diff_ids)
    size: int         # uncompressed size
    digest: str       # the blob we hold for it (may be compressed)
    media_type: str
    blob_size: int


@dataclass
class ImageRecord:
    id: str
    layers: list[LayerRecord]
    repo_digests: list[str] = field(default_factory=list)  # full names: docker.io/library/x@sha256:…
    manifest: str | None = None  # digest of the registry manifest we pulled, if all its blobs are ours
    manifest_media_type: str | None = None
    parent: str = ""
    added: float = 0.0
    last_tag_time: float = 0.0

    @classmethod
    def from_json(cls, d: dict) -> ImageRecord:
        d = dict(d)
        d["layers"] = [LayerRecord(**x) for x in d["layers"]]
        return cls(**d)


@dataclass
class Image:
    """An image as callers see it."""
    id: str
    config: dict
    record: ImageRecord
    repo_tags: list[str]       # familiar form: busybox:latest
    tree: Path

    @property
    def repo_digests(self) -> list[str]:
        out = []
        for rd in self.record.repo_digests:
            name, _, digest = rd.partition("@")
            out.append(reference.parse(name, default_tag=False).familiar_name + "@" + digest)
        return out

    @property
    def size(self) -> int:
        return sum(layer.size for layer in self.record.layers)

    @property
    def diff_ids(self) -> list[str]:
        return list(self.config.get("rootfs", {}).get("diff_ids", []))

    @property
    def created(self) -> str:
        return self.config.get("created") or "1970-01-01T00:00:00Z"


class Store:
    def __init__(self, root: Path | str | None = None):
        self.root = Path(root) if root is not None else datadir.data_root() / "images"
        for sub in ("blobs/sha256", "layers", "trees", "tmp"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        self.meta_path = self.root / "images.json"
        if (self.root / "dirty").exists():
            self.gc()

    # ---- locking ----------------------------------------------------------
    @contextlib.contextmanager
    def _flock(self, name: str, how: int) -> Iterator[bool]:
        fd = os.open(self.root / name, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            try:
                fcntl.flock(fd, how)
            except BlockingIOError:
                yield False
                return
            yield True
        finally:
            os.close(fd)

    def locked(self) -> contextlib.AbstractContextManager[bool]:
        """Exclusive lock on the metadata (images.json)."""
        return self._flock("lock", fcntl.LOCK_EX)

    # ---- metadata ---------------------------------------------------------
    def _load(self) -> dict:
        try:
            meta = json.loads(self.meta_path.read_bytes())
        except FileNotFoundError:
            return {"images": {}, "tags": {}}
        except ValueError as e:
            raise StoreError(f"{self.meta_path} is unreadable ({e}); it is only ever replaced "
                             "atomically, so restore it from a backup or remove the store") from None
        return meta

    def _save(self, meta: dict) -> None:
        atomic_write_json(self.meta_path, meta)

    def records(self) -> dict[str, ImageRecord]:
        return {k: ImageRecord.from_json(v) for k, v in self._load()["images"].items()}

    def tags(self) -> dict[str, str]:
        """Full reference (docker.io/library/busybox:latest) → image ID."""
        return dict(self._load()["tags"])

    # ---- paths and blobs --------------------------------------------------
    def blob_path(self, digest: str) -> Path:
        return self.root / "blobs" / "sha256" / _hex(digest)

    def has_blob(self, digest: str) -> bool:
        return self.blob_path(digest).exists()

    def layer_path(self, diff_id: str) -> Path:
        return self.root / "layers" / _hex(diff_id)

    def tree_path(self, diff_ids: list[str]) -> Path:
        if not diff_ids:
            return self.root / "trees" / "empty"
        return self.root / "trees" / _hex(tree.chain_ids(diff_ids)[-1])

    def config_bytes(self, image_id: str) -> bytes:
        return self.blob_path(image_id).read_bytes()

    # ---- lookup -----------------------------------------------------------
    def _image(self, rec: ImageRecord, tags: dict[str, str]) -> Image:
        config = json.loads(self.config_bytes(rec.id))
        repo_tags = sorted(reference.parse(t).familiar() for t, i in tags.items() if i == rec.id)
        return Image(rec.id, config, rec, repo_tags, self.tree_path(config["rootfs"]["diff_ids"]))

    def images(self) -> list[Image]:
        meta = self._load()
        return [self._image(ImageRecord.from_json(r), meta["tags"]) for r in meta["images"].values()]

    def resolve(self, name: str) -> str:
        """Image ID for an ID, short ID prefix, name[:tag] or name@digest."""
        return self._resolve(self._load(), name)[0]

    def resolve_ref(self, name: str) -> tuple[str, reference.Reference | None]:
        """(image ID, the reference name used) — None when name is an ID."""
        image_id, how = self._resolve(self._load(), name)
        return image_id, (reference.parse(name) if how != "id" else None)

    def _resolve(self, meta: dict, name: str) -> tuple[str, str]:
        """(image ID, how): how is "id", "tag" or "digest"."""
        images, tags = meta["images"], meta["tags"]
        hexpart = name.removeprefix("sha256:")
        if len(hexpart) == 64 and f"sha256:{hexpart}" in images:
            return f"sha256:{hexpart}", "id"
        try:
            ref = reference.parse(name)
        except reference.InvalidReference:
            ref = None
        if ref is not None:
            if ref.digest:
                for image_id, rec in images.items():
                    if f"{ref.name}@{ref.digest}" in rec["repo_digests"]:
                        return image_id, "digest"
            elif str(ref) in tags:
                return tags[str(ref)], "tag"
        if hexpart and all(c in "0123456789abcdef" for c in hexpart):
            matches = [i for i in images if i[7:].startswith(hexpart)]
            if len(matches) == 1:
                return matches[0], "id"
            if len(matches) > 1:
                raise StoreError(f"{name!r} is ambiguous: it prefixes {len(matches)} image IDs; "
                                 "give more digits")
        raise ImageNotFound(f"No such image: {name}")

    def get(self, name: str) -> Image:
        meta = self._load()
        image_id = self._resolve(meta, name)[0]
        return self._image(ImageRecord.from_json(meta["images"][image_id]), meta["tags"])

    # ---- tags -------------------------------------------------------------
    def tag(self, source: str, target: str) -> None:
        ref = reference.parse(target)
        if ref.digest:
            raise StoreError(f"refusing to create a tag with a digest reference: {target}")
        with self.locked():
            meta = self._load()
            meta["tags"][str(ref)] = self._resolve(meta, source)[0]
            meta["images"][meta["tags"][str(ref)]]["last_tag_time"] = time.time()
            self._save(meta)

    def add_repo_digest(self, image_id: str, repo_digest: str) -> None:
        """Record name@digest (e.g. after a push) for an image."""
        with self.locked():
            meta = self._load()
            rec = meta["images"].get(image_id)
            if rec is None:
                raise ImageNotFound(f"No such image: {image_id}")
            if repo_digest not in rec["repo_digests"]:
                rec["repo_digests"].append(repo_digest)
                self._save(meta)

    def remove(self, name: str, force: bool = False,
               in_use: Callable[[str], bool] | None = None) -> list[dict[str, str]]:
        """`docker rmi`: untag name; delete the image when no tag is left (or when
        it is named by ID). Returns [{"Untagged": …}, {"Deleted": …}] like the API.
        in_use(image_id) tells whether a container uses it (then: conflict
        unless force, and then only untagging)."""
        out: list[dict[str, str]] = []
        with self.locked():
            meta = self._load()
            image_id, how = self._resolve(meta, name)
            rec = meta["images"][image_id]
            tags = [t for t, i in meta["tags"].items() if i == image_id]
            short = image_id[7:19]
            if how != "id":
                ref = reference.parse(name)
                if how == "digest":
                    rec["repo_digests"].remove(f"{ref.name}@{ref.digest}")
                else:
                    del meta["tags"][str(ref)]
                    tags.remove(str(ref))
                out.append({"Untagged": ref.familiar()})
                if tags:
                    self._save(meta)
                    return out
            elif len({reference.parse(t).name for t in tags}) > 1 and not force:
                raise Conflict(f"conflict: unable to delete {short} (must be forced) - "
                               "image is referenced in multiple repositories")
            if any(r.get("parent") == image_id for r in meta["images"].values()):
                raise Conflict(f"conflict: unable to delete {short} (cannot be forced) - "
                               "image has dependent child images")
            if in_use is not None and in_use(image_id):
                if not force or how == "id":
                    raise Conflict(f"conflict: unable to delete {short} (must be forced) - "
                                   "image is being used by a container")
                self._save(meta)  # forced: untag only, the container keeps its image
                return out
            for t in tags:
                out.append({"Untagged": reference.parse(t).familiar()})
                del meta["tags"][t]
            for rd in rec["repo_digests"]:
                out.append({"Untagged": reference.parse(rd).familiar()})
            del meta["images"][image_id]
            out.append({"Deleted": image_id})
            self._save(meta)
            (self.root / "dirty").touch()
        self.gc()
        return out

    def prune(self, all_unused: bool = False,
              in_use: Callable[[str], bool] | None = None) -> tuple[list[dict[str, str]], int]:
        """Remove dangling images (all unused ones with all_unused); returns
        (ImagesDeleted, SpaceReclaimed) as the API reports them."""
        deleted: list[dict[str, str]] = []
        before = self.disk_usage()
        with self.locked():
            meta = self._load()
            tagged = set(meta["tags"].values())
            parents = {r.get("parent") for r in meta["images"].values()}
            for image_id in list(meta["images"]):
                if (image_id in tagged and not all_unused) or image_id in parents:
                    continue
                if in_use is not None and in_use(image_id):
                    continue
                for t in [t for t, i in meta["tags"].items() if i == image_id]:
                    deleted.append({"Untagged": reference.parse(t).familiar()})
                    del meta["tags"][t]
                del meta["images"][image_id]
                deleted.append({"Deleted": image_id})
            self._save(meta)
            (self.root / "dirty").touch()
        self.gc()
        return deleted, max(0, before - self.disk_usage())

    def disk_usage(self) -> int:
        """Bytes used by blobs (what `docker system df` calls image size, roughly)."""
        return sum(p.stat().st_size for p in (self.root / "blobs" / "sha256").iterdir())

    # ---- garbage collection -----------------------------------------------
    def gc(self) -> bool:
        """Remove everything no image record names and clean tmp/. Returns
        False (and leaves `dirty`) when a transaction is in flight."""
        with self._flock("gc.lock", fcntl.LOCK_EX | fcntl.LOCK_NB) as got:
            if not got:
                (self.root / "dirty").touch()
                return False
            with self.locked():
                records = self.records()
                blobs, layer_dirs, trees = set(), set(), {"empty"}
                for rec in records.values():
                    blobs.add(_hex(rec.id))
                    if rec.manifest:
                        blobs.add(_hex(rec.manifest))
                    for layer in rec.layers:
                        blobs.add(_hex(layer.digest))
                        layer_dirs.add(_hex(layer.diff_id))
                    trees.add(self.tree_path([x.diff_id for x in rec.layers]).name)
                for sub, keep in (("blobs/sha256", blobs), ("layers", layer_dirs), ("trees", trees)):
                    for p in (self.root / sub).iterdir():
                        if p.name not in keep:
                            remove_any(p)
                for p in (self.root / "tmp").iterdir():
                    remove_any(p)
                for p in self.root.glob(".tmp-*"):   # atomic_write's leftovers after a crash
                    p.unlink()
                with contextlib.suppress(FileNotFoundError):
                    (self.root / "dirty").unlink()
        return True

    # ---- writing ----------------------------------------------------------
    def transaction(self) -> Transaction:
        return Transaction(self)


class Transaction:
    """Stages new blobs, layers and images in tmp/ and registers them at once.

    Use as a context manager: on a clean exit everything is committed; on an
    exception the staging area is removed and the store is as it was."""

    def __init__(self, store: Store):
        self.store = store
        self.dir = store.root / "tmp" / f"txn-{secrets.token_hex(6)}"
        self._gc_fd = os.open(store.root / "gc.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        fcntl.flock(self._gc_fd, fcntl.LOCK_SH)
        (self.dir / "blobs").mkdir(parents=True)
        (self.dir / "layers").mkdir()
        self._images: dict[str, dict] = {}
        self._tags: list[tuple[str, str]] = []
        self._sizes: dict[str, int] = {}
        self.replaced_tags: list[tuple[str, str]] = []  # (familiar ref, old image ID) after commit

    def __enter__(self) -> Transaction:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:  # noqa: ANN001
        try:
            if exc_type is None:
                self._commit()
        finally:
            rmtree(self.dir)
            os.close(self._gc_fd)
            if (self.store.root / "dirty").exists():
                self.store.gc()

    def tmpdir(self, prefix: str) -> Path:
        """A scratch directory inside the staging area (same filesystem as the store)."""
        path = self.dir / f"{prefix}-{secrets.token_hex(4)}"
        path.mkdir()
        return path

    # ---- blobs --------------------------------------------------------------
    def blob_path(self, digest: str) -> Path | None:
        staged = self.dir / "blobs" / _hex(digest)
        if staged.exists():
            return staged
        path = self.store.blob_path(digest)
        return path if path.exists() else None

    def write_blob(self, src: Reader, expected: str | None = None, size: int | None = None,
                   on_read: Callable[[int], None] | None = None, what: str = "blob") -> tuple[str, int]:
        """Copy src into a staged blob, verifying digest (and size when given).
        Returns (digest, size)."""
        tmp = self.dir / f"incoming-{secrets.token_hex(6)}"
        reader = HashingReader(src, on_read)
        with open(tmp, "wb") as f:
            while chunk := reader.read(_CHUNK):
                f.write(chunk)
            f.flush()
            os.fsync(f.fileno())
        try:
            if size is not None and reader.count != size:
                raise DigestMismatch(f"{what} {expected or ''}is truncated or oversized: got {reader.count} "
                                     f"bytes, expected {size}; try again")
            if expected is not None and reader.digest != expected:
                raise DigestMismatch(f"{what} failed digest verification: expected {expected}, "
                                     f"got {reader.digest}; the source is corrupt or was altered")
        except DigestMismatch:
            tmp.unlink()
            raise
        os.replace(tmp, self.dir / "blobs" / reader.digest[7:])
        return reader.digest, reader.count

    def put_bytes(self, data: bytes, expected: str | None = None, what: str = "blob") -> str:
        digest = sha256_bytes(data)
        if expected is not None and digest != expected:
            raise DigestMismatch(f"{what} failed digest verification: expected {expected}, got {digest}; "
                                 "the source is corrupt or was altered")
        if self.blob_path(digest) is None:
            atomic_write(self.dir / "blobs" / digest[7:], data)
        return digest

    # ---- layers -------------------------------------------------------------
    def layer_size(self, diff_id: str) -> int:
        """Uncompressed size of a layer staged here or held by any image."""
        if diff_id in self._sizes:
            return self._sizes[diff_id]
        for rec in self.store.records().values():
            for layer in rec.layers:
                if layer.diff_id == diff_id:
                    return layer.size
        raise StoreError(f"layer {diff_id} is not in the store")

    def has_layer(self, diff_id: str) -> bool:
        return (self.dir / "layers" / _hex(diff_id)).exists() or self.store.layer_path(diff_id).exists()

    def unpack(self, src: BinaryIO, expected_diff_id: str | None, name: str,
               on_read: Callable[[int], None] | None = None) -> layerlib.LayerInfo:
        """Unpack a layer stream into staging and check its diffID."""
        dest = self.tmpdir("unpack")
        dest.chmod(0o755)
        info = layerlib.extract(src, dest, name=name, on_read=on_read)
        if expected_diff_id is not None and info.diff_id != expected_diff_id:
            rmtree(dest)
            raise DigestMismatch(f"{name}: layer content has diffID {info.diff_id} but the image config "
                                 f"says {expected_diff_id}; the layer is corrupt or belongs to another image")
        self._sizes[info.diff_id] = info.size
        final = self.dir / "layers" / info.diff_id[7:]
        if final.exists() or self.store.layer_path(info.diff_id).exists():
            rmtree(dest)
        else:
            os.rename(dest, final)
        return info

    def unpack_blob(self, digest: str, expected_diff_id: str | None, name: str,
                    on_read: Callable[[int], None] | None = None) -> layerlib.LayerInfo:
        path = self.blob_path(digest)
        if path is None:
            raise StoreError(f"{name}: blob {digest} is missing")
        with open(path, "rb") as f:
            return self.unpack(f, expected_diff_id, name, on_read)

    # ---- images -------------------------------------------------------------
    def add_image(self, config: bytes, layers: list[LayerRecord], *, repo_digest: str | None = None,
                  manifest: tuple[str, str] | None = None, parent: str = "") -> str:
        """Stage an image record; config must already be or will be a staged blob.
        Returns the image ID (sha256 of the config)."""
        image_id = self.put_bytes(config, what="image config")
        try:
            cfg = json.loads(config)
            diff_ids = cfg["rootfs"]["diff_ids"]
        except (ValueError, KeyError, TypeError):
            raise StoreError("image config is not valid JSON with rootfs.diff_ids") from None
        if [layer.diff_id for layer in layers] != diff_ids:
            raise StoreError(f"image {image_id[7:19]}: its layers do not match the config's rootfs.diff_ids")
        for layer in layers:
            if self.blob_path(layer.digest) is None or not self.has_layer(layer.diff_id):
                raise StoreError(f"image {image_id[7:19]}: layer {layer.diff_id} was not staged")
        rec = ImageRecord(image_id, layers, [repo_digest] if repo_digest else [],
                          manifest[0] if manifest else None, manifest[1] if manifest else None,
                          parent, time.time())
        self._images[image_id] = asdict(rec)
        return image_id

    def tag(self, ref: str, image_id: str) -> None:
        self._tags.append((str(reference.parse(ref)), image_id))

    def _commit(self) -> None:
        store = self.store
        with store.locked():
            meta = store._load()
            # Mark first: a crash from here on leaves files that only gc removes.
            was_dirty = (store.root / "dirty").exists()
            (store.root / "dirty").touch()
            wanted = set()
            for rec in self._images.values():
                wanted |= {rec["id"][7:], *(x["digest"][7:] for x in rec["layers"])}
                if rec["manifest"]:
                    wanted.add(rec["manifest"][7:])
            for p in (self.dir / "blobs").iterdir():
                if p.name in wanted and not (store.root / "blobs" / "sha256" / p.name).exists():
                    os.rename(p, store.root / "blobs" / "sha256" / p.name)
            for p in (self.dir / "layers").iterdir():
                if not (store.root / "layers" / p.name).exists():
                    os.rename(p, store.root / "layers" / p.name)
            fsync_dir(store.root / "blobs" / "sha256")
            fsync_dir(store.root / "layers")
            for image_id, rec in self._images.items():
                diff_ids = [x["diff_id"] for x in rec["layers"]]
                dest = store.tree_path(diff_ids)
                if not dest.exists():
                    tmp = self.dir / f"tree-{dest.name}"
                    tree.build([store.layer_path(d) for d in diff_ids], tmp)
                    os.rename(tmp, dest)
                old = meta["images"].get(image_id)
                if old is not None:
                    rec["repo_digests"] = sorted(set(old["repo_digests"]) | set(rec["repo_digests"]))
                    rec["added"] = old["added"]
                    rec["manifest"] = rec["manifest"] or old.get("manifest")
                    rec["manifest_media_type"] = rec["manifest_media_type"] or old.get("manifest_media_type")
                    rec["parent"] = rec["parent"] or old.get("parent", "")
                meta["images"][image_id] = rec
            fsync_dir(store.root / "trees")
            for ref, image_id in self._tags:
                old_id = meta["tags"].get(ref)
                if old_id and old_id != image_id:
                    self.replaced_tags.append((reference.parse(ref).familiar(), old_id))
                meta["tags"][ref] = image_id
                meta["images"][image_id]["last_tag_time"] = time.time()
            store._save(meta)
            if not was_dirty:
                (store.root / "dirty").unlink()
