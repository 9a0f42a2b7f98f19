"""OCI hooks: programs run at points of the lifecycle with the container's
state JSON on stdin. prestart, createRuntime and createContainer run in
`create`, poststart in `start`, poststop in `delete`, all on the host (brandpy
has no namespaces to enter: "the container namespace" of createContainer is
the host's); startContainer runs inside the container, through the monitor
(monitor.py), before the entrypoint's program."""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass, field
from typing import Any

from .errors import OciError

KINDS = ("prestart", "createRuntime", "createContainer", "startContainer", "poststart",
         "poststop")


@dataclass
class Hook:
    path: str
    args: list[str] = field(default_factory=list)
    env: list[str] = field(default_factory=list)
    timeout: int | None = None

    @property
    def argv(self) -> list[str]:
        return self.args or [self.path]


def parse_hooks(obj: Any) -> dict[str, list[Hook]]:
    if obj is None:
        return {}
    if not isinstance(obj, dict):
        raise OciError("hooks must be an object: fix config.json")
    hooks: dict[str, list[Hook]] = {}
    for kind, entries in obj.items():
        if kind not in KINDS:
            raise OciError(f"hooks.{kind}: unknown hook kind (known: {', '.join(KINDS)})")
        for i, h in enumerate(entries or []):
            where = f"hooks.{kind}[{i}]"
            if not isinstance(h, dict) or not isinstance(h.get("path"), str) \
                    or not h["path"].startswith("/"):
                raise OciError(f"{where}.path must be an absolute path")
            timeout = h.get("timeout")
            if timeout is not None and (not isinstance(timeout, int) or timeout <= 0):
                raise OciError(f"{where}.timeout must be a positive number of seconds")
            hooks.setdefault(kind, []).append(
                Hook(h["path"], list(h.get("args") or []), list(h.get("env") or []), timeout))
    return hooks


def run_hooks(kind: str, hooks: list[Hook], state: dict[str, Any]) -> None:
    """Run hooks in order on the host; the first failure raises."""
    data = json.dumps(state).encode()
    for hook in hooks:
        env = dict(e.split("=", 1) for e in hook.env if "=" in e)
        try:
            p = subprocess.run(hook.argv, executable=hook.path, input=data, env=env,
                               capture_output=True, timeout=hook.timeout, cwd=state["bundle"])
        except subprocess.TimeoutExpired:
            raise OciError(f"{kind} hook {hook.path} timed out after {hook.timeout}s") from None
        except OSError as exc:
            raise OciError(f"{kind} hook {hook.path}: {exc.strerror}") from None
        if p.returncode != 0:
            how = (f"was killed by signal {-p.returncode}" if p.returncode < 0
                   else f"failed with exit status {p.returncode}")
            detail = p.stderr.decode(errors="replace").strip()[-500:]
            raise OciError(f"{kind} hook {hook.path} {how}" + (f": {detail}" if detail else ""))
