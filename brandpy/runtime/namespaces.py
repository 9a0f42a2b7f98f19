"""The namespaces a privileged container makes, emulated by the supervisor
(as gVisor's sentry keeps them): nothing reaches the kernel.

A process that unshares its mount namespace gets a copy of the mount
table it was in (mounts.MountTable.copy), and one that unshares its UTS
namespace a copy of the hostname and domain name; its children share
them (process.Process.fork). Mount changes (syscalls/handlers/mount.py)
change the caller's table alone. brandpy's namespaces belong to a
process, not a thread (see the README's syscall table).

Beneath them, the kernel's namespaces the container's spawner makes as
walls (native/spawner.c): as root, and unprivileged in a user namespace of
its own where the host allows one (kernel_walls).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache

# Test-only: the spawner makes no kernel namespaces, nor unprivileged a user
# namespace for them (the control runs of tests/security/, where the walls
# must all be off, with landlock.TEST_OFF; and the unprivileged fallback of
# a host that forbids user namespaces, tested as such).
NAMESPACES_OFF = "BRANDPY_TEST_NO_NAMESPACES"


@lru_cache(maxsize=1)
def user_namespaces() -> str:
    """Unprivileged: "" where this process may make a user namespace and,
    in it, the container's mount, PID, IPC and UTS namespaces (the
    spawner's, native/spawner.c), else why not. Hosts forbid them with
    user.max_user_namespaces=0, kernel.unprivileged_userns_clone=0 or
    AppArmor's restrict_unprivileged_userns (which lets unshare succeed
    but takes the capabilities): so it is tried, not read from sysctls,
    with /proc bound as each container's is."""
    from brandpy._native import lib
    rc: int = lib.bp_userns_probe()
    if rc == 0:
        return ""
    return (f"unprivileged user namespaces are not available here ({os.strerror(-rc)}; "
            "see user.max_user_namespaces, kernel.unprivileged_userns_clone, "
            "kernel.apparmor_restrict_unprivileged_userns): no mount or PID namespace, "
            "the PIDs are brandpy's own numbering")


def kernel_walls() -> bool:
    """Whether the spawner gives each container its own namespaces: as
    root, and unprivileged inside a user namespace of its own where the
    host allows one (else `unavailable` says why not)."""
    if os.environ.get(NAMESPACES_OFF) == "1":
        return False
    return os.geteuid() == 0 or not user_namespaces()


def unavailable() -> str:
    """Why an unprivileged container here gets no namespaces ("" if it
    does, or as root): for `brandpy run --debug` and `docker info`."""
    return user_namespaces() if os.geteuid() != 0 else ""


@dataclass
class Uts:
    hostname: str
    domainname: str

    def copy(self) -> Uts:
        return Uts(self.hostname, self.domainname)
