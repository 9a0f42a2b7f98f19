"""Fault injection, in strace's syntax:

    --inject SYSCALL[,SYSCALL...]:error=ERRNO[:when=N|N+|N+S][:prob=P]
    --inject SYSCALL:retval=VALUE[...]
    --inject SYSCALL:delay=DURATION[...]      (us, ms or s; a bare number is us)

error and retval skip the call and return -ERRNO or VALUE; delay holds the
call for DURATION before it runs. `when` counts each thread's calls to the
syscall from 1: N is the Nth only, N+ the Nth and every later one, N+S the
Nth and every Sth after it. `prob` draws from a generator seeded by
--seed, the rule, the thread's container TID and the call's number, so a
run repeats exactly whatever the scheduling.
"""

from __future__ import annotations

import errno
import hashlib
import re
from collections import Counter
from dataclasses import dataclass
from typing import Any

DURATION = re.compile(r"^(\d+(?:\.\d+)?)(us|ms|s)?$")
WHEN = re.compile(r"^(\d+)(?:(\+)(\d+)?)?$")


class InjectError(ValueError):
    """A malformed --inject specification; the message says which part."""


@dataclass(frozen=True)
class Rule:
    spec: str
    nrs: frozenset[int]
    error: int | None = None
    retval: int | None = None
    delay: float | None = None       # seconds
    first: int = 1
    step: int | None = None          # None: only `first`; 0: every call from `first`
    prob: float = 1.0

    def counts(self, n: int) -> bool:
        if n < self.first:
            return False
        if self.step is None:
            return n == self.first
        return self.step == 0 or (n - self.first) % self.step == 0


def parse(spec: str, syscalls: dict[str, int]) -> Rule:
    names, _, rest = spec.partition(":")
    if not rest:
        raise InjectError(f"--inject {spec}: expected SYSCALL:error=…|retval=…|delay=…")
    nrs = set()
    for name in names.split(","):
        if name not in syscalls:
            raise InjectError(f"--inject {spec}: unknown syscall {name!r}")
        nrs.add(syscalls[name])
    fields: dict[str, Any] = {}     # Rule's keyword arguments, each parsed to its type
    for part in rest.split(":"):
        key, sep, value = part.partition("=")
        if not sep:
            raise InjectError(f"--inject {spec}: {part!r} is not KEY=VALUE")
        if key == "error":
            code = int(value) if value.isdigit() else getattr(errno, value, None)
            if not isinstance(code, int) or not 0 < code < 4096:
                raise InjectError(f"--inject {spec}: unknown errno {value!r}")
            fields["error"] = code
        elif key == "retval":
            try:
                fields["retval"] = int(value, 0)
            except ValueError:
                raise InjectError(f"--inject {spec}: retval must be an integer") from None
        elif key == "delay":
            m = DURATION.match(value)
            if not m:
                raise InjectError(f"--inject {spec}: delay like 500us, 10ms or 1s")
            fields["delay"] = float(m.group(1)) * {"us": 1e-6, "ms": 1e-3, "s": 1.0,
                                                    None: 1e-6}[m.group(2)]
        elif key == "when":
            m = WHEN.match(value)
            if not m or int(m.group(1)) < 1:
                raise InjectError(f"--inject {spec}: when=N, N+ or N+S with N >= 1")
            fields["first"] = int(m.group(1))
            if m.group(2):
                fields["step"] = int(m.group(3) or 0)
        elif key == "prob":
            try:
                prob = float(value.rstrip("%")) / (100 if value.endswith("%") else 1)
            except ValueError:
                raise InjectError(f"--inject {spec}: prob is a number from 0 to 1") from None
            if not 0 <= prob <= 1:
                raise InjectError(f"--inject {spec}: prob is a number from 0 to 1")
            fields["prob"] = prob
        else:
            raise InjectError(f"--inject {spec}: unknown key {key!r}")
    if sum(k in fields for k in ("error", "retval", "delay")) != 1:
        raise InjectError(f"--inject {spec}: give exactly one of error=, retval=, delay=")
    return Rule(spec=spec, nrs=frozenset(nrs), **fields)


@dataclass(frozen=True)
class Injection:
    rule: Rule

    @property
    def result(self) -> int | None:
        """What the call returns instead of running (None: it runs, later)."""
        if self.rule.error is not None:
            return -self.rule.error
        return self.rule.retval


class Injector:
    def __init__(self, rules: list[Rule], seed: int = 0) -> None:
        self.rules = rules
        self.seed = seed
        self.calls: Counter[tuple[int, int, int]] = Counter()   # (rule, tid, nr) -> calls

    @property
    def nrs(self) -> frozenset[int]:
        return frozenset().union(*(r.nrs for r in self.rules)) if self.rules else frozenset()

    def decide(self, nr: int, guest_tid: int) -> Injection | None:
        for i, rule in enumerate(self.rules):
            if nr not in rule.nrs:
                continue
            key = (i, guest_tid, nr)
            self.calls[key] += 1
            n = self.calls[key]
            if rule.counts(n) and self._draw(i, guest_tid, nr, n) < rule.prob:
                return Injection(rule)
        return None

    def _draw(self, rule: int, tid: int, nr: int, n: int) -> float:
        h = hashlib.blake2b(f"{self.seed}:{rule}:{tid}:{nr}:{n}".encode(), digest_size=8)
        return int.from_bytes(h.digest(), "little") / 2**64
