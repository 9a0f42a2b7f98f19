"""Container logs in Docker's json-file format: one JSON object per line,
`{"log": "...", "stream": "stdout"|"stderr", "time": RFC3339Nano}`, so
`docker logs` works while the daemon is down and after it restarts.

The shim writes (LogWriter), rotating as the json-file and local drivers'
max-size, max-file and compress ask (logdrivers.py): PATH is the current
file, PATH.1 (or PATH.1.gz) the newest rotated one, up to PATH.<max-file
- 1>. The daemon reads (read), across the rotated files."""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import io
import itertools
import json
import os
import shutil
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from . import timefmt
from .logdrivers import Rotation

# Docker splits lines longer than this into several partial entries.
MAX_ENTRY = 16 * 1024
FOLLOW_POLL = 0.05


class LogWriter:
    """Appends entries line by line; a line without its newline yet waits
    until it is complete, too long, or the stream ends (flush)."""

    def __init__(self, path: str, rotation: Rotation | None = None) -> None:
        self.path = path
        self.rotation = rotation or Rotation()
        self.fd = self._open()
        self.size = os.fstat(self.fd).st_size
        self.pending: dict[str, bytes] = {"stdout": b"", "stderr": b""}

    def _open(self) -> int:
        return os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o640)

    def _append(self, entries: list[bytes]) -> None:
        """Write entries, rotating before one that would pass max-size."""
        limit = self.rotation.max_size
        batch = bytearray()
        for entry in entries:
            if limit > 0 and self.size + len(batch) and self.size + len(batch) + len(entry) > limit:
                self._write(batch)
                batch.clear()
                self._rotate()
            batch += entry
        self._write(batch)

    def _write(self, data: bytes | bytearray) -> None:
        if data:
            os.write(self.fd, data)
            self.size += len(data)

    def _rotate(self) -> None:
        """As dockerd: with one file it is truncated; else each rotated
        file moves up one (the oldest goes) and the current one becomes .1."""
        keep = self.rotation.max_file
        if keep <= 1:
            os.ftruncate(self.fd, 0)
            self.size = 0
            return
        suffix = ".gz" if self.rotation.compress else ""
        for n in range(keep - 1, 0, -1):
            older = f"{self.path}.{n}{suffix}"
            if n == keep - 1:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(older)
            else:
                with contextlib.suppress(FileNotFoundError):
                    os.rename(older, f"{self.path}.{n + 1}{suffix}")
        os.close(self.fd)
        if self.rotation.compress:
            with open(self.path, "rb") as src, gzip.open(f"{self.path}.1.gz.tmp", "wb") as dst:
                shutil.copyfileobj(src, dst)
            os.rename(f"{self.path}.1.gz.tmp", f"{self.path}.1.gz")
            os.unlink(self.path)
        else:
            os.rename(self.path, f"{self.path}.1")
        self.fd = self._open()
        self.size = 0

    def write(self, stream: str, data: bytes) -> None:
        buf = self.pending[stream] + data
        out = []
        while True:
            nl = buf.find(b"\n")
            if nl < 0 or nl >= MAX_ENTRY:
                if len(buf) < MAX_ENTRY:
                    break
                out.append(self._entry(stream, buf[:MAX_ENTRY]))
                buf = buf[MAX_ENTRY:]
                continue
            out.append(self._entry(stream, buf[:nl + 1]))
            buf = buf[nl + 1:]
        self.pending[stream] = buf
        self._append(out)

    def flush(self) -> None:
        for stream, buf in self.pending.items():
            if buf:
                self._append([self._entry(stream, buf)])
                self.pending[stream] = b""

    def close(self) -> None:
        self.flush()
        os.close(self.fd)

    @staticmethod
    def _entry(stream: str, data: bytes) -> bytes:
        return (json.dumps({"log": data.decode("utf-8", "replace"), "stream": stream,
                            "time": timefmt.iso()}, ensure_ascii=False) + "\n").encode()


@dataclass
class Entry:
    stream: str
    data: bytes
    time: str

    @property
    def ns(self) -> int:
        return timefmt.to_ns(self.time)


def parse(line: bytes) -> Entry | None:
    try:
        obj = json.loads(line)
        return Entry(obj["stream"], obj["log"].encode(), obj["time"])
    except (ValueError, KeyError, TypeError, AttributeError):
        return None   # a torn last line while the shim writes it


def tail_offset(f: BinaryIO, lines: int) -> tuple[int, int]:
    """(offset of the start of the last `lines` complete lines of f, how
    many lines that is: fewer when f has fewer)."""
    end = f.seek(0, os.SEEK_END)
    pos, found, block = end, 0, 64 * 1024
    while pos > 0:
        step = min(block, pos)
        pos -= step
        f.seek(pos)
        chunk = f.read(step)
        if pos + step == end and chunk.endswith(b"\n"):
            chunk = chunk[:-1]   # the last line's own newline
        idx = len(chunk)
        while True:
            idx = chunk.rfind(b"\n", 0, idx)
            if idx < 0:
                break
            found += 1
            if found == lines:
                return pos + idx + 1, found
    return 0, found + (1 if end else 0)


def entries(f: BinaryIO) -> Iterator[tuple[Entry, int]]:
    """Complete entries from f's position, each with the offset after it."""
    while True:
        start = f.tell()
        line = f.readline()
        if not line.endswith(b"\n"):
            f.seek(start)
            return
        entry = parse(line)
        if entry is not None:
            yield entry, f.tell()


def rotated(path: Path) -> list[Path]:
    """The rotated files, newest first."""
    out = []
    for n in itertools.count(1):
        found = [c for c in (Path(f"{path}.{n}"), Path(f"{path}.{n}.gz")) if c.exists()]
        if not found:
            break
        out.append(found[0])
    return out


def _open_rotated(path: Path) -> BinaryIO:
    if path.suffix == ".gz":
        with gzip.open(path, "rb") as z:
            data = z.read()
        return io.BytesIO(data)
    return open(path, "rb")


def _history(path: Path, current: BinaryIO | None, tail: int) -> list[BinaryIO]:
    """The rotated files to read before the current one, oldest first, each
    at its position; the current one positioned for tail."""
    if current is not None and tail == 0:
        current.seek(0, os.SEEK_END)
        return []
    want = tail
    if current is not None and want > 0:
        offset, found = tail_offset(current, want)
        current.seek(offset)
        want -= found
        if want <= 0:
            return []
    out: list[BinaryIO] = []
    for older in rotated(path):
        f = _open_rotated(older)
        out.insert(0, f)
        if want > 0:
            offset, found = tail_offset(f, want)
            f.seek(offset)
            want -= found
            if want <= 0:
                break
    return out


def _successor(path: Path, f: BinaryIO) -> BinaryIO | None:
    """The current file when the writer has rotated away from f (it was
    renamed or removed); f itself, rewound, when it was truncated."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None     # mid-rotation: the new file is not there yet
    mine = os.fstat(f.fileno())
    if st.st_ino != mine.st_ino:
        return open(path, "rb")
    if mine.st_size < f.tell():
        f.seek(0)
    return None


async def read(path: Path, *, stdout: bool, stderr: bool, tail: int, since: int | None,
               until: int | None, follow: bool, alive: Callable[[], bool]
               ) -> AsyncIterator[Entry]:
    """The entries `docker logs` asks for, from the rotated files on. With
    follow, new entries are polled for until the container stops (alive()
    turns False), whose log is complete by then: the shim drains the
    output before it records the exit."""
    try:
        current: BinaryIO | None = open(path, "rb")
    except FileNotFoundError:
        current = None
    files = _history(path, current, tail)
    if current is None and not files:
        return

    def chosen(f: BinaryIO) -> Iterator[Entry | None]:
        """f's complete entries that are asked for; None once past `until`."""
        for entry, _ in entries(f):
            ns = entry.ns
            if until is not None and ns > until:
                yield None
                return
            if (since is None or ns >= since) and (
                    (entry.stream == "stdout" and stdout) or (entry.stream == "stderr" and stderr)):
                yield entry

    try:
        for f in files:
            for entry in chosen(f):
                if entry is None:
                    return
                yield entry
        while current is not None:
            running = alive()
            following = _successor(path, current)
            # Read to the end, rotated or not: the writer is done with a
            # rotated file before it opens the next.
            for entry in chosen(current):
                if entry is None:
                    return
                yield entry
            if following is not None:
                files.append(current)     # closed below
                current = following
                continue
            if not follow or not running:
                return
            if until is not None and time.time_ns() > until:
                return
            await asyncio.sleep(FOLLOW_POLL)
    finally:
        for f in [*files, *([current] if current is not None else [])]:
            f.close()
