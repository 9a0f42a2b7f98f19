"""The syscall table covers every x86_64 number, and the BPF program
compiled from it does exactly what the table says, with a short search."""

import errno
import re
import struct
from pathlib import Path

import pytest

from brandpy.runtime import seccomp
from brandpy.runtime.linux import SECCOMP_RET_ALLOW, SECCOMP_RET_ERRNO, SECCOMP_RET_TRACE
from syscalls import linux
from syscalls.table import table

UNISTD = Path("/usr/include/x86_64-linux-gnu/asm/unistd_64.h")   # Debian's linux-libc-dev


def kernel_numbers() -> dict[int, str]:
    """The numbers this machine's kernel headers define (an independent
    source: the facts file came from the kernel's syscall_64.tbl)."""
    if not UNISTD.exists():
        pytest.fail(f"{UNISTD} missing: apt-get install linux-libc-dev")
    out = {}
    for m in re.finditer(r"^#define __NR_(\w+)\s+(\d+)$", UNISTD.read_text(), re.M):
        out[int(m.group(2))] = m.group(1)
    assert len(out) > 300
    return out


def test_every_number_has_a_row():
    t = table()
    facts = linux.load()
    assert len(t.rows) == max(facts) + 1
    for nr, row in enumerate(t.rows):
        assert row.nr == nr
        if nr in facts:
            assert row.name == facts[nr].name and row.disposition in (
                "allow", "const", "deny", "trace", "nosys")
        else:
            assert row.name == "" and row.disposition == "nosys" and row.support == "none"


def test_names_match_the_kernel_table():
    names = table().names()
    for nr, name in kernel_numbers().items():
        assert names[nr] == name


def test_trace_rows_have_handlers_and_notes():
    for row in table().rows:
        if row.disposition == "trace":
            assert row.handler is not None, row.name
        if row.name and row.support != "full":
            assert row.note, f"{row.name}: a non-full row must say why"


def test_filter_matches_table_for_every_number():
    t = table()
    prog = t.bpf()
    for row in t.rows:
        got = seccomp.evaluate(prog, row.nr)
        if row.when is not None:
            continue   # argument-dependent: tested below
        expected = {"allow": SECCOMP_RET_ALLOW, "trace": SECCOMP_RET_TRACE,
                    "deny": SECCOMP_RET_ERRNO | row.value,
                    "nosys": SECCOMP_RET_ERRNO | errno.ENOSYS,
                    "const": SECCOMP_RET_ERRNO}[row.disposition]
        assert got == expected, row
    # beyond the table, the x32 ABI and foreign architectures: ENOSYS
    assert seccomp.evaluate(prog, len(t.rows) + 5) == SECCOMP_RET_ERRNO | errno.ENOSYS
    assert seccomp.evaluate(prog, 0x40000000 | 2) == SECCOMP_RET_ERRNO | errno.ENOSYS
    assert seccomp.evaluate(prog, 2, arch=0x40000003) == SECCOMP_RET_ERRNO | errno.ENOSYS


def test_argument_dependent_rows():
    t = table()
    prog = t.bpf()
    nr = t.by_name

    def ev(name, *args):
        return seccomp.evaluate(prog, nr[name].nr, tuple(args) + (0,) * (6 - len(args)))

    assert ev("sendto", 3, 0, 0, 0, 0, 0) == SECCOMP_RET_ALLOW
    assert ev("sendto", 3, 0, 0, 0, 0x7ffd1000, 16) == SECCOMP_RET_TRACE
    assert ev("sendto", 3, 0, 0, 0, 0x7f0000000000, 16) == SECCOMP_RET_TRACE  # low half zero
    assert ev("clone", 0x11) == SECCOMP_RET_ALLOW
    assert ev("clone", 0x10000000 | 0x11) == SECCOMP_RET_ERRNO | errno.EPERM   # CLONE_NEWUSER
    assert ev("socket", 40) == SECCOMP_RET_ERRNO | errno.EPERM                 # AF_VSOCK
    assert ev("socket", 2) == SECCOMP_RET_ALLOW
    assert ev("prctl", 4, 0) == SECCOMP_RET_TRACE                              # PR_SET_DUMPABLE
    assert ev("prctl", 15) == SECCOMP_RET_ALLOW                                # PR_SET_NAME


def test_filter_is_a_binary_search():
    """Not a chain of ~400 compares: the longest path through the program
    is a handful of jumps."""
    prog = table().bpf()
    insns = [struct.unpack_from("<HBBI", prog, o) for o in range(0, len(prog), 8)]
    assert len(insns) < 600

    def depth(pc: int) -> int:
        code, jt, jf, k = insns[pc]
        if code == seccomp.RET:
            return 1
        if code == seccomp.JA:
            return 1 + depth(pc + 1 + k)
        if code in (seccomp.JEQ, seccomp.JGE, seccomp.JGT, seccomp.JSET):
            return 1 + max(depth(pc + 1 + jt), depth(pc + 1 + jf))
        return 1 + depth(pc + 1)

    assert depth(0) <= 30


def test_since_column_is_plausible():
    t = table().by_name
    assert t["openat2"].since_text == "5.6"
    assert t["clone3"].since_text == "5.3"
    assert t["close_range"].since_text == "5.9"
    assert t["openat"].since_text == "2.6.16"


def test_brandpy_syscalls_prints_the_table_and_counts(capsys):
    from brandpy.cli import main

    assert main(["syscalls"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"^ +257 openat +2\.6\.16 +trace", out, re.M)
    assert re.search(r"^\d+ numbers \(\d+ syscalls, \d+ unassigned\): \d+ allow", out.splitlines()[-1])
