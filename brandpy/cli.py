"""The brandpy command line."""

from __future__ import annotations

import argparse
import sys

from .api.daemon import register as register_daemon
from .runtime.sandbox import PortMapping, SandboxConfig, Volume


def _run(args: argparse.Namespace) -> int:
    from .runtime.run import ContainerError, run

    if not args.command:
        print("brandpy run: no command given: brandpy run --rootfs DIR -- CMD [ARGS...]",
              file=sys.stderr)
        return 125
    try:
        volumes = [Volume.parse(v) for v in args.volume]
        ports = [PortMapping.parse(p) for p in args.publish]
        seccomp = security_opt(args.security_opt)
    except ValueError as exc:
        print(f"brandpy: {exc}", file=sys.stderr)
        return 125
    config = SandboxConfig(
        rootfs=args.rootfs, argv=args.command, env=list(args.env), workdir=args.workdir,
        volumes=volumes, user=args.user, hostname=args.hostname,
        kernel_release=args.kernel_release, personality=args.personality, ports=ports,
        seccomp=seccomp, cap_add=args.cap_add, cap_drop=args.cap_drop,
        extra_hosts=args.add_host, dns=args.dns, strict=args.strict, cpuset=args.cpuset_cpus)
    try:
        return run(config, debug=args.debug, stats=args.stats, report=args.report,
                   engine=args.engine)
    except ContainerError as exc:
        print(f"brandpy: {exc}", file=sys.stderr)
        return exc.status


def security_opt(opts: list[str]) -> str:
    """--security-opt seccomp=unconfined|PROFILE.json (as docker run takes it)."""
    seccomp = ""
    for opt in opts:
        key, sep, value = opt.partition("=")
        if key != "seccomp" or not sep or not value:
            raise ValueError(f"unsupported --security-opt {opt!r}: brandpy takes "
                             "seccomp=unconfined or seccomp=PROFILE.json")
        seccomp = value
    return seccomp


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
    run.add_argument("-u", "--user", default="", metavar="USER[:GROUP]",
                     help="run as this user (name or uid, from the image's /etc/passwd)")
    run.add_argument("--hostname", default="", help="the container's hostname")
    run.add_argument("-p", "--publish", action="append", default=[],
                     metavar="[IP:]HOST:CONTAINER[/PROTO]",
                     help="a bind() of CONTAINER port binds HOST port instead")
    run.add_argument("--add-host", action="append", default=[], metavar="NAME:IP",
                     help="an /etc/hosts line")
    run.add_argument("--dns", action="append", default=[], metavar="IP",
                     help="nameserver for /etc/resolv.conf (default: the host's)")
    run.add_argument("--security-opt", action="append", default=[],
                     metavar="seccomp=unconfined|PROFILE",
                     help="seccomp profile in Docker's format (default: Docker's default)")
    run.add_argument("--cap-add", action="append", default=[], metavar="CAP",
                     help="add a capability to Docker's default set (or ALL)")
    run.add_argument("--cap-drop", action="append", default=[], metavar="CAP",
                     help="drop a capability from Docker's default set (or ALL)")
    run.add_argument("--cpuset-cpus", default="", metavar="CPUS",
                     help="CPUs for the container and its supervisor, e.g. 0 or 0-1 (one "
                     "shared CPU makes syscall emulation much cheaper on many VMs)")
    run.add_argument("--kernel-release", default="", metavar="VERSION",
                     help="what uname reports (default: the host's)")
    run.add_argument("--personality", action="store_true",
                     help="behave as --kernel-release would: newer syscalls get ENOSYS")
    run.add_argument("--strict", action="store_true",
                     help="stop the container at the first unsupported or denied syscall")
    run.add_argument("--report", action="store_true",
                     help="print the unsupported/denied syscalls (the ledger) on exit")
    run.add_argument("--engine", choices=["native", "python"], default="native",
                     help="the supervisor loop: native (C, with seccomp user notification "
                     "for the hot syscalls) or python (python-ptrace, the reference)")
    run.add_argument("--stats", action="store_true",
                     help="print per-syscall counts and ptrace stops on exit")
    run.add_argument("--debug", action="store_true",
                     help="let handler bugs crash the supervisor with a traceback")
    run.add_argument("command", nargs=argparse.REMAINDER, metavar="-- CMD [ARGS...]")
    run.set_defaults(func=_run)

    from .images.cli import register as register_images

    register_images(sub)

    sc = sub.add_parser("syscalls", help="print the syscall table and its counts")
    sc.add_argument("--only", metavar="DISPOSITION",
                    help="only rows with this disposition (allow, trace, deny, nosys)")
    sc.set_defaults(func=_syscalls)
    register_daemon(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if getattr(args, "command", None) and args.command[0] == "--":
        args.command = args.command[1:]
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
