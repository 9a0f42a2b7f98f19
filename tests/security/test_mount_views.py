"""brandpy's views of /proc and /sys keep their read-only and masked paths
whatever a container with CAP_SYS_ADMIN mounts (mount is emulated in its
mount table, syscalls/handlers/mount.py).
tests/security/programs/mount_attack.c, as the entrypoint, with
--cap-add SYS_ADMIN:

- rbind: `mount --rbind / /mnt2` copied /proc and /sys below /mnt2
  without the masked paths, and copied /proc/sys's read-only mount as one
  of the container's own, which it then unmounted.
- move: `mount -t proc proc /proc` (allowed at /proc only), then
  `mount --move /proc /x`: a view of the host's whole procfs at /x, with
  nothing read-only or masked below it; the same for sysfs.

Before the fix, as root, both opened the host's kernel.core_pattern for
writing (the attack closes it unwritten: a write runs a program of the
container's choosing as the host's root at the next crash) and read the
masked timer_list and /sys/firmware, in every root cell; unprivileged
/sys/firmware was read. Now a recursive bind brings along only what a
bind could take (files, binds, volumes, tmpfs), and a view of proc or
sysfs never moves (EINVAL).
"""

from __future__ import annotations

import pytest

from .conftest import Cell, runner_for, spread

CASES = spread(["rbind", "move"], per_case=4)


@pytest.mark.parametrize("case,cell", CASES)
def test_views_keep_their_masks(case: str, cell: Cell, rootfs_for, unpriv_pythonpath) -> None:
    runner = runner_for(cell, unpriv_pythonpath)
    rootfs = rootfs_for(cell.uid, "mount_attack")
    r = runner(rootfs, ["/attack", case], "--cap-add", "SYS_ADMIN", *cell.opts(), timeout=60)
    assert "DONE" in r.out, r
    escapes = [line for line in r.out.splitlines() if line.startswith(("WRITABLE", "READ"))]
    assert not escapes, r
