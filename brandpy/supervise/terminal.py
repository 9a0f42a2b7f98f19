"""`brandpy run`'s standard streams, as `docker run` makes them: the
container never holds a terminal of the host's (TIOCSTI types into any
terminal one holds with CAP_SYS_ADMIN, or into its controlling terminal,
and a leftover reader would see the user's keystrokes).

- Without -t: what is not a terminal is handed over as it is (a pipe, a
  file); a terminal becomes a pipe the supervisor relays. Without -i the
  container's stdin is /dev/null.
- With -t: a new pty is its stdin, stdout, stderr and controlling
  terminal (and the only one in its /dev/pts, brandpy/runtime/ptys.py);
  the supervisor relays its output, and with -i our stdin to it, our
  terminal in raw mode meanwhile (keys, ^C included, reach the
  container's line discipline), and its window size follows ours
  (SIGWINCH).
"""

from __future__ import annotations

import errno
import fcntl
import os
import select
import struct
import termios
import threading
import tty
from collections.abc import Callable

from brandpy.runtime.run_setup import ContainerError

CHUNK = 65536


def _is_tty(fd: int) -> bool:
    try:
        return os.isatty(fd)
    except OSError:
        return False


def set_size(fd: int, rows: int, cols: int) -> None:
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


def window_size(fd: int) -> tuple[int, int] | None:
    try:
        rows, cols = struct.unpack("HHHH", fcntl.ioctl(fd, termios.TIOCGWINSZ, b"\0" * 8))[:2]
    except OSError:
        return None
    return (rows, cols) if rows and cols else None


class Streams:
    """What the container gets as fds 0, 1, 2, and the relays between them
    and ours (`outer`)."""

    def __init__(self, outer: tuple[int, int, int], interactive: bool, tty_: bool) -> None:
        self.outer = outer
        self.tty = tty_
        self.master = -1
        self._child_ends: list[int] = []
        self._pumps: list[tuple[int, int]] = []    # (from, to): our output relays
        self._feed: tuple[int, int] | None = None  # (ours, theirs): the stdin relay
        self._threads: list[threading.Thread] = []
        self._saved: list[int | list[bytes | int]] | None = None
        self._stop_r, self._stop_w = os.pipe2(os.O_CLOEXEC)
        if tty_:
            self.stdio = self._pty(interactive)
        else:
            self.stdio = self._pipes(interactive)

    def _pty(self, interactive: bool) -> tuple[int, int, int]:
        if interactive and not _is_tty(self.outer[0]):
            raise ContainerError("the input device is not a TTY (-i -t needs one on stdin; "
                                 "leave out -t to pipe it)")
        self.master, slave = os.openpty()
        size = window_size(self.outer[1]) or window_size(self.outer[0])
        if size:
            set_size(slave, *size)
        self._child_ends.append(slave)
        self._pumps.append((self.master, self.outer[1]))
        if interactive:
            self._feed = (self.outer[0], self.master)
        return slave, slave, slave

    def _pipes(self, interactive: bool) -> tuple[int, int, int]:
        if not interactive:
            stdin = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
            self._child_ends.append(stdin)
        elif _is_tty(self.outer[0]):
            stdin, ours = os.pipe2(os.O_CLOEXEC)
            self._child_ends.append(stdin)
            self._feed = (self.outer[0], ours)
        else:
            stdin = self.outer[0]
        out = []
        for fd in self.outer[1:]:
            if _is_tty(fd):
                r, w = os.pipe2(os.O_CLOEXEC)
                self._child_ends.append(w)
                self._pumps.append((r, fd))
                out.append(w)
            else:
                out.append(fd)
        return stdin, out[0], out[1]

    def start(self) -> None:
        """Once the container has its ends: drop ours (so that its exit is
        the relays' end of file) and relay."""
        for fd in self._child_ends:
            os.close(fd)
        self._child_ends.clear()
        if self._feed is not None and self.tty and _is_tty(self.outer[0]):
            self._saved = termios.tcgetattr(self.outer[0])
            tty.setraw(self.outer[0], termios.TCSANOW)   # keep what was typed ahead
        for src, dst in self._pumps:
            self._spawn(_pump, src, dst)
        if self._feed is not None:
            self._spawn(_feed, *self._feed, self._stop_r, not self.tty)

    def _spawn(self, fn: Callable[..., None], *args: object) -> None:
        t = threading.Thread(target=fn, args=args, name="brandpy-stdio", daemon=True)
        t.start()
        self._threads.append(t)

    def resize(self) -> None:
        """SIGWINCH: the container's terminal takes our window size."""
        size = window_size(self.outer[1]) or window_size(self.outer[0])
        if self.master >= 0 and size:
            try:
                set_size(self.master, *size)
            except OSError:
                pass

    def finish(self) -> None:
        """Once the container is gone: its output relayed to the end, our
        terminal as it was."""
        os.write(self._stop_w, b"s")
        for t in self._threads:
            t.join(5)
        if self._saved is not None:
            termios.tcsetattr(self.outer[0], termios.TCSADRAIN, self._saved)
            self._saved = None
        for fd in (*self._child_ends, *(src for src, _ in self._pumps), self._stop_r,
                   self._stop_w):
            try:
                os.close(fd)
            except OSError:
                pass


def _pump(src: int, dst: int) -> None:
    """The container's output to ours, until its end of file (EIO on a pty
    master whose slaves are all closed)."""
    while True:
        try:
            data = os.read(src, CHUNK)
        except OSError as exc:
            if exc.errno == errno.EINTR:
                continue
            return
        if not data:
            return
        try:
            _write_all(dst, data)
        except OSError:
            return      # nobody reads our output any more: the container's writes go nowhere


def _feed(src: int, dst: int, stop: int, close_after: bool) -> None:
    """Our stdin to the container's, until our end of file (then theirs,
    for a pipe) or the container's end."""
    try:
        while True:
            ready, _, _ = select.select([src, stop], [], [])
            if stop in ready:
                return
            data = os.read(src, CHUNK)
            if not data:
                return
            _write_all(dst, data)
    except OSError:
        return
    finally:
        if close_after:
            os.close(dst)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]
