"""The kernel's stat structures, built by the supervisor when stat results
must be rewritten (fake ownership): struct stat from os.stat, struct statx
from libc's statx with the ownership fields patched."""

from __future__ import annotations

import ctypes
import os
import struct

from ..fsmeta import Override
from .linux import libc

STAT_FMT = "<QQQIIIiQqqqqqqqqq24x"      # x86_64 struct stat, 144 bytes
STATX_SIZE = 256
STATX_UID, STATX_GID, STATX_MODE = 20, 24, 28
STATX_RDEV_MAJOR, STATX_RDEV_MINOR = 128, 132

_statx = libc.statx
_statx.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_uint, ctypes.c_void_p]
_statx.restype = ctypes.c_int


def pack_stat(st: os.stat_result, ov: Override) -> bytes:
    return struct.pack(
        STAT_FMT, st.st_dev, st.st_ino, st.st_nlink, ov.st_mode, ov.uid, ov.gid, 0,
        ov.rdev if ov.kind in ("block", "char") else st.st_rdev, st.st_size, st.st_blksize,
        st.st_blocks, *divmod(st.st_atime_ns, 10**9), *divmod(st.st_mtime_ns, 10**9),
        *divmod(st.st_ctime_ns, 10**9))


def statx(dirfd: int, path: bytes, flags: int, mask: int) -> bytearray:
    buf = ctypes.create_string_buffer(STATX_SIZE)
    if _statx(dirfd, path, flags, mask, buf) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))
    return bytearray(buf.raw)


def patch_statx(buf: bytearray, ov: Override) -> bytes:
    struct.pack_into("<IIH", buf, STATX_UID, ov.uid, ov.gid, ov.st_mode)
    if ov.kind in ("block", "char"):
        struct.pack_into("<II", buf, STATX_RDEV_MAJOR, os.major(ov.rdev), os.minor(ov.rdev))
    return bytes(buf)
