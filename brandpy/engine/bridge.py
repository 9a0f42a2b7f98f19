"""Byte streams between the event loop and worker threads: blocking
library code (tarfile, the image store) reads a request body or writes a
response body through these, with bounded buffering both ways."""

from __future__ import annotations

import asyncio
import io
import queue
import threading
from collections.abc import Callable
from typing import Any, BinaryIO, Protocol

from .errors import EngineError

DEPTH = 16          # chunks in flight


class Body(Protocol):
    """A request body: aiohttp's stream, or asyncio's."""

    async def read(self, n: int = -1, /) -> bytes: ...


class BodyReader(io.RawIOBase):
    """A request body as a blocking file for a thread; `feed` runs on the
    loop. A consumer that stops early (an error) stops the feeding too."""

    def __init__(self, body: Body) -> None:
        self.body = body
        self.q: queue.Queue[bytes] = queue.Queue(maxsize=DEPTH)
        self.buf = b""
        self.eof = False
        self.stopped = threading.Event()

    async def feed(self) -> None:
        try:
            while chunk := await self.body.read(1 << 16):
                while not self.stopped.is_set():
                    try:
                        self.q.put_nowait(chunk)
                        break
                    except queue.Full:
                        await asyncio.sleep(0.005)
                if self.stopped.is_set():
                    return
        finally:
            while not self.stopped.is_set():
                try:
                    self.q.put_nowait(b"")
                    break
                except queue.Full:
                    await asyncio.sleep(0.005)

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:   # noqa: ANN001 - buffer protocol
        while not self.buf and not self.eof:
            chunk = self.q.get()
            if not chunk:
                self.eof = True
            self.buf = chunk
        n = min(len(b), len(self.buf))
        b[:n] = self.buf[:n]
        self.buf = self.buf[n:]
        return n

    def stop(self) -> None:
        self.stopped.set()


async def consume(body: Body, work: Callable[[BinaryIO], Any]) -> Any:
    """Run work(file) in a thread with the request body as its file."""
    reader = BodyReader(body)

    def run() -> Any:
        try:
            return work(io.BufferedReader(reader, 1 << 16))
        finally:
            reader.stop()

    feeder = asyncio.ensure_future(reader.feed())
    try:
        return await asyncio.to_thread(run)
    finally:
        reader.stop()
        await feeder


class _QueueWriter:
    """A file a worker thread writes into, read by the event loop."""

    def __init__(self) -> None:
        self.q: queue.Queue[bytes | BaseException | None] = queue.Queue(maxsize=DEPTH)
        self.cancelled = threading.Event()

    def write(self, data: bytes) -> int:
        while not self.cancelled.is_set():
            try:
                self.q.put(bytes(data), timeout=0.1)
                return len(data)
            except queue.Full:
                continue
        raise BrokenPipeError("the client went away")

    def flush(self) -> None:
        pass


async def produce(work: Callable[[BinaryIO], Any], write: Callable[[bytes], Any]) -> None:
    """Run work(file) in a thread; what it writes goes to `await write(chunk)`.
    A failure in work is raised as an EngineError."""
    out = _QueueWriter()

    def run() -> None:
        try:
            work(out)   # type: ignore[arg-type]  # a write-only RawIOBase: all work uses of BinaryIO
            out.q.put(None)
        except BaseException as exc:   # handed to the loop, which raises it
            out.q.put(exc)

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    try:
        while True:
            item = await asyncio.to_thread(out.q.get)
            if item is None:
                break
            if isinstance(item, EngineError):
                raise item
            if isinstance(item, BaseException):
                raise EngineError(str(item)) from item
            await write(item)
    finally:
        out.cancelled.set()
        await asyncio.to_thread(worker.join)


async def run_with_progress(work: Callable[[Callable[[dict], None]], Any],
                            send: Callable[[dict], Any]) -> Any:
    """Run work(emit) in a thread; each emit(message) from it is passed to
    `await send(message)` on the loop, in order. Returns work's result."""
    loop = asyncio.get_running_loop()
    q: asyncio.Queue = asyncio.Queue()
    done = object()

    def emit(msg: dict) -> None:
        loop.call_soon_threadsafe(q.put_nowait, msg)

    def run() -> Any:
        try:
            return work(emit)
        finally:
            loop.call_soon_threadsafe(q.put_nowait, done)

    task = asyncio.ensure_future(asyncio.to_thread(run))
    while (msg := await q.get()) is not done:
        await send(msg)
    return await task
