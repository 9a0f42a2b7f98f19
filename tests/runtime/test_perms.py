"""Linux's permission rules for a non-root container user (issue 17,
class 2): tests/programs/perms.c prints what Linux answers to chroot,
execve of files open for writing, of non-executable files and of
setuid/setgid programs, and to capset, starting as root and then as uid
1000. Under brandpy (both engines, as root and unprivileged) it must print
what it prints natively in a chroot."""

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.conftest import Result, build_program, chroot_run, install_program

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the chroot reference needs root")

OPTIONS = ("--cap-add", "ALL", "--security-opt", "seccomp=unconfined")


@pytest.fixture(scope="module")
def perms_bin(world_tmp: Path) -> Path:
    return build_program("perms", world_tmp)


def _compare(brandpy, debian_shared: Path, perms_bin: Path, section: str) -> tuple[Result, Result]:
    """The section natively and under brandpy, in the Debian image (so
    both static and dynamic programs are exec'd)."""
    install_program(debian_shared, perms_bin)
    native = chroot_run(debian_shared, ["/usr/bin/perms", section])
    assert native.status == 0, native
    mine = brandpy(debian_shared, ["/usr/bin/perms", section], *OPTIONS, timeout=60)
    assert mine.status == 0, mine
    return native, mine


def test_chroot_needs_cap_sys_chroot(brandpy, debian_shared, perms_bin):
    native, mine = _compare(brandpy, debian_shared, perms_bin, "chroot")
    assert "chroot user dir: EPERM" in native.out and "chroot user file: ENOTDIR" in native.out
    assert mine.out == native.out


def test_exec_of_a_file_open_for_writing_is_etxtbsy(brandpy, debian_shared, perms_bin):
    native, mine = _compare(brandpy, debian_shared, perms_bin, "txtbsy")
    # the Debian image's /bin/true is dynamic: brandpy execs it through ld.so
    assert "exec true open for writing: ETXTBSY" in native.out
    assert "exec script open for writing: ETXTBSY" in native.out
    assert mine.out == native.out


def test_exec_of_a_non_executable_file_fails_as_linux(brandpy, debian_shared, perms_bin):
    native, mine = _compare(brandpy, debian_shared, perms_bin, "noexec")
    assert "exec dyn-0744 as user: EACCES" in native.out
    assert "exec garbage-0755 as user: ENOEXEC" in native.out
    assert mine.out == native.out


def test_capset_raises_within_permitted(brandpy, debian_shared, perms_bin):
    native, mine = _compare(brandpy, debian_shared, perms_bin, "caps")
    assert "after raise: effective 1 permitted 1" in native.out
    assert "raise beyond permitted: EPERM" in native.out
    assert mine.out == native.out


# As root the supervisor gives the container real credentials, which only
# the kernel can raise, and it does not: brandpy sets no_new_privs for its
# seccomp filter, and a dynamic program is exec'd as the guest's ld.so.
REAL_SETUID = "setuid elevation with real credentials (supervisor root) is not emulated"


def test_setuid_programs_elevate(brandpy, debian_shared, perms_bin):
    if brandpy.user == "root":
        pytest.skip(REAL_SETUID)
    native, mine = _compare(brandpy, debian_shared, perms_bin, "setuid")
    assert "uids 1000 0 0 gids 1000 1000 1000 setuid cap: effective 1" in native.out
    assert "uids 0 0 0 gids 0 4321 4321" in native.out
    assert mine.out == native.out


def test_no_new_privileges_stops_elevation(brandpy, debian_shared, perms_bin):
    if brandpy.user == "root":
        pytest.skip(REAL_SETUID)
    install_program(debian_shared, perms_bin)
    argv = ["/usr/bin/perms", "setuid"]
    native = chroot_run(debian_shared, ["setpriv", "--no-new-privs", *argv])
    assert native.status == 0, native
    assert "uids 1000 1000 1000 gids 1000 1000 1000" in native.out
    mine = brandpy(debian_shared, argv, *OPTIONS, "--security-opt", "no-new-privileges",
                   timeout=60)
    assert mine.status == 0, mine
    assert mine.out == native.out


def test_docker_security_opt_no_new_privileges():
    """The daemon's spellings of the option, as dockerd takes them."""
    from brandpy.engine.create import no_new_privileges
    assert no_new_privileges(["no-new-privileges"])
    assert no_new_privileges(["no-new-privileges:true", "seccomp=unconfined"])
    assert not no_new_privileges(["no-new-privileges", "no-new-privileges=false"])
    assert not no_new_privileges(["seccomp=unconfined"])


# chown and chmod by the container's root, natively real and unprivileged
# recorded (fake ownership); owner and set-ID bits as Linux clears them.
OWNERSHIP = """cd /tmp && touch f && mkdir d && ln -s f l && mknod c c 1 3
show() { stat -c '%A %u %g %t,%T %n' "$@"; }
chown 12:34 f; chmod 4755 f; show f
chown 5 f; show f
chmod 2775 f; chown 7 f; show f
chmod 2765 f; chown :8 f; show f
chmod 000 f; show f; chmod 644 f; chown 0:0 f; show f
chmod 1777 d; chown 9:9 d; chmod 6755 d; chown 8 d; show d
chown 4:4 c; chmod 600 c; show c
chmod 640 c; chown -1:-1 c; show c
"""


def test_chown_and_chmod_as_linux(brandpy, busybox, outdir):
    """What the container's root sets is what it sees, as natively; the
    native engine answers each call in C, unprivileged too."""
    reference = busybox.parent / "reference"
    subprocess.run(["cp", "-a", str(busybox), str(reference)], check=True)
    native = chroot_run(reference, ["/bin/sh", "-c", OWNERSHIP])
    assert native.status == 0 and "-rwsr-xr-x 12 34" in native.out, native
    stats = outdir / "stats.json"
    mine = brandpy.sh(busybox, OWNERSHIP, "--stats-json", str(stats))
    assert (mine.status, mine.out) == (0, native.out), mine
    if brandpy.engine == "native":
        notified = json.loads(stats.read_text())["Notified"]
        changes = {name: s["InPython"] for name, s in notified.items()
                   if name.endswith(("chmod", "chown", "chmodat", "chownat"))}
        assert {"chmod", "chown"} <= set(changes) and set(changes.values()) == {0}, changes
