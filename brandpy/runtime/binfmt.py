"""What the kernel's binfmt loaders would do with a guest executable,
done from the guest's point of view.

The kernel reads `#!` interpreters and an ELF's PT_INTERP (the dynamic
loader) from *host* paths. So the supervisor reads them itself and execs
the guest's own loader (`ld.so [--argv0 NAME] PROG ARGS`), resolving every
name inside the container.
"""

from __future__ import annotations

import errno
import os
import struct
from dataclasses import dataclass
from functools import lru_cache

from .errors import Errno

BINPRM_BUF_SIZE = 256
MAX_INTERP_DEPTH = 4        # as the kernel's BINPRM_MAX_RECURSION
EM_X86_64 = 62
PT_INTERP = 3


@dataclass(frozen=True)
class Shebang:
    interpreter: bytes
    arg: bytes | None


@dataclass(frozen=True)
class Elf:
    interp: bytes | None    # PT_INTERP (guest path) for dynamic programs


def inspect(host_path: bytes) -> Shebang | Elf:
    """Classify an executable (host_path: /proc/self/fd/N of the file the
    supervisor found); raises Errno as execve would fail."""
    try:
        fd = os.open(host_path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError as exc:
        raise Errno(exc.errno or errno.EACCES) from None
    try:
        head = os.pread(fd, BINPRM_BUF_SIZE, 0)
        if head.startswith(b"#!"):
            return _shebang(head)
        if head.startswith(b"\x7fELF"):
            return _elf(fd, head)
    except OSError as exc:
        raise Errno(exc.errno or errno.EIO) from None
    finally:
        os.close(fd)
    raise Errno(errno.ENOEXEC)


def _shebang(head: bytes) -> Shebang:
    line = head[2:].split(b"\n", 1)[0]
    line = line.replace(b"\t", b" ").strip(b" ")
    if not line:
        raise Errno(errno.ENOEXEC)
    interp, _, arg = line.partition(b" ")
    arg = arg.strip(b" ")
    return Shebang(interpreter=interp, arg=arg or None)


def _elf(fd: int, head: bytes) -> Elf:
    if len(head) < 64 or head[4] != 2 or head[5] != 1:
        raise Errno(errno.ENOEXEC)    # not ELF64 little-endian
    (e_machine,) = struct.unpack_from("<H", head, 18)
    if e_machine != EM_X86_64:
        raise Errno(errno.ENOEXEC)
    (e_phoff,) = struct.unpack_from("<Q", head, 32)
    e_phentsize, e_phnum = struct.unpack_from("<HH", head, 54)
    if e_phentsize < 56 or e_phnum > 256:
        raise Errno(errno.ENOEXEC)
    table = os.pread(fd, e_phentsize * e_phnum, e_phoff)
    for i in range(e_phnum):
        p_type, _flags, p_offset, _vaddr, _paddr, p_filesz = struct.unpack_from(
            "<IIQQQQ", table, i * e_phentsize)
        if p_type == PT_INTERP:
            if not 1 < p_filesz <= 4096:
                raise Errno(errno.ENOEXEC)
            interp = os.pread(fd, p_filesz, p_offset).split(b"\0", 1)[0]
            return Elf(interp=interp)
    return Elf(interp=None)


@lru_cache(maxsize=64)
def _loader_takes_argv0(_file: tuple[int, int, int, int], path: bytes) -> bool:
    try:
        with open(path, "rb") as f:
            return b"--argv0" in f.read()
    except OSError:
        return False


def loader_takes_argv0(path: bytes) -> bool:
    """glibc's ld.so (2.33+) and musl's accept --argv0; older ones would
    treat it as the program name. path: /proc/self/fd/N of the loader."""
    try:
        st = os.stat(path)
    except OSError:
        return False
    return _loader_takes_argv0((st.st_dev, st.st_ino, st.st_mtime_ns, st.st_size), path)
