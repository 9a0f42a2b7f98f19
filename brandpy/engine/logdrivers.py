"""The log drivers brandpy has, with dockerd's options and messages:

    json-file   JSON lines (logs.py), no rotation unless max-size is set
    local       the same file, rotated by default (20 MiB x 5, compressed)
    none        no log: `docker logs` is refused, attach still streams

max-size (a size, decimal units as dockerd's: 10m is 10,000,000 bytes),
max-file (files kept, the current one included) and compress (gzip the
rotated files) are applied by the shim's LogWriter; every other driver
dockerd knows (syslog, journald, gelf, fluentd...) is refused."""

from __future__ import annotations

import re
from dataclasses import dataclass

from .errors import InvalidParameter, NotImplementedHere

DEFAULT_DRIVER = "json-file"
NONE = "none"
_OPTIONS = ("max-size", "max-file", "compress")
_DEFAULTS = {"json-file": {}, "local": {"max-file": "5", "compress": "true"}}
_LOCAL_MAX_SIZE = 20 * 1024 * 1024
# Options dockerd's json-file driver takes that brandpy does not apply.
_UNAPPLIED = ("labels", "labels-regex", "env", "env-regex", "tag")
_UNITS = {"": 1, "b": 1, "k": 10**3, "m": 10**6, "g": 10**9, "t": 10**12, "p": 10**15}
_SIZE = re.compile(r"(\d+(?:\.\d+)?)\s*([kmgtp]?)i?b?", re.IGNORECASE)
# Drivers dockerd has that brandpy has not (else: dockerd's plugin lookup).
_OTHER_DOCKERD = ("syslog", "journald", "gelf", "fluentd", "awslogs", "splunk", "etwlogs",
                  "gcplogs", "logentries")


@dataclass(frozen=True)
class Rotation:
    max_size: int = -1       # bytes; -1: never rotate
    max_file: int = 1        # files kept, the current one included
    compress: bool = False

    def to_json(self) -> dict[str, object]:
        return {"max_size": self.max_size, "max_file": self.max_file, "compress": self.compress}


def check_readable(log_config: dict) -> None:
    """dockerd's 501 for reading a log the driver does not keep."""
    if log_config.get("Type") == NONE:
        raise NotImplementedHere("configured logging driver does not support reading")


def size(text: str) -> int:
    """units.FromHumanSize: decimal multiples (k = 1000)."""
    m = _SIZE.fullmatch(text.strip())
    if not m:
        raise InvalidParameter(f"invalid size: '{text}'")
    return int(float(m.group(1)) * _UNITS[m.group(2).lower()])


def check(driver: str, opts: dict[str, str]) -> Rotation | None:
    """The rotation a driver and its options ask for (None for `none`);
    400 with dockerd's message for what dockerd refuses, and for what
    brandpy cannot do."""
    if driver == NONE:
        return None
    if driver not in _DEFAULTS:
        if driver in _OTHER_DOCKERD:
            raise InvalidParameter(f"logging driver {driver!r} is not supported by brandpy: use "
                                   "json-file, local or none")
        raise InvalidParameter(f'error looking up logging plugin {driver}: plugin "{driver}" '
                               "not found")
    for key in opts:
        if key in _UNAPPLIED and driver == "json-file":
            raise InvalidParameter(f"log opt '{key}' of the json-file driver is not supported by "
                                   "brandpy: use max-size, max-file or compress")
        if key not in _OPTIONS:
            raise InvalidParameter(f"unknown log opt '{key}' for {driver} log driver")
    given = {**_DEFAULTS[driver], **opts}
    max_size = -1
    if "max-size" in given:
        max_size = size(given["max-size"])
        if max_size <= 0:
            raise InvalidParameter("max-size must be a positive number")
    max_file = 1
    if "max-file" in given:
        if not given["max-file"].lstrip("-").isdigit():
            raise InvalidParameter(f'strconv.Atoi: parsing "{given["max-file"]}": invalid syntax')
        max_file = int(given["max-file"])
        if max_file < 1:
            raise InvalidParameter("max-file cannot be less than 1")
    compress = False
    if "compress" in given:
        if given["compress"].lower() not in ("1", "t", "true", "0", "f", "false"):
            raise InvalidParameter(f'strconv.ParseBool: parsing "{given["compress"]}": invalid '
                                   "syntax")
        compress = given["compress"].lower() in ("1", "t", "true")
        if compress and (max_file == 1 or max_size == -1) and driver == "json-file":
            raise InvalidParameter("compress cannot be true when max-file is less than 2 or "
                                   "max-size is not set")
    if driver == "local" and max_size == -1:
        max_size = _LOCAL_MAX_SIZE
    return Rotation(max_size, max_file, compress and max_file > 1)
