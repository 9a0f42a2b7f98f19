"""docker-archive: `docker save` / `docker load`.

save writes what Docker 25+ writes (see DOCKER-SAVE-LOAD-FORMAT.md): an OCI
layout (oci-layout, index.json, blobs/sha256/…) that is also the legacy
docker-save layout (manifest.json, repositories), layers uncompressed so
that each layer blob's digest is its diffID.

load accepts that, the legacy v1 layout of Docker before 1.10, the older
manifest.json layouts (`<id>/layer.tar`,
`<id>.json`, compressed layers, symlinked files as skopeo and old Docker
write), a plain OCI layout tar, and the archive itself plain or compressed.
The archive is read in one pass: every file becomes a staged blob of the
transaction, so layers are neither copied twice nor left behind on error.
"""
from __future__ import annotations

import io
import json
import posixpath
import tarfile
from datetime import datetime
from typing import Any, BinaryIO

from brandpy.images import manifests as mf
from brandpy.images import ocilayout, reference
from brandpy.images.compression import STREAM_ERRORS, HashingReader, Reader, decompressed, detect
from brandpy.images.layers import LayerError, split_name
from brandpy.images.store import DigestMismatch, LayerRecord, Store, StoreError, Transaction, sha256_bytes


class ArchiveError(StoreError):
    pass


# ---------------------------------------------------------------- save ----

def _resolve_names(store: Store, names: list[str]) -> list[tuple[str, list[reference.Reference]]]:
    """[(image ID, [tag references to record])] in the order first named.
    A bare repository name (`busybox`) means every tag of it, as in Docker."""
    out: dict[str, list[reference.Reference]] = {}
    tags = store.tags()
    for name in names:
        refs: list[tuple[str, reference.Reference | None]] = []
        try:
            bare = reference.is_name_only(name)
        except reference.InvalidReference:
            bare = False
        if bare:
            repo = reference.parse(name, default_tag=False).name
            refs = [(i, reference.parse(t)) for t, i in tags.items() if reference.parse(t).name == repo]
        if not refs:
            refs = [store.resolve_ref(name)]
        for image_id, ref in refs:
            lst = out.setdefault(image_id, [])
            if ref is not None and ref.tag and ref not in lst:
                lst.append(ref)
    return list(out.items())


def _add(tar: tarfile.TarFile, name: str, data: bytes | Reader, size: int | None = None,
         mtime: int = 0) -> None:
    info = tarfile.TarInfo(name)
    info.mtime = mtime
    info.mode = 0o644
    if isinstance(data, bytes):
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    else:
        assert size is not None
        info.size = size
        tar.addfile(info, data)


def _add_dir(tar: tarfile.TarFile, name: str) -> None:
    info = tarfile.TarInfo(name)
    info.type = tarfile.DIRTYPE
    info.mode = 0o755
    tar.addfile(info)


def save(store: Store, names: list[str], out: BinaryIO) -> None:
    """Write a docker-archive of the named images (IDs, name:tag, or bare
    repository names for all their tags) to the stream out."""
    images = _resolve_names(store, names)
    written: set[str] = set()
    manifest_json, index_entries = [], []
    repositories: dict[str, dict[str, str]] = {}
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        _add_dir(tar, "blobs/")
        _add_dir(tar, "blobs/sha256/")
        for image_id, refs in images:
            image = store.get(image_id)
            rec = image.record
            # Docker stamps blobs with the image's creation time.
            try:
                created = int(datetime.fromisoformat(image.created.replace("Z", "+00:00")).timestamp())
            except ValueError:
                created = 0
            layer_paths = []
            for layer in rec.layers:
                path = ocilayout.blob_name(layer.diff_id)
                layer_paths.append(path)
                if layer.diff_id in written:
                    continue
                written.add(layer.diff_id)
                with open(store.blob_path(layer.digest), "rb") as f:
                    plain, _ = decompressed(f)
                    check = HashingReader(plain)
                    _add(tar, path, check, layer.size, created)
                    if check.digest != layer.diff_id:
                        raise ArchiveError(f"stored layer {layer.digest} no longer matches its diffID "
                                           f"{layer.diff_id}; the store is damaged: remove the image and "
                                           "pull or load it again")
            config = store.config_bytes(image_id)
            if image_id not in written:
                written.add(image_id)
                _add(tar, ocilayout.blob_name(image_id), config, mtime=created)
            manifest = {
                "schemaVersion": 2, "mediaType": mf.OCI_MANIFEST,
                "config": {"mediaType": mf.OCI_CONFIG, "digest": image_id, "size": len(config)},
                "layers": [{"mediaType": mf.OCI_LAYER, "digest": layer.diff_id, "size": layer.size}
                           for layer in rec.layers],
            }
            raw = json.dumps(manifest, separators=(",", ":")).encode()
            digest = sha256_bytes(raw)
            if digest not in written:
                written.add(digest)
                _add(tar, ocilayout.blob_name(digest), raw)
            desc = {"mediaType": mf.OCI_MANIFEST, "digest": digest, "size": len(raw)}
            for ref in refs:
                index_entries.append({**desc, "annotations": {ocilayout.CONTAINERD_NAME: str(ref),
                                                              ocilayout.REF_NAME: ref.tag}})
                repositories.setdefault(ref.familiar_name, {})[ref.tag or "latest"] = (
                    rec.layers[-1].diff_id[7:] if rec.layers else "")
            if not refs:
                index_entries.append(desc)
            manifest_json.append({"Config": ocilayout.blob_name(image_id),
                                  "RepoTags": [r.familiar() for r in refs] or None,
                                  "Layers": layer_paths})
        index = {"schemaVersion": 2, "mediaType": mf.OCI_INDEX, "manifests": index_entries}
        _add(tar, "index.json", json.dumps(index, separators=(",", ":")).encode())
        _add(tar, "manifest.json", json.dumps(manifest_json, separators=(",", ":")).encode())
        _add(tar, "oci-layout", b'{"imageLayoutVersion":"1.0.0"}')
        if repositories:
            _add(tar, "repositories", json.dumps(repositories, separators=(",", ":")).encode())


# ---------------------------------------------------------------- load ----

class _ArchiveFiles:
    """The archive's files as staged blobs, with its symlinks resolved inside it."""

    def __init__(self, txn: Transaction):
        self.txn = txn
        self.files: dict[str, tuple[str, int]] = {}   # path → (digest, size)
        self.links: dict[str, str] = {}               # path → normalised target path

    def add(self, member: tarfile.TarInfo, tar: tarfile.TarFile) -> None:
        path = "/".join(split_name(member.name, "archive entry"))
        if member.isreg():
            f = tar.extractfile(member)
            assert f is not None
            self.files[path] = self.txn.write_blob(f, size=member.size, what=f"archive file {path}")
        elif member.issym() or member.islnk():
            base = posixpath.dirname(path) if member.issym() else ""
            target = posixpath.normpath(posixpath.join(base, member.linkname))
            if member.linkname.startswith("/") or target.startswith(".."):
                raise ArchiveError(f"archive entry {path!r} links outside the archive ({member.linkname!r})")
            self.links[path] = target

    def resolve(self, name: str) -> str:
        path = "/".join(split_name(name, "archive path"))
        for _ in range(40):
            if path in self.files:
                return path
            # Follow a link on the path itself or on one of its parents.
            parts = path.split("/")
            for i in range(len(parts), 0, -1):
                prefix = "/".join(parts[:i])
                if prefix in self.links:
                    path = "/".join([self.links[prefix], *parts[i:]])
                    break
            else:
                raise ArchiveError(f"the archive has no file {name!r}; it is incomplete or not a "
                                   "docker-archive")
        raise ArchiveError(f"too many levels of symlinks resolving {name!r} in the archive")

    def read(self, name: str) -> bytes:
        digest, size = self.files[self.resolve(name)]
        if size > 64 << 20:
            raise ArchiveError(f"{name} in the archive is too large for a JSON document")
        path = self.txn.blob_path(digest)
        assert path is not None
        return path.read_bytes()

    def stage(self, name: str, expected: str | None) -> tuple[str, int]:
        digest, size = self.files[self.resolve(name)]
        if expected is not None and digest != expected:
            raise DigestMismatch(f"{name} in the archive failed digest verification: expected {expected}, "
                                 f"got {digest}; the archive is corrupt")
        return digest, size


def _json(files: _ArchiveFiles, name: str) -> object:
    try:
        return json.loads(files.read(name))
    except ValueError:
        raise ArchiveError(f"{name} in the archive is not valid JSON") from None


def _json_object(files: _ArchiveFiles, name: str) -> dict[str, Any]:
    doc = _json(files, name)
    if not isinstance(doc, dict):
        raise ArchiveError(f"{name} in the archive is not a JSON object")
    return doc


def _load_manifest_json(txn: Transaction, files: _ArchiveFiles) -> list[tuple[str, list[str]]]:
    entries = _json(files, "manifest.json")
    if entries is None:
        entries = []     # dockerd 20.10's archive of no images says null
    if not isinstance(entries, list):
        raise ArchiveError("manifest.json in the archive is not a list")
    out = []
    for n, entry in enumerate(entries):
        cfg_name = entry.get("Config")
        if not cfg_name:
            raise ArchiveError(f"manifest.json entry {n} has no Config")
        expected = None
        parts = cfg_name.split("/")
        if len(parts) == 3 and parts[0] == "blobs":
            expected = f"{parts[1]}:{parts[2]}"
        cfg_digest, _ = files.stage(cfg_name, expected)
        config_raw = files.read(cfg_name)
        try:
            diff_ids = json.loads(config_raw)["rootfs"]["diff_ids"]
        except (ValueError, KeyError, TypeError):
            raise ArchiveError(f"image config {cfg_name} is not valid JSON with rootfs.diff_ids") from None
        layers = entry.get("Layers") or []
        if len(layers) != len(diff_ids):
            raise ArchiveError(f"{cfg_name}: manifest.json lists {len(layers)} layers but the config has "
                               f"{len(diff_ids)} diff_ids")
        records = []
        for lname, diff_id in zip(layers, diff_ids, strict=True):
            digest, size = files.stage(lname, None)
            name = f"layer {lname}"
            if txn.has_layer(diff_id):
                usize = txn.layer_size(diff_id)
                compression = _compression(txn, digest)
            else:
                info = txn.unpack_blob(digest, diff_id, name)
                usize, compression = info.size, info.compression
            if compression in ("xz", "bzip2"):
                # No registry media type exists for these: keep the plain tar instead.
                staged = txn.blob_path(digest)
                assert staged is not None   # staged or unpacked just above
                with open(staged, "rb") as f:
                    plain, _ = decompressed(f)
                    digest, size = txn.write_blob(plain, diff_id, what=name)
                compression = None
            records.append(LayerRecord(diff_id, usize, digest, mf.layer_type_for(compression), size))
        image_id = txn.add_image(config_raw, records)
        if image_id != cfg_digest:
            raise ArchiveError(f"internal error: config digest mismatch for {cfg_name}")
        refs = []
        for tag in entry.get("RepoTags") or []:
            ref = reference.parse(tag, default_tag=False)
            if not ref.tag or ref.digest:
                raise ArchiveError(f"RepoTags entry {tag!r} is not in name:tag form")
            refs.append(str(ref))
        out.append((image_id, refs))
    return out


_V1_DROP = ("id", "parent", "Size", "parent_id", "layer_id", "throwaway")


def _load_v1(txn: Transaction, files: _ArchiveFiles) -> list[tuple[str, list[str]]]:
    """The pre-1.10 layout: <v1 id>/{json,layer.tar} chained by "parent", tags in
    `repositories`. The config is made as Docker's MakeConfigFromV1Config does."""
    repos = _json(files, "repositories")
    if not isinstance(repos, dict):
        raise ArchiveError("repositories in the archive is not a JSON object")
    by_top: dict[str, list[str]] = {}
    for repo, tags in repos.items():
        for tag, v1_id in tags.items():
            by_top.setdefault(v1_id, []).append(str(reference.parse(f"{repo}:{tag}")))
    out = []
    for top, refs in by_top.items():
        chain: list[str] = []
        v1_id = top
        while v1_id:
            if v1_id in chain or len(chain) > 1000:
                raise ArchiveError(f"the parent chain of {top} loops")
            chain.append(v1_id)
            v1_id = _json_object(files, f"{v1_id}/json").get("parent", "")
        chain.reverse()
        records, history = [], []
        for v1_id in chain:
            doc = _json_object(files, f"{v1_id}/json")
            digest, size = files.stage(f"{v1_id}/layer.tar", None)
            info = txn.unpack_blob(digest, None, f"layer {v1_id}")
            records.append(LayerRecord(info.diff_id, info.size, digest, mf.layer_type_for(None), size))
            cmd = (doc.get("container_config") or {}).get("Cmd") or []
            h = {"created": doc.get("created", ""), "created_by": " ".join(cmd)}
            h.update({k: doc[k] for k in ("author", "comment") if doc.get(k)})
            history.append(h)
        config = {k: v for k, v in _json_object(files, f"{top}/json").items() if k not in _V1_DROP}
        config["rootfs"] = {"type": "layers", "diff_ids": [r.diff_id for r in records]}
        config["history"] = history
        raw = json.dumps(config, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
        out.append((txn.add_image(raw, records), refs))
    return out


def _compression(txn: Transaction, digest: str) -> str | None:
    path = txn.blob_path(digest)
    assert path is not None
    with open(path, "rb") as f:
        return detect(f.read(6))


def load(store: Store, src: BinaryIO) -> list[str]:
    """Load a docker-archive (or OCI layout tar); returns the lines `docker
    load` prints. On any error nothing is registered."""
    messages: list[str] = []
    with store.transaction() as txn:
        files = _ArchiveFiles(txn)
        try:
            stream, _ = decompressed(src)
            with tarfile.open(fileobj=stream, mode="r|") as tar:
                for member in tar:
                    files.add(member, tar)
        except LayerError as e:
            raise ArchiveError(str(e)) from None
        except tarfile.TarError as e:
            raise ArchiveError(f"the archive is not a valid tar or is truncated ({e})") from None
        except STREAM_ERRORS as e:
            if isinstance(e, OSError) and e.errno is not None:
                raise
            raise ArchiveError(f"the archive is corrupt or truncated ({e})") from None
        if "manifest.json" in files.files or "manifest.json" in files.links:
            found = _load_manifest_json(txn, files)
        elif "index.json" in files.files:
            found = ocilayout.import_index(txn, files)
        elif "repositories" in files.files:
            found = _load_v1(txn, files)
        else:
            raise ArchiveError("the archive has no manifest.json, index.json or repositories: it is not "
                               "a docker-archive or OCI layout")
        for image_id, refs in found:
            for ref in refs:
                txn.tag(ref, image_id)
    replaced = dict(txn.replaced_tags)
    for image_id, refs in found:
        if not refs:
            messages.append(f"Loaded image ID: {image_id}")
        for ref in refs:
            familiar = reference.parse(ref).familiar()
            if familiar in replaced:
                messages.append(f"The image {familiar} already exists, renaming the old one with ID "
                                f"{replaced[familiar]} to empty string")
            messages.append(f"Loaded image: {familiar}")
    return messages

