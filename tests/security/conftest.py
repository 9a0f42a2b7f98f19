"""Fixtures of the containment suite: the attack programs (built static
once per session), a canary per test, and the cells of the matrix every
attack runs in: engine x user x trace mode."""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import ENGINES, NOBODY, Runner, copy_rootfs

from .harness import PROGRAMS, Canary, build

USERS = ("root", "nobody")


@dataclass(frozen=True)
class Cell:
    """Where an attack runs: which engine, as which host user, traced or not."""
    engine: str
    user: str
    trace: bool

    @property
    def id(self) -> str:
        return f"{self.engine}-{self.user}" + ("-trace" if self.trace else "")

    @property
    def uid(self) -> int:
        return NOBODY if self.user == "nobody" else 0

    def opts(self) -> tuple[str, ...]:
        return ("--trace", "/dev/null") if self.trace else ()


CELLS = [Cell(e, u, t) for e in ENGINES for u in USERS for t in (False, True)]


def spread(cases: list[str], per_case: int = 2) -> list:
    """pytest params of (case, cell) over the whole matrix: make test runs
    each case in `per_case` cells, in turn, so that the cases share the
    matrix between them; the rest of it is marked slow."""
    params = []
    for i, case in enumerate(cases):
        mine = {(i * per_case + k) % len(CELLS) for k in range(per_case)}
        for j, cell in enumerate(CELLS):
            marks = () if j in mine else (pytest.mark.slow,)
            params.append(pytest.param(case, cell, id=f"{case}-{cell.id}", marks=marks))
    return params


@pytest.fixture(scope="session")
def security_bin(world_tmp: Path) -> Path:
    """The attack programs (tests/security/programs/*.c), built once."""
    out = Path(tempfile.mkdtemp(dir=world_tmp))
    out.chmod(0o755)
    for source in sorted(PROGRAMS.glob("*.c")):
        build(source.stem, out)
    return out


def attack_rootfs(parent: Path, image: Path, attack: Path, uid: int) -> Path:
    """A private busybox rootfs with the attack at /attack, owned by uid."""
    work = Path(tempfile.mkdtemp(dir=parent))
    work.chmod(0o755)
    dest = copy_rootfs(image, work / "rootfs", owner=uid or None)
    shutil.copy(attack, dest / "attack")
    os.chown(dest / "attack", uid, uid)
    return dest


@pytest.fixture
def canary_for(world_tmp: Path, security_bin: Path):
    """canary_for(uid, many=False): a fresh canary owned by uid (see
    Canary.create), removed after the test."""
    made: list[Canary] = []

    def make(uid: int, many: bool = False) -> Canary:
        made.append(Canary.create(world_tmp, uid, security_bin / "execcanary", many))
        return made[-1]
    yield make
    for c in made:
        c.remove()


@pytest.fixture
def rootfs_for(world_tmp: Path, busybox_image: Path, security_bin: Path):
    """rootfs_for(uid, program="attack"): a private busybox rootfs with that
    attack program as /attack, removed after."""
    made: list[Path] = []

    def make(uid: int, program: str = "attack") -> Path:
        made.append(attack_rootfs(world_tmp, busybox_image, security_bin / program, uid))
        return made[-1]
    yield make
    for p in made:
        shutil.rmtree(p.parent, ignore_errors=True)


def runner_for(cell: Cell, unpriv_pythonpath: str | None) -> Runner:
    return Runner(cell.user, cell.engine, unpriv_pythonpath)
