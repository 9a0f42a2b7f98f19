"""The runtime's log, as runc writes it: `--log FILE` (stderr without it),
`--log-format text|json`. containerd reads the file back as JSON lines
({"level", "msg", "time"}) and reports the last error line, so nothing but
such lines may ever be written to it."""

from __future__ import annotations

import json
import os
import sys
from datetime import UTC, datetime

LEVELS = ("debug", "info", "warning", "error")


class Log:
    def __init__(self, path: str = "", fmt: str = "text", debug: bool = False) -> None:
        self.path = path
        self.fmt = fmt
        # a log file gets the notes of create (info); a terminal, warnings up
        self.min_level = 0 if debug else 1 if path else 2

    def debug(self, msg: str) -> None:
        self.write("debug", msg)

    def info(self, msg: str) -> None:
        self.write("info", msg)

    def warning(self, msg: str) -> None:
        self.write("warning", msg)

    def error(self, msg: str) -> None:
        self.write("error", msg)

    def write(self, level: str, msg: str) -> None:
        if LEVELS.index(level) < self.min_level:
            return
        now = datetime.now(UTC).isoformat(timespec="microseconds")
        now = now.replace("+00:00", "Z")   # RFC 3339, as Go's time.Time decodes it
        if self.fmt == "json":
            line = json.dumps({"level": level, "msg": msg, "time": now})
        else:
            line = f'time="{now}" level={level} msg={json.dumps(msg)}'
        data = (line + "\n").encode()
        if not self.path:
            sys.stderr.buffer.write(data)
            sys.stderr.flush()
            return
        # one O_APPEND write per line: the CLI and the monitor share the file
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            os.write(fd, data)
        finally:
            os.close(fd)

    def argv(self) -> list[str]:
        """The global options that give another brandpy-runc process this log."""
        args = ["--log-format", self.fmt]
        if self.path:
            args += ["--log", self.path]
        if self.min_level == 0:
            args.append("--debug")
        return args
