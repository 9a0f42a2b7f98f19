"""The runners: how each one runs a command inside a rootfs.

Every runner gets the same guest environment and runs as the invoking user
(root for `make bench`), but the brandpy runners of the unprivileged
configuration, which run as uid 65534. Every runner shares the host's
network (`brandpy run` has no network of its own; runsc: none). A runner whose prerequisites are missing, or whose
trial run of `/bin/true` fails, is reported as unavailable with the reason
and left out of the run; brandpy's native engine thus appears on its own
once `brandpy run --engine native` works."""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

# brandpy's C launcher: `brandpy run` through a warm zygote, as installed
LAUNCHER = Path(__file__).resolve().parents[1] / "brandpy" / "_launcher"
NOBODY = 65534
SETPRIV = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"]
GUEST_ENV = {
    "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "HOME": "/root",
    "LC_ALL": "C",
}


@dataclass(frozen=True)
class Runner:
    name: str
    label: str               # column title in the tables
    needs_root: bool = False
    binary: str | None = None

    def command(self, rootfs: Path, argv: Sequence[str], state: Path) -> list[str]:
        """The host command line that runs argv with rootfs as /; state is
        a private directory the runner may keep files in."""
        raise NotImplementedError

    def env(self, state: Path) -> dict[str, str]:
        """The environment the runner's command starts with (state: as
        for command())."""
        return dict(GUEST_ENV)

    @property
    def owner(self) -> int | None:
        """The user whose copy of a rootfs the runner gets (None: the
        invoking user's)."""
        return None

    @property
    def counts_stops(self) -> bool:
        """Whether the runner prints brandpy's `--stats` report."""
        return False

    def missing(self) -> str | None:
        """Why this runner cannot run here, before trying it (None: try it)."""
        if self.needs_root and os.geteuid() != 0:
            return "needs root"
        if self.binary and not shutil.which(self.binary):
            return f"`{self.binary}` is not installed"
        return None


@dataclass(frozen=True)
class Chroot(Runner):
    """The native reference: chroot, with /proc and /dev mounted in a private
    mount namespace that disappears with the command."""
    needs_root: bool = True
    binary: str | None = "unshare"

    def command(self, rootfs: Path, argv: Sequence[str], state: Path) -> list[str]:
        script = ('mount -t proc proc "$0/proc" && mount --rbind /dev "$0/dev" && '
                  'exec chroot "$0" "$@"')
        return ["unshare", "--mount", "--propagation", "private", "sh", "-c", script,
                str(rootfs), *argv]


@dataclass(frozen=True)
class Proot(Runner):
    binary: str | None = "proot"

    def command(self, rootfs: Path, argv: Sequence[str], state: Path) -> list[str]:
        return ["proot", "-r", str(rootfs), "-w", "/", "-b", "/proc", "-b", "/dev", *argv]


@dataclass(frozen=True)
class Runsc(Runner):
    """gVisor's `runsc do` on the ptrace platform: the rootfs read-only under
    a tmpfs overlay, no network."""
    binary: str | None = "runsc"

    def command(self, rootfs: Path, argv: Sequence[str], state: Path) -> list[str]:
        rootless = ["--rootless"] if os.geteuid() != 0 else []
        return ["runsc", "--platform=ptrace", "--network=none", *rootless,
                "--root", str(state / "runsc"), "do", "--root", str(rootfs), "--cwd", "/",
                *argv]


@dataclass(frozen=True)
class ProotSeccomp(Proot):
    """A PRoot built with its seccomp acceleration (upstream 5.4), when the
    PROOT environment variable points at one; Debian's is built without."""
    binary: str | None = os.environ.get("PROOT")

    def missing(self) -> str | None:
        if not self.binary:
            return "PROOT is not set (point it at a PRoot with seccomp acceleration)"
        return super().missing()

    def command(self, rootfs: Path, argv: Sequence[str], state: Path) -> list[str]:
        assert self.binary is not None    # missing() said so otherwise
        return [self.binary, *super().command(rootfs, argv, state)[1:]]


@dataclass(frozen=True)
class Brandpy(Runner):
    engine: str = "python"
    # Supervisor and container on one CPU: on small VMs a ptrace stop costs
    # a fraction as much without a cross-CPU wake-up (DESIGN.md's knob).
    one_cpu: bool = False
    options: tuple[str, ...] = ()    # more `brandpy run` options (--report, --trace ...)
    # The unprivileged configuration: the supervisor as uid 65534 (setpriv
    # from root), translation without the kernel walls root gets.
    unprivileged: bool = False

    def command(self, rootfs: Path, argv: Sequence[str], state: Path) -> list[str]:
        env = [f"--env={k}={v}" for k, v in GUEST_ENV.items()]
        pin = ["taskset", "--cpu-list", str(max(os.sched_getaffinity(0)))] if self.one_cpu else []
        user = SETPRIV if self.unprivileged else []
        return [*pin, *user, str(LAUNCHER), "run", "--engine", self.engine,
                "--stats", *self.options, "--rootfs", str(rootfs), *env, "--", *argv]

    def env(self, state: Path) -> dict[str, str]:
        # The brandpy the suite itself imports (PYTHONPATH may point at a checkout);
        # its zygote stays for the whole suite (run_suite starts and stops it),
        # with its socket in the workspace.
        extra = {k: os.environ[k] for k in ("PYTHONPATH",) if k in os.environ}
        uid = NOBODY if self.unprivileged else os.geteuid()
        runtime = state / f"brandpy-runtime-{uid}"     # each user's zygote its own
        runtime.mkdir(mode=0o700, exist_ok=True)
        os.chown(runtime, uid, uid)
        return {**GUEST_ENV, **extra, "BRANDPY_ZYGOTE_IDLE": "3600",
                "XDG_RUNTIME_DIR": str(runtime)}

    def missing(self) -> str | None:
        if not LAUNCHER.exists():
            return f"{LAUNCHER} is not built (make install)"
        if self.unprivileged and os.geteuid() != 0:
            return "needs root (to run as uid 65534 with setpriv)"
        return super().missing()

    @property
    def counts_stops(self) -> bool:
        return True

    @property
    def owner(self) -> int | None:
        return NOBODY if self.unprivileged else None


RUNNERS: list[Runner] = [
    Chroot("native", "native"),
    Proot("proot", "proot"),
    ProotSeccomp("proot-seccomp", "proot (seccomp, $PROOT)"),
    Runsc("runsc", "runsc-ptrace"),
    Brandpy("brandpy-python", "brandpy python", engine="python"),
    Brandpy("brandpy-python-1cpu", "brandpy python, 1 CPU", engine="python", one_cpu=True),
    Brandpy("brandpy-native", "brandpy native", engine="native"),
    Brandpy("brandpy-python-nobody", "brandpy python, uid 65534", engine="python",
            unprivileged=True),
    Brandpy("brandpy-native-nobody", "brandpy native, uid 65534", engine="native",
            unprivileged=True),
]
NATIVE = "native"


def by_names(names: Sequence[str]) -> list[Runner]:
    """The named runners in suite order; native always comes along, as every
    ratio and output check is against it."""
    known = {r.name: r for r in RUNNERS}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ValueError(f"unknown runner(s) {', '.join(unknown)}; known: {', '.join(known)}")
    wanted = set(names) | {NATIVE}
    return [r for r in RUNNERS if r.name in wanted]
