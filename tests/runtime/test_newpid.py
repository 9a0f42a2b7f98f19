"""Calls naming a child the moment fork() returns, before the supervisor
may have seen its first stop (tests/programs/newpid.c): those brandpy
emulates from its record of the task (capget with emulated credentials,
setns of a pidfd) wait for that stop (errors.Unborn) as guest ptrace does
(test_ptrace.py's seizefork); those it translates for the kernel
(priorities, sched_*, prlimit) need not. Linux's answers, compared with a
native chroot, in both engines, as root and uid 65534, with and without
user namespaces."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.conftest import Runner, build_program, chroot_run, install_program

CASES = ("capget", "priority", "sched", "setns", "user")
# as it prints natively
NEWPID = "".join(f"{case}: 200/200\n" for case in CASES)


@pytest.fixture(scope="module")
def newpid_bin(world_tmp: Path) -> Path:
    return build_program("newpid", world_tmp)


def test_a_child_is_named_the_moment_it_exists(brandpy, busybox, newpid_bin):
    """Before, uid 65534's capget and every setns had ESRCH rounds."""
    install_program(busybox, newpid_bin)
    if os.geteuid() == 0:
        assert chroot_run(busybox, ["/usr/bin/newpid", *CASES]).out == NEWPID
    check_newpid(brandpy, busybox)


def test_a_child_is_named_the_moment_it_exists_without_user_namespaces(
        brandpy_flat, flat_busybox, newpid_bin):
    """The same with brandpy's own PIDs (fork's return rewritten at its exit)."""
    install_program(flat_busybox, newpid_bin)
    check_newpid(brandpy_flat, flat_busybox)


def check_newpid(runner: Runner, rootfs: Path) -> None:
    # setns takes CAP_SYS_ADMIN, not in Docker's default set
    got = runner(rootfs, ["/usr/bin/newpid", *CASES], "--cap-add", "SYS_ADMIN", timeout=120)
    assert (got.status, got.out) == (0, NEWPID), got.err
