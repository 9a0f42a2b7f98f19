"""Streams through the real docker CLI: attach with stdin, run -it and
exec -it through a real pty, exec exit codes, detach keys, docker cp both
ways, diff and export."""

from __future__ import annotations

import io
import os
import pty
import select
import signal
import tarfile
import time

from tests.api.conftest import wait_for


def in_pty(daemon, args: list[str], feed: list[tuple[float, bytes]] = (),
           timeout: float = 30) -> tuple[int, bytes]:
    """Run `docker ARGS` with a pty as its terminal; write each feed chunk
    after its delay; return (exit status, what the terminal showed)."""
    pid, fd = pty.fork()
    if pid == 0:
        os.environ.update(DOCKER_HOST=daemon.host, DOCKER_CONFIG=str(daemon.root / "cfg"))
        os.execvp("docker", ["docker", *args])
    out = b""
    start = time.time()
    pending = list(feed)
    try:
        while time.time() - start < timeout:
            if pending and time.time() - start >= pending[0][0]:
                os.write(fd, pending.pop(0)[1])
            ready, _, _ = select.select([fd], [], [], 0.05)
            if ready:
                try:
                    data = os.read(fd, 4096)
                except OSError:
                    break
                if not data:
                    break
                out += data
        else:
            os.kill(pid, signal.SIGKILL)
    finally:
        os.close(fd)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), out


def test_attach_stdin_pipe(daemon):
    r = daemon.docker("run", "-i", "--rm", "busybox", "sh", "-c", "tr a-z A-Z; exit 4",
                      input="hello\nworld\n")
    assert (r.status, r.out) == (4, "HELLO\nWORLD\n"), r


def test_stdout_and_stderr_are_separate_streams(daemon):
    r = daemon.docker("run", "--rm", "busybox", "sh", "-c", "echo out; echo err >&2")
    assert (r.out, r.err) == ("out\n", "err\n"), r


def test_run_it_through_a_pty(daemon):
    status, out = in_pty(daemon, ["run", "-it", "--rm", "busybox", "sh", "-c",
                                  "tty; read line; echo got:$line; exit 6"],
                         feed=[(1.0, b"typed\r")])
    text = out.decode(errors="replace")
    assert status == 6, text
    assert "/dev/pts/" in text and "got:typed" in text, text
    if os.geteuid() == 0:    # the first pty of its own devpts instance, as in Docker
        assert "/dev/pts/0" in text, text


def test_exec_and_exec_it(daemon):
    cid = daemon.ok("run", "-d", "busybox", "sleep", "60").strip()
    try:
        r = daemon.docker("exec", cid, "sh", "-c", "echo in-exec; echo $$; exit 5")
        assert r.status == 5 and r.out.startswith("in-exec\n"), r
        missing = daemon.docker("exec", cid, "nosuch")
        # dockerd: 126 for any exec that could not start (127 is `docker run`'s)
        assert missing.status == 126 and "executable file not found" in missing.out + missing.err
        assert daemon.docker("exec", "-i", cid, "cat", input="piped\n").out == "piped\n"
        assert daemon.ok("exec", "-w", "/tmp", "-e", "X=1", cid, "sh", "-c",
                         "echo $PWD $X") == "/tmp 1\n"
        status, out = in_pty(daemon, ["exec", "-it", cid, "sh", "-c", "tty; exit 3"])
        # its terminal: as root the first of the container's own devpts instance
        assert status == 3 and (b"/dev/pts/0" if os.geteuid() == 0 else b"/dev/pts/") in out, out
        assert daemon.ok("exec", "-u", "app", cid, "id") == \
            "uid=1000(app) gid=1000(app) groups=1000(app)\n"
        assert daemon.ok("exec", "-u", "0:1000", cid, "id", "-g") == "1000\n"
        bad = daemon.docker("exec", "-u", "nosuch", cid, "true")
        assert bad.status != 0 and "unable to find user nosuch" in bad.out + bad.err, bad
    finally:
        daemon.ok("rm", "-f", cid)


def test_attach_and_detach_keys(daemon):
    cid = daemon.ok("run", "-dit", "busybox", "sh", "-c",
                    'while read line; do echo "got:$line"; done').strip()
    try:
        status, out = in_pty(daemon, ["attach", cid],
                             feed=[(1.0, b"hello\r"), (2.0, b"\x10\x11")], timeout=20)
        assert b"got:hello" in out, out
        # the CLI reports the detach as "read escape sequence" (status 1 in CLI 28)
        assert b"read escape sequence" in out and status in (0, 1), (status, out)
        assert daemon.ok("inspect", "-f", "{{.State.Running}}", cid) == "true\n"
    finally:
        daemon.ok("rm", "-f", cid)


def test_cp_both_ways(daemon, tmp_path):
    cid = daemon.ok("run", "-d", "busybox", "sleep", "60").strip()
    try:
        (tmp_path / "file.txt").write_text("to the container\n")
        tree = tmp_path / "tree"
        (tree / "sub").mkdir(parents=True)
        (tree / "sub" / "leaf").write_text("leaf\n")
        os.symlink("sub/leaf", tree / "link")
        daemon.ok("cp", str(tmp_path / "file.txt"), f"{cid}:/tmp/")
        daemon.ok("cp", str(tree), f"{cid}:/tmp/tree")
        assert daemon.ok("exec", cid, "cat", "/tmp/file.txt", "/tmp/tree/link") == \
            "to the container\nleaf\n"
        daemon.ok("exec", cid, "sh", "-c", "mkdir -p /out/d && echo back > /out/d/f")
        daemon.ok("cp", f"{cid}:/out/d", str(tmp_path / "back"))
        assert (tmp_path / "back" / "f").read_text() == "back\n"
        daemon.ok("cp", f"{cid}:/etc/passwd", str(tmp_path / "passwd"))
        assert (tmp_path / "passwd").read_text().startswith("root:")
        missing = daemon.docker("cp", f"{cid}:/no/such", str(tmp_path / "x"))
        assert missing.status == 1 and "Could not find the file /no/such" in missing.err
        # a symlink in the container never leads out of its rootfs
        daemon.ok("exec", cid, "ln", "-s", "/", "/tmp/escape")
        daemon.ok("cp", f"{cid}:/tmp/escape/etc/hostname", str(tmp_path / "hn"))
        assert (tmp_path / "hn").read_text().strip() == cid[:12]
        diff = daemon.ok("diff", cid).splitlines()
        assert "A /tmp/file.txt" in diff and "A /out/d/f" in diff
        assert not any(line.endswith("/etc/hosts") for line in diff)
    finally:
        daemon.ok("rm", "-f", cid)


def test_export(daemon, tmp_path):
    cid = daemon.ok("create", "busybox", "true").strip()
    try:
        out = tmp_path / "fs.tar"
        daemon.ok("export", "-o", str(out), cid)
        with tarfile.open(out) as tar:
            names = set(tar.getnames())
            assert "bin/busybox" in names and "etc/passwd" in names
            assert tar.getmember("bin/busybox").uid == 0
    finally:
        daemon.ok("rm", cid)


def test_wait_returns_after_start(daemon):
    cid = daemon.ok("create", "busybox", "sh", "-c", "sleep 0.3; exit 7").strip()
    proc_out = io.StringIO()
    daemon.ok("start", cid)
    proc_out.write(daemon.ok("wait", cid))
    assert proc_out.getvalue() == "7\n"
    assert wait_for(lambda: daemon.ok("inspect", "-f", "{{.State.Status}}", cid) == "exited\n")
    daemon.ok("rm", cid)
