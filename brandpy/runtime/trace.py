"""The syscall trace: an strace-like stream of the calls a container makes,
with arguments formatted by python-ptrace's prototypes (as the guest passed
them, before any translation), how brandpy handled each, the result, the
container PID and the time.

Calls the filter lets through (ALLOW) never stop the supervisor, so they are
invisible to the trace by design; `--trace-all` traps every call instead.
"""

from __future__ import annotations

import errno
import json
import time
import os
from ctypes import sizeof
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING

from ptrace.func_call import FunctionCallOptions
from ptrace.syscall import PtraceSyscall

from .linux import vm_read

if TYPE_CHECKING:
    from .call import Call

OPTIONS = FunctionCallOptions(write_types=False, write_argname=False, string_max_length=256,
                              max_array_count=16)


class _Memory:
    """The part of python-ptrace's PtraceProcess its argument formatter
    reads, over process_vm_readv."""

    def __init__(self, tid: int, regs) -> None:
        self.tid = tid
        self.regs = regs

    def readBytes(self, address: int, size: int) -> bytes:
        data = vm_read(self.tid, address, size)
        if len(data) != size:
            raise OSError(errno.EFAULT, "unreadable tracee memory")
        return data

    def readWord(self, address: int) -> int:
        return int.from_bytes(self.readBytes(address, 8), "little")

    def readCString(self, address: int, max_size: int) -> tuple[bytes, bool]:
        data = b""
        while len(data) < max_size:
            chunk = vm_read(self.tid, address + len(data), min(256, max_size - len(data)))
            if not chunk:
                raise OSError(errno.EFAULT, "unreadable tracee memory")
            nul = chunk.find(b"\0")
            if nul >= 0:
                return data + chunk[:nul], False
            data += chunk
        return data, True

    def readStruct(self, address: int, struct):
        return struct.from_buffer_copy(self.readBytes(address, sizeof(struct)))

    def readArray(self, address: int, basetype, count: int):
        return (basetype * count).from_buffer_copy(
            self.readBytes(address, sizeof(basetype) * count))

    def getregs(self):
        return self.regs

    def getreg(self, name: str) -> int:
        return getattr(self.regs, name)


def format_call(call: Call, name: str) -> str:
    """name(args) as strace prints it, from the call's current registers."""
    try:
        sc = PtraceSyscall(_Memory(call.tid, call.regs), OPTIONS, call.regs)
        sc.enter(call.regs)
        return sc.format()
    except Exception:   # unreadable or odd arguments: still show the call
        return f"{name}(" + ", ".join(hex(call.arg(i)) for i in range(6)) + ")"


@dataclass
class Tracer:
    out: IO[str]
    syscall_names: dict[int, str]
    json_lines: bool = False
    names: set[str] = field(default_factory=set)   # empty: every call
    follow: bool = True                             # children too (strace -f)

    def wants(self, name: str, guest_tgid: int) -> bool:
        return (not self.names or name in self.names) and (self.follow or guest_tgid == 1)

    def record(self, call: Call, text: str, result: int | None, disposition: str,
               started: float) -> None:
        """result None: the call does not return (exit, exit_group)."""
        sb = call.sb
        pid, tid = sb.pids.to_guest(call.proc.tgid), sb.pids.to_guest(call.tid)
        name = self.syscall_names.get(call.nr, str(call.nr))
        rec = {"time": round(started, 6), "pid": pid, "tid": tid, "syscall": name,
               "nr": call.nr, "call": text, "result": result,
               "errno": errno.errorcode.get(-result) if result and result < 0 else None,
               "disposition": disposition}
        self.out.write(json.dumps(rec) + "\n" if self.json_lines else text_line(rec))
        self.out.flush()


def text_line(rec: dict) -> str:
    """A trace record as its strace-like text line (the daemon keeps JSON
    lines and renders them with this on request)."""
    started, result = rec["time"], rec["result"]
    stamp = time.strftime("%H:%M:%S", time.localtime(started)) + \
        f".{int(started % 1 * 1e6):06d}"
    if result is None:
        res = "?"
    elif -4096 < result < 0:
        res = f"-1 {errno.errorcode.get(-result, -result)} ({os.strerror(-result)})"
    else:
        res = str(result)
    return f"[pid {rec['pid']:>5}] {stamp} {rec['call']} = {res} <{rec['disposition']}>\n"
