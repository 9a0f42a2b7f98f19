"""Terminals: the pty master sent over --console-socket (SCM_RIGHTS), as
containerd's shim receives it, and relayed by run/exec in the foreground."""

from __future__ import annotations

import errno
import os
import pty
import select
import signal
import socket
import time
from pathlib import Path

from .conftest import Bundle, Runc, runtime_env


def read_until(fd: int, wanted: bytes, timeout: float = 15) -> bytes:
    """Output of a pty master until `wanted` shows up or the slave closes."""
    out = b""
    deadline = time.monotonic() + timeout
    while wanted not in out and time.monotonic() < deadline:
        if not select.select([fd], [], [], 0.1)[0]:
            continue
        try:
            data = os.read(fd, 4096)
        except OSError as exc:
            if exc.errno != errno.EIO:
                raise
            break
        if not data:
            break
        out += data
    return out


def console_socket(path: Path) -> socket.socket:
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen(1)
    return server


def receive_master(server: socket.socket) -> tuple[bytes, int]:
    conn, _ = server.accept()
    with conn:
        name, fds, _, _ = socket.recv_fds(conn, 1024, 1)
    return name, fds[0]


def test_create_sends_the_terminal_to_the_console_socket(runc: Runc, bundle: Bundle, tmp_path):
    server = console_socket(tmp_path / "console.sock")
    b = bundle(["sh", "-c", "tty; stty size; read x; echo got $x; exit 4"],
               process_terminal=True, process_consoleSize={"height": 30, "width": 100})
    runc.ok("create", "--bundle", str(b), "--console-socket", str(tmp_path / "console.sock"),
            "t")
    _, master = receive_master(server)
    assert os.isatty(master)
    runc.ok("start", "t")
    os.write(master, b"hello\n")
    out = read_until(master, b"got hello")
    assert b"/dev/pts/" in out and b"30 100" in out and b"got hello" in out
    runc.wait_status("t", "stopped")
    assert runc.state("t")["brandpy"]["exitStatus"] == 4
    os.close(master)
    runc.ok("delete", "t")


def test_pidfd_socket_gets_a_pidfd_of_the_containers_pid(runc: Runc, bundle: Bundle, tmp_path):
    server = console_socket(tmp_path / "pidfd.sock")
    runc.ok("create", "--bundle", str(bundle(["true"])), "--pidfd-socket",
            str(tmp_path / "pidfd.sock"), "p")
    _, pidfd = receive_master(server)
    fdinfo = Path(f"/proc/self/fdinfo/{pidfd}").read_text()
    assert f"Pid:\t{runc.state('p')['pid']}\n" in fdinfo
    os.close(pidfd)
    runc.ok("delete", "p")


def test_exec_with_a_terminal_over_the_console_socket(runc: Runc, bundle: Bundle, tmp_path):
    runc.ok("run", "-d", "--bundle", str(bundle(["sleep", "30"])), "x")
    server = console_socket(tmp_path / "exec.sock")
    runc.ok("exec", "--tty", "--detach", "--console-socket", str(tmp_path / "exec.sock"), "x",
            "sh", "-c", "tty; read x; echo exec got $x")
    _, master = receive_master(server)
    os.write(master, b"there\n")
    assert b"exec got there" in read_until(master, b"exec got there")
    os.close(master)
    runc.ok("delete", "--force", "x")


def test_run_in_the_foreground_relays_its_terminal(runc: Runc, bundle: Bundle):
    b = bundle(["sh", "-c", "read x; echo fg got $x; exit 6"], process_terminal=True)
    pid, master = pty.fork()
    if pid == 0:
        cmd = runc.cmd("run", "--bundle", str(b), "fg")
        os.execve(cmd[0], cmd, runtime_env())
    status = (0, 0)
    try:
        os.write(master, b"typed\r")   # typed ahead: the relay keeps it
        out = read_until(master, b"fg got typed")
        assert b"fg got typed" in out
        deadline = time.monotonic() + 10
        while (status := os.waitpid(pid, os.WNOHANG))[0] == 0:
            assert time.monotonic() < deadline, "run did not exit with its container"
            time.sleep(0.05)
        assert os.waitstatus_to_exitcode(status[1]) == 6
    finally:
        os.close(master)
        if status[0] == 0:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
