"""Path calls at their edges (issue 17, class 3): tests/programs/pathedges.c
prints what Linux answers to readlinkat(fd, ""), openat2's RESOLVE_* flags,
trailing slashes and non-directory components, fstatat/statx flag
combinations, calls on O_PATH descriptors, the inotify events of the
container's own file operations, and the search-permission rules for a
non-root user. Under brandpy (both engines, as root and unprivileged) it
must print what it prints natively in a chroot.

Before the fix (cfab5cd, as root) 10 lines differed under the Python engine
and 13 under the native one: openat2 followed magic links under
RESOLVE_NO_MAGICLINKS, crossed into /proc under RESOLVE_NO_XDEV and took
unknown or contradictory RESOLVE_* bits; rmdir "x/.." was EINVAL, unlink of
"link/" EISDIR; faccessat2 took unknown flags; fstatat(fd, NULL,
AT_EMPTY_PATH) was EFAULT; appending to a watched file showed an extra
open and close (the supervisor's copy-up probe, Python engine); the C engine read a
symlink fd's target as ENOENT and let a non-root user stat below a
directory it may not search."""

import json
import os
import subprocess
from pathlib import Path

import pytest

from brandpy.images.layers import MARKER
from tests.conftest import build_program, chroot_run

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the chroot reference needs root")

OPTIONS = ("--cap-add", "ALL", "--security-opt", "seccomp=unconfined")
IMAGE_FILE = "etc/edges.conf"      # the file of the image the events section writes
MARKED = "etc/edges.img"           # an image file as a layer leaves it: with brandpy's marker


@pytest.fixture(scope="module")
def edges_bin(world_tmp: Path) -> Path:
    return build_program("pathedges", world_tmp)


def _install(rootfs: Path, program: Path) -> None:
    owner = rootfs.stat()
    for dest, data, mode in ((rootfs / "usr" / "bin" / "pathedges", program.read_bytes(), 0o755),
                             (rootfs / IMAGE_FILE, b"# an image file\n", 0o644),
                             (rootfs / MARKED, b"# a marked image file\n", 0o644)):
        dest.write_bytes(data)
        dest.chmod(mode)
        os.chown(dest, owner.st_uid, owner.st_gid)
    os.setxattr(rootfs / MARKED, MARKER, b"1")


def _sections(out: str) -> dict[str, list[str]]:
    sections: dict[str, list[str]] = {}
    lines: list[str] = []
    for line in out.splitlines():
        if line.startswith("== "):
            lines = sections.setdefault(line[3:], [])
        else:
            lines.append(line)
    return sections


@pytest.fixture(scope="module")
def native(edges_bin: Path, world_tmp: Path, busybox_image: Path) -> dict[str, list[str]]:
    rootfs = world_tmp / "edges-native"
    subprocess.run(["cp", "-a", str(busybox_image), str(rootfs)], check=True)
    _install(rootfs, edges_bin)
    ref = chroot_run(rootfs, ["/usr/bin/pathedges"])
    assert ref.status == 0, ref
    return _sections(ref.out)


def test_brandpys_own_xattrs_are_not_the_containers(brandpy, busybox, edges_bin, outdir):
    """The fake ownership and image marker xattrs cannot be set, removed,
    read or listed by the container (unprivileged, writing the first made
    any user any file's owner); the native engine answers its root's
    fgetxattr and flistxattr in C."""
    _install(busybox, edges_bin)
    stats = outdir / "stats.json"
    mine = brandpy(busybox, ["/usr/bin/pathedges", "ownxattrs"], *OPTIONS, "--stats-json",
                   str(stats), timeout=60)
    assert mine.status == 0, mine
    if brandpy.engine == "native":
        notified = json.loads(stats.read_text())["Notified"]
        by_fd = {name: notified[name]["InPython"] for name in ("fgetxattr", "flistxattr")}
        assert by_fd == {"fgetxattr": 0, "flistxattr": 0}, by_fd
    for name in ("user.containers.override_stat", "user.brandpy.image"):
        for call in ("set", "fset", "remove"):
            assert f"{call} {name}: EPERM" in mine.out, mine
    assert "get override of a user's file: ENODATA" in mine.out, mine
    assert "listed: 0" in mine.out, mine
    for name, base in (("user.containers.override_stat", "oy"), (MARKER, "edges.img")):
        for call in ("get", "lget", "fget"):
            assert f"{call} {name} of {base}: ENODATA" in mine.out, mine
        assert f"fget O_PATH {base}: EBADF" in mine.out, mine
        assert f"get {name} through a symlink to {base}: ENODATA" in mine.out, mine
        for listed in ("flisted", "llisted", "listed through a symlink to"):
            assert f"{listed} {base}: 0" in mine.out, mine
    # user.mine\0 alone
    for line in ("list size 0: 10", "flist size 0: 10", "flist 9 bytes: ERANGE",
                 "flist 10 bytes: 10 user.mine", "fget user.mine: 0"):
        assert line in mine.out, mine


def test_path_edges_are_linux(brandpy, busybox, edges_bin, native):
    _install(busybox, edges_bin)
    mine = brandpy(busybox, ["/usr/bin/pathedges"], *OPTIONS, timeout=120)
    assert mine.status == 0, mine
    assert "openat2 NO_MAGICLINKS on /proc/self/exe: ELOOP" in native["openat2"]
    assert "user stat locked/f: EACCES" in native["user"]
    assert "user unlink sticky/rootf: EPERM" in native["user"]
    if Path("/proc/sys/fs/protected_hardlinks").read_text().strip() != "0":
        assert "user link ro -> pub/l1: EPERM" in native["user"]
    assert "user fsetxattr ro: EACCES" in native["user"]
    assert "euid user: access rsecret: 0" in native["realids"]
    assert "no-dac root: stat udir/f: EACCES" in native["rootcaps"]
    level = {name: int(Path(f"/proc/sys/fs/protected_{name}").read_text())
             for name in ("regular", "fifos", "symlinks")}
    if level["regular"]:
        assert "root: O_CREAT ps/uf: EACCES" in native["protected_regular"]
        assert "user: O_CREAT ps/tf: EACCES" in native["protected_regular"]
        assert ("user: O_CREAT pg/tf: EACCES" in native["protected_regular"]) == \
            (level["regular"] >= 2)
    if level["symlinks"]:
        assert "user: stat ls/tl: EACCES" in native["protected_links"]
    got = _sections(mine.out)
    assert got.keys() == native.keys()
    for section, lines in native.items():
        if section == "protected_links" and brandpy.uid:
            # emulated: symlinks' and fifos' owners are not recorded, and
            # each caller is taken for theirs (README, Limits)
            lines = [line.rsplit(": ", 1)[0] + ": 0" for line in lines]
        assert got[section] == lines, section
