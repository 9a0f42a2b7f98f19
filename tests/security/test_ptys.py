"""The container's own ptys, many of them (issue 15's terminals, issue 17's
stress-ng `pty`): tests/security/programs/pty_churn.c as the entrypoint,
under both engines, as root and as uid 65534.

- 300 ptys in sequence and 100 held at once, each named (ptsname), opened
  by that name and talked through: none may fail, and none is left in
  the container's /dev/pts once closed.
- A number the container released and the host then took for a terminal
  of its own is not the container's: not named, not openable, not listed.
- A master the container closes hangs up its slave at once, as on Linux.
- A pty whose slave it opens from the master (TIOCGPTPEER, as openpty()
  does) is named too, without its number asked: ttyname() works.
- /dev/pts/ptmx, a devpts' own multiplexer, makes ptys as /dev/ptmx does.
- The view (brandpy/runtime/ptys.py) names a pty from its master only: a
  slave the container holds (a caller's terminal) is not named by its
  TIOCGPTN; it forgets a pty once the kernel freed it, and starts empty
  (a restarted container's ptys are gone).
- The kernel's walls hold for other sessions' terminals: with a broken
  open handler handing the kernel the raw path of a terminal the test
  holds, Landlock (which allows no host pty now: the supervisor opens
  them all, TIOCGPTPEER too) refuses it, and as root the devices cgroup
  (which allows the container's own ptys alone) does too, each alone
  (before: opened with every wall on, as root and unprivileged).
- The native engine opens the ptys in C (its resolver reads a mirror of
  the view's set).
- As root the container's ptys are a devpts instance of its own: its
  first pty is /dev/pts/0 while the test holds the host's 0 (control: the
  host's devpts, forced, never gives it 0); the host's pty of a number the
  container holds too is unreachable by that name, translated (its own
  pty) or raw through a broken open handler (the devices cgroup alone,
  which allows no pty then, and Landlock alone refuse it; the control
  opens it); a console is named by a number reserved in the instance; a
  node made with mknod for a live pty opens nothing (EIO), on which the
  cgroup's rules rely.

Before the fix (at ac6c8a9) every cell failed: `seq 300` and `held 100`
with EIO from ptsname past about 60 ptys (each took an entry of the
native engine's 64-entry mount table; the Python engine's failed the same
way once the mirror was full), `release` found the number still listed,
and `hangup` waited: the supervisor held each master until the end.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import shutil
import stat
import struct
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from brandpy.runtime import cgroups, landlock, ptys
from brandpy.runtime.faults import BROKEN_HANDLER
from brandpy.runtime.namespaces import NAMESPACES_OFF
from brandpy.runtime.ptys import PtyView, private_devpts
from tests.conftest import ENGINES, Runner, nobody_has_namespaces

from .conftest import Cell, runner_for
from .harness import reap_leftovers

CELLS = [pytest.param(Cell(e, u, False), id=f"{e}-{u}") for e in ENGINES
         for u in ("root", "nobody")]


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("mode,count", [("seq", 300), ("held", 100), ("hangup", 0),
                                        ("peer", 0), ("ptmx", 0)])
def test_many_ptys(mode: str, count: int, cell: Cell, rootfs_for, unpriv_pythonpath) -> None:
    rootfs = rootfs_for(cell.uid, "pty_churn")
    stats = rootfs / "stats.json"        # written by the supervisor, as the cell's user
    r = runner_for(cell, unpriv_pythonpath)(rootfs, ["/attack", mode, str(count)],
                                             "--stats-json", str(stats), timeout=180)
    assert r.status == 0 and f"OK {mode}" in r.out, r
    assert not reap_leftovers(rootfs)
    opens = json.loads(stats.read_text())["Notified"]["openat"]
    if cell.engine == "native" and count:
        # the view's names resolve in C too: each pty's ptmx and slave opened
        # there, only the listings of /dev/pts in Python
        assert opens["Calls"] >= 2 * count and opens["InPython"] <= 2, opens


@pytest.mark.parametrize("cell", CELLS)
def test_released_number_reused_by_host(cell: Cell, rootfs_for, unpriv_pythonpath) -> None:
    """The container names a pty and closes it; the host opens ptys until
    it holds that number (the kernel gives the lowest free one; with the
    container's own devpts instance, as root, the host's pty of that
    number may be held already); the container must not see the host's
    terminal under that name."""
    rootfs = rootfs_for(cell.uid, "pty_churn")
    runner = runner_for(cell, unpriv_pythonpath)
    proc = subprocess.Popen(runner.cmd(rootfs, ["/attack", "release"], "-i"), env=runner.env(),
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, cwd="/")
    assert proc.stdin is not None and proc.stdout is not None
    ours: list[int] = []
    try:
        line = proc.stdout.readline().decode()
        assert line.startswith("NUMBER "), (line, proc.stderr.read() if proc.stderr else "")
        number = int(line.split()[1])
        while not os.path.exists(f"/dev/pts/{number}"):    # held by the host (by us or not)
            if len(ours) >= 400:
                pytest.fail(f"the host never got pty {number} back")
            master, slave = os.openpty()
            ours += [master, slave]
        proc.stdin.write(b"go\n")
        proc.stdin.flush()
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for fd in ours:
            os.close(fd)
    assert proc.returncode == 0 and f"OK release {number}" in out.decode(), (out, err)
    assert not reap_leftovers(rootfs)


def test_the_view_names_a_master_s_pty_and_forgets_it_freed(world_tmp: Path) -> None:
    dev = Path(tempfile.mkdtemp(dir=world_tmp))
    (dev / "pts" / "made").mkdir(parents=True)      # a former run's names, and its own
    (dev / "pts" / "7").touch()
    changed: list[tuple[int, bool]] = []
    view = PtyView(bytes(dev), lambda n, fd: changed.append((n, fd >= 0)))
    assert os.listdir(dev / "pts") == ["ptmx"]
    master, slave = os.openpty()
    try:
        number = int(os.ttyname(slave).rsplit("/", 1)[1])
        name = b"%d" % number
        view.adopt(os.dup(slave), masters_only=True)
        assert view.mount(name) is None and not changed
        view.adopt(os.dup(master), masters_only=True)
        assert view.mount(name) is not None and changed == [(number, True)]
        assert sorted(os.listdir(dev / "pts")) == sorted([str(number), "ptmx"])
        os.close(slave)
        os.close(master)
        master = slave = -1
        assert view.mount(name) is None       # freed by the kernel: forgotten
        assert changed[-1] == (number, False) and os.listdir(dev / "pts") == ["ptmx"]
    finally:
        for fd in (master, slave):
            if fd >= 0:
                os.close(fd)
        view.close()
        shutil.rmtree(dev)


# which of the kernel's walls are off in each case: each alone is the devices
# cgroup, Landlock or the container's pivoted root (its mount namespace,
# where the host's /dev/pts is not)
WALLS_OFF = {"walls": (), "cgroup": (landlock.TEST_OFF, NAMESPACES_OFF),
             "landlock": (cgroups.TEST_OFF, NAMESPACES_OFF),
             "pivot": (landlock.TEST_OFF, cgroups.TEST_OFF),
             "control": (landlock.TEST_OFF, cgroups.TEST_OFF, NAMESPACES_OFF)}
WALL_CASES = [("root", w) for w in WALLS_OFF] + [("nobody", "walls"), ("nobody", "control")]


@pytest.mark.skipif(os.geteuid() != 0 or "devices" not in cgroups.enforceable()
                    or landlock.abi() < 1, reason="the devices cgroup and Landlock, as root")
@pytest.mark.parametrize("user,walls", WALL_CASES)
@pytest.mark.parametrize("engine", ENGINES)
def test_walls_hold_for_other_terminals(engine: str, user: str, walls: str, rootfs_for,
                                        unpriv_pythonpath) -> None:
    """walls: all of them (as root the devices cgroup, which allows the
    container's own ptys alone, Landlock, which allows no host pty: the
    supervisor opens them all, and the pivoted root, which has no host
    /dev/pts); cgroup, landlock, pivot: that one alone;
    control: neither, and the terminal opens (owned by the user brandpy runs
    as, so that only brandpy stands in the way)."""
    runner = Runner(user, engine, unpriv_pythonpath)
    rootfs = rootfs_for(runner.uid, "pty_churn")
    master, slave = os.openpty()
    try:
        os.fchown(slave, runner.uid, -1)
        name = os.ttyname(slave)
        env = {BROKEN_HANDLER: "open,openat"} | {off: "1" for off in WALLS_OFF[walls]}
        p = subprocess.run(runner.cmd(rootfs, ["/attack", "reach", name]),
                           env={**runner.env(), **env}, capture_output=True, text=True,
                           timeout=60, cwd="/")
    finally:
        os.close(master)
        os.close(slave)
    if walls == "control":
        assert f"OPENED {name}" in p.stdout, p
    else:
        assert p.returncode == 0 and f"REFUSED {name}" in p.stdout, p
    assert not reap_leftovers(rootfs)


ROOT_ONLY = pytest.mark.skipif(os.geteuid() != 0, reason="a private devpts instance, as root")


@ROOT_ONLY
def test_the_private_view_numbers_its_own_ptys_and_reserves_consoles(world_tmp: Path) -> None:
    """A private instance numbers from 0 whatever the host holds; a host
    pty given as a console is named by a number reserved in the instance
    (so that its link names it), which is freed with it."""
    dev = Path(tempfile.mkdtemp(dir=world_tmp))
    instance = private_devpts()
    assert instance >= 0
    changed: list[tuple[int, bool]] = []
    view = PtyView(bytes(dev), lambda n, fd: changed.append((n, fd >= 0)), instance)
    host_master, console = os.openpty()
    own = -1
    try:
        assert view.private and os.path.exists("/dev/pts/0")   # the host holds pty 0 at least
        view.adopt(os.dup(console))                  # a caller's terminal: named 0
        assert changed == [(0, True)] and view.mount(b"0") is not None
        assert view.guest_of(os.fsencode(os.ttyname(console))) == b"/dev/pts/0"
        ptmx = view.mount(b"ptmx")
        assert ptmx is not None
        own = os.open(b"/proc/self/fd/%d" % view.ptmx_root(ptmx), os.O_RDWR | os.O_NOCTTY)
        view.adopt(os.dup(own), masters_only=True)     # its first own pty: after the console
        assert changed[-1] == (1, True)
        assert view.guest_of(os.readlink(f"/proc/self/fd/{own}").encode()) == b"/dev/ptmx"
        assert view.guest_of(b"/1") == b"/dev/pts/1" and view.guest_of(b"/0") is None
        # the host's numbers are not its names
        assert view.given(os.fstat(console).st_rdev) is view.mount(b"0")
        os.close(console)
        os.close(host_master)
        console = host_master = -1
        assert view.mount(b"0") is None and (0, False) in changed     # the number is free again
        again = os.open(b"ptmx", os.O_RDWR | os.O_NOCTTY, dir_fd=instance)
        assert struct.unpack("I", fcntl.ioctl(again, ptys.TIOCGPTN, b"\0" * 4))[0] == 0
        os.close(again)
    finally:
        for fd in (own, console, host_master):
            if fd >= 0:
                os.close(fd)
        view.close()
        shutil.rmtree(dev)


def _hold_host_pty_0() -> list[int]:
    """Host ptys opened until one of ours is the host's /dev/pts/0 (another
    session may hold it a while: the kernel gives the lowest free number)."""
    held: list[int] = []
    for _ in range(200):
        master, slave = os.openpty()
        held += [master, slave]
        if os.ttyname(slave) == "/dev/pts/0":
            return held
        os.close(held.pop())
        os.close(held.pop())
        time.sleep(0.05)
    for fd in held:
        os.close(fd)
    pytest.fail("the host's /dev/pts/0 stayed another session's for 10 s")


@pytest.mark.skipif(os.geteuid() != 0, reason="the test holds the host's /dev/pts/0 for uid 65534")
@pytest.mark.parametrize("devpts", ["private", "host"])
@pytest.mark.parametrize("user", ["root", "nobody"])
@pytest.mark.parametrize("engine", ENGINES)
def test_first_pty_is_0(engine: str, user: str, devpts: str, rootfs_for,
                        unpriv_pythonpath) -> None:
    """A container's first pty is /dev/pts/0 while the host's /dev/pts/0
    is the test's: as root, and unprivileged where user namespaces are
    allowed; with the host's devpts (the fallback where they are not,
    forced here) its number is the host's, never 0 then."""
    runner = Runner(user, engine, unpriv_pythonpath)
    private = devpts == "private" and (user == "root" or nobody_has_namespaces())
    rootfs = rootfs_for(runner.uid, "pty_churn")
    held = _hold_host_pty_0()
    env = {ptys.TEST_OFF: "1"} if devpts == "host" else {}
    try:
        p = subprocess.run(runner.cmd(rootfs, ["/attack", "peer"]), env={**runner.env(), **env},
                           capture_output=True, text=True, timeout=60, cwd="/")
    finally:
        for fd in held:
            os.close(fd)
    assert p.returncode == 0 and "OK peer /dev/pts/" in p.stdout, p
    first = p.stdout.split("OK peer ")[1].split()[0]
    assert (first == "/dev/pts/0") == private, p
    assert not reap_leftovers(rootfs)


# (broken open handler, walls off, devpts forced to the host's) -> what the
# container gets opening /dev/pts/H, H the number of a host pty the test holds
COLLIDE = {"translated": ((), "MINE"), "walls": (("open",), "REFUSED"),
           "cgroup": (("open", landlock.TEST_OFF, NAMESPACES_OFF), "REFUSED"),
           "landlock": (("open", cgroups.TEST_OFF, NAMESPACES_OFF), "REFUSED"),
           "pivot": (("open", landlock.TEST_OFF, cgroups.TEST_OFF), "REFUSED"),
           "control": (("open", landlock.TEST_OFF, cgroups.TEST_OFF, NAMESPACES_OFF), "OPENED"),
           "host-devpts": ((ptys.TEST_OFF,), "UNREACHED")}


@pytest.mark.skipif(os.geteuid() != 0 or "devices" not in cgroups.enforceable()
                    or landlock.abi() < 1, reason="the devices cgroup and Landlock, as root")
@pytest.mark.parametrize("case", list(COLLIDE))
@pytest.mark.parametrize("engine", ENGINES)
def test_host_pty_of_a_number_of_its_own(engine: str, case: str, rootfs_for,
                                         unpriv_pythonpath) -> None:
    """The container makes ptys until one has the number H of a host
    terminal the test holds (its own instance numbers from 0). /dev/pts/H
    is then its own pty; a broken open handler handing the kernel that raw
    path reaches the host's pty H unless a wall stands: the devices cgroup
    alone refuses it (it allows no pty with a private instance: one rule
    per number of the container's would allow the host's pty of that
    number), Landlock alone too, and the pivoted root alone (no host
    /dev/pts there); the control, without them, opens it. With
    the host's devpts the container never gets number H. Made its
    controlling terminal, it is what /dev/tty opens, not the host's pty H
    (which the device number alone would name)."""
    runner = Runner("root", engine, unpriv_pythonpath)
    rootfs = rootfs_for(runner.uid, "pty_churn")
    switches, expected = COLLIDE[case]
    env = {BROKEN_HANDLER: "open"} if "open" in switches else {}
    env |= {s: "1" for s in switches if s != "open"}
    master, slave = os.openpty()
    try:
        number = int(os.ttyname(slave).rsplit("/", 1)[1])
        p = subprocess.run(runner.cmd(rootfs, ["/attack", "collide", str(number)]),
                           env={**runner.env(), **env}, capture_output=True, text=True,
                           timeout=120, cwd="/")
    finally:
        os.close(master)
        os.close(slave)
    assert p.returncode == 0 and "FAIL" not in p.stdout, p
    if expected == "UNREACHED":
        assert f"UNREACHED {number}" in p.stdout, p
    else:
        assert f"OWN {number}" in p.stdout and f"{expected} /dev/pts/{number}" in p.stdout, p
        # its /dev/tty is that pty of its own, never the host's of that number
        assert "TTY MINE" in p.stdout, p
    assert not reap_leftovers(rootfs)


@ROOT_ONLY
def test_a_pty_node_outside_devpts_opens_nothing(world_tmp: Path) -> None:
    """What lets the devices cgroup allow no pty at all, and what a private
    instance's numbers (the host's device numbers too) rely on: the kernel
    finds a pty slave from its devpts dentry alone, so a node made with
    mknod for a live pty opens nothing (EIO), whatever the cgroup allows."""
    top = Path(tempfile.mkdtemp(dir=world_tmp))
    master, slave = os.openpty()
    try:
        node = top / "pty"
        os.mknod(node, 0o600 | stat.S_IFCHR, os.fstat(slave).st_rdev)
        with pytest.raises(OSError) as caught:
            os.close(os.open(node, os.O_RDWR | os.O_NOCTTY))
        assert caught.value.errno == errno.EIO
    finally:
        os.close(master)
        os.close(slave)
        shutil.rmtree(top)
