"""Issue 15, devices: a container (root inside, with Docker's default
CAP_MKNOD) must not reach a host device it was not given, whatever name
reaches it (brandpy/runtime/devices.py, the gate in Docker's device
cgroup's place).

The host side has a loop device backed by a file the test owns (a secret
at its start) and a pty (another session's terminal), both chowned to the
user brandpy runs as, so that only brandpy stands in the way, and the
kernel log (/dev/kmsg, a secret line written there before the run).
tests/security/programs/dev_attack.c, as the entrypoint:

- mknod: makes nodes of the disk and of /dev/kmsg (in /, /dev, /tmp) and
  opens them; opens the host's /dev/pts/N of the pty by that name and
  through a node made for it; a node of /dev/null's device must open;
- planted: opens nodes of the disk and of /dev/kmsg that the container's
  image carried (the test puts them in its rootfs, as a layer can as root);
- race: swaps a regular file with each node while another thread opens
  the file's name (the supervisor checks one inode and opens another);
- walls (root): a broken open handler hands the kernel the raw host path
  of a planted node; the control run has the walls off;
- syslog (root): opens /proc/kmsg and, given --device /dev/kmsg, reads it,
  without CAP_SYSLOG (Docker's default) and with it.

On whatever it opens it reads, writes, and issues ioctls (LOOP_GET_STATUS64,
TIOCSTI). Evidence: a secret or the backing file's name in its output,
the backing file changed, its text in the kernel log, on the terminal's
screen or waiting as typed input there.

Before the fix (at 6bbd26b, these programs, every cell once; 7668555
gave the same counts): as root, mknod, planted and race escaped in 4 of
4 cells each (both engines, traced or not: read, wrote and ioctl'ed the
loop device, read and wrote the kernel log); as uid 65534, planted in 4
of 4 (the image's nodes opened as the host's permissions on them allow),
mknod and race in none (mknod made a file recorded as a device): 16 of
24. The walls case escaped in 2 of 2 engines (its controls too), and
still in 2 of 2 with the gate but without the nodev mounts. Without
CAP_SYSLOG, /proc/kmsg opened and /dev/kmsg was read in 2 of 2 engines.
Now none, in any cell. The node made for the host's pty is refused
either way (the kernel gives EIO to a pty opened outside its devpts,
brandpy EPERM now).
"""

from __future__ import annotations

import os
import secrets
import subprocess
import time
from contextlib import ExitStack
from pathlib import Path

import pytest

from brandpy.runtime import cgroups, landlock
from brandpy.runtime.faults import BROKEN_HANDLER
from brandpy.runtime.namespaces import NAMESPACES_OFF
from tests.conftest import ENGINES, Runner

from .conftest import Cell, runner_for, spread
from .harness import RACE_PAUSE_US, reap_leftovers
from .test_terminals import Terminal

BOUND_S = 60.0


def _loops(file: Path) -> list[str]:
    """The loop devices backed by file."""
    out = subprocess.run(["losetup", "--associated", str(file)], capture_output=True,
                         text=True).stdout
    return [line.split(":", 1)[0] for line in out.splitlines() if line.strip()]


class Disk:
    """A loop device over a file holding a secret, owned by uid."""

    def __init__(self, parent: Path, uid: int) -> None:
        self.secret = f"DISK-{secrets.token_hex(8)}"
        self.file = Path(parent) / f"disk-{secrets.token_hex(4)}"
        self.file.write_bytes(self.secret.encode().ljust(64, b"\0") + bytes(64 * 1024 - 64))
        found = subprocess.run(["losetup", "--find", "--show", str(self.file)],
                               capture_output=True, text=True, check=True)
        self.device = found.stdout.strip()
        if not self.device:
            self.close()
            raise AssertionError(f"losetup named no loop device: {found.stderr}")
        os.chown(self.device, uid, uid)
        self.rdev = os.stat(self.device).st_rdev
        self.before = self.file.read_bytes()

    def changed(self) -> bool:
        subprocess.run(["blockdev", "--flushbufs", self.device], check=False)
        return self.file.read_bytes() != self.before

    def close(self) -> None:
        """Detach (also what an attach that named no device attached)."""
        for device in {self.device} - {""} or _loops(self.file):
            subprocess.run(["losetup", "-d", device], check=False)
        self.file.unlink()


class KernelLog:
    """/dev/kmsg from a secret line written there on: what was logged after."""

    def __init__(self) -> None:
        self.rdev = os.stat("/dev/kmsg").st_rdev
        self.fd = os.open("/dev/kmsg", os.O_RDWR | os.O_NONBLOCK)
        os.lseek(self.fd, 0, os.SEEK_END)
        self.secret = f"KMSG-{secrets.token_hex(8)}"
        os.write(self.fd, f"brandpy test_devices: {self.secret}\n".encode())  # a whole record

    def since(self) -> str:
        lines = []
        while True:
            try:
                lines.append(os.read(self.fd, 8192).decode(errors="replace"))
            except BlockingIOError:
                return "".join(lines)
            except BrokenPipeError:
                continue

    def close(self) -> None:
        os.close(self.fd)


class Host:
    """The host side of one attack: a disk, another session's terminal and
    the kernel log, each with a secret; evidence() says what was reached."""

    def __init__(self, parent: Path, uid: int) -> None:
        self.text = f"TEXT-{secrets.token_hex(6)}"
        self._made = ExitStack()      # what was made, undone if the rest fails
        with self._made as made:
            self.disk = Disk(parent, uid)
            made.callback(self.disk.close)
            self.tty = Terminal.open(uid)
            made.callback(self.tty.close)
            self.log = KernelLog()
            made.callback(self.log.close)
            self._made = made.pop_all()

    def numbers(self) -> list[str]:
        """B_MAJ B_MIN C_MAJ C_MIN of dev_attack.c: the disk, the kernel log."""
        d, c = self.disk.rdev, self.log.rdev
        return [str(n) for n in (os.major(d), os.minor(d), os.major(c), os.minor(c))]

    def plant(self, rootfs: Path) -> None:
        """Nodes of the disk and the kernel log, as an image can carry them."""
        os.mknod(rootfs / "planted-blk", 0o60666, self.disk.rdev)
        os.mknod(rootfs / "planted-chr", 0o20666, self.log.rdev)

    def evidence(self, out: str) -> list[str]:
        time.sleep(0.3)          # the last output read off the pty
        found = []
        if self.disk.secret in out:
            found.append("read the host's disk")
        if self.log.secret in out:
            found.append("read the kernel log")
        if self.text in self.log.since():
            found.append("wrote in the kernel log")
        if str(self.disk.file) in out:
            found.append("asked the host's loop device its backing file (ioctl)")
        if self.disk.changed():
            found.append("wrote on the host's disk")
        if self.text in self.tty.screen.decode(errors="replace"):
            found.append("wrote on another session's terminal")
        if self.text.encode() in self.tty.typed():
            found.append("typed into another session's terminal")
        return found

    def close(self) -> None:
        self._made.close()


@pytest.fixture
def host_for(world_tmp: Path):
    made: list[Host] = []

    def make(uid: int) -> Host:
        made.append(Host(world_tmp, uid))
        return made[-1]
    yield make
    for h in made:
        h.close()


def _run(runner: Runner, rootfs: Path, argv: list[str], opts: tuple[str, ...],
         **env: str) -> tuple[subprocess.CompletedProcess, str]:
    proc = subprocess.run(runner.cmd(rootfs, argv, *opts), env={**runner.env(), **env},
                          stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          timeout=BOUND_S, cwd="/")
    return proc, proc.stdout + proc.stderr


CASES = ("mknod", "planted", "race")


@pytest.mark.parametrize("case,cell", spread(list(CASES), per_case=1))
def test_host_devices(case: str, cell: Cell, rootfs_for, host_for, unpriv_pythonpath) -> None:
    rootfs = rootfs_for(cell.uid, "dev_attack")
    host = host_for(cell.uid)
    pts = os.ttyname(host.tty.slave).rsplit("/", 1)[1]
    argv = {"mknod": ["/attack", "mknod", *host.numbers(), pts, host.text],
            "planted": ["/attack", "planted", host.text],
            "race": ["/attack", "race", *host.numbers(), host.text]}[case]
    if case == "planted":
        host.plant(rootfs)
    start = time.monotonic()
    proc, out = _run(runner_for(cell, unpriv_pythonpath), rootfs, argv, cell.opts(),
                     BRANDPY_TEST_RACE_PAUSE_US=str(RACE_PAUSE_US))
    evidence = host.evidence(out)
    left = reap_leftovers(rootfs)
    assert not evidence and proc.returncode == 0 and not left, (
        evidence, proc.returncode, left, out, f"{time.monotonic() - start:.1f}s")
    # it did attack
    assert ("RACED" in out) if case == "race" else ("REFUSED" in out), out
    if case == "mknod":      # a node of a device it was given opens, as under Docker
        assert "GIVEN /tmp/x-null ok" in out, out


WALLS_OFF = {"walls": (), "cgroup": (landlock.TEST_OFF, NAMESPACES_OFF),
             "bpf": (landlock.TEST_OFF, NAMESPACES_OFF, cgroups.TEST_NO_V1_DEVICES),
             "control": (landlock.TEST_OFF, NAMESPACES_OFF, cgroups.TEST_OFF)}


@pytest.mark.skipif(os.geteuid() != 0 or landlock.abi() < 6, reason="the walls as root")
@pytest.mark.parametrize("walls", list(WALLS_OFF))
@pytest.mark.parametrize("engine", ENGINES)
def test_walls_hold_for_devices(engine: str, walls: str, rootfs_for, host_for) -> None:
    """A broken open handler hands the kernel the raw path of a node the
    image carried: as root the container's paths are nodev in its mount
    namespace and its cgroup allows only the devices it was given, so the
    kernel refuses it, and either wall alone does (cgroup: the devices
    controller and cgroup v2's device program; bpf: the program alone, as
    on a host with cgroup v2 only; the control, without any, opens the
    disk)."""
    rootfs = rootfs_for(0, "dev_attack")
    host = host_for(0)
    host.plant(rootfs)
    if walls == "cgroup" and "devices" not in cgroups.enforceable():
        pytest.skip("no devices cgroup controller here")
    if walls == "bpf" and not any(h.v2 for h in cgroups.hierarchies()):
        pytest.skip("no cgroup v2 hierarchy here")
    env = {BROKEN_HANDLER: "open,openat"} | {off: "1" for off in WALLS_OFF[walls]}
    proc, out = _run(Runner("root", engine, None), rootfs, ["/attack", "walls", str(rootfs),
                                                      host.text], (), **env)
    evidence = host.evidence(out)
    if walls != "control":
        assert not evidence and "REFUSED" in out and proc.returncode == 0, (evidence, out)
    else:
        assert "read the host's disk" in evidence, (evidence, out)


@pytest.mark.skipif(os.geteuid() != 0, reason="/proc/kmsg is root's")
@pytest.mark.parametrize("syslog", [False, True], ids=["default", "cap-syslog"])
@pytest.mark.parametrize("engine", ENGINES)
def test_kernel_log_needs_cap_syslog(engine: str, syslog: bool, rootfs_for) -> None:
    """/proc/kmsg, and reading /dev/kmsg under kernel.dmesg_restrict, need
    CAP_SYSLOG, which Docker's default set lacks: EPERM, even with
    --device /dev/kmsg; with --cap-add SYSLOG both read the log."""
    rootfs = rootfs_for(0, "dev_attack")
    log = KernelLog()
    try:
        opts = ("--device", "/dev/kmsg") + (("--cap-add", "SYSLOG") if syslog else ())
        proc, out = _run(Runner("root", engine, None), rootfs, ["/attack", "syslog"], opts)
    finally:
        log.close()
    assert proc.returncode == 0, out
    if syslog:
        assert "OPENED /proc/kmsg" in out and "OPENED /dev/kmsg" in out, out
        assert log.secret in out, out
    else:
        assert "REFUSED /proc/kmsg EPERM" in out and "REFUSED /dev/kmsg EPERM" in out, out
        assert log.secret not in out, out
