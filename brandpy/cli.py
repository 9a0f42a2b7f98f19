"""The brandpy command line."""

from __future__ import annotations

import argparse
import sys

from .runtime.sandbox import SandboxConfig, Volume


def _run(args: argparse.Namespace) -> int:
    from .runtime.run import ContainerError, run

    if not args.command:
        print("brandpy run: no command given: brandpy run --rootfs DIR -- CMD [ARGS...]",
              file=sys.stderr)
        return 125
    try:
        volumes = [Volume.parse(v) for v in args.volume]
    except ValueError as exc:
        print(f"brandpy: {exc}", file=sys.stderr)
        return 125
    env = []
    for e in args.env:
        env.append(e)
    config = SandboxConfig(rootfs=args.rootfs, argv=args.command, env=env,
                           workdir=args.workdir, volumes=volumes)
    try:
        return run(config, debug=args.debug, stats=args.stats)
    except ContainerError as exc:
        print(f"brandpy: {exc}", file=sys.stderr)
        return exc.status


def _syscalls(args: argparse.Namespace) -> int:
    from syscalls.report import print_table

    print_table(sys.stdout, only=args.only)
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="brandpy", description="A syscall-emulation container "
                                "runtime: ptrace + seccomp-BPF, driven by the docker CLI.")
    sub = p.add_subparsers(dest="cmd", required=True)

    run = sub.add_parser("run", help="run a command in a root filesystem",
                         description="Run CMD as the entrypoint of a container whose root "
                         "is DIR, with every syscall filtered and translated.")
    run.add_argument("--rootfs", required=True, metavar="DIR", help="the container's /")
    run.add_argument("-v", "--volume", action="append", default=[], metavar="HOST:GUEST[:ro]",
                     help="bind mount a host path (read-only with :ro)")
    run.add_argument("-w", "--workdir", default="/", metavar="DIR",
                     help="working directory inside the container (created if missing)")
    run.add_argument("-e", "--env", action="append", default=[], metavar="K=V",
                     help="set an environment variable")
    run.add_argument("--engine", choices=["python"], default="python",
                     help="the supervisor loop: python (python-ptrace, the reference)")
    run.add_argument("--stats", action="store_true",
                     help="print per-syscall counts and ptrace stops on exit")
    run.add_argument("--debug", action="store_true",
                     help="let handler bugs crash the supervisor with a traceback")
    run.add_argument("command", nargs=argparse.REMAINDER, metavar="-- CMD [ARGS...]")
    run.set_defaults(func=_run)

    sc = sub.add_parser("syscalls", help="print the syscall table and its counts")
    sc.add_argument("--only", metavar="DISPOSITION",
                    help="only rows with this disposition (allow, trace, deny, nosys)")
    sc.set_defaults(func=_syscalls)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if getattr(args, "command", None) and args.command[0] == "--":
        args.command = args.command[1:]
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
