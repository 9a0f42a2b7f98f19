"""Debuggers and tracers inside the container (issue 17, class 5): Debian's
strace and gdb (tests/images/tools.sh) in the Debian image, under brandpy
(both engines, supervisor root and uid 65534) and natively in a chroot of
its own PID namespace (so PIDs compare), print the same. Before ptrace was
emulated, every one of these failed: ptrace was EPERM."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import IMAGES, REPO, Result, Runner, build_program, chroot_run, copy_rootfs, install_program

TOOLS = IMAGES / "tools"
CLEAN_ENV = ["env", "-i", "PATH=/usr/bin:/bin", "HOME=/"]
STRACE = [*CLEAN_ENV, "strace", "-f", "-e", "trace=%file", "sh", "-c", "ls /"]
GDB = "exec env -i PATH=/usr/bin:/bin HOME=/ gdb -nx -batch"
RUN = (f"cd /src && {GDB} -ex 'break square' -ex run -ex bt -ex next -ex finish "
       "./debuggee 2>&1")
THREADS = (f"cd /src && {GDB} -ex 'break work' -ex run -ex bt -ex 'info threads' -ex next "
           "-ex finish ./threads 2>&1")
# the sleeper is PID 2 in both; gdb, exec'd by the shell, PID 1
ATTACH = ("cd /src && ./sleeper & p=$!; "
          "until [ \"$(cut -d' ' -f2,3 /proc/$p/stat)\" = '(sleeper) S' ]; do sleep 0.05; done; "
          f"{GDB} -p $p -ex bt -ex 'print counter' -ex kill 2>&1")
# gdb turns off address-space randomization: Docker's profile (brandpy's
# default) refuses that personality() as Docker does, so gdb would warn
UNCONFINED = ("--security-opt", "seccomp=unconfined")


@pytest.fixture(scope="session")
def tools_rootfs(world_tmp: Path) -> Path:
    """The Debian image with strace and gdb unpacked in it, and the
    debugged programs built with their sources in /src (static, and one
    against the image's libc: the host's is Debian 12's too)."""
    if not (TOOLS / "READY").exists():
        pytest.fail(f"{TOOLS} missing: run `make images` (tests/images/tools.sh)")
    root = copy_rootfs(IMAGES / "debian", world_tmp / "debian-tools")
    stage = world_tmp / "tools-stage"
    for deb in sorted(TOOLS.glob("*.deb")):
        subprocess.run(["dpkg-deb", "-x", str(deb), str(stage)], check=True)
    # the image is usr-merged: a package's /lib would replace the /lib symlink
    for top in ("bin", "sbin", "lib", "lib64"):
        if (stage / top).is_dir() and not (stage / top).is_symlink():
            subprocess.run(["cp", "-a", f"{stage / top}/.", str(stage / "usr" / top)], check=True)
            shutil.rmtree(stage / top)
    subprocess.run(["cp", "-a", f"{stage}/.", str(root)], check=True)
    shutil.rmtree(stage)
    src = root / "src"
    src.mkdir()
    for name, link in (("debuggee", ["-static"]), ("sleeper", ["-static"]),
                       ("threads", ["-pthread"])):
        shutil.copy(REPO / "tests" / "programs" / f"{name}.c", src)
        subprocess.run(["gcc", "-g", "-O0", *link, f"-fdebug-prefix-map={src}=/src",
                        "-o", name, f"{name}.c"], cwd=src, check=True)
    return root


def native(root: Path, argv: list[str]) -> Result:
    """The reference: a chroot as root, PID 1 of a PID namespace."""
    script = ('mount --rbind /dev "$0/dev" && '
              'exec unshare --pid --fork --mount-proc="$0/proc" chroot "$0" "$@"')
    p = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c", script,
                        str(root), *argv], capture_output=True, text=True, timeout=120)
    return Result(p.returncode, p.stdout, p.stderr)


def addresses_aside(text: str) -> str:
    """Addresses differ run to run (ASLR), and dynamic programs are started
    through the image's ld.so under brandpy; so do the CPU times a SIGCHLD's
    siginfo carries (si_utime=1 /* 0.01 s */ on a busy machine)."""
    text = re.sub(r"(si_[us]time)=\d+( /\* [0-9.]+ s \*/)?", r"\1=T", text)
    return re.sub(r"0x[0-9a-f]{6,}", "0xADDR", text)


def test_strace_f_prints_what_it_prints_natively(brandpy, tools_rootfs):
    want = native(tools_rootfs, STRACE)
    assert want.status == 0, want.err
    got = brandpy(tools_rootfs, STRACE)
    assert got.status == 0, got.err
    assert got.out == want.out
    assert "strace: Process 5 attached" in got.err   # container PIDs
    assert addresses_aside(got.err) == addresses_aside(want.err)


def test_gdb_breakpoint_run_bt_next_finish(brandpy, tools_rootfs):
    want = native(tools_rootfs, ["sh", "-c", RUN])
    assert "Value returned is $1 = 49" in want.out, want
    got = brandpy(tools_rootfs, ["sh", "-c", RUN], *UNCONFINED)
    assert got.out == want.out, got.err


def test_gdb_on_a_dynamic_threaded_program(brandpy, tools_rootfs):
    """brandpy starts a dynamic program through the image's ld.so, which maps
    it where the kernel would not; gdb finds it (and its libraries, and
    libthread_db) through /proc/PID/auxv, which says where it is."""
    want = native(tools_rootfs, ["sh", "-c", THREADS])
    assert "[Thread debugging using libthread_db enabled]" in want.out and \
        'Thread 2 "threads" hit Breakpoint 1, work' in want.out, want
    got = brandpy(tools_rootfs, ["sh", "-c", THREADS], *UNCONFINED)
    assert addresses_aside(got.out) == addresses_aside(want.out), got.err


def test_gdb_attaches_to_a_process_of_the_container(brandpy, tools_rootfs):
    want = native(tools_rootfs, ["sh", "-c", ATTACH])
    assert "wait_here (rounds=3) at sleeper.c" in want.out, want
    got = brandpy(tools_rootfs, ["sh", "-c", ATTACH])
    assert got.out == want.out, got.err


# tests/programs/tracewait.c, as it prints natively
TRACEWAIT = ("traceme: stopped 19 event 0, then exited 7\n"
             "blocked: stopped 19 event 0, then exited 7\n"
             "thread: stopped 19 event 0, then killed 9\n"
             "seize: stopped 5 event 128, then killed 9\n")


@pytest.fixture(scope="module")
def tracewait_bin(world_tmp: Path) -> Path:
    return build_program("tracewait", world_tmp)


def test_a_tracers_waits_see_its_tracees_stops(brandpy, busybox, tracewait_bin):
    """As root a wait runs natively unless its process traces: a process
    that becomes a tracer gets a trap for its waits (Supervisor.
    _stack_wait_trap) before it waits again, and a wait it was blocked in
    already (its own, or another thread's) restarts through it. Before
    the trap existed (waits native), the first case hung."""
    install_program(busybox, tracewait_bin)
    if os.geteuid() == 0:
        assert chroot_run(busybox, ["/usr/bin/tracewait"]).out == TRACEWAIT
    got = brandpy(busybox, ["/usr/bin/tracewait"], "--stats", timeout=60)
    assert (got.status, got.out) == (0, TRACEWAIT), got.err
    # the tracer's waits went to the supervisor
    wait4 = next(line.split() for line in got.err.splitlines() if line.startswith("wait4 "))
    assert int(wait4[1]) >= 8, got.err


# tests/programs/seizefork.c, as it prints natively
SEIZEFORK = "".join(f"{case}: 200/200\n" for case in
                    ("seize", "attach", "thread", "foreign", "ghost"))


@pytest.fixture(scope="module")
def seizefork_bin(world_tmp: Path) -> Path:
    return build_program("seizefork", world_tmp)


def test_a_tracer_seizes_a_task_the_moment_it_exists(brandpy, busybox, seizefork_bin):
    """A tracer that seizes or attaches to a child (or a thread) right
    after fork/clone returns, before the supervisor has seen the new task's
    first stop, gets it as on Linux: the call waits for that stop
    (errors.Unborn); a task that is another user's is still EPERM and a
    PID that names none ESRCH, at once. Before, some rounds of each of
    the first four cases were ESRCH."""
    install_program(busybox, seizefork_bin)
    if os.geteuid() == 0:
        assert chroot_run(busybox, ["/usr/bin/seizefork"]).out == SEIZEFORK
    check_seizefork(brandpy, busybox)


def test_a_tracer_seizes_a_new_task_without_user_namespaces(brandpy_flat, flat_busybox,
                                                            seizefork_bin):
    """The same with brandpy's own PIDs (fork's return rewritten at its exit)."""
    install_program(flat_busybox, seizefork_bin)
    check_seizefork(brandpy_flat, flat_busybox)


def check_seizefork(runner: Runner, rootfs: Path) -> None:
    got = runner(rootfs, ["/usr/bin/seizefork"], timeout=120)
    assert (got.status, got.out) == (0, SEIZEFORK), got.err
