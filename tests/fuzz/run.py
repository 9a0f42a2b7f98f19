"""Property-based fuzzing of the whole Engine API (`make fuzz`).

schemathesis generates requests for every operation of Docker's Engine API
v1.50 document (engine-api-v1.50.yaml, vendored from moby under its Apache
2.0 licence), valid ones and invalid ones, a bounded number of examples per
operation and mode, from a seed. They go to a brandpy daemon in a network
namespace with only loopback (random image names, registries and build
contexts reach nothing and wait for no DNS), run as uid 65534 or as root,
with a throw-away data root and a canary directory beside it. The run fails
on:

- a 5xx other than the 501s README.md lists and the swarm endpoints' 503
  (dockerd's answer while swarm is off);
- a traceback in the daemon's log: a bug, whatever the client saw;
- the daemon exiting, not answering GET /_ping after a request, or not
  answering a request in REQUEST_TIMEOUT seconds;
- any change outside the data root: the canary tree, the work directory's
  entries, the entries of /.

Streaming and hijacked operations (events, logs, stats, wait, attach, exec
start), and stop and restart asked to wait longer than REQUEST_TIMEOUT, are
cut after STREAM_SECONDS: that is not the daemon failing.
Bind-mount sources (HostConfig.Binds, Mounts with a Source) are the
client's authority to write on the host, as with dockerd; the run points
them into binds/ of the work directory, so that any other write outside the
data root is an escape.

Run as root inside a network namespace of its own, as `make fuzz` does:

    unshare --net python -m tests.fuzz.run --user nobody --examples 30 --seed 1
"""

from __future__ import annotations

import argparse
import collections
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis.configuration import set_hypothesis_home_dir
from hypothesis.errors import Unsatisfiable

from tests.api.conftest import Daemon
from tests.conftest import NOBODY, SETPRIV, readable_source
from tests.not_implemented import is_documented

SPEC = Path(__file__).with_name("engine-api-v1.50.yaml")
IMAGES = Path(os.environ.get("BRANDPY_TEST_IMAGES", "/var/cache/brandpy/images"))
PORT = 2375              # the namespace's own loopback: no other listener
REQUEST_TIMEOUT = 60.0
STREAM_SECONDS = 2.0
PING_TIMEOUT = 10.0
# Operations whose answer is a stream that may never end (or a hijacked
# connection): cut after STREAM_SECONDS.
STREAMING = {"GET /events", "GET /containers/{id}/logs", "GET /containers/{id}/stats",
             "POST /containers/{id}/wait", "POST /containers/{id}/attach",
             "GET /containers/{id}/attach/ws", "POST /exec/{id}/start",
             "GET /services/{id}/logs", "GET /tasks/{id}/logs", "POST /session"}
# Operations that wait as long as they are asked to: stopping a container
# that ignores its stop signal waits `t` seconds (for ever when negative).
WAITS_FOR_T = {"POST /containers/{id}/stop", "POST /containers/{id}/restart"}
SWARM = ("/swarm", "/nodes", "/services", "/tasks", "/secrets", "/configs")


@dataclass
class Summary:
    user: str
    examples: int
    seed: int
    operations: int = 0
    requests: int = 0
    statuses: collections.Counter[int] = field(default_factory=collections.Counter)
    cut_streams: int = 0
    other_5xx: int = 0
    failures: list[str] = field(default_factory=list)
    outside_changes: list[str] = field(default_factory=list)
    daemon_alive: bool = True

    @property
    def server_errors(self) -> int:
        return sum(n for status, n in self.statuses.items() if status >= 500)

    def text(self) -> str:
        codes = ", ".join(f"{s} x{n}" for s, n in sorted(self.statuses.items()))
        lines = [
            f"fuzz as {self.user}: seed {self.seed}, {self.examples} examples per operation and "
            f"mode (positive, negative), {self.operations} operations, {self.requests} requests",
            f"  statuses: {codes}",
            f"  5xx: {self.server_errors} (" + ", ".join(
                f"{s} x{n}" for s, n in sorted(self.statuses.items()) if s >= 500)
            + f"); other than README's 501s and swarm's 503: {self.other_5xx}",
            f"  streams cut after {STREAM_SECONDS:g} s (not failures): {self.cut_streams}",
            f"  daemon alive and answering /_ping after every request: "
            f"{'yes' if self.daemon_alive else 'NO'}",
            "  outside the data root: " + ("unchanged" if not self.outside_changes
                                          else "; ".join(self.outside_changes)),
            f"  failures: {len(self.failures)}",
        ]
        return "\n".join(lines + [f"    {f}" for f in self.failures[:50]])


@schemathesis.serializer("application/x-tar")
def tar_body(ctx: Any, value: Any) -> bytes:
    """The document's tar uploads (build contexts, image archives, docker
    cp) are binary strings: sent as generated, so mostly not tars."""
    if isinstance(value, bytes):
        return value
    return value.encode() if isinstance(value, str) else json.dumps(value).encode()


# -- the daemon ---------------------------------------------------------------------------

class FuzzDaemon(Daemon):
    """The tests' daemon, also served on the namespace's loopback for
    schemathesis, as root or as uid 65534."""

    def __init__(self, work: Path, user: str) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST", "DOCKER_"))}
        if user == "nobody":
            source = readable_source(work)
            if source:
                env["PYTHONPATH"] = source
            env["HOME"] = str(work)
        super().__init__(root=work, env=env, user=SETPRIV if user == "nobody" else [],
                         args=["-H", f"tcp://127.0.0.1:{PORT}"], netns=False)   # under unshare --net
        self.url = f"http://127.0.0.1:{PORT}"
        self.log_seen = 0

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def ping(self) -> bool:
        try:
            r = requests.get(self.url + "/_ping", timeout=PING_TIMEOUT)
            return r.status_code == 200 and r.text == "OK"
        except requests.RequestException:
            return False

    def new_tracebacks(self) -> str:
        """What the log gained since the last call, if it holds a traceback."""
        data = self.log.read_bytes()
        text, self.log_seen = data[self.log_seen:].decode(errors="replace"), len(data)
        return text if "Traceback" in text else ""


def seed_objects(daemon: FuzzDaemon) -> None:
    """Something for the list and inspect operations to show: the busybox
    image (when the test images are built), a volume, a network and a
    container."""
    url = daemon.url + "/v1.50"
    tar = IMAGES / "busybox.tar"
    if tar.exists():
        with open(tar, "rb") as f:
            requests.post(url + "/images/create", params={"fromSrc": "-", "repo": "busybox",
                                                          "tag": "latest"}, data=f, timeout=120)
        requests.post(url + "/containers/create", params={"name": "fuzz"},
                      json={"Image": "busybox", "Cmd": ["sleep", "1000"]}, timeout=60)
    requests.post(url + "/volumes/create", json={"Name": "fuzzvol"}, timeout=60)
    requests.post(url + "/networks/create", json={"Name": "fuzznet"}, timeout=60)


# -- outside the data root ----------------------------------------------------------------

def make_canary(path: Path, owner: int) -> None:
    """Files the daemon's user could change if a name led it out of its root."""
    (path / "sub").mkdir(parents=True)
    (path / "file").write_text("canary\n")
    (path / "sub" / "volume.json").write_text('{"Name": "planted"}\n')
    (path / "link").symlink_to("/etc")
    for p in (path, path / "sub", path / "file", path / "sub" / "volume.json"):
        os.chown(p, owner, owner)
    os.lchown(path / "link", owner, owner)


def snapshot(work: Path) -> dict[str, Any]:
    canary = {}
    for dirpath, dirnames, filenames in os.walk(work / "canary"):
        for name in [".", *dirnames, *filenames]:
            full = os.path.join(dirpath, name)
            st = os.lstat(full)
            digest = (hashlib.sha256(Path(full).read_bytes()).hexdigest()
                      if os.path.isfile(full) and not os.path.islink(full) else "")
            canary[os.path.relpath(full, work)] = (st.st_mode, st.st_uid, st.st_gid, st.st_size,
                                                  st.st_mtime_ns, digest)
    return {"canary": canary, "work": sorted(os.listdir(work)), "/": sorted(os.listdir("/"))}


def compare(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    out = []
    for key in before:
        if before[key] != after[key]:
            if isinstance(before[key], dict):
                changed = sorted(k for k in set(before[key]) | set(after[key])
                                 if before[key].get(k) != after[key].get(k))
                out.append(f"{key} changed: {changed}")
            else:
                out.append(f"{key} entries changed: +{sorted(set(after[key]) - set(before[key]))} "
                           f"-{sorted(set(before[key]) - set(after[key]))}")
    return out


def confine_binds(body: Any, binds: Path) -> None:
    """Point absolute bind sources into binds/, each a single file name
    there whatever its bytes."""
    host_config = body.get("HostConfig") if isinstance(body, dict) else None
    if not isinstance(host_config, dict):
        return

    def redirect(source: str) -> str:
        return str(binds / quote(source, safe="")) if source.startswith("/") else source

    if isinstance(host_config.get("Binds"), list):
        host_config["Binds"] = [
            redirect(b.split(":", 1)[0]) + (":" + b.split(":", 1)[1] if ":" in b else "")
            if isinstance(b, str) else b for b in host_config["Binds"]]
    mounts = host_config.get("Mounts")
    for mount in mounts if isinstance(mounts, list) else []:
        if isinstance(mount, dict) and isinstance(mount.get("Source"), str):
            mount["Source"] = redirect(mount["Source"])


# -- the run ------------------------------------------------------------------------------

def allowed_5xx(label: str, status: int, query: dict[str, Any] | None) -> bool:
    """A 501 the README lists, or a swarm endpoint's 503."""
    method, path = label.split(" ", 1)
    if status == 501:
        return is_documented(method, path, {k: str(v) for k, v in (query or {}).items()})
    return status == 503 and path.startswith(SWARM)


def may_be_cut(label: str, query: dict[str, Any] | None) -> bool:
    """Whether the operation may rightly go on past REQUEST_TIMEOUT."""
    t = (query or {}).get("t")
    return label in STREAMING or (label in WAITS_FOR_T and isinstance(t, int)
                                  and not 0 <= t < REQUEST_TIMEOUT)


def send(kwargs: dict[str, Any], long: bool) -> tuple[int | None, str]:
    """The status (None: cut or not answered) and what happened; long:
    cut after STREAM_SECONDS."""
    deadline = STREAM_SECONDS if long else REQUEST_TIMEOUT
    kwargs = {**kwargs, "timeout": (10, deadline)}
    start = time.monotonic()
    with requests.Session() as session:
        try:
            with session.request(**kwargs, stream=True) as resp:
                if resp.status_code == 101:
                    return 101, ""
                body = b""
                for chunk in resp.iter_content(65536):
                    body += chunk[:4096 - len(body)]
                    if time.monotonic() - start > deadline:
                        return ((resp.status_code, "cut") if long
                                else (None, f"no complete answer in {deadline:g} s"))
                return resp.status_code, body[:300].decode(errors="replace")
        except requests.exceptions.ReadTimeout:
            return None, "cut" if long else f"no answer in {deadline:g} s"
        except requests.exceptions.ConnectionError as exc:
            if long and time.monotonic() - start >= deadline:
                return None, "cut"
            return None, f"connection failed: {exc}"


def generate(op: schemathesis.APIOperation, mode: schemathesis.GenerationMode, examples: int,
             seed_value: int) -> list[schemathesis.Case]:
    """Up to `examples` distinct cases of op, the same ones for a seed."""
    cases: list[schemathesis.Case] = []

    @settings(max_examples=examples, database=None, deadline=None,
              suppress_health_check=list(HealthCheck), phases=[Phase.generate], print_blob=False)
    @seed(seed_value)
    @given(case=op.as_strategy(generation_mode=mode))
    def collect(case: schemathesis.Case) -> None:
        cases.append(case)

    try:
        collect()
    except Unsatisfiable:
        pass    # nothing to make invalid in it (GET /_ping in negative mode)
    return cases


def fuzz(daemon: FuzzDaemon, summary: Summary, work: Path) -> None:
    schema = schemathesis.openapi.from_path(SPEC)
    operations = [op.ok() for op in schema.get_all_operations()]
    summary.operations = len(operations)
    for op in operations:
        for mode in (schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE):
            if not daemon.alive():
                return
            cases = generate(op, mode, summary.examples, summary.seed)
            for case in cases:
                confine_binds(case.body, work / "binds")
                kwargs = case.as_transport_kwargs(base_url=daemon.url + "/v1.50")
                long = may_be_cut(op.label, case.query)
                status, what = send(kwargs, long)
                summary.requests += 1
                where = f"{op.label} ({mode.value}) {kwargs['method']} {kwargs['url'][:200]}"
                if status is None and what == "cut" and long:
                    summary.cut_streams += 1
                elif status is None:
                    summary.failures.append(f"{where}: not answered: {what}")
                else:
                    summary.statuses[status] += 1
                    if status >= 500 and not allowed_5xx(op.label, status, case.query):
                        summary.other_5xx += 1
                        summary.failures.append(f"{where}: {status} {what}")
                if not daemon.alive() or not daemon.ping():
                    summary.daemon_alive = False
                    summary.failures.append(f"{where}: the daemon "
                                            f"{'exited' if not daemon.alive() else 'stopped answering /_ping'}")
                    return
            tracebacks = daemon.new_tracebacks()
            if tracebacks:
                summary.failures.append(f"{op.label} ({mode.value}): the daemon logged "
                                        f"{tracebacks[-3000:]}")


def only_loopback() -> None:
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    links = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True,
                           check=True).stdout.splitlines()
    if len(links) != 1 or ": lo:" not in links[0]:
        raise SystemExit("run under `unshare --net` (as root): the daemon must see only loopback, "
                         f"not {len(links)} links")


def run(user: str, examples: int, seed_value: int) -> Summary:
    only_loopback()
    summary = Summary(user, examples, seed_value)
    work = Path(tempfile.mkdtemp(prefix="bpf-", dir="/tmp"))
    daemon = FuzzDaemon(work, user)
    try:
        (work / "hypothesis").mkdir()
        set_hypothesis_home_dir(work / "hypothesis")    # its caches: not in the checkout
        owner = NOBODY if user == "nobody" else 0
        for p in (work, work / "data", work / "binds"):     # the daemon's socket, data, binds
            p.mkdir(exist_ok=True)
            os.chown(p, owner, owner)
        make_canary(work / "canary", owner)
        daemon.start()
        seed_objects(daemon)
        before = snapshot(work)
        fuzz(daemon, summary, work)
        summary.daemon_alive = summary.daemon_alive and daemon.alive() and daemon.ping()
        summary.outside_changes = compare(before, snapshot(work))
        tracebacks = daemon.new_tracebacks()
        if tracebacks:
            summary.failures.append(f"the daemon logged {tracebacks[-3000:]}")
    finally:
        daemon.destroy()
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--user", choices=("nobody", "root"), default="nobody")
    parser.add_argument("--examples", type=int, default=30, help="per operation and mode")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    summary = run(args.user, args.examples, args.seed)
    print(summary.text(), flush=True)
    ok = not summary.failures and not summary.outside_changes and summary.daemon_alive
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
