"""The container's /proc: host procfs, seen through container PIDs.

Paths under /proc are resolved with PIDs translated (pathres), and only the
container's processes exist. What procfs would print with host PIDs or
host names is produced here instead and handed to the tracee as a private
file: /proc and /proc/PID/task listings (directories of container PIDs),
stat, status, cmdline and comm (PIDs and the program's own name, not the
ELF loader that started it), mounts and mountinfo (the container's mount
table), cgroup, uid_map, gid_map and setgroups (unprivileged, those of the
initial user namespace), and the kernel's hostname, domainname and release. Every
file that names processes names them by container PID (and, with emulated
identity, users by container ID: brandpy/runtime/ids.py): timers, sched,
children, fdinfo (a pidfd's process, a lock's holder), /proc/locks (only
the container's), loadavg and ns_last_pid (the last container PID).
"""

from __future__ import annotations

import os
import re
import shutil
import struct
from collections.abc import Callable
from typing import TYPE_CHECKING

from brandpy import scratch

from .acting import tracee_memory
from .ids import cred_of, gid_out, parent_out, pid_out, uid_out
from .linux import read_in_ipc_ns, vm_read
from .mounts import Mount, split

if TYPE_CHECKING:     # the sandbox owns its ProcFS and imports this module
    from .process import Process
    from .sandbox import Sandbox

_PID_FILE = re.compile(rb"^(\d+)(?:/task/(\d+))?/(stat|status|cmdline|comm|mounts|mountinfo|"
                       rb"cgroup|timers|sched|children|fdinfo/\d+|auxv|uid_map|gid_map|"
                       rb"setgroups)$")
# The initial user namespace's maps: unprivileged, the container's processes
# are in one of the spawner's (mapping the supervisor's uid alone) but see
# themselves in the initial one, as they would without it (emulated identity)
INITIAL_USERNS = {b"uid_map": b"         0          0 4294967295\n",
                  b"gid_map": b"         0          0 4294967295\n", b"setgroups": b"allow\n"}
_TASK_DIR = re.compile(rb"^(\d+)/task$")
KERNEL_FILES = {b"sys/kernel/hostname", b"sys/kernel/domainname", b"sys/kernel/osrelease",
                b"version", b"mounts", b"locks", b"loadavg", b"sys/kernel/ns_last_pid",
                b"sysvipc/shm", b"sysvipc/msg", b"sysvipc/sem"}
# /proc/sysvipc/*: the token indexes of (PIDs, UIDs, GIDs); a segment's IDs are its creator's
SYSVIPC_COLUMNS = {b"sysvipc/shm": ((4, 5), (7, 9), (8, 10)),
                   b"sysvipc/msg": ((5, 6), (7, 9), (8, 10)),
                   b"sysvipc/sem": ((), (4, 6), (5, 7))}
MOUNT_TYPES = {
    "rootfs": (b"overlay", b"overlay", b"rw,relatime"),
    "proc": (b"proc", b"proc", b"rw,nosuid,nodev,noexec,relatime"),
    "sys": (b"sysfs", b"sysfs", b"ro,nosuid,nodev,noexec,relatime"),
    "dev": (b"tmpfs", b"tmpfs", b"rw,nosuid,size=65536k,mode=755"),
    "tmpfs": (b"shm", b"tmpfs", b"rw,nosuid,nodev,noexec,relatime,size=65536k"),
    "masked": (b"tmpfs", b"tmpfs", b"ro,relatime"),
}


class ProcFS:
    def __init__(self, sb: Sandbox) -> None:
        self.sb = sb
        self._reader_tid = 0
        self._listed: dict[bytes, list[bytes]] = {}
        self._base: bytes | None = None
        self._private = False
        self._seq = 0

    @property
    def base(self) -> bytes:
        """Made on first use. Listings are directories of their own, and
        tmpfs lists entries in an order we control (see _sync), so they go
        to /dev/shm when it is a tmpfs; else into the state dir."""
        if self._base is None:
            self._private = on_tmpfs(SHM) and os.access(SHM, os.W_OK)
            if self._private:
                self._base = os.fsencode(scratch.mkdtemp("brandpy-proc-", SHM))
                os.chmod(self._base, 0o755)
            else:
                self._base = os.path.join(self.sb.state, b"proc")
            os.makedirs(os.path.join(self._base, b"files"), mode=0o755, exist_ok=True)
        return self._base

    def close(self) -> None:
        if self._private and self._base is not None:
            shutil.rmtree(self._base, ignore_errors=True)

    # -- directory listings -------------------------------------------------------

    def listing(self, rel: tuple[bytes, ...]) -> bytes | None:
        """The host directory to open for a guest /proc directory whose
        host listing would show host PIDs (/proc itself, /proc/PID/task)."""
        if not rel:
            view = self._sync(b"root", [b"%d" % g for g in self._guest_tgids()],
                              mirror=b"/proc")
            self.sb.mounts.aliases[view] = b"/proc"
            return view
        match = _TASK_DIR.match(b"/".join(rel))
        if match is None:
            return None
        host = self.sb.pids.to_host(int(match.group(1)))
        proc = self.sb.process_of(host) if host else None
        if proc is None:
            return None
        tids = sorted(self.sb.pids.to_guest(t) for t in proc.threads)
        view = self._sync(b"task-" + match.group(1), [b"%d" % t for t in tids])
        self.sb.mounts.aliases[view] = b"/proc/" + match.group(1) + b"/task"
        return view

    def _guest_tgids(self) -> list[int]:
        return sorted(self.sb.pids.to_guest(tgid) for tgid in self.sb.tgids())

    def _sync(self, name: bytes, pids: list[bytes], mirror: bytes | None = None) -> bytes:
        """A directory whose entries are `pids` (empty dirs) plus, for
        /proc, the host's other entries with their types. It is built anew
        and renamed into place (an open listing keeps its own): on tmpfs,
        which lists the newest entry first, creating the PIDs in descending
        order and the rest after lists them as procfs does."""
        view = os.path.join(self.base, name)
        if self._listed.get(name) == pids and os.path.isdir(view):
            return view
        self._seq += 1
        fresh = view + b".%d" % self._seq
        os.mkdir(fresh, 0o755)
        for pid in sorted(pids, key=int, reverse=True):
            os.mkdir(os.path.join(fresh, pid))
        if mirror is not None:
            for entry in sorted(os.scandir(mirror), key=lambda e: e.name, reverse=True):
                if entry.name.isdigit():
                    continue
                path = os.path.join(fresh, os.fsencode(entry.name))
                if entry.is_symlink():
                    os.symlink(os.readlink(entry.path), path)
                elif entry.is_dir(follow_symlinks=False):
                    os.mkdir(path)
                else:
                    open(path, "wb").close()
        old = view + b".old"
        if os.path.isdir(view):
            os.rename(view, old)
        os.rename(fresh, view)
        if os.path.isdir(old):
            shutil.rmtree(old, ignore_errors=True)
        self._listed[name] = pids
        return view

    # -- files ------------------------------------------------------------------------

    def synthesize(self, reader: Process, rel: tuple[bytes, ...],
                   reader_tid: int = 0) -> bytes | None:
        """The content of a /proc file (path relative to /proc) as the
        container must see it, or None to read the host file as it is."""
        self._reader_tid = reader_tid
        path = b"/".join(rel)
        if path in KERNEL_FILES:
            return self._kernel_file(path, reader)
        match = _PID_FILE.match(path)
        if match is None:
            return None
        host = self.sb.pids.to_host(int(match.group(2) or match.group(1)))
        if host is None:
            return None
        what = match.group(3)
        if what.startswith(b"fdinfo/"):
            what = b"fdinfo"
            host_path = b"/proc/%d/fdinfo/%s" % (host, rel[-1])
        elif what == b"children":           # only under task/
            host_path = b"/proc/%d/task/%d/children" % (host, host)
        else:
            host_path = b"/proc/%d/%s" % (host, what)
        if what in (b"mounts", b"mountinfo"):
            return self.mounts(reader) if what == b"mounts" else self.mountinfo(reader)
        if what == b"cgroup":
            return b"0::/\n"
        if what in INITIAL_USERNS:
            return INITIAL_USERNS[what] if self.sb.userns else None
        proc = self.sb.process_of(host)
        try:
            with open(host_path, "rb") as f:
                raw = f.read()
        except OSError:
            return None
        fix: Callable[[bytes, Process | None, int], bytes] = {
            b"stat": self._stat, b"status": self._status, b"cmdline": self._cmdline,
            b"comm": self._comm, b"timers": self._timers, b"sched": self._sched,
            b"children": self._children, b"fdinfo": self._fdinfo, b"auxv": self._auxv}[what]
        return fix(raw, proc, host)

    def materialize(self, tid: int, content: bytes) -> bytes:
        """A private file holding `content` for the tracee to open; replaced
        atomically, so an earlier open keeps its own copy."""
        self._seq += 1
        path = os.path.join(self.base, b"files", b"%d" % tid)
        tmp = path + b".%d" % self._seq
        with open(tmp, "wb") as f:
            f.write(content)
        os.chmod(tmp, 0o444)
        os.rename(tmp, path)
        return path

    def _kernel_file(self, path: bytes, reader: Process) -> bytes:
        sb = self.sb
        if path == b"mounts":
            return self.mounts(reader)
        if path in (b"locks", b"loadavg"):
            with open(b"/proc/" + path, "rb") as f:
                raw = f.read()
            return self._locks(raw) if path == b"locks" else self._loadavg(raw)
        if path == b"sys/kernel/ns_last_pid":
            return b"%d\n" % sb.pids.last()
        if path in SYSVIPC_COLUMNS:
            # as root the container has an IPC namespace of its own
            head, *rows = read_in_ipc_ns(reader.tgid, b"/proc/" + path).splitlines(keepends=True)
            return head + b"".join(self._sysvipc_row(row, *SYSVIPC_COLUMNS[path]) for row in rows)
        if path == b"version":
            u = os.uname()
            return f"Linux version {sb.release} (brandpy) {u.version}\n".encode()
        uts = sb.uts_of(reader)
        value = {b"sys/kernel/hostname": uts.hostname, b"sys/kernel/domainname": uts.domainname,
                 b"sys/kernel/osrelease": sb.release}[path]
        return value.encode() + b"\n"

    # -- per-process files ------------------------------------------------------------

    def _guest(self, host: int) -> int:
        return self.sb.pids.to_guest(host)

    def _comm_of(self, proc: Process | None, real: bytes) -> bytes:
        """The kernel names a program after the host file exec'd (a resolved
        symlink, ld.so): show the name it would have in the container,
        unless the program renamed itself (PR_SET_NAME)."""
        if proc is not None and proc.comm and real == proc.kernel_comm:
            return proc.comm
        return real

    def _state(self, state: bytes, host: int) -> bytes:
        """A task in a ptrace stop of the supervisor's is, to the guest,
        running (the reader itself) or sleeping: the tracing stop is
        brandpy's, unless it is one of an emulated tracer's."""
        if state == b"t":
            traced = self.sb.ptraced.tracees.get(host)
            if traced is not None and traced.stop is not None:
                return state
            return b"R" if host == self._reader_tid else b"S"
        return state

    def _stat(self, raw: bytes, proc: Process | None, host: int) -> bytes:
        head, _, tail = raw.rpartition(b") ")
        pid, _, comm = head.partition(b" (")
        fields = tail.split(b" ")
        fields[0] = self._state(fields[0], host)
        # fields: state ppid pgrp session tty_nr tpgid ...
        fields[1] = b"%d" % parent_out(self.sb, host, int(fields[1]))
        for i in (2, 3, 5):
            value = int(fields[i])
            if value > 0:
                fields[i] = b"%d" % self._guest(value)
        comm = self._comm_of(proc, comm)
        return b"%d (%s) %s" % (self._guest(int(pid)), comm, b" ".join(fields))

    def _status(self, raw: bytes, proc: Process | None, host: int) -> bytes:
        out = []
        for line in raw.splitlines():
            key, _, value = line.partition(b":")
            if key == b"Name":
                line = b"Name:\t" + self._comm_of(proc, value.strip())
            elif key == b"PPid":
                line = b"PPid:\t%d" % parent_out(self.sb, host, int(value))
            elif key in (b"Pid", b"Tgid", b"NStgid", b"NSpid", b"NSpgid", b"NSsid"):
                first = int(value.split()[0])
                line = key + b":\t%d" % (self._guest(first) if first > 0 else 0)
            elif key in (b"Uid", b"Gid", b"Groups") and self.sb.fake_ids and proc is not None:
                line = _cred_line(key, proc)
            elif key == b"State":
                state = self._state(value.strip()[:1], host)
                line = b"State:\t" + STATE_NAMES.get(state, value.strip())
            elif key == b"TracerPid":      # the supervisor is invisible; emulated tracers not
                traced = self.sb.ptraced.tracees.get(host)
                line = b"TracerPid:\t%d" % (self._guest(traced.tracer) if traced else 0)
            elif key == b"Ngid":
                line = b"Ngid:\t0"
            out.append(line)
        return b"\n".join(out) + b"\n"

    def _auxv(self, raw: bytes, proc: Process | None, host: int) -> bytes:
        """A program brandpy started through the image's ld.so: the kernel
        loaded ld.so as the program, the loader mapped the real one. Its
        auxiliary vector says what the kernel would have (the program's
        headers and entry, the loader's base as AT_BASE), as debuggers
        read it to find the program and its libraries."""
        if proc is None or proc.image is None or proc.image.program is None:
            return raw
        try:
            return fix_auxv(raw, host, proc.image.program)
        except (OSError, ValueError, struct.error):
            return raw

    def _cmdline(self, raw: bytes, proc: Process | None, host: int) -> bytes:
        """Drop the `ld.so --argv0 NAME PROG` prefix exec added."""
        if proc is None or not proc.loader_args or not raw:
            return raw
        parts = raw.split(b"\0")
        if proc.loader_args == 4 and len(parts) > 4:
            parts = [parts[2]] + parts[4:]
        elif proc.loader_args == 1 and len(parts) > 1:
            parts = parts[1:]
        return b"\0".join(parts)

    def _comm(self, raw: bytes, proc: Process | None, host: int) -> bytes:
        return self._comm_of(proc, raw.rstrip(b"\n")) + b"\n"

    def _timers(self, raw: bytes, proc: Process | None, host: int) -> bytes:
        """`notify: signal/tid.N` names the thread a timer signals."""
        return _NOTIFY.sub(lambda m: m.group(1) + b"%d" % self._guest(int(m.group(2))), raw)

    def _sched(self, raw: bytes, proc: Process | None, host: int) -> bytes:
        """The first line: `comm (PID, #threads: N)`."""
        return _SCHED.sub(lambda m: m.group(1) + b"%d" % self._guest(int(m.group(2))), raw, 1)

    def _children(self, raw: bytes, proc: Process | None, host: int) -> bytes:
        guests = [self._guest(int(pid)) for pid in raw.split()]
        return b"".join(b"%d " % g for g in guests if g)

    def _fdinfo(self, raw: bytes, proc: Process | None, host: int) -> bytes:
        """A pidfd's process (Pid, NSpid) and the holders of a file's locks."""
        out = []
        for line in raw.split(b"\n"):
            key, _, value = line.partition(b":")
            if key in (b"Pid", b"NSpid") and value.split():
                line = key + b":\t%d" % pid_out(self.sb, int(value.split()[0]))
            elif key == b"lock":
                line = b"lock:\t" + (self._lock_line(value.strip()) or value.strip())
            out.append(line)
        return b"\n".join(out)

    def _lock_line(self, line: bytes) -> bytes | None:
        """`ID: [-> ]POSIX ADVISORY WRITE PID DEV:INODE START END` with the
        container PID, or None for a holder outside the container (which
        /proc/locks does not show in a PID namespace)."""
        fields = line.split(b" ")
        words = [i for i, f in enumerate(fields) if f]
        at = words[5] if len(words) > 5 and fields[words[1]] == b"->" else \
            words[4] if len(words) > 4 else None
        if at is None:
            return line
        pid = int(fields[at])
        if pid > 0 and not self._guest(pid):
            return None
        fields[at] = b"%d" % pid_out(self.sb, pid)
        return b" ".join(fields)

    def _locks(self, raw: bytes) -> bytes:
        lines = (self._lock_line(line) for line in raw.splitlines())
        return b"".join(line + b"\n" for line in lines if line is not None)

    def _sysvipc_row(self, row: bytes, pids: tuple[int, ...], uids: tuple[int, ...],
                     gids: tuple[int, ...]) -> bytes:
        """One object of /proc/sysvipc/*, its IDs the container's, each in
        its column's width."""
        tokens = re.findall(rb"\s*\S+", row.rstrip(b"\n"))
        values = [int(t) if t.strip().lstrip(b"-").isdigit() else 0 for t in tokens]
        owner = cred_of(self.sb, values[pids[0]]) if pids and values[pids[0]] > 0 else None
        seen = {i: pid_out(self.sb, values[i]) for i in pids}
        seen.update({i: uid_out(self.sb, values[i], owner) for i in uids})
        seen.update({i: gid_out(self.sb, values[i], owner) for i in gids})
        for i, value in seen.items():
            tokens[i] = (b" %d" % value).rjust(len(tokens[i]))
        return b"".join(tokens) + b"\n"

    def _loadavg(self, raw: bytes) -> bytes:
        """The last field is the last PID given, the namespace's own."""
        head = raw.rsplit(b" ", 1)[0]
        return head + b" %d\n" % self.sb.pids.last()

    # -- the mount table ----------------------------------------------------------------

    def _visible_mounts(self, reader: Process) -> list[Mount]:
        # Docker's /dev is a tmpfs with device nodes: ours are binds, not shown
        mounts = [m for m in self.sb.mounts_of(reader).mounts if m.kind != "device"]
        return sorted(mounts, key=lambda m: (len(split(m.guest)), m.guest))

    def _entry(self, m: Mount) -> tuple[bytes, bytes, bytes]:
        if m.masks_file:             # a bind of the /dev tmpfs's null
            source, fstype, opts = MOUNT_TYPES["dev"]
        elif m.kind in MOUNT_TYPES:
            source, fstype, opts = MOUNT_TYPES[m.kind]
        elif m.guest == b"/dev/pts":
            source, fstype = b"devpts", b"devpts"
            opts = b"rw,nosuid,noexec,relatime,gid=5,mode=620,ptmxmode=666"
        else:
            source, fstype = host_fs(m.host)
            opts = b"rw,relatime"
        if m.source:
            source = m.source
        if m.shown_readonly and opts.startswith(b"rw"):
            opts = b"ro" + opts[2:]
        return source, fstype, opts

    def _relative(self, reader: Process, guest: bytes) -> bytes | None:
        rel = self.sb.resolver.relative_to_root(reader, guest)
        return rel if rel.startswith(b"/") else None

    def mounts(self, reader: Process) -> bytes:
        lines = []
        for m in self._visible_mounts(reader):
            target = self._relative(reader, m.guest)
            if target is not None:
                source, fstype, opts = self._entry(m)
                lines.append(b"%s %s %s %s 0 0" % (source, target, fstype, opts))
        return b"\n".join(lines) + b"\n"

    def mountinfo(self, reader: Process) -> bytes:
        mounts = self._visible_mounts(reader)
        table = self.sb.mounts_of(reader)
        ids = {m.guest: 100 + i for i, m in enumerate(mounts)}
        lines = []
        for m in mounts:
            target = self._relative(reader, m.guest)
            if target is None:
                continue
            parent = table.lookup(split(m.guest)[:-1])[0].guest if m.guest != b"/" \
                else m.guest
            try:
                st = os.stat(m.host)
                dev = b"%d:%d" % (os.major(st.st_dev), os.minor(st.st_dev))
            except OSError:
                dev = b"0:0"
            source, fstype, opts = self._entry(m)
            lines.append(b"%d %d %s / %s %s - %s %s %s" % (
                ids[m.guest], ids.get(parent, 99), dev, target, opts, fstype, source,
                opts.split(b",")[0]))
        return b"\n".join(lines) + b"\n"


STATE_NAMES = {b"R": b"R (running)", b"S": b"S (sleeping)"}
_NOTIFY = re.compile(rb"(notify:\s*\S+/(?:tid|pid)\.)(\d+)")
_SCHED = re.compile(rb"^(.*\()(\d+)(?=, #threads)")


AT_PHDR, AT_PHNUM, AT_BASE, AT_ENTRY = 3, 5, 7, 9
ET_DYN = 3


def fix_auxv(raw: bytes, host: int, program: tuple[int, int]) -> bytes:
    """raw with the values of a program the loader mapped (unchanged
    until it is mapped)."""
    aux = dict(struct.iter_unpack("<QQ", raw[:len(raw) // 16 * 16]))
    base = loader = None
    with open(f"/proc/{host}/maps", "rb") as f:
        for line in f:
            fields = line.split()
            if len(fields) < 6 or int(fields[2], 16) != 0:
                continue
            start, end = (int(x, 16) for x in fields[0].split(b"-"))
            major, minor = (int(x, 16) for x in fields[3].split(b":"))
            if (os.makedev(major, minor), int(fields[4])) == program and base is None:
                base = start
            elif start <= aux.get(AT_PHDR, -1) < end:
                loader = start
    if base is None or loader is None:
        return raw
    with tracee_memory():
        head = vm_read(host, base, 64)
    e_type, e_entry, e_phoff = struct.unpack_from("<H", head, 16)[0], \
        *struct.unpack_from("<QQ", head, 24)
    e_phnum = struct.unpack_from("<H", head, 56)[0]
    fixed = {AT_PHDR: base + e_phoff, AT_PHNUM: e_phnum, AT_BASE: loader,
             AT_ENTRY: e_entry + (base if e_type == ET_DYN else 0)}
    return b"".join(struct.pack("<QQ", key, fixed.get(key, value))
                    for key, value in struct.iter_unpack("<QQ", raw[:len(raw) // 16 * 16]))


def _cred_line(key: bytes, proc: Process) -> bytes:
    """Uid/Gid/Groups of /proc/PID/status with emulated identity."""
    c = proc.cred
    if key == b"Groups":
        return b"Groups:\t" + b"".join(b"%d " % g for g in c.groups)
    ids = (c.ruid, c.euid, c.suid, c.fsuid) if key == b"Uid" else (c.rgid, c.egid, c.sgid, c.fsgid)
    return key + b":\t" + b"\t".join(b"%d" % i for i in ids)




SHM = "/dev/shm"


def on_tmpfs(path: str) -> bool:
    return host_fs(os.fsencode(path))[1] == b"tmpfs"


def host_fs(path: bytes) -> tuple[bytes, bytes]:
    """(source, fstype) of the host mount holding `path`."""
    best = (b"", b"none", b"none")
    try:
        with open("/proc/self/mountinfo", "rb") as f:
            for line in f:
                fields = line.split()
                sep = fields.index(b"-")
                point = fields[4]
                if (path == point or path.startswith(point.rstrip(b"/") + b"/")) and \
                        len(point) >= len(best[0]):
                    best = (point, fields[sep + 2], fields[sep + 1])
    except (OSError, ValueError):
        pass
    return best[1], best[2]
