"""SysV IPC objects are the host's (no IPC namespace), but the IDs their
status carries are the container's: the creator's and last user's PIDs
(shm_cpid/shm_lpid, msg_lspid/msg_lrpid, semctl GETPID) and, with
emulated identity, the owner's and creator's IDs (brandpy/runtime/ids.py).
Only the status commands are trapped."""

from __future__ import annotations

from brandpy.runtime.call import Call
from brandpy.runtime.ids import Layout, pid_out

from .owners import translate_back

IPC_STAT = 2
SHM_STAT, SHM_STAT_ANY = 13, 15
MSG_STAT, MSG_STAT_ANY = 11, 13
SEM_STAT, SEM_STAT_ANY, GETPID = 18, 20, 11
SHM_CMDS = (IPC_STAT, SHM_STAT, SHM_STAT_ANY)
MSG_CMDS = (IPC_STAT, MSG_STAT, MSG_STAT_ANY)
SEM_CMDS = (IPC_STAT, SEM_STAT, SEM_STAT_ANY, GETPID)
# struct ipc64_perm: key, uid, gid, cuid, cgid; then each kind's own fields
_PERM_UIDS = ((4, "euid"), (12, "euid"))
_PERM_GIDS = ((8, "egid"), (16, "egid"))
# the creator (shm_cpid) owns a segment's IDs; a queue's PIDs are its last users'
SHMID_DS = Layout(112, pids=(80, 84), uids=_PERM_UIDS, gids=_PERM_GIDS)
MSQID_DS = Layout(120, pids=(96, 100), uids=_PERM_UIDS, gids=_PERM_GIDS, owned=False)
SEMID_DS = Layout(104, uids=_PERM_UIDS, gids=_PERM_GIDS)


def shmctl(call: Call) -> None:
    """shmctl(id, cmd, buf)."""
    _status(call, 2, SHMID_DS)


def msgctl(call: Call) -> None:
    """msgctl(id, cmd, buf)."""
    _status(call, 2, MSQID_DS)


def semctl(call: Call) -> None:
    """semctl(id, num, cmd, arg): GETPID returns the last operator's PID."""
    if call.iarg(2) == GETPID:
        if not call.sb.pids.kernel:    # else the kernel's answer is the container's
            call.after(lambda c, result: pid_out(c.sb, result) if result > 0 else None)
    else:
        _status(call, 3, SEMID_DS)


def _status(call: Call, buf_i: int, layout: Layout) -> None:
    ptr = call.arg(buf_i)
    call.after(lambda c, result: translate_back(c, ptr, layout) if result >= 0 else None)
