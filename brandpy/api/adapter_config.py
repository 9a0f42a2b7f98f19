"""The daemon's chain of extension adapters (`brandpyd --adapters FILE`), as
Powerstrip configured them for Docker: a JSON file naming pre-hooks and
post-hooks, each an HTTP endpoint or a Python entry point, run in order for
the requests they match (protocol in adapters.py):

    {"pre":  [{"name": "policy", "url": "http://127.0.0.1:9000/pre",
               "match": ["POST /containers/create"]}],
     "post": [{"name": "audit", "python": "mysite.hooks:audit", "timeout": 5}]}

`match` takes shell patterns over "METHOD /path" without the API version
prefix (default: every request); `timeout` is in seconds (default 10).
"""

from __future__ import annotations

import fnmatch
import importlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

DEFAULT_TIMEOUT = 10.0
KEYS = {"name", "url", "python", "match", "timeout"}


class AdapterConfigError(ValueError):
    """The adapters file cannot be used; the message says what to fix."""


@dataclass(frozen=True)
class Adapter:
    name: str
    hook: str                       # "pre" or "post"
    url: str = ""                   # an HTTP endpoint...
    python: str = ""                # ...or a Python entry point "module:function"
    function: Callable[[dict[str, Any]], Any] | None = None
    match: tuple[str, ...] = ("*",)
    timeout: float = DEFAULT_TIMEOUT

    @property
    def where(self) -> str:
        return self.url or self.python

    def matches(self, method: str, path: str) -> bool:
        line = f"{method} {path}"
        return any(fnmatch.fnmatchcase(line, pattern) for pattern in self.match)


@dataclass(frozen=True)
class Chain:
    source: str = ""
    pre: tuple[Adapter, ...] = ()
    post: tuple[Adapter, ...] = ()

    def matching(self, hook: str, method: str, path: str) -> list[Adapter]:
        return [a for a in (self.pre if hook == "pre" else self.post)
                if a.matches(method, path)]


def entry_point(text: str) -> Callable[[dict[str, Any]], Any]:
    module, sep, attr = text.partition(":")
    if not sep or not module or not attr:
        raise AdapterConfigError(f"python {text!r}: give MODULE:FUNCTION, e.g. "
                                 "mysite.hooks:add_env")
    try:
        obj: Any = importlib.import_module(module)
    except ImportError as exc:
        raise AdapterConfigError(f"python {text!r}: cannot import {module}: {exc} (is its "
                                 "directory on the daemon's PYTHONPATH?)") from None
    for part in attr.split("."):
        obj = getattr(obj, part, None)
    if not callable(obj):
        raise AdapterConfigError(f"python {text!r}: {module} has no function {attr}")
    fn: Callable[[dict[str, Any]], Any] = obj
    return fn


def _adapter(hook: str, i: int, d: object) -> Adapter:
    where = f"{hook}[{i}]"
    if not isinstance(d, dict):
        raise AdapterConfigError(f"{where}: expected an object with name and url or python")
    unknown = sorted(set(d) - KEYS)
    if unknown:
        raise AdapterConfigError(f"{where}: unknown key {unknown[0]!r} (keys: "
                                 f"{', '.join(sorted(KEYS))})")
    name = d.get("name") or f"{hook}-{i}"
    url, python = str(d.get("url") or ""), str(d.get("python") or "")
    if bool(url) == bool(python):
        raise AdapterConfigError(f"adapter {name}: give either url or python")
    if url and urlsplit(url).scheme not in ("http", "https"):
        raise AdapterConfigError(f"adapter {name}: url {url!r} is not http:// or https://")
    match = d.get("match", ["*"])
    if isinstance(match, str):
        match = [match]
    if not isinstance(match, list) or not all(isinstance(m, str) for m in match):
        raise AdapterConfigError(f"adapter {name}: match is a list of patterns like "
                                 "\"POST /containers/create\"")
    timeout = d.get("timeout", DEFAULT_TIMEOUT)
    if not isinstance(timeout, (int, float)) or isinstance(timeout, bool) or timeout <= 0:
        raise AdapterConfigError(f"adapter {name}: timeout is a number of seconds")
    try:
        function = entry_point(python) if python else None
    except AdapterConfigError as exc:
        raise AdapterConfigError(f"adapter {name}: {exc}") from None
    return Adapter(str(name), hook, url, python, function, tuple(match), float(timeout))


def load(path: str) -> Chain:
    try:
        d = json.loads(Path(path).read_text())
    except OSError as exc:
        raise AdapterConfigError(f"{path}: {exc.strerror}") from None
    except ValueError as exc:
        raise AdapterConfigError(f"{path}: invalid JSON: {exc}") from None
    if not isinstance(d, dict) or set(d) - {"pre", "post"} or not all(
            isinstance(d.get(hook) or [], list) for hook in ("pre", "post")):
        raise AdapterConfigError(f"{path}: expected an object with \"pre\" and/or \"post\" "
                                 "lists of adapters")
    try:
        chains = {hook: tuple(_adapter(hook, i, a) for i, a in enumerate(d.get(hook) or []))
                  for hook in ("pre", "post")}
    except AdapterConfigError as exc:
        raise AdapterConfigError(f"{path}: {exc}") from None
    return Chain(str(path), chains["pre"], chains["post"])
