"""The C `brandpy` command (native/launcher/launcher.c) and its zygote
(brandpy/zygote/): `brandpy run` handed to a warm supervisor must behave
as `python -m brandpy run` does — exit status, stdio, forwarded signals,
as root and as uid 65534 — serve only its own user, and leave nothing
behind once idle."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from brandpy.zygote import protocol
from tests.conftest import REPO, SETPRIV, Result, leftovers

IDLE = 2.0


class Launcher:
    """`brandpy run` through the launcher, with a private runtime
    directory (so its zygote is this test's alone) and a short idle time."""

    def __init__(self, runner, runtime: Path) -> None:
        self.runner = runner
        self.runtime = runtime
        tree = Path(runner.pythonpath) if runner.pythonpath else REPO
        self.binary = tree / "brandpy" / "_launcher"
        if not self.binary.exists():
            pytest.fail(f"{self.binary} missing: build it with `python setup.py build_ext --inplace`")

    def env(self, **extra: str) -> dict[str, str]:
        return {**self.runner.env(), "XDG_RUNTIME_DIR": str(self.runtime),
                "BRANDPY_ZYGOTE_IDLE": str(IDLE), **extra}

    def cmd(self, rootfs: Path, argv: list[str], *opts: str) -> list[str]:
        base = SETPRIV if self.runner.user == "nobody" else []
        return [*base, str(self.binary), "run", "--engine", self.runner.engine, *opts,
                "--rootfs", str(rootfs), "--", *argv]

    def __call__(self, rootfs: Path, argv: list[str], *opts: str, input: str = "") -> Result:
        p = subprocess.run(self.cmd(rootfs, argv, *opts), input=input, capture_output=True,
                           text=True, timeout=120, env=self.env(), cwd="/")
        return Result(p.returncode, p.stdout, p.stderr)

    @property
    def zygote_dir(self) -> Path:
        return self.runtime / "brandpy-zygote"

    def zygotes(self) -> list[int]:
        """The zygote processes serving this runtime directory (not their
        forks: a worker, or the janitor a zygote spawns while idle, before
        its exec)."""
        found = self.forked_from_zygotes()
        return [pid for pid in found if _parent(pid) not in found]

    def workers(self) -> list[int]:
        found = self.forked_from_zygotes()
        return [pid for pid in found if _parent(pid) in found]

    def forked_from_zygotes(self) -> list[int]:
        found = []
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
            except OSError:
                continue
            if b"brandpy.zygote" in cmdline and str(self.zygote_dir).encode() in cmdline:
                found.append(int(entry))
        return found


@pytest.fixture
def launcher(brandpy, world_tmp: Path):
    runtime = Path(tempfile.mkdtemp(dir=world_tmp))
    os.chown(runtime, brandpy.uid, brandpy.uid)
    runtime.chmod(0o700)
    launch = Launcher(brandpy, runtime)
    yield launch
    for pid in launch.forked_from_zygotes():
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    shutil.rmtree(runtime, ignore_errors=True)


def wait_for(predicate, seconds: float = 15.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


def test_exit_status_and_stdio_pass_through(launcher, busybox):
    r = launcher(busybox, ["/bin/sh", "-c", "read x; echo out $x; echo err >&2; exit 7"], "-i",
                 input="through stdin\n")
    assert (r.status, r.out, r.err) == (7, "out through stdin\n", "err\n")
    zygotes = launcher.zygotes()
    assert len(zygotes) == 1
    # the second run is served by the same zygote, in a supervisor of its own
    r = launcher(busybox, ["/bin/sh", "-c", "pwd; echo $FOO"])
    assert (r.status, r.out) == (0, "/\n\n")
    assert launcher.zygotes() == zygotes


def test_start_up_errors_keep_their_status(launcher, busybox):
    r = launcher(busybox, ["nosuchcommand"])
    assert r.status == 127
    assert r.err.strip() == 'brandpy: exec: "nosuchcommand": executable file not found in $PATH'
    # argparse's errors, as Python in-process gives them
    bad = launcher.cmd(busybox, ["/bin/true"])
    bad.insert(bad.index("run") + 1, "--no-such-option")
    fast = subprocess.run(bad, capture_output=True, text=True, env=launcher.env(), cwd="/")
    slow = subprocess.run(launcher.runner.cli(*bad[bad.index("run"):]), capture_output=True,
                          text=True, env=launcher.runner.env(), cwd="/")
    assert (fast.returncode, fast.stderr) == (slow.returncode, slow.stderr) == (2, slow.stderr)


def test_signals_are_forwarded(launcher, busybox):
    script = "trap 'echo got TERM; exit 3' TERM; echo ready; while true; do sleep 0.05; done"
    p = subprocess.Popen(launcher.cmd(busybox, ["/bin/sh", "-c", script]), env=launcher.env(),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd="/")
    assert p.stdout.readline() == "ready\n"
    p.send_signal(signal.SIGTERM)
    out, err = p.communicate(timeout=30)
    assert (p.returncode, out) == (3, "got TERM\n"), err
    assert wait_for(lambda: leftovers(busybox) == [])


def test_a_container_killed_from_outside_is_137(launcher, busybox):
    p = subprocess.Popen(launcher.cmd(busybox, ["/bin/sh", "-c", "echo ready; sleep 30"]),
                         env=launcher.env(), stdout=subprocess.PIPE, text=True, cwd="/")
    assert p.stdout.readline() == "ready\n"
    init = min(int(entry.split()[0]) for entry in leftovers(busybox))
    os.kill(init, signal.SIGKILL)
    assert p.wait(30) == 137


def test_the_launcher_killed_kills_the_container(launcher, busybox):
    p = subprocess.Popen(launcher.cmd(busybox, ["/bin/sh", "-c", "echo ready; sleep 60 & sleep 60"]),
                         env=launcher.env(), stdout=subprocess.PIPE, text=True, cwd="/")
    assert p.stdout.readline() == "ready\n"
    assert leftovers(busybox)
    p.kill()
    p.wait(30)
    assert wait_for(lambda: leftovers(busybox) == [])


def test_idle_zygote_exits_and_leaves_nothing(launcher, busybox):
    assert launcher(busybox, ["/bin/true"]).status == 0
    assert launcher.zygotes()
    assert wait_for(lambda: not launcher.zygotes(), IDLE + 15)
    assert not launcher.zygote_dir.exists()


def test_other_users_are_refused(launcher, busybox):
    """The socket is 0600 in a 0700 directory; past those (root passes),
    the zygote refuses a peer of another uid."""
    if launcher.runner.user != "nobody" or launcher.runner.engine != "native":
        pytest.skip("one case: root knocking at uid 65534's zygote")
    assert launcher(busybox, ["/bin/true"]).status == 0
    assert oct(launcher.zygote_dir.stat().st_mode & 0o777) == "0o700"
    [sock] = launcher.zygote_dir.glob("*.sock")
    assert sock.stat().st_mode & 0o777 == 0o600
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(10)
        s.connect(str(sock))
        reply = s.recv(protocol.MESSAGE.size)
    assert protocol.MESSAGE.unpack(reply) == (protocol.REFUSED, 0)


def test_a_worker_killed_leaves_no_scratch(launcher, busybox):
    """SIGKILL of the supervisor (the zygote's worker) runs no cleanup: the
    janitor the zygote started for it before the request came
    (scratch.prepare) removes the run's /dev and /proc views."""
    def scratch() -> set[Path]:
        return {p for base in (Path("/dev/shm"), launcher.runtime) for p in base.glob("brandpy-*")}

    env = launcher.env(BRANDPY_ZYGOTE_IDLE="60")   # (a zygote exiting would end it too)
    subprocess.run(launcher.cmd(busybox, ["/bin/true"]), env=env, check=True, timeout=120,
                   cwd="/")   # the zygote is warm, idle
    before = scratch()
    p = subprocess.Popen(launcher.cmd(busybox, ["/bin/sh", "-c", "ls /proc >/dev/null; "
                                                "echo ready; sleep 30"]),
                         env=env, stdout=subprocess.PIPE, text=True, cwd="/")
    assert p.stdout.readline() == "ready\n"
    made = scratch() - before
    assert made, "the run made no scratch directory to test with"
    workers = launcher.workers()
    assert len(workers) == 1, workers
    os.kill(workers[0], signal.SIGKILL)
    p.wait(30)
    assert wait_for(lambda: not scratch() & made and leftovers(busybox) == [], 10)


def _parent(pid: int) -> int:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0   # gone
    return int(stat.rsplit(")", 1)[1].split()[1])
