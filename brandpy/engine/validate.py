"""Type checks for request bodies, with the messages Docker's Go JSON decoder
gives (`json: cannot unmarshal string into Go struct field
Config.Env of type []string`), so a wrong type is a 400, never a 500 later.

Unknown fields are ignored, as Docker ignores them."""

from __future__ import annotations

from typing import Any

from .errors import InvalidParameter

# Type names as Go prints them.
STR, BOOL, INT, NUM = "string", "bool", "int64", "float64"
STRS, INTS = "[]string", "[]int"
OBJ, STRMAP = "map[string]interface {}", "map[string]string"
STRSLICE = "strslice.StrSlice"     # a string or a list of strings (Cmd, Entrypoint)
LIST = "[]interface {}"

_JSON_KIND = {str: "string", bool: "bool", int: "number", float: "number", list: "array",
              dict: "object"}


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
        return isinstance(value, dict)
    if kind == STRMAP:
        return isinstance(value, dict) and all(isinstance(v, str) for v in value.values())
    if kind == LIST:
        return isinstance(value, list)
    raise AssertionError(kind)


def check(obj: Any, schema: dict[str, Any], where: str) -> dict:
    """Check obj against schema ({field: type name or nested schema});
    returns obj ({} for null)."""
    if obj is None:
        return {}
    if not isinstance(obj, dict):
        raise InvalidParameter(f"json: cannot unmarshal {_JSON_KIND.get(type(obj), 'value')} "
                               f"into Go value of type {where}")
    for name, kind in schema.items():
        value = obj.get(name)
        if isinstance(kind, dict):
            if value is not None and not isinstance(value, dict):
                raise _mismatch(value, f"{where}.{name}", "struct")
            check(value, kind, f"{where}.{name}")
        elif not _ok(value, kind):
            raise _mismatch(value, f"{where}.{name}", kind)
    return obj


def _mismatch(value: Any, field: str, kind: str) -> InvalidParameter:
    if isinstance(value, list) and kind in (STRS, INTS, STRSLICE):
        kind = INT if kind == INTS else STR
        value = next(x for x in value if not _ok(x, kind) or x is None)
    got = "null" if value is None else _JSON_KIND.get(type(value), "value")
    return InvalidParameter(f"json: cannot unmarshal {got} into Go struct field {field} "
                            f"of type {kind}")


RESTART_POLICY = {"Name": STR, "MaximumRetryCount": INT}
CONTAINER_CONFIG = {
    "Hostname": STR, "Domainname": STR, "User": STR, "AttachStdin": BOOL,
    "AttachStdout": BOOL, "AttachStderr": BOOL, "ExposedPorts": OBJ, "Tty": BOOL,
    "OpenStdin": BOOL, "StdinOnce": BOOL, "Env": STRS, "Cmd": STRSLICE, "Entrypoint": STRSLICE,
    "Image": STR, "Volumes": OBJ, "WorkingDir": STR, "Labels": STRMAP, "StopSignal": STR,
    "StopTimeout": INT, "Healthcheck": OBJ, "NetworkDisabled": BOOL, "MacAddress": STR,
    "OnBuild": STRS, "Shell": STRS, "ArgsEscaped": BOOL,
}
HOST_CONFIG = {
    "Binds": STRS, "Mounts": LIST, "PortBindings": OBJ, "AutoRemove": BOOL,
    "RestartPolicy": RESTART_POLICY, "NetworkMode": STR, "Privileged": BOOL,
    "SecurityOpt": STRS, "CapAdd": STRS, "CapDrop": STRS, "Tmpfs": STRMAP, "ExtraHosts": STRS,
    "Dns": STRS, "DnsOptions": STRS, "DnsSearch": STRS, "LogConfig": {"Type": STR,
                                                                       "Config": STRMAP},
    "ConsoleSize": INTS, "Init": BOOL, "ReadonlyRootfs": BOOL, "PublishAllPorts": BOOL,
    "VolumesFrom": STRS, "Links": STRS, "GroupAdd": STRS, "Memory": INT, "NanoCpus": INT,
    "CpuShares": INT, "PidsLimit": INT, "ShmSize": INT, "Sysctls": STRMAP, "Devices": LIST,
    "IpcMode": STR, "PidMode": STR, "UTSMode": STR, "UsernsMode": STR, "Runtime": STR,
    "Isolation": STR, "OomKillDisable": BOOL, "Ulimits": LIST, "CgroupnsMode": STR,
}
CREATE_BODY = {**CONTAINER_CONFIG, "HostConfig": HOST_CONFIG,
               "NetworkingConfig": {"EndpointsConfig": OBJ}}
