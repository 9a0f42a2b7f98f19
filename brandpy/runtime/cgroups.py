"""A cgroup per container when the supervisor runs as root, as runc makes
one: Docker's device rules in v1's devices controller and in cgroup v2's
device program (runtime/devfilter.py), so a device node the container was
not given cannot be opened or read even by a call that reached the kernel
untranslated, --memory, --cpus and --pids-limit
enforced, and the whole container ended at once (cgroup.kill where the
host has cgroup v2, else SIGKILL to every task the cgroup lists, frozen
first). The host's own layout is used as it is mounted: cgroup v1
controllers, a v2 hierarchy, or both (hybrid). Each cgroup sits below the
supervisor's own (so host limits keep applying), in brandpy/NAME."""

from __future__ import annotations

import contextlib
import os
import signal
import stat
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import devfilter

GROUP = "brandpy"
# Turns cgroups off, for the control cases of tests/security only (they
# show an attack works without the walls).
TEST_OFF = "BRANDPY_TEST_NO_CGROUP"
# v1's devices controller off, so that v2's device program stands alone
# (tests/security/test_devices.py).
TEST_NO_V1_DEVICES = "BRANDPY_TEST_NO_V1_DEVICES"
CPU_PERIOD = 100_000          # µs, as Docker's --cpus
KILL_WAIT = 5.0               # seconds for the killed tasks to go


@dataclass(frozen=True)
class Limits:
    """Docker's resource limits; 0 is none."""
    memory: int = 0           # bytes (--memory)
    memory_swap: int = 0      # memory + swap, bytes; -1 unlimited (--memory-swap)
    cpu_quota: int = 0        # µs per cpu_period (--cpus, --cpu-quota)
    cpu_period: int = 0
    cpu_shares: int = 0       # relative weight, 1024 by default (--cpu-shares)
    pids: int = 0             # --pids-limit; 0 or less: none

    @classmethod
    def of(cls, host_config: dict[str, Any]) -> Limits:
        """From a HostConfig (NanoCpus becomes a quota, as Docker does)."""
        def num(key: str) -> int:
            value = host_config.get(key)
            return value if isinstance(value, int) and not isinstance(value, bool) else 0
        period, quota = num("CpuPeriod"), num("CpuQuota")
        if num("NanoCpus") > 0:
            period = period or CPU_PERIOD
            quota = num("NanoCpus") * period // 1_000_000_000
        return cls(memory=max(num("Memory"), 0), memory_swap=num("MemorySwap"),
                   cpu_quota=max(quota, 0), cpu_period=max(period, 0),
                   cpu_shares=max(num("CpuShares"), 0), pids=max(num("PidsLimit"), 0))

    def to_json(self) -> dict[str, int]:
        return {k: v for k, v in self.__dict__.items() if v}


@dataclass(frozen=True)
class Hierarchy:
    mount: Path               # where it is mounted here
    own: str                  # this process's cgroup in it, from its root
    controllers: frozenset[str]
    v2: bool

    def parent(self) -> Path:
        return self.mount / self.own.lstrip("/") / GROUP


def hierarchies() -> list[Hierarchy]:
    """The cgroup hierarchies mounted here, with our place in each."""
    own: dict[str, str] = {}
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/cgroup").read_text().splitlines():
            _, controllers, path = line.split(":", 2)
            own[controllers] = path
    found = []
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/mountinfo").read_text().splitlines():
            fields = line.split()
            sep = fields.index("-")
            fstype, options = fields[sep + 1], fields[sep + 3].split(",")
            root, mount = fields[3], fields[4]
            if fstype == "cgroup2":
                if "" not in own:
                    continue
                kinds = frozenset(_read(Path(mount) / "cgroup.controllers").split())
                found.append(Hierarchy(Path(mount), _below(own[""], root), kinds, True))
            elif fstype == "cgroup":
                kinds = frozenset(o for o in options if o not in ("rw", "ro")
                                  and not o.startswith("name="))
                key = next((k for k in own if k and set(k.split(",")) == kinds), None)
                if key is not None and kinds:
                    found.append(Hierarchy(Path(mount), _below(own[key], root), kinds, False))
    return found


def _below(path: str, root: str) -> str:
    """A cgroup path relative to a mount of the hierarchy at root."""
    if root != "/" and (path == root or path.startswith(root + "/")):
        return path[len(root):] or "/"
    return path


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""


def _write(path: Path, value: str) -> None:
    with open(path, "w") as f:
        f.write(value)


@dataclass
class DeviceRule:
    """One devices-controller rule: type c or b, major/minor (-1 is *)."""
    kind: str
    major: int
    minor: int
    access: str

    def __str__(self) -> str:
        def num(n: int) -> str:
            return "*" if n < 0 else str(n)
        return f"{self.kind} {num(self.major)}:{num(self.minor)} {self.access}"


# Docker's defaults besides the nodes a container's /dev holds: any node may
# be made (c *:* m, b *:* m), /dev/ptmx 5:2, /dev/tty 5:0 and /dev/net/tun
# (10:200) may be used. Docker also allows every pty (136:*), in a devpts of
# the container's own mounted in its /dev/pts. Here the container's
# processes never open a pty themselves (the supervisor does, outside this
# cgroup): with a private devpts instance, whose numbers are the host's
# ptys' too, none is allowed; with the host's, each of the container's
# while it is its own (Cgroup.device from ptys.PtyView; see ptys.py).
DOCKER_RULES = [DeviceRule("c", -1, -1, "m"), DeviceRule("b", -1, -1, "m"),
                DeviceRule("c", 5, 2, "rwm"), DeviceRule("c", 5, 0, "rwm"),
                DeviceRule("c", 10, 200, "rwm")]


def device_rule(st: os.stat_result, access: str) -> DeviceRule | None:
    if not (stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode)):
        return None
    return DeviceRule("c" if stat.S_ISCHR(st.st_mode) else "b", os.major(st.st_rdev),
                      os.minor(st.st_rdev), access)


@dataclass
class Cgroup:
    """One container's cgroup in every hierarchy it could be made in."""
    name: str
    joined: list[tuple[Hierarchy, Path]] = field(default_factory=list)
    kill_file: Path | None = None        # cgroup.kill (v2)
    freezer: Path | None = None          # freezer.state (v1)
    rules: list[DeviceRule] = field(default_factory=list)    # the devices allowed
    program: devfilter.Program | None = None                 # v2's device program

    @classmethod
    def make(cls, name: str, limits: Limits, devices: list[DeviceRule]) -> Cgroup:
        """Made as far as the host lets us (a read-only or absent cgroupfs
        gives an empty one: the translation's walls stand alone then). The
        limit controllers are joined even without a limit, so that `docker
        update` can set one on the running container."""
        cg = cls(name, rules=DOCKER_RULES + devices)
        if os.environ.get(TEST_OFF) == "1":
            return cg
        for h in hierarchies():
            kinds = _joined(h)
            if not kinds and not (h.v2 and cg.kill_file is None):
                continue
            path = h.parent() / name
            try:
                path.mkdir(parents=True, exist_ok=True)
            except OSError:
                continue
            if h.v2:
                with contextlib.suppress(OSError):   # EBUSY below a cgroup with processes
                    _enable(h, [k for k in kinds if k in LIMITED])
                if (path / "cgroup.kill").exists():
                    cg.kill_file = path / "cgroup.kill"
                with contextlib.suppress(OSError):   # a kernel without cgroup BPF
                    cg.program = devfilter.Program(path, cg.rules)
            cg.joined.append((h, path))
            if "devices" in kinds:
                with contextlib.suppress(OSError):
                    _devices(path, cg.rules)
            if "freezer" in kinds:
                cg.freezer = path / "freezer.state"
        cg.update(limits)
        return cg

    @classmethod
    def left_by(cls, name: str) -> Cgroup:
        """The cgroup a container of that name has, whoever made it (a
        supervisor killed before its end leaves it behind): remove() ends
        what is in it and removes it."""
        return cls(name, [(h, h.parent() / name) for h in hierarchies()
                          if (h.parent() / name).is_dir()])

    @property
    def dirs(self) -> list[Path]:
        return [path for _, path in self.joined]

    def update(self, limits: Limits) -> None:
        """Set the limits given (at start, and `docker update` while it runs)."""
        for h, path in self.joined:
            for kind in LIMITED:
                if kind in h.controllers and _given(kind, limits):
                    try:
                        _apply(h, path, kind, limits)
                    except OSError as exc:
                        raise OSError(exc.errno, f"cannot set the container's {kind} limit "
                                      f"in {path}: {exc.strerror}") from None

    def device(self, rule: DeviceRule, allowed: bool) -> None:
        """Allow a device from now on, or no longer."""
        if allowed:
            self.rules.append(rule)
        elif rule in self.rules:
            self.rules.remove(rule)
        if self.program is not None:
            with contextlib.suppress(OSError):
                self.program.replace(self.rules)
        for h, path in self.joined:
            if not h.v2 and "devices" in h.controllers:
                with contextlib.suppress(OSError):
                    _write(path / ("devices.allow" if allowed else "devices.deny"), str(rule))

    def add(self, pid: int) -> None:
        """Move a process in (before it runs the container's code: its
        children are born inside)."""
        for d in self.dirs:
            with contextlib.suppress(ProcessLookupError):
                _write(d / "cgroup.procs", str(pid))

    def tasks(self) -> set[int]:
        out: set[int] = set()
        for d in self.dirs:
            out |= {int(p) for p in _read(d / "cgroup.procs").split()}
        return out

    def kill(self) -> None:
        """End every process in it, whatever it did to escape tracing."""
        if self.kill_file is None:
            found = [path / "cgroup.kill" for h, path in self.joined if h.v2]
            self.kill_file = next((f for f in found if f.exists()), None)
        if self.kill_file is not None:
            with contextlib.suppress(OSError):
                _write(self.kill_file, "1")
        elif self.tasks():
            frozen = self.freezer is not None
            if frozen:
                with contextlib.suppress(OSError):
                    _write(self.freezer, "FROZEN")   # type: ignore[arg-type]
            for pid in self.tasks():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            if frozen:
                with contextlib.suppress(OSError):
                    _write(self.freezer, "THAWED")   # type: ignore[arg-type]

    def remove(self) -> None:
        """Kill what is left and remove the directories (once empty)."""
        if not self.dirs:
            return
        self.kill()
        deadline = time.monotonic() + KILL_WAIT
        while self.tasks() and time.monotonic() < deadline:
            time.sleep(0.01)
        for d in self.dirs:
            with contextlib.suppress(OSError):
                d.rmdir()
        self.joined.clear()
        if self.program is not None:
            self.program.close()


LIMITED = ("memory", "cpu", "pids")


def _joined(h: Hierarchy) -> list[str]:
    """The controllers of a hierarchy a container's cgroup is made for: v1's
    devices (v2's is a program attached to the cgroup: make()) and freezer
    (kill() on v1), and the limits'."""
    v1: tuple[str, ...] = ("devices", "freezer") if not h.v2 else ()
    if os.environ.get(TEST_NO_V1_DEVICES) == "1":
        v1 = tuple(k for k in v1 if k != "devices")
    return [k for k in (*v1, *LIMITED) if k in h.controllers]


def _given(kind: str, limits: Limits) -> bool:
    return bool({"memory": limits.memory, "cpu": limits.cpu_quota or limits.cpu_shares,
                 "pids": limits.pids}[kind])


def _enable(h: Hierarchy, kinds: list[str]) -> None:
    """cgroup v2: controllers are handed down by each parent."""
    if not kinds:
        return
    line = " ".join("+" + k for k in kinds)
    own = h.mount / h.own.lstrip("/")
    _write(own / "cgroup.subtree_control", line)
    _write(own / GROUP / "cgroup.subtree_control", line)


def _devices(path: Path, rules: list[DeviceRule]) -> None:
    _write(path / "devices.deny", "a")
    for rule in rules:
        _write(path / "devices.allow", str(rule))


def _apply(h: Hierarchy, path: Path, kind: str, limits: Limits) -> None:
    if kind == "memory":
        swap = limits.memory_swap
        if h.v2:
            _write(path / "memory.max", str(limits.memory))
            if swap:
                with contextlib.suppress(OSError):
                    _write(path / "memory.swap.max",
                           "max" if swap < 0 else str(max(swap - limits.memory, 0)))
        else:
            writes = [("memory.limit_in_bytes", str(limits.memory))]
            if swap and (path / "memory.memsw.limit_in_bytes").exists():
                writes.append(("memory.memsw.limit_in_bytes", "-1" if swap < 0 else str(swap)))
            try:    # memory + swap may never be below memory: the order depends on the change
                for name, value in writes:
                    _write(path / name, value)
            except OSError:
                for name, value in reversed(writes):
                    _write(path / name, value)
    elif kind == "cpu":
        period = limits.cpu_period or CPU_PERIOD
        if h.v2:
            if limits.cpu_quota:
                _write(path / "cpu.max", f"{limits.cpu_quota} {period}")
            if limits.cpu_shares:   # runc's conversion of shares to weight
                weight = 1 + ((limits.cpu_shares - 2) * 9999) // 262142
                _write(path / "cpu.weight", str(min(max(weight, 1), 10000)))
        else:
            if limits.cpu_quota:
                _write(path / "cpu.cfs_period_us", str(period))
                _write(path / "cpu.cfs_quota_us", str(limits.cpu_quota))
            if limits.cpu_shares:
                _write(path / "cpu.shares", str(limits.cpu_shares))
    elif kind == "pids":
        _write(path / "pids.max", str(limits.pids))


RUN_PREFIX = "run-"


def run_name() -> str:
    """The cgroup of a container without a name of its own (`brandpy run`):
    named for this process, and the ones of runs killed before their end
    (SIGKILL leaves nothing to remove them) are removed now."""
    for h in hierarchies():
        with contextlib.suppress(OSError):
            for entry in os.scandir(h.parent()):
                pid = entry.name.removeprefix(RUN_PREFIX)
                if entry.name.startswith(RUN_PREFIX) and pid.isdigit() and \
                        not os.path.exists(f"/proc/{pid}"):
                    with contextlib.suppress(OSError):
                        os.rmdir(entry.path)     # only once empty: its tasks are gone
    return f"{RUN_PREFIX}{os.getpid()}"


def enforceable() -> set[str]:
    """What a root supervisor here can enforce with cgroups (for warnings
    at create and `docker info`): memory, cpu, pids, devices."""
    if os.geteuid() != 0:
        return set()
    out: set[str] = set()
    for h in hierarchies():
        if not os.access(h.parent().parent, os.W_OK):
            continue
        for kind in ("memory", "cpu", "pids", "devices"):
            if kind in h.controllers or (h.v2 and kind == "devices"):
                out.add(kind)
    return out


def version() -> str:
    """As `docker info` says it: "2" on a host with cgroup v2 alone, "1"
    with v1 controllers (hybrid too), "" with none."""
    found = hierarchies()
    if not found:
        return ""
    return "1" if any(not h.v2 for h in found) else "2"
