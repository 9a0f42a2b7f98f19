"""Issue 14: a container must not reach the host's files through a race
against brandpy's path translation.

Each case runs tests/security/programs/attack.c as a busybox container's
entrypoint, against a canary directory outside the container (see
harness.py), in one cell of the matrix engine x host user x trace mode:

- swap/FAMILY: a thread exchanges a directory with a symlink to the canary
  while another makes one family of path calls below it;
- chain/...: the same race for open, with the symlink pointing at the host
  through `/`, `..` chains or /proc/self/{root,cwd,fd/N}, or the path
  naming the directory through those;
- mem/FAMILY: a thread rewrites the memory below its sibling's stack
  pointer, where a supervisor would leave translated host paths for the
  kernel;
- addr/SEND: a thread sends datagrams to the container's own socket while
  a sibling flips the destination address (sendto's dest_addr, sendmsg's
  and sendmmsg's msg_name) to the canary's host socket.

`make test` runs every case in one cell (lean_cells); the whole
matrix is `@pytest.mark.slow`. No case escapes in any cell: path calls are
performed by the supervisor on descriptors (brandpy/runtime/pathres.py),
and execve, which the kernel walks itself, is walled in by Landlock.

The sends (2026-12-07, the whole matrix, 9 cases x 8 cells): while sendmsg
and sendmmsg ran natively, 32 of the 72 escaped, every cell of addr/sendmsg,
addr/sendmmsg, swap/sendmsg and swap/sendmmsg (the kernel walked msg_name,
a guest path, as a host path); sendto (performed already) and the mem
cases did not. Now every sendmsg and sendmmsg is performed by the
supervisor from one copy of its headers (syscalls/handlers/sendmsg.py,
native/notify.c send_family): 0 of 72.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest

from .conftest import CELLS, Cell, runner_for
from .harness import run_attack

FAMILIES = (
    "open", "openat", "openat2", "open-creat", "openat-creat", "openat2-creat", "creat",
    "stat", "lstat", "newfstatat", "statx", "access", "faccessat2", "readlink", "chdir",
    "mkdir", "mknod", "unlink", "rmdir", "rename", "link", "symlink", "chmod", "chown",
    "utimes", "truncate", "setxattr", "getxattr", "listxattr", "removexattr", "execve",
    "bind", "connect", "sendto", "sendmsg", "sendmmsg")
SENDS = ("sendto", "sendmsg", "sendmmsg")
# Their calls name what exists only in the canary: they succeed only by escaping.
ONLY_ON_THE_HOST = ("stat", "lstat", "newfstatat", "statx", "access", "faccessat2", "chdir",
                    "connect", *SENDS)
NAME_EATERS = ("unlink", "rmdir", "rename", "link")   # one of the canary's many/ names per attempt
LINKS = ("root", "dotdot", "procroot", "proccwd", "procfd")
PREFIXES = ("abs", "procroot", "proccwd", "procfd", "dotdot")
# Each attack's time bound, and the calls it makes at least (up to 4 x
# BOUND_S on a slow machine); the harness stops it at its first escape.
BOUND_S = 3.0
MIN_ATTEMPTS = 300


@dataclass(frozen=True)
class Case:
    style: str                 # swap | mem | addr (attack.c -s)
    mode: str                  # the family of calls (attack.c -m)
    link: str = "host"         # swap: what the symlink points at
    prefix: str = "plain"      # how the victim thread names the directory

    @property
    def id(self) -> str:
        if self.link != "host":
            return f"chain/{self.mode}-link-{self.link}"
        if self.prefix != "plain":
            return f"chain/{self.mode}-via-{self.prefix}"
        return f"{self.style}/{self.mode}"

    def argv(self, canary: Path, seconds: float, min_attempts: int) -> list[str]:
        return ["/attack", "-s", self.style, "-m", self.mode, "-l", self.link, "-p",
                self.prefix, "-c", str(canary), "-t", str(seconds), "-a", str(min_attempts)]


CASES = ([Case("swap", m) for m in FAMILIES]
         + [Case("swap", "open", link=link) for link in LINKS]
         + [Case("swap", "open", prefix=p) for p in PREFIXES]
         + [Case("mem", m) for m in FAMILIES]
         + [Case("addr", m) for m in SENDS])


def lean_cells(index: int) -> list[Cell]:
    """The cell `make test` runs case number `index` in: one of the eight,
    in turn, so that every cell sees a share of every style."""
    return [CELLS[index % len(CELLS)]]


def _params(full: bool) -> list:
    params = []
    for i, case in enumerate(CASES):
        cells = CELLS if full else lean_cells(i)
        for cell in cells:
            marks = []
            if full and cell in lean_cells(i):
                continue            # already in the lean run
            if full:
                marks.append(pytest.mark.slow)
            params.append(pytest.param(case, cell, marks=marks, id=f"{case.id}-{cell.id}"))
    return params


def check(case: Case, cell: Cell, canary_for, rootfs_for, unpriv_pythonpath) -> None:
    canary = canary_for(cell.uid, many=case.mode in NAME_EATERS)
    rootfs = rootfs_for(cell.uid)
    outcome = run_attack(runner_for(cell, unpriv_pythonpath), rootfs,
                         case.argv(canary.dir, BOUND_S, MIN_ATTEMPTS), canary, BOUND_S,
                         cell.opts())
    assert not outcome.escapes, outcome
    # it did attack: calls made (and answered) and, swapping, directories exchanged
    summary = re.search(r"attempts=(\d+) ok=(\d+) swaps=(\d+)", outcome.err)
    assert summary and int(summary[1]) > 0, outcome
    # (addr sends to the container's own socket: those succeed)
    assert (case.mode in ONLY_ON_THE_HOST and case.style != "addr") or int(summary[2]) > 0, \
        outcome
    assert case.style not in ("swap", "addr") or int(summary[3]) > 0, outcome


@pytest.mark.parametrize("case,cell", _params(full=False))
def test_race(case: Case, cell: Cell, canary_for, rootfs_for, unpriv_pythonpath) -> None:
    check(case, cell, canary_for, rootfs_for, unpriv_pythonpath)


@pytest.mark.parametrize("case,cell", _params(full=True))
def test_race_full_matrix(case: Case, cell: Cell, canary_for, rootfs_for,
                          unpriv_pythonpath) -> None:
    check(case, cell, canary_for, rootfs_for, unpriv_pythonpath)
