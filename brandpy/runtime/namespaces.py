"""The namespaces a privileged container makes, emulated by the supervisor
(as gVisor's sentry keeps them): nothing reaches the kernel.

A process that unshares its mount namespace gets a copy of the mount
table it was in (mounts.MountTable.copy), and one that unshares its UTS
namespace a copy of the hostname and domain name; its children share
them (process.Process.fork). Mount changes (syscalls/handlers/mount.py)
change the caller's table alone. brandpy's namespaces belong to a
process, not a thread (see the README's syscall table).
"""

from __future__ import annotations

from dataclasses import dataclass

# Test-only: as root, the spawner makes no kernel namespaces (the control
# runs of tests/security/, where the walls must all be off; with
# landlock.TEST_OFF).
NAMESPACES_OFF = "BRANDPY_TEST_NO_NAMESPACES"


@dataclass
class Uts:
    hostname: str
    domainname: str

    def copy(self) -> Uts:
        return Uts(self.hostname, self.domainname)
