"""What a process forked by the zygote inherits from it, read from /proc:
the zygote serves a peer only if the peer's is the same, so a request never
runs with more (or other) privileges, limits, namespaces or root than the
process that sent it. The launcher hashes the same things into the name
of the socket it connects to."""

from __future__ import annotations

import os

STATUS = (b"Uid:", b"Gid:", b"Groups:", b"CapInh:", b"CapPrm:", b"CapEff:", b"CapBnd:",
          b"CapAmb:", b"NoNewPrivs:", b"Seccomp:", b"Seccomp_filters:", b"Cpus_allowed_list:",
          b"Mems_allowed_list:")
NAMESPACES = ("cgroup", "ipc", "mnt", "net", "pid", "pid_for_children", "time", "user", "uts")
FILES = ("limits", "cgroup", "attr/current")
# read by Python or brandpy when they start, so part of what a zygote is
ENV_PREFIXES = (b"PYTHON", b"BRANDPY_")


def _read(path: str) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError:
        return b""


def identity(pid: int) -> tuple[object, ...]:
    proc = f"/proc/{pid}"
    status = [line for line in _read(f"{proc}/status").splitlines() if line.startswith(STATUS)]
    namespaces = []
    for ns in NAMESPACES:
        try:
            namespaces.append(os.readlink(f"{proc}/ns/{ns}"))
        except OSError:
            namespaces.append("")
    root = os.stat(f"{proc}/root")
    env = sorted(e for e in _read(f"{proc}/environ").split(b"\0") if e.startswith(ENV_PREFIXES))
    return (tuple(status), tuple(_read(f"{proc}/{name}") for name in FILES), tuple(namespaces),
            (root.st_dev, root.st_ino), os.getpriority(os.PRIO_PROCESS, pid), tuple(env))
