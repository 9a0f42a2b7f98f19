"""The whole Engine API fuzzed by tests/fuzz/run.py, once with the daemon
as uid 65534 and once as root: a short run here (`make test`), the long
one with 30 examples per operation and mode in `make test-slow` (as
`make fuzz`)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.conftest import REPO

SEED = 1


def fuzz(user: str, examples: int, timeout: float) -> None:
    if os.geteuid() != 0:
        pytest.skip("the fuzz run makes a network namespace (unshare --net): run as root")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    p = subprocess.run(["unshare", "--net", sys.executable, "-m", "tests.fuzz.run", "--user", user,
                        "--examples", str(examples), "--seed", str(SEED)],
                       capture_output=True, text=True, timeout=timeout, cwd=REPO, env=env)
    print(p.stdout)
    assert p.returncode == 0, p.stdout[-10000:] + p.stderr[-5000:]


@pytest.mark.parametrize("user", ["nobody", "root"])
def test_fuzz_short(user: str) -> None:
    fuzz(user, 2, 280)


@pytest.mark.slow
@pytest.mark.timeout(3600)
@pytest.mark.parametrize("user", ["nobody", "root"])
def test_fuzz_long(user: str) -> None:
    fuzz(user, 30, 3500)
