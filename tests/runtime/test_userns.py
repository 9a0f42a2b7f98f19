"""The container's user namespace, unprivileged (README, Walls): where the
host forbids unprivileged user namespaces, or a read-only mount below its
/proc (a host that is itself a container) forbids the container's
writable /proc there, containers run as before without namespaces, and
`brandpy run --debug` says why."""

import os
import subprocess
import sys

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


@pytest.mark.skipif(os.geteuid() != 0, reason="makes a mount namespace")
def test_a_read_only_mount_below_proc_gets_the_fallback(engine, flat_busybox, unpriv_pythonpath):
    """In a user namespace the kernel keeps an inherited mount read-only:
    the container's /proc could not be bound writable (the spawner would
    fail, EPERM), so the probe says so and containers run without."""
    runner = Runner("nobody", engine, unpriv_pythonpath)
    argv = ["/bin/sh", "-c", "echo $$; sleep 0 & echo $!"]
    script = ("mount --bind /proc/sys /proc/sys && mount -o remount,bind,ro /proc/sys && "
              'exec "$@"')
    p = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c", script,
                        "sh", *runner.cmd(flat_busybox, argv, "--debug")],
                       env=runner.env(), capture_output=True, text=True, timeout=120, cwd="/")
    assert (p.returncode, p.stdout) == (0, "1\n2\n"), p
    assert "the host's /proc holds read-only mounts" in p.stderr, p.stderr
