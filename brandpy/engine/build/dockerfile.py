"""Dockerfile parsing: parser directives, line continuations, comments,
instructions with their flags (`--from=`, `--chown=`...), exec (JSON) and
shell forms, and variable substitution as Docker's shell lexer does it
($VAR, ${VAR}, ${VAR:-word}, ${VAR:+word}, quotes and escapes)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal, overload

from brandpy.images.changes import json_array

from ..errors import InvalidParameter

INSTRUCTIONS = ("ADD", "ARG", "CMD", "COPY", "ENTRYPOINT", "ENV", "EXPOSE", "FROM",
                "HEALTHCHECK", "LABEL", "MAINTAINER", "ONBUILD", "RUN", "SHELL", "STOPSIGNAL",
                "USER", "VOLUME", "WORKDIR")
# Instructions whose arguments get ${VAR} substitution (Docker's replaceEnvAllowed).
SUBSTITUTED = ("ADD", "COPY", "ENV", "EXPOSE", "FROM", "LABEL", "STOPSIGNAL", "USER", "VOLUME",
               "WORKDIR", "ARG")
_DIRECTIVE = re.compile(r"^#\s*([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$")
_FLAG = re.compile(r"^--([a-zA-Z][a-zA-Z0-9-]*)(?:=(.*))?$")


class DockerfileError(InvalidParameter):
    pass


@dataclass
class Instruction:
    name: str                  # upper case
    args: str                  # the rest of the line, flags removed
    flags: dict[str, str] = field(default_factory=dict)
    line: int = 0
    original: str = ""         # as written, for "Step N/M : ..."

    def json_form(self) -> list[str] | None:
        """The exec form's list when args is a JSON array of strings."""
        return json_array(self.args.strip())


def parse(text: str) -> list[Instruction]:
    lines = text.splitlines()
    escape = "\\"
    i = 0
    # Parser directives: only at the very top, before any other line.
    while i < len(lines):
        m = _DIRECTIVE.match(lines[i])
        if not m:
            break
        if m.group(1).lower() == "escape":
            if m.group(2) not in ("\\", "`"):
                raise DockerfileError(f"invalid escape token '{m.group(2)}' does not match "
                                      "` or \\")
            escape = m.group(2)
        i += 1
    out: list[Instruction] = []
    while i < len(lines):
        start = i
        line = lines[i]
        i += 1
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        parts = [line.rstrip()]
        while parts[-1].endswith(escape) and i < len(lines):
            parts[-1] = parts[-1][:-1]
            nxt = lines[i]
            i += 1
            if nxt.strip().startswith("#"):
                parts.append(escape)   # comment lines inside a continuation are dropped
                continue
            parts.append(nxt.rstrip())
        if parts[-1].endswith(escape):
            parts[-1] = parts[-1][:-1]
        full = "".join(p for p in parts if p != escape).strip()
        word, _, rest = full.partition(" ") if " " in full else full.partition("\t")
        name = word.upper()
        if name not in INSTRUCTIONS:
            raise DockerfileError(f"dockerfile parse error on line {start + 1}: unknown "
                                  f"instruction: {word}")
        rest = rest.strip()
        flags: dict[str, str] = {}
        if name in ("ADD", "COPY", "FROM", "RUN", "HEALTHCHECK"):
            while rest.startswith("--"):
                flag, _, after = rest.partition(" ")
                m = _FLAG.match(flag)
                if not m:
                    break
                if name == "HEALTHCHECK":
                    break     # its options are part of its arguments
                flags[m.group(1)] = m.group(2) if m.group(2) is not None else "true"
                rest = after.strip()
        out.append(Instruction(name, rest, flags, start + 1, f"{name} {full[len(word):].strip()}"))
    if not out:
        raise DockerfileError("the Dockerfile (Dockerfile) cannot be empty")
    return out


# -------------------------------------------------------- substitution ----

class Lexer:
    """Docker's shell-word processing for substituted instructions."""

    def __init__(self, env: dict[str, str], escape: str = "\\") -> None:
        self.env = env
        self.escape = escape

    def word(self, text: str) -> str:
        words = self.words(text, split=False)
        return words[0] if words else ""

    def words(self, text: str, split: bool = True) -> list[str]:
        """Words of text (split on unquoted whitespace when split), with
        quotes removed and variables expanded."""
        out: list[str] = []
        cur: list[str] = []
        started = False
        i, n = 0, len(text)
        while i < n:
            c = text[i]
            if split and c in " \t\n":
                if started:
                    out.append("".join(cur))
                    cur, started = [], False
                i += 1
                continue
            started = True
            if c == self.escape and i + 1 < n:
                cur.append(text[i + 1])
                i += 2
            elif c == "'":
                end = text.find("'", i + 1)
                if end < 0:
                    raise DockerfileError(f"unexpected end of statement while looking for "
                                          f"matching single-quote in {text!r}")
                cur.append(text[i + 1:end])
                i = end + 1
            elif c == '"':
                i += 1
                while i < n and text[i] != '"':
                    if text[i] == self.escape and i + 1 < n and text[i + 1] in '"$\\`':
                        cur.append(text[i + 1])
                        i += 2
                    elif text[i] == "$":
                        value, i = self._var(text, i)
                        cur.append(value)
                    else:
                        cur.append(text[i])
                        i += 1
                if i >= n:
                    raise DockerfileError(f"unexpected end of statement while looking for "
                                          f"matching double-quote in {text!r}")
                i += 1
            elif c == "$":
                value, i = self._var(text, i)
                cur.append(value)
            else:
                cur.append(c)
                i += 1
        if started:
            out.append("".join(cur))
        return out

    def _var(self, text: str, i: int) -> tuple[str, int]:
        """Expand the variable at text[i] == '$'; (value, index after it)."""
        n = len(text)
        if i + 1 < n and text[i + 1] == "{":
            end = text.find("}", i + 2)
            if end < 0:
                raise DockerfileError(f"missing '}}' in {text!r}")
            body = text[i + 2:end]
            m = re.match(r"^([a-zA-Z_][a-zA-Z0-9_]*)(?::([-+?])(.*))?$", body, re.S)
            if not m:
                raise DockerfileError(f"bad substitution ${{{body}}} in {text!r}")
            name, op, word = m.group(1), m.group(2), m.group(3) or ""
            value = self.env.get(name)
            if op == "-":
                return (value if value else self.word(word)), end + 1
            if op == "+":
                return (self.word(word) if value else ""), end + 1
            if op == "?":
                if not value:
                    raise DockerfileError(f"{name}: {self.word(word) or 'is not set'}")
                return value, end + 1
            return value or "", end + 1
        m = re.match(r"[a-zA-Z_][a-zA-Z0-9_]*", text[i + 1:])
        if not m:
            return "$", i + 1
        return self.env.get(m.group(0), ""), i + 1 + m.end()


@overload
def key_values(text: str, lexer: Lexer, what: Literal["ARG"]) -> list[tuple[str, str | None]]: ...
@overload
def key_values(text: str, lexer: Lexer, what: Literal["ENV", "LABEL"]) -> list[tuple[str, str]]: ...
def key_values(text: str, lexer: Lexer, what: str) -> Sequence[tuple[str, str | None]]:
    """ENV/LABEL/ARG pairs: `k=v k2="v 2"`, or the legacy `KEY value...`;
    only ARG's may lack a value (None)."""
    words = lexer.words(text)
    if not words:
        raise DockerfileError(f"{what} requires at least one argument")
    if "=" not in words[0]:
        key, _, value = text.strip().partition(" ")
        if what == "ARG":
            return [(key, lexer.word(value.strip()) if value else None)]
        if not value.strip():
            raise DockerfileError(f"{what} names can not be blank" if not key else
                                  f"{what} {key} requires a value: use {what} {key}=VALUE")
        return [(lexer.word(key), lexer.word(value.strip()))]
    out: list[tuple[str, str | None]] = []
    for w in words:
        key, eq, value = w.partition("=")
        if not key:
            raise DockerfileError(f"{what} names can not be blank")
        if not eq:
            if what != "ARG":
                raise DockerfileError(f"{what}: {w!r} is not KEY=VALUE")
            out.append((key, None))
            continue
        out.append((key, value))
    return out
