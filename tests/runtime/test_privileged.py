"""Privileged containers (issue 17, class 4): with CAP_SYS_ADMIN a
container mounts, unmounts and unshares its mount and UTS namespaces, as
under Docker with --cap-add SYS_ADMIN, and the host sees none of it
(syscalls/handlers/mount.py emulates them in the container's mount
tables). Compared with the same script natively, in a chroot inside a
private mount namespace of its own, as root; the same answers as root
and unprivileged, under both engines."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.conftest import Runner, copy_rootfs

OWNED: dict[int, Path] = {}     # one Debian rootfs per runner's user, for the module

SCRIPT = r"""
mount -t tmpfs -o mode=750 scratch /mnt && echo mounted
awk '$5 == "/mnt" { for (i = 7; $i != "-"; i++); print $5, $(i + 1), $(i + 2) }' \
    /proc/self/mountinfo | cut -d, -f1
stat -c '%a %U' /mnt
echo hi > /mnt/f && cat /mnt/f
umount /mnt && ls -A /mnt | wc -l
mount --bind /etc/apt /mnt && ls /mnt | grep -c sources
mount -o remount,bind,ro /mnt; touch /mnt/x 2>&1 | sed 's/.*: //'
umount /mnt; ls -A /mnt | wc -l
umount /mnt 2>&1 | sed 's/.*: //'
unshare -m sh -c 'mount -t tmpfs inner /mnt && touch /mnt/in && ls /mnt'
ls -A /mnt | wc -l; grep -c ' /mnt ' /proc/self/mountinfo
h=$(hostname); unshare -u sh -c 'hostname other; hostname'
[ "$(hostname)" = "$h" ] && echo hostname kept
unshare -m sh -c 'mount --make-rprivate / && echo private'
"""
EXPECTED = """mounted
/mnt tmpfs scratch
750 root
hi
0
2
Read-only file system
0
not mounted.
in
0
0
other
hostname kept
private
"""


def native(rootfs: Path) -> str:
    """The script in a chroot in a mount namespace of its own, its root a
    mount point (as a container's is) with its /proc."""
    p = subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c",
                        f"mount --bind {rootfs} {rootfs} && mount -t proc proc {rootfs}/proc "
                        f"&& chroot {rootfs} sh -c \"$0\"", SCRIPT],
                       capture_output=True, text=True, timeout=60)
    return p.stdout + p.stderr


def host_mounts() -> str:
    return Path("/proc/self/mountinfo").read_text()


@pytest.fixture
def debian(brandpy: Runner, debian_shared: Path, world_tmp: Path, debian_image: Path) -> Path:
    """Unprivileged, the image must be the runner's user's (its set-user-ID
    mount is root's then, as in a rootless daemon's image store)."""
    if not brandpy.uid:
        return debian_shared
    if brandpy.uid not in OWNED:
        OWNED[brandpy.uid] = copy_rootfs(debian_image, world_tmp / "debian-owned",
                                         owner=brandpy.uid)
    return OWNED[brandpy.uid]


@pytest.mark.skipif(os.geteuid() != 0, reason="the native reference needs root")
def test_native_reference(debian_shared):
    """The expectation is what Linux itself answers."""
    assert native(debian_shared) == EXPECTED


def test_mounts_and_namespaces(brandpy: Runner, debian: Path):
    before = host_mounts()
    r = brandpy.sh(debian, SCRIPT, "--cap-add", "SYS_ADMIN")
    assert r.out + r.err == EXPECTED, r
    assert host_mounts() == before
    assert not any((debian / "mnt").iterdir())


def test_needs_cap_sys_admin(brandpy: Runner, debian: Path):
    """Without it, as in Docker's default profile: EPERM."""
    r = brandpy.sh(debian, "mount -t tmpfs t /mnt; unshare -m true; umount /proc",
                   timeout=60)
    assert r.err.count("ermission denied") + r.err.count("Operation not permitted") + \
        r.err.count("must be superuser") == 3, r


def test_walls_stay(brandpy: Runner, debian: Path):
    """brandpy's own mounts (the root, /proc, /sys, masked paths) cannot be
    unmounted to uncover what they hide, nor a read-only one made writable;
    brandpy's /proc cannot be bound elsewhere (it would be the host's whole
    procfs, untranslated); a PID or user namespace cannot be made."""
    r = brandpy.sh(debian, "umount /proc; umount /sys; umount /; unshare -p true; "
                   "unshare -U true; cat /proc/kcore | wc -c; "
                   "mount --bind /proc /mnt; mount -o remount,rw /proc/sys; "
                   "mount --bind /etc /mnt && mount -o remount,bind,ro /mnt && "
                   "mount -o remount,bind,rw /mnt; ls /mnt/1 2>&1 | grep -c environ",
                   "--cap-add", "SYS_ADMIN")
    assert r.err.count("target is busy") == 3, r
    assert r.err.count("unshare failed: Operation not permitted") == 2, r
    assert r.err.count("permission denied") == 3, r
    assert r.out.split() == ["0", "0"], r
