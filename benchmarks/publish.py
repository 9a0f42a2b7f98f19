"""Where a benchmark's Markdown, JSON and PNG go: the latest in
benchmarks/results/, and a copy named by the run's start time in history/."""

from __future__ import annotations

import json
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"


def publish(out: Path, stem: str, started: str, markdown: str, data: dict[str, Any],
            chart: Callable[[Path], None] | None = None) -> list[Path]:
    """{stem}.md, .json and (with a chart) .png in out, and copies in
    out/history/ named {stem}-{started}."""
    out.mkdir(parents=True, exist_ok=True)
    md, js, png = out / f"{stem}.md", out / f"{stem}.json", out / f"{stem}.png"
    md.write_text(markdown)
    js.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n")
    written = [md, js]
    try:
        if chart is not None:
            chart(png)
            written.append(png)
    except ImportError as exc:
        print(f"chart skipped ({exc}): install the bench extra, pip install -e '.[bench]'",
              file=sys.stderr)
    history = out / "history"
    history.mkdir(exist_ok=True)
    stamp = started.replace(":", "").replace("-", "")
    for path in written:
        shutil.copy(path, history / f"{stem}-{stamp}{path.suffix}")
    return written
