"""`python -m benchmarks.images`: the image side of brandpy.

1. Container create time against image size: brandpy's copy-on-write
   rootfs (a hard-link farm of the image, brandpy/images/rootfs.py) beside
   a full copy (`cp -a`, what a runtime without copy-on-write does), for
   the busybox and Debian test images.
2. Pull throughput from a local docker-registry: `brandpy image pull` into
   an empty store (download, digest check, layer extraction) beside
   `skopeo copy` of the same image to an OCI layout (download and digest
   check only; no extraction).

Medians of --reps runs with the runners interleaved; ratios are to the
reference column. Writes results/images.{md,json} and prints the tables.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from brandpy.images import importer, pull, rootfs
from brandpy.images.fsutil import rmtree
from brandpy.images.store import Store
from tests.images_store.registries import Registry

from .publish import RESULTS

IMAGES = Path(os.environ.get("BRANDPY_TEST_IMAGES", "/var/cache/brandpy/images"))
NAMES = ("busybox", "debian")


def timed(fn: Callable[..., object], *args: object, **kwargs: object) -> float:
    began = time.perf_counter()
    fn(*args, **kwargs)
    return time.perf_counter() - began


def tree_size(path: Path) -> tuple[int, int]:
    """(bytes of regular files, entries) under path."""
    size = entries = 0
    for dirpath, dirs, files in os.walk(path):
        entries += len(dirs) + len(files)
        for f in files:
            st = os.lstat(os.path.join(dirpath, f))
            size += st.st_size if not os.path.islink(os.path.join(dirpath, f)) else 0
    return size, entries


def median_of(samples: dict[str, list[float]]) -> dict[str, float]:
    return {k: statistics.median(v) for k, v in samples.items()}


def create_times(store: Store, reps: int, work: Path) -> list[dict]:
    rows = []
    for name in NAMES:
        tree = store.get(f"{name}:bench").tree
        size, entries = tree_size(tree)
        samples: dict[str, list[float]] = {"cp -a": [], "brandpy": []}
        for i in range(reps):
            for runner in samples:   # interleaved, so drift hits both
                dest = work / f"{name}-{runner.replace(' ', '')}-{i}"
                if runner == "brandpy":
                    samples[runner].append(timed(rootfs.create, tree, dest))
                else:
                    samples[runner].append(timed(
                        subprocess.run, ["cp", "-a", str(tree), str(dest)], check=True))
                rmtree(dest)
        med = median_of(samples)
        rows.append({"image": name, "bytes": size, "entries": entries,
                     "seconds": med, "ratio": med["brandpy"] / med["cp -a"]})
    return rows


def pull_throughput(registry: Registry, reps: int, work: Path) -> list[dict]:
    rows = []
    for name in NAMES:
        ref = f"{registry.addr}/bench/{name}:1"
        blobs = 0
        samples: dict[str, list[float]] = {"skopeo copy": [], "+ umoci unpack": [],
                                           "brandpy pull": []}
        for i in range(reps):
            dest = work / f"pull-{name}-{i}"
            layout = f"{dest}-oci"
            samples["skopeo copy"].append(timed(
                subprocess.run, ["skopeo", "copy", "--quiet", "--src-tls-verify=false",
                                 f"docker://{ref}", f"oci:{layout}:x"], check=True))
            unpack = ["umoci", "unpack", *(["--rootless"] if os.geteuid() else []),
                      "--image", f"{layout}:x", f"{dest}-bundle"]
            samples["+ umoci unpack"].append(samples["skopeo copy"][-1] + timed(
                subprocess.run, unpack, check=True, capture_output=True))
            blobs = sum(f.stat().st_size for f in (Path(layout) / "blobs" / "sha256").iterdir())
            rmtree(Path(layout))
            rmtree(Path(f"{dest}-bundle"))
            store = Store(dest / "images")
            samples["brandpy pull"].append(timed(pull.pull, store, ref))
            rmtree(dest)
        med = median_of(samples)
        rows.append({"image": name, "transferred_bytes": blobs, "seconds": med,
                     "mb_per_s": {k: blobs / v / 1e6 for k, v in med.items()},
                     "ratio": med["brandpy pull"] / med["+ umoci unpack"]})
    return rows


def markdown(result: dict) -> str:
    meta = result["meta"]
    out = ["# brandpy image benchmarks", "",
           f"Run {meta['started']}, Linux {meta['kernel']}, {meta['cpus']} CPUs, medians of "
           f"{meta['reps']} runs, runners interleaved; as {meta['user']}.", "",
           "## Container create time against image size", "",
           "brandpy makes a container's rootfs as a hard-link farm of the image (files are "
           "copied up on their first write); `cp -a` copies everything. Ratio: brandpy / cp -a.",
           "", "| image | size | entries | cp -a | brandpy | ratio |",
           "|---|---:|---:|---:|---:|---:|"]
    for r in result["create"]:
        s = r["seconds"]
        out.append(f"| {r['image']} | {r['bytes'] / 1e6:.1f} MB | {r['entries']} | "
                   f"{s['cp -a']:.3f} s | {s['brandpy']:.3f} s | {r['ratio']:.2f}× |")
    out += ["", "## Pull throughput from a local registry", "",
            "Compressed bytes transferred per second, from docker-registry on 127.0.0.1. "
            "`skopeo copy` writes the blobs to an OCI layout; `+ umoci unpack` then "
            "extracts them into a rootfs, as `brandpy image pull` does into its store (with "
            "digest checks). Ratio: brandpy's time / skopeo copy + umoci unpack's.", "",
            "| image | transferred | skopeo copy | + umoci unpack | brandpy pull | ratio |",
            "|---|---:|---:|---:|---:|---:|"]
    for r in result["pull"]:
        cells = " | ".join(f"{r['mb_per_s'][k]:.1f} MB/s ({r['seconds'][k]:.2f} s)"
                           for k in ("skopeo copy", "+ umoci unpack", "brandpy pull"))
        out.append(f"| {r['image']} | {r['transferred_bytes'] / 1e6:.1f} MB | {cells} | "
                   f"{r['ratio']:.2f}× |")
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.images", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--reps", type=int, default=5, help="runs per cell (default 5)")
    p.add_argument("--out", type=Path, default=RESULTS, help=f"output directory ({RESULTS})")
    args = p.parse_args(argv)
    for name in NAMES:
        if not (IMAGES / f"{name}.tar").exists():
            print(f"missing {IMAGES / name}.tar: run `make images`", file=sys.stderr)
            return 1
    for tool in ("skopeo", "docker-registry"):
        if shutil.which(tool) is None:
            print(f"{tool} is not installed: run `make deps`", file=sys.stderr)
            return 1
    work = Path(tempfile.mkdtemp(prefix="brandpy-bench-images-"))
    registry = None
    try:
        store = Store(work / "store")
        for name in NAMES:
            with open(IMAGES / f"{name}.tar", "rb") as f:
                importer.import_rootfs(store, f, tag=f"{name}:bench")
        registry = Registry(work / "registry")
        for name in NAMES:
            saved = work / f"{name}-archive.tar"
            subprocess.run([sys.executable, "-m", "brandpy", "image", "--store",
                            str(work / "store"), "save", "-o", str(saved), f"{name}:bench"],
                           check=True)
            registry.skopeo_copy(f"docker-archive:{saved}", f"bench/{name}:1")
        result = {
            "meta": {"started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                     "kernel": platform.release(), "cpus": os.cpu_count(), "reps": args.reps,
                     "user": "root" if os.geteuid() == 0 else f"uid {os.geteuid()}"},
            "create": create_times(store, args.reps, work),
            "pull": pull_throughput(registry, args.reps, work),
        }
    finally:
        if registry is not None:
            registry.stop()
        rmtree(work)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "images.json").write_text(json.dumps(result, indent=1) + "\n")
    md = markdown(result)
    (args.out / "images.md").write_text(md)
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
