"""What the coverage benchmark runs: the CPython 3.11 regression-test
modules that exercise the operating system (from Debian's
libpython3.11-testsuite in the Debian rootfs), and the few test cases left
out for every runner alike, with the reason."""

from __future__ import annotations

MODULES = [
    "test_os", "test_posix", "test_shutil", "test_subprocess", "test_signal", "test_socket",
    "test_select", "test_fcntl", "test_pty", "test_tempfile", "test_threading",
    "test_multiprocessing_fork", "test_pathlib", "test_stat", "test_time", "test_resource",
    "test_mmap", "test_selectors", "test_epoll", "test_file", "test_fileio", "test_io",
    "test_glob", "test_tarfile", "test_zipfile",
]

# module -> {regrtest --ignore pattern: why}
EXCLUDED: dict[str, dict[str, str]] = {
    "test_socket": {
        "ThreadedVSOCKSocketStreamTest":
            "connects over AF_VSOCK to the VM's host, which is not loopback (and AF_VSOCK "
            "has no network namespace); on a VM whose host does not answer it hangs in "
            "accept() natively",
    },
}

# A test that makes no system call of note: what its rerun shows is the
# background every rerun shares (the watchdog's thread, regrtest's set-up).
BASELINE = ("test_stat", "test.test_stat.TestFilemodeCStat.test_mode")


def regrtest_args(module: str, match: str | None = None) -> list[str]:
    """regrtest's arguments for one module, or for one test of it. No -u:
    every optional resource (network, cpu, largefile, ...) stays off, as in
    CPython's default run."""
    ignores = [arg for pattern in EXCLUDED.get(module, {}) for arg in ("-i", pattern)]
    only = ["-m", match] if match else []
    return [*ignores, *only, module]
