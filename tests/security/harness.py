"""The containment harness: a canary on the host, outside every container,
that an attack program run as a container's entrypoint tries to reach, and
the check afterwards that it did not.

The canary is a directory the user brandpy runs as owns (so only brandpy
stands in the way), holding:

- `secret`, `victim`: files with random contents; `victim` also carries
  random user.* xattrs (a value, and a name), `hlink` a symlink with a random
  target, `hostonly` an empty file whose inode number proves a stat reached
  it. An attacker must print one of these on stdout to prove a read.
- `exe`: an executable that prints a random token if anything runs it.
- `listen.sock`: a listening AF_UNIX socket; a connection is an escape.
- `dgram.sock`: a bound AF_UNIX datagram socket; a datagram is an escape.
- `many/`: for new names; with `many=True` also v0..v399 files and
  r0..r399 directories, for the attacks that remove, rename or link one
  name per attempt.

Every entry's type, mode, owner, size, times (mtime and ctime, so a chown to
the same owner shows), contents, symlink target and xattrs are snapshotted
before the run and compared after it: anything written, created, removed,
renamed, linked, chmod'ed or chown'ed is an escape. While the attack runs the
harness polls for evidence and stops the container at the first escape, so
an escaping case costs well under its time bound.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.conftest import REPO, Runner, leftovers

PROGRAMS = REPO / "tests" / "security" / "programs"
PLACEHOLDER = b"EXEC-TOKEN-PLACEHOLDER-0123456789abcdef"
MANY = 400          # attack.c's MANY
# The pause (microseconds) the supervisor makes between resolving a path and
# acting on it in these tests (brandpy/runtime/racepause.py).
RACE_PAUSE_US = 200
POLL_S = 0.05


def build(name: str, out_dir: Path) -> Path:
    """tests/security/programs/NAME.c as a static binary in out_dir."""
    out = out_dir / name
    subprocess.run(["gcc", "-static", "-O2", "-pthread", "-Wall", "-o", str(out),
                    str(PROGRAMS / f"{name}.c")], check=True)
    return out


Entry = tuple[object, ...]


def word() -> str:
    return secrets.token_hex(12)


def _entry(path: Path) -> Entry:
    st = os.lstat(path)
    body: object = None
    if stat.S_ISREG(st.st_mode):
        body = hashlib.sha256(path.read_bytes()).hexdigest()
    elif stat.S_ISLNK(st.st_mode):
        body = os.readlink(path)
    xattrs: tuple = ()
    if not stat.S_ISLNK(st.st_mode):
        xattrs = tuple(sorted((n, os.getxattr(path, n, follow_symlinks=False))
                              for n in os.listxattr(path, follow_symlinks=False)))
    return (stat.filemode(st.st_mode), st.st_uid, st.st_gid, st.st_size, st.st_mtime_ns,
            st.st_ctime_ns, body, xattrs)


FIELDS = ("mode", "uid", "gid", "size", "mtime", "ctime", "contents", "xattrs")


@dataclass
class Canary:
    """A host directory outside the container and what proves it was reached."""
    dir: Path
    uid: int
    proofs: dict[str, str] = field(default_factory=dict)   # what it proves -> text
    before: dict[str, Entry] = field(default_factory=dict)
    listener: socket.socket | None = None
    dgram: socket.socket | None = None
    connections: list[bytes] = field(default_factory=list)
    datagrams: list[bytes] = field(default_factory=list)

    @classmethod
    def create(cls, parent: Path, uid: int, exec_canary: Path, many: bool = False) -> Canary:
        """A canary below parent (keep its path shorter than the container's
        root: an attacker overwrites host paths the supervisor wrote)."""
        d = Path(tempfile.mkdtemp(prefix="c", dir=parent))
        c = cls(d, uid)
        c.proofs = {"secret": f"SECRET-{word()}", "victim": f"VICTIM-{word()}",
                    "hlink": f"LINK-{word()}", "xattr value": f"XATTR-{word()}",
                    "xattr name": f"user.n{word()}"}
        (d / "secret").write_text(c.proofs["secret"] + "\n")
        victim = d / "victim"
        victim.write_text(c.proofs["victim"] + "\n")
        os.setxattr(victim, "user.secret", c.proofs["xattr value"].encode())
        os.setxattr(victim, "user.keep", b"1")
        os.setxattr(victim, c.proofs["xattr name"], b"1")
        os.symlink(c.proofs["hlink"], d / "hlink")
        (d / "hostonly").touch()
        c.proofs["hostonly inode"] = f"ino={(d / 'hostonly').stat().st_ino} "
        # access() answers only yes or no: the attack says yes for a name
        # that exists on the host alone (attack.c never makes one)
        c.proofs["hostonly seen by access"] = "hostonly exists"
        token = f"EXEC-{secrets.token_hex(len(PLACEHOLDER) // 2)}"[:len(PLACEHOLDER)].encode()
        (d / "exe").write_bytes(exec_canary.read_bytes().replace(PLACEHOLDER, token))
        (d / "exe").chmod(0o755)
        c.proofs["exe ran"] = token.decode()
        many = d / "many"
        many.mkdir()
        for i in range(MANY if many else 0):
            (many / f"v{i}").write_text("many\n")
            (many / f"r{i}").mkdir()
        c.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        c.listener.bind(str(d / "listen.sock"))
        c.listener.listen(64)
        c.listener.setblocking(False)
        (d / "listen.sock").chmod(0o777)
        c.dgram = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        c.dgram.bind(str(d / "dgram.sock"))
        c.dgram.setblocking(False)
        (d / "dgram.sock").chmod(0o777)
        for path in [d, *d.rglob("*")]:
            os.lchown(path, uid, uid)
        d.chmod(0o755)
        c.before = c.snapshot()
        return c

    def snapshot(self) -> dict[str, Entry]:
        found = {".": _entry(self.dir)}
        for root, dirs, files in os.walk(self.dir):
            for name in dirs + files:
                path = Path(root) / name
                found[str(path.relative_to(self.dir))] = _entry(path)
        return found

    def quick_changed(self) -> bool:
        """Cheap poll while the attack runs: the top-level entries (and so
        entries added to or removed from many/)."""
        try:
            now = {p.name: _entry(p) for p in self.dir.iterdir()}
        except OSError:
            return True
        now["."] = _entry(self.dir)
        return any(now.get(k) != self.before.get(k) for k in set(now) | {
            k for k in self.before if "/" not in k})

    def accept(self) -> None:
        """Take what reached the sockets: connections and datagrams."""
        while self.dgram is not None:
            try:
                self.datagrams.append(self.dgram.recv(256))
            except BlockingIOError:
                break
        while self.listener is not None:
            try:
                conn, _ = self.listener.accept()
            except BlockingIOError:
                return
            conn.settimeout(1)
            try:
                self.connections.append(conn.recv(256))
            except OSError:
                self.connections.append(b"")
            conn.close()

    def evidence(self, text: str) -> list[str]:
        """What of the canary the attack got hold of (its output is text)."""
        found = [f"{what} read: {proof!r} in the container's output"
                 for what, proof in self.proofs.items() if proof in text]
        self.accept()
        found += [f"connected to the host's listen.sock (sent {data!r})"
                  for data in self.connections]
        found += [f"sent a datagram to the host's dgram.sock ({data!r})"
                  for data in self.datagrams]
        after = self.snapshot()
        for name in sorted(set(self.before) | set(after)):
            old, new = self.before.get(name), after.get(name)
            if old == new:
                continue
            if old is None:
                found.append(f"created {name} ({new[0]})")
            elif new is None:
                found.append(f"removed {name}")
            else:
                changed = [f"{f} {a!r}->{b!r}" for f, a, b in zip(FIELDS, old, new, strict=True)
                           if a != b]
                found.append(f"changed {name}: " + ", ".join(changed))
        return found

    def remove(self) -> None:
        for sock in (self.listener, self.dgram):
            if sock is not None:
                sock.close()
        self.listener = self.dgram = None
        shutil.rmtree(self.dir, ignore_errors=True)


@dataclass
class Outcome:
    escapes: list[str]
    status: int | None
    out: str
    err: str
    seconds: float

    def __repr__(self) -> str:
        return (f"Outcome(escapes={self.escapes[:20]!r}, status={self.status}, "
                f"seconds={self.seconds:.1f}, out={self.out[-1500:]!r}, err={self.err[-1500:]!r})")


def run_attack(runner: Runner, rootfs: Path, argv: list[str], canary: Canary, bound: float,
               opts: tuple[str, ...] = (), pause_us: int = RACE_PAUSE_US) -> Outcome:
    """Run argv as the container's entrypoint with the race pause on, stop
    it at the first sign of escape or after bound seconds (plus start-up),
    and return what escaped."""
    out_path, err_path = rootfs.parent / "attack.out", rootfs.parent / "attack.err"
    tmp = rootfs.parent / "tmp"      # brandpy run's state directory goes there
    tmp.mkdir(exist_ok=True)
    os.chown(tmp, runner.uid, runner.uid)
    env = {**runner.env(), "BRANDPY_TEST_RACE_PAUSE_US": str(pause_us), "TMPDIR": str(tmp)}
    start = time.monotonic()
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        proc = subprocess.Popen(runner.cmd(rootfs, argv, *opts), stdin=subprocess.DEVNULL,
                                stdout=out, stderr=err, env=env, cwd="/")
    deadline = start + 4 * bound + 30      # attack.c's cap, start-up, a slow machine
    try:
        while proc.poll() is None and time.monotonic() < deadline:
            time.sleep(POLL_S)
            canary.accept()
            text = out_path.read_bytes().decode(errors="replace")
            if canary.connections or canary.datagrams or canary.quick_changed() or any(
                    p in text for p in canary.proofs.values()):
                break
    finally:
        _end(proc, rootfs)
    seconds = time.monotonic() - start
    out_text = out_path.read_bytes().decode(errors="replace")
    err_text = err_path.read_bytes().decode(errors="replace")
    out_path.unlink()
    err_path.unlink()
    escapes = canary.evidence(out_text + err_text)
    _no_leftovers(rootfs)
    return Outcome(escapes, proc.returncode, out_text, err_text, seconds)


def _end(proc: subprocess.Popen, rootfs: Path) -> None:
    """End the container as `docker kill` would: SIGKILL to its processes
    (SIGTERM to `brandpy run` reaches only the container's PID 1, which
    ignores it as Linux's init does), after which `brandpy run` cleans up
    and exits; SIGKILL to `brandpy run` itself only if it does not."""
    deadline = time.monotonic() + 10
    while proc.poll() is None and time.monotonic() < deadline:
        for entry in leftovers(rootfs):
            try:
                os.kill(int(entry.split()[0]), signal.SIGKILL)
            except ProcessLookupError:
                pass
        try:
            proc.wait(0.1)
        except subprocess.TimeoutExpired:
            pass
    if proc.poll() is None:
        proc.kill()
    proc.wait(30)


def reap_leftovers(rootfs: Path, grace: float = 0.0) -> list[str]:
    """The container's processes still running (after `grace` seconds for
    them to go), killed so that the test leaves none."""
    deadline = time.monotonic() + grace
    while (left := leftovers(rootfs)) and time.monotonic() < deadline:
        time.sleep(0.05)
    for entry in left:
        try:
            os.kill(int(entry.split()[0]), signal.SIGKILL)
        except ProcessLookupError:
            pass
    return left


def _no_leftovers(rootfs: Path) -> None:
    deadline = time.monotonic() + 5
    while (left := leftovers(rootfs)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not left, f"processes of the container outlived brandpy run: {left}"
