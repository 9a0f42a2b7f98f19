"""Request bodies decoded as dockerd's Go JSON decoder decodes them into
its structs, in one place for every body:

- a struct's field names match case-insensitively (an exact match is
  preferred), so docker-py's `detachKeys` is ExecConfig.DetachKeys; the
  keys of maps (Labels, Options...) stay as sent;
- when two keys name the same field, the later one in the document wins;
- a wrong type is a 400 with the decoder's message (`json: cannot
  unmarshal string into Go struct field Config.Env of type []string`),
  never a 500 later;
- unknown fields are ignored (kept as sent), as Docker ignores them.

A schema is {field: kind}, where a kind is a Go type name below, a nested
schema (a struct), or ListOf/MapOf a schema."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from .errors import InvalidParameter

# Type names as Go prints them.
STR, BOOL, INT, NUM = "string", "bool", "int64", "float64"
STRS, INTS = "[]string", "[]int"
OBJ, STRMAP = "map[string]interface {}", "map[string]string"
STRSLICE = "strslice.StrSlice"     # a string or a list of strings (Cmd, Entrypoint)
LIST = "[]interface {}"


@dataclass(frozen=True)
class ListOf:
    item: Kind
    go: str            # the Go type, for errors: "[]mount.Mount"


@dataclass(frozen=True)
class MapOf:
    value: Kind
    go: str


Kind = str | dict[str, Any] | ListOf | MapOf

_JSON_KIND = {str: "string", bool: "bool", int: "number", float: "number", list: "array",
              dict: "object"}


class _Pairs(list[tuple[str, Any]]):
    """A JSON object as decoded: its members in document order, so that
    folding can let the later of two keys for one field win."""


def loads(raw: bytes | str) -> Any:
    """JSON text to Python, objects kept as _Pairs for check()."""
    return json.loads(raw, object_pairs_hook=_Pairs)


def _members(obj: Any) -> list[tuple[str, Any]] | None:
    if isinstance(obj, _Pairs):
        return obj
    if isinstance(obj, dict):
        return list(obj.items())
    return None


def plain(value: Any) -> Any:
    """A decoded value with its objects as dicts (map keys as sent)."""
    members = _members(value)
    if members is not None:
        return {k: plain(v) for k, v in members}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


def _ok(value: Any, kind: str) -> bool:
    if value is None:
        return True
    if kind == STR:
        return isinstance(value, str)
    if kind == BOOL:
        return isinstance(value, bool)
    if kind == INT:
        return isinstance(value, int) and not isinstance(value, bool) or (
            isinstance(value, float) and value.is_integer())
    if kind == NUM:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind == STRS:
        return isinstance(value, list) and all(isinstance(x, str) for x in value)
    if kind == INTS:
        return isinstance(value, list) and all(isinstance(x, int) and not isinstance(x, bool)
                                               for x in value)
    if kind == STRSLICE:
        return isinstance(value, str) or _ok(value, STRS)
    if kind == OBJ:
        return _members(value) is not None
    if kind == STRMAP:
        members = _members(value)
        return members is not None and all(isinstance(v, str) for _, v in members)
    if kind == LIST:
        return isinstance(value, list)
    raise AssertionError(kind)


def check(obj: Any, schema: dict[str, Any], where: str) -> dict:
    """obj decoded into schema: a dict with the schema's field names
    ({} for null); 400 for what Go's decoder refuses."""
    if obj is None:
        return {}
    members = _members(obj)
    if members is None:
        raise InvalidParameter(f"json: cannot unmarshal {_kind(obj)} into Go value of type "
                               f"{where}")
    folded = {name.casefold(): name for name in reversed(list(schema))}
    out: dict[str, Any] = {}
    for key, value in members:
        out[key if key in schema else folded.get(key.casefold(), key)] = value
    for name, value in out.items():
        kind = schema.get(name)
        out[name] = plain(value) if kind is None else _decode(value, kind, f"{where}.{name}")
    return out


def _decode(value: Any, kind: Kind, field: str) -> Any:
    if value is None:
        return None
    if isinstance(kind, dict):
        if _members(value) is None:
            raise _mismatch(value, field, "struct")
        return check(value, kind, field)
    if isinstance(kind, (ListOf, MapOf)):
        if isinstance(kind, ListOf) and not isinstance(value, list):
            raise _mismatch(value, field, kind.go)
        if isinstance(kind, ListOf):
            return [_decode(v, kind.item, field) for v in value]
        members = _members(value)
        if members is None:
            raise _mismatch(value, field, kind.go)
        return {k: _decode(v, kind.value, field) for k, v in members}
    if not _ok(value, kind):
        raise _mismatch(value, field, kind)
    return plain(value)


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    return "object" if _members(value) is not None else _JSON_KIND.get(type(value), "value")


def _mismatch(value: Any, field: str, kind: str) -> InvalidParameter:
    if isinstance(value, list) and kind in (STRS, INTS, STRSLICE):
        kind = INT if kind == INTS else STR
        value = next(x for x in value if not _ok(x, kind) or x is None)
    return InvalidParameter(f"json: cannot unmarshal {_kind(value)} into Go struct field "
                            f"{field} of type {kind}")


RESTART_POLICY = {"Name": STR, "MaximumRetryCount": INT}
HEALTH_CONFIG = {"Test": STRS, "Interval": INT, "Timeout": INT, "StartPeriod": INT,
                 "StartInterval": INT, "Retries": INT}
CONTAINER_CONFIG = {
    "Hostname": STR, "Domainname": STR, "User": STR, "AttachStdin": BOOL,
    "AttachStdout": BOOL, "AttachStderr": BOOL, "ExposedPorts": OBJ, "Tty": BOOL,
    "OpenStdin": BOOL, "StdinOnce": BOOL, "Env": STRS, "Cmd": STRSLICE, "Entrypoint": STRSLICE,
    "Image": STR, "Volumes": OBJ, "WorkingDir": STR, "Labels": STRMAP, "StopSignal": STR,
    "StopTimeout": INT, "Healthcheck": HEALTH_CONFIG, "NetworkDisabled": BOOL, "MacAddress": STR,
    "OnBuild": STRS, "Shell": STRS, "ArgsEscaped": BOOL,
}
RESOURCES = {
    "CpuShares": INT, "Memory": INT, "NanoCpus": INT, "CgroupParent": STR, "BlkioWeight": INT,
    "CpuPeriod": INT, "CpuQuota": INT, "CpuRealtimePeriod": INT, "CpuRealtimeRuntime": INT,
    "CpusetCpus": STR, "CpusetMems": STR, "KernelMemory": INT, "KernelMemoryTCP": INT,
    "MemoryReservation": INT, "MemorySwap": INT, "MemorySwappiness": INT,
    "OomKillDisable": BOOL, "PidsLimit": INT, "CpuCount": INT, "CpuPercent": INT,
    "IOMaximumIOps": INT, "IOMaximumBandwidth": INT, "DeviceCgroupRules": STRS,
    "Devices": ListOf({"PathOnHost": STR, "PathInContainer": STR, "CgroupPermissions": STR},
                      "[]container.DeviceMapping"),
    "Ulimits": ListOf({"Name": STR, "Soft": INT, "Hard": INT}, "[]*units.Ulimit"),
    "BlkioWeightDevice": LIST, "BlkioDeviceReadBps": LIST, "BlkioDeviceWriteBps": LIST,
    "BlkioDeviceReadIOps": LIST, "BlkioDeviceWriteIOps": LIST, "DeviceRequests": LIST,
}
MOUNT = {"Type": STR, "Source": STR, "Target": STR, "ReadOnly": BOOL, "Consistency": STR,
         "BindOptions": {"Propagation": STR, "NonRecursive": BOOL, "CreateMountpoint": BOOL},
         "VolumeOptions": {"NoCopy": BOOL, "Labels": STRMAP, "Subpath": STR,
                           "DriverConfig": {"Name": STR, "Options": STRMAP}},
         "TmpfsOptions": {"SizeBytes": INT, "Mode": INT}}
HOST_CONFIG = {
    **RESOURCES,
    "Binds": STRS, "ContainerIDFile": STR, "LogConfig": {"Type": STR, "Config": STRMAP},
    "NetworkMode": STR,
    "PortBindings": MapOf(ListOf({"HostIp": STR, "HostPort": STR}, "[]nat.PortBinding"),
                          "nat.PortMap"),
    "RestartPolicy": RESTART_POLICY, "AutoRemove": BOOL, "VolumeDriver": STR,
    "VolumesFrom": STRS, "ConsoleSize": INTS, "Annotations": STRMAP, "CapAdd": STRS,
    "CapDrop": STRS, "CgroupnsMode": STR, "Dns": STRS, "DnsOptions": STRS, "DnsSearch": STRS,
    "ExtraHosts": STRS, "GroupAdd": STRS, "IpcMode": STR, "Cgroup": STR, "Links": STRS,
    "OomScoreAdj": INT, "PidMode": STR, "Privileged": BOOL, "PublishAllPorts": BOOL,
    "ReadonlyRootfs": BOOL, "SecurityOpt": STRS, "StorageOpt": STRMAP, "Tmpfs": STRMAP,
    "UTSMode": STR, "UsernsMode": STR, "ShmSize": INT, "Sysctls": STRMAP, "Runtime": STR,
    "Isolation": STR, "Mounts": ListOf(MOUNT, "[]mount.Mount"), "MaskedPaths": STRS,
    "ReadonlyPaths": STRS, "Init": BOOL,
}
ENDPOINT_SETTINGS = {
    "IPAMConfig": {"IPv4Address": STR, "IPv6Address": STR, "LinkLocalIPs": STRS},
    "Links": STRS, "Aliases": STRS, "DriverOpts": STRMAP, "MacAddress": STR, "NetworkID": STR,
    "EndpointID": STR, "Gateway": STR, "IPAddress": STR, "IPPrefixLen": INT,
    "IPv6Gateway": STR, "GlobalIPv6Address": STR, "GlobalIPv6PrefixLen": INT,
    "DNSNames": STRS, "GwPriority": INT,
}
CREATE_BODY = {**CONTAINER_CONFIG, "HostConfig": HOST_CONFIG,
               "NetworkingConfig": {"EndpointsConfig": MapOf(ENDPOINT_SETTINGS,
                                                             "map[string]*network.EndpointSettings")}}
UPDATE_BODY = {**RESOURCES, "RestartPolicy": RESTART_POLICY}
EXEC_CONFIG = {"AttachStdin": BOOL, "AttachStdout": BOOL, "AttachStderr": BOOL, "Detach": BOOL,
               "DetachKeys": STR, "Tty": BOOL, "Env": STRS, "Cmd": STRSLICE,
               "Privileged": BOOL, "User": STR, "WorkingDir": STR, "ConsoleSize": INTS}
EXEC_START = {"Detach": BOOL, "Tty": BOOL, "ConsoleSize": INTS}
NETWORK_CREATE = {
    "Name": STR, "CheckDuplicate": BOOL, "Driver": STR, "Scope": STR, "EnableIPv4": BOOL,
    "EnableIPv6": BOOL, "Internal": BOOL, "Attachable": BOOL, "Ingress": BOOL,
    "ConfigOnly": BOOL, "ConfigFrom": {"Network": STR}, "Options": STRMAP, "Labels": STRMAP,
    "IPAM": {"Driver": STR, "Options": STRMAP,
             "Config": ListOf({"Subnet": STR, "IPRange": STR, "Gateway": STR,
                               "AuxiliaryAddresses": STRMAP}, "[]network.IPAMConfig")},
}
NETWORK_CONNECT = {"Container": STR, "EndpointConfig": ENDPOINT_SETTINGS, "Force": BOOL}
NETWORK_DISCONNECT = {"Container": STR, "Force": BOOL}
VOLUME_CREATE = {"Name": STR, "Driver": STR, "DriverOpts": STRMAP, "Labels": STRMAP,
                 "ClusterVolumeSpec": OBJ}
AUTH_CONFIG = {"username": STR, "password": STR, "auth": STR, "email": STR,
               "serveraddress": STR, "identitytoken": STR, "registrytoken": STR}
