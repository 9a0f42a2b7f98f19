"""The zygote's main loop: `python -m brandpy.zygote SOCKET`, started by the
launcher with the socket, bound and listening, as fd 3 (it holds the lock
meanwhile, so one zygote starts however many launchers race).

It imports brandpy, builds the command line's parser, freezes what it has
(gc.freeze: the forked supervisors do not copy pages for the collector's
sake), then forks a worker per accepted request. It refuses peers whose
uid or inherited state differ (identity.py), retires when brandpy's files
changed since it started (the launcher then starts a fresh one), and exits
after BRANDPY_ZYGOTE_IDLE seconds (default 120) without a request or a
running worker, removing its socket, lock and, if empty, directory."""

from __future__ import annotations

import argparse
import fcntl
import gc
import os
import select
import signal
import socket
import struct
import sys
import time
from pathlib import Path

import brandpy.supervise.run  # noqa: F401  (cli's _run imports it when it runs)
from brandpy import cli, scratch
from brandpy.supervise.container import warm_up

from . import protocol
from .identity import identity
from .worker import work

LISTEN_FD = 3
DEFAULT_IDLE = 120.0


def idle_timeout() -> float:
    value = os.environ.get("BRANDPY_ZYGOTE_IDLE", "")
    try:
        return float(value) if value else DEFAULT_IDLE
    except ValueError:
        raise SystemExit(f"BRANDPY_ZYGOTE_IDLE={value!r}: give seconds, or unset it") from None


def preload() -> argparse.ArgumentParser:
    """Everything a run imports and computes alike; the parser, built
    once for the workers (its subcommands import the rest of brandpy)."""
    warm_up()
    return cli.parser()


def source_files() -> dict[str, int]:
    """brandpy's loaded modules (and its extension) with their mtimes."""
    roots = tuple(str(Path(m.__file__).parent) + os.sep for m in (sys.modules["brandpy"],
                                                                  sys.modules["syscalls"])
                  if m.__file__)
    found = {}
    for module in list(sys.modules.values()):
        path = getattr(module, "__file__", None)
        if path and path.startswith(roots):
            try:
                found[path] = os.stat(path).st_mtime_ns
            except OSError:
                found[path] = 0
    return found


def changed(files: dict[str, int]) -> bool:
    for path, mtime in files.items():
        try:
            if os.stat(path).st_mtime_ns != mtime:
                return True
        except OSError:
            return True
    return False


class Zygote:
    def __init__(self, sock_path: str, listener: socket.socket) -> None:
        self.sock_path = sock_path
        self.lock_path = sock_path.removesuffix(".sock") + ".lock"
        self.listener = listener
        self.idle = idle_timeout()
        self.identity = identity(os.getpid())
        self.parser = preload()
        self.files = source_files()
        self.children: dict[int, socket.socket] = {}
        self.wake_r, wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        signal.set_wakeup_fd(wake_w)
        signal.signal(signal.SIGCHLD, lambda *_: None)
        signal.signal(signal.SIGTERM, self._stop)
        gc.freeze()

    def _stop(self, *_: object) -> None:
        """SIGTERM: retire at once, leaving no socket, lock or directory."""
        self._retire(force=True, tidy=True)
        sys.exit(0)

    def serve(self) -> int:
        last = time.monotonic()
        while True:
            self._reap()
            if self.children:
                last = time.monotonic()
            left = self.idle - (time.monotonic() - last)
            if left <= 0 and self._retire(tidy=True):
                return 0
            if not self.children:   # idle: the next worker's janitor, ahead
                scratch.prepare()
            listening = self.listener.fileno()
            ready, _, _ = select.select([listening, self.wake_r], [], [], max(left, 0.05))
            if self.wake_r in ready:
                while True:
                    try:
                        if not os.read(self.wake_r, 512):
                            break
                    except BlockingIOError:
                        break
            if listening in ready:
                last = time.monotonic()
                if not self._accept():
                    return 0

    def _accept(self) -> bool:
        """Serve one connection; False once retired (brandpy changed)."""
        try:
            conn, _ = self.listener.accept()
        except BlockingIOError:
            return True
        pid, uid, _gid = struct.unpack("3i", conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED,
                                                             12))
        if uid != os.geteuid() or self._identity_of(pid) != self.identity:
            self._send(conn, protocol.REFUSED)
            conn.close()
            return True
        if changed(self.files):
            self._retire(force=True)
            while True:   # this one and those already queued start a fresh zygote
                self._send(conn, protocol.STALE)
                conn.close()
                try:
                    conn, _ = self.listener.accept()
                except BlockingIOError:
                    return False
        child = os.fork()
        if child == 0:
            self.listener.close()
            os.close(self.wake_r)
            for other in self.children.values():
                other.close()
            try:
                work(conn, self.parser)      # ends with os._exit
            finally:
                os._exit(125)                # never back into the zygote's loop
        self.children[child] = conn
        return True

    def _identity_of(self, pid: int) -> tuple[object, ...] | None:
        try:
            return identity(pid)
        except OSError:
            return None

    @staticmethod
    def _send(conn: socket.socket, kind: int, value: int = 0) -> None:
        try:
            conn.sendall(protocol.message(kind, value))
        except OSError:
            pass   # the launcher went away

    def _reap(self) -> None:
        """Tell each finished worker's launcher how it ended (if it did not
        say so itself: it died of a signal or before its request)."""
        while self.children:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            conn = self.children.pop(pid, None)
            if conn is not None:
                self._send(conn, protocol.DIED, status)
                conn.close()

    def _retire(self, force: bool = False, tidy: bool = False) -> bool:
        """Stop serving, unless a launcher connected meanwhile (it holds the
        lock while it connects, so none can slip in between), or whatever
        is queued (force); tidy: remove the lock, log and empty directory."""
        try:
            lock = os.open(self.lock_path, os.O_RDWR | os.O_CLOEXEC | os.O_NOFOLLOW)
        except OSError:
            lock = -1
        try:
            if lock >= 0:
                fcntl.flock(lock, fcntl.LOCK_EX)
            if not force and select.select([self.listener], [], [], 0)[0]:
                return False
            try:
                os.unlink(self.sock_path)   # ours: launchers replace only a dead one
            except OSError:
                pass
            if tidy:
                for path in (self.lock_path, self.lock_path.removesuffix(".lock") + ".log"):
                    try:
                        os.unlink(path)
                    except OSError:
                        pass
                try:
                    os.rmdir(os.path.dirname(self.sock_path))
                except OSError:
                    pass   # other zygotes' files are there
            return True
        finally:
            if lock >= 0:
                os.close(lock)


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m brandpy.zygote SOCKET (started by the brandpy launcher, "
              "with the listening socket as fd 3)", file=sys.stderr)
        return 2
    listener = socket.socket(fileno=LISTEN_FD)
    listener.setblocking(False)
    return Zygote(argv[0], listener).serve()
