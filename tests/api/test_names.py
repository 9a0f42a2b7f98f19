"""Names that become paths stay under the data root whatever their bytes:
volume names (created, looked up, removed, mounted), container and
network names, and the files of a build context."""

from __future__ import annotations

import io
import json
import os
import secrets
import tarfile
from pathlib import Path
from urllib.parse import quote

import pytest

from brandpy import pathnames

# Each refused by Docker's grammar ^[a-zA-Z0-9][a-zA-Z0-9_.-]+$ (Go's `$`
# is the end of the text: no trailing newline either).
BAD_VOLUME_NAMES = ["/tmp", "../canary", "..", ".", "a/b", "a\x00b", "ab\n", "x", "-ab", ".ab",
                    "a b", "é1"]


def test_grammars():
    for good in ("ab", "a.b_c-1", "A9", "0" * 64):
        assert pathnames.is_volume_name(good) and pathnames.is_network_name(good)
        assert pathnames.container_name(good) == good
    assert pathnames.container_name("/web") == "web"
    # network names are libnetwork's: anything but blank (they name no file)
    for good in ("test 01", "a/b", "é1", "x"):
        assert pathnames.is_network_name(good)
    for bad in ("", " ", "ab\n", "a\x00b"):
        assert not pathnames.is_network_name(bad)
    for bad in BAD_VOLUME_NAMES + ["/x", "//ab", ""]:
        assert not pathnames.is_volume_name(bad)
        with pytest.raises(pathnames.InvalidName):
            pathnames.volume_name(bad)
        if bad not in ("/tmp",):
            with pytest.raises(pathnames.InvalidName, match="Invalid container name"):
                pathnames.container_name(bad)


def test_child_and_inside(tmp_path):
    assert pathnames.child(tmp_path, "ab") == tmp_path / "ab"
    for bad in ("", ".", "..", "a/b", "/etc", "a\x00b"):
        with pytest.raises(pathnames.InvalidName):
            pathnames.child(tmp_path, bad)
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "f").write_text("x")
    (tmp_path / "up").symlink_to("/etc")
    (tmp_path / "rel").symlink_to("sub/f")
    assert pathnames.inside(tmp_path, "sub/f") == (tmp_path / "sub" / "f").resolve()
    assert pathnames.inside(tmp_path, "rel") == (tmp_path / "sub" / "f").resolve()
    assert pathnames.inside(tmp_path, "/sub/../sub/f") == (tmp_path / "sub" / "f").resolve()
    for bad in ("../x", "sub/../../x", "up/passwd", "a\x00b"):
        with pytest.raises(pathnames.InvalidName):
            pathnames.inside(tmp_path, bad)


@pytest.fixture
def canary(daemon) -> Path:
    """A directory beside the data root that no request may change."""
    path = daemon.root / "canary"
    path.mkdir(exist_ok=True)
    (path / "file").write_text("canary\n")
    path.chmod(0o755)
    return path


def _snapshot(path: Path) -> dict[str, tuple[int, int, bytes]]:
    out = {}
    for dirpath, dirnames, filenames in os.walk(path):
        for name in [".", *dirnames, *filenames]:
            full = os.path.join(dirpath, name)
            st = os.lstat(full)
            data = Path(full).read_bytes() if os.path.isfile(full) else b""
            out[os.path.relpath(full, path)] = (st.st_mode, st.st_uid, data)
    return out


def _volume_dir_entries(daemon) -> list[str]:
    return sorted(os.listdir(daemon.root / "data" / "volumes"))


def test_volume_create_refuses_paths(daemon, canary):
    before = (_volume_dir_entries(daemon), _snapshot(canary))
    top = f"/bpd-canary-{secrets.token_hex(4)}"
    try:
        for name in [top, str(canary / "v"), *BAD_VOLUME_NAMES]:
            status, _, body = daemon.api("POST", "/v1.50/volumes/create", {"Name": name})
            assert status == 400, (name, body)
            assert "includes invalid characters for a local volume name" in \
                json.loads(body)["message"]
        assert not os.path.lexists(top)
        assert (_volume_dir_entries(daemon), _snapshot(canary)) == before
    finally:
        if os.path.lexists(top):
            os.system(f"rm -rf {top}")


def test_volume_mount_source_refuses_paths(daemon, canary):
    before = (_volume_dir_entries(daemon), daemon.ok("ps", "-aq"), _snapshot(canary))
    top = f"/bpd-canary-{secrets.token_hex(4)}"
    try:
        for source in (top, "../canary", "ab\n"):
            status, _, body = daemon.api("POST", "/v1.50/containers/create", {
                "Image": "busybox", "Cmd": ["true"], "HostConfig": {"Mounts": [
                    {"Type": "volume", "Source": source, "Target": "/data"}]}})
            assert status == 400, (source, body)
        assert not os.path.lexists(top)
        assert (_volume_dir_entries(daemon), daemon.ok("ps", "-aq"), _snapshot(canary)) == before
    finally:
        if os.path.lexists(top):
            os.system(f"rm -rf {top}")


def test_volume_lookups_stay_inside(daemon, canary):
    """A planted volume.json outside the volumes directory is never read
    or removed through a name with slashes or dots."""
    plant = canary / "plant"
    plant.mkdir()
    (plant / "volume.json").write_text('{"Name": "planted"}')
    before = _snapshot(canary)
    for name in ("../../canary/plant", str(plant), "..", "."):
        for method in ("GET", "DELETE"):
            status, _, body = daemon.api(method, "/v1.50/volumes/" + quote(name, safe=""))
            assert status == 404, (method, name, body)
    assert _snapshot(canary) == before


@pytest.mark.parametrize("kind", ["container", "network"])
def test_names_with_a_trailing_newline(daemon, kind):
    if kind == "container":
        status, _, body = daemon.api("POST", "/v1.50/containers/create?name=" + quote("ab\n"),
                                     {"Image": "busybox", "Cmd": ["true"]})
    else:
        status, _, body = daemon.api("POST", "/v1.50/networks/create", {"Name": "ab\n"})
    assert status == 400, body
    assert "ab\n" not in daemon.ok(f"{kind}", "ls", "-a" if kind == "container" else "-q",
                                   "--format", "{{.Names}}" if kind == "container"
                                   else "{{.Name}}")


def _tar(entries: list[tuple[str, bytes | str | None, str]]) -> bytes:
    """A tar of (name, content or link target, kind) entries, in order."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, payload, kind in entries:
            info = tarfile.TarInfo(name)
            if kind == "file":
                data = payload if isinstance(payload, bytes) else str(payload).encode()
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
            elif kind == "dir":
                info.type, info.mode = tarfile.DIRTYPE, 0o777
                tar.addfile(info)
            else:
                info.type, info.linkname = tarfile.SYMTYPE, str(payload)
                tar.addfile(info)
    return buf.getvalue()


def test_build_context_stays_inside(daemon, canary):
    """A context whose later entries land on its own symlinks writes
    through none of them: not a file's content, not a directory's mode."""
    before = _snapshot(canary)
    context = _tar([
        ("Dockerfile", "FROM busybox\nCOPY . /ctx/\n", "file"),
        ("evil", str(canary / "file"), "symlink"),
        ("evil", "pwned\n", "file"),
        ("evildir", str(canary), "symlink"),
        ("evildir", None, "dir"),
    ])
    status, _, body = daemon.api("POST", "/v1.50/build?rm=1", context,
                                 {"Content-Type": "application/x-tar"})
    assert status == 200, body
    assert _snapshot(canary) == before
    for line in body.decode().splitlines():
        assert "errorDetail" not in json.loads(line), body


def test_volume_population_stays_inside(daemon, canary):
    """A new volume is filled from the image's content at its mount point,
    resolved as the container sees it: an image's symlink to / does not
    make it copy the host's files."""
    daemon.ok("import", "-", "linkroot:1", input=_tar([("lnk", "/", "symlink")]))
    vol = f"pop-{secrets.token_hex(4)}"
    try:
        daemon.ok("create", "--name", vol, "-v", f"{vol}:/lnk{canary}", "linkroot:1", "true")
        data = Path(daemon.ok("volume", "inspect", "-f", "{{.Mountpoint}}", vol).strip())
        assert os.listdir(data) == []
    finally:
        daemon.docker("rm", "-f", vol)
        daemon.docker("volume", "rm", "-f", vol)
        daemon.ok("rmi", "linkroot:1")
