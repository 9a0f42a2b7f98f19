"""Setting up a container before its entrypoint runs: the environment,
the working directory and the command, found inside the rootfs with the
errors and exit statuses docker uses."""

from __future__ import annotations

import errno
import os
import stat
from typing import Protocol

from .errors import Errno
from .identity import home_of
from .mounts import split
from .pathres import Resolver
from .process import Process
from .sandbox import Sandbox

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

# exit statuses as docker uses them
EXIT_RUNTIME, EXIT_CANNOT_EXEC, EXIT_NOT_FOUND = 125, 126, 127


class Resolving(Protocol):
    """A sandbox, or the engine's view of a stopped container's files."""
    resolver: Resolver


class ContainerError(Exception):
    """Setting up the container failed before the entrypoint ran."""

    def __init__(self, message: str, status: int = EXIT_RUNTIME) -> None:
        super().__init__(message)
        self.status = status


def default_env(env: list[str], sb: Sandbox) -> list[str]:
    """Docker's additions: PATH, HOSTNAME and the user's HOME unless set."""
    names = {e.split("=", 1)[0] for e in env}
    extra = []
    if "PATH" not in names:
        extra.append("PATH=" + DEFAULT_PATH)
    if "HOSTNAME" not in names:
        extra.append("HOSTNAME=" + sb.hostname)
    if "HOME" not in names:
        extra.append("HOME=" + home_of(sb.rootfs, sb.cred.euid))
    return extra + env


def merge_env(base: list[str], overrides: list[str]) -> list[str]:
    """base with overrides applied by variable name (docker exec -e)."""
    merged = {e.split("=", 1)[0]: e for e in base}
    merged.update((e.split("=", 1)[0], e) for e in overrides)
    return list(merged.values())


def find_command(sb: Sandbox, argv0: str, env: list[str], workdir: str) -> str:
    """The guest path of the entrypoint, looked up in the container's PATH
    as runc does; raises ContainerError with docker's status codes."""
    if not argv0:
        raise ContainerError("no command specified", EXIT_RUNTIME)
    root = Process(tgid=0)
    if "/" in argv0:
        candidates = [argv0 if argv0.startswith("/") else os.path.join(workdir, argv0)]
    else:
        path = next((e[5:] for e in env if e.startswith("PATH=")), DEFAULT_PATH)
        candidates = [os.path.join(d or ".", argv0) for d in path.split(":")]
        candidates = [c if c.startswith("/") else os.path.join(workdir, c) for c in candidates]
    denied = None
    for guest in candidates:
        try:
            r = sb.resolver.resolve(root, 0, os.fsencode(guest))
        except Errno:
            continue
        with r:
            st = r.lstat()
            if st is not None and stat.S_ISREG(st.st_mode):
                if r.access(os.X_OK):
                    return guest
                denied = guest
            elif "/" in argv0 and st is not None and stat.S_ISDIR(st.st_mode):
                raise ContainerError(f'exec: "{argv0}": is a directory', EXIT_CANNOT_EXEC)
    if denied:
        raise ContainerError(f'exec: "{argv0}": permission denied', EXIT_CANNOT_EXEC)
    where = "no such file or directory" if "/" in argv0 else "executable file not found in $PATH"
    raise ContainerError(f'exec: "{argv0}": {where}', EXIT_NOT_FOUND)


def prepare_workdir(sb: Resolving, workdir: str) -> bytes:
    """The host path of the working directory, created if missing as docker
    does: one guest component at a time, each resolved inside the rootfs and
    made in the directory the walk found (a running container cannot
    redirect it, docker exec -w)."""
    if not workdir.startswith("/"):
        raise ContainerError(f"the working directory {workdir!r} is invalid, it needs to be "
                             "an absolute path")
    root = Process(tgid=0)
    guest = b"/"
    for comp in split(os.fsencode(workdir)):
        try:
            with sb.resolver.resolve(root, 0, guest.rstrip(b"/") + b"/" + comp) as r:
                if r.lstat() is None:
                    if r.proc is not None or not r.name:
                        raise Errno(errno.EACCES)
                    os.mkdir(r.name, 0o755, dir_fd=r.dirfd)
                guest = r.guest
        except Errno as exc:
            raise ContainerError(f"working directory {workdir}: "
                                 f"{os.strerror(exc.errno)}") from None
        except OSError as exc:
            raise ContainerError(f"cannot create working directory {workdir}: "
                                 f"{exc.strerror}") from None
    with sb.resolver.resolve(root, 0, guest) as r:
        st = r.lstat()
        if st is None or not stat.S_ISDIR(st.st_mode):
            raise ContainerError(f"working directory {workdir}: not a directory")
        return r.host
