"""A cgroup the suite's commands run in, below the suite's own, with a
memory and a PID limit: a stressor that exhausts memory or forks without
end meets the group's limit and the group's OOM killer, not the shared
host's (stress-ng's forkheavy stressor made the host's OOM killer end the
suite and other users' processes). Every runner runs in it alike.
cgroup v1's memory and pids hierarchies (under v2 the suite's own group
holds the suite, and a group with processes cannot hand controllers to
a child: `--no-confine` there). Needs root."""

from __future__ import annotations

import os
import shlex
from pathlib import Path

CGROUP = Path("/sys/fs/cgroup")
DEFAULT_MEMORY = 4 << 30
DEFAULT_PIDS = 8192


class Confinement:
    def __init__(self, name: str, memory: int = DEFAULT_MEMORY, pids: int = DEFAULT_PIDS) -> None:
        self.dirs: list[Path] = []
        try:
            mem = self._make(CGROUP / "memory" / _own("memory").lstrip("/") / name)
            (mem / "memory.limit_in_bytes").write_text(str(memory))
            pid = self._make(CGROUP / "pids" / _own("pids").lstrip("/") / name)
            (pid / "pids.max").write_text(str(pids))
        except OSError as exc:
            self.close()
            raise RuntimeError(f"cannot make the suite's cgroups ({exc}): run as root on a "
                               "host with cgroup v1's memory and pids hierarchies, or pass "
                               "--no-confine (a stressor may then exhaust the host)") from exc
        self.memory, self.pids = memory, pids

    def _make(self, path: Path) -> Path:
        path.mkdir()
        self.dirs.append(path)
        return path

    def wrap(self, argv: list[str]) -> list[str]:
        """argv, run after its shell has joined the group."""
        joins = "; ".join(f"echo $$ > {shlex.quote(str(d / 'cgroup.procs'))} || exit 125"
                          for d in self.dirs)
        return ["sh", "-c", f'{joins}; exec "$@"', "sh", *argv]

    def close(self) -> None:
        """Remove the groups (their processes must be gone: the suite kills
        every command's leftovers)."""
        for d in reversed(self.dirs):
            try:
                d.rmdir()
            except OSError:
                pass
        self.dirs = []

    def __enter__(self) -> Confinement:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _own(controller: str) -> str:
    """This process's cgroup path in v1's hierarchy of controller."""
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _, names, path = line.split(":", 2)
        if controller in names.split(","):
            return path
    raise OSError(f"no v1 {controller} hierarchy in /proc/self/cgroup")


def group_name() -> str:
    return f"brandpy-bench-{os.getpid()}"
