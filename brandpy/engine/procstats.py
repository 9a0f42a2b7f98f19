"""`docker top` and `docker stats` from /proc: a container is a set of host
processes (its shim says which), so both read those processes directly.
Without cgroups, memory is the processes' resident set and the limit is
the host's memory. Network counters are those of the container's network
namespace (a root daemon's containers); a container on the host's
network (unprivileged, or --network host) has none of its own to count."""

from __future__ import annotations

import asyncio
import os
from typing import TYPE_CHECKING

from brandpy.network import counters

from . import timefmt
from .errors import EngineError
from .records import Record

if TYPE_CHECKING:
    from .engine import Engine

TICK_NS = 1_000_000_000 // os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


async def top(pids: list[int], ps_args: str) -> dict:
    """Run the host's ps with the client's arguments and keep the rows of
    the container's processes, as dockerd does (PIDs are host PIDs)."""
    proc = await asyncio.create_subprocess_exec(
        "ps", *ps_args.split(), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await proc.communicate()
    if proc.returncode != 0:
        raise EngineError(f"Error running ps: exit status {proc.returncode}: "
                          f"{err.decode(errors='replace').strip()}")
    lines = out.decode(errors="replace").splitlines()
    titles = lines[0].split() if lines else []
    if "PID" not in titles:
        raise EngineError(f"Couldn't find PID field in ps output (ps {ps_args})")
    index = titles.index("PID")
    wanted = set(pids)
    rows = []
    for line in lines[1:]:
        fields = line.split()
        if len(fields) <= index or not fields[index].isdigit():
            continue
        if int(fields[index]) in wanted:
            rows.append(fields[:len(titles) - 1] + [" ".join(fields[len(titles) - 1:])])
    return {"Titles": titles, "Processes": rows}


def _stat(pid: int) -> list[str] | None:
    try:
        with open(f"/proc/{pid}/stat") as f:
            data = f.read()
    except OSError:
        return None
    return data[data.rindex(")") + 2:].split()   # fields from the state (3rd) on


def _io(pid: int) -> tuple[int, int]:
    read = write = 0
    try:
        with open(f"/proc/{pid}/io") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key == "read_bytes":
                    read = int(value)
                elif key == "write_bytes":
                    write = int(value)
    except OSError:
        pass
    return read, write


def _system_ns() -> int:
    with open("/proc/stat") as f:
        fields = f.readline().split()[1:8]
    return sum(int(x) for x in fields) * TICK_NS


def _mem_total() -> int:
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    return 0


def snapshot(pids: list[int], init_pid: int) -> dict:
    cpu = rss = threads = reads = writes = 0
    for pid in pids:
        st = _stat(pid)
        if st is None:
            continue
        # utime, stime (and for the entrypoint, its reaped children's)
        cpu += int(st[11]) + int(st[12])
        if pid == init_pid:
            cpu += int(st[13]) + int(st[14])
        threads += int(st[17])
        rss += int(st[21]) * PAGE
        r, w = _io(pid)
        reads, writes = reads + r, writes + w
    ncpu = os.cpu_count() or 1
    return {
        "cpu_stats": {"cpu_usage": {"total_usage": cpu * TICK_NS, "usage_in_kernelmode": 0,
                                    "usage_in_usermode": 0},
                      "system_cpu_usage": _system_ns(), "online_cpus": ncpu,
                      "throttling_data": {"periods": 0, "throttled_periods": 0,
                                          "throttled_time": 0}},
        "memory_stats": {"usage": rss, "limit": _mem_total(), "stats": {}},
        "pids_stats": {"current": threads},
        "blkio_stats": {"io_service_bytes_recursive": [
            {"major": 0, "minor": 0, "op": "read", "value": reads},
            {"major": 0, "minor": 0, "op": "write", "value": writes}]},
    }


EMPTY_CPU = {"cpu_usage": {"total_usage": 0, "usage_in_kernelmode": 0, "usage_in_usermode": 0},
             "system_cpu_usage": 0, "online_cpus": 0,
             "throttling_data": {"periods": 0, "throttled_periods": 0, "throttled_time": 0}}


class Sampler:
    """Successive stats of one container; each carries the previous CPU
    sample (precpu_stats) so clients can compute a percentage."""

    def __init__(self, rec: Record, engine: Engine) -> None:
        self.rec, self.engine = rec, engine
        self.prev: dict | None = None
        self.prev_read = timefmt.ZERO

    async def _pids(self) -> list[int]:
        if not self.rec.running or self.rec.shim is None or self.rec.state.get("Restarting"):
            return []
        try:
            return await self.engine.top(self.rec)
        except EngineError:
            return []

    async def sample(self, prime: bool = False) -> dict:
        if prime and self.prev is None:
            await self.sample()
            await asyncio.sleep(1)
        pids = await self._pids()
        snap = await asyncio.to_thread(snapshot, pids, int(self.rec.state.get("Pid") or 0))
        if not pids:
            snap = {**snap, "pids_stats": {}, "memory_stats": {}, "blkio_stats": {}}
        elif netns_pid := self.engine.netsetup.namespace_pid(self.rec):
            networks = counters.interfaces(netns_pid)
            if networks is not None:
                snap["networks"] = networks
        now = timefmt.iso()
        # A container sharing the host's stack (translate mode, --network
        # host; README) has no per-network counters, and none are invented.
        out = {"id": self.rec.id, "name": "/" + self.rec.name, "read": now,
               "preread": self.prev_read, "num_procs": 0, "storage_stats": {}, "networks": {},
               "precpu_stats": self.prev["cpu_stats"] if self.prev else EMPTY_CPU, **snap}
        self.prev, self.prev_read = snap, now
        return out
