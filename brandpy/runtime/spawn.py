"""Start the entrypoint: fork, seize with ptrace, install the filter, exec
(the C side is native/spawn.c: nothing but async-signal-safe calls run
between fork and execve)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from .linux import TRACE_OPTIONS

BP_SPAWN_SETSID = 1
BP_SPAWN_CTTY = 2
BP_SPAWN_SETPGID = 4


def spawn(path: str, argv: list[str], env: list[str], cwd: bytes, filter_prog: bytes,
          fds: tuple[int, ...] = (0, 1, 2), seccomp_flags: int = 0,
          setsid: bool = False, ctty: bool = False, setpgid: bool = False,
          ids: tuple[int, int, tuple[int, ...]] | None = None,
          caps: int | None = None, hold_fd: int = -1,
          personality: int = -1,
          rlimits: Sequence[tuple[int, int, int]] = (),
          spawner: int = -1) -> tuple[int, int | None]:
    """Returns the child's pid; raises OSError if fork or ptrace fail. The
    child gets a session (setsid, optionally with fd 0 as its controlling
    terminal) or a process group of its own, so kill(0, ...) inside the
    container never reaches the supervisor. `ids` (uid, gid, groups) and
    `caps` (a capability bit mask) are real credentials to apply: only for a
    supervisor running as root. With hold_fd, the child waits for a byte on
    it before it execs (and exits if it is closed). Returns the pid and, with
    SECCOMP_FILTER_FLAG_NEW_LISTENER in seccomp_flags, the notification fd.
    rlimits: (resource, soft, hard) to set in the child. spawner: the
    control socket of the container's spawner (brandpy.runtime.landlock
    Spawner), which then forks the child in the container's Landlock
    domain."""
    from brandpy._native import ffi, lib

    keep = []   # cffi buffers must outlive the call

    def cstr(s: str | bytes) -> Any:     # cffi's CData
        buf = ffi.new("char[]", os.fsencode(s))
        keep.append(buf)
        return buf

    def cvec(items: list[str]) -> Any:
        arr = ffi.new("char *[]", [cstr(i) for i in items] + [ffi.NULL])
        keep.append(arr)
        return arr

    args = ffi.new("struct bp_spawn_args *")
    args.path = cstr(path)
    args.argv = cvec(argv)
    args.envp = cvec(env)
    args.cwd = cstr(cwd)
    fd_arr = ffi.new("int[]", list(fds))
    args.fds = fd_arr
    args.nfds = len(fds)
    prog = ffi.new("char[]", filter_prog)
    args.filter = prog
    args.filter_len = len(filter_prog) // 8
    args.seccomp_flags = seccomp_flags
    args.ptrace_options = TRACE_OPTIONS
    args.hold_fd = hold_fd
    args.spawner = spawner
    args.personality = personality
    args.flags = ((BP_SPAWN_SETSID if setsid else 0) | (BP_SPAWN_CTTY if ctty else 0)
                  | (BP_SPAWN_SETPGID if setpgid else 0))
    if ids is not None:
        groups = ffi.new("unsigned int[]", list(ids[2]) or [ids[1]])
        keep.append(groups)
        args.set_ids = 1
        args.uid, args.gid = ids[0], ids[1]
        args.groups = groups
        args.ngroups = len(ids[2])
    if caps is not None:
        args.set_caps = 1
        args.caps = caps
    if rlimits:
        limits = ffi.new("struct bp_rlimit[]", [{"resource": r, "soft": soft, "hard": hard}
                                                 for r, soft, hard in rlimits])
        keep.append(limits)
        args.rlimits, args.nrlimits = limits, len(rlimits)
    listener = ffi.new("int *", -1)
    pid = lib.bp_spawn(args, listener)
    if pid < 0:
        raise OSError(-pid, os.strerror(-pid))
    return pid, listener[0] if listener[0] >= 0 else None
