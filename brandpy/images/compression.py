"""Compressed streams: detection by magic bytes, and readers that hash."""
from __future__ import annotations

import bz2
import gzip
import hashlib
import io
import lzma
import zlib
from collections.abc import Callable
from typing import BinaryIO, Protocol

import zstandard


class Reader(Protocol):
    """Whatever a blob is read from: a file, an HTTP response, a decompressor."""

    def read(self, size: int = -1, /) -> bytes: ...


MAGIC = {
    b"\x1f\x8b": "gzip",
    b"\x28\xb5\x2f\xfd": "zstd",
    b"\xfd7zXZ\x00": "xz",
    b"BZh": "bzip2",
}


def detect(head: bytes) -> str | None:
    """'gzip', 'zstd', 'xz', 'bzip2', or None for an uncompressed stream."""
    for magic, kind in MAGIC.items():
        if head.startswith(magic):
            return kind
    return None


def peekable(f: BinaryIO | io.RawIOBase) -> io.BufferedReader:
    if isinstance(f, io.BufferedReader):
        return f
    # BufferedReader needs only readinto(), which every binary file has; typeshed asks for a RawIOBase.
    return io.BufferedReader(f, 1 << 16)  # type: ignore[arg-type]


def decompressed(f: BinaryIO | io.RawIOBase) -> tuple[BinaryIO, str | None]:
    """Wrap f so that reading gives the uncompressed bytes; also returns the
    compression found."""
    f = peekable(f)
    kind = detect(f.peek(6)[:6])
    if kind == "gzip":
        # (typeshed's GzipFile, LZMAFile and BZ2File are io.BufferedIOBase, not typing.BinaryIO,
        # though they read alike)
        return gzip.GzipFile(fileobj=f, mode="rb"), kind  # type: ignore[return-value]
    if kind == "zstd":
        return zstandard.ZstdDecompressor().stream_reader(f, read_across_frames=True), kind
    if kind == "xz":
        return lzma.LZMAFile(f), kind  # type: ignore[return-value]
    if kind == "bzip2":
        return bz2.BZ2File(f), kind  # type: ignore[return-value]
    return f, None


# Errors a damaged or truncated compressed stream raises while reading.
STREAM_ERRORS: tuple[type[BaseException], ...] = (
    EOFError, OSError, zlib.error, lzma.LZMAError, zstandard.ZstdError, ValueError)


class HashingReader(io.RawIOBase):
    """Reads through f, keeping a sha256 and a byte count of what passed."""

    def __init__(self, f: Reader, on_read: Callable[[int], None] | None = None):
        self._f = f
        self.sha = hashlib.sha256()
        self.count = 0
        self._on_read = on_read

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:  # noqa: ANN001 - buffer protocol
        data = self._f.read(len(b))
        n = len(data)
        b[:n] = data
        self.sha.update(data)
        self.count += n
        if self._on_read and n:
            self._on_read(self.count)
        return n

    def drain(self) -> None:
        """Read to the end, so the hash covers the whole stream."""
        while self.read(1 << 20):
            pass

    @property
    def digest(self) -> str:
        return "sha256:" + self.sha.hexdigest()
