"""Dockerfile instructions applied to an image config (`docker import
--change`, `docker commit --change`): CMD, ENTRYPOINT, ENV, EXPOSE, LABEL,
USER, VOLUME, WORKDIR, STOPSIGNAL, HEALTHCHECK, ONBUILD."""
from __future__ import annotations

import json
import posixpath
import re
import shlex

ALLOWED = ("CMD", "ENTRYPOINT", "ENV", "EXPOSE", "HEALTHCHECK", "LABEL", "ONBUILD",
           "STOPSIGNAL", "USER", "VOLUME", "WORKDIR")


class ChangeError(ValueError):
    pass


def json_array(rest: str) -> list[str] | None:
    """The exec form: a JSON array of strings, else None."""
    if rest.startswith("["):
        try:
            value = json.loads(rest)
        except ValueError:
            return None
        if isinstance(value, list) and all(isinstance(x, str) for x in value):
            return value
    return None


def _exec_or_shell(rest: str) -> list[str]:
    """JSON array (exec form), else shell form run by /bin/sh -c."""
    value = json_array(rest)
    return value if value is not None else ["/bin/sh", "-c", rest]


def _pairs(rest: str, what: str) -> list[tuple[str, str]]:
    """`k=v k2="v 2"`, or the legacy single `k value with spaces`."""
    words = shlex.split(rest)
    if not words:
        raise ChangeError(f"{what} requires at least one argument")
    if "=" not in words[0]:
        key, _, value = rest.strip().partition(" ")
        if not value.strip():
            raise ChangeError(f"{what} {key} needs a value: use {what} {key}=VALUE")
        return [(key, value.strip())]
    out = []
    for w in words:
        key, eq, value = w.partition("=")
        if not eq or not key:
            raise ChangeError(f"{what}: {w!r} is not KEY=VALUE")
        out.append((key, value))
    return out


_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_UNITS = {"ns": 1, "us": 1e3, "µs": 1e3, "ms": 1e6, "s": 1e9, "m": 60e9, "h": 3600e9}


def _duration_ns(text: str) -> int:
    parts = _DURATION.findall(text)
    if not parts or "".join(a + b for a, b in parts) != text:
        raise ChangeError(f"invalid duration {text!r} (e.g. 30s, 1m30s)")
    return int(sum(float(n) * _UNITS[u] for n, u in parts))


def _healthcheck(rest: str) -> dict:
    words = rest.split()
    opts: dict[str, str] = {}
    while words and words[0].startswith("--"):
        key, _, value = words.pop(0)[2:].partition("=")
        opts[key] = value
    if not words:
        raise ChangeError("HEALTHCHECK needs CMD … or NONE")
    kind = words[0].upper()
    if kind == "NONE":
        return {"Test": ["NONE"]}
    if kind != "CMD":
        raise ChangeError(f"HEALTHCHECK: unknown type {words[0]!r}, expected CMD or NONE")
    if len(words) < 2:
        raise ChangeError("HEALTHCHECK CMD needs a command")
    cmd = rest.split(None, len(opts) + 1)[-1]
    exec_form = json_array(cmd)
    hc: dict = {"Test": ["CMD", *exec_form] if exec_form is not None else ["CMD-SHELL", cmd]}
    names = {"interval": "Interval", "timeout": "Timeout", "start-period": "StartPeriod",
             "start-interval": "StartInterval"}
    for key, value in opts.items():
        if key in names:
            hc[names[key]] = _duration_ns(value)
        elif key == "retries":
            hc["Retries"] = int(value)
        else:
            raise ChangeError(f"HEALTHCHECK: unknown option --{key}")
    return hc


def apply(config: dict, line: str, allowed: tuple[str, ...] = ALLOWED) -> None:
    """Apply one instruction to the `config` part of an image config (Env, Cmd…)."""
    instr, _, rest = line.strip().partition(" ")
    instr, rest = instr.upper(), rest.strip()
    if instr not in allowed:
        raise ChangeError(f"{instr} is not a valid change instruction here; use one of {', '.join(allowed)}")
    if not rest:
        raise ChangeError(f"{instr} requires an argument")
    if instr == "CMD":
        config["Cmd"] = _exec_or_shell(rest)
    elif instr == "ENTRYPOINT":
        config["Entrypoint"] = _exec_or_shell(rest)
        # As in a Dockerfile, a new ENTRYPOINT resets an inherited CMD.
        config.pop("Cmd", None)
    elif instr == "ENV":
        env = list(config.get("Env") or [])
        for key, value in _pairs(rest, "ENV"):
            env = [e for e in env if e.partition("=")[0] != key] + [f"{key}={value}"]
        config["Env"] = env
    elif instr == "LABEL":
        labels = dict(config.get("Labels") or {})
        labels.update(_pairs(rest, "LABEL"))
        config["Labels"] = labels
    elif instr == "EXPOSE":
        ports = dict(config.get("ExposedPorts") or {})
        for p in rest.split():
            port, _, proto = p.partition("/")
            if not re.fullmatch(r"\d+(-\d+)?", port) or proto not in ("", "tcp", "udp", "sctp"):
                raise ChangeError(f"EXPOSE: invalid port {p!r} (e.g. 80, 53/udp)")
            ports[f"{port}/{proto or 'tcp'}"] = {}
        config["ExposedPorts"] = ports
    elif instr == "VOLUME":
        vols = dict(config.get("Volumes") or {})
        paths = json.loads(rest) if rest.startswith("[") else rest.split()
        for v in paths:
            vols[v] = {}
        config["Volumes"] = vols
    elif instr == "USER":
        config["User"] = rest
    elif instr == "WORKDIR":
        config["WorkingDir"] = posixpath.normpath(posixpath.join(config.get("WorkingDir") or "/", rest))
    elif instr == "STOPSIGNAL":
        config["StopSignal"] = rest
    elif instr == "HEALTHCHECK":
        config["Healthcheck"] = _healthcheck(rest)
    elif instr == "ONBUILD":
        config["OnBuild"] = [*(config.get("OnBuild") or []), rest]
