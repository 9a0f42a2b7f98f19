"""PI and robust futexes (issue 17, class 1): the futex word holds a TID
that glibc took from set_tid_address or clone and the kernel reads back in
the caller's PID namespace. As root the container has a PID namespace of
its own (unprivileged too, in a user namespace), so the container's TIDs
are the kernel's and tests/programs/futexes.c prints what it prints
natively in a chroot. Without one (a host that forbids unprivileged user
namespaces) the TIDs are brandpy's and the kernel's differ: a documented
limit (README, Limits)."""

import os
from pathlib import Path

import pytest

from tests.conftest import build_program, chroot_run, install_program

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the chroot reference needs root")


@pytest.fixture(scope="module")
def futexes_bin(world_tmp: Path) -> Path:
    return build_program("futexes", world_tmp)


def test_pi_and_robust_futexes_as_linux(brandpy, busybox, futexes_bin):
    if not brandpy.namespaced:
        pytest.skip("no user namespaces here: the kernel's TIDs are the host's (README, Limits)")
    install_program(busybox, futexes_bin)
    native = chroot_run(busybox, ["/usr/bin/futexes"])
    assert native.status == 0 and native.out.count(": ok\n") == 4, native
    mine = brandpy(busybox, ["/usr/bin/futexes"], timeout=60)
    assert (mine.status, mine.out) == (0, native.out), mine
