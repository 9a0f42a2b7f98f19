"""Record and replay of a container's non-deterministic inputs.

Recording keeps what the kernel answered to the time calls (clock_gettime,
gettimeofday, time) of each thread, in order, and a seed; replaying answers
the same calls with the recorded values and draws every random byte
(getrandom, /dev/urandom, /dev/random, the auxiliary vector's AT_RANDOM)
from the same seed. PIDs are already deterministic (container PIDs count up
from 1) and the hostname and kernel release are recorded. To make time
visible at all, the vDSO is hidden from every program (AT_SYSINFO_EHDR
becomes AT_IGNORE at exec, so libc makes real syscalls), and address-space
randomisation is turned off.

A replayed run that asks for more than was recorded gets live answers from
then on; a call of another kind than recorded at that point is a
divergence, noted in the ledger.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import secrets
import struct
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .errors import Errno
from .linux import vm_read, vm_write

if TYPE_CHECKING:
    from .call import Call

SYS_gettimeofday, SYS_time, SYS_clock_gettime, SYS_getrandom = 96, 201, 228, 318
TIME_CALLS = (SYS_gettimeofday, SYS_time, SYS_clock_gettime)
AT_NULL, AT_IGNORE, AT_RANDOM, AT_SYSINFO_EHDR = 0, 1, 25, 33
ADDR_NO_RANDOMIZE = 0x0040000
RANDOM_FILE_SIZE = 1 << 20
VERSION = 1


class ReplayError(ValueError):
    """A recording that cannot be read; the message says why."""


@dataclass
class Recording:
    seed: str = field(default_factory=lambda: secrets.token_hex(16))
    hostname: str = ""
    release: str = ""
    # guest tid -> [[nr, hex, result]]
    calls: dict[str, list[list[Any]]] = field(default_factory=dict)

    def save(self, path: str) -> None:
        tmp = path + ".tmp"
        with open(tmp, "w") as f:
            json.dump({"version": VERSION, "seed": self.seed, "hostname": self.hostname,
                       "release": self.release, "calls": self.calls}, f)
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: str) -> Recording:
        try:
            with open(path) as f:
                data = json.load(f)
        except (OSError, json.JSONDecodeError) as exc:
            raise ReplayError(f"cannot read the recording {path}: {exc}") from None
        if data.get("version") != VERSION:
            raise ReplayError(f"{path}: not a brandpy recording (version {VERSION})")
        return cls(seed=data["seed"], hostname=data["hostname"], release=data["release"],
                   calls=data["calls"])


class Replay:
    def __init__(self, recording: Recording, replaying: bool) -> None:
        self.rec = recording
        self.replaying = replaying
        self._next: dict[int, int] = {}        # guest tid -> index into its recorded calls
        self._random: dict[int, int] = {}      # guest tid -> getrandom calls so far
        self.diverged: dict[int, str] = {}     # guest tid -> where its replay diverged

    def random_bytes(self, label: str, size: int) -> bytes:
        out = b""
        counter = 0
        while len(out) < size:
            out += hashlib.blake2b(f"{self.rec.seed}:{label}:{counter}".encode()).digest()
            counter += 1
        return out[:size]

    def random_file(self, state_dir: bytes) -> bytes:
        """The stream /dev/urandom and /dev/random read from (each open
        starts at its beginning)."""
        path = os.path.join(state_dir, b"random")
        with open(path, "wb") as f:
            f.write(self.random_bytes("dev", RANDOM_FILE_SIZE))
        os.chmod(path, 0o444)
        return path

    # -- the trapped calls --------------------------------------------------------------

    def handle(self, call: Call) -> int | None:
        tid = call.sb.pids.to_guest(call.tid)
        if call.nr == SYS_getrandom:
            n = self._random.get(tid, 0)
            self._random[tid] = n + 1
            size = min(call.arg(1), 1 << 25)
            call.write(call.arg(0), self.random_bytes(f"getrandom:{tid}:{n}", size))
            return size
        if self.replaying and tid not in self.diverged:
            recorded = self._take(call, tid)
            if recorded is not None:
                return recorded
        call.after(lambda c, result: self._record(c, tid, result))
        return None

    def _take(self, call: Call, tid: int) -> int | None:
        calls = self.rec.calls.get(str(tid), [])
        i = self._next.get(tid, 0)
        if i >= len(calls):
            return None
        nr: int
        data: str
        result: int
        nr, data, result = calls[i]
        if nr != call.nr:
            # the program took another path: live answers for this thread from here
            self.diverged[tid] = f"call {i} of thread {tid} was {nr} when recorded"
            return None
        self._next[tid] = i + 1
        dest = self._out_pointer(call)
        if dest and data:
            call.write(dest, bytes.fromhex(data))
        return result

    def _record(self, call: Call, tid: int, result: int) -> None:
        if self.replaying:
            return None     # past the end of the recording: live answers
        dest = self._out_pointer(call)
        size = {SYS_clock_gettime: 16, SYS_gettimeofday: 16, SYS_time: 8}[call.nr]
        data = vm_read(call.tid, dest, size).hex() if dest and result >= 0 else ""
        self.rec.calls.setdefault(str(tid), []).append([call.nr, data, result])
        return None

    @staticmethod
    def _out_pointer(call: Call) -> int:
        return call.arg(1) if call.nr == SYS_clock_gettime else call.arg(0)

    # -- exec --------------------------------------------------------------------------

    def on_exec(self, tid: int, guest_tid: int, rsp: int) -> None:
        """Hide the vDSO and give AT_RANDOM seeded bytes, in the new
        program's auxiliary vector (on its stack, above argv and envp)."""
        try:
            argc = struct.unpack("<Q", vm_read(tid, rsp, 8))[0]
            addr = rsp + 8 * (argc + 2)
            while struct.unpack("<Q", vm_read(tid, addr, 8))[0]:
                addr += 8
            addr += 8
            for _ in range(64):
                kind, value = struct.unpack("<QQ", vm_read(tid, addr, 16))
                if kind == AT_NULL:
                    break
                if kind == AT_SYSINFO_EHDR:
                    vm_write(tid, addr, struct.pack("<Q", AT_IGNORE))
                elif kind == AT_RANDOM:
                    vm_write(tid, value, self.random_bytes(f"at_random:{guest_tid}", 16))
                addr += 16
        except (OSError, struct.error) as exc:
            raise Errno(errno.EFAULT, f"cannot adjust the new program's auxv: {exc}") from None
