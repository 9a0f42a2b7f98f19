"""Performed calls that may block (a fifo's open waiting for its other end,
a connect or a send on a blocking socket): made on a thread of their own,
which answers the notification when the call completes, so that the
supervisor goes on serving the container meanwhile.

A signal can interrupt the tracee's wait, and the kernel restarts the call
as a new notification: the restart joins the call in flight (the latest
notification is the one answered), and a result that found the tracee
interrupted is kept for its restart, as the kernel's own completed call
would be.
"""

from __future__ import annotations

import errno
import threading
from collections.abc import Callable, Hashable

from brandpy.runtime.acting import as_tracee
from brandpy.runtime.call import Call, Inject

Result = int | Inject
# How a deferred call answers (installed by the engine, brandpy/supervise/
# native_engine.py): what the call returned, None when the tracee was
# interrupted meanwhile and the result was not delivered. None here: there
# is no notification to answer later, the call is made at once.
Answer = Callable[[Call, Result], "int | None"]
answer: Answer | None = None


class _Pending:
    def __init__(self, call: Call) -> None:
        self.call = call
        self.result: Result | None = None


_lock = threading.Lock()
_pending: dict[tuple[int, Hashable], _Pending] = {}


def waiting(tid: int) -> bool:
    """Whether tid waits for a deferred call in flight."""
    with _lock:
        return any(key[0] == tid and pending.result is None
                   for key, pending in _pending.items())


def defer(call: Call, key: Hashable, work: Callable[[], Result],
          unused: Callable[[], None] = lambda: None) -> Result | None:
    """Make `work` (the call, with the caller's identity) on a thread; None:
    the answer comes later. `key` tells a restart of the same call, which
    joins the one in flight (`unused` then releases what work held)."""
    answer_ = answer
    if answer_ is None:
        return _run(call, work)
    full = (call.tid, key)
    with _lock:
        pending = _pending.get(full)
        if pending is not None:
            unused()
            if pending.result is None:
                pending.call = call      # still running: answer this notification
                return None
            del _pending[full]
            return pending.result        # done while the tracee was interrupted
        pending = _pending[full] = _Pending(call)
    threading.Thread(target=_thread, args=(full, pending, work, answer_), daemon=True,
                     name="brandpy-deferred").start()
    return None


def _run(call: Call, work: Callable[[], Result]) -> Result:
    with as_tracee(call.proc.cred, call.sb):
        try:
            return work()
        except OSError as exc:
            return -(exc.errno or errno.EIO)


def _thread(key: tuple[int, Hashable], pending: _Pending, work: Callable[[], Result],
            answer_: Answer) -> None:
    result = _run(pending.call, work)
    with _lock:
        if answer_(pending.call, result) is None:
            pending.result = result      # interrupted: keep it for the restart
            return
        _pending.pop(key, None)
