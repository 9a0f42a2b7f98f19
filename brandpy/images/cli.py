"""`brandpy image …`: the image store without the daemon, printing what docker prints.

register(subparsers) adds the `image` command to the lead's argparse parser;
every subcommand sets `func(args) -> int` (the exit code)."""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import TextIO

from brandpy.images import archive, importer, ocilayout, pull, push, reference, views
from brandpy.images.store import Store, StoreError


def human_size(n: float) -> str:
    """Docker's HumanSize: decimal units, 3 significant digits (4.26MB)."""
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if n < 1000 or unit == "TB":
            return f"{n:.3g}{unit}"
        n /= 1000
    raise AssertionError("unreachable")


def human_duration(seconds: float) -> str:
    """Docker's HumanDuration (`2 days`, `About an hour`)."""
    s = int(seconds)
    minutes, hours = s // 60, round(s / 3600)
    if s < 1:
        return "Less than a second"
    if s < 60:
        return "1 second" if s == 1 else f"{s} seconds"
    if minutes == 1:
        return "About a minute"
    if minutes < 60:
        return f"{minutes} minutes"
    if hours == 1:
        return "About an hour"
    if hours < 48:
        return f"{hours} hours"
    if hours < 24 * 7 * 2:
        return f"{hours // 24} days"
    if hours < 24 * 30 * 2:
        return f"{hours // 24 // 7} weeks"
    if hours < 24 * 365 * 2:
        return f"{hours // 24 // 30} months"
    return f"{hours // 24 // 365} years"


def table(rows: list[list[str]], out: TextIO) -> None:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        out.write("   ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() + "\n")


def _store(args: argparse.Namespace) -> Store:
    return Store(args.store) if getattr(args, "store", None) else Store()


def cmd_ls(args: argparse.Namespace) -> int:
    images = sorted(_store(args).images(), key=lambda i: views.unix_time(i.created), reverse=True)
    if args.quiet:
        seen = []
        for im in images:
            short = im.id if args.no_trunc else im.id[7:19]
            if short not in seen:
                seen.append(short)
        sys.stdout.write("".join(s + "\n" for s in seen))
        return 0
    head = ["REPOSITORY", "TAG", *(["DIGEST"] if args.digests else []), "IMAGE ID", "CREATED", "SIZE"]
    rows = [head]
    now = time.time()
    for im in images:
        created = human_duration(now - views.unix_time(im.created)) + " ago"
        ident = im.id if args.no_trunc else im.id[7:19]
        names = [t.rsplit(":", 1) for t in im.repo_tags] or [["<none>", "<none>"]]
        for repo, tag in names:
            digest = next((d.split("@")[1] for d in im.repo_digests if d.split("@")[0] == repo), "<none>")
            rows.append([repo, tag, *([digest] if args.digests else []), ident, created, human_size(im.size)])
    table(rows, sys.stdout)
    return 0


def cmd_inspect(args: argparse.Namespace) -> int:
    store, out, rc = _store(args), [], 0
    for name in args.names:
        try:
            out.append(views.inspect(store.get(name)))
        except StoreError as e:
            print(f"Error: {e}", file=sys.stderr)
            rc = 1
    print(json.dumps(out, indent=4))
    return rc


def cmd_import(args: argparse.Namespace) -> int:
    src = sys.stdin.buffer if args.file == "-" else open(args.file, "rb")
    with src:
        # The docker CLI streams a file as the request body, so Docker records "Imported from -".
        image_id = importer.import_rootfs(_store(args), src, tag=args.reference, changes=args.change,
                                          message=args.message or "")
    print(image_id)
    return 0


def cmd_load(args: argparse.Namespace) -> int:
    if args.input is None and sys.stdin.isatty():
        print("requested load from stdin, but stdin is empty; use -i FILE or a pipe", file=sys.stderr)
        return 1
    src = sys.stdin.buffer if args.input is None else open(args.input, "rb")
    with src:
        for line in archive.load(_store(args), src):
            if not args.quiet:
                print(line)
    return 0


def cmd_save(args: argparse.Namespace) -> int:
    if args.output is None and sys.stdout.isatty():
        print("cowardly refusing to save to a terminal. Use the -o flag or redirect", file=sys.stderr)
        return 1
    if args.output is None:
        archive.save(_store(args), args.names, sys.stdout.buffer)
        return 0
    # Write beside the target and rename, so a failed save leaves no half file.
    tmp = Path(args.output + ".tmp")
    try:
        with open(tmp, "wb") as f:
            archive.save(_store(args), args.names, f)
        tmp.replace(args.output)
    finally:
        tmp.unlink(missing_ok=True)
    return 0


class _ProgressPrinter:
    """Docker's plain (non-terminal) rendering of a progress stream: one line
    per status, progress updates left out."""

    def __init__(self) -> None:
        self.last: dict[str, str] = {}

    def __call__(self, msg: dict) -> None:
        status, ident = msg.get("status"), msg.get("id")
        if status is None or (msg.get("progressDetail") or {}).get("current") is not None:
            return
        if ident:
            if self.last.get(ident) == status:
                return
            self.last[ident] = status
            print(f"{ident}: {status}", flush=True)
        else:
            print(status, flush=True)


def cmd_pull(args: argparse.Namespace) -> int:
    os_, _, arch = (args.platform or "linux/amd64").partition("/")
    pull.pull(_store(args), args.name, progress=_ProgressPrinter(), platform=(os_, arch.split("/")[0]))
    print(str(reference.parse(args.name)))
    return 0


def cmd_push(args: argparse.Namespace) -> int:
    push.push(_store(args), args.name, progress=_ProgressPrinter())
    return 0


def cmd_tag(args: argparse.Namespace) -> int:
    _store(args).tag(args.source, args.target)
    return 0


def cmd_rm(args: argparse.Namespace) -> int:
    store, rc = _store(args), 0
    for name in args.names:
        try:
            for entry in store.remove(name, force=args.force):
                for k, v in entry.items():
                    print(f"{k}: {v}")
        except StoreError as e:
            print(f"Error response from daemon: {e}", file=sys.stderr)
            rc = 1
    return rc


def cmd_prune(args: argparse.Namespace) -> int:
    if not args.force:
        what = "all images without at least one container associated to them" if args.all else \
            "all dangling images"
        answer = input(f"WARNING! This will remove {what}.\nAre you sure you want to continue? [y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            return 0
    deleted, reclaimed = _store(args).prune(all_unused=args.all)
    if deleted:
        print("Deleted Images:")
        for entry in deleted:
            for k, v in entry.items():
                print(f"{k.lower()}: {v}")
        print()
    print(f"Total reclaimed space: {human_size(reclaimed)}")
    return 0


def cmd_export_oci(args: argparse.Namespace) -> int:
    ocilayout.export_layout(_store(args), args.names, Path(args.output))
    return 0


def cmd_import_oci(args: argparse.Namespace) -> int:
    for image_id, refs in ocilayout.import_layout(_store(args), Path(args.layout), repo=args.repo):
        for ref in refs:
            print(f"Loaded image: {reference.parse(ref).familiar()}")
        if not refs:
            print(f"Loaded image ID: {image_id}")
    return 0


def _run(func):  # noqa: ANN001, ANN202 - wraps a command
    def run(args: argparse.Namespace) -> int:
        try:
            return func(args)
        except (StoreError, ValueError, OSError) as e:
            print(f"Error: {e}", file=sys.stderr)
            return 1
    return run


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `image` and its subcommands to the top-level parser's subparsers."""
    image = subparsers.add_parser("image", help="manage images (the store used by the daemon)")
    image.add_argument("--store", help="store directory (default: <data root>/images; see $BRANDPY_ROOT)")
    sub = image.add_subparsers(dest="image_command", required=True, metavar="COMMAND")

    def add(name: str, func, help_: str, aliases: tuple[str, ...] = ()) -> argparse.ArgumentParser:  # noqa: ANN001
        p = sub.add_parser(name, help=help_, aliases=list(aliases))
        p.set_defaults(func=_run(func))
        return p

    p = add("ls", cmd_ls, "list images", ("list",))
    p.add_argument("-a", "--all", action="store_true", help="show all images (the default here)")
    p.add_argument("-q", "--quiet", action="store_true", help="only show image IDs")
    p.add_argument("--digests", action="store_true", help="show digests")
    p.add_argument("--no-trunc", action="store_true", help="don't truncate output")
    p = add("inspect", cmd_inspect, "show images as JSON")
    p.add_argument("names", nargs="+", metavar="IMAGE")
    p = add("import", cmd_import, "create an image from a rootfs tar (plain, gzip, zstd, xz, bzip2)")
    p.add_argument("file", metavar="FILE|-")
    p.add_argument("reference", nargs="?", metavar="REPOSITORY[:TAG]")
    p.add_argument("-c", "--change", action="append", default=[], help="Dockerfile instruction to apply")
    p.add_argument("-m", "--message", help="commit message for the imported image")
    p = add("load", cmd_load, "load images from a docker-archive or OCI layout tar")
    p.add_argument("-i", "--input", help="read from a tar archive file instead of STDIN")
    p.add_argument("-q", "--quiet", action="store_true", help="suppress the load output")
    p = add("save", cmd_save, "save images to a docker-archive (streamed to STDOUT by default)")
    p.add_argument("names", nargs="+", metavar="IMAGE")
    p.add_argument("-o", "--output", help="write to a file instead of STDOUT")
    p = add("pull", cmd_pull, "pull an image from a registry")
    p.add_argument("name", metavar="NAME[:TAG|@DIGEST]")
    p.add_argument("--platform", help="os/arch to choose from a manifest list (default linux/amd64)")
    p = add("push", cmd_push, "push an image to a registry")
    p.add_argument("name", metavar="NAME[:TAG]")
    p = add("tag", cmd_tag, "create a tag TARGET_IMAGE that refers to SOURCE_IMAGE")
    p.add_argument("source", metavar="SOURCE_IMAGE[:TAG]")
    p.add_argument("target", metavar="TARGET_IMAGE[:TAG]")
    p = add("rm", cmd_rm, "remove images", ("rmi",))
    p.add_argument("names", nargs="+", metavar="IMAGE")
    p.add_argument("-f", "--force", action="store_true", help="force removal of the image")
    p = add("prune", cmd_prune, "remove unused images")
    p.add_argument("-a", "--all", action="store_true", help="remove all unused images, not just dangling ones")
    p.add_argument("-f", "--force", action="store_true", help="do not prompt for confirmation")
    p = add("export-oci", cmd_export_oci, "write images to an OCI image layout directory")
    p.add_argument("names", nargs="+", metavar="IMAGE")
    p.add_argument("-o", "--output", required=True, metavar="DIR")
    p = add("import-oci", cmd_import_oci, "import the images of an OCI image layout directory")
    p.add_argument("layout", metavar="DIR")
    p.add_argument("--repo", help="repository for entries whose ref.name is only a tag")


