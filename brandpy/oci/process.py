"""An OCI `process` object (config.json's, or `exec --process`'s) read into
what brandpy applies: command, environment, working directory, identity,
terminal, capabilities, rlimits and OOM score; and what it does not, as
notes that create logs."""

from __future__ import annotations

import resource
from dataclasses import dataclass, field
from typing import Any

from .errors import OciError

Note = tuple[str, str]   # (log level, message)


@dataclass
class Rlimit:
    type: str            # RLIMIT_NOFILE...
    soft: int
    hard: int

    @property
    def resource(self) -> int:
        return getattr(resource, self.type)


@dataclass
class ProcessPlan:
    argv: list[str]
    env: list[str] = field(default_factory=list)
    cwd: str = "/"
    uid: int = 0
    gid: int = 0
    additional_gids: list[int] = field(default_factory=list)
    terminal: bool = False
    console_size: list[int] | None = None      # [height, width]
    caps: list[str] | None = None              # None: not given (runc keeps them all)
    rlimits: list[Rlimit] = field(default_factory=list)
    oom_score_adj: int | None = None

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ProcessPlan:
        return cls(**{**data, "rlimits": [Rlimit(**r) for r in data.get("rlimits", [])]})


def _get(obj: dict[str, Any], key: str, kind: type | tuple[type, ...], where: str,
         default: Any = None) -> Any:
    value = obj.get(key, default)
    if value is None or isinstance(value, kind) and not (kind is int and isinstance(value, bool)):
        return value
    names = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
    raise OciError(f"{where}.{key} must be a {names}, not {type(value).__name__}: fix config.json")


def _strings(obj: dict[str, Any], key: str, where: str) -> list[str]:
    value = _get(obj, key, list, where) or []
    if not all(isinstance(v, str) for v in value):
        raise OciError(f"{where}.{key} must be a list of strings: fix config.json")
    return value


def parse_process(obj: Any, where: str = "process") -> tuple[ProcessPlan, list[Note]]:
    from brandpy.runtime.policy import ALL_CAPS

    if not isinstance(obj, dict):
        raise OciError(f"{where} must be an object: config.json needs a process to run")
    notes: list[Note] = []
    argv = _strings(obj, "args", where)
    if not argv:
        raise OciError(f"{where}.args is empty: give the command to run")
    if obj.get("commandLine"):
        raise OciError(f"{where}.commandLine is for Windows: use {where}.args")
    cwd = _get(obj, "cwd", str, where, "/") or "/"
    if not cwd.startswith("/"):
        raise OciError(f"{where}.cwd {cwd!r} must be an absolute path")
    user = _get(obj, "user", dict, where, {}) or {}
    uid = _get(user, "uid", int, where + ".user", 0)
    gid = _get(user, "gid", int, where + ".user", 0)
    extra = _get(user, "additionalGids", list, where + ".user", []) or []
    if not all(isinstance(g, int) for g in extra):
        raise OciError(f"{where}.user.additionalGids must be a list of integers")
    if user.get("umask") is not None:
        notes.append(("warning", f"{where}.user.umask {user['umask']:o} not applied: processes "
                      "start with the runtime's umask"))
    caps = None
    cap_sets = _get(obj, "capabilities", dict, where)
    if cap_sets is not None:
        chosen = next((k for k in ("effective", "permitted", "bounding") if k in cap_sets), None)
        caps = _strings(cap_sets, chosen, where + ".capabilities") if chosen else []
        unknown = sorted(set(caps) - ALL_CAPS)
        if unknown:
            raise OciError(f"{where}.capabilities: unknown capabilities {', '.join(unknown)}")
        others = {k: set(v) for k, v in cap_sets.items() if k not in ("ambient", chosen) and v}
        if any(s != set(caps) for s in others.values()):
            notes.append(("info", f"{where}.capabilities: brandpy gives one set (the "
                          f"{chosen} set); the other sets are not applied separately"))
        if cap_sets.get("ambient") and uid != 0:
            notes.append(("warning", f"{where}.capabilities.ambient not applied: a non-root "
                          "user starts without capabilities"))
    rlimits = []
    for r in _get(obj, "rlimits", list, where, []) or []:
        kind = r.get("type") if isinstance(r, dict) else None
        if not isinstance(kind, str) or not kind.startswith("RLIMIT_") \
                or not hasattr(resource, kind):
            raise OciError(f"{where}.rlimits: unknown type {kind!r}")
        soft, hard = r.get("soft"), r.get("hard")
        if not isinstance(soft, int) or not isinstance(hard, int) or soft > hard:
            raise OciError(f"{where}.rlimits {kind}: soft and hard must be integers, soft <= hard")
        rlimits.append(Rlimit(kind, soft, hard))
    size = _get(obj, "consoleSize", dict, where)
    console_size = [int(size.get("height", 0)), int(size.get("width", 0))] if size else None
    if obj.get("noNewPrivileges") is False:
        notes.append(("info", f"{where}.noNewPrivileges=false applies to emulated identities "
                      "only: with real ones (brandpy as root) its seccomp filter needs "
                      "no_new_privs, so setuid programs do not gain privileges"))
    for key, what in (("apparmorProfile", "AppArmor profile"), ("selinuxLabel", "SELinux label")):
        if obj.get(key):
            notes.append(("info", f"{where}.{key} not applied: brandpy loads no {what}s"))
    for key in ("scheduler", "ioPriority", "execCPUAffinity"):
        if obj.get(key):
            notes.append(("warning", f"{where}.{key} not applied by brandpy"))
    plan = ProcessPlan(
        argv=argv, env=_strings(obj, "env", where), cwd=cwd, uid=uid, gid=gid,
        additional_gids=extra, terminal=bool(_get(obj, "terminal", bool, where, False)),
        console_size=console_size, caps=caps, rlimits=rlimits,
        oom_score_adj=_get(obj, "oomScoreAdj", int, where))
    return plan, notes
