"""Containment: every attempt to reach a host file outside the rootfs
fails or lands inside the container. Each attack is its own test.

Layout: <case>/secret on the host ("HOST"), <case>/rootfs/secret in the
guest ("GUEST"); an escape would print HOST or create files in <case>/.
"""

import os
import shutil
import signal
import socket
import subprocess
import time

import pytest

from tests.conftest import install_probe


@pytest.fixture
def jail(busybox, probe_bin):
    case = busybox.parent
    (case / "secret").write_text("HOST\n")
    (busybox / "secret").write_text("GUEST\n")
    install_probe(busybox, probe_bin)
    os.chown(busybox / "secret", busybox.stat().st_uid, busybox.stat().st_gid)
    return busybox


def check(brandpy, jail, script, expect_out):
    r = brandpy.sh(jail, script)
    assert "HOST" not in r.out, r
    assert r.out == expect_out, r
    assert sorted(p.name for p in jail.parent.iterdir()) == ["rootfs", "secret"]
    return r


def test_dotdot_from_root(brandpy, jail):
    check(brandpy, jail, "cat ../../../../secret; cd ../../..; cat secret", "GUEST\nGUEST\n")


def test_absolute_symlink(brandpy, jail):
    check(brandpy, jail, "ln -s / /tmp/r; cat /tmp/r/../secret", "GUEST\n")


def test_symlink_chain(brandpy, jail):
    check(brandpy, jail, "cd /tmp && ln -s .. a && ln -s a/../.. b && ln -s b/../../.. c && "
          "cat /tmp/c/secret /tmp/c/../../secret", "GUEST\nGUEST\n")


def test_symlink_to_host_path(brandpy, jail):
    host_secret = jail.parent / "secret"
    r = check(brandpy, jail, f"ln -s {host_secret} /tmp/h; cat /tmp/h || echo failed",
              "failed\n")
    assert "No such file" in r.err


def test_proc_self_root(brandpy, jail):
    check(brandpy, jail, "cat /proc/self/root/../secret; ls /proc/self/root/.. | grep -c rootfs",
          "GUEST\n0\n")


def test_proc_self_cwd(brandpy, jail):
    check(brandpy, jail, "cd /tmp && cat /proc/self/cwd/../../../secret", "GUEST\n")


def test_proc_self_fd_dir(brandpy, jail):
    check(brandpy, jail, "exec 3</tmp; cat /proc/self/fd/3/../../secret", "GUEST\n")


def test_proc_of_host_processes_is_hidden(brandpy, jail):
    me = os.getpid()   # a host process: never a container PID (those count from 1)
    r = check(brandpy, jail, f"cat /proc/{me}/root/etc/hostname || echo hidden; "
              f"ls /proc/{me}/cwd/ || echo hidden; ls /proc | grep -c {me}; "
              "test -d /proc/1 && echo init", "hidden\nhidden\n0\ninit\n")
    assert r.status == 0


def test_openat_with_dirfds(brandpy, jail):
    r = brandpy(jail, ["/usr/bin/probe", "openat-escape", "secret"])
    lines = dict(line.split(": ") for line in r.out.splitlines())
    # resolved inside the container: the guest's /secret opens (an fd number)
    for key in ("openat-root", "openat-tmp", "openat2"):
        assert lines[key].isdigit(), r
    assert lines["openat-abs"] == "ENOENT"          # /tmp/secret
    assert lines["openat2-in-root"] == "ENOENT"     # clamped at /tmp: /tmp/secret
    assert lines["openat2-beneath"] == "EXDEV"
    assert sorted(p.name for p in jail.parent.iterdir()) == ["rootfs", "secret"]


def test_rename_out_of_the_root(brandpy, jail):
    check(brandpy, jail, "mkdir /tmp/d && mv /tmp/d /../../moved && ls -d /moved", "/moved\n")
    assert (jail / "moved").is_dir()


def test_hard_link_to_outside(brandpy, jail):
    check(brandpy, jail, "ln /../../secret /tmp/hl && cat /tmp/hl", "GUEST\n")


def test_write_through_dotdot(brandpy, jail):
    check(brandpy, jail, "echo pwned > /../../pwned && cat /pwned", "pwned\n")
    assert (jail / "pwned").read_text() == "pwned\n"


def test_unix_socket_outside(brandpy, jail, world_tmp):
    path = jail.parent / "host.sock"
    srv = socket.socket(socket.AF_UNIX)
    srv.bind(str(path))
    srv.listen(1)
    os.chmod(path, 0o777)
    try:
        for target in (str(path), "/../../host.sock"):
            r = brandpy(jail, ["/usr/bin/probe", "unix", "connect", target])
            assert r.out == "connect: ENOENT\n", r
    finally:
        srv.close()
        path.unlink()


def test_chroot_escape(brandpy, jail):
    """Climbing out of a chroot reaches the container's root, never the host's."""
    r = brandpy(jail, ["/usr/bin/probe", "chroot-escape"])
    assert r.out == "chroot: 0\nchroot-dot: 0\nopen: 0\nread: GUEST\n", r


def test_mount_is_denied(brandpy, jail):
    r = brandpy.sh(jail, "mount -t tmpfs none /mnt; echo $?")
    assert r.out.strip() != "0" and "permission denied" in r.err, r


def test_host_processes_cannot_be_signalled(brandpy, jail):
    victim = subprocess.Popen(["sleep", "60"])
    try:
        r = check(brandpy, jail, f"kill -9 {victim.pid} || echo refused; kill -9 -1; echo done",
                  "refused\ndone\n")
        time.sleep(0.2)
        assert victim.poll() is None, "a host process was killed from the container"
        assert r.status == 0
    finally:
        victim.send_signal(signal.SIGKILL)
        victim.wait()


def test_file_bind_stays_its_file(brandpy, jail):
    """A file bind inside another writable bind: the container renames the
    file away and puts a symlink to a host file in its place; the bind
    still shows the file it was made of (its inode, as a kernel bind
    mount keeps it), never what the host path names now."""
    vol = jail.parent / "vol"
    vol.mkdir()
    (vol / "f").write_text("BOUND\n")
    uid, gid = jail.stat().st_uid, jail.stat().st_gid
    for p in (vol, vol / "f"):
        os.chown(p, uid, gid)
    try:
        r = brandpy.sh(jail, f"mv /d/f /d/g && ln -s {jail.parent / 'secret'} /d/f && cat /f; "
                       "echo more >> /f; cat /d/g",
                       "-v", f"{vol}:/d", "-v", f"{vol / 'f'}:/f")
        assert "HOST" not in r.out, r
        assert r.out == "BOUND\nBOUND\nmore\n", r
        assert (jail.parent / "secret").read_text() == "HOST\n"
    finally:
        shutil.rmtree(vol)
