"""Shared fixtures: the test images, writable rootfs copies, and a runner
for `brandpy run` as root or as an unprivileged user (uid 65534)."""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from brandpy.runtime.namespaces import NAMESPACES_OFF

REPO = Path(__file__).resolve().parent.parent
IMAGES = Path(os.environ.get("BRANDPY_TEST_IMAGES", "/var/cache/brandpy/images"))
NOBODY = 65534
SETPRIV = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"]
ENGINES = ["python", "native"]


@dataclass
class Result:
    status: int
    out: str
    err: str

    def __repr__(self) -> str:
        return f"Result(status={self.status}, out={self.out[-3000:]!r}, err={self.err[-3000:]!r})"


# -- tests leave /tmp and /dev/shm as they found them ---------------------------------
# pytest's own temp directories go below one removed at the end, and what
# appeared meanwhile is listed; entries named as brandpy and its tests name
# theirs fail the run under BRANDPY_TMP_STRICT=1 (`make test`: other programs
# on a shared machine make entries of their own).
SCRATCH = (Path("/tmp"), Path("/dev/shm"))
OURS = re.compile(r"(brandpy-|bp[a-z]?-|pytest-of-)")
_BEFORE = pytest.StashKey[set[Path]]()
_BASETEMP = pytest.StashKey[Path]()
_LEFT = pytest.StashKey[list[Path]]()


def _scratch_entries() -> set[Path]:
    found: set[Path] = set()
    for top in SCRATCH:
        try:
            found.update(top / name for name in os.listdir(top))
        except OSError:
            pass
    return found


def pytest_configure(config: pytest.Config) -> None:
    config.stash[_BEFORE] = _scratch_entries()
    if config.option.basetemp is None:
        base = Path(tempfile.mkdtemp(prefix="brandpy-pytest-", dir="/tmp"))
        config.option.basetemp = config.stash[_BASETEMP] = base


@pytest.hookimpl(trylast=True)    # after the session fixtures' teardown
def pytest_sessionfinish(session: pytest.Session) -> None:
    config = session.config
    if _BASETEMP in config.stash:
        shutil.rmtree(config.stash[_BASETEMP], ignore_errors=True)
    left = sorted(_scratch_entries() - config.stash[_BEFORE])
    config.stash[_LEFT] = left
    if os.environ.get("BRANDPY_TMP_STRICT") == "1" and session.exitstatus == 0 and \
            any(OURS.match(p.name) for p in left):
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter,
                            config: pytest.Config) -> None:
    left = config.stash.get(_LEFT, [])
    if left:
        terminalreporter.write_sep("=", "new in /tmp or /dev/shm since the session began", red=True)
        for path in left:
            mine = " (named as brandpy's: a leak)" if OURS.match(path.name) else ""
            terminalreporter.write_line(f"{path}{mine}")


def image(name: str) -> Path:
    path = IMAGES / name
    if not (IMAGES / "READY").exists() or not path.is_dir():
        pytest.fail(f"test image {path} missing: run `make images` (tests/images/build.sh)")
    return path


@pytest.fixture(scope="session")
def world_tmp() -> Path:
    """A temp dir every user can traverse (pytest's own is 0700 root)."""
    path = Path(tempfile.mkdtemp(prefix="brandpy-tests-", dir="/tmp"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def copy_rootfs(src: Path, dest: Path, owner: int | None = None) -> Path:
    subprocess.run(["cp", "-a", str(src), str(dest)], check=True)
    if owner is not None:
        subprocess.run(["chown", "-R", f"{owner}:{owner}", str(dest)], check=True)
    return dest


def readable_source(copy_dir: Path) -> str | None:
    """The source tree as uid 65534 can import it: None when the checkout
    itself is readable, else (CI may clone under a 0700 home) the path of a
    copy made in copy_dir."""
    probe = subprocess.run(SETPRIV + [sys.executable, "-c", "import brandpy._native, "
                                      "syscalls.table"], capture_output=True, cwd="/")
    if probe.returncode == 0:
        return None
    src = copy_dir / "src"
    for pkg in ("brandpy", "syscalls"):
        shutil.copytree(REPO / pkg, src / pkg, ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run(["chmod", "-R", "a+rX", str(src)], check=True)
    return str(src)


@pytest.fixture(scope="session")
def unpriv_pythonpath(world_tmp: Path) -> str | None:
    return readable_source(world_tmp)


@functools.lru_cache(maxsize=1)
def nobody_has_namespaces() -> bool:
    """Whether uid 65534 may make a user namespace and, in it, mount, PID,
    IPC and UTS namespaces here: then its containers get them, as root's
    do (brandpy/runtime/namespaces.py; some hosts forbid it)."""
    return subprocess.run(SETPRIV + ["unshare", "--user", "--map-current-user", "--mount",
                                     "--pid", "--ipc", "--uts", "--fork", "true"],
                          capture_output=True).returncode == 0


@dataclass
class Runner:
    """Runs `brandpy run` in a subprocess, as root or as uid 65534, with
    `extra` in its environment."""
    user: str
    engine: str
    pythonpath: str | None
    extra: dict[str, str] = field(default_factory=dict)

    def cli(self, *args: str) -> list[str]:
        """A brandpy command line, as this runner's user."""
        base = SETPRIV if self.user == "nobody" else []
        return base + [sys.executable, "-m", "brandpy", *args]

    def cmd(self, rootfs: Path | str, argv: list[str], *opts: str) -> list[str]:
        return self.cli("run", "--engine", self.engine, "--rootfs", str(rootfs), *opts,
                        "--", *argv)

    def call(self, *args: str, timeout: float = 120) -> Result:
        p = subprocess.run(self.cli(*args), capture_output=True, text=True, timeout=timeout,
                           env=self.env(), cwd="/")
        return Result(p.returncode, p.stdout, p.stderr)

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
        if self.pythonpath:
            env["PYTHONPATH"] = self.pythonpath
        return env | self.extra

    def __call__(self, rootfs: Path | str, argv: list[str], *opts: str, input: str = "",
                 timeout: float = 120) -> Result:
        p = subprocess.run(self.cmd(rootfs, argv, *opts), input=input, capture_output=True,
                           text=True, timeout=timeout, env=self.env(), cwd="/")
        return Result(p.returncode, p.stdout, p.stderr)

    def sh(self, rootfs: Path | str, script: str, *opts: str, **kw) -> Result:
        return self(rootfs, ["/bin/sh", "-c", script], *opts, **kw)

    @property
    def uid(self) -> int:
        return NOBODY if self.user == "nobody" else 0

    @property
    def namespaced(self) -> bool:
        """Whether its containers have their own (kernel) namespaces and
        PID numbering: as root, and unprivileged where user namespaces
        are allowed, unless switched off for a test."""
        if self.extra.get(NAMESPACES_OFF) == "1":
            return False
        return self.user == "root" or nobody_has_namespaces()


@pytest.fixture(params=ENGINES)
def engine(request) -> str:
    return request.param


@pytest.fixture(params=["root", "nobody"])
def brandpy(request, engine: str, unpriv_pythonpath: str | None) -> Runner:
    """`brandpy run`, once as root and once as uid 65534, for each engine."""
    return Runner(request.param, engine, unpriv_pythonpath)


@pytest.fixture
def brandpy_root(engine: str) -> Runner:
    return Runner("root", engine, None)


@pytest.fixture
def brandpy_flat(engine: str, unpriv_pythonpath: str | None) -> Runner:
    """`brandpy run` as uid 65534 without the user namespace (as on hosts
    that forbid them): no mount or PID namespace, brandpy's own PIDs."""
    return Runner("nobody", engine, unpriv_pythonpath, {NAMESPACES_OFF: "1"})


@pytest.fixture(scope="session")
def busybox_image() -> Path:
    return image("busybox")


@pytest.fixture(scope="session")
def debian_image() -> Path:
    return image("debian")


def private_rootfs(world_tmp: Path, src: Path, owner: int | None) -> Path:
    """A private writable copy of rootfs src that owner (None: root) owns."""
    dest = Path(tempfile.mkdtemp(dir=world_tmp)) / "rootfs"
    dest.parent.chmod(0o755)
    return copy_rootfs(src, dest, owner=owner)


@pytest.fixture
def busybox(tmp_path_factory, world_tmp: Path, brandpy: Runner, busybox_image: Path) -> Path:
    """A private writable busybox rootfs owned by the runner's user."""
    return private_rootfs(world_tmp, busybox_image, brandpy.uid or None)


@pytest.fixture
def flat_busybox(world_tmp: Path, busybox_image: Path) -> Path:
    """busybox for brandpy_flat: a private writable copy uid 65534 owns."""
    return private_rootfs(world_tmp, busybox_image, NOBODY)


@pytest.fixture
def outdir(world_tmp: Path, brandpy: Runner) -> Path:
    """A directory the runner's user can write its output files to."""
    path = Path(tempfile.mkdtemp(dir=world_tmp))
    os.chown(path, brandpy.uid, brandpy.uid)
    return path


@pytest.fixture(scope="session")
def debian_shared(world_tmp: Path, debian_image: Path) -> Path:
    """One Debian rootfs for the session; tests write only below /tmp in it."""
    return copy_rootfs(debian_image, world_tmp / "debian")


def leftovers(rootfs: Path) -> list[str]:
    """Processes still running from a rootfs (their cwd or exe inside it)."""
    found = []
    prefix = str(rootfs)
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        for link in ("cwd", "exe"):
            try:
                target = os.readlink(f"/proc/{entry}/{link}")
            except OSError:
                continue
            if target.startswith(prefix):
                found.append(f"{entry} {link}={target}")
                break
    return found


def build_program(name: str, out_dir: Path) -> Path:
    """tests/programs/NAME.c, built static so it runs in any rootfs."""
    out = out_dir / name
    subprocess.run(["gcc", "-static", "-O2", "-Wall", "-o", str(out),
                    str(REPO / "tests" / "programs" / f"{name}.c"), "-lpthread"], check=True)
    return out


@pytest.fixture(scope="session")
def probe_bin(world_tmp: Path) -> Path:
    return build_program("probe", world_tmp)


def install_probe(rootfs: Path, probe: Path) -> None:
    install_program(rootfs, probe)


def install_program(rootfs: Path, program: Path) -> None:
    """A built program at /usr/bin/NAME of rootfs, owned as the rootfs is."""
    dest = rootfs / "usr" / "bin" / program.name
    dest.write_bytes(program.read_bytes())
    dest.chmod(0o755)
    os.chown(dest, rootfs.stat().st_uid, rootfs.stat().st_gid)


def chroot_run(rootfs: Path, argv: list[str], input: str = "", own_uts: bool = False) -> Result:
    """The native reference: chroot with /proc and /dev mounted in a private
    mount namespace (needs root); own_uts: in a UTS namespace of its own
    too, for a program that renames the host."""
    script = ('mount -t proc proc "$0/proc" && mount --rbind /dev "$0/dev" && '
              'exec chroot "$0" "$@"')
    p = subprocess.run(["unshare", "--mount", *(["--uts"] if own_uts else []),
                        "--propagation", "private", "sh", "-c", script,
                        str(rootfs), *argv], input=input, capture_output=True, text=True,
                       timeout=300)
    return Result(p.returncode, p.stdout, p.stderr)
