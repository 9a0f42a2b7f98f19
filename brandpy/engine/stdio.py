"""A process's stdio as the shim holds it: output fds read into the log and
to whoever is attached, and a stdin fd fed from attached clients. Runs on
the shim's asyncio loop."""

from __future__ import annotations

import asyncio
import errno
import fcntl
import os
import struct
import termios
from collections.abc import Callable
from dataclasses import dataclass, field

from . import shimproto
from .logs import LogWriter

# An attached client that stops reading is dropped rather than left to
# stall the container's output (Docker blocks instead; a shim must not).
MAX_CLIENT_BUFFER = 8 << 20


def set_winsize(fd: int, height: int, width: int) -> None:
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", height, width, 0, 0))


class FdReader:
    """Reads a pipe or pty master until EOF (EIO on a pty whose last slave
    fd closed is its EOF)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, fd: int,
                 on_data: Callable[[bytes], None], on_eof: Callable[[], None]) -> None:
        self.loop, self.fd, self.on_data, self.on_eof = loop, fd, on_data, on_eof
        os.set_blocking(fd, False)
        loop.add_reader(fd, self._ready)

    def _ready(self) -> bool:
        """Read once; whether there may be more."""
        try:
            data = os.read(self.fd, 65536)
        except BlockingIOError:
            return False
        except OSError as exc:
            if exc.errno != errno.EIO:
                raise
            data = b""
        if data:
            self.on_data(data)
            return True
        self.close()
        self.on_eof()
        return False

    def pull(self) -> None:
        """Take everything written so far, without waiting for the loop."""
        while self.fd >= 0 and self._ready():
            pass

    def close(self) -> None:
        if self.fd >= 0:
            self.loop.remove_reader(self.fd)
            os.close(self.fd)
            self.fd = -1


class FdWriter:
    """Non-blocking writes to a pipe or pty master with a buffer, so a
    container that does not read its stdin never blocks the shim."""

    def __init__(self, loop: asyncio.AbstractEventLoop, fd: int) -> None:
        self.loop, self.fd = loop, fd
        self.buf = bytearray()
        self.closing = False
        os.set_blocking(fd, False)

    def write(self, data: bytes) -> None:
        if self.fd < 0 or self.closing:
            return
        if not self.buf:
            self.loop.add_writer(self.fd, self._flush)
        self.buf += data

    def _flush(self) -> None:
        try:
            n = os.write(self.fd, self.buf)
        except BlockingIOError:
            return
        except OSError:
            self.buf.clear()   # the reader is gone (EPIPE): nothing more will be read
            n = 0
        del self.buf[:n]
        if not self.buf:
            self.loop.remove_writer(self.fd)
            if self.closing:
                self._close_now()

    def close(self) -> None:
        """Close once what is buffered has been written (stdin EOF)."""
        self.closing = True
        if not self.buf:
            self._close_now()

    def _close_now(self) -> None:
        if self.fd >= 0:
            self.loop.remove_writer(self.fd)
            os.close(self.fd)
            self.fd = -1


@dataclass(eq=False)
class Client:
    """One attached connection: gets frames of the streams it asked for."""
    writer: asyncio.StreamWriter
    streams: set[int]

    def send(self, stream: int, data: bytes) -> None:
        if stream not in self.streams or self.writer.is_closing():
            return
        self.writer.write(shimproto.frame(stream, data))
        if self.writer.transport.get_write_buffer_size() > MAX_CLIENT_BUFFER:
            self.writer.close()

    def send_control(self, obj: dict) -> None:
        if not self.writer.is_closing():
            self.writer.write(shimproto.control(obj))

    def close(self) -> None:
        if not self.writer.is_closing():
            self.writer.close()


@dataclass
class ChildEnds:
    """The fds a spawned process gets as 0, 1, 2, and what to close in the
    shim once it has them."""
    stdio: tuple[int, int, int]
    to_close: list[int] = field(default_factory=list)

    def close(self) -> None:
        for fd in self.to_close:
            os.close(fd)
        self.to_close.clear()


class Session:
    """The stdio of one process (the entrypoint or an exec): created with
    pipes or a pty, then started on the loop once the process runs."""

    def __init__(self, tty: bool, open_stdin: bool,
                 console_size: tuple[int, int] | None = None) -> None:
        self.tty = tty
        self.clients: set[Client] = set()
        self.log: LogWriter | None = None
        self.stdin: FdWriter | None = None
        self.readers: list[FdReader] = []
        self.drained: asyncio.Future[None] | None = None
        self._out: list[tuple[int, int]] = []    # (stream, fd) read by the shim
        self._stdin_fd = -1
        if tty:
            master, slave = os.openpty()
            if console_size and all(console_size):
                set_winsize(master, *console_size)
            self.master = master
            self._out = [(shimproto.STDOUT, master)]
            if open_stdin:
                self._stdin_fd = os.dup(master)
            self.child = ChildEnds((slave, slave, slave), [slave])
            return
        self.master = -1
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        if open_stdin:
            in_r, self._stdin_fd = os.pipe()
        else:
            in_r = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
        self._out = [(shimproto.STDOUT, out_r), (shimproto.STDERR, err_r)]
        self.child = ChildEnds((in_r, out_w, err_w), [in_r, out_w, err_w])

    def begin(self, loop: asyncio.AbstractEventLoop, log: LogWriter | None = None) -> None:
        """Start pumping (on the loop, after the process was spawned)."""
        self.log = log
        drained = self.drained = loop.create_future()
        open_fds = {fd for _, fd in self._out}
        for stream, fd in self._out:
            def on_data(data: bytes, stream: int = stream) -> None:
                self._output(stream, data)

            def on_eof(fd: int = fd) -> None:
                open_fds.discard(fd)
                if not open_fds and not drained.done():
                    if self.log is not None:
                        self.log.flush()
                    drained.set_result(None)

            self.readers.append(FdReader(loop, fd, on_data, on_eof))
        if self._stdin_fd >= 0:
            self.stdin = FdWriter(loop, self._stdin_fd)

    def abandon(self) -> None:
        """The process never started: close everything."""
        self.child.close()
        for _, fd in self._out:
            os.close(fd)
        if self._stdin_fd >= 0:
            os.close(self._stdin_fd)

    def _output(self, stream: int, data: bytes) -> None:
        if self.log is not None:
            self.log.write("stdout" if stream == shimproto.STDOUT else "stderr", data)
        for client in list(self.clients):
            client.send(stream, data)

    def pull(self) -> None:
        """Log what the process has written so far (a `docker logs` that
        must see output written before it was asked)."""
        for reader in self.readers:
            reader.pull()

    def resize(self, height: int, width: int) -> None:
        if self.master < 0:
            raise OSError(errno.ENOTTY, "this process has no TTY")
        if self.readers and self.readers[0].fd >= 0:
            set_winsize(self.readers[0].fd, height, width)

    def write_stdin(self, data: bytes) -> None:
        if self.stdin is not None:
            self.stdin.write(data)

    def close_stdin(self) -> None:
        if self.stdin is not None:
            self.stdin.close()

    async def drain(self, grace: float) -> None:
        """Wait for the output to be read to its end (begun first), at most
        grace seconds: a leftover process may hold it open."""
        if self.drained is None:
            raise RuntimeError("Session.drain() before begin()")
        try:
            await asyncio.wait_for(asyncio.shield(self.drained), grace)
        except TimeoutError:
            self.stop_reading()

    def stop_reading(self) -> None:
        """Give up on output still held open by a leftover process."""
        for reader in self.readers:
            reader.close()
        if self.drained is not None and not self.drained.done():
            if self.log is not None:
                self.log.flush()
            self.drained.set_result(None)
