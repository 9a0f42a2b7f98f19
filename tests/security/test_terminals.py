"""Issue 15, terminals: a container must not type into, read from or take
over a terminal that is not its own.

The host side has two ptys the test owns (chowned to the user brandpy runs
as, so that only brandpy stands in the way): the user's terminal `brandpy
run` is started from (its controlling terminal, brandpy in its foreground,
as a shell starts a job; or, for `noctty`, nobody's controlling terminal),
and another session's terminal, in which keystrokes wait to be read.
tests/security/programs/tty_attack.c, as the entrypoint:

- stdio: TIOCSTI into whatever terminal its stdio is, after making it its
  controlling terminal if it can (setsid, TIOCSCTTY, with the steal flag
  too), and tcsetpgrp for the terminal's foreground;
- scan: every /dev/pts/N it can open: writes on it, reads the keystrokes
  waiting there, TIOCSTI into it (also as its controlling terminal).

Evidence: the attack's text waiting as input on either host terminal
(typed), on the other session's screen (written), the waiting keystrokes
in the container's output (read), the foreground taken.

Before the fix (measured at 5ad53db, every cell, without -i/-t, which
did not exist): stdio typed into the user's terminal in 8 of 8 cells,
stdio-noctty in 8 of 8 (it took the terminal as its controlling one), and
scan reached the other session in 8 of 8: 24 of 24. Now the container's
stdio is never a host terminal (pipes relayed by the supervisor, or with
-t a pty of its own), its /dev/pts holds its own ptys alone, and TIOCSTI
is refused (EIO).

`test_own_terminal` checks -t: the container's terminal is named in its
/dev/pts (/dev/pts/0, the first of its own devpts instance, unless the
host forbids user namespaces to uid 65534), alone there, follows our
window size, passes keys with -i, and our terminal is as it was
afterwards.
"""

from __future__ import annotations

import fcntl
import os
import re
import secrets
import select
import signal
import struct
import subprocess
import termios
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.conftest import nobody_has_namespaces

from .conftest import Cell, runner_for, spread
from .harness import reap_leftovers

BOUND_S = 30.0


@dataclass
class Terminal:
    """A host pty the test holds: what the container's side wrote on it
    (its screen), collected while brandpy runs."""
    master: int
    slave: int
    screen: bytearray = field(default_factory=bytearray)
    reader: threading.Thread | None = None

    @classmethod
    def open(cls, uid: int) -> Terminal:
        master, slave = os.openpty()
        os.fchown(slave, uid, -1)
        t = cls(master, slave)
        t.reader = threading.Thread(target=t._read, daemon=True)
        t.reader.start()
        return t

    def _read(self) -> None:
        while True:
            try:
                if not select.select([self.master], [], [], 0.1)[0]:
                    continue
                data = os.read(self.master, 65536)
            except OSError:
                return
            if not data:
                return
            self.screen += data

    def typed(self) -> bytes:
        """What waits as input on the terminal (typed, as its reader would
        see it next)."""
        attrs = termios.tcgetattr(self.slave)
        attrs[3] &= ~termios.ICANON
        attrs[6][termios.VMIN] = attrs[6][termios.VTIME] = 0
        termios.tcsetattr(self.slave, termios.TCSANOW, attrs)
        os.set_blocking(self.slave, False)
        try:
            return os.read(self.slave, 65536)
        except OSError:
            return b""

    def close(self) -> None:
        os.close(self.master)      # the reader sees EIO/EBADF and ends
        os.close(self.slave)


def _run(cell: Cell, rootfs: Path, argv: list[str], opts: tuple[str, ...], user_tty: Terminal,
         ctty: bool, unpriv_pythonpath, resize: tuple[int, int] | None = None,
         keys: bytes = b"") -> tuple[int | str, str]:
    """brandpy run with the user's terminal as stdin, stdout and stderr (its
    controlling terminal, brandpy in its foreground, when ctty)."""
    runner = runner_for(cell, unpriv_pythonpath)

    def as_job() -> None:
        if ctty:
            fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    proc = subprocess.Popen(runner.cmd(rootfs, argv, *opts, *cell.opts()), env=runner.env(),
                            stdin=user_tty.slave, stdout=user_tty.slave, stderr=user_tty.slave,
                            start_new_session=True, preexec_fn=as_job, cwd="/")
    if resize or keys:
        time.sleep(3)       # its terminal made, its program started
        if resize:
            fcntl.ioctl(user_tty.slave, termios.TIOCSWINSZ, struct.pack("HHHH", *resize, 0, 0))
            proc.send_signal(signal.SIGWINCH)
        if keys:
            os.write(user_tty.master, keys)
    try:
        status: int | str = proc.wait(BOUND_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        status = "hang"
    time.sleep(0.5)      # the last output read off the pty
    return status, user_tty.screen.decode(errors="replace")


ATTACKS = {"stdio": ("stdio", True, ()), "stdio-noctty": ("stdio", False, ()),
           "stdio-t": ("stdio", True, ("-t",)), "stdio-it": ("stdio", True, ("-i", "-t")),
           "stdio-i": ("stdio", True, ("-i",)), "scan": ("scan", True, ()),
           "scan-it": ("scan", True, ("-i", "-t"))}
CELLS_OF_ATTACKS = spread(list(ATTACKS))


def check(case: str, cell: Cell, rootfs_for, unpriv_pythonpath) -> None:
    mode, ctty, opts = ATTACKS[case]
    rootfs = rootfs_for(cell.uid, "tty_attack")
    text = f"TYPED-{secrets.token_hex(6)}"
    keys = f"KEYS-{secrets.token_hex(6)}"
    user, other = Terminal.open(cell.uid), Terminal.open(cell.uid)
    try:
        os.write(other.master, keys.encode() + b"\n")    # the other session's user typing
        status, out = _run(cell, rootfs, ["/attack", mode, text], opts, user, ctty,
                           unpriv_pythonpath)
        evidence = []
        if text.encode() in user.typed():
            evidence.append("typed into the user's terminal")
        if text.encode() in other.typed():
            evidence.append("typed into another session's terminal")
        if text in other.screen.decode(errors="replace"):
            evidence.append("wrote on another session's terminal")
        if keys in out:
            evidence.append("read another session's keystrokes")
        if "FOREGROUND" in out and "-t" not in opts:
            evidence.append("took the user's terminal's foreground")
        left = reap_leftovers(rootfs)
        assert not evidence and status == 0 and not left, (evidence, status, left, out)
        # it did attack: its stdio, or the terminals it found
        assert ("fd 0:" in out) if mode == "stdio" else ("/dev/pts/" in out or out == ""), out
    finally:
        user.close()
        other.close()


@pytest.mark.parametrize("case,cell", CELLS_OF_ATTACKS)
def test_other_terminals(case: str, cell: Cell, rootfs_for, unpriv_pythonpath) -> None:
    check(case, cell, rootfs_for, unpriv_pythonpath)


OWN = {"names": ("-t",), "keys": ("-i", "-t")}


@pytest.mark.parametrize("case,cell", spread(list(OWN), per_case=1))
def test_own_terminal(case: str, cell: Cell, rootfs_for, unpriv_pythonpath) -> None:
    """-t: a terminal of the container's own, the one in its /dev/pts; -i
    -t: our keys reach it, our terminal raw meanwhile and cooked after."""
    rootfs = rootfs_for(cell.uid, "tty_attack")
    user = Terminal.open(cell.uid)
    try:
        before = termios.tcgetattr(user.slave)
        if case == "names":
            script = ("/attack info; /attack ls; /attack stdio TYPED-own; sleep 5; "
                      "stty size")
            status, out = _run(cell, rootfs, ["/bin/sh", "-c", script], OWN[case], user, True,
                               unpriv_pythonpath, resize=(33, 77))
            name = re.search(r"fd 0: tty (/dev/pts/\d+)", out)
            assert status == 0 and name, out
            assert f"fd 1: tty {name[1]}" in out and "/dev/tty: opened" in out, out
            if cell.uid == 0 or nobody_has_namespaces():   # its devpts' first pty, as in Docker
                assert name[1] == "/dev/pts/0", out
            # its own pty alone, and the devpts' ptmx, as in Docker's /dev/pts
            assert sorted(re.findall(r"PTS (\S+)", out)) == sorted(
                [name[1].rsplit("/", 1)[1], "ptmx"]), out
            assert "TIOCSTI fd 0: EIO" in out and "TYPED fd" not in out, out
            assert "33 77" in out, out
        else:
            status, out = _run(cell, rootfs, ["/bin/sh", "-c", "read x; echo got:$x; exit 6"],
                               OWN[case], user, True, unpriv_pythonpath, keys=b"hello\r")
            assert status == 6 and "got:hello" in out, out
        assert termios.tcgetattr(user.slave) == before
        assert not reap_leftovers(rootfs)
    finally:
        user.close()
