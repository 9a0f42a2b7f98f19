"""`python -m benchmarks.run` end to end, cut down to a few seconds: the
start-up and micro workloads, native and brandpy's python engine, one run."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.bench, pytest.mark.needs_root,
              pytest.mark.skipif(os.geteuid() != 0, reason="the native runner (chroot) "
                                 "needs root")]

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory, busybox_image) -> tuple[subprocess.CompletedProcess, Path]:
    out = tmp_path_factory.mktemp("bench-results")
    proc = subprocess.run([sys.executable, "-m", "benchmarks.run", "--reps", "1",
                           "--workloads", "startup,micro", "--runners", "native,brandpy-python",
                           "--micro-seconds", "0.05", "--out", str(out)],
                          capture_output=True, text=True, cwd=REPO, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return proc, out


def test_json_is_well_formed(tiny):
    _, out = tiny
    data = json.loads((out / "latest.json").read_text())
    assert set(data) >= {"meta", "runners", "workloads", "cells", "geomean", "floor", "claims"}
    assert [r["name"] for r in data["runners"]] == ["native", "brandpy-python"]
    assert [w["name"] for w in data["workloads"]] == ["micro", "startup"]
    cells = {(c["workload"], c["runner"]): c for c in data["cells"]}
    native = cells["startup", "native"]
    assert (native["verdict"], native["ratio"], len(native["runs"])) == ("ok", 1.0, 1)
    assert set(cells["micro", "native"]["metrics"]) == {"getppid", "stat", "open+close", "read"}
    assert data["floor"]["stop_any_cpu"] > 0
    brandpy = data["runners"][1]
    if brandpy["available"]:
        cell = cells["startup", "brandpy-python"]
        assert cell["verdict"] == "ok"
        assert cell["stops"]["stops_per_trapped"] >= 1.0
    else:
        assert brandpy["reason"]     # a broken runner is reported, not fatal


def test_markdown_chart_and_history_are_written(tiny):
    proc, out = tiny
    md = (out / "latest.md").read_text()
    assert "| workload | rootfs | native | brandpy python |" in md
    assert "## Syscall cost: micro-benchmark" in md
    assert md.strip() in proc.stdout                      # the table is printed at the end
    assert (out / "latest.png").read_bytes().startswith(b"\x89PNG")
    assert len(list((out / "history").iterdir())) == 3
