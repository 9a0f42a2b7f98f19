"""`exec`: another process in a running container, from a process.json
(`--process`, as containerd passes it) or from arguments and flags.

The process is the monitor's child, so its caller could not reap it; the
caller reaps us instead. In the foreground this command waits and exits with
the process's status; with --detach it leaves a small proxy behind (the pid
in --pid-file, as runc's is the process's): the proxy exits with the
process's status, forwards the signals it gets, and if it is killed, the
monitor kills the process, so signalling the pid acts on the process."""

from __future__ import annotations

import json
import os
import signal
import sys
from dataclasses import asdict
from typing import Any

from . import control
from .console import open_pty, relay, send_console, send_pidfd
from .errors import OciError
from .lifecycle import FORWARDED, write_pid_file
from .options import Options
from .process import parse_process
from .state import CREATED, PAUSED, RUNNING, ContainerDir


def process_from_args(cdir: ContainerDir, args: list[str], cwd: str, env: list[str],
                      user: str, tty: bool) -> dict[str, Any]:
    """runc's rule: the container's own process, with what the flags change."""
    config = json.loads(cdir.plan_file.read_text())["process"]
    obj: dict[str, Any] = {"args": args, "env": config["env"] + env,
                           "cwd": cwd or config["cwd"], "terminal": tty,
                           "user": {"uid": config["uid"], "gid": config["gid"]}}
    if user:
        uid, _, gid = user.partition(":")
        if not uid.isdigit() or (gid and not gid.isdigit()):
            raise OciError(f"--user {user!r}: use UID[:GID] (numbers)")
        obj["user"] = {"uid": int(uid), "gid": int(gid or 0)}
    return obj


def exec_process(opts: Options, cid: str, args: list[str], process_file: str = "",
                 detach: bool = False, pid_file: str = "", console_socket: str = "",
                 tty: bool = False, cwd: str = "", env: list[str] | None = None,
                 user: str = "", preserve_fds: int = 0, pidfd_socket: str = "") -> int:
    cdir = ContainerDir(opts.root, cid)
    status = cdir.load()["status"]
    if status == PAUSED:
        raise OciError("cannot exec in a paused container: resume it first")
    if status not in (CREATED, RUNNING):
        raise OciError("cannot exec in a stopped container")
    if process_file:
        try:
            with open(process_file) as f:
                obj = json.load(f)
        except OSError as exc:
            raise OciError(f"--process {process_file}: {exc.strerror}") from None
        except json.JSONDecodeError as exc:
            raise OciError(f"--process {process_file} is not valid JSON: {exc}") from None
    elif args:
        obj = process_from_args(cdir, args, cwd, env or [], user, tty)
    else:
        raise OciError("exec needs a command, or --process FILE")
    proc, notes = parse_process(obj, "exec process")
    for level, message in notes:
        opts.log.write(level, message)
    master = slave = None
    if proc.terminal:
        if detach and not console_socket:
            raise OciError("exec --detach with a terminal needs --console-socket to send it to")
        master, slave = open_pty(proc.console_size)
        stdio = [slave, slave, slave]
    else:
        stdio = [0, 1, 2]
    chan = control.connect(cdir)
    try:
        reply = control.call(chan, cdir, "exec", stdio + list(range(3, 3 + preserve_fds)),
                             process=asdict(proc))
    finally:
        if slave is not None:
            os.close(slave)
    if master is not None and console_socket:
        send_console(console_socket, master)
        os.close(master)
        master = None
    if detach:
        proxy = os.fork()
        if proxy == 0:
            os._exit(_proxy(chan))
        if pid_file:
            write_pid_file(pid_file, proxy)
        if pidfd_socket:
            send_pidfd(pidfd_socket, proxy)
        opts.log.debug(f"exec in {cid}: process {reply['pid']}, proxy {proxy}")
        return 0
    if pid_file:
        write_pid_file(pid_file, os.getpid())
    if pidfd_socket:
        send_pidfd(pidfd_socket, os.getpid())
    _forward_signals(chan)
    if master is not None:
        relay(master)
    return _wait_exit(chan)


def _forward_signals(chan: control.Channel) -> None:
    def forward(sig: int, _frame: object) -> None:
        try:
            chan.send({"signal": sig})
        except OSError:
            pass

    for sig in FORWARDED:
        signal.signal(sig, forward)


def _wait_exit(chan: control.Channel) -> int:
    while True:
        message, fds = chan.recv()
        for fd in fds:
            os.close(fd)
        if message is None:
            print("brandpy-runc exec: the container's monitor went away", file=sys.stderr)
            return 255
        if "exit" in message:
            return int(message["exit"])


def _proxy(chan: control.Channel) -> int:
    """The detached proxy: off the caller's stdio (containerd reads exec's
    output until EOF) and its session, then wait for the process."""
    try:
        os.setsid()
        null = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(null, fd)
        os.close(null)
        _forward_signals(chan)
        return _wait_exit(chan)
    except BaseException:
        return 255
