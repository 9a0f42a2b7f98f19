"""Raw syscalls compared with the kernel's own answers (chroot): bad
pointers get what Linux returns (EFAULT...) and the supervisor survives;
the process tree (fork, vfork, clone3, exec from a thread) is followed."""

import os
import re
from pathlib import Path

import pytest

from brandpy.runtime.sandbox import MASKED
from tests.conftest import chroot_run, install_probe, leftovers

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the chroot reference needs root")


@pytest.fixture
def probed(busybox, probe_bin):
    install_probe(busybox, probe_bin)
    return busybox


def test_bad_pointers_get_linux_errors(brandpy, probed):
    native = chroot_run(probed, ["/usr/bin/probe", "badptr"])
    mine = brandpy(probed, ["/usr/bin/probe", "badptr"])
    assert native.status == 0 and native.out.endswith("survived\n")
    assert "EFAULT" in native.out
    assert mine.out == native.out
    assert mine.status == 0, mine


def test_process_tree(brandpy, probed):
    """Unconfined, clone3 is followed too (Docker's default profile makes it
    ENOSYS so that libc falls back to clone)."""
    native = chroot_run(probed, ["/usr/bin/probe", "procs"])
    mine = brandpy(probed, ["/usr/bin/probe", "procs"], "--security-opt", "seccomp=unconfined")
    assert "exec from thread: 9" in native.out and "clone3: 13" in native.out
    assert mine.out == native.out, mine
    assert leftovers(probed) == []
    default = brandpy(probed, ["/usr/bin/probe", "procs"])
    assert default.out == native.out.replace("clone3: 13", "clone3: ENOSYS").replace(
        "clone3-newuser: EPERM", "clone3-newuser: ENOSYS"), default


def test_unix_socket_names_are_guest_paths(brandpy, probed):
    mine = brandpy(probed, ["/usr/bin/probe", "unix", "bind", "/tmp/sock"])
    assert mine.out == ("bind: 0\ngetsockname: 0\nname: /tmp/sock\nconnect: 0\n"
                        "getpeername: 0\npeer: /tmp/sock\naccept: 0\n"), mine


def test_datagrams_to_guest_paths(brandpy, probed):
    """sendto, sendmsg (two iovecs, SCM_RIGHTS, a bad fd, a bad cmsg) and
    sendmmsg (msg_len, a bad header after two) to a pathname inside the
    container, and a connected sendmsg: performed by the supervisor, with
    Linux's answers."""
    native = chroot_run(probed, ["/usr/bin/probe", "dgram", "/tmp/dg"])
    mine = brandpy(probed, ["/usr/bin/probe", "dgram", "/tmp/dg"])
    assert "pipe: 'piped'" in native.out and "msg_len: 9 4 0" in native.out, native
    assert mine.out == native.out, mine


def test_prctl_answers_are_linux_ones(brandpy, probed):
    """prctl's name and dumpable options, performed by the supervisor (in C
    by the native engine, which keeps its copy of what Python records), and
    PR_SET_PTRACER at a ptrace stop: Linux's answers in every engine, as
    root and as uid 65534, for a program started as busybox's applets are
    (through a symlink, whose name is the process's), renamed, threaded,
    forked, changing its IDs (fs.suid_dumpable applies: 0 here) and exec'd
    again."""
    (probed / "usr" / "bin" / "pname").symlink_to("probe")
    native = chroot_run(probed, ["/usr/bin/pname", "prctl"])
    assert native.status == 0 and native.out.startswith('name: 0 "pname\\x00'), native
    assert "child dumpable: 0\n" in native.out and native.out.endswith("dumpable: 1\n")
    assert "dumpable after setresuid: 0\n" in native.out, "fs.suid_dumpable is not 0 here"
    mine = brandpy(probed, ["/usr/bin/pname", "prctl"], "--stats")
    assert mine.status == 0, mine
    assert mine.out == native.out
    stops = mine.err.splitlines()
    trapped = {line.split()[0]: int(line.split()[1])
               for line in stops[1:stops.index(next(x for x in stops if x.startswith("total")))]}
    assert trapped.get("prctl") == 3, mine.err     # the PR_SET_PTRACER ones alone
    calls, in_python = notified_stats(mine.err, "prctl")
    assert calls == 24, mine.err           # every name and dumpable call of its
    assert in_python == (0 if brandpy.engine == "native" else calls), mine.err


def notified_stats(err: str, name: str) -> tuple[int, int]:
    """--stats' notified calls of syscall `name` and how many Python answered."""
    lines = err.splitlines()
    table = lines[lines.index(next(x for x in lines if x.startswith("notified (no stop)"))):]
    row = next(line.split() for line in table if line.startswith(name + " "))
    return int(row[1]), int(row[2])


def test_uname_answers_are_linux_ones(brandpy, probed):
    """uname, performed by the supervisor (in C by the native engine, from
    its copy of the container's hostname, domain name and release, which
    sethostname and setdomainname keep current), gives what Linux gives
    (every field NUL-padded, EFAULT), as root and as uid 65534; a process
    in a UTS namespace it unshared, and its child, see theirs (Python's)."""
    host = os.uname()
    with open("/proc/sys/kernel/domainname") as f:
        domain = f.read().strip()
    native = chroot_run(probed, ["/usr/bin/probe", "uname"], own_uts=True)
    assert native.status == 0 and "uname bad pointer: EFAULT" in native.out, native
    assert f"[{host.nodename}] [{host.release}]" in native.out and "[own-uts]" in native.out
    # brandpy's domain name is "(none)" unless given, as a kernel's
    expected = native.out.replace(f"] [{domain}] dirt", "] [(none)] dirt")
    mine = brandpy(probed, ["/usr/bin/probe", "uname"], "--stats", "--hostname", host.nodename,
                   "--cap-add", "SYS_ADMIN")
    assert mine.status == 0, mine
    assert mine.out == expected
    calls, in_python = notified_stats(mine.err, "uname")
    assert calls == 10, mine.err
    # in C but for the two in a UTS namespace of their own
    assert in_python == (2 if brandpy.engine == "native" else calls), mine.err
    release = brandpy(probed, ["/usr/bin/probe", "uname"], "--hostname", host.nodename,
                      "--cap-add", "SYS_ADMIN", "--kernel-release", "5.10.0-probe")
    assert release.out == expected.replace(f"] [{host.release}] [", "] [5.10.0-probe] ["), release


def test_statfs_answers_are_linux_ones(brandpy, probed):
    """statfs, performed by the supervisor (in C by the native engine but
    for /proc, Python's view), reports the file system of the file found:
    Linux's answers (a symlink followed, a trailing slash, ENOENT, ENOTDIR,
    EFAULT for the path and the buffer) as root and as uid 65534. A proc
    file system is another instance than the chroot's: its fsid differs.
    As root the supervisor acts in the container's mount namespace, whose
    /proc is nodev (as Docker's): the kernel says so (ST_NODEV)."""
    (probed / "etc" / "lnk").symlink_to("/usr")
    paths = ["/", "/usr/bin/probe", "/etc/lnk", "/etc/lnk/", "/usr/bin/probe/", "/nonexistent",
             "", "/dev/null", "/proc/self"]
    def fsid_of_proc(out: str, nodev: bool = False) -> str:
        out = re.sub(r"^(/proc/self: .*) fsid \S+$", r"\1", out, flags=re.M)
        return re.sub(r"^(/proc/self: .* flags )([0-9a-f]+)$",
                      lambda m: m[1] + f"{int(m[2], 16) | 4 * nodev:x}", out, flags=re.M)
    native = chroot_run(probed, ["/usr/bin/probe", "statfs", *paths])
    assert native.status == 0 and "/etc/lnk/: 0 type" in native.out, native
    assert "/usr/bin/probe/: ENOTDIR" in native.out and "bad buffer: EFAULT" in native.out
    mine = brandpy(probed, ["/usr/bin/probe", "statfs", *paths], "--stats")
    assert mine.status == 0, mine
    assert fsid_of_proc(mine.out) == fsid_of_proc(native.out, nodev=brandpy.user == "root")
    calls, in_python = notified_stats(mine.err, "statfs")
    assert calls == len(paths) + 4, mine.err
    assert in_python == (1 if brandpy.engine == "native" else calls), mine.err   # /proc/self


def test_proc_filesystems_is_linux_one(brandpy, probed):
    """/proc/filesystems, read by every program linked with libselinux:
    opened in C by the native engine for a read of exactly that path (the
    kernel's file, as Python opens it), by Python otherwise; the same
    descriptor flags and contents as on Linux, as root and as uid 65534."""
    native = chroot_run(probed, ["/usr/bin/probe", "filesystems"])
    assert native.status == 0 and "libselinux's: fd flags 1 " in native.out, native
    assert "slash: ENOTDIR" in native.out and "bad pointer: EFAULT" in native.out
    mine = brandpy(probed, ["/usr/bin/probe", "filesystems"], "--stats")
    assert mine.status == 0, mine
    assert mine.out == native.out
    calls, in_python = notified_stats(mine.err, "openat")
    assert calls == 9, mine.err
    # dot, slash, directory, /proc itself and relative are Python's
    assert in_python == (5 if brandpy.engine == "native" else calls), mine.err


def _statfs_flags(out: str) -> dict[str, int]:
    """probe statfs's f_flags of each path it answered."""
    return {m[1]: int(m[2], 16) for m in re.finditer(r"^(\S*): 0 type .* flags (\S+) fsid", out,
                                                     flags=re.M)}


def test_statfs_shows_read_only_mounts(brandpy, probed, probe_bin, world_tmp):
    """statfs reports ST_RDONLY (1) where Docker's mounts are read-only: the
    --read-only root, a :ro volume, /sys, /proc/sys, a masked directory's
    tmpfs; not a rw volume, /proc, a masked file (/dev/null's bind) or a
    device given without w (a node of /dev's tmpfs there). The other flags
    are the host file system's; /proc/self/mountinfo agrees. The same in C
    (the native engine's, all but /proc's) and in Python, as root and as
    uid 65534."""
    vols = world_tmp / f"statfs-{brandpy.engine}-{brandpy.user}"
    masked = [os.fsdecode(p) for p in MASKED if os.path.exists(p)]
    masked_file = next(p for p in masked if os.path.isfile(p))
    cases = {"/": (probed, True), "/ro": (vols / "ro", True), "/rw": (vols / "rw", False),
             "/sys": ("/sys", True), "/proc": ("/proc", False), "/proc/sys": ("/proc/sys", True),
             masked_file: ("/dev/null", False), "/dev/xnull": ("/dev/null", False)}
    for vol in (vols, vols / "ro", vols / "rw"):
        vol.mkdir()
        os.chown(vol, brandpy.uid, brandpy.uid)
    host = chroot_run(Path("/"), [str(probe_bin), "statfs", *[str(h) for h, _ in cases.values()]])
    host_flags = _statfs_flags(host.out)
    # as root the supervisor acts in the container's mount namespace, whose
    # /proc is nodev (ST_NODEV), as Docker's is
    nodev = 4 if brandpy.user == "root" else 0
    expected = {guest: host_flags[str(h)] | ro | (nodev if str(h).startswith("/proc") else 0)
                for guest, (h, ro) in cases.items()}
    assert all(not flags & 1 for flags in host_flags.values()), host.out
    paths = [*cases, *[p for p in masked if os.path.isdir(p)]]
    mine = brandpy(probed, ["/usr/bin/probe", "statfs", *paths], "--read-only", "--stats",
                   "-v", f"{vols / 'ro'}:/ro:ro", "-v", f"{vols / 'rw'}:/rw",
                   "--device", "/dev/null:/dev/xnull:r")
    assert mine.status == 0, mine
    flags = _statfs_flags(mine.out)
    assert {p: flags[p] for p in cases} == expected, mine.out
    assert paths[len(cases):] and all(flags[p] & 1 for p in paths[len(cases):]), mine.out
    calls, in_python = notified_stats(mine.err, "statfs")
    assert calls == len(paths) + 4, mine.err
    in_proc = sum(p.startswith("/proc/") or p == "/proc" for p in paths)
    assert in_python == (in_proc if brandpy.engine == "native" else calls), mine.err
    # /proc/self/mountinfo says the same of each mount ("ro" or "rw" first)
    info = brandpy.sh(probed, "cat /proc/self/mountinfo", "--read-only", "-v",
                      f"{vols / 'ro'}:/ro:ro", "-v", f"{vols / 'rw'}:/rw").out
    shown = {line.split()[4]: line.split()[5].startswith("ro,") for line in info.splitlines()}
    assert {p: shown[p] for p in paths if p != "/dev/xnull"} == \
        {p: bool(flags[p] & 1) for p in paths if p != "/dev/xnull"}, info


def test_engines_agree_call_by_call(world_tmp, probe_bin, busybox_image, unpriv_pythonpath):
    """The corpus (tests/programs/probe.c `corpus`: stat, lstat, access,
    readlink and open of files, directories, symlinks, loops, /proc and
    missing paths, O_CREAT with umask, getcwd, getpid) prints one line per
    call: the native engine (C handlers and user notification) and the
    Python engine (the reference) must print the same, as root and
    unprivileged, and match Linux's answers but for the PIDs."""
    from tests.conftest import Runner, copy_rootfs

    native_ref = None
    for user in ("root", "nobody"):
        outputs = {}
        for engine in ("python", "native"):
            rootfs = copy_rootfs(busybox_image, world_tmp / f"corpus-{user}-{engine}",
                                 owner=65534 if user == "nobody" else None)
            install_probe(rootfs, probe_bin)
            r = Runner(user, engine, unpriv_pythonpath)(rootfs, ["/usr/bin/probe", "corpus"])
            assert r.status == 0, r
            outputs[engine] = r.out
        assert outputs["native"] == outputs["python"], user
        if user == "root":
            rootfs = copy_rootfs(busybox_image, world_tmp / "corpus-chroot")
            install_probe(rootfs, probe_bin)
            native_ref = chroot_run(rootfs, ["/usr/bin/probe", "corpus"]).out
            mine = [line for line in outputs["python"].splitlines() if "/proc/self" not in line
                    and not line.startswith("getpid")]
            ref = [line for line in native_ref.splitlines() if "/proc/self" not in line
                   and not line.startswith("getpid")]
            assert mine == ref
            assert len(ref) > 250
