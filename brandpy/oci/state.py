"""A container's directory under `--root` and its OCI state.

`--root/<id>/` holds state.json (written atomically: readers never see a
torn file), plan.json (config.json as brandpy will run it, fixed at create),
the monitor's control socket, its log, the sandbox's scratch directory and
the final syscall statistics. The state's `pid` is the monitor's: it is the
process callers reap and signal (see monitor.py), and it exits with the
container's status.
"""

from __future__ import annotations

import json
import os
import pwd
import re
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .errors import NotExist, OciError

OCI_VERSION = "1.3.0"
DEFAULT_ROOT = "/run/brandpy-runc"
# runc's rule for container IDs
_ID = re.compile(r"^[\w+\-.]+$")

CREATING, CREATED, RUNNING, PAUSED, STOPPED = "creating", "created", "running", "paused", "stopped"
LIVE = (CREATED, RUNNING, PAUSED)


def check_id(cid: str) -> str:
    if not cid or not _ID.match(cid) or cid in (".", ".."):
        raise OciError(f"invalid container id {cid!r}: use letters, digits and _ + - . only")
    return cid


def now_rfc3339() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def start_time(pid: int) -> int | None:
    """A live (non-zombie) process's start time in clock ticks, which with
    its pid names it even after pids wrap; None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
    except (OSError, IndexError):
        return None
    if fields[0] in (b"Z", b"X"):
        return None
    return int(fields[19])


class ContainerDir:
    def __init__(self, root: str, cid: str) -> None:
        self.id = check_id(cid)
        self.path = Path(root) / cid
        self.state_file = self.path / "state.json"
        self.plan_file = self.path / "plan.json"
        self.socket = self.path / "monitor.sock"
        self.monitor_log = self.path / "monitor.log"
        self.sandbox_dir = self.path / "sandbox"
        self.stats_file = self.path / "stats.json"

    def exists(self) -> bool:
        return self.state_file.exists()

    def make(self) -> None:
        self.path.parent.mkdir(mode=0o711, parents=True, exist_ok=True)
        try:
            self.path.mkdir(mode=0o711)
        except FileExistsError:
            raise OciError(f"container with id {self.id} already exists: delete it first "
                           f"(brandpy-runc delete --force {self.id})") from None
        self.sandbox_dir.mkdir(mode=0o755)   # a non-root container user reads its views

    def remove(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)

    def read(self) -> dict[str, Any]:
        """The stored state (status as last recorded)."""
        try:
            state = json.loads(self.state_file.read_text())
        except FileNotFoundError:
            raise NotExist(self.id) from None
        except json.JSONDecodeError as exc:
            raise OciError(f"state of container {self.id} is corrupt ({exc}): remove it with "
                           f"brandpy-runc delete --force {self.id}") from None
        if not isinstance(state, dict) or "brandpy" not in state:
            # dockerd gives every runtime the same --root: this is runc's
            raise OciError(f"container {self.id} in {self.path.parent} belongs to another "
                           "runtime")
        return state

    def write(self, state: dict[str, Any]) -> None:
        atomic_write(self.state_file, json.dumps(state, indent=1).encode())

    def load(self) -> dict[str, Any]:
        """The state with its status made current: a container whose
        monitor is gone has stopped, whatever the file last said."""
        state = self.read()
        if (state["status"] in LIVE or state["status"] == CREATING and state["pid"]) \
                and not self.monitor_alive(state):
            state["status"] = STOPPED
        if state["status"] == STOPPED:
            state["pid"] = 0
        return state

    def monitor_alive(self, state: dict[str, Any]) -> bool:
        pid = state.get("pid") or 0
        return pid > 0 and start_time(pid) == state["brandpy"].get("monitorStart")


def new_state(cdir: ContainerDir, bundle: str, rootfs: str,
              annotations: dict[str, str]) -> dict[str, Any]:
    try:
        owner = pwd.getpwuid(os.geteuid()).pw_name
    except KeyError:
        owner = str(os.geteuid())
    return {"ociVersion": OCI_VERSION, "id": cdir.id, "status": CREATING, "pid": 0,
            "bundle": bundle, "rootfs": rootfs, "created": now_rfc3339(), "owner": owner,
            "annotations": annotations,
            "brandpy": {"monitorStart": None, "initPid": 0, "exitStatus": None}}


def oci_view(state: dict[str, Any]) -> dict[str, Any]:
    """The state as `state` prints it and hooks read it on stdin."""
    view = {k: state[k] for k in ("ociVersion", "id", "status", "pid", "bundle", "rootfs",
                                  "created", "owner")}
    if state.get("annotations"):
        view["annotations"] = state["annotations"]
    view["brandpy"] = {"initPid": state["brandpy"]["initPid"],
                       "exitStatus": state["brandpy"]["exitStatus"]}
    return view


def states(root: str) -> list[dict[str, Any]]:
    """The current state of every brandpy container under root."""
    try:
        names = sorted(os.listdir(root))
    except FileNotFoundError:
        return []
    found = []
    for name in names:
        if _ID.match(name):
            try:
                found.append(ContainerDir(root, name).load())
            except OciError:
                pass   # gone meanwhile, or another runtime's
    return found
