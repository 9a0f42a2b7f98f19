"""Compile a per-syscall action map into a seccomp-BPF program.

The program checks the architecture, rejects x32 calls, then finds the
syscall number by binary search over runs of equal actions (about eight
comparisons for ~470 syscalls, instead of a chain of hundreds). Leaves
return an action directly or, for argument-dependent rows (Docker's rules
for clone, socket and personality), test one argument first.
"""

from __future__ import annotations

import errno
import functools
import struct
from collections.abc import Sequence
from dataclasses import dataclass, replace

from .linux import (
    AUDIT_ARCH_X86_64,
    SECCOMP_RET_ACTION_FULL,
    SECCOMP_RET_ALLOW,
    SECCOMP_RET_ERRNO,
    SECCOMP_RET_TRACE,
    SECCOMP_RET_USER_NOTIF,
    X32_SYSCALL_BIT,
)

# classic BPF opcodes
LD_W_ABS = 0x20
JEQ = 0x15
JGE = 0x35
JGT = 0x25
JSET = 0x45
JA = 0x05
RET = 0x06
AND = 0x54

OFF_NR = 0
OFF_ARCH = 4
OFF_ARGS = 16
MAX_JUMP = 255


def ret_allow() -> int:
    return SECCOMP_RET_ALLOW


def ret_errno(err: int) -> int:
    return SECCOMP_RET_ERRNO | (err & 0xFFFF)


RET_ENOSYS = ret_errno(errno.ENOSYS)


def ret_trace(data: int = 0) -> int:
    return SECCOMP_RET_TRACE | (data & 0xFFFF)


def ret_notify() -> int:
    return SECCOMP_RET_USER_NOTIF


@dataclass(frozen=True)
class ArgTest:
    """`then` if (args[arg] & mask) OP value else `otherwise`. The test is on
    the low 32 bits (int arguments; their upper half is unspecified), except
    eq64, which compares the whole 64-bit value (pointers)."""
    arg: int
    op: str                  # eq | ge | gt | set | eq64
    value: int
    then: Action
    otherwise: Action
    mask: int = 0xFFFFFFFF


Action = int | ArgTest
Insn = tuple[int, int, int, int]


def _insn(code: int, k: int = 0, jt: int = 0, jf: int = 0) -> Insn:
    return (code, jt, jf, k & 0xFFFFFFFF)


def _leaf(action: Action) -> list[Insn]:
    if isinstance(action, int):
        return [_insn(RET, action)]
    then, other = _leaf(action.then), _leaf(action.otherwise)
    if len(then) + 2 > MAX_JUMP:
        raise ValueError("argument test branch too long")
    if action.op == "eq64":
        return [_insn(LD_W_ABS, OFF_ARGS + 8 * action.arg + 4),
                _insn(JEQ, action.value >> 32, jt=0, jf=2 + len(then)),
                _insn(LD_W_ABS, OFF_ARGS + 8 * action.arg),
                _insn(JEQ, action.value & 0xFFFFFFFF, jt=0, jf=len(then))] + then + other
    code = {"eq": JEQ, "ge": JGE, "gt": JGT, "set": JSET}[action.op]
    out = [_insn(LD_W_ABS, OFF_ARGS + 8 * action.arg)]
    if action.mask != 0xFFFFFFFF:
        out.append(_insn(AND, action.mask))
    out.append(_insn(code, action.value, jt=0, jf=len(then)))
    return out + then + other


def outcome(action: Action, args: tuple[int, ...]) -> int:
    """What the compiled leaf of `action` returns for these arguments: the
    same tests _leaf compiles, so the supervisor knows what its own filter
    said about a call without trusting what the kernel reports (a filter the
    container stacks can change the action's data)."""
    while not isinstance(action, int):
        value = args[action.arg] & 0xFFFFFFFFFFFFFFFF
        if action.op == "eq64":
            hit = value == action.value
        else:
            acc, k = value & 0xFFFFFFFF & action.mask, action.value & 0xFFFFFFFF
            hit = {"eq": acc == k, "ge": acc >= k, "gt": acc > k, "set": bool(acc & k)}[action.op]
        action = action.then if hit else action.otherwise
    return action


def leaves(action: Action) -> set[int]:
    """Every value the compiled leaf of `action` can return."""
    if isinstance(action, int):
        return {action}
    return leaves(action.then) | leaves(action.otherwise)


def relabel(action: Action, old: int, new: int) -> Action:
    """`action` with its `old` returns made `new`."""
    if isinstance(action, int):
        return new if action == old else action
    return replace(action, then=relabel(action.then, old, new),
                   otherwise=relabel(action.otherwise, old, new))


def _search(runs: list[tuple[int, Action]]) -> list[Insn]:
    """Binary search over (first_nr, action) runs sorted by first_nr."""
    if len(runs) == 1:
        return _leaf(runs[0][1])
    mid = len(runs) // 2
    left, right = _search(runs[:mid]), _search(runs[mid:])
    boundary = runs[mid][0]
    if len(left) <= MAX_JUMP:
        return [_insn(JGE, boundary, jt=len(left), jf=0)] + left + right
    return [_insn(JGE, boundary, jt=0, jf=1), _insn(JA, len(left))] + left + right


def compile_filter(actions: dict[int, Action], default: Action = RET_ENOSYS,
                   foreign_arch: int = RET_ENOSYS) -> bytes:
    """actions: syscall number -> action; numbers not listed get `default`."""
    top = max(actions) + 1 if actions else 0
    runs: list[tuple[int, Action]] = []
    for nr in range(top + 1):
        action = actions.get(nr, default)
        if not runs or runs[-1][1] != action:
            runs.append((nr, action))
    prog = [
        _insn(LD_W_ABS, OFF_ARCH),
        _insn(JEQ, AUDIT_ARCH_X86_64, jt=1, jf=0),
        _insn(RET, foreign_arch),
        _insn(LD_W_ABS, OFF_NR),
        _insn(JGE, X32_SYSCALL_BIT, jt=0, jf=1),
        _insn(RET, foreign_arch),
    ] + _search(runs)
    if len(prog) > 4096:
        raise ValueError(f"seccomp program too long ({len(prog)} instructions)")
    return b"".join(struct.pack("<HBBI", *i) for i in prog)


def combine(actions: Sequence[int]) -> int:
    """What the kernel does with the results of a chain of filters, oldest
    first: the highest-precedence action (KILL > TRAP > ERRNO > USER_NOTIF >
    TRACE > LOG > ALLOW, the lowest as a signed number) and, between equal
    ones, the newest filter's data."""
    best = SECCOMP_RET_ALLOW
    for ret in reversed(actions):
        if _signed(ret & SECCOMP_RET_ACTION_FULL) < _signed(best & SECCOMP_RET_ACTION_FULL):
            best = ret
    return best


def _signed(action: int) -> int:
    return action - (1 << 32) if action & 0x80000000 else action


@functools.lru_cache(maxsize=64)
def _insns(prog: bytes) -> tuple[Insn, ...]:
    return tuple(struct.unpack_from("<HBBI", prog, off) for off in range(0, len(prog), 8))


def evaluate(prog: bytes, nr: int, args: tuple[int, ...] = (0,) * 6,
             arch: int = AUDIT_ARCH_X86_64) -> int:
    """Run a compiled program on one syscall (an interpreter for tests, for
    `brandpy syscalls --check` and for the filters the supervisor stacks on
    threads): the action the kernel would take."""
    insns = _insns(prog)
    data = struct.pack("<iI", nr, arch) + struct.pack("<Q", 0) + b"".join(
        struct.pack("<Q", a & 0xFFFFFFFFFFFFFFFF) for a in args)
    pc, acc = 0, 0
    while True:
        code, jt, jf, k = insns[pc]
        if code == LD_W_ABS:
            (acc,) = struct.unpack_from("<I", data, k)
        elif code == AND:
            acc &= k
        elif code == RET:
            return k
        elif code == JA:
            pc += k
        elif code in (JEQ, JGE, JGT, JSET):
            hit = {JEQ: acc == k, JGE: acc >= k, JGT: acc > k, JSET: bool(acc & k)}[code]
            pc += jt if hit else jf
        else:
            raise ValueError(f"unknown BPF opcode {code:#x}")
        pc += 1
