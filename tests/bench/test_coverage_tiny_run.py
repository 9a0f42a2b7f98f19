"""`python -m benchmarks.coverage` end to end, cut down to seconds: one
small module, native and brandpy's python engine, offline."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.bench, pytest.mark.needs_root,
              pytest.mark.skipif(os.geteuid() != 0, reason="the native runner (chroot) and "
                                 "the network namespace need root")]

REPO = Path(__file__).resolve().parents[2]
MODULE = "test_resource"      # 11 tests, a second natively


def workspaces() -> set[Path]:
    return {*Path("/dev/shm").glob("brandpy-bench-*"), *Path("/tmp").glob("brandpy-bench-*")}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory, debian_image) -> tuple[subprocess.CompletedProcess, Path, set[Path]]:
    out = tmp_path_factory.mktemp("coverage-results")
    before = workspaces()
    proc = subprocess.run([sys.executable, "-m", "benchmarks.coverage", "--modules", MODULE,
                           "--runners", "native,brandpy-python", "--out", str(out)],
                          capture_output=True, text=True, cwd=REPO, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return proc, out, workspaces() - before


def test_json_has_every_test_counted_and_losses_run_again(tiny):
    _, out, _ = tiny
    data = json.loads((out / "coverage.json").read_text())
    assert data["meta"]["network"] == "own network namespace: lo"
    runs = {r["runner"]: r for r in data["runs"]}
    native = runs["native"]
    assert native["verdict"] == "completed" and native["regrtest_result"] == "SUCCESS"
    assert native["counts"]["passed"] >= 8 and native["ledger"] is None
    brandpy = runs["brandpy-python"]
    assert brandpy["verdict"] == "completed"
    assert sum(brandpy["counts"].values()) == sum(native["counts"].values())
    assert brandpy["ledger"] is not None                  # --report was printed and read
    lost = {loss["test_id"] for loss in brandpy["lost"]}
    assert lost == {a["test"] for a in data["attributions"]}
    if lost:
        assert data["baselines"]["brandpy-python"]["rerun"] == "passed"


def test_markdown_chart_and_history_are_written(tiny):
    proc, out, _ = tiny
    md = (out / "coverage.md").read_text()
    assert "| module | native | brandpy python |" in md
    assert f"| {MODULE} |" in md
    assert md.strip() in proc.stdout
    assert (out / "coverage.png").read_bytes().startswith(b"\x89PNG")
    assert len(list((out / "history").iterdir())) == 3


def test_the_workspace_is_removed(tiny):
    _, _, left = tiny
    assert not left, f"left behind: {left}"
