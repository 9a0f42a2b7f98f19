"""Files a container holds a descriptor of but does not name: changing or
reopening one must give no more than the descriptor gives.
tests/security/programs/reopen_attack.c, as the entrypoint:

- image: /img is a hard link of an image store's inode (as every file of a
  container's rootfs is, brandpy/images/rootfs.py), which every container
  of the image shares. Once /img is copied up, the container's read-only
  and O_PATH descriptors of it hold the image's own inode. Before the
  fix, reopening them for writing through /proc/self/fd/N (the resolver
  handed a "(deleted)" link to the kernel unchecked), and every metadata
  change through them or through that link's path (the copy-up step let a
  file without a name through unchanged), changed the image: in every
  cell every attempt did, the first write too (it reached the image's
  inode, not the new copy). Now reopens get EACCES, changes EROFS, and
  the first write lands in the container's copy as on overlayfs.
- bind: with CAP_SYS_ADMIN, /img bind-mounted on /z and /z written: a
  bind mount's root has no name to copy up under, and the write reached
  the image's inode in every cell. Now the bind shares the container's own
  copy (made when it is mounted), and no write or change ever hands the
  image's inode on (EROFS where there is nothing to copy it up under).
- swap: as root, fchmod(10) while another thread dup2()s the image's
  inode (held after a copy-up) and a file of the container's own onto fd
  10 in turn. brandpy looked at fd 10's file and, finding it the
  container's own, let the kernel make the call, which looked fd 10 up
  again: the image's mode changed within a few hundred calls in every
  root cell. Then fsetxattr(10) with an O_PATH file of the container's in
  turn with the image's: brandpy let the kernel refuse the O_PATH fd
  (EBADF) and the kernel set the xattr on the image. Now fchmod, fchown
  and the xattr calls are made by brandpy on the file it looked at, never
  handed back to the kernel.
- chattr: FS_IOC_SETFLAGS and FS_IOC_FSSETXATTR on a read-only fd of
  /img, which the kernel allows the owner (or CAP_FOWNER): made natively,
  they set the image's inode flags, in every cell. Now they are made by
  brandpy, on the container's copy (as overlayfs copies up for a chattr),
  with the caller's exact capabilities (the immutable flag still takes
  CAP_LINUX_IMMUTABLE).
- chattr-ro: the same on a file of a read-only volume (-v FILE:/img:ro):
  made natively, they set the host file's flags; now EROFS.
- stdio: `brandpy run >> host.log`. Before the fix the container read the
  whole log through /proc/self/fd/1 opened read-only, and overwrote its
  head through it opened write-only without O_APPEND (the reopen check
  let any read-only reopen through, and dropped O_APPEND), in every cell.
"""

from __future__ import annotations

import array
import fcntl
import os
import secrets
import subprocess
from pathlib import Path

import pytest

from brandpy.images.layers import MARKER

from .conftest import Cell, runner_for, spread

FS_IOC_GETFLAGS = 0x80086601
CASES = spread(["image", "bind", "swap", "chattr", "chattr-ro", "stdio"], per_case=4)


def _image_state(path: Path) -> tuple[object, ...]:
    st = os.stat(path)
    flags = array.array("i", [0])
    with open(path, "rb") as f:
        fcntl.ioctl(f, FS_IOC_GETFLAGS, flags)
    return (path.read_bytes(), st.st_mode, st.st_uid, st.st_gid, st.st_mtime_ns, flags[0],
            sorted((n, os.getxattr(path, n)) for n in os.listxattr(path)))


@pytest.mark.parametrize("case,cell", CASES)
def test_held_file_not_named(case: str, cell: Cell, rootfs_for, unpriv_pythonpath) -> None:
    runner = runner_for(cell, unpriv_pythonpath)
    rootfs = rootfs_for(cell.uid, "reopen_attack")
    if case == "chattr-ro":
        host_file = rootfs.parent / "volume-file"
        host_file.write_bytes(b"HOST\n")
        os.chown(host_file, cell.uid, cell.uid)
        before = _image_state(host_file)
        r = runner(rootfs, ["/attack", "chattr"], "-v", f"{host_file}:/img:ro", *cell.opts(),
                   timeout=60)
        assert "setflags nodump = -1 Read-only file system" in r.err, r
        assert "DONE" in r.err and _image_state(host_file) == before, r
        return
    if case in ("image", "bind", "swap", "chattr"):
        store = rootfs.parent / "image-inode"
        store.write_bytes(b"IMAGE\n")
        store.chmod(0o644)
        os.setxattr(store, MARKER, b"1")
        os.setxattr(store, "user.keep", b"1")
        os.chown(store, cell.uid, cell.uid)
        os.link(store, rootfs / "img")
        before = _image_state(store)
        opts = ("--cap-add", "SYS_ADMIN") if case == "bind" else ()
        r = runner(rootfs, ["/attack", case], *cell.opts(), *opts, timeout=60)
        assert "DONE" in r.err, r
        if case == "chattr":
            assert "img flags nodump 1 noatime 1" in r.err, r
            assert "immutable = -1 Operation not permitted" in r.err, r
        elif case != "swap":
            assert "img now PWNED" in r.err, r
        assert _image_state(store) == before, r
        return
    secret = f"LOG-{secrets.token_hex(12)}\n"
    log = rootfs.parent / "host.log"
    log.write_text(secret)
    os.chown(log, cell.uid, cell.uid)
    with open(log, "ab") as out:
        p = subprocess.run(runner.cmd(rootfs, ["/attack", "stdio"], *cell.opts()),
                           stdout=out, stderr=subprocess.PIPE, text=True, timeout=60,
                           env=runner.env(), cwd="/")
    assert "DONE" in p.stderr and secret.strip() not in p.stderr, p.stderr
    assert log.read_text() == secret + "appended\n", p.stderr
