"""The brandpy command line. Subcommands import what they need when they
run: `brandpy run` starts fast."""

from __future__ import annotations

import argparse
import sys
from contextlib import ExitStack

from .images.runconfig import scratch_container
from .runopts import (
    add_container_options,
    add_research_options,
    add_terminal_options,
    config_from,
    research_from,
)


def _run(args: argparse.Namespace, trace_out=None) -> int:
    from .images.store import StoreError
    from .supervise.run import ContainerError, run

    with ExitStack() as files:
        try:
            rootfs, image = files.enter_context(scratch_container(args.image)) \
                if args.image else (args.rootfs, None)
            config = config_from(args, rootfs, image)
            research = research_from(args, files, trace_out)
        except (ValueError, OSError, StoreError) as exc:
            print(f"brandpy {args.cmd}: {exc}", file=sys.stderr)
            return 125
        try:
            return run(config, debug=args.debug, stats=args.stats, report=args.report,
                       engine=args.engine, research=research, record=args.record,
                       stats_json=args.stats_json, on_start=getattr(args, "on_start", None),
                       interactive=args.interactive, tty=args.tty)
        except ContainerError as exc:
            print(f"brandpy: {exc}", file=sys.stderr)
            return exc.status


def _trace(args: argparse.Namespace) -> int:
    """`brandpy trace`: run with the trace on (stderr or -o FILE)."""
    with ExitStack() as files:
        out = files.enter_context(open(args.output, "w")) if args.output else sys.stderr
        args.trace_filter = args.filter
        return _run(args, trace_out=out)


def _syscalls(args: argparse.Namespace) -> int:
    from syscalls.report import print_table

    print_table(sys.stdout, only=args.only)
    return 0


def _coverage(args: argparse.Namespace) -> int:
    """Without a command, the table's coverage; with one, run the workload
    trapping every syscall and report which it used and whether it will run."""
    import json
    import tempfile
    from pathlib import Path

    from syscalls.coverage import print_static, print_verdict, verdict

    from .images.store import StoreError
    from .supervise.container import Research
    from .supervise.run import ContainerError, run

    if not (args.command or args.image or args.rootfs):
        print_static()
        return 0
    if not (args.image or args.rootfs):
        print("brandpy coverage: give --image IMAGE or --rootfs DIR", file=sys.stderr)
        return 125
    with ExitStack() as stack:
        stats_file = Path(stack.enter_context(tempfile.TemporaryDirectory())) / "stats.json"
        try:
            rootfs, image = stack.enter_context(scratch_container(args.image)) \
                if args.image else (args.rootfs, None)
            config = config_from(args, rootfs, image)
            # the workload's output goes to stderr: stdout is the report's
            status = run(config, engine=args.engine, debug=args.debug,
                         research=Research(trace_all=True), stats_json=str(stats_file),
                         stdio=(0, 2, 2))
        except (ValueError, ContainerError, StoreError) as exc:
            print(f"brandpy coverage: {exc}", file=sys.stderr)
            return getattr(exc, "status", 125)
        result = verdict(json.loads(stats_file.read_text()), status)
    if args.json:
        print(json.dumps(result, indent=1))
    else:
        print_verdict(result)
    return 0 if result["WillRun"] else 1


def _lazy(module: str, attr: str = "register"):
    """A subcommand registered by another package, imported when used."""
    import importlib

    return getattr(importlib.import_module(module, __package__), attr)


def add_outputs(p: argparse.ArgumentParser) -> None:
    p.add_argument("--stats", action="store_true",
                   help="print per-syscall counts, time and ptrace stops on exit")
    p.add_argument("--stats-json", metavar="FILE",
                   help="write the statistics and the ledger as JSON to FILE")
    p.add_argument("--report", action="store_true",
                   help="print the unsupported/denied syscalls (the ledger) on exit")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="brandpy", description="A syscall-emulation container "
                                "runtime: ptrace + seccomp-BPF, driven by the docker CLI.")
    sub = p.add_subparsers(dest="cmd", required=True)

    run = sub.add_parser("run", help="run a command in a root filesystem",
                         description="Run CMD as the entrypoint of a container whose root "
                         "is DIR, with every syscall filtered and translated.")
    add_container_options(run)
    add_terminal_options(run)
    add_outputs(run)
    add_research_options(run)
    run.add_argument("command", nargs=argparse.REMAINDER, metavar="-- CMD [ARGS...]")
    run.set_defaults(func=_run)

    tr = sub.add_parser("trace", help="run a command and trace its syscalls (like strace)",
                        description="Run CMD like `brandpy run` and print each syscall the "
                        "container makes, its arguments (as the guest passed them), how "
                        "brandpy handled it, the result, the container PID and the time.")
    add_container_options(tr)
    add_terminal_options(tr)
    add_outputs(tr)
    add_research_options(tr)
    tr.add_argument("--filter", default="", metavar="NAME,...",
                    help="only these syscalls (e.g. openat,execve)")
    tr.add_argument("-f", "--follow", action="store_true",
                    help="trace the entrypoint's children too (default: the entrypoint only)")
    tr.add_argument("--json", dest="trace_json", action="store_true", help="JSON lines")
    tr.add_argument("-o", "--output", metavar="FILE", help="write the trace to FILE")
    tr.add_argument("command", nargs=argparse.REMAINDER, metavar="-- CMD [ARGS...]")
    tr.set_defaults(func=_trace)

    cov = sub.add_parser("coverage", help="syscall coverage: the table, or what a workload "
                         "uses and whether it will run",
                         description="Without a command: brandpy's syscall coverage beside "
                         "gVisor's and illumos LX's. With one: run it (--image or --rootfs), "
                         "trapping every syscall, and report which it used, how each was "
                         "handled, and a will-it-run verdict.")
    add_container_options(cov, root_required=False)
    cov.add_argument("--json", action="store_true", help="machine-readable output")
    cov.add_argument("command", nargs=argparse.REMAINDER, metavar="-- CMD [ARGS...]")
    cov.set_defaults(func=_coverage)

    sc = sub.add_parser("syscalls", help="print the syscall table and its counts")
    sc.add_argument("--only", metavar="DISPOSITION",
                    help="only rows with this disposition (allow, trace, deny, nosys)")
    sc.set_defaults(func=_syscalls)

    _lazy(".images.cli")(sub)
    _lazy(".api.daemon")(sub)
    _lazy(".oci.cli")(sub)
    return p


def parse(argv: list[str] | None = None,
          p: argparse.ArgumentParser | None = None) -> argparse.Namespace:
    """The command line as the subcommands take it (a zygote passes the
    parser it built once)."""
    args = (p or parser()).parse_args(argv)
    if getattr(args, "command", None) and args.command[0] == "--":
        args.command = args.command[1:]
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
