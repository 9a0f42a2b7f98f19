"""Linux's permission rules for a non-root container user (issue 17,
class 2): tests/programs/perms.c prints what Linux answers to chroot,
execve of files open for writing, of non-executable files and of
setuid/setgid programs, and to capset, starting as root and then as uid
1000. Under brandpy (both engines, as root and unprivileged) it must print
what it prints natively in a chroot."""

import os
from pathlib import Path

import pytest

from tests.conftest import Result, build_program, chroot_run

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the chroot reference needs root")

OPTIONS = ("--cap-add", "ALL", "--security-opt", "seccomp=unconfined")


@pytest.fixture(scope="module")
def perms_bin(world_tmp: Path) -> Path:
    return build_program("perms", world_tmp)


def _install(rootfs: Path, program: Path) -> None:
    dest = rootfs / "usr" / "bin" / "perms"
    dest.write_bytes(program.read_bytes())
    dest.chmod(0o755)
    os.chown(dest, rootfs.stat().st_uid, rootfs.stat().st_gid)


def _compare(brandpy, debian_shared: Path, perms_bin: Path, section: str) -> tuple[Result, Result]:
    """The section natively and under brandpy, in the Debian image (so
    both static and dynamic programs are exec'd)."""
    _install(debian_shared, perms_bin)
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
    _install(debian_shared, perms_bin)
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
