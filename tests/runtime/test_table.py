"""The syscall table covers every x86_64 number, and the BPF program
compiled from it does exactly what the table says, with a short search."""

import errno
import re
import struct
from pathlib import Path

import pytest

from brandpy.runtime import seccomp
from brandpy.runtime.linux import SECCOMP_RET_ALLOW, SECCOMP_RET_ERRNO, SECCOMP_RET_TRACE, SECCOMP_RET_USER_NOTIF
from brandpy.runtime.sandbox import Sandbox, SandboxConfig
from syscalls import linux
from syscalls.effective import Effective
from syscalls.table import table
from tests.conftest import copy_rootfs

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
                "allow", "const", "deny", "trace", "perform", "nosys")
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
        if row.disposition == "perform":
            assert row.spec.notify is not None, row.name
            assert row.handler is None or row.when is not None, row.name
        if row.name and row.support != "full":
            assert row.note, f"{row.name}: a non-full row must say why"


def make_effective(tmp_path, image, **config):
    rootfs = copy_rootfs(image, tmp_path / "rootfs")
    (tmp_path / "state").mkdir()
    sb = Sandbox(SandboxConfig(rootfs=str(rootfs), argv=["/bin/true"],
                               state_dir=str(tmp_path / "state"), **config))
    return Effective(table(), sb)


def test_filter_matches_table_for_every_number(tmp_path, busybox_image):
    """Without a seccomp profile the filter is the table (denials are traced
    so the ledger sees them, with their errno in the trace data)."""
    eff = make_effective(tmp_path, busybox_image, seccomp="unconfined")
    prog = eff.bpf()
    for row in table().rows:
        spec = row.spec
        if eff.sb.fake_ids and spec.fake is not None:
            continue   # the unprivileged variants are tested with the runtime
        got = seccomp.evaluate(prog, row.nr)
        if row.when is not None:
            continue   # argument-dependent: tested below
        if eff.sb.kernel_pids and spec.pidns is not None:
            assert got == SECCOMP_RET_ALLOW, row    # in the kernel's PID namespace
            continue
        if not eff.sb.fake_ids and spec.real_tracked is not None:
            assert got == SECCOMP_RET_TRACE, row    # real set*id are learned
            continue
        expected = {"allow": SECCOMP_RET_ALLOW, "trace": SECCOMP_RET_TRACE,
                    "perform": SECCOMP_RET_USER_NOTIF,
                    "deny": SECCOMP_RET_TRACE | 1 << 12 | row.value,
                    "nosys": SECCOMP_RET_TRACE | 1 << 12 | errno.ENOSYS,
                    "const": SECCOMP_RET_ERRNO}[row.disposition]
        assert got == expected, row
    # beyond the table, the x32 ABI and foreign architectures: ENOSYS in BPF
    assert seccomp.evaluate(prog, len(table().rows) + 5) == SECCOMP_RET_ERRNO | errno.ENOSYS
    assert seccomp.evaluate(prog, 0x40000000 | 2) == SECCOMP_RET_ERRNO | errno.ENOSYS
    assert seccomp.evaluate(prog, 2, arch=0x40000003) == SECCOMP_RET_ERRNO | errno.ENOSYS


def test_argument_dependent_rows(tmp_path, busybox_image):
    eff = make_effective(tmp_path, busybox_image)
    prog = eff.bpf()
    nr = table().by_name

    def ev(name, *args):
        return seccomp.evaluate(prog, nr[name].nr, tuple(args) + (0,) * (6 - len(args)))

    profile_eperm = SECCOMP_RET_TRACE | 2 << 12 | errno.EPERM
    assert ev("sendto", 3, 0, 0, 0, 0, 0) == SECCOMP_RET_ALLOW
    assert ev("sendto", 3, 0, 0, 0, 0x7ffd1000, 16) == SECCOMP_RET_USER_NOTIF
    assert ev("sendto", 3, 0, 0, 0, 0x7f0000000000, 16) == SECCOMP_RET_USER_NOTIF  # low half 0
    assert ev("clone", 0x11) == SECCOMP_RET_ALLOW
    assert ev("clone", 0x10000000 | 0x11) == profile_eperm      # CLONE_NEWUSER: Docker's rule
    assert ev("socket", 40) == profile_eperm                    # AF_VSOCK: Docker's rule
    assert ev("socket", 2) == SECCOMP_RET_ALLOW
    assert ev("personality", 0xffffffff) == SECCOMP_RET_ALLOW
    assert ev("personality", 0x0040000) == profile_eperm
    assert ev("prctl", 4, 0) == SECCOMP_RET_USER_NOTIF           # PR_SET_DUMPABLE: performed
    assert ev("prctl", 16, 0x7ffd1000) == SECCOMP_RET_USER_NOTIF  # PR_GET_NAME
    assert ev("prctl", 1 << 32 | 3) == SECCOMP_RET_USER_NOTIF    # PR_GET_DUMPABLE (an int)
    assert ev("prctl", 0x59616D61, 1) == SECCOMP_RET_TRACE       # PR_SET_PTRACER: a PID to rewrite
    assert ev("prctl", 15) == SECCOMP_RET_ALLOW                  # PR_SET_NAME
    assert ev("pivot_root") == SECCOMP_RET_TRACE | 1 << 12 | errno.EPERM  # brandpy's own denial
    assert ev("mount") == profile_eperm                          # without CAP_SYS_ADMIN
    assert ev("clone", 0x00800000 | 0x11) == SECCOMP_RET_TRACE   # CLONE_UNTRACED: dropped
    assert ev("clone3") == SECCOMP_RET_TRACE | 2 << 12 | errno.ENOSYS   # glibc falls back
    assert ev("openat", 3, 0, 0) == SECCOMP_RET_USER_NOTIF      # performed by the supervisor
    assert ev("openat", 3, 0, 0o10000000) == SECCOMP_RET_TRACE  # O_PATH: no ADDFD for it


@pytest.mark.parametrize("config", [{}, {"seccomp": "unconfined"}], ids=["docker", "unconfined"])
def test_supervisor_knows_its_own_action_without_the_kernel(tmp_path, busybox_image, config):
    """The supervisor decides what a seccomp stop means from what its own
    filter returns for the call's number and arguments (Effective.action),
    never from the trace data a filter the container stacked can set: it
    must agree with the compiled program for every row and argument edge."""
    import random

    eff = make_effective(tmp_path, busybox_image, **config)
    prog = eff.bpf()
    draw = random.Random(15)
    edges = (0, 1, 0x11, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, 1 << 32, 0x7F0000000000,
             0x10000000 | 0x11, 0xFFFFFFFFFFFFFFFF)
    for row in table().rows:
        for _ in range(12):
            args = tuple(draw.choice(edges) if draw.random() < 0.7 else draw.getrandbits(64)
                         for _ in range(6))
            assert eff.action(row.nr, args) == seccomp.evaluate(prog, row.nr, args), (row, args)


def test_filters_combine_as_the_kernel_combines_them():
    """Oldest first: the highest-precedence action wins, the newest data
    between equal ones (how a container's filter could set trace data)."""
    trace, errno_, notify = SECCOMP_RET_TRACE, SECCOMP_RET_ERRNO, 0x7FC00000
    assert seccomp.combine([SECCOMP_RET_ALLOW, trace | 3]) == trace | 3
    assert seccomp.combine([trace | 1, trace | 0x4000]) == trace | 0x4000
    assert seccomp.combine([trace, notify, SECCOMP_RET_ALLOW]) == notify
    assert seccomp.combine([errno_ | 1, notify, errno_ | 13]) == errno_ | 13
    assert seccomp.combine([0x80000000, errno_ | 1]) == 0x80000000    # KILL_PROCESS
    assert seccomp.combine([0x00030000 | 7, 0]) == 0                  # KILL_THREAD > TRAP


def test_personality_denies_newer_syscalls(tmp_path, busybox_image):
    eff = make_effective(tmp_path, busybox_image, kernel_release="4.19.0", personality=True)
    prog = eff.bpf()
    nr = table().by_name
    enosys = SECCOMP_RET_TRACE | 3 << 12 | errno.ENOSYS
    for name in ("openat2", "clone3", "close_range", "pidfd_open", "faccessat2"):
        assert seccomp.evaluate(prog, nr[name].nr) == enosys, name
    assert seccomp.evaluate(prog, nr["statx"].nr) != enosys          # 4.11
    assert seccomp.evaluate(prog, nr["read"].nr) == SECCOMP_RET_ALLOW


def test_filter_is_a_binary_search(tmp_path, busybox_image):
    """Not a chain of ~400 compares: the longest path through the program
    is a handful of jumps (plus the argument tests of a few rows)."""
    prog = make_effective(tmp_path, busybox_image).bpf()
    insns = [struct.unpack_from("<HBBI", prog, o) for o in range(0, len(prog), 8)]
    assert len(insns) < 800

    def depth(pc: int) -> int:
        code, jt, jf, k = insns[pc]
        if code == seccomp.RET:
            return 1
        if code == seccomp.JA:
            return 1 + depth(pc + 1 + k)
        if code in (seccomp.JEQ, seccomp.JGE, seccomp.JGT, seccomp.JSET):
            return 1 + max(depth(pc + 1 + jt), depth(pc + 1 + jf))
        return 1 + depth(pc + 1)

    # 26 here: the rows' binary search, then ioctl's commands (arg_in's own
    # binary search); a chain of argument compares would show
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
    assert re.search(r"^ +257 openat +2\.6\.16 +perform \(when\)", out, re.M)
    assert re.search(r"^\d+ numbers \(\d+ syscalls, \d+ unassigned\): \d+ allow", out.splitlines()[-1])
