"""The effective table of one container: brandpy's table (syscalls/table.py)
combined with that container's policy.

For every syscall number it decides the BPF action and, for trapped calls,
the handler. Layers, in order:
  1. the row, or its unprivileged variant when identity is emulated;
  2. the kernel personality: calls newer than the emulated release fail
     with ENOSYS, as that kernel would;
  3. the seccomp profile (Docker's default unless configured): a denial,
     or the row's action only under the profile's argument conditions.
Denials are trapped rather than answered in BPF, so each one lands in the
ledger with its reason (a denied call costs one stop; it is rare by nature).
The trace data of a denial carries its kind and errno, so one syscall can
be both handled (when allowed) and denied (otherwise) by argument.
"""

from __future__ import annotations

import ctypes
import errno as errnos
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from brandpy.runtime import faults
from brandpy.runtime.acting import as_tracee
from brandpy.runtime.call import Call, Inject
from brandpy.runtime.errors import Errno, StrictViolation
from brandpy.runtime.linux import (
    AT_FDCWD,
    SECCOMP_RET_ACTION_FULL,
    SECCOMP_RET_DATA,
    SECCOMP_RET_TRACE,
    libc,
)
from brandpy.runtime.seccomp import (
    RET_ENOSYS,
    Action,
    compile_filter,
    leaves,
    outcome,
    relabel,
    ret_allow,
    ret_errno,
    ret_notify,
    ret_trace,
)
from brandpy.runtime.stats import LedgerEntry

from .handlers import ident
from .linux import parse_release
from .table import NotifyHandler, Row, Spec, Table, routed

if TYPE_CHECKING:
    from brandpy.runtime.sandbox import Sandbox

Handler = Callable[[Call], "int | Inject | None"]

KIND_TABLE, KIND_PROFILE, KIND_PERSONALITY = 1, 2, 3
PASS = 4 << 12     # trace data: trapped only to be seen (--trace-all); runs natively
KINDS = {KIND_TABLE: "unsupported", KIND_PROFILE: "seccomp profile",
         KIND_PERSONALITY: "kernel personality"}


@dataclass(frozen=True)
class Decision:
    """One syscall's effective treatment."""
    action: Action
    handler: Handler | None          # for trace data 0
    denials: dict[int, str]          # trace data -> reason, for denied variants
    disposition: str                 # what `brandpy syscalls --container` shows
    notify: NotifyHandler | None = None   # performs the call when it comes by notification


# The decisions for the common policies, made once per process (a zygote
# makes them before it forks, so its supervisors skip ~5 ms each): a
# Decision is frozen and its handlers are the table's.
_DECISIONS: dict[tuple[object, ...], list[Decision]] = {}
_FILTERS: dict[tuple[tuple[object, ...], bool], bytes] = {}     # (key, id_trap): the BPF
MAX_CACHED = 32


def _answer(value: int) -> Handler:
    return lambda call: value


def _answer_raw(call: Call) -> None:
    """A broken handler (brandpy.runtime.faults): the call runs untranslated."""
    return None


# The calls BRANDPY_TEST_BROKEN_PERFORM may break: their path argument's index.
RAW_PATHS = {"open": 0, "openat": 1, "creat": 0, "mkdir": 0, "mkdirat": 1,
             "unlink": 0, "unlinkat": 1, "chmod": 0, "fchmodat": 1}
_OPENS = ("open", "openat", "creat")


def _perform_raw(name: str) -> Handler:
    """A broken performed call (brandpy.runtime.faults): the supervisor
    makes it itself, as the caller, with the raw path (an fd argument
    becomes AT_FDCWD): what it reaches is what the supervisor's hands can."""
    i = RAW_PATHS[name]

    def perform(call: Call) -> int | Inject:
        args: list[int | bytes] = [call.arg(n) for n in range(6)]
        args[i] = call.read_str(call.arg(i))
        if i:
            args[0] = AT_FDCWD
        with as_tracee(call.proc.cred, call.sb):
            rc = libc.syscall(call.nr, *args)
        if rc < 0:
            raise Errno(ctypes.get_errno())
        if name in _OPENS:
            return Inject(rc, name != "creat" and bool(call.arg(i + 1) & os.O_CLOEXEC))
        return 0
    return perform


def _data(kind: int, err: int) -> int:
    return kind << 12 | err


class Effective:
    def __init__(self, table: Table, sb: Sandbox, trace_all: bool = False,
                 traced: frozenset[int] = frozenset(),
                 overrides: dict[int, Handler] | None = None) -> None:
        """`trace_all`, and `traced` for some numbers: trap calls the filter
        would let through or answer (for the trace and fault injection;
        performed rows stay on user notification, where the supervisor sees
        them anyway); `overrides`: handlers that replace a row's
        (record/replay). With real credentials set*id are trapped, so that
        performed calls use the right ones."""
        self.table = table
        self.sb = sb
        self.track_real_ids = not sb.fake_ids
        self.trace_all = trace_all
        self.traced = traced
        self.overrides = overrides or {}
        release = parse_release(sb.release) if sb.config.personality else None
        names = {r.name: r.nr for r in table.rows if r.name}
        self.broken = faults.broken(names)
        self.performed_raw = faults.broken(names, faults.BROKEN_PERFORM)
        self.key = self._key(release)
        decisions = _DECISIONS.get(self.key) if self.key is not None else None
        if decisions is None:
            decisions = [self._decide(row, release) for row in table.rows]
            if self.key is not None:
                if len(_DECISIONS) >= MAX_CACHED:
                    _DECISIONS.clear()
                    _FILTERS.clear()
                _DECISIONS[self.key] = decisions
        self.decisions: list[Decision] = decisions
        self.names = table.names()

    def _key(self, release: tuple[int, ...] | None) -> tuple[object, ...] | None:
        """Everything _decide reads, when that is all plain values: Docker's
        default profile or none (a profile file may change), no overrides
        (their handlers are a recording's)."""
        if self.overrides or self.sb.config.seccomp not in ("", "default", "builtin",
                                                           "unconfined"):
            return None
        return (self.table, self.sb.fake_ids, self.sb.kernel_pids, self.track_real_ids,
                self.sb.cred.euid == 0,
                release, self.sb.release if release else None,
                self.trace_all, self.traced, self.sb.config.seccomp == "unconfined",
                self.sb.caps, self.broken, self.performed_raw)

    def _spec(self, row: Row) -> Spec:
        spec = row.spec
        if self.sb.kernel_pids and spec.pidns is not None:
            spec = spec.pidns
            return spec.fake if self.sb.fake_ids and spec.fake is not None else spec
        if self.sb.fake_ids and spec.fake is not None:
            spec = spec.fake
        elif self.track_real_ids and spec.real_tracked is not None:
            spec = spec.real_tracked
        if spec.disposition == "identity":
            # answered by BPF while the container's user is root (a process
            # that drops root gets a trap filter stacked, see handlers/ident)
            chosen = spec.fake_root if self.sb.cred.euid == 0 else spec.fake_user
            assert chosen is not None, f"identity row {row.name} lacks a root or a user spec"
            spec = chosen
        return spec

    def _decide(self, row: Row, release: tuple[int, ...] | None) -> Decision:
        spec = self._spec(row)
        denials: dict[int, str] = {}

        def deny(kind: int, err: int, reason: str) -> Action:
            data = _data(kind, err)
            denials[data] = reason
            return ret_trace(data)

        if spec.disposition in ("deny", "nosys"):
            base: Action = deny(KIND_TABLE, spec.value, spec.note or "not supported")
            handler = None
        elif spec.disposition == "const":
            base, handler = ret_errno(0), None
        elif spec.disposition == "allow":
            base, handler = ret_allow(), spec.handler
        elif spec.disposition == "perform" and row.nr not in self.broken:
            base, handler = routed(spec), spec.handler
        else:
            base, handler = ret_trace(), spec.handler
        if spec.when is not None and spec.disposition in ("allow", "trace"):
            base = spec.when(ret_trace(), base) if spec.disposition == "allow" \
                else spec.when(base, ret_allow())
        disposition = spec.disposition
        if row.nr in self.overrides:
            base, handler = ret_trace(), self.overrides[row.nr]
        elif (self.trace_all or row.nr in self.traced) and row.name and \
                spec.disposition not in ("deny", "nosys"):
            # trap every argument: those the row would not trap run natively
            # (performed ones stay notified: the supervisor sees them anyway)
            if spec.disposition == "perform":
                base = relabel(base, ret_allow(), ret_trace(PASS))
            elif spec.disposition == "const":
                base, handler = ret_trace(), _answer(spec.value)
            elif spec.when is not None:
                base = spec.when(ret_trace(), ret_trace(PASS))
            elif spec.disposition == "allow":
                base = ret_trace(PASS)
            else:
                base = ret_trace()
        if release is not None and row.name and row.since > release and not row.removed:
            base = deny(KIND_PERSONALITY, errnos.ENOSYS,
                        f"not in Linux {self.sb.release} (added in {row.since_text})")
            disposition = "nosys"
        elif self.sb.profile is not None and row.name and disposition not in ("deny", "nosys"):
            rule = self.sb.profile.rule(row.name)
            if rule.never:
                base = deny(KIND_PROFILE, rule.errno, "denied by the seccomp profile")
                disposition = "deny"
            elif not rule.always:
                base = rule.action(base, deny(KIND_PROFILE, rule.errno,
                                              "denied by the seccomp profile for these "
                                              "arguments"))
        if row.nr in self.broken and (handler is not None or spec.disposition == "perform"):
            handler = _answer_raw   # a performed call has no ptrace handler to break
        notify = spec.notify if ret_notify() in leaves(base) else None
        if row.nr in self.performed_raw:
            if notify is None or row.name not in RAW_PATHS:
                raise ValueError(f"{faults.BROKEN_PERFORM}: {row.name} is not a performed "
                                 f"call with a path ({', '.join(RAW_PATHS)})")
            notify = _perform_raw(row.name)
        return Decision(base, handler, denials, disposition if notify is None else "notify",
                        notify)

    def bpf(self, id_trap: bool = False) -> bytes:
        """id_trap: the calls the identity trap filter traps are trapped
        so (for a process started as a non-root user)."""
        cached = _FILTERS.get((self.key, id_trap)) if self.key is not None else None
        if cached is not None:
            return cached
        actions = {nr: d.action for nr, d in enumerate(self.decisions)}
        if id_trap:
            actions.update(ident.TRAPPED)
        prog = compile_filter(actions)
        if self.key is not None:
            _FILTERS[self.key, id_trap] = prog
        return prog

    def action(self, nr: int, args: tuple[int, ...]) -> int:
        """What brandpy's filter returns for this call. A seccomp stop is
        handled by this, never by the trace data the kernel reports: the
        container may stack filters of its own, and between two RET_TRACE
        the newest filter's data wins."""
        if not 0 <= nr < len(self.decisions):
            return RET_ENOSYS
        return outcome(self.decisions[nr].action, args)

    def dispatch(self, call: Call, action: int) -> int | Inject | None:
        """Run the handler for a trapped call, given what brandpy's filter
        said of it (action()); raises StrictViolation in strict mode for an
        unsupported call."""
        if action & SECCOMP_RET_ACTION_FULL != SECCOMP_RET_TRACE:
            # a RET_TRACE of the container's own filter: Linux, finding no
            # tracer of the container's, fails the call with ENOSYS
            return -errnos.ENOSYS
        decision = self.decisions[call.nr]
        data = action & SECCOMP_RET_DATA
        if data == PASS:
            return None
        if data:
            reason = decision.denials.get(data, "denied")
            return self._denied(call, data >> 12, data & 0xFFF, reason)
        assert decision.handler is not None, f"syscall {call.nr} trapped without a handler"
        try:
            return decision.handler(call)
        except Errno as exc:
            if exc.why:
                return self._denied(call, KIND_TABLE, exc.errno, exc.why)
            return -exc.errno

    def handling(self, action: int, result: int | Inject | None, rewritten: bool) -> str:
        """How a trapped call was handled, for the trace and the statistics."""
        data = action & SECCOMP_RET_DATA
        if action & SECCOMP_RET_ACTION_FULL != SECCOMP_RET_TRACE:
            return "emulated"
        if data == PASS:
            return "native"
        if data:
            return {KIND_TABLE: "unsupported", KIND_PROFILE: "denied",
                    KIND_PERSONALITY: "personality"}.get(data >> 12, "denied")
        if result is not None:
            return "emulated"
        return "translated" if rewritten else "native"

    def notify(self, call: Call) -> int | Inject | None:
        """Perform a notified call the C handlers left to Python."""
        decision = self.decisions[call.nr]
        if decision.notify is None:
            return -errnos.ENOSYS
        try:
            return decision.notify(call)
        except Errno as exc:
            if exc.why:
                return self._denied(call, KIND_TABLE, exc.errno, exc.why)
            return -exc.errno

    def _denied(self, call: Call, kind: int, err: int, reason: str) -> int:
        name = self.names.get(call.nr, str(call.nr))
        self.sb.ledger.record(LedgerEntry(call.nr, name, err, f"{KINDS.get(kind, '')}: "
                                          f"{reason}"))
        if self.sb.config.strict:
            raise StrictViolation(f"{name} ({KINDS.get(kind, 'unsupported')}: {reason})")
        return -err
