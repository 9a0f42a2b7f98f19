"""The kernel's walls under the translation layer (Landlock): with a handler
deliberately broken (BRANDPY_TEST_BROKEN_HANDLER: the calls run with the
container's raw guest paths and PIDs), a container still reaches nothing of
the host. Each attack is one line of tests/security/programs/walls_attack.c,
run as the entrypoint, against a host side with canaries: a secret to read,
files to write and truncate, a directory to create, remove, rename and link
in, a program to exec, listening abstract and pathname unix sockets and a
process to kill, and the calls Landlock does not control.
The control cases run the same attacks with the walls off
(BRANDPY_TEST_NO_LANDLOCK=1 and BRANDPY_TEST_NO_NAMESPACES=1) and see
every one succeed: the broken handler truly hands the host to the kernel,
and these tests can fail. The container's namespaces (as root, and
unprivileged in a user namespace of its own where the host allows one)
are walls of their own: a root of the container's paths alone, and a
host PID names nothing in its PID namespace."""

from __future__ import annotations

import errno
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from brandpy.runtime import landlock
from brandpy.runtime.faults import BROKEN_HANDLER, BROKEN_PERFORM
from brandpy.runtime.loopback import descendants
from brandpy.runtime.namespaces import NAMESPACES_OFF
from tests.api.conftest import Daemon, image_tar
from tests.conftest import SETPRIV, Runner, private_rootfs
from tests.oci.conftest import Bundle, Runc, bundle, runc, template, workdir  # noqa: F401
from tests.security.harness import build

BROKEN = ("openat,truncate,mkdir,mknodat,unlink,rmdir,rename,link,symlink,execveat,bind,"
          "connect,kill,chmod,chown,utimensat,setxattr,newfstatat")

pytestmark = pytest.mark.skipif(landlock.abi() < 6, reason="needs Landlock ABI 6 (Linux 6.12+)")


@pytest.fixture(scope="session")
def attacker(world_tmp: Path) -> Path:
    return build("walls_attack", world_tmp)


@dataclass
class Host:
    """The host side: canaries outside every container, each reachable by
    uid 65534 too, so that only brandpy stands in the way."""
    top: Path
    attacker: Path
    abstract: str = field(default_factory=lambda: "brandpy-walls-" + secrets.token_hex(4))
    secret: str = field(default_factory=lambda: "canary-" + secrets.token_hex(8))
    received: list[bytes] = field(default_factory=list)        # by the abstract socket
    received_path: list[bytes] = field(default_factory=list)   # by the pathname one
    victim: subprocess.Popen | None = None

    def make(self) -> None:
        self.top.chmod(0o755)
        (self.top / "secret").write_text(self.secret + "\n")
        for name in ("victim", "trunc"):
            (self.top / name).write_text("intact\n")
            (self.top / name).chmod(0o666)
        w = self.top / "w"
        w.mkdir()
        for name in ("old", "old2", "old3"):
            (w / name).touch()
            (w / name).chmod(0o666)
        (w / "rmd").mkdir()
        (w / "rmd").chmod(0o777)
        w.chmod(0o777)
        shutil.copy(self.attacker, self.top / "prog")
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(b"\0" + self.abstract.encode())
        self.path_listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.path_listener.bind(str(self.top / "listen"))
        (self.top / "listen").chmod(0o777)
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._accept, args=(sock, got), daemon=True)
                         for sock, got in ((self.listener, self.received),
                                           (self.path_listener, self.received_path))]
        for sock, thread in zip((self.listener, self.path_listener), self._threads, strict=True):
            sock.listen(8)
            sock.settimeout(0.2)
            thread.start()
        self.victim = subprocess.Popen(SETPRIV + ["sleep", "300"])

    def _accept(self, listener: socket.socket, received: list[bytes]) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                continue
            with conn:
                conn.settimeout(2)
                try:
                    received.append(conn.recv(64))
                except OSError:
                    received.append(b"")

    def close(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join()
        self.listener.close()
        self.path_listener.close()
        if self.victim is not None:
            self.victim.kill()
            self.victim.wait()

    def attacks(self) -> list[str]:
        t, w = self.top, self.top / "w"
        assert self.victim is not None
        return [f"read:{t}/secret", f"list:{t}", f"write:{t}/victim", f"truncate:{t}/trunc",
                f"create:{w}/new", f"mkdir:{w}/d", f"mkfifo:{w}/fifo", f"unlink:{w}/old2",
                f"rmdir:{w}/rmd", f"rename:{w}/old:{w}/renamed", f"link:{w}/old3:{w}/hard",
                f"symlink:{w}/sym:x", f"exec:{t}/prog", f"bind:{w}/sock",
                f"abstract:{self.abstract}", f"kill:{self.victim.pid}"]

    def untouched(self) -> list[str]:
        """What the host shows of the attacks (nothing, when the walls held)."""
        seen = []
        if sorted(os.listdir(self.top / "w")) != ["old", "old2", "old3", "rmd"]:
            seen.append(f"w/ now holds {sorted(os.listdir(self.top / 'w'))}")
        for name in ("victim", "trunc"):
            if (self.top / name).read_text() != "intact\n":
                seen.append(f"{name} changed")
        if self.received:
            seen.append(f"the abstract socket received {self.received}")
        if self.received_path:
            seen.append(f"the pathname socket received {self.received_path}")
        if self.victim is not None and self.victim.poll() is not None:
            seen.append("the host process was killed")
        return seen


@pytest.fixture
def host(world_tmp: Path, attacker: Path) -> Iterator[Host]:
    h = Host(Path(tempfile.mkdtemp(dir=world_tmp)), attacker)
    h.make()
    yield h
    h.close()
    shutil.rmtree(h.top, ignore_errors=True)


def outcomes(out: str) -> dict[str, str]:
    """attack name -> "ok [...]" or "errno N", from the attacker's lines."""
    found = {}
    for line in out.splitlines():
        name, _, rest = line.partition(" ")
        found[name] = rest
    return found


# What Landlock answers: EACCES for files, EPERM for the scoped IPC.
WALLED = {name: f"errno {errno.EPERM if name in ('abstract', 'kill') else errno.EACCES}"
          for name in ("read", "list", "write", "truncate", "create", "mkdir", "mkfifo",
                       "unlink", "rmdir", "rename", "link", "symlink", "exec", "bind",
                       "abstract", "kill")}
# In the container's namespaces (as root, and unprivileged in its user
# namespace) its root holds nothing of the host's but what it was given (the
# spawner pivots into it): a host path names nothing there (ENOENT) before
# Landlock is asked; and its PID namespace has no process of the host's PID
# (ESRCH) before Landlock would refuse the signal.
WALLED_ROOT = {**WALLED, **{name: f"errno {errno.ENOENT}" for name in WALLED
                            if name not in ("abstract", "kill")},
               "kill": f"errno {errno.ESRCH}"}
# every wall off: Landlock, and as root the namespaces
CONTROL = (landlock.TEST_OFF, NAMESPACES_OFF)


def walled(brandpy: Runner) -> dict[str, str]:
    return WALLED_ROOT if brandpy.namespaced else WALLED


def attack(brandpy: Runner, rootfs: Path, host: Host, off: tuple[str, ...] = (),
           attacks: list[str] | None = None, broken: tuple[str, str] = (BROKEN_HANDLER, BROKEN),
           opts: tuple[str, ...] = ()) -> dict[str, str]:
    """The attacks' outcomes with the walls `off` turned off and the
    calls `broken` names broken (a fault switch, its value)."""
    shutil.copy(host.attacker, rootfs / "attack")
    os.chown(rootfs / "attack", rootfs.stat().st_uid, rootfs.stat().st_gid)
    env = {**brandpy.env(), broken[0]: broken[1]} | dict.fromkeys(off, "1")
    argv = ["/attack", *(host.attacks() if attacks is None else attacks)]
    p = subprocess.run(brandpy.cmd(rootfs, argv, *opts), env=env,
                       capture_output=True, text=True, timeout=120, cwd="/")
    assert p.returncode == 0, (p.stdout, p.stderr)
    return outcomes(p.stdout)


def test_the_walls_hold_when_translation_is_broken(brandpy: Runner, busybox: Path,
                                                   host: Host) -> None:
    got = attack(brandpy, busybox, host)
    assert got == walled(brandpy)
    assert host.untouched() == []


def test_without_the_walls_the_broken_handler_reaches_the_host(brandpy: Runner, busybox: Path,
                                                               host: Host) -> None:
    got = attack(brandpy, busybox, host, CONTROL)
    assert got["read"] == f"ok {host.secret}"
    assert got["exec"] == "ok executed"
    assert all(got[name] == "ok " or name in ("read", "exec", "list") for name in WALLED), got
    assert "secret" in got["list"]
    assert len(host.untouched()) == 5, host.untouched()   # w/, victim, trunc, socket, kill


def test_calls_landlock_does_not_control_find_no_host(brandpy: Runner, busybox: Path,
                                                      host: Host) -> None:
    """chmod, chown, utimes, xattrs, stat and connecting to a pathname unix
    socket are not Landlock's: the container's pivoted root, which holds
    only its own paths, walls them, as root and unprivileged in its user
    namespace (without one, only the path layer does: see README). The
    control turns Landlock and the namespaces off: each reaches the host."""
    if not brandpy.namespaced:
        pytest.skip("no user namespaces here (see README, Walls)")
    victim = host.top / "victim"
    os.chown(victim, brandpy.uid, brandpy.uid)    # its owner may change it (the control run)
    before = os.stat(victim)
    names = ("chmod", "chown", "utimes", "setxattr", "stat")
    attacks = [f"{name}:{victim}" for name in names] + [f"connect:{host.top}/listen"]
    got = attack(brandpy, busybox, host, attacks=attacks)
    assert got == dict.fromkeys((*names, "connect"), f"errno {errno.ENOENT}")
    after = os.stat(victim)
    assert (after.st_mode, after.st_uid, after.st_mtime_ns) == \
        (before.st_mode, before.st_uid, before.st_mtime_ns)
    assert os.listxattr(victim) == []
    assert host.untouched() == []
    control = attack(brandpy, busybox, host, CONTROL, attacks=attacks)
    # (unprivileged, giving the file away is the host kernel's EPERM: no CAP_CHOWN)
    assert control == {**dict.fromkeys(names[:-1], "ok "), "stat": f"ok {before.st_size}",
                       "connect": "ok "} | \
        ({} if brandpy.uid == 0 else {"chown": f"errno {errno.EPERM}"})
    assert host.received_path == [b"pwned\n"]


# Performed calls the supervisor makes in its own hands with the container's
# raw path (BRANDPY_TEST_BROKEN_PERFORM), and the attacks that reach them.
PERFORMED = "open,openat,creat,mkdir,mkdirat,unlink,unlinkat,chmod,fchmodat"
HANDS = ("read", "list", "write", "create", "mkdir", "unlink", "chmod")


@pytest.mark.parametrize("opts", [(), ("--trace", "/dev/null")], ids=["", "trace"])
def test_the_supervisors_own_hands_are_walled(brandpy: Runner, busybox: Path, host: Host,
                                              opts: tuple[str, ...]) -> None:
    """A call the supervisor performs that goes wrong in its own hands (it
    opens, creates, makes, removes or changes the container's raw path as if
    it named a host file) finds nothing of the host's as root: the thread
    that performs is inside the container's mount namespace for the call
    (runtime/acting.py; the native engine's answers in C too), under both
    engines and the trace mode. The control turns the namespaces off and
    reaches the host. Unprivileged, a threaded supervisor cannot join the
    container's user namespace, so its hands are not walled (README)."""
    if brandpy.uid != 0:
        pytest.skip("unprivileged, the supervisor's own calls are not walled (README, Security)")
    attacks = [a for a in host.attacks() if a.split(":", 1)[0] in HANDS] + \
        [f"chmod:{host.top}/victim"]
    broken = (BROKEN_PERFORM, PERFORMED)
    got = attack(brandpy, busybox, host, attacks=attacks, broken=broken, opts=opts)
    assert got == dict.fromkeys(HANDS, f"errno {errno.ENOENT}")
    assert host.untouched() == []
    assert (host.top / "victim").stat().st_mode & 0o777 == 0o666
    control = attack(brandpy, busybox, host, CONTROL, attacks=attacks, broken=broken, opts=opts)
    assert control["read"] == f"ok {host.secret}"
    assert "secret" in control["list"]
    assert all(control[name] == "ok " for name in HANDS if name not in ("read", "list")), control
    assert host.untouched() == ["w/ now holds ['d', 'new', 'old', 'old3', 'rmd']",
                                "victim changed"]
    assert (host.top / "victim").stat().st_mode & 0o777 == 0o777


def _mount_ns(path: str) -> str | None:
    try:
        return os.readlink(f"{path}/ns/mnt")
    except OSError:
        return None           # gone meanwhile


def test_the_native_engine_waits_in_the_containers_mount_namespace(
        brandpy_root: Runner, world_tmp: Path, busybox_image: Path) -> None:
    """The native engine's thread answers calls in C between two stops: as
    root it rests inside the container's mount namespace (and leaves it
    only to run Python), so what it performs is walled as Python's is."""
    if brandpy_root.engine != "native":
        pytest.skip("the Python engine enters the namespace per performed call")
    rootfs = private_rootfs(world_tmp, busybox_image, None)
    sup = subprocess.Popen(brandpy_root.cmd(rootfs, ["/bin/sleep", "3"]),
                           env=brandpy_root.env(), cwd="/")
    try:
        home = os.readlink(f"/proc/{sup.pid}/ns/mnt")
        seen: set[str] = set()
        for _ in range(100):
            inside = {_mount_ns(f"/proc/{k}") for k in descendants(sup.pid)} - {home, None}
            threads = {_mount_ns(f"/proc/{sup.pid}/task/{t}")
                       for t in os.listdir(f"/proc/{sup.pid}/task")}
            seen |= threads & inside
            if seen:
                break
            time.sleep(0.05)
        assert seen, "no thread of the supervisor in the container's mount namespace"
    finally:
        assert sup.wait(timeout=30) == 0


@pytest.mark.parametrize("pidns", [True, False], ids=["pid-namespace", "control"])
def test_the_pid_namespace_alone_walls_host_processes(brandpy: Runner, busybox: Path,
                                                      host: Host, pidns: bool) -> None:
    """Without Landlock, kill(2) handed the host's PID untranslated (the
    broken handler): in the container's PID namespace (as root, and
    unprivileged in its user namespace) that PID names no process (ESRCH)
    and the host's process (uid 65534's, as the container's supervisor
    may be) lives; without the namespace the same attack kills it. The
    entrypoint is the namespace's PID 1."""
    if not brandpy.namespaced:
        pytest.skip("no user namespaces here (see README, Walls)")
    assert host.victim is not None
    off = (landlock.TEST_OFF,) if pidns else CONTROL
    got = attack(brandpy, busybox, host, off, attacks=["pid:", f"kill:{host.victim.pid}"])
    assert got["pid"] == "ok 1"
    if pidns:
        assert got["kill"] == f"errno {errno.ESRCH}"
        assert host.untouched() == []
    else:
        assert got["kill"] == "ok "
        host.victim.wait(timeout=10)
        assert host.untouched() == ["the host process was killed"]


def test_abstract_sockets_and_host_signals_are_out_of_reach_untranslated(
        brandpy: Runner, busybox: Path, host: Host) -> None:
    """Without any fault: abstract names are not paths, the translation
    hands them to the kernel as they are, and only the wall keeps the
    host's listeners out of reach."""
    shutil.copy(host.attacker, busybox / "attack")
    r = brandpy(busybox, ["/attack", f"abstract:{host.abstract}"])
    assert outcomes(r.out) == {"abstract": f"errno {errno.EPERM}"}, r
    assert host.received == []



# The attacks that need no host process of the test's own user: the daemon's
# and the OCI runtime's containers run as root here.
ENTRY_POINT_ATTACKS = ("read", "write", "create", "rename", "exec", "abstract", "kill")


def chosen(host: Host) -> list[str]:
    return [a for a in host.attacks() if a.split(":", 1)[0] in ENTRY_POINT_ATTACKS]


def check_walled(out: str, expected: dict[str, str]) -> None:
    """As root these containers have a network namespace of their own, and
    with it their own abstract socket names: the host's listener is not
    there to refuse (ECONNREFUSED) before the wall would (EPERM)."""
    got = outcomes(out)
    assert got.pop("abstract") in (expected["abstract"], f"errno {errno.ECONNREFUSED}"), out
    assert got == {name: expected[name] for name in ENTRY_POINT_ATTACKS if name != "abstract"}


def test_the_daemons_containers_are_walled(world_tmp: Path, host: Host) -> None:
    """docker run: the container's first process is spawned by its shim."""
    tools = Path(tempfile.mkdtemp(dir=world_tmp))
    tools.chmod(0o755)
    shutil.copy(host.attacker, tools / "attack")
    daemon = Daemon(env={**os.environ, BROKEN_HANDLER: BROKEN}).start()
    try:
        daemon.ok("import", str(image_tar("busybox")), "busybox:latest")
        r = daemon.docker("run", "--rm", "-v", f"{tools}:/tools:ro", "busybox",
                          "/tools/attack", *chosen(host))
    finally:
        daemon.destroy()
        shutil.rmtree(tools, ignore_errors=True)
    assert r.status == 0, r
    check_walled(r.out, WALLED_ROOT)
    assert host.untouched() == []


def test_the_oci_runtimes_containers_are_walled(runc: Runc, bundle: Bundle,  # noqa: F811
                                               host: Host,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(BROKEN_HANDLER, BROKEN)
    b = bundle(["/attack", *chosen(host)])
    shutil.copy(host.attacker, b / "rootfs" / "attack")
    r = runc("run", "--bundle", str(b), "walls")
    assert r.status == 0, r
    check_walled(r.out, WALLED_ROOT)
    assert host.untouched() == []
