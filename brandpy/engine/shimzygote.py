"""The daemon's shim zygote: `python -m brandpy.engine.shimzygote FD`, a
child of the daemon with the shim's modules imported and the common
policy's decisions made (brandpy.supervise.container.warm_up), frozen for
the collector (gc.freeze), that forks each container's shim. A shim thus
costs a fork instead of a Python start and its imports, and shares the
zygote's pages until it writes them (its unique memory is what it
changes). The daemon's requests come over the socketpair FD (shimclient's
ShimForker): a container directory with the shim's stdin, stdout (where
it says "ready PID") and stderr (its log) attached. The zygote ends when
the daemon's end closes; shims it forked detach as before (shim.main) and
outlive it."""

from __future__ import annotations

import gc
import os
import signal
import socket
import sys
import traceback
from typing import NoReturn

from brandpy.supervise.container import warm_up

from . import shim

MAX_REQUEST = 4096


def run_shim(conn: socket.socket, cdir: str, fds: list[int]) -> NoReturn:
    """The forked child: become the shim the daemon would have started."""
    status = 1
    try:
        conn.close()
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        signal.signal(signal.SIGPIPE, signal.SIG_IGN)    # as shim's __main__
        os.setsid()
        for target, fd in enumerate(fds):
            os.dup2(fd, target)
            os.close(fd)
        os.chdir("/")
        status = shim.main([cdir])
    except SystemExit as exc:
        status = exc.code if isinstance(exc.code, int) else 1
    except BaseException:
        traceback.print_exc()
    finally:
        os._exit(status)


def serve(conn: socket.socket) -> int:
    warm_up()
    # the intermediate processes (shim.main forks to detach) are reaped by the kernel
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)
    gc.freeze()
    while True:
        try:
            data, fds, _, _ = socket.recv_fds(conn, MAX_REQUEST, 3)
        except InterruptedError:
            continue
        if not data:
            return 0      # the daemon went away
        if len(fds) != 3:
            for fd in fds:
                os.close(fd)
            print(f"brandpy shim zygote: a request without its 3 fds ({data!r})", file=sys.stderr)
            continue
        if os.fork() == 0:
            run_shim(conn, os.fsdecode(data), fds)
        for fd in fds:
            os.close(fd)


if __name__ == "__main__":
    sys.exit(serve(socket.socket(fileno=int(sys.argv[1]))))
