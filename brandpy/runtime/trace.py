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
import os
import time
from ctypes import Structure, sizeof
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING, Any

from ptrace.func_call import FunctionCallOptions
from ptrace.syscall import PtraceSyscall
from ptrace.syscall.syscall_argument import SyscallArgument

from .linux import vm_read

if TYPE_CHECKING:
    from .call import Call, Regs

OPTIONS = FunctionCallOptions(write_types=False, write_argname=False, string_max_length=256,
                              max_array_count=16)


class _Memory:
    """The part of python-ptrace's PtraceProcess its argument formatter
    reads, over process_vm_readv."""

    def __init__(self, tid: int, regs: Regs) -> None:
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

    def readStruct(self, address: int, struct: type[Structure]) -> Structure:
        return struct.from_buffer_copy(self.readBytes(address, sizeof(struct)))

    def readArray(self, address: int, basetype: type[Any], count: int) -> Any:   # a ctypes array
        return (basetype * count).from_buffer_copy(
            self.readBytes(address, sizeof(basetype) * count))

    def getregs(self) -> Regs:
        return self.regs

    def getreg(self, name: str) -> int:
        value: int = getattr(self.regs, name)
        return value


PR_SET_NAME, PR_GET_NAME = 15, 16
# strace's names for the prctl options programs use most
PRCTL_OPTIONS = {1: "PR_SET_PDEATHSIG", 2: "PR_GET_PDEATHSIG", 3: "PR_GET_DUMPABLE",
                 4: "PR_SET_DUMPABLE", 15: "PR_SET_NAME", 16: "PR_GET_NAME",
                 22: "PR_SET_SECCOMP", 36: "PR_SET_CHILD_SUBREAPER",
                 38: "PR_SET_NO_NEW_PRIVS", 39: "PR_GET_NO_NEW_PRIVS", 23: "PR_CAPBSET_READ"}


def _quote(data: bytes, truncated: bool) -> str:
    """A C string as strace shows it: double quotes, C escapes."""
    out = []
    for b in data:
        c = chr(b)
        if c in '"\\':
            out.append("\\" + c)
        elif c == "\n":
            out.append("\\n")
        elif c == "\t":
            out.append("\\t")
        elif 32 <= b < 127:
            out.append(c)
        else:
            out.append(f"\\x{b:02x}")
    return '"' + "".join(out) + '"' + ("..." if truncated else "")


class _Argument(SyscallArgument):  # type: ignore[misc]  # python-ptrace ships no types
    """python-ptrace's argument formatting, with strace's notation: strings
    in double quotes, string arrays in brackets, other pointers as
    addresses."""

    def createText(self) -> str:
        if self.function.name == "prctl":
            if self.name == "option":
                return PRCTL_OPTIONS.get(self.value, str(self.value))
            option = self.function.arguments[0].value
            if self.name == "arg2" and option == PR_SET_NAME:
                return self.readCString(self.value)
            if self.name == "arg2" and option == PR_GET_NAME:
                return f"0x{self.value:x}"    # the buffer the call fills
        text: str = super().createText()
        return text

    def readCString(self, address: int) -> str:
        if not address:
            return "NULL"
        data, truncated = self.function.process.readCString(
            address, self.options.string_max_length)
        return _quote(data, truncated)

    def readString(self, address: int, size: int) -> str:
        if not address:
            return "NULL"
        limit = self.options.string_max_length
        return _quote(self.function.process.readBytes(address, min(size, limit)), size > limit)

    def readCStringArray(self, address: int) -> str:
        if not address:
            return "NULL"
        items: list[str] = []
        while len(items) < self.options.max_array_count:
            ptr = self.function.process.readWord(address + 8 * len(items))
            if not ptr:
                return "[" + ", ".join(items) + "]"
            items.append(self.readCString(ptr))
        return "[" + ", ".join(items) + ", ...]"

    def readStruct(self, address: int, struct: type[Structure]) -> str:
        text: str = super().readStruct(address, struct)          # "<name a=1, b=2>"
        return "{" + text[1:-1].partition(" ")[2] + "}"

    def formatValuePointer(self, argtype: str) -> str | None:
        if argtype == "int":
            return None    # strace shows the address of what the call will write
        text: str | None = super().formatValuePointer(argtype)
        return text


def format_call(call: Call, name: str) -> str:
    """name(args) as strace prints it, from the call's current registers."""
    try:
        sc = PtraceSyscall(_Memory(call.tid, call.regs), OPTIONS, call.regs)
        sc.argument_class = _Argument
        sc.enter(call.regs)
        text: str = sc.format()
        return text
    except Exception:   # unreadable or odd arguments: still show the call
        return f"{name}(" + ", ".join(hex(call.arg(i)) for i in range(6)) + ")"


@dataclass
class Tracer:
    out: IO[str]
    syscall_names: dict[int, str]
    json_lines: bool = False
    names: set[str] = field(default_factory=set)   # empty: every call
    follow: bool = True                             # children too (strace -f)
    lost: str = ""                                  # why the output stopped

    def wants(self, name: str, guest_tgid: int) -> bool:
        return (not self.lost and (not self.names or name in self.names)
                and (self.follow or guest_tgid == 1))

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
        try:
            self.out.write(json.dumps(rec) + "\n" if self.json_lines else text_line(rec))
            self.out.flush()
        except OSError as exc:
            # the reader went away (`| head`) or the disk filled: the
            # container runs on untraced, as under strace whose pipe closed
            self.lost = exc.strerror or str(exc)


def text_line(rec: dict[str, Any]) -> str:
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
