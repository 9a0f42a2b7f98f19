"""Calls brandpy performs for a container carry the container's
capabilities, not the supervisor's (issue 15, "the supervisor's own
hands"). tests/security/programs/caps_attack.c, as the entrypoint, uses
the xattr namespaces the kernel keeps for CAP_SYS_ADMIN (trusted.*, and
security.* but for security.capability) on a file of a volume: a host
file.

Before the fix, as root with Docker's default capabilities (no
CAP_SYS_ADMIN), the container set trusted.pwned and security.pwned on the
host's file, removed its trusted.keep, read its trusted.secret and listed
its trusted names, in every root cell: brandpy performed the calls as
itself, a root holding the filesystem capabilities, and so with its own
CAP_SYS_ADMIN. Now those names are set, removed and read with the caller's
exact capabilities (EPERM, ENODATA, not listed, as on Linux); given
CAP_SYS_ADMIN (--cap-add), the same calls work as on Linux. Unprivileged
the supervisor holds no such capability: the nobody cells are controls.
"""

from __future__ import annotations

import os
import random
import secrets
import socket
from pathlib import Path

import pytest

from .conftest import CELLS, Cell, runner_for, spread

CASES = spread(["default", "sys-admin"], per_case=4)
# unprivileged, brandpy gives a privileged port's bind an ephemeral port
ROOT_CELLS = [pytest.param(c, id=c.id) for c in CELLS if c.user == "root"]


@pytest.mark.parametrize("case,cell", CASES)
def test_privileged_xattrs(case: str, cell: Cell, rootfs_for, unpriv_pythonpath) -> None:
    runner = runner_for(cell, unpriv_pythonpath)
    rootfs = rootfs_for(cell.uid, "caps_attack")
    vol = rootfs.parent / "vol"
    vol.mkdir()
    os.chown(vol, cell.uid, cell.uid)
    host_file = vol / "f"
    host_file.write_text("host\n")
    os.chown(host_file, cell.uid, cell.uid)
    secret = f"TRUSTED-{secrets.token_hex(8)}".encode()
    os.setxattr(host_file, "trusted.secret", secret)
    os.setxattr(host_file, "trusted.keep", b"1")
    before = _xattrs(host_file)
    opts = ("--cap-add", "SYS_ADMIN") if case == "sys-admin" else ()
    r = runner(rootfs, ["/attack", "/vol/f"], "-v", f"{vol}:/vol", *cell.opts(), *opts,
               timeout=60)
    assert "DONE" in r.out, r
    if case == "sys-admin" and cell.user == "root":
        # as Linux gives a container root with CAP_SYS_ADMIN
        assert secret.decode() in r.out and "name: trusted.keep" not in r.out, r
        assert _xattrs(host_file)[b"trusted.pwned"] == b"1", r
        return
    assert secret.decode() not in r.out and "name: trusted." not in r.out, r
    assert "setxattr trusted = -1 Operation not permitted" in r.out, r
    assert "lsetxattr security = -1 Operation not permitted" in r.out, r
    assert _xattrs(host_file) == before, r


def _xattrs(path: Path) -> dict[bytes, bytes]:
    return {n.encode(): os.getxattr(path, n) for n in os.listxattr(path)}


def _free_privileged_port() -> int:
    for _ in range(50):
        port = random.randrange(600, 1000)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise AssertionError("no free privileged port on 127.0.0.1")


@pytest.mark.parametrize("cell", ROOT_CELLS)
def test_privileged_port(cell: Cell, rootfs_for) -> None:
    runner = runner_for(cell, None)
    rootfs = rootfs_for(cell.uid, "caps_attack")
    port = str(_free_privileged_port())
    dropped = runner(rootfs, ["/attack", "--bind", port], "--cap-drop", "NET_BIND_SERVICE",
                     *cell.opts(), timeout=60)
    assert "bind = -1 Permission denied" in dropped.out and "DONE" in dropped.out, dropped
    given = runner(rootfs, ["/attack", "--bind", port], *cell.opts(), timeout=60)
    assert "bind = 0\n" in given.out, given
