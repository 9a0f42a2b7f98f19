"""cgroup v2's device controller: an eBPF program (BPF_PROG_TYPE_CGROUP_DEVICE)
attached to the container's cgroup that allows the devices Docker's rules
and the container's own nodes name and denies every other open or mknod, as
runc's devicefilter does. A host with cgroup v2 alone has no other device
controller; on a hybrid host (v1 controllers beside the unified hierarchy)
the kernel runs it before v1's devices controller, a second wall."""

from __future__ import annotations

import contextlib
import ctypes
import os
import struct
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

from .linux import libc

SYS_BPF = 321
BPF_PROG_LOAD, BPF_PROG_ATTACH = 5, 8
BPF_PROG_TYPE_CGROUP_DEVICE = 15
BPF_CGROUP_DEVICE = 6
BPF_F_ALLOW_MULTI, BPF_F_REPLACE = 2, 4
ATTR_SIZE = 128

# struct bpf_cgroup_dev_ctx: access_type (access << 16 | type), major, minor
DEV_TYPE = {"b": 1, "c": 2}                  # BPF_DEVCG_DEV_BLOCK, _CHAR
ACCESS = {"m": 1, "r": 2, "w": 4}            # BPF_DEVCG_ACC_MKNOD, _READ, _WRITE
ALL_ACCESS = 7

# eBPF opcodes used
LDX_W = 0x61          # dst = *(u32 *)(src + off)
AND_K = 0x57          # dst &= imm (64-bit)
RSH_K = 0x77          # dst >>= imm
MOV_K = 0xB7          # dst = imm
MOV_X = 0xBF          # dst = src
JNE_K = 0x55          # if dst != imm: pc += off
EXIT = 0x95


class Rule(Protocol):
    """A device rule (cgroups.DeviceRule): kind c, b or a; -1 is any."""
    kind: str
    major: int
    minor: int
    access: str


def _insn(code: int, dst: int = 0, src: int = 0, off: int = 0, imm: int = 0) -> bytes:
    return struct.pack("<BBhi", code, (src << 4) | dst, off, imm)


def program(rules: Sequence[Rule]) -> bytes:
    """Allow what one of the rules allows, deny the rest. r2: the access
    asked, r3: the device type, r4: major, r5: minor."""
    out = [_insn(LDX_W, 2, 1, 0), _insn(MOV_X, 3, 2), _insn(AND_K, 3, imm=0xFFFF),
           _insn(RSH_K, 2, imm=16), _insn(LDX_W, 4, 1, 4), _insn(LDX_W, 5, 1, 8)]
    for rule in rules:
        mask = sum(ACCESS[a] for a in set(rule.access) if a in ACCESS)
        # (code, dst, src, imm) each; a JNE leaves the rule: to the next one
        block: list[tuple[int, int, int, int]] = []
        if rule.kind in DEV_TYPE:
            block.append((JNE_K, 3, 0, DEV_TYPE[rule.kind]))
        if mask != ALL_ACCESS:     # asked for an access the rule lacks
            block += [(MOV_X, 1, 2, 0), (AND_K, 1, 0, ALL_ACCESS & ~mask), (JNE_K, 1, 0, 0)]
        if rule.major >= 0:
            block.append((JNE_K, 4, 0, rule.major))
        if rule.minor >= 0:
            block.append((JNE_K, 5, 0, rule.minor))
        block += [(MOV_K, 0, 0, 1), (EXIT, 0, 0, 0)]
        out += [_insn(code, dst, src, len(block) - at - 1 if code == JNE_K else 0, imm)
                for at, (code, dst, src, imm) in enumerate(block)]
    return b"".join(out + [_insn(MOV_K, 0, imm=0), _insn(EXIT)])


def _bpf(cmd: int, attr: bytes) -> int:
    buf = ctypes.create_string_buffer(attr.ljust(ATTR_SIZE, b"\0"), ATTR_SIZE)
    ret = libc.syscall(SYS_BPF, cmd, buf, ATTR_SIZE)
    if ret < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"bpf({cmd}): {os.strerror(err)}")
    return int(ret)


def _load(insns: bytes) -> int:
    """The program's fd; OSError with the verifier's reasons if refused."""
    code = ctypes.create_string_buffer(insns, len(insns))
    license = ctypes.create_string_buffer(b"GPL")

    def load(log: ctypes.Array[ctypes.c_char] | None) -> int:
        return _bpf(BPF_PROG_LOAD, struct.pack(
            "<IIQQIIQII16s", BPF_PROG_TYPE_CGROUP_DEVICE, len(insns) // 8,
            ctypes.addressof(code), ctypes.addressof(license), 1 if log else 0,
            len(log) if log else 0, ctypes.addressof(log) if log else 0, 0, 0,
            b"brandpy_devices"))
    try:
        return load(None)
    except OSError as exc:    # again, for the verifier's reasons
        log = ctypes.create_string_buffer(1 << 16)
        with contextlib.suppress(OSError):
            os.close(load(log))
        raise OSError(exc.errno, f"the kernel refused the device program: {exc.strerror}; "
                      f"{log.value.decode(errors='replace')[-2000:]}") from None


class Program:
    """The device program of one cgroup (a v2 directory), replaced in place
    as its rules change (the container's ptys come and go). The cgroup
    keeps the program attached for its life; OSError where the kernel or
    our capabilities refuse it."""

    def __init__(self, cgroup: Path, rules: Sequence[Rule]) -> None:
        self.cgroup = cgroup
        self.fd = -1
        self.replace(rules)

    def replace(self, rules: Sequence[Rule]) -> None:
        prog = _load(program(rules))
        try:
            dirfd = os.open(self.cgroup, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            try:
                flags = BPF_F_ALLOW_MULTI | (BPF_F_REPLACE if self.fd >= 0 else 0)
                _bpf(BPF_PROG_ATTACH, struct.pack("<IIIII", dirfd, prog, BPF_CGROUP_DEVICE,
                                                  flags, max(self.fd, 0)))
            finally:
                os.close(dirfd)
        except OSError:
            os.close(prog)
            raise
        self.close()
        self.fd = prog

    def close(self) -> None:
        """Our descriptor only: the program stays with the cgroup."""
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
