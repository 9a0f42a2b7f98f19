"""Policy: what a container may do, as Docker decides it: its capability
set and its seccomp profile (Docker's own format, Docker's default profile
unless told otherwise), plus the kernel personality (a release whose newer
syscalls get ENOSYS).

The profile is compiled per syscall into `Rule`s that the effective table
(syscalls/effective.py) combines with brandpy's own table.
"""

from __future__ import annotations

import errno
import functools
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .seccomp import Action, ArgTest

DOCKER_DEFAULT_PROFILE = Path(__file__).resolve().parents[2] / "syscalls" / "docker-default.json"

# moby oci/caps/defaults.go: what a default `docker run` container gets.
DEFAULT_CAPS = frozenset({
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
    "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE"})

# include/uapi/linux/capability.h
CAP_NUMBERS = {name: i for i, name in enumerate((
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID",
    "CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW",
    "CAP_IPC_LOCK", "CAP_IPC_OWNER", "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE", "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE",
    "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ",
    "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE"))}
ALL_CAPS = frozenset(CAP_NUMBERS)


def cap_mask(caps: frozenset[str]) -> int:
    return sum(1 << CAP_NUMBERS[c] for c in caps)


class PolicyError(ValueError):
    """A bad --cap-add/--cap-drop or seccomp profile; the message says which."""


def cap_name(name: str) -> str:
    name = name.strip().upper()
    if name == "ALL":
        return name
    if not name.startswith("CAP_"):
        name = "CAP_" + name
    if name not in ALL_CAPS:
        raise PolicyError(f"unknown capability {name!r}")
    return name


def capabilities(add: list[str], drop: list[str]) -> frozenset[str]:
    """Docker's rule: start from the default set, drop, then add (ALL works
    for both)."""
    caps = set(DEFAULT_CAPS)
    dropped = {cap_name(c) for c in drop}
    added = {cap_name(c) for c in add}
    caps = set() if "ALL" in dropped else caps - dropped
    caps |= ALL_CAPS if "ALL" in added else added
    return frozenset(caps)


@dataclass(frozen=True)
class Cond:
    """One Docker argument condition (libseccomp semantics)."""
    index: int
    op: str            # SCMP_CMP_NE|LT|LE|EQ|GE|GT|MASKED_EQ
    value: int
    value_two: int = 0


@dataclass(frozen=True)
class Rule:
    """The profile's decision for one syscall: `allow` when any of `when`
    (a disjunction of conjunctions) holds, else fail with `errno`. An
    unconditional allow has when=((),); an unconditional errno has when=()."""
    when: tuple[tuple[Cond, ...], ...]
    errno: int

    @property
    def always(self) -> bool:
        return () in self.when

    @property
    def never(self) -> bool:
        return not self.when

    def action(self, allowed: Action, denied: Action) -> Action:
        """A BPF action: `allowed` under the rule's conditions, else `denied`."""
        if self.always:
            return allowed
        out = denied
        for conj in reversed(self.when):
            test = allowed
            for cond in reversed(conj):
                test = _cond(cond, test, out)
            out = test
        return out


def _cond(c: Cond, then: Action, other: Action) -> Action:
    v = c.value & 0xFFFFFFFF
    if c.op == "SCMP_CMP_EQ":
        return ArgTest(c.index, "eq", v, then, other)
    if c.op == "SCMP_CMP_NE":
        return ArgTest(c.index, "eq", v, other, then)
    if c.op == "SCMP_CMP_GE":
        return ArgTest(c.index, "ge", v, then, other)
    if c.op == "SCMP_CMP_GT":
        return ArgTest(c.index, "gt", v, then, other)
    if c.op == "SCMP_CMP_LT":
        return ArgTest(c.index, "ge", v, other, then)
    if c.op == "SCMP_CMP_LE":
        return ArgTest(c.index, "gt", v, other, then)
    if c.op == "SCMP_CMP_MASKED_EQ":
        return ArgTest(c.index, "eq", c.value_two & 0xFFFFFFFF, then, other, mask=v)
    raise PolicyError(f"unsupported seccomp argument operator {c.op}")


@dataclass(frozen=True)
class Profile:
    """A seccomp profile in Docker's JSON format, for amd64."""
    default_errno: int | None           # None: SCMP_ACT_ALLOW by default
    rules: dict[str, Rule] = field(default_factory=dict)

    def rule(self, name: str) -> Rule:
        if name in self.rules:
            return self.rules[name]
        if self.default_errno is None:
            return Rule(when=((),), errno=0)
        return Rule(when=(), errno=self.default_errno)


ACTIONS_ALLOW = {"SCMP_ACT_ALLOW", "SCMP_ACT_LOG"}
ACTIONS_ERRNO = {"SCMP_ACT_ERRNO", "SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS",
                 "SCMP_ACT_KILL_THREAD", "SCMP_ACT_TRAP"}


def _applies(filter_: dict[str, Any] | None, caps: frozenset[str], include: bool) -> bool:
    if not filter_:
        return True
    hits = []
    if filter_.get("caps"):
        hits.append(any(c in caps for c in filter_["caps"]))
    if filter_.get("arches"):
        hits.append(any(a in ("amd64", "x86_64") for a in filter_["arches"]))
    if filter_.get("minKernel"):
        hits.append(True)   # brandpy needs Linux 5.x; Docker's minKernel rules are older
    if not hits:
        return True
    return all(hits) if include else not any(hits)


def load_profile(text: str, caps: frozenset[str]) -> Profile:
    """Parse Docker's seccomp profile format; raises PolicyError with the
    offending part."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise PolicyError(f"seccomp profile is not valid JSON: {exc}") from None
    default = data.get("defaultAction")
    if default in ACTIONS_ALLOW:
        default_errno = None
    elif default in ACTIONS_ERRNO:
        default_errno = int(data.get("defaultErrnoRet", errno.EPERM))
    else:
        raise PolicyError(f"seccomp profile: unsupported defaultAction {default!r}")
    allows: dict[str, list[tuple[Cond, ...]]] = {}
    errnos: dict[str, int] = {}
    for entry in data.get("syscalls", []):
        if not (_applies(entry.get("includes"), caps, True)
                and _applies(entry.get("excludes"), caps, False)):
            continue
        names = entry.get("names") or ([entry["name"]] if "name" in entry else [])
        action = entry.get("action")
        conds = tuple(Cond(a["index"], a["op"], int(a.get("value", 0)), int(a.get("valueTwo", 0)))
                      for a in entry.get("args") or [])
        for name in names:
            if action in ACTIONS_ALLOW:
                allows.setdefault(name, []).append(conds)
            elif action in ACTIONS_ERRNO:
                if not conds:
                    errnos[name] = int(entry.get("errnoRet", default_errno or errno.EPERM))
            else:
                raise PolicyError(f"seccomp profile: unsupported action {action!r} for {name}")
    rules: dict[str, Rule] = {}
    fail = default_errno if default_errno is not None else errno.EPERM
    for name in set(allows) | set(errnos):
        when = tuple(allows.get(name, []))
        if name in errnos and not any(c == () for c in when):
            rules[name] = Rule(when=when, errno=errnos[name])
        elif when:
            rules[name] = Rule(when=((),) if () in when else when, errno=fail)
    return Profile(default_errno=default_errno, rules=rules)


@functools.lru_cache(maxsize=8)
def docker_default(caps: frozenset[str]) -> Profile:
    """Docker's default profile for these capabilities, parsed once per
    process (a zygote's supervisors share its parse; a Profile is frozen)."""
    return load_profile(DOCKER_DEFAULT_PROFILE.read_text(), caps)


def profile_for(spec: str, caps: frozenset[str]) -> Profile | None:
    """`--security-opt seccomp=...`: "" or "default" for Docker's default,
    "unconfined" for none, else a file in Docker's format."""
    if spec == "unconfined":
        return None
    if spec in ("", "default", "builtin"):
        return docker_default(caps)
    try:
        text = Path(spec).read_text()
    except OSError as exc:
        raise PolicyError(f"seccomp profile {spec}: {exc.strerror}") from None
    return load_profile(text, caps)
