"""The container's UTS identity: hostname, domain name and the kernel
release uname(2) reports (--kernel-release)."""

from __future__ import annotations

import errno
import os

from brandpy.runtime.call import Call
from brandpy.runtime.errors import Errno

FIELD = 65               # __NEW_UTS_LEN + 1
HOST_NAME_MAX = 64


def uname(call: Call) -> int:
    """Performed by user notification (native/notify.c uname_ answers the
    same in C, but for a process in a UTS namespace of its own)."""
    sb = call.sb
    uts = sb.uts_of(call.proc)
    host = os.uname()
    fields = ("Linux", uts.hostname, sb.release, host.version, host.machine, uts.domainname)
    data = b"".join(f.encode()[:FIELD - 1].ljust(FIELD, b"\0") for f in fields)
    call.write(call.arg(0), data)
    return 0


def _set(call: Call, attr: str) -> int:
    if not call.proc.cred.capable("CAP_SYS_ADMIN"):
        raise Errno(errno.EPERM)
    size = call.iarg(1)
    if not 0 <= size <= HOST_NAME_MAX:
        raise Errno(errno.EINVAL)
    name = call.read(call.arg(0), size).split(b"\0", 1)[0].decode(errors="replace")
    call.sb.set_uts(call.proc, attr, name)
    return 0


def sethostname(call: Call) -> int:
    return _set(call, "hostname")


def setdomainname(call: Call) -> int:
    return _set(call, "domainname")
