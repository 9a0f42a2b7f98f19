"""Health checks (HEALTHCHECK, --health-cmd), run as dockerd runs them: a
probe is an exec in the container every Interval (the first one Interval
after start; StartInterval during the start period), killed after
Timeout; exit 0 is healthy, anything else a failure. Retries failures in
a row make the container unhealthy; failures within StartPeriod of the
start, before any success, do not count. State.Health keeps the last five
results, a change of status is a `health_status: STATUS` event, and a
container that stops is unhealthy (dockerd's rule)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import time
from pathlib import Path
from typing import TYPE_CHECKING

from brandpy.images.fsutil import atomic_write_json
from brandpy.images.runconfig import strslice

from . import shimproto, timefmt
from .errors import EngineError
from .records import Record

if TYPE_CHECKING:     # the engine imports this module
    from .engine import Engine

HEALTH = "health.json"
STARTING, HEALTHY, UNHEALTHY = "starting", "healthy", "unhealthy"
DEFAULT_INTERVAL = DEFAULT_TIMEOUT = 30.0
DEFAULT_RETRIES = 3
MAX_LOG = 5             # results kept in State.Health.Log
MAX_OUTPUT = 4096       # bytes of a probe's output kept
KILL_GRACE = 5.0        # for a killed probe to report its end


def probe_argv(config: dict) -> list[str] | None:
    """The command a container's Healthcheck runs; None for none."""
    test = list((config.get("Healthcheck") or {}).get("Test") or [])
    if not test or test[0] == "NONE":
        return None
    if test[0] == "CMD":
        return test[1:] or None
    if test[0] == "CMD-SHELL":
        shell = strslice(config.get("Shell")) or ["/bin/sh", "-c"]
        return [*shell, " ".join(test[1:])]
    return None


def load(rec: Record) -> dict | None:
    try:
        return json.loads((rec.dir / HEALTH).read_text())
    except (FileNotFoundError, ValueError):
        return None


def _seconds(value: object, default: float) -> float:
    return int(value) / 1e9 if isinstance(value, int) and value > 0 else default


class Monitor:
    """One container run's probes, from its start to its stop."""

    def __init__(self, engine: Engine, rec: Record, argv: list[str]) -> None:
        self.engine, self.rec, self.argv = engine, rec, argv
        hc = rec.config.get("Healthcheck") or {}
        self.interval = _seconds(hc.get("Interval"), DEFAULT_INTERVAL)
        self.start_interval = _seconds(hc.get("StartInterval"), self.interval)
        self.timeout = _seconds(hc.get("Timeout"), DEFAULT_TIMEOUT)
        self.start_period = _seconds(hc.get("StartPeriod"), 0.0)
        retries = hc.get("Retries")
        self.retries = retries if isinstance(retries, int) and retries > 0 else DEFAULT_RETRIES
        self.started = time.monotonic()
        self.status, self.streak = STARTING, 0
        self.log: list[dict] = list((load(rec) or {}).get("Log") or [])
        self._save()
        self.task = asyncio.get_running_loop().create_task(self._run())

    @property
    def path(self) -> Path:
        return self.rec.dir / HEALTH

    def _save(self) -> None:
        with contextlib.suppress(FileNotFoundError):     # removed meanwhile
            atomic_write_json(self.path, {"Status": self.status, "FailingStreak": self.streak,
                                          "Log": self.log})

    def _in_start_period(self) -> bool:
        return time.monotonic() - self.started < self.start_period

    async def _run(self) -> None:
        while True:
            starting = self.status == STARTING and self._in_start_period()
            await asyncio.sleep(self.start_interval if starting else self.interval)
            if not self.rec.running:
                return
            if self.rec.state.get("Paused"):
                continue
            begun = timefmt.iso()
            in_start_period = self._in_start_period()
            code, output = await self._probe()
            if not self.rec.running:
                return
            self._record({"Start": begun, "End": timefmt.iso(), "ExitCode": code,
                          "Output": output}, in_start_period)

    async def _probe(self) -> tuple[int, str]:
        """(exit status, output) of one run of the command; -1 with
        dockerd's messages when it could not run or ran too long."""
        shim = self.rec.shim
        if shim is None:
            return -1, "the container is not running"
        probe_id = secrets.token_hex(32)
        try:
            _, reader, writer = await shim.connect(
                "exec", id=probe_id, argv=self.argv, env=[], workdir="", user="", tty=False,
                stdin=False, stdout=True, stderr=True, detach=False, console_size=None)
        except EngineError as exc:
            return getattr(exc, "exit_code", -1), str(exc)[:MAX_OUTPUT]
        output = bytearray()

        async def collect() -> int:
            status = -1
            while (fr := await shimproto.read_frame(reader)) is not None:
                stream, data = fr
                if stream == shimproto.CONTROL:
                    status = int(json.loads(data).get("exit", -1))
                elif len(output) < MAX_OUTPUT:
                    output.extend(data[:MAX_OUTPUT - len(output)])
            return status

        collecting = asyncio.ensure_future(collect())
        try:
            status = await asyncio.wait_for(asyncio.shield(collecting), self.timeout)
        except TimeoutError:
            with contextlib.suppress(EngineError):
                await shim.request("kill_exec", exec=probe_id)
            with contextlib.suppress(TimeoutError, ConnectionError, asyncio.IncompleteReadError):
                await asyncio.wait_for(collecting, KILL_GRACE)
            return -1, f"Health check exceeded timeout ({self.timeout:g}s)"
        except (ConnectionError, asyncio.IncompleteReadError):
            return -1, "the container's shim went away during the health check"
        finally:
            collecting.cancel()
            writer.close()
        return status, output.decode(errors="replace")

    def _record(self, result: dict, in_start_period: bool) -> None:
        self.log = [*self.log, result][-MAX_LOG:]
        old = self.status
        if result["ExitCode"] == 0:
            self.streak, self.status = 0, HEALTHY
        elif not (old == STARTING and in_start_period):
            self.streak += 1
            if self.streak >= self.retries:
                self.status = UNHEALTHY
        self._save()
        if self.status != old:
            self.engine.container_event(self.rec, f"health_status: {self.status}")

    def stop(self) -> None:
        """The container stopped: no more probes, and unhealthy."""
        self.task.cancel()
        if self.status != UNHEALTHY:
            self.status = UNHEALTHY
            self._save()
