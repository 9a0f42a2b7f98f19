"""Who a container process is: Linux credentials as the guest sees them.

When the supervisor runs as root the credentials are real (the entrypoint is
started with them, and set*id calls run natively). Unprivileged, they are
emulated: every process starts as the configured user (root by default)
and set*id/get*id/capget are answered from these records, with Linux's
rules for who may change what.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace

from .errors import Errno


class UserError(ValueError):
    """--user names something the image's /etc/passwd or /etc/group lacks."""


@dataclass
class Cred:
    ruid: int = 0
    euid: int = 0
    suid: int = 0
    fsuid: int = 0
    rgid: int = 0
    egid: int = 0
    sgid: int = 0
    fsgid: int = 0
    groups: tuple[int, ...] = ()
    caps: frozenset[str] = field(default_factory=frozenset)        # effective
    permitted: frozenset[str] = field(default_factory=frozenset)   # what capset may raise

    def copy(self) -> Cred:
        return replace(self)

    def capable(self, cap: str) -> bool:
        return cap in self.caps

    def for_access(self) -> Cred:
        """What access() and faccessat() without AT_EACCESS check with
        (access_override_creds): the real IDs, and a real root's permitted
        capabilities (none for another real user)."""
        return replace(self, fsuid=self.ruid, fsgid=self.rgid,
                       caps=self.permitted if self.ruid == 0 else frozenset())

    # -- set*id with Linux's permission rules -------------------------------

    def _set_uids(self, r: int, e: int, s: int) -> None:
        """With Linux's capability fix-ups (cap_emulate_setxuid): the last
        root ID gone clears every set; effective follows euid 0."""
        was_root, old_euid = 0 in (self.ruid, self.euid, self.suid), self.euid
        self.ruid, self.euid, self.suid, self.fsuid = r, e, s, e
        if was_root and 0 not in (r, e, s):
            self.caps = self.permitted = frozenset()
        elif old_euid == 0 and e != 0:
            self.caps = frozenset()
        elif old_euid != 0 and e == 0:
            self.caps = self.permitted

    def setresuid(self, r: int, e: int, s: int) -> None:
        """-1 keeps a value; unprivileged callers may only pick among their
        current real, effective and saved IDs."""
        if not self.capable("CAP_SETUID"):
            allowed = {self.ruid, self.euid, self.suid}
            if any(v != -1 and v not in allowed for v in (r, e, s)):
                raise Errno(1)   # EPERM
        self._set_uids(self.ruid if r == -1 else r, self.euid if e == -1 else e,
                       self.suid if s == -1 else s)

    def setuid(self, uid: int) -> None:
        if self.capable("CAP_SETUID"):
            self._set_uids(uid, uid, uid)
        elif uid in (self.ruid, self.suid):
            self._set_uids(self.ruid, uid, self.suid)
        else:
            raise Errno(1)

    def setreuid(self, r: int, e: int) -> None:
        if not self.capable("CAP_SETUID") and (
                (r != -1 and r not in (self.ruid, self.euid))
                or (e != -1 and e not in (self.ruid, self.euid, self.suid))):
            raise Errno(1)
        new_e = self.euid if e == -1 else e
        saved = new_e if r != -1 or (e != -1 and e != self.ruid) else self.suid
        self._set_uids(self.ruid if r == -1 else r, new_e, saved)

    def setfsuid(self, uid: int) -> int:
        old = self.fsuid
        if uid != -1 and (self.capable("CAP_SETUID")
                          or uid in (self.ruid, self.euid, self.suid, self.fsuid)):
            self.fsuid = uid
        return old

    def setresgid(self, r: int, e: int, s: int) -> None:
        if not self.capable("CAP_SETGID"):
            allowed = {self.rgid, self.egid, self.sgid}
            if any(v != -1 and v not in allowed for v in (r, e, s)):
                raise Errno(1)
        self.rgid = self.rgid if r == -1 else r
        self.egid = self.egid if e == -1 else e
        self.sgid = self.sgid if s == -1 else s
        self.fsgid = self.egid

    def setgid(self, gid: int) -> None:
        if self.capable("CAP_SETGID"):
            self.setresgid(gid, gid, gid)
        elif gid in (self.rgid, self.sgid):
            self.setresgid(-1, gid, -1)
        else:
            raise Errno(1)

    def setregid(self, r: int, e: int) -> None:
        new_r = self.rgid if r == -1 else r
        new_e = self.egid if e == -1 else e
        if not self.capable("CAP_SETGID"):
            if r != -1 and r not in (self.rgid, self.egid):
                raise Errno(1)
            if e != -1 and e not in (self.rgid, self.egid, self.sgid):
                raise Errno(1)
        saved = new_e if (r != -1 or (e != -1 and e != self.rgid)) else self.sgid
        self.rgid, self.egid, self.sgid, self.fsgid = new_r, new_e, saved, new_e

    def setfsgid(self, gid: int) -> int:
        old = self.fsgid
        if gid != -1 and (self.capable("CAP_SETGID")
                          or gid in (self.rgid, self.egid, self.sgid, self.fsgid)):
            self.fsgid = gid
        return old

    def after_exec(self, owner: int | None, group: int | None, bounding: frozenset[str],
                   no_new_privs: bool) -> Cred:
        """What execve makes of these credentials (Linux's bprm_fill_uid and
        cap_bprm_creds_from_file, without file capabilities): a setuid
        file's owner, a setgid file's group become the effective and saved
        IDs unless no_new_privs; a root UID gets the bounding set, effective
        when the effective UID is root; no_new_privs never gains a capability."""
        new = self.copy()
        if not no_new_privs:
            new.euid = new.euid if owner is None else owner
            new.egid = new.egid if group is None else group
        new.suid = new.fsuid = new.euid
        new.sgid = new.fsgid = new.egid
        new.permitted = bounding if 0 in (new.ruid, new.euid) else frozenset()
        if no_new_privs:
            new.permitted &= self.permitted
        new.caps = new.permitted if new.euid == 0 else frozenset()
        return new

    def setgroups(self, groups: tuple[int, ...]) -> None:
        if not self.capable("CAP_SETGID"):
            raise Errno(1)
        self.groups = groups


# -- the image's user database ---------------------------------------------

def _read_db(rootfs: bytes, name: bytes) -> list[list[str]]:
    """Entries of /etc/passwd or /etc/group in the rootfs, read without
    following a symlink out of it."""
    path = os.path.join(rootfs, b"etc", name)
    try:
        if os.path.islink(path) or os.path.islink(os.path.dirname(path)):
            return []
        with open(path, encoding="utf-8", errors="replace") as f:
            return [line.rstrip("\n").split(":") for line in f if line.strip()
                    and not line.startswith("#")]
    except OSError:
        return []


def resolve_user(rootfs: bytes, spec: str, caps: frozenset[str],
                 group_add: tuple[str, ...] = ()) -> Cred:
    """`docker run --user` semantics: "", NAME, UID, NAME:GROUP, UID:GID.
    A numeric UID need not exist in /etc/passwd; a name must. group_add:
    `--group-add` supplementary groups (names or GIDs)."""
    user, _, group = (spec or "0").partition(":")
    passwd = _read_db(rootfs, b"passwd")
    groups_db = _read_db(rootfs, b"group")
    entry = next((e for e in passwd if len(e) > 3 and (e[0] == user or
                                                     (user.isdigit() and e[2] == user))), None)
    if user.isdigit():
        uid = int(user)
        gid = int(entry[3]) if entry and entry[3].isdigit() else 0
    elif entry is None:
        raise UserError(f"unable to find user {user}: no matching entries in passwd file")
    else:
        uid, gid = int(entry[2]), int(entry[3])
    if group:
        if group.isdigit():
            gid = int(group)
        else:
            g = next((e for e in groups_db if len(e) > 2 and e[0] == group), None)
            if g is None:
                raise UserError(f"unable to find group {group}: no matching entries in "
                                "group file")
            gid = int(g[2])
    name = entry[0] if entry else None
    added = set()
    for wanted in group_add:
        found = wanted if wanted.isdigit() else next((e[2] for e in groups_db if len(e) > 2
                                                      and e[0] == wanted), None)
        if found is None or not found.isdigit():
            raise UserError(f"unable to find group {wanted}: no matching entries in group file")
        added.add(int(found))
    extra = tuple(sorted(({int(e[2]) for e in groups_db if len(e) > 3 and name
                           and name in e[3].split(",") and e[2].isdigit()} | added) - {gid}))
    held = caps if uid == 0 else frozenset()
    return Cred(uid, uid, uid, uid, gid, gid, gid, gid, (gid,) + extra, held, held)


def home_of(rootfs: bytes, uid: int) -> str:
    for e in _read_db(rootfs, b"passwd"):
        if len(e) > 5 and e[2] == str(uid):
            return e[5] or "/"
    return "/"
