"""The container's user namespace, unprivileged (README, Walls): where the
host forbids unprivileged user namespaces, containers run as before
without namespaces, and `brandpy run --debug` says why; the host's
read-only mounts stay read-only in the container, as root too, and
neither case keeps a container from starting."""

import os
import shutil
import subprocess
import sys
import tempfile

import pytest

from tests.conftest import Runner

# Runs argv as root of a user namespace (the host's uids 0-65535 mapped)
# whose user.max_user_namespaces is 0: a host that forbids uid 65534 to make
# one, as such hosts' sysctls or AppArmor do.
FORBIDDING = """
import ctypes
import os
import sys

libc = ctypes.CDLL(None, use_errno=True)
go, ready = os.pipe(), os.pipe()
pid = os.fork()
if pid == 0:
    if libc.unshare(0x10000000) != 0:     # CLONE_NEWUSER
        os._exit(126)
    os.write(ready[1], b"u")
    os.read(go[0], 1)
    with open("/proc/sys/user/max_user_namespaces", "w") as f:
        f.write("0")
    os.execvp(sys.argv[1], sys.argv[1:])
os.read(ready[0], 1)
for name in ("uid_map", "gid_map"):
    with open(f"/proc/{pid}/{name}", "w") as f:
        f.write("0 0 65536")
os.write(go[1], b"g")
_, status = os.waitpid(pid, 0)
sys.exit(os.waitstatus_to_exitcode(status))
"""


@pytest.mark.skipif(os.geteuid() != 0, reason="makes a user namespace with a uid range")
def test_a_host_that_forbids_user_namespaces_gets_the_fallback(engine, flat_busybox,
                                                               unpriv_pythonpath):
    runner = Runner("nobody", engine, unpriv_pythonpath)
    argv = ["/bin/sh", "-c", "echo $$; sleep 0 & echo $!"]
    p = subprocess.run([sys.executable, "-c", FORBIDDING,
                        *runner.cmd(flat_busybox, argv, "--debug")],
                       env=runner.env(), capture_output=True, text=True, timeout=120, cwd="/")
    assert (p.returncode, p.stdout) == (0, "1\n2\n"), p
    assert "unprivileged user namespaces are not available here (No space left on device" \
        in p.stderr, p.stderr


# Runs "$@" in a mount namespace of its own where the directory $1 is a
# read-only mount (and /proc/sys, as on a host that is itself a container).
READ_ONLY = ('d=$1; shift; for m in "$d" /proc/sys; do mount --bind "$m" "$m" && '
             'mount -o remount,bind,ro "$m" || exit 99; done; exec "$@"')


@pytest.mark.skipif(os.geteuid() != 0, reason="makes a mount namespace")
@pytest.mark.parametrize("user", ["root", "nobody"])
def test_the_hosts_read_only_mounts_stay_read_only(user, engine, flat_busybox,
                                                   unpriv_pythonpath):
    """The spawner never clears a flag of the host's mounts (in a user
    namespace the kernel would refuse it; as root it made a read-only
    mount writable): a writable volume on a read-only host mount is
    read-only in the container, as with Docker's binds, and a read-only
    mount below the host's /proc keeps no container from its namespaces."""
    runner = Runner(user, engine, unpriv_pythonpath)
    vol = tempfile.mkdtemp(prefix="ro-volume-")
    os.chmod(vol, 0o777)
    argv = ["/bin/sh", "-c", "echo $$; echo x > /data/f || echo refused"]
    try:
        p = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c",
                            READ_ONLY, "sh", vol,
                            *runner.cmd(flat_busybox, argv, "--debug", "-v", f"{vol}:/data")],
                           env=runner.env(), capture_output=True, text=True, timeout=120,
                           cwd="/")
        assert os.listdir(vol) == []
    finally:
        shutil.rmtree(vol)
    assert (p.returncode, p.stdout) == (0, "1\nrefused\n"), p
    assert "Read-only file system" in p.stderr, p.stderr
    assert "mount, PID, IPC and UTS namespaces" in p.stderr, p.stderr
