"""The suite's scratch space: private copies of the test rootfs (the cached
images are never written to), the C programs built for this host, and the
files the workloads read, installed under /bench in the copies."""

from __future__ import annotations

import os
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
IMAGES = Path(os.environ.get("BRANDPY_TEST_IMAGES", "/var/cache/brandpy/images"))
SHM = Path("/dev/shm")
SHM_NEEDED = 2 << 30      # the Debian copy plus what the workloads write, with room
TREE_DIRS = 50
TREE_FILES_PER_DIR = 80


class Workspace:
    """A temp directory holding rootfs copies, made on first use; removed
    on close unless something is still mounted inside it."""

    def __init__(self, images: Path = IMAGES) -> None:
        self.images = images
        self.root = Path(tempfile.mkdtemp(prefix="brandpy-bench-", dir=scratch_base()))
        self.root.chmod(0o755)
        self._rootfs: dict[tuple[str, int | None], Path] = {}

    def __enter__(self) -> Workspace:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def state(self) -> Path:
        """A directory runners may keep state in (runsc's --root)."""
        path = self.root / "state"
        path.mkdir(exist_ok=True)
        return path

    def rootfs(self, image: str, owner: int | None = None) -> Path:
        """A private copy of a test image, with /bench filled in; with an
        owner, a copy of that copy whose files are all that user's (as a
        rootless engine unpacks an image for the user who runs it)."""
        key = (image, owner)
        if key not in self._rootfs:
            src = self.rootfs(image) if owner is not None else self.images / image
            if not (self.images / "READY").exists() or not src.is_dir():
                raise FileNotFoundError(f"test image {src} missing: run `make images`")
            dest = self.root / (image if owner is None else f"{image}-{owner}")
            subprocess.run(["cp", "-a", str(src), str(dest)], check=True)
            if owner is not None:
                subprocess.run(["chown", "-hR", f"{owner}:{owner}", str(dest)], check=True)
            else:
                bench = dest / "bench"
                bench.mkdir(exist_ok=True)
                if image == "busybox":
                    self._install_busybox_files(bench)
            self._rootfs[key] = dest
        return self._rootfs[key]

    def build(self, source: str) -> Path:
        """benchmarks/SOURCE.c compiled static for this host, in the workspace."""
        out = self.root / "bin" / source
        if not out.exists():
            out.parent.mkdir(exist_ok=True)
            proc = subprocess.run(["gcc", "-static", "-O2", "-Wall", "-o", str(out),
                                   str(HERE / f"{source}.c")], capture_output=True, text=True)
            if proc.returncode != 0:
                raise RuntimeError(f"gcc {source}.c failed:\n{proc.stderr}")
        return out

    def clear_scratch(self, image: str, owner: int | None, guest_paths: tuple[str, ...]) -> None:
        root = self.rootfs(image, owner)
        for guest in guest_paths:
            host = root / guest.lstrip("/")
            if host.is_symlink() or host.is_file():
                host.unlink()
            elif host.exists():
                shutil.rmtree(host)

    def close(self) -> None:
        # chroot's mounts live in a namespace of their own and die with it;
        # should one have leaked here, deleting through it would delete the
        # host's /dev, so leave the directory for a human.
        if leaked := mounts_under(self.root):
            raise RuntimeError(f"mounts left under {self.root} (not removed): {leaked}")
        shutil.rmtree(self.root, ignore_errors=True)

    def _install_busybox_files(self, bench: Path) -> None:
        shutil.copy(self.build("micro"), bench / "micro")
        (bench / "small.txt").write_text("a small file, read whole by micro\n")
        tree = bench / "tree"
        for d in range(TREE_DIRS):
            sub = tree / f"d{d:02}"
            sub.mkdir(parents=True)
            for f in range(TREE_FILES_PER_DIR):
                # A few bytes to a few KiB, deterministic so tar's md5 is too.
                (sub / f"f{f:03}.txt").write_text(f"{d} {f}\n" * (1 + (d * 7 + f * 13) % 400))
        with tarfile.open(bench / "tree.tar", "w", format=tarfile.USTAR_FORMAT) as tar:
            tar.add(tree, arcname="tree")


def scratch_base() -> str:
    """tmpfs when it has room: the suite measures runtimes, not the disk,
    and writeback on a shared disk made native tar extract vary 3x."""
    if SHM.is_dir() and shutil.disk_usage(SHM).free >= SHM_NEEDED:
        return str(SHM)
    return "/tmp"


def mounts_under(path: Path) -> list[str]:
    prefix = str(path.resolve())
    with open("/proc/self/mountinfo") as f:
        points = [line.split()[4] for line in f]
    return [p for p in points if p == prefix or p.startswith(prefix + "/")]
