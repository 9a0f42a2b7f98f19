"""The options of `brandpy run` (shared by `brandpy trace` and
`brandpy coverage`) and the container configuration they make."""

from __future__ import annotations

import argparse
import sys
from contextlib import ExitStack
from typing import IO

from .images.runconfig import merge_image_config
from .runtime.devices import Device
from .runtime.sandbox import PortMapping, SandboxConfig, Ulimit, Volume
from .supervise.container import Research


def add_container_options(p: argparse.ArgumentParser, root_required: bool = True) -> None:
    root = p.add_mutually_exclusive_group(required=root_required)
    root.add_argument("--rootfs", metavar="DIR", help="the container's / (used in place)")
    root.add_argument("--image", metavar="IMAGE",
                      help="an image in the store (`brandpy image pull/load/import`): a "
                      "throw-away container of it, its Entrypoint, Cmd, Env, WorkingDir "
                      "and User the defaults")
    p.add_argument("--entrypoint", metavar="CMD",
                   help="with --image: run CMD instead of the image's Entrypoint "
                   "(\"\" clears it)")
    p.add_argument("-v", "--volume", action="append", default=[], metavar="HOST:GUEST[:ro]",
                   help="bind mount a host path (read-only with :ro)")
    p.add_argument("-w", "--workdir", default="", metavar="DIR",
                   help="working directory inside the container (created if missing; "
                   "default: the image's, or /)")
    p.add_argument("-e", "--env", action="append", default=[], metavar="K=V",
                   help="set an environment variable")
    p.add_argument("-u", "--user", default="", metavar="USER[:GROUP]",
                   help="run as this user (name or uid, from the image's /etc/passwd)")
    p.add_argument("--hostname", default="", help="the container's hostname")
    p.add_argument("-p", "--publish", action="append", default=[],
                   metavar="[IP:]HOST:CONTAINER[/PROTO]",
                   help="a bind() of CONTAINER port binds HOST port instead")
    p.add_argument("--add-host", action="append", default=[], metavar="NAME:IP",
                   help="an /etc/hosts line")
    p.add_argument("--dns", action="append", default=[], metavar="IP",
                   help="nameserver for /etc/resolv.conf (default: the host's)")
    p.add_argument("--security-opt", action="append", default=[],
                   metavar="seccomp=unconfined|PROFILE|no-new-privileges",
                   help="seccomp profile in Docker's format (default: Docker's default); "
                   "no-new-privileges: setuid/setgid programs do not elevate")
    p.add_argument("--cap-add", action="append", default=[], metavar="CAP",
                   help="add a capability to Docker's default set (or ALL)")
    p.add_argument("--cap-drop", action="append", default=[], metavar="CAP",
                   help="drop a capability from Docker's default set (or ALL)")
    p.add_argument("--read-only", action="store_true",
                   help="mount the container's root filesystem read-only")
    p.add_argument("--group-add", action="append", default=[], metavar="GROUP",
                   help="an additional group for the container's processes (name or GID)")
    p.add_argument("--ulimit", action="append", default=[], metavar="NAME=SOFT[:HARD]",
                   help="a resource limit, as docker run --ulimit (-1: unlimited)")
    p.add_argument("--device", action="append", default=[],
                   metavar="HOST[:CONTAINER][:PERMS]",
                   help="the host's device node (or the nodes under a directory) in the "
                   "container; PERMS rwm by default, without w read-only")
    p.add_argument("--cpuset-cpus", default="", metavar="CPUS",
                   help="CPUs for the container and its supervisor, e.g. 0 or 0-1 (one "
                   "shared CPU makes syscall emulation much cheaper on many VMs)")
    p.add_argument("--kernel-release", default="", metavar="VERSION",
                   help="what uname reports (default: the host's)")
    p.add_argument("--personality", action="store_true",
                   help="behave as --kernel-release would: newer syscalls get ENOSYS")
    p.add_argument("--strict", action="store_true",
                   help="stop the container at the first unsupported or denied syscall")
    p.add_argument("--engine", choices=["native", "python"], default="native",
                   help="the supervisor loop: native (C, with seccomp user notification "
                   "for the hot syscalls) or python (python-ptrace, the reference)")
    p.add_argument("--debug", action="store_true",
                   help="let handler bugs crash the supervisor with a traceback")


def add_terminal_options(p: argparse.ArgumentParser) -> None:
    """docker run's -i and -t: the container never gets our terminal itself
    (brandpy/supervise/terminal.py)."""
    p.add_argument("-i", "--interactive", action="store_true",
                   help="keep stdin open: the container reads ours (else /dev/null)")
    p.add_argument("-t", "--tty", action="store_true",
                   help="give the container a terminal of its own, relayed to ours (raw "
                   "while it runs with -i; its size follows ours)")


def add_research_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("research tools")
    g.add_argument("--trace", metavar="FILE", help="write a syscall trace to FILE (- for stderr)")
    g.add_argument("--trace-json", action="store_true", help="the trace as JSON lines")
    g.add_argument("--trace-all", action="store_true",
                   help="trap every syscall, so the trace also shows those the filter lets "
                   "run natively (they are invisible otherwise, by design)")
    g.add_argument("--trace-filter", metavar="NAME,...", default="",
                   help="trace only these syscalls")
    g.add_argument("--inject", action="append", default=[], metavar="SPEC",
                   help="inject a fault: SYSCALL:error=ERRNO|retval=V|delay=D"
                   "[:when=N|N+|N+S][:prob=P] (see brandpy/runtime/inject.py)")
    g.add_argument("--seed", type=int, default=0, help="seed of the fault injection draws")
    g.add_argument("--record", metavar="FILE",
                   help="record time and randomness so that --replay FILE repeats the run")
    g.add_argument("--replay", metavar="FILE", help="replay a --record'ed run's inputs")


def security_opt(opts: list[str]) -> tuple[str, bool]:
    """--security-opt seccomp=unconfined|PROFILE.json and
    no-new-privileges[=true|false] (as docker run takes them):
    (the seccomp setting, no_new_privileges)."""
    seccomp, nnp = "", False
    for opt in opts:
        key, sep, value = opt.partition("=" if "=" in opt else ":")
        if key == "no-new-privileges" and value in ("", "true", "false"):
            nnp = value != "false"
        elif key == "seccomp" and sep and value:
            seccomp = value
        else:
            raise ValueError(f"unsupported --security-opt {opt!r}: brandpy takes "
                             "seccomp=unconfined, seccomp=PROFILE.json or no-new-privileges")
    return seccomp, nnp


def config_from(args: argparse.Namespace, rootfs: str | None = None,
                image: dict | None = None) -> SandboxConfig:
    """The container configuration; with `image` (an image's config), the
    options merged over it as `docker run` merges them. Raises ValueError
    with a message for the user."""
    argv, env, workdir, user = list(args.command), list(args.env), args.workdir, args.user
    if image is not None:
        merged = merge_image_config(
            {"Cmd": argv or None, "Env": env, "WorkingDir": workdir, "User": user,
             "Entrypoint": None if args.entrypoint is None else [args.entrypoint]}, image)
        argv = (merged["Entrypoint"] or []) + (merged["Cmd"] or [])
        env, workdir, user = merged["Env"], merged.get("WorkingDir"), merged.get("User")
    elif args.entrypoint is not None:
        raise ValueError("--entrypoint goes with --image: with --rootfs, give the command")
    if not argv:
        raise ValueError("no command given: brandpy run --rootfs DIR -- CMD [ARGS...], or "
                         "--image IMAGE with an Entrypoint or Cmd")
    seccomp, nnp = security_opt(args.security_opt)
    return SandboxConfig(
        rootfs=rootfs or args.rootfs, argv=argv, env=env,
        workdir=workdir or "/", volumes=[Volume.parse(v) for v in args.volume],
        user=user or "", hostname=args.hostname, kernel_release=args.kernel_release,
        personality=args.personality, ports=[PortMapping.parse(p) for p in args.publish],
        seccomp=seccomp, no_new_privileges=nnp, cap_add=args.cap_add,
        cap_drop=args.cap_drop, extra_hosts=args.add_host, dns=args.dns, strict=args.strict,
        cpuset=args.cpuset_cpus, readonly_rootfs=args.read_only, group_add=args.group_add,
        ulimits=[Ulimit.parse(u) for u in args.ulimit], devices=devices(args.device))


def devices(specs: list[str]) -> list[Device]:
    """--device options, each checked to name device nodes."""
    out = [Device.parse(spec) for spec in specs]
    for device in out:
        device.nodes()
    return out


def research_from(args: argparse.Namespace, files: ExitStack,
                  trace_out: IO[str] | None = None) -> Research:
    """Raises ValueError with a message for the user."""
    from syscalls.table import table

    from .runtime.inject import Injector, parse
    from .runtime.replay import Recording, Replay
    from .runtime.trace import Tracer

    names = table().names()
    research = Research(trace_all=args.trace_all)
    if args.trace or trace_out is not None:
        out = trace_out or (sys.stderr if args.trace == "-" else
                            files.enter_context(open(args.trace, "w")))
        research.tracer = Tracer(out, names, json_lines=args.trace_json,
                                 names={n for n in args.trace_filter.split(",") if n},
                                 follow=getattr(args, "follow", True))
    if args.inject:
        by_name = {name: nr for nr, name in names.items()}
        research.injector = Injector([parse(spec, by_name) for spec in args.inject], args.seed)
    if args.record and args.replay:
        raise ValueError("--record and --replay exclude each other")
    if args.record:
        research.replay = Replay(Recording(), replaying=False)
    elif args.replay:
        research.replay = Replay(Recording.load(args.replay), replaying=True)
    return research
