"""A container's syscall trace as the API serves it. The shim's tracer
writes JSON lines (research.TRACE_FILE); text is made from them on request,
in the same strace-like format as `brandpy run --trace` (runtime/trace.py),
so one file serves both formats."""

from __future__ import annotations

import asyncio
import errno
import json
import os
import time
from pathlib import Path
from typing import IO, AsyncIterator, Callable

CHUNK = 1 << 16
FOLLOW_INTERVAL = 0.2


def text_line(rec: dict) -> str:
    """One JSON trace record as runtime/trace.py's text line."""
    started, result = float(rec["time"]), rec["result"]
    stamp = time.strftime("%H:%M:%S", time.localtime(started)) + \
        f".{int(started % 1 * 1e6):06d}"
    if result is None:
        res = "?"
    elif -4096 < result < 0:
        res = f"-1 {errno.errorcode.get(-result, -result)} ({os.strerror(-result)})"
    else:
        res = str(result)
    return f"[pid {rec['pid']:>5}] {stamp} {rec['call']} = {res} <{rec['disposition']}>\n"


def _read_lines(f: IO[bytes]) -> list[bytes]:
    """Whole lines only: the end of a line the tracer is still writing is
    left out."""
    lines = f.readlines(CHUNK)
    if lines and not lines[-1].endswith(b"\n"):
        f.seek(-len(lines.pop()), os.SEEK_CUR)
    return lines


async def chunks(path: Path, text: bool, alive: Callable[[], bool] = lambda: False
                 ) -> AsyncIterator[bytes]:
    """The trace in pieces (a trace of everything can run to many
    megabytes): as it stands, then, while alive() (follow), what the
    tracer adds."""
    f = None
    try:
        while True:
            running = alive()   # before the read, so nothing written before the end is missed
            if f is None:
                try:
                    f = open(path, "rb")
                except FileNotFoundError:
                    pass        # not started yet
            while f is not None and (lines := await asyncio.to_thread(_read_lines, f)):
                if text:
                    lines = [text_line(json.loads(line)).encode() for line in lines]
                yield b"".join(lines)
            if not running:
                break
            await asyncio.sleep(FOLLOW_INTERVAL)
    finally:
        if f is not None:
            f.close()
