"""Scratch directories that go away with the process that made them, even
one killed with SIGKILL (a supervisor `docker kill`ed with its container,
or a `brandpy run` a test harness kills): a janitor, started with the
first of them, holds the read end of a pipe whose write end only this
process has; when it reads EOF (this process ended, however), it removes
every directory it was given. The owner still removes its directories
itself when it can; the janitor then finds nothing left."""

from __future__ import annotations

import os
import tempfile

# The janitor is a background subshell of a shell that exits at once, so
# that it is no child of this process (a supervisor waits until it has
# none left): it reads one path per line from fd 3 until EOF, then removes
# them all, never crossing into a mount below them.
_SCRIPT = ('cd /; exec </dev/null; (IFS=; set --; while read -r p <&3; do set -- "$@" "$p"; '
           'done; [ $# -eq 0 ] || exec rm -rf --one-file-system -- "$@") &')


class _Janitor:
    def __init__(self) -> None:
        r, self.w = os.pipe2(os.O_CLOEXEC)
        # only the pipe and /dev/null: a descriptor of the caller's (a
        # client's stdout) held by the janitor would outlive the caller
        inherited = [fd for fd in _inheritable_fds() if fd > 3 and fd != r]
        try:
            # its own session: a ^C or a kill of the caller's process group
            # must leave it to do its work
            shell = os.posix_spawn(
                "/bin/sh", ["brandpy-janitor", "-c", _SCRIPT], {"PATH": "/usr/bin:/bin"},
                setsid=True, file_actions=[(os.POSIX_SPAWN_DUP2, r, 3),
                                           (os.POSIX_SPAWN_OPEN, 1, os.devnull, os.O_WRONLY, 0),
                                           (os.POSIX_SPAWN_DUP2, 1, 2),
                                           *((os.POSIX_SPAWN_CLOSE, fd) for fd in inherited)])
            os.waitpid(shell, 0)
        finally:
            os.close(r)

    def add(self, path: str) -> None:
        os.write(self.w, os.fsencode(path) + b"\n")


_janitor: _Janitor | None = None


def _inheritable_fds() -> list[int]:
    found = []
    for name in os.listdir("/proc/self/fd"):
        try:
            if os.get_inheritable(int(name)):
                found.append(int(name))
        except OSError:
            pass        # the listing's own descriptor, closed since
    return found


_spare: _Janitor | None = None     # made ahead for the next child (prepare)


def prepare() -> None:
    """Start now the janitor of the next process this one forks: a zygote
    does it between requests, which takes it (a shell's start, 2-9 ms
    here) off its next run's start-up."""
    global _spare
    if _spare is None:
        _spare = _Janitor()


def _forget() -> None:
    """In a forked child: the parent's janitor is the parent's (the child's
    copy of the write end would keep it waiting); the child gets its own,
    or the spare its parent made for it."""
    global _janitor, _spare
    if _janitor is not None:
        os.close(_janitor.w)
    _janitor, _spare = _spare, None


def _handed_over() -> None:
    """In the parent after a fork: its spare is the child's now (the
    parent's copy of the write end would keep it waiting)."""
    global _spare
    if _spare is not None:
        os.close(_spare.w)
        _spare = None


os.register_at_fork(after_in_child=_forget, after_in_parent=_handed_over)


def start() -> None:
    """Start this process's janitor now. A process about to become a child
    subreaper calls this first: the janitor, an orphan, would else be
    reparented to it."""
    global _janitor
    if _janitor is None:
        _janitor = _Janitor()


def mkdtemp(prefix: str, base: str | None = None) -> str:
    """tempfile.mkdtemp, removed when this process ends if not before."""
    path = tempfile.mkdtemp(prefix=prefix, dir=base)
    if "\n" in path:
        os.rmdir(path)
        raise ValueError(f"a scratch directory's path cannot hold a newline: {path!r}")
    start()
    assert _janitor is not None
    _janitor.add(path)
    return path
