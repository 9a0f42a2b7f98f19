"""A container as the engine drives it: its Sandbox and supervisor, the
entrypoint, and what other threads may ask of it while it runs (exec a
process in it, pause, resume, signal, list its processes)."""

from __future__ import annotations

import errno
import os
import signal
import tempfile
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

from brandpy.runtime import cgroups, landlock
from brandpy.runtime.cgroups import Cgroup, Limits
from brandpy.runtime.devices import DeviceError, cgroup_rules
from brandpy.runtime.identity import Cred, UserError, resolve_user
from brandpy.runtime.inject import Injector
from brandpy.runtime.linux import SECCOMP_FILTER_FLAG_NEW_LISTENER
from brandpy.runtime.mounts import Mount
from brandpy.runtime.policy import PolicyError, cap_mask
from brandpy.runtime.replay import ADDR_NO_RANDOMIZE, TIME_CALLS, Replay, SYS_getrandom
from brandpy.runtime.run_setup import ContainerError, default_env, find_command, merge_env, prepare_workdir
from brandpy.runtime.sandbox import Sandbox, SandboxConfig
from brandpy.runtime.spawn import spawn
from brandpy.runtime.stats import LedgerEntry, as_dict
from brandpy.runtime.trace import Tracer

from .native_engine import NativeSupervisor, notifications_supported

ENGINES = ("native", "python")


@dataclass
class Research:
    """The research tools a run may add (see brandpy/runtime/trace.py,
    inject.py, replay.py)."""
    tracer: Tracer | None = None
    trace_all: bool = False
    injector: Injector | None = None
    replay: Replay | None = None


def parse_cpuset(spec: str) -> set[int]:
    """Docker's --cpuset-cpus: "0-2,5"."""
    cpus: set[int] = set()
    try:
        for part in spec.split(","):
            lo, _, hi = part.partition("-")
            cpus.update(range(int(lo), int(hi or lo) + 1))
    except ValueError:
        raise ContainerError(f"invalid --cpuset-cpus {spec!r}: expected e.g. 0-2,5") from None
    available = os.sched_getaffinity(0)
    if not cpus or not cpus <= available:
        raise ContainerError(f"--cpuset-cpus {spec}: CPUs available here are "
                             f"{','.join(map(str, sorted(available)))}")
    return cpus


class Container:
    def __init__(self, config: SandboxConfig, debug: bool = False,
                 engine: str = "native", research: Research | None = None) -> None:
        """engine: "native" (the performed calls answered in C where it can)
        or "python" (every handler in Python: the reference)."""
        from syscalls.effective import Effective
        from syscalls.table import table

        if engine not in ENGINES:
            raise ContainerError(f"unknown engine {engine!r}: use native or python")
        if not os.path.isdir(config.rootfs):
            raise ContainerError(f"rootfs {config.rootfs}: no such directory")
        self.config = config
        research = research or Research()
        self.research = research
        replay = research.replay
        if replay is not None:
            config.hostname = replay.rec.hostname or config.hostname
            config.kernel_release = replay.rec.release or config.kernel_release
        try:
            self.sb = Sandbox(config)
        except (PolicyError, UserError, DeviceError) as exc:
            raise ContainerError(str(exc)) from None
        if replay is not None:
            replay.rec.hostname, replay.rec.release = self.sb.hostname, self.sb.release
            random_dev = replay.random_file(self.sb.state)
            for dev in (b"/dev/urandom", b"/dev/random"):
                self.sb.mounts.add(Mount(dev, random_dev, readonly=True, kind="bind"))
        if not notifications_supported():
            raise ContainerError("brandpy needs Linux 5.14 or later: it performs path calls "
                                 "for the container through seccomp user notification "
                                 "(SECCOMP_ADDFD_FLAG_SEND), so that the kernel never walks "
                                 "a path the container can still change")
        self.effective = Effective(
            table(), self.sb, trace_all=research.trace_all,
            traced=research.injector.nrs if research.injector else frozenset(),
            overrides={nr: replay.handle for nr in (*TIME_CALLS, SYS_getrandom)}
            if replay else None)
        # the Python engine answers every notification in Python (the reference)
        self.sup = NativeSupervisor(self.sb, self.effective, debug=debug,
                                    fast_path=engine == "native")
        if research.tracer is not None:
            self.sup.watch(None)         # the trace sees every call
        elif research.injector is not None:
            self.sup.watch(research.injector.nrs)
        self.sup.tracer, self.sup.injector, self.sup.replay = (
            research.tracer, research.injector, replay)
        self.env = default_env(config.env, self.sb)
        self._filter = self.effective.bpf()
        self.cpus = parse_cpuset(config.cpuset) if config.cpuset else set()
        self._hold: int | None = None
        self.spawner: landlock.Spawner | None = None
        self.cgroup: Cgroup | None = None

    @property
    def init_pid(self) -> int:
        return self.sup.init_pid

    def start(self, stdio: tuple[int, ...] = (0, 1, 2), tty: bool = False,
              own_session: bool = True, hold: bool = False) -> int:
        """Spawn the entrypoint (on the thread that will call run()), with
        stdio as its fds 0, 1, 2 and on (runc's --preserve-fds). With a
        cpuset, this process (the supervisor) is pinned to it as well: the
        container inherits it, and on machines where waking a task on
        another CPU is slow, one shared CPU makes every stop far cheaper."""
        if self.config.cpuset:
            os.sched_setaffinity(0, self.cpus)
        hold_fd = -1
        if hold:   # OCI create: the process exists, its program starts on release()
            hold_fd, self._hold = os.pipe2(os.O_CLOEXEC)
        try:
            self.spawner = landlock.Spawner.start(self.sb, stdio)
        except OSError as exc:
            raise ContainerError(f"cannot wall the container in: {exc}") from None
        self.sup.spawner = self.spawner
        try:
            if self.spawner is not None and self.sb.namespaced and not self.sb.fake_ids:
                self.sb.home_ns = os.open("/proc/thread-self/ns/mnt", os.O_RDONLY | os.O_CLOEXEC)
                self.sb.mount_ns = os.open(f"/proc/{self.spawner.pid}/ns/mnt",
                                           os.O_RDONLY | os.O_CLOEXEC)
            if os.geteuid() == 0:
                self.cgroup = Cgroup.make(self.config.name or cgroups.run_name(),
                                          self.config.limits, cgroup_rules(self.sb.mounts))
                self.sb.use_cgroup(self.cgroup)
            pid = self._spawn(self.config.argv, self.env, self.config.workdir, stdio, tty,
                              own_session, hold_fd)
            if self.spawner is not None and self.spawner.pids:   # the kernel numbers them
                self.sb.pids.follow(os.open(f"/proc/{pid}/ns/pid", os.O_RDONLY | os.O_CLOEXEC))
        except BaseException:
            self._end()     # run() will not be called
            raise
        finally:
            if hold_fd >= 0:
                os.close(hold_fd)
        self.sup.adopt(pid, init=True)
        return pid

    def release(self) -> None:
        """Let a held entrypoint (start(hold=True)) exec its program."""
        if self._hold is not None:
            os.write(self._hold, b"s")
            os.close(self._hold)
            self._hold = None

    def run(self) -> int:
        """Supervise until every process is gone; the entrypoint's status."""
        try:
            return self.sup.run()
        finally:
            self._end()

    def _end(self) -> None:
        """Nothing of the container outlives it: what escaped tracing goes
        with its cgroup."""
        if self.cgroup is not None:
            self.cgroup.remove()
        self._end_spawner()
        self.sb.close()

    def _end_spawner(self) -> None:
        """Close the spawner, and reap it if the supervisor has not (its
        loop sets sup.spawner to None when it does)."""
        if self.spawner is None:
            return
        self.spawner.close()
        if self.sup.spawner is not None:
            self.sup.spawner = None
            try:
                os.waitpid(self.spawner.pid, 0)
            except ChildProcessError:
                pass
        self.spawner = None

    def _spawn(self, argv: list[str], env: list[str], workdir: str,
               stdio: tuple[int, ...], tty: bool, own_session: bool,
               hold_fd: int = -1, cred: Cred | None = None) -> int:
        cwd = prepare_workdir(self.sb, workdir)
        path = find_command(self.sb, argv[0] if argv else "", env, workdir)
        cred = cred or self.sb.cred
        real = None if self.sb.fake_ids else cred
        if tty:     # its terminal is named in its /dev/pts (runtime/ptys.py)
            self.sb.adopt_pty(os.dup(stdio[0]))
            if real is not None:   # and is its user's, as runc makes a console
                os.fchown(stdio[0], real.ruid, -1)
        try:
            pid, listener = spawn(
                path, argv, env, cwd, self._filter_for(cred), fds=stdio,
                seccomp_flags=SECCOMP_FILTER_FLAG_NEW_LISTENER,
                setsid=own_session or tty, ctty=tty, setpgid=not own_session,
                ids=(real.ruid, real.rgid, real.groups) if real else None,
                caps=cap_mask(self.sb.caps) if real else None, hold_fd=hold_fd,
                personality=ADDR_NO_RANDOMIZE if self.research.replay else -1,
                rlimits=[u.rlimit() for u in self.config.ulimits],
                spawner=self.spawner.ctl if self.spawner else -1)
            if listener is not None:
                self.sup.add_listener(listener)
            if self.cgroup is not None:   # it waits for us at its first trapped call
                self.cgroup.add(pid)
            return pid
        except OSError as exc:
            hint = ""
            if exc.errno == errno.EPERM:
                hint = " (is ptrace forbidden here? check kernel.yama.ptrace_scope)"
            raise ContainerError(f"cannot start the supervisor: {exc.strerror}{hint}") from None

    # -- from other threads --------------------------------------------------

    def _filter_for(self, cred: Cred) -> bytes:
        """A process started as another user than the container's root gets
        the getters trapped, as a thread that drops root does."""
        if self.sb.needs_id_trap(cred):
            return self.effective.bpf(id_trap=True)
        return self._filter

    def exec(self, argv: list[str], env: list[str] | None = None, workdir: str | None = None,
             stdio: tuple[int, ...] = (0, 1, 2), tty: bool = False,
             on_exit: Callable[[int], None] | None = None, user: str = "",
             own_env: bool = False) -> Future[int]:
        """Start another process in the running container (docker exec). env
        overrides the container's by name (own_env: it is the whole
        environment, as an OCI process's is); user is `docker exec -u`'s
        USER[:GROUP] (default: the container's). The future gives the host
        PID, or a ContainerError (127 not found...)."""
        done: Future[int] = Future()
        try:
            cred = resolve_user(self.sb.rootfs, user, self.sb.caps,
                                tuple(self.config.group_add)) if user else None
        except UserError as exc:
            done.set_exception(ContainerError(str(exc)))
            return done
        full_env = list(env or []) if own_env else merge_env(self.env, env or [])

        def start() -> None:
            try:
                pid = self._spawn(argv, full_env, workdir or self.config.workdir, stdio, tty,
                                  True, cred=cred)
            except ContainerError as exc:
                done.set_exception(exc)
                return
            self.sup.adopt(pid, on_exit=on_exit, cred=cred)
            done.set_result(pid)

        self._submit(start, done)
        return done

    def pause(self) -> Future[None]:
        return self._simple(self.sup.pause)

    def resume(self) -> Future[None]:
        return self._simple(self.sup.resume)

    def signal(self, sig: int = signal.SIGTERM) -> None:
        """Signal the entrypoint (docker kill / stop)."""
        self.sup.forward_signal(sig)

    def syscalls(self) -> Future[dict[str, Any]]:
        """Statistics and the ledger as JSON-ready data (brandpy.runtime.stats
        as_dict), taken on the tracer thread; after the container ends, at
        once."""
        done: Future[dict[str, Any]] = Future()

        def snapshot() -> None:
            done.set_result(as_dict(self.sb.stats, self.sb.ledger, self.effective.names))

        if not self.sup.call_soon(snapshot):
            snapshot()
        return done

    def update_limits(self, limits: Limits) -> None:
        """`docker update` of a running container's resource limits (its
        cgroup's; without one, as unprivileged, nothing enforces them)."""
        if self.cgroup is not None:
            try:
                self.cgroup.update(limits)
            except OSError as exc:
                raise ContainerError(str(exc), 400) from None

    def on_running(self, fn: Callable[[], None]) -> None:
        """Call fn (on the tracer thread) once the entrypoint's own program
        runs: its execve has succeeded (an entrypoint that never gets there
        exits instead)."""
        self.sup.on_entry_exec = fn

    def on_unsupported(self, fn: Callable[[LedgerEntry], None]) -> None:
        """Call fn (on the tracer thread) the first time each unsupported or
        denied call is seen (docker events)."""
        self.sb.ledger.on_new = fn

    def processes(self) -> list[tuple[int, int]]:
        """(container PID, host PID) of every process, for docker top."""
        return sorted((self.sb.pids.to_guest(tgid), tgid) for tgid in self.sb.tgids())

    def _simple(self, fn: Callable[[], None]) -> Future[None]:
        done: Future[None] = Future()

        def call() -> None:
            fn()
            done.set_result(None)

        self._submit(call, done)
        return done

    def _submit(self, fn: Callable[[], None], done: Future[Any]) -> None:
        if not self.sup.call_soon(fn):
            done.set_exception(ContainerError("the container is not running", 409))


def warm_up() -> None:
    """Compute what every container of the default policy computes alike
    (Docker's seccomp profile, the effective decisions and their filter:
    cached per process), by setting up one that never starts; a zygote
    calls this before it forks, so its supervisors find them made."""
    with tempfile.TemporaryDirectory(prefix="brandpy-warm-") as rootfs:
        Container(SandboxConfig(rootfs=rootfs, argv=["true"], state_dir=rootfs)).sb.close()

