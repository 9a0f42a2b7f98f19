"""brandpyd's configuration in dockerd's daemon.json format, merged with
the command line as dockerd merges them: a setting given both as a flag
and in the file is an error, an option dockerd does not have is an error,
and so is a dockerd option brandpyd does not apply (rather than ignoring
it). The file is --config-file, else datadir.config_file() if present."""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from brandpy import datadir
from brandpy.engine import logdrivers, runtimes
from brandpy.engine.errors import InvalidParameter
from brandpy.engine.settings import Settings
from brandpy.images.endpoints import Registries, insecure_entry, mirror_url

# daemon.json key -> (Go type as dockerd's decoder names it, argparse dest)
SUPPORTED = {
    "hosts": ("[]string", "host"),
    "data-root": ("string", "data_root"),
    "registry-mirrors": ("[]string", "registry_mirror"),
    "insecure-registries": ("[]string", "insecure_registry"),
    "default-runtime": ("string", "default_runtime"),
    "log-driver": ("string", "log_driver"),
    "log-opts": ("map[string]string", "log_opt"),
    "labels": ("[]string", "label"),
}
# The rest of dockerd 20.10's daemon.json: known, not applied by brandpyd.
DOCKERD_ONLY = (
    "allow-nondistributable-artifacts", "api-cors-header", "authorization-plugins", "bip",
    "bridge", "builder", "cgroup-parent", "cluster-advertise", "cluster-store",
    "cluster-store-opts", "containerd", "containerd-namespace", "containerd-plugins-namespace",
    "cpu-rt-period", "cpu-rt-runtime", "debug", "default-address-pools", "default-cgroupns-mode",
    "default-gateway", "default-gateway-v6", "default-ipc-mode", "default-shm-size",
    "default-ulimits", "dns", "dns-opts", "dns-search", "exec-opts", "exec-root",
    "experimental", "features", "fixed-cidr", "fixed-cidr-v6", "group", "icc", "init",
    "init-path", "ip", "ip-forward", "ip-masq", "ip6tables", "iptables", "ipv6",
    "live-restore", "log-format", "log-level", "max-concurrent-downloads",
    "max-concurrent-uploads", "max-download-attempts", "mtu", "no-new-privileges",
    "node-generic-resources", "oom-score-adjust", "pidfile", "raw-logs", "runtimes",
    "seccomp-profile", "selinux-enabled", "shutdown-timeout", "storage-driver", "storage-opts",
    "swarm-default-advertise-addr", "tls", "tlscacert", "tlscert", "tlskey", "tlsverify",
    "userland-proxy", "userland-proxy-path", "userns-remap",
)


class ConfigError(Exception):
    pass


@dataclass(frozen=True)
class DaemonConfig:
    hosts: list[str]
    data_root: Path
    settings: Settings
    given: frozenset[str]     # the keys set by a flag or in the file


def _typed(key: str, value: Any, go: str) -> Any:
    ok = {"string": isinstance(value, str),
          "[]string": isinstance(value, list) and all(isinstance(v, str) for v in value),
          "map[string]string": isinstance(value, dict)
          and all(isinstance(v, str) for v in value.values())}[go]
    if not ok:
        raise ConfigError(f"json: cannot unmarshal {type(value).__name__} into Go struct field "
                          f"Config.{key} of type {go}")
    return value


def read_file(path: Path) -> dict[str, Any]:
    try:
        values = json.loads(path.read_text())
    except ValueError as exc:
        raise ConfigError(f"invalid JSON: {exc}") from None
    if not isinstance(values, dict):
        raise ConfigError("the configuration must be a JSON object")
    unknown = sorted(k for k in values if k not in SUPPORTED and k not in DOCKERD_ONLY)
    if unknown:
        raise ConfigError("the following directives don't match any configuration option: "
                          + ", ".join(unknown))
    unapplied = sorted(k for k in values if k in DOCKERD_ONLY)
    if unapplied:
        raise ConfigError(f"brandpyd does not apply these dockerd options: {', '.join(unapplied)}"
                          " (it applies " + ", ".join(SUPPORTED) + "); remove them")
    return {k: _typed(k, v, SUPPORTED[k][0]) for k, v in values.items()}


def _from_flags(args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, (_, dest) in SUPPORTED.items():
        value = getattr(args, dest, None)
        if value in (None, []):
            continue
        if key == "log-opts":
            pairs = [opt.partition("=") for opt in value]
            bad = [k for k, eq, _ in pairs if not eq]
            if bad:
                raise ConfigError(f"--log-opt {bad[0]}: use --log-opt KEY=VALUE")
            value = {k: v for k, _, v in pairs}
        out[key] = value
    return out


def resolve(args: argparse.Namespace) -> DaemonConfig:
    """The flags and the configuration file, merged and checked."""
    path = Path(args.config_file) if args.config_file else datadir.config_file()
    flags = _from_flags(args)
    values = dict(flags)
    if args.config_file or path.exists():
        try:
            from_file = read_file(path)
        except (OSError, ConfigError) as exc:
            raise ConfigError(f"unable to configure the daemon with file {path}: {exc}") from None
        both = [f"{k}: (from flag: {_go(flags[k])}, from file: {_go(from_file[k])})"
                for k in SUPPORTED if k in flags and k in from_file]
        if both:
            raise ConfigError(f"unable to configure the daemon with file {path}: the following "
                              "directives are specified both as a flag and in the "
                              "configuration file: " + ", ".join(both))
        values.update(from_file)
    try:
        registries = Registries(tuple(mirror_url(m) for m in values.get("registry-mirrors", [])),
                                tuple(insecure_entry(h) for h in
                                      values.get("insecure-registries", [])))
        default_runtime = values.get("default-runtime", runtimes.DEFAULT_RUNTIME)
        if default_runtime not in runtimes.RUNTIMES:
            raise ConfigError(f"specified default runtime '{default_runtime}' does not exist "
                              f"(brandpyd's runtimes: {', '.join(runtimes.RUNTIMES)})")
        log_driver = values.get("log-driver", logdrivers.DEFAULT_DRIVER)
        log_opts = values.get("log-opts", {})
        logdrivers.check(log_driver, log_opts)
        labels = _labels(values.get("labels", []))
    except (ValueError, InvalidParameter) as exc:
        raise ConfigError(str(exc)) from None
    root = values.get("data-root")
    return DaemonConfig(list(values.get("hosts", [])),
                        Path(root).absolute() if root else datadir.data_root(),
                        Settings(registries, default_runtime, log_driver, dict(log_opts), labels),
                        frozenset(values))


def _labels(given: list[str]) -> tuple[str, ...]:
    """KEY=VALUE labels without repeats; a key given two values is an
    error, as in dockerd."""
    seen: dict[str, str] = {}
    for label in given:
        key, eq, value = label.partition("=")
        if not eq:
            raise ValueError(f"bad attribute format: {label} (give labels as KEY=VALUE)")
        if seen.get(key, value) != value:
            raise ValueError(f"conflict labels for {key}={value} and {key}={seen[key]}")
        seen[key] = value
    return tuple(f"{k}={v}" for k, v in seen.items())


def reloaded(current: Settings, new: DaemonConfig) -> Settings:
    """The settings after a reload (SIGHUP), as dockerd reloads them: the
    mirrors, insecure registries, default runtime and labels that new sets;
    a key set neither in the file nor as a flag keeps its value."""
    changes: dict[str, Any] = {}
    registries = current.registries
    if "registry-mirrors" in new.given:
        registries = replace(registries, mirrors=new.settings.registries.mirrors)
    if "insecure-registries" in new.given:
        registries = replace(registries, insecure=new.settings.registries.insecure)
    changes["registries"] = registries
    if "default-runtime" in new.given:
        changes["default_runtime"] = new.settings.default_runtime
    if "labels" in new.given:
        changes["labels"] = new.settings.labels
    return replace(current, **changes)


def not_reloaded(started: DaemonConfig, new: DaemonConfig) -> list[str]:
    """The keys whose new values wait for the next start."""
    was, now = started.settings, new.settings
    return [key for key, changed in (("hosts", started.hosts != new.hosts),
                                     ("data-root", started.data_root != new.data_root),
                                     ("log-driver", was.log_driver != now.log_driver),
                                     ("log-opts", was.log_opts != now.log_opts)) if changed]


def _go(value: Any) -> str:
    """A value as dockerd's %v prints it."""
    if isinstance(value, list):
        return "[" + " ".join(value) + "]"
    if isinstance(value, dict):
        return "map[" + " ".join(f"{k}:{v}" for k, v in sorted(value.items())) + "]"
    return str(value)


def arguments(p: argparse.ArgumentParser) -> None:
    """dockerd's flags for the settings above (-H and --data-root are the
    daemon's own)."""
    p.add_argument("--config-file", metavar="FILE",
                   help="daemon configuration in dockerd's daemon.json format (default: "
                   "/etc/brandpy/daemon.json for root, $XDG_CONFIG_HOME/brandpy/daemon.json "
                   "otherwise, when present)")
    p.add_argument("--registry-mirror", action="append", default=[], metavar="URL",
                   help="a registry mirror tried first for Docker Hub pulls (repeatable)")
    p.add_argument("--insecure-registry", action="append", default=[], metavar="HOST|CIDR",
                   help="a registry reached without TLS verification, or plain HTTP "
                   "(repeatable; loopback registries always are)")
    p.add_argument("--default-runtime", metavar="NAME",
                   help="the runtime of containers that name none: brandpy (native engine, "
                   "default) or brandpy-python")
    p.add_argument("--log-driver", metavar="NAME",
                   help="the default log driver: json-file (default), local or none")
    p.add_argument("--log-opt", action="append", default=[], metavar="KEY=VALUE",
                   help="default log driver options: max-size, max-file, compress (repeatable)")
    p.add_argument("--label", action="append", default=[], metavar="KEY=VALUE",
                   help="a label of the daemon, shown by docker info (repeatable)")
