"""Terminals (runc's terminals.md): a new pty for a process with
`terminal: true`; its master goes to the caller over `--console-socket`
(SCM_RIGHTS, the pty's name as the message, as runc sends it), or, in the
foreground without a socket, stays here and is relayed to our own stdio.
`--pidfd-socket` passes a pidfd the same way."""

from __future__ import annotations

import errno
import fcntl
import os
import select
import signal
import socket
import struct
import termios
import tty
from collections.abc import Iterator
from contextlib import contextmanager

from .errors import OciError


def open_pty(size: list[int] | None) -> tuple[int, int]:
    """(master, slave), the window set to [height, width] when given."""
    master, slave = os.openpty()
    os.set_inheritable(master, False)
    if size and size[0] and size[1]:
        set_size(slave, size[0], size[1])
    return master, slave


def set_size(fd: int, rows: int, cols: int) -> None:
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


def send_console(path: str, master: int) -> None:
    send_fd(path, master, os.ttyname(master), "--console-socket")


def send_pidfd(path: str, pid: int) -> None:
    """--pidfd-socket: a pidfd of the process the caller reaps."""
    fd = os.pidfd_open(pid)
    try:
        send_fd(path, fd, "pidfd", "--pidfd-socket")
    finally:
        os.close(fd)


def send_fd(path: str, fd: int, name: str, option: str) -> None:
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.connect(path)
            socket.send_fds(s, [name.encode()], [fd])
    except OSError as exc:
        raise OciError(f"cannot send {name} to {option} {path}: "
                       f"{exc.strerror or exc}") from None


@contextmanager
def raw_stdin() -> Iterator[None]:
    """Our terminal in raw mode while it feeds the container's: keys,
    ^C included, reach the container's line discipline, not ours."""
    if not os.isatty(0):
        yield
        return
    saved = termios.tcgetattr(0)
    tty.setraw(0, termios.TCSANOW)   # keep what was typed ahead (TCSAFLUSH drops it)
    try:
        yield
    finally:
        termios.tcsetattr(0, termios.TCSADRAIN, saved)


def relay(master: int) -> None:
    """Copy our stdin to the pty and its output to our stdout until the
    container side is closed (EIO on the master)."""
    def resize(*_: object) -> None:
        try:
            rows, cols = struct.unpack("HHHH", fcntl.ioctl(0, termios.TIOCGWINSZ, b"\0" * 8))[:2]
            set_size(master, rows, cols)
        except OSError:
            pass

    if os.isatty(0):
        resize()
        signal.signal(signal.SIGWINCH, resize)
    inputs = [master, 0]
    with raw_stdin():
        while True:
            try:
                ready, _, _ = select.select(inputs, [], [])
            except InterruptedError:
                continue
            if master in ready:
                try:
                    data = os.read(master, 65536)
                except OSError as exc:
                    if exc.errno != errno.EIO:
                        raise
                    data = b""
                if not data:
                    return
                os.write(1, data)
            if 0 in ready:
                data = os.read(0, 65536)
                if data:
                    os.write(master, data)
                else:
                    inputs.remove(0)   # our stdin ended; the container's output may not
