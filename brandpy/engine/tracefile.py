"""A container's syscall trace as the API serves it. The shim's tracer
writes JSON lines (research.TRACE_FILE); text is made from them on request,
in the same strace-like format as `brandpy run --trace` (runtime/trace.py),
so one file serves both formats."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import IO

from brandpy.runtime.trace import text_line

CHUNK = 1 << 16
FOLLOW_INTERVAL = 0.2


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
