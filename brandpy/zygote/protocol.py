"""The launcher's protocol (native/launcher/launcher.c says it in C): a
request header with fds 0, 1, 2 and the working directory attached, its
strings (arguments, then the environment, each NUL-terminated), then
messages of two 32-bit fields both ways."""

from __future__ import annotations

import struct

MAGIC = b"BPZ1"
REQUEST = struct.Struct("<4sIIII")     # magic, umask, argc, envc, length of the strings
MESSAGE = struct.Struct("<Ii")         # type, value
REQUEST_FDS = 4

ACCEPT, EXIT, DIED, STALE, REFUSED, SIGNAL = range(1, 7)


def message(kind: int, value: int = 0) -> bytes:
    return MESSAGE.pack(kind, value)
