"""Container logs in Docker's json-file format: one JSON object per line,
`{"log": "...", "stream": "stdout"|"stderr", "time": RFC3339Nano}`, so
`docker logs` works while the daemon is down and after it restarts.

The shim writes (LogWriter); the daemon reads (read)."""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from . import timefmt

# Docker splits lines longer than this into several partial entries.
MAX_ENTRY = 16 * 1024
FOLLOW_POLL = 0.05


class LogWriter:
    """Appends entries line by line; a line without its newline yet waits
    until it is complete, too long, or the stream ends (flush)."""

    def __init__(self, path: str) -> None:
        self.fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o640)
        self.pending: dict[str, bytes] = {"stdout": b"", "stderr": b""}

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
        if out:
            os.write(self.fd, b"".join(out))

    def flush(self) -> None:
        for stream, buf in self.pending.items():
            if buf:
                os.write(self.fd, self._entry(stream, buf))
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


def tail_offset(f: BinaryIO, lines: int) -> int:
    """Offset of the start of the last `lines` complete lines of f."""
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
                return pos + idx + 1
    return 0


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


async def read(path: Path, *, stdout: bool, stderr: bool, tail: int, since: int | None,
               until: int | None, follow: bool, alive: Callable[[], bool]
               ) -> AsyncIterator[Entry]:
    """The entries `docker logs` asks for. With follow, new entries are
    polled for until the container stops (alive() turns False), whose log
    is complete by then: the shim drains the output before it records the
    exit."""
    try:
        f = open(path, "rb")
    except FileNotFoundError:
        return
    with f:
        if tail == 0:
            f.seek(0, os.SEEK_END)
        elif tail > 0:
            f.seek(tail_offset(f, tail))
        while True:
            running = alive()
            for entry, _ in entries(f):
                ns = entry.ns
                if until is not None and ns > until:
                    return
                if since is not None and ns < since:
                    continue
                if (entry.stream == "stdout" and stdout) or (entry.stream == "stderr" and stderr):
                    yield entry
            if not follow or not running:
                return
            if until is not None and time.time_ns() > until:
                return
            await asyncio.sleep(FOLLOW_POLL)
