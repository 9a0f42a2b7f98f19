"""The container's kernel view (issue 4): root identity and fake ownership,
container PIDs, UTS and kernel personality, /proc /dev /sys and /etc files,
ports, Docker's policy, and the ledger of unsupported calls."""

import json
import os
import socket
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import IMAGES, Runner, copy_rootfs, install_probe


@pytest.fixture
def probed(busybox, probe_bin):
    install_probe(busybox, probe_bin)
    return busybox


@pytest.fixture
def debian(brandpy, world_tmp, debian_image):
    """A private Debian rootfs owned by the runner's user (for writes)."""
    dest = Path(world_tmp) / f"debian-{brandpy.user}-{os.urandom(3).hex()}"
    return copy_rootfs(debian_image, dest, owner=brandpy.uid or None)


# -- identity ---------------------------------------------------------------------

def test_the_container_is_root_by_default(brandpy, busybox):
    r = brandpy.sh(busybox, "id; echo $HOME")
    assert r.out == "uid=0(root) gid=0(root) groups=0(root)\n/root\n", r


@pytest.mark.parametrize("user,expect", [
    ("nobody", "uid=65534(nobody) gid=65534(nogroup) groups=65534(nogroup)"),
    ("2000:2000", "uid=2000 gid=2000 groups=2000"),
    ("app", "uid=1000(app) gid=1000(app) groups=1000(app)")])
def test_user_option(brandpy, busybox, user, expect):
    r = brandpy(busybox, ["id"], "--user", user)
    assert r.out.strip() == expect, r


def test_unknown_user_is_an_error(brandpy, busybox):
    r = brandpy(busybox, ["id"], "--user", "nosuchuser")
    assert r.status == 125 and "unable to find user nosuchuser" in r.err


def test_chown_is_recorded_and_persists(brandpy, busybox):
    r = brandpy.sh(busybox, "touch /tmp/f && chown 1000:1000 /tmp/f && chmod 4750 /tmp/f && "
                   "stat -c '%u:%g %A' /tmp/f")
    assert r.out == "1000:1000 -rwsr-x---\n", r
    again = brandpy.sh(busybox, "stat -c '%u:%g %A' /tmp/f; ls -ln /tmp/f | cut -c1-10")
    assert again.out == "1000:1000 -rwsr-x---\n-rwsr-x---\n", again


def test_device_nodes(brandpy, busybox):
    r = brandpy.sh(busybox, "mknod /tmp/d c 1 3 && ls -l /tmp/d | awk '{print $1, $3, $5, $6}'")
    assert r.out == "crw-r--r-- root 1, 3\n", r


def test_cap_drop_chown(brandpy, busybox):
    r = brandpy.sh(busybox, "touch /tmp/f; chown 1000 /tmp/f", "--cap-drop", "CHOWN")
    assert r.status != 0 and "Operation not permitted" in r.err, r


def test_cap_add_all_keeps_what_the_host_allows(brandpy, busybox):
    """ALL on a machine whose root lacks some capabilities (CAP_SYS_RESOURCE
    here) gives every capability the supervisor holds."""
    r = brandpy.sh(busybox, "grep CapEff /proc/self/status", "--cap-add", "ALL")
    assert r.status == 0, r
    if brandpy.user == "root":
        held = next(line for line in Path("/proc/self/status").read_text().splitlines()
                    if line.startswith("CapEff"))
        assert r.out.split() == held.split(), r


def test_setuid_drops_root(brandpy, debian):
    r = brandpy(debian, ["/bin/su", "nobody", "-s", "/bin/sh", "-c",
                         "id -u; touch /tmp/mine; stat -c %U /tmp/mine"])
    assert r.out.splitlines()[0] == "65534", r


def test_dpkg_installs_with_ownership(brandpy, debian):
    debs = list((IMAGES / "debs").glob("hello_*.deb"))
    assert debs, "run `make images` (it downloads hello_*.deb)"
    (debian / "tmp" / debs[0].name).write_bytes(debs[0].read_bytes())
    r = brandpy.sh(debian, f"dpkg -i /tmp/{debs[0].name} >/dev/null && hello && "
                   "dpkg -L hello | grep -c /usr/bin/hello && "
                   "ls -l /usr/bin/hello | cut -d' ' -f1,3,4")
    assert r.out == "Hello, world!\n1\n-rwxr-xr-x root root\n", r


# -- PIDs -----------------------------------------------------------------------------

def test_own_exe_link_names_the_program_in_the_container(brandpy, busybox, outdir):
    """readlink("/proc/self/exe"), which busybox makes at every start, names
    the program as the container sees it (a symlink's target, as Linux
    resolves it); the native engine answers it in C."""
    stats = outdir / "stats.json"
    r = brandpy.sh(busybox, "readlink /proc/self/exe; cp /bin/busybox /tmp/busybox; "
                   "ln -s busybox /tmp/readlink; /tmp/busybox readlink /proc/self/exe; "
                   "/tmp/readlink /proc/self/exe; /tmp/busybox sh -c 'readlink /proc/$$/exe'",
                   "--stats-json", str(stats))
    assert (r.status, r.out) == (0, "/bin/busybox\n" + "/tmp/busybox\n" * 3), r
    if brandpy.engine == "native":
        readlink = json.loads(stats.read_text())["Notified"]["readlink"]
        # /proc/self/exe in C; /proc/PID/exe (the last) in Python
        assert readlink["InPython"] == 1, readlink


def test_entrypoint_is_pid_1(brandpy, busybox):
    check_pid_1(brandpy, busybox)


def test_entrypoint_is_pid_1_without_user_namespaces(brandpy_flat, flat_busybox):
    """Unprivileged where the host forbids user namespaces: brandpy's own
    numbering, translated, and PID 1's rules emulated."""
    check_pid_1(brandpy_flat, flat_busybox)
    check_pid1_ignores_signals(brandpy_flat, flat_busybox)


def check_pid_1(brandpy: Runner, busybox: Path) -> None:
    r = brandpy.sh(busybox, "echo $$; sh -c 'echo $PPID'; sleep 0 & echo $!")
    pid1, ppid, child = r.out.split()
    assert (pid1, ppid) == ("1", "1") and int(child) > 1, r


def test_ps_lists_only_container_processes(brandpy, debian_shared):
    r = brandpy(debian_shared, ["/bin/bash", "-c", "sleep 5 & until [ $(cat /proc/$!/comm) = "
                                "sleep ]; do :; done; ps -e -o pid=,comm=; kill %1"])
    rows = [line.split() for line in r.out.splitlines()]
    assert rows[0] == ["1", "bash"], r      # in PID order, as procfs lists them
    assert {c for _, c in rows} == {"bash", "sleep", "ps"}, r


def test_pid1_ignores_signals_it_does_not_handle(brandpy, busybox):
    check_pid1_ignores_signals(brandpy, busybox)


def check_pid1_ignores_signals(brandpy: Runner, busybox: Path) -> None:
    r = brandpy.sh(busybox, "kill -TERM 1; echo alive")
    assert (r.status, r.out) == (0, "alive\n")
    r = brandpy.sh(busybox, "trap 'echo handled; exit 3' TERM; kill -TERM 1; sleep 2")
    assert (r.status, r.out) == (3, "handled\n")


# -- UTS and personality ---------------------------------------------------------------

def test_hostname_and_kernel_release(brandpy, busybox):
    r = brandpy.sh(busybox, "hostname; uname -r; cat /etc/hostname /proc/sys/kernel/hostname; "
                   "grep -c box1 /etc/hosts", "--hostname", "box1", "--kernel-release", "4.19.0")
    assert r.out == "box1\n4.19.0\nbox1\nbox1\n1\n", r


def test_sethostname_needs_cap_sys_admin(brandpy, busybox):
    assert brandpy.sh(busybox, "hostname other").status != 0
    r = brandpy.sh(busybox, "hostname other && hostname", "--cap-add", "SYS_ADMIN")
    assert r.out == "other\n", r


def test_personality_makes_newer_syscalls_enosys(brandpy, probed):
    r = brandpy(probed, ["/usr/bin/probe", "newer-syscalls"], "--kernel-release", "4.19.0",
                "--personality")
    assert r.out == ("openat2: ENOSYS\nclone3: ENOSYS\nclose_range: ENOSYS\n"
                     "pidfd_open: ENOSYS\nfork: 3\nclosefrom: ok\n"), r


def test_glibc_programs_run_under_the_personality(brandpy, debian_shared):
    r = brandpy(debian_shared, ["/usr/bin/python3", "-c",
                                "import os, subprocess; os.closerange(3, 100); "
                                "print(subprocess.run(['true']).returncode, os.uname().release)"],
                "--kernel-release", "4.19.0", "--personality")
    assert r.out == "0 4.19.0\n", r


# -- /proc, /dev, /sys, /etc --------------------------------------------------------------

def test_proc_shows_the_container(brandpy, busybox):
    r = brandpy.sh(busybox, "cat /proc/1/cgroup; cut -d' ' -f2 /proc/mounts | sort | head -3; "
                   "awk '$5 == \"/\"' /proc/self/mountinfo | wc -l; "
                   "grep -E '^(Pid|PPid|TracerPid)' /proc/self/status")
    assert r.out == "0::/\n/\n/dev\n/dev/pts\n1\nPid:\t1\nPPid:\t0\nTracerPid:\t0\n", r
    assert str(busybox) not in brandpy.sh(busybox, "cat /proc/self/mountinfo").out


def test_the_user_namespace_looks_like_the_initial_one(brandpy, busybox):
    """Unprivileged the container's processes are in a user namespace
    mapping uid 65534 alone (Walls); with emulated identities they see the
    initial one's maps, as root's do."""
    r = brandpy.sh(busybox, "cat /proc/self/uid_map /proc/1/gid_map /proc/self/setgroups")
    assert r.out == "         0          0 4294967295\n" * 2 + "allow\n", r


def test_a_cwd_or_fd_in_proc_names_container_pids(brandpy, busybox):
    """The kernel names a cwd or directory fd in /proc/PID by the host PID:
    brandpy maps it back, so getcwd and readlink never show a host PID and
    relative paths from there reach the container's process."""
    r = brandpy.sh(busybox, "exec 3</proc/1/task; cd /proc/1 && cat comm && pwd && /bin/pwd; "
                   "readlink /proc/self/cwd; readlink /proc/1/fd/3; cd fd && ls -d 3; "
                   "sh -c 'cd /proc/self && [ $(/bin/pwd) = /proc/$$ ] && echo same'; true")
    assert r.out == "sh\n/proc/1\n/proc/1\n/proc/1\n/proc/1/task\n3\nsame\n", r


def test_dev(brandpy, busybox):
    r = brandpy.sh(busybox, "ls /dev | sort | tr '\\n' ' '; echo; echo x > /dev/null; "
                   "head -c 4 /dev/zero | wc -c; readlink /dev/fd; readlink /dev/stdout")
    names = r.out.splitlines()[0].split()
    for name in ("null", "zero", "full", "random", "urandom", "tty", "console", "ptmx", "pts",
                 "shm", "fd", "stdin", "stdout", "stderr"):
        assert name in names, r
    assert r.out.splitlines()[1:] == ["4", "/proc/self/fd", "/proc/self/fd/1"]


def test_device_option_adds_host_devices(brandpy, busybox, world_tmp):
    """--device HOST[:CONTAINER][:PERMS], as docker run takes it: the host's
    node (not a copy) at the container path, read-only without w; a
    directory gives every node under it."""
    r = brandpy.sh(busybox, "ls -l /dev/myzero | cut -c1; ls /dev | grep -c myzero; "
                   "head -c 4 /dev/myzero | wc -c; echo x > /dev/myzero || echo refused; "
                   "echo x > /opt/full || echo full",
                   "--device", "/dev/zero:/dev/myzero:r", "--device", "/dev/full:/opt/full")
    assert r.out == "c\n1\n4\nrefused\nfull\n", r
    assert "Read-only file system" in r.err and "No space left on device" in r.err, r
    nodes = Path(world_tmp) / f"nodes-{os.urandom(3).hex()}"
    (nodes / "sub").mkdir(parents=True)
    os.mknod(nodes / "sub" / "null", 0o20666, os.makedev(1, 3))
    os.chmod(nodes / "sub" / "null", 0o666)
    (nodes / "not-a-device").write_text("x")
    r = brandpy.sh(busybox, "ls /dev/extra/sub; echo x > /dev/extra/sub/null && echo wrote; "
                   "ls /dev/extra/not-a-device", "--device", f"{nodes}:/dev/extra")
    assert r.out == "null\nwrote\n" and "No such file" in r.err, r
    r = brandpy.sh(busybox, "echo x > /dev/null || echo full", "--device", "/dev/full:/dev/null")
    assert r.out == "full\n", r      # a --device replaces a default device at its path
    r = brandpy.sh(busybox, "true", "--device", "/dev/nonexistent")
    assert r.status == 125 and "error gathering device information" in r.err, r


def test_sys_is_read_only(brandpy, busybox):
    r = brandpy.sh(busybox, "touch /sys/x || echo refused; ls /sys | grep -c kernel")
    assert "refused" in r.out and "Read-only file system" in r.err, r


def test_proc_sys_is_read_only(brandpy, busybox):
    r = brandpy.sh(busybox, "echo 1 > /proc/sys/kernel/panic || echo refused")
    assert r.out == "refused\n", r


# -- ports -------------------------------------------------------------------------------

def _get(port: int, timeout: float = 10) -> str:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as resp:
                return resp.read().decode()
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_containers_publish_port_80(brandpy, world_tmp, busybox_image):
    servers, ports = [], []
    try:
        for n in (1, 2):
            rootfs = copy_rootfs(busybox_image, Path(world_tmp) / f"web{n}-{brandpy.user}-{brandpy.engine}",
                                 owner=brandpy.uid or None)
            (rootfs / "www").mkdir()
            (rootfs / "www" / "index.html").write_text(f"site {n}\n")
            port = _free_port()
            ports.append(port)
            # a shell as PID 1 that stops httpd on SIGTERM (PID 1 ignores what
            # it does not handle), so brandpy exits and cleans up after itself
            servers.append(subprocess.Popen(
                brandpy.cmd(rootfs, ["/bin/sh", "-c", "httpd -f -p 80 -h /www & "
                                     "trap 'kill $!; exit 0' TERM; wait"],
                            "-p", f"{port}:80"), env=brandpy.env(), stderr=subprocess.PIPE))
        assert [_get(p) for p in ports] == ["site 1\n", "site 2\n"]
    finally:
        for s in servers:
            s.terminate()
        for s in servers:
            try:
                assert s.wait(30) == 0
            except subprocess.TimeoutExpired:
                s.kill()
                s.wait()
                raise


def test_getsockname_shows_the_container_port(brandpy, debian_shared):
    port = _free_port()
    code = ("import socket; s = socket.socket(); s.bind(('0.0.0.0', 80)); s.listen(); "
            "c = socket.create_connection(('127.0.0.1', 80)); "
            "print(s.getsockname()[1], c.getpeername()[1])")
    r = brandpy(debian_shared, ["/usr/bin/python3", "-c", code], "-p", f"{port}:80")
    assert r.out == "80 80\n", r


# -- policy and the ledger ----------------------------------------------------------------

def test_docker_default_denials(brandpy, probed):
    r = brandpy(probed, ["/usr/bin/probe", "denied"])
    results = dict(line.split(": ") for line in r.out.splitlines())
    assert len(results) == 15 and set(results.values()) == {"EPERM"}, r


def test_setting_the_clock_needs_cap_sys_time(brandpy, probed):
    """As in Docker, --cap-add SYS_TIME lets a container set the clock,
    which is the host's (settimeofday(NULL, NULL) checks the capability and
    changes nothing); unprivileged, the host refuses."""
    r = brandpy(probed, ["/usr/bin/probe", "denied"], "--cap-add", "SYS_TIME")
    results = dict(line.split(": ") for line in r.out.splitlines())
    assert results["settimeofday"] == ("0" if brandpy.uid == 0 else "EPERM"), r
    assert results["mount"] == "EPERM", r


def test_memory_policy_needs_cap_sys_nice(brandpy, debian_shared):
    """As in Docker's default profile, a container sets and reads its own
    memory policy (get_mempolicy, set_mempolicy, mbind) with --cap-add
    SYS_NICE or no profile, and is refused (EPERM) without."""
    code = ("import ctypes, os; libc = ctypes.CDLL(None, use_errno=True); "
            "calls = {'get_mempolicy': (239, None, None, 0, None, 0), "
            "'set_mempolicy': (238, 0, None, 0), "    # MPOL_DEFAULT: the policy it has
            "'mbind': (237, 0, 0, 0, None, 0, 0)}; "  # an empty range
            "print(' '.join(f'{n}={libc.syscall(*a)}/{ctypes.get_errno()}' "
            "for n, a in calls.items()))")
    ok = "get_mempolicy=0/0 set_mempolicy=0/0 mbind=0/0\n"
    r = brandpy(debian_shared, ["/usr/bin/python3", "-c", code], "--cap-add", "SYS_NICE")
    assert r.out == ok, r
    r = brandpy(debian_shared, ["/usr/bin/python3", "-c", code],
                "--security-opt", "seccomp=unconfined")
    assert r.out == ok, r
    r = brandpy(debian_shared, ["/usr/bin/python3", "-c", code])
    assert r.out == "get_mempolicy=-1/1 set_mempolicy=-1/1 mbind=-1/1\n", r


def test_report_lists_unsupported_calls(brandpy, probed):
    r = brandpy(probed, ["/usr/bin/probe", "denied"], "--report")
    report = r.err.splitlines()
    assert report[0].split() == ["syscall", "calls", "error", "reason"]
    mount = next(line for line in report if line.startswith("mount "))
    assert "EPERM" in mount and "seccomp profile" in mount   # without CAP_SYS_ADMIN
    assert any(line.startswith("personality ") and "seccomp profile" in line
               for line in report), report


def test_strict_mode_stops_at_the_first_unsupported_call(brandpy, probed):
    r = brandpy(probed, ["/usr/bin/probe", "denied"], "--strict")
    assert r.status == 128 + 31 and r.out == "", r
    assert "strict mode" in r.err and "mount" in r.err


def test_custom_seccomp_profile(brandpy, busybox, world_tmp):
    profile = Path(world_tmp) / f"profile-{os.urandom(3).hex()}.json"
    profile.write_text('{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": '
                       '["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13}]}')
    r = brandpy.sh(busybox, "mkdir /tmp/x || echo denied; mount -t tmpfs x /mnt; echo $?",
                   "--security-opt", f"seccomp={profile}")
    assert r.out.splitlines()[0] == "denied" and "Permission denied" in r.err, r
    r = brandpy.sh(busybox, "mount -t tmpfs x /mnt", "--security-opt", "seccomp=/nonexistent")
    assert r.status == 125 and "seccomp profile /nonexistent" in r.err


def test_restarted_syscalls_keep_their_arguments(brandpy, probed):
    """A blocking open interrupted by a SA_RESTART signal handler."""
    r = brandpy(probed, ["/usr/bin/probe", "restart"])
    assert r.out == "open: 0\nread: hi\n", r


def test_signals_do_not_interrupt_what_linux_never_interrupts(brandpy, probed):
    """getpid, stat and open of a file under a signal every few µs whose
    handler lacks SA_RESTART: a signal that ends a thread's wait for its
    notification's answer must not become EINTR (getpid returned -4). A
    blocking fifo open still gets EINTR, as natively."""
    r = brandpy(probed, ["/usr/bin/probe", "interrupted"])
    assert r.out.splitlines() == ["wrong getpid: 0", "failed stat: 0", "failed open: 0",
                                  "fifo open: EINTR"], r


def test_terminal_job_control_ids(brandpy, probed):
    """TIOCGPGRP/TIOCSPGRP/TIOCGSID carry container IDs, as getpgrp and
    getsid report them (a shell's job control depends on it)."""
    r = brandpy(probed, ["/usr/bin/probe", "tty"])
    assert r.out.splitlines() == [
        "TIOCSCTTY: 0", "TIOCGPGRP: 0", "pgrp matches: 1", "TIOCGSID: 0", "sid matches: 1",
        "TIOCSPGRP child group: 0", "foreground is the child group: 1", "TIOCSPGRP back: 0",
        "TIOCSPGRP unknown group: ESRCH", "TIOCSPGRP bad pointer: EFAULT"], r


def test_process_names_are_the_names_run(brandpy, busybox, debian_shared):
    """The kernel names a process after the path exec'd: a busybox applet's
    link, an alternatives link, not the host file they lead to."""
    r = brandpy.sh(busybox, "cat /proc/self/comm; sleep 1 & sleep 0.3; ps -o comm | grep -x sleep")
    assert r.out == "cat\nsleep\n", r
    r = brandpy(debian_shared, ["/usr/bin/awk", 'BEGIN { getline n < "/proc/self/comm"; print n }'])
    assert r.out == "awk\n", r


def test_read_only_group_add_and_ulimits(brandpy, busybox):
    r = brandpy.sh(busybox, "id -G; ulimit -n; ulimit -Hn; touch /x || echo refused",
                   "--read-only", "--group-add", "app", "--group-add", "4242",
                   "--ulimit", "nofile=100:200")
    assert r.out == "0 1000 4242\n100\n200\nrefused\n", r
    assert "Read-only file system" in r.err
    bad = brandpy.sh(busybox, "true", "--group-add", "nosuch")
    assert bad.status == 125 and "unable to find group nosuch" in bad.err, bad
    bad = brandpy.sh(busybox, "true", "--ulimit", "nofile=10:5")
    assert bad.status == 125 and "soft limit 10 is above the hard limit 5" in bad.err, bad


def test_opens_leave_the_cpu_mask_as_it_was(brandpy, busybox):
    """The native engine holds a tracee on one CPU while it installs an
    opened fd (a faster wake-up); the tracee's own mask is put back."""
    r = brandpy.sh(busybox, "for i in 1 2 3 4 5 6 7 8; do cat /etc/passwd >/dev/null; done; "
                            "grep Cpus_allowed_list /proc/self/status")
    cpus = set()
    for part in r.out.split()[-1].split(","):
        first, _, last = part.partition("-")
        cpus.update(range(int(first), int(last or first) + 1))
    assert r.status == 0 and cpus == os.sched_getaffinity(0), r


def test_stdin_from_dev_null_is_named_dev_null(brandpy, busybox):
    """docker exec without -i gives the process the host's /dev/null, the
    node that also masks /proc/keys and the like: its fd is /dev/null, not
    the masked path (issue 18)."""
    p = subprocess.run(brandpy.cmd(busybox, ["readlink", "/proc/self/fd/0"]),
                       stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120,
                       env=brandpy.env(), cwd="/")
    assert (p.returncode, p.stdout) == (0, "/dev/null\n"), p


def test_read_only_bind_mount_lists_and_refuses_writes(brandpy, busybox, world_tmp):
    """A :ro volume's directory opens for listing (O_DIRECTORY is not
    O_TMPFILE, whose glibc value contains it) and refuses writes."""
    vol = Path(tempfile.mkdtemp(dir=world_tmp))
    vol.chmod(0o755)
    (vol / "f").write_text("hi\n")
    r = brandpy.sh(busybox, "ls /vol; cat /vol/f; touch /vol/g || echo refused; "
                   "mkdir /vol/d || echo refused", "-v", f"{vol}:/vol:ro")
    assert r.out == "f\nhi\nrefused\nrefused\n" and r.err.count("Read-only file system") == 2, r
    assert sorted(p.name for p in vol.iterdir()) == ["f"]
