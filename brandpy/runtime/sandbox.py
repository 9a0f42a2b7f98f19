"""The Sandbox: the container's kernel view.

Handlers read it; they keep no state of their own. It holds the root
filesystem and mount table, the container's processes (with the PID map),
and the statistics the supervisor collects.
"""

from __future__ import annotations

import errno
import os
import secrets
from dataclasses import dataclass, field
from typing import Protocol

from .acting import tracee_memory
from .cgroups import Cgroup, Limits
from .dac import SEARCH_CAPS
from .devices import DEFAULT_DEVICES, DEV_LINKS, Device
from .errors import Errno
from .guest_ptrace import Tracing
from .identity import Cred, resolve_user
from .linux import pidfd_getfd, pidfd_open
from .mounts import Mount, MountTable, split
from .namespaces import Uts, kernel_walls
from .pathres import Resolver
from .pids import PidMap
from .policy import capabilities, profile_for
from .ports import PortMap
from .process import Process
from .procfs import ProcFS
from .ptys import PtyView, device_rule, private_devpts
from .stats import Ledger, Stats


@dataclass(frozen=True)
class Volume:
    host: str
    guest: str
    readonly: bool = False
    kind: str = "bind"

    @classmethod
    def parse(cls, spec: str) -> Volume:
        """`HOST:GUEST[:ro|rw]` as `docker run -v` takes it."""
        parts = spec.split(":")
        if len(parts) not in (2, 3) or not parts[0] or not parts[1].startswith("/"):
            raise ValueError(f"invalid volume {spec!r}: expected HOST:GUEST[:ro], "
                             "GUEST an absolute path")
        mode = parts[2] if len(parts) == 3 else "rw"
        if mode not in ("ro", "rw"):
            raise ValueError(f"invalid volume mode {mode!r} in {spec!r}: use ro or rw")
        return cls(host=os.path.abspath(parts[0]), guest=parts[1], readonly=mode == "ro")


# docker --ulimit names and their RLIMIT_* numbers (asm-generic/resource.h;
# Python's resource module lacks some)
ULIMITS = {"cpu": 0, "fsize": 1, "data": 2, "stack": 3, "core": 4, "rss": 5, "nproc": 6,
           "nofile": 7, "memlock": 8, "locks": 10, "sigpending": 11, "msgqueue": 12,
           "nice": 13, "rtprio": 14, "rttime": 15}
RLIM_INFINITY = (1 << 64) - 1


@dataclass(frozen=True)
class Ulimit:
    """A resource limit for every process of the container (-1: unlimited)."""
    name: str
    soft: int
    hard: int

    def __post_init__(self) -> None:
        if self.name not in ULIMITS:
            raise ValueError(f"invalid ulimit type: {self.name} (one of "
                             f"{', '.join(sorted(ULIMITS))})")
        if self.hard != -1 and (self.soft == -1 or self.soft > self.hard):
            raise ValueError(f"ulimit {self.name}: soft limit {self.soft} is above the hard "
                             f"limit {self.hard}")

    @classmethod
    def parse(cls, spec: str) -> Ulimit:
        """`NAME=SOFT[:HARD]` as `docker run --ulimit` takes it."""
        name, _, limits = spec.partition("=")
        soft, _, hard = limits.partition(":")
        try:
            return cls(name, int(soft), int(hard or soft))
        except ValueError as exc:
            if "ulimit" in str(exc):
                raise
            raise ValueError(f"invalid ulimit {spec!r}: expected NAME=SOFT[:HARD]") from None

    def rlimit(self) -> tuple[int, int, int]:
        """(resource, soft, hard) for setrlimit."""
        def value(v: int) -> int:
            return RLIM_INFINITY if v == -1 else v
        return ULIMITS[self.name], value(self.soft), value(self.hard)


@dataclass(frozen=True)
class PortMapping:
    """`-p [IP:]HOST:CONTAINER[/tcp|udp]`: the container's bind() of
    CONTAINER binds HOST on the host."""
    host_port: int
    container_port: int
    proto: str = "tcp"
    host_ip: str = ""

    @classmethod
    def parse(cls, spec: str) -> PortMapping:
        body, _, proto = spec.partition("/")
        proto = proto or "tcp"
        parts = body.rsplit(":", 2)
        try:
            if len(parts) == 3:
                ip, host, cont = parts
            elif len(parts) == 2:
                ip, (host, cont) = "", parts
            else:
                raise ValueError
            mapping = cls(int(host), int(cont), proto, ip.strip("[]"))
        except ValueError:
            raise ValueError(f"invalid port mapping {spec!r}: expected "
                             "[IP:]HOST:CONTAINER[/tcp|udp]") from None
        if proto not in ("tcp", "udp") or not (0 < mapping.host_port < 65536
                                               and 0 < mapping.container_port < 65536):
            raise ValueError(f"invalid port mapping {spec!r}")
        return mapping


@dataclass
class SandboxConfig:
    rootfs: str
    argv: list[str]
    env: list[str] = field(default_factory=list)
    workdir: str = "/"
    volumes: list[Volume] = field(default_factory=list)
    state_dir: str = ""          # per-container scratch: /dev, /etc/hosts, /proc views
    user: str = ""               # docker --user: NAME|UID[:GROUP|GID]
    hostname: str = ""
    domainname: str = ""
    kernel_release: str = ""     # what uname -r says ("" = the host's)
    personality: bool = False    # syscalls newer than kernel_release get ENOSYS
    ports: list[PortMapping] = field(default_factory=list)
    seccomp: str = ""            # "" (Docker's default), "unconfined", or a profile file
    no_new_privileges: bool = False   # setuid/setgid programs do not elevate
    cap_add: list[str] = field(default_factory=list)
    cap_drop: list[str] = field(default_factory=list)
    extra_hosts: list[str] = field(default_factory=list)   # NAME:IP lines for /etc/hosts
    dns: list[str] = field(default_factory=list)
    dns_search: list[str] = field(default_factory=list)
    dns_options: list[str] = field(default_factory=list)
    address: str = ""            # the container's own address, for /etc/hosts
    address6: str = ""           # and its IPv6 one (on an --ipv6 network)
    loopback_closed: bool = False   # connect() to the host's loopback: own ports only
    # unprivileged: None shares the supervisor's network; else the container
    # gets a user and network namespace of its own, connected by this
    # command (pasta, brandpy/network/pasta.py; [] leaves it loopback only)
    own_network: list[str] | None = None
    network_of: int = 0          # unprivileged container:NAME: join this process's
                                 # user and network namespaces (own_network [])
    host_pids: bool = False      # as root, no PID namespace (docker --pid host)
    pids_of: int = 0             # as root, join this process's PID namespace
                                 # (docker --pid container:NAME)
    strict: bool = False         # the first unsupported syscall stops the container
    cpuset: str = ""             # docker --cpuset-cpus: the container and its supervisor
    readonly_rootfs: bool = False                          # docker --read-only
    group_add: list[str] = field(default_factory=list)     # docker --group-add
    ulimits: list[Ulimit] = field(default_factory=list)    # docker --ulimit
    devices: list[Device] = field(default_factory=list)    # docker --device
    limits: Limits = field(default_factory=Limits)         # --memory, --cpus, --pids-limit
    name: str = ""               # the container's id: its cgroup's name (as root)


class Mirror(Protocol):
    def thread(self, tid: int, proc: Process) -> None: ...
    def gone(self, tid: int) -> None: ...
    def mounts_changed(self, mounts: MountTable) -> None: ...
    def pty(self, number: int, fd: int) -> None: ...
    def uts_changed(self) -> None: ...


class Sandbox:
    def __init__(self, config: SandboxConfig) -> None:
        self.config = config
        self.rootfs = os.fsencode(os.path.realpath(config.rootfs))
        self.caps = capabilities(config.cap_add, config.cap_drop)
        self.profile = profile_for(config.seccomp, self.caps)
        # Unprivileged, identity is emulated (fakeroot-style); as root it is real.
        self.fake_ids = os.geteuid() != 0
        self.cred = resolve_user(self.rootfs, config.user, self.caps, tuple(config.group_add))
        self.uts = Uts(config.hostname or secrets.token_hex(6), config.domainname or "(none)")
        self.release = config.kernel_release or os.uname().release
        self.state = os.fsencode(config.state_dir)
        self.mounts = MountTable(build_mounts(config, self.rootfs, self.hostname))
        self.mounts.pin(self.state)
        # the host directories of the tmpfs mounts the container makes
        self.tmpfs_base = os.path.join(self.state, b"mnt")
        # a devpts instance of the container's own where the host allows it (ptys.py)
        self.ptys = self.mounts.ptys = PtyView(os.path.join(self.state, b"dev"), self._pty_changed,
                                               private_devpts())
        self.pids = PidMap()
        # the spawner (landlock.Spawner) makes the container's namespaces,
        # unprivileged in a user namespace of its own (where the host allows
        # it); in its PID namespace the kernel numbers the processes
        self.namespaced = kernel_walls()
        self.userns = self.namespaced and self.fake_ids
        self.kernel_pids = self.namespaced and not config.host_pids
        # as root, that mount namespace and the supervisor's own (fds):
        # performed calls act in the first (runtime/acting.py)
        self.mount_ns = self.home_ns = -1
        self.mounts.pid_of = self.pids.to_guest
        # in a network of its own, ports are real: nothing is translated
        self.ports = PortMap() if config.own_network is None else PortMap(privileged_limit=0)
        for p in config.ports:
            self.ports.publish(p.proto, p.container_port, p.host_port, p.host_ip)
        self.init_pid = 0                       # host PID of the entrypoint
        self.procs: dict[int, Process] = {}     # host tgid -> process
        self.threads: dict[int, Process] = {}   # host tid -> its process
        self.newborn: set[int] = set()          # forked, first stop not yet seen
        self.resolver = Resolver(self)
        self.procfs = ProcFS(self)
        self.stats = Stats()
        self.ledger = Ledger()
        self.id_trapped: set[int] = set()       # threads with the identity trap filter
        self.sigwaiting: dict[int, int] = {}    # tid -> the signals it waits for (sigtimedwait)
        # trap filters stacked on threads (syscalls/handlers/stacked.py)
        self.stacked: dict[int, set[str]] = {}
        self.stacked_pending: dict[int, tuple[str, str, tuple[int, ...]]] = {}
        # AF_UNIX names the kernel recorded for sockets the supervisor bound
        # (/proc/self/fd/N/NAME) -> the path the program gave (handlers/sock.py)
        self.unix_names: dict[bytes, bytes] = {}
        # AF_UNIX sockets the supervisor connected for a container process:
        # socket inode -> (host tgid, euid, egid, groups) as it connected, for
        # SO_PEERCRED, which names the connecting task (handlers/sockcreds.py)
        self.unix_connectors: dict[int, tuple[int, int, int, tuple[int, ...]]] = {}
        # the programs of those, per thread, oldest first: a seccomp stop is
        # brandpy's if its filters, these included, ask for it
        self.own_filters: dict[int, tuple[bytes, ...]] = {}
        self.mirror: Mirror | None = None       # the native engine's copy of this state
        self.cgroup: Cgroup | None = None       # as root, the container's (use_cgroup)
        # the container's own tracers (guest_ptrace.py)
        self.ptraced = Tracing(waits_native=self.kernel_pids)

    @property
    def hostname(self) -> str:
        """The container's own (its UTS namespace's, not an unshared one's)."""
        return self.uts.hostname

    @property
    def domainname(self) -> str:
        return self.uts.domainname

    def uts_of(self, proc: Process) -> Uts:
        return proc.uts or self.uts

    def set_uts(self, proc: Process, field: str, value: str) -> None:
        """sethostname and setdomainname (field: "hostname" or
        "domainname") in the UTS namespace of proc."""
        uts = self.uts_of(proc)
        setattr(uts, field, value)
        if uts is self.uts and self.mirror is not None:
            self.mirror.uts_changed()

    def mounts_of(self, proc: Process) -> MountTable:
        return proc.mounts or self.mounts

    def tables(self) -> list[MountTable]:
        """Every mount namespace's table with a process in it."""
        found = {id(self.mounts): self.mounts}
        for proc in self.procs.values():
            if proc.mounts is not None:
                found[id(proc.mounts)] = proc.mounts
        return list(found.values())

    def mounted(self, table: MountTable) -> None:
        """A mount namespace's table changed; the native engine mirrors the
        container's own one (a process in another resolves in Python)."""
        if table is self.mounts and self.mirror is not None:
            self.mirror.mounts_changed(table)

    def close(self) -> None:
        """Release what outlives the processes (private /proc listings, the
        ptys held for the container's /dev/pts, the mounts' root descriptors,
        the mount namespaces)."""
        self.procfs.close()
        self.ptys.close()
        for fd in (self.mount_ns, self.home_ns):
            if fd >= 0:
                os.close(fd)
        self.mount_ns = self.home_ns = -1
        self.pids.close()
        for table in self.tables():
            table.close()

    def _pty_changed(self, number: int, fd: int) -> None:
        if self.mirror is not None:
            self.mirror.pty(number, fd)
        if self.cgroup is not None and not self.ptys.private:   # its own ptys alone
            self.cgroup.device(device_rule(number), fd >= 0)

    def use_cgroup(self, cgroup: Cgroup) -> None:
        """The container's cgroup (root): its devices rules follow the
        ptys, unless they are a private devpts instance's, whose numbers
        are the host's ptys' too: then none is allowed (ptys.py)."""
        self.cgroup = cgroup
        for number in () if self.ptys.private else self.ptys.held:
            cgroup.device(device_rule(number), True)

    def adopt_pty(self, fd: int, masters_only: bool = False) -> None:
        """A pty the container gets or makes (fd: ours, an fd of it): its
        name appears in the container's /dev/pts (ptys.py)."""
        self.ptys.adopt(fd, masters_only)

    def needs_id_trap(self, cred: Cred) -> bool:
        """With emulated identities the filter answers getuid & co with 0
        and lets fchdir run while the container's user is root: a process
        with other IDs needs them trapped, and one without the capabilities
        that pass a directory search fchdir's check (see
        syscalls/handlers/ident.py)."""
        return (self.fake_ids and self.cred.euid == 0
                and ((cred.ruid, cred.euid, cred.rgid, cred.egid) != (0, 0, 0, 0)
                     or not cred.caps & SEARCH_CAPS))

    def tgids(self) -> list[int]:
        """Every process of the container, including those just forked whose
        first stop the supervisor has not handled yet (they already run
        once that stop is reaped, and a group signal must reach them)."""
        return [*self.procs, *self.newborn]

    def process_of(self, host_pid: int) -> Process | None:
        return self.threads.get(host_pid)

    def add_thread(self, tid: int, proc: Process) -> None:
        self.procs.setdefault(proc.tgid, proc)
        proc.threads.add(tid)
        self.threads[tid] = proc
        self.pids.assign(tid)
        if self.mirror is not None:
            self.mirror.thread(tid, proc)

    def changed(self, proc: Process) -> None:
        """A handler changed a process's root, credentials or program."""
        if self.mirror is not None:
            for tid in proc.threads:
                self.mirror.thread(tid, proc)

    def remove_thread(self, tid: int) -> None:
        proc = self.threads.pop(tid, None)
        if proc is None:
            return
        self.pids.exited(tid, proc.cred)
        self.id_trapped.discard(tid)
        self.sigwaiting.pop(tid, None)
        self.stacked.pop(tid, None)
        self.stacked_pending.pop(tid, None)
        self.own_filters.pop(tid, None)
        if self.mirror is not None:
            self.mirror.gone(tid)
        proc.threads.discard(tid)
        if not proc.threads:
            self.procs.pop(proc.tgid, None)
            if proc.pidfd is not None:
                os.close(proc.pidfd)
                proc.pidfd = None

    def grab_fd(self, proc: Process, fd: int) -> int:
        """A duplicate of one of the tracee's fds in the supervisor
        (pidfd_getfd), for handlers that operate on the tracee's files."""
        try:
            with tracee_memory():
                if proc.pidfd is None:
                    proc.pidfd = pidfd_open(proc.tgid)
                return pidfd_getfd(proc.pidfd, fd)
        except OSError as exc:
            raise Errno(exc.errno or errno.EBADF) from None

    def state_file(self, name: bytes) -> bytes:
        return os.path.join(self.state, name)


# Docker's masked and read-only /proc and /sys paths (moby oci/defaults.go)
MASKED = (b"/proc/asound", b"/proc/acpi", b"/proc/kcore", b"/proc/keys", b"/proc/latency_stats",
          b"/proc/timer_list", b"/proc/timer_stats", b"/proc/sched_debug", b"/proc/scsi",
          b"/sys/firmware", b"/sys/devices/virtual/powercap")
READONLY_PROC = (b"/proc/bus", b"/proc/fs", b"/proc/irq", b"/proc/sys", b"/proc/sysrq-trigger")


def build_mounts(config: SandboxConfig, rootfs: bytes, hostname: str) -> list[Mount]:
    """The default container mounts (rootfs, /proc, /sys, a private /dev,
    the per-container /etc/hosts, /etc/hostname and /etc/resolv.conf) plus
    the user's volumes, creating mount points as Docker does."""
    state = os.fsencode(config.state_dir)
    dev = os.path.join(state, b"dev")
    empty = os.path.join(state, b"empty")
    mounts = [
        Mount(b"/", rootfs, readonly=config.readonly_rootfs, kind="rootfs"),
        Mount(b"/proc", b"/proc", kind="proc"),
        Mount(b"/sys", b"/sys", readonly=True, kind="sys"),
        Mount(b"/dev", dev, kind="dev"),
        # the container's own ptys alone, a view of them by number (ptys.py)
        Mount(b"/dev/pts", os.path.join(dev, b"pts"), kind="pts"),
        Mount(b"/dev/shm", os.path.join(dev, b"shm"), kind="tmpfs"),
    ]
    mounts += [Mount(p, b"/proc" + p[5:], readonly=True, kind="proc") for p in READONLY_PROC]
    os.makedirs(empty, exist_ok=True)
    for path in MASKED:
        host = os.path.join(b"/", path.lstrip(b"/"))
        if os.path.isdir(host):
            mounts.append(Mount(path, empty, readonly=True, kind="masked"))
        elif os.path.exists(host):
            mounts.append(Mount(path, b"/dev/null", readonly=True, kind="masked"))
    os.makedirs(os.path.join(dev, b"pts"), exist_ok=True)
    os.makedirs(os.path.join(dev, b"shm"), mode=0o1777, exist_ok=True)
    os.chmod(os.path.join(dev, b"shm"), 0o1777)
    added = [Mount(b"/" + b"/".join(split(guest)), host, readonly=device.readonly,
                   kind="device") for device in config.devices for host, guest in device.nodes()]
    taken = {m.guest for m in added}     # --device /dev/zero:/dev/null replaces /dev/null
    devices = [Mount(b"/dev/" + name, host, kind="device") for name, host in
               DEFAULT_DEVICES.items() if os.path.exists(host) and b"/dev/" + name not in taken]
    for m in devices + added:
        if m.guest.startswith(b"/dev/"):     # its name shows in the container's /dev
            os.makedirs(os.path.dirname(os.path.join(dev, m.guest[5:])), exist_ok=True)
            open(os.path.join(dev, m.guest[5:]), "ab").close()
        else:
            _make_mountpoint(rootfs, m.guest, False)
    mounts += devices + added
    for name, target in DEV_LINKS.items():
        link = os.path.join(dev, name)
        if not os.path.lexists(link):
            os.symlink(target, link)
    volumes = [(b"/" + b"/".join(split(os.fsencode(vol.guest))), vol) for vol in config.volumes]
    for name, content in etc_files(config, hostname).items():
        if b"/etc/" + name in dict(volumes):
            continue    # the caller's own: dockerd's (its --add-host entries), a -v's
        host = os.path.join(state, name)
        with open(host, "wb") as f:
            f.write(content)
        mounts.append(Mount(b"/etc/" + name, host, kind="bind", reopen=True))
        _make_mountpoint(rootfs, b"/etc/" + name, False)
    for guest, vol in volumes:
        host = os.fsencode(os.path.realpath(vol.host))
        if not os.path.exists(host):
            os.makedirs(host, exist_ok=True)   # docker run -v creates a missing host dir
        mounts.append(Mount(guest, host, readonly=vol.readonly, kind=vol.kind))
        _make_mountpoint(rootfs, guest, os.path.isdir(host))
    for guest in (b"/proc", b"/sys", b"/dev"):
        _make_mountpoint(rootfs, guest, True)
    return mounts


def etc_files(config: SandboxConfig, hostname: str) -> dict[bytes, bytes]:
    """/etc/hosts, /etc/hostname and /etc/resolv.conf as Docker writes them:
    the host's resolv.conf with --dns, --dns-search and --dns-option
    replacing its nameserver, search and options lines."""
    hosts = ["127.0.0.1\tlocalhost", "::1\tlocalhost ip6-localhost ip6-loopback",
             "fe00::\tip6-localnet", "ff00::\tip6-mcastprefix", "ff02::1\tip6-allnodes",
             "ff02::2\tip6-allrouters"]
    for entry in config.extra_hosts:
        name, _, ip = entry.partition(":")
        hosts.append(f"{ip}\t{name}")
    hosts.append(f"{config.address or '127.0.1.1'}\t{hostname}")
    if config.address6:
        hosts.append(f"{config.address6}\t{hostname}")
    try:
        with open("/etc/resolv.conf", "rb") as f:
            host = f.read().decode(errors="replace").splitlines()
    except OSError:
        host = []
    given = {"nameserver": config.dns, "search": config.dns_search,
             "options": config.dns_options}
    lines = []
    for line in host:
        key = line.split(maxsplit=1)[0] if line.split() else ""
        if not given.get(key):
            lines.append(line)
    lines += [f"nameserver {d}" for d in config.dns]
    if config.dns_search:
        lines.append("search " + " ".join(config.dns_search))
    if config.dns_options:
        lines.append("options " + " ".join(config.dns_options))
    resolv = "".join(line + "\n" for line in lines).encode()
    return {b"hosts": ("\n".join(hosts) + "\n").encode(),
            b"hostname": (hostname + "\n").encode(), b"resolv.conf": resolv}


def _make_mountpoint(rootfs: bytes, guest: bytes, is_dir: bool) -> None:
    """Create the mount point inside the rootfs if it is missing, so listings
    of its parent show it. Best effort: the mount table, not this directory,
    is what makes the mount reachable, so a read-only rootfs or a symlink on
    the way (never followed here: it could point out of the rootfs) only
    hides the mount point from listings."""
    target = rootfs.rstrip(b"/")
    for comp in split(guest):
        target += b"/" + comp
        if os.path.islink(target):
            return
    if os.path.lexists(target):
        return
    try:
        if is_dir:
            os.makedirs(target, exist_ok=True)
        else:
            os.makedirs(os.path.dirname(target), exist_ok=True)
            open(target, "ab").close()
    except OSError:
        pass
