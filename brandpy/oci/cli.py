"""The runc command line (`brandpy-runc`, `brandpy oci`), with the global
options and command flags containerd's go-runc and dockerd pass (see
RUNC-CLI-SUMMARY.md). Flags that change nothing here are accepted only
where ignoring them is harmless, and said so in the --debug log."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable

from .errors import OciError
from .log import Log
from .options import Options
from .state import DEFAULT_ROOT, OCI_VERSION

HARMLESS = {
    "systemd_cgroup": "--systemd-cgroup: brandpy makes its cgroups itself (brandpy/ID), "
                      "not through systemd",
    "rootless": "--rootless: brandpy decides by its own uid (emulated identities when not root)",
    "no_pivot": "--no-pivot: as root brandpy pivots into a tmpfs of its own holding the "
                "container's paths, whatever file system the rootfs is on",
    "no_new_keyring": "--no-new-keyring: keyctl is denied inside brandpy containers anyway",
    "no_subreaper": "--no-subreaper: the monitor, not this command, reaps the container",
    "no_new_privs": "--no-new-privs: brandpy always sets no_new_privs",
    "cgroup": "--cgroup: brandpy makes each container's cgroup below its own (brandpy/ID)",
    "ignore_paused": "--ignore-paused: brandpy cannot exec in a paused container anyway",
}


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The global options and the commands, on `brandpy-runc` or `brandpy oci`."""
    p.add_argument("--root", default=DEFAULT_ROOT, help="state directory (default %(default)s)")
    p.add_argument("--log", default="", help="log file (default: stderr)")
    p.add_argument("--log-format", choices=["text", "json"], default="text")
    p.add_argument("--debug", action="store_true", help="debug messages in the log")
    p.add_argument("--systemd-cgroup", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--rootless", default="auto", help=argparse.SUPPRESS)
    p.add_argument("--engine", choices=["native", "python"], default="native",
                   help="brandpy's supervisor loop for every container (annotation "
                   "org.brandpy.engine overrides)")
    p.add_argument("--kernel-release", default="", metavar="VERSION",
                   help="what uname reports in every container (annotation "
                   "org.brandpy.kernel-release overrides)")
    p.add_argument("-v", "--version", action="version",
                   version=f"brandpy-runc version {_version()}\nspec: {OCI_VERSION}")
    sub = p.add_subparsers(dest="oci_cmd", required=True, metavar="COMMAND")

    def command(name: str, fn: Callable[..., int], help: str,
                aliases: tuple[str, ...] = ()) -> argparse.ArgumentParser:
        c = sub.add_parser(name, help=help, description=help, aliases=list(aliases))
        c.set_defaults(oci_func=fn)
        return c

    def container_id(c: argparse.ArgumentParser) -> None:
        c.add_argument("id", metavar="CONTAINER-ID")

    def create_flags(c: argparse.ArgumentParser) -> None:
        c.add_argument("-b", "--bundle", default=".", help="the bundle directory")
        c.add_argument("--pid-file", default="", help="write the container's pid here")
        c.add_argument("--console-socket", default="", metavar="PATH",
                       help="unix socket to send the terminal's master to (SCM_RIGHTS)")
        c.add_argument("--pidfd-socket", default="", metavar="PATH",
                       help="unix socket to send a pidfd of the container's pid to")
        c.add_argument("--no-pivot", action="store_true", help=argparse.SUPPRESS)
        c.add_argument("--no-new-keyring", action="store_true", help=argparse.SUPPRESS)
        c.add_argument("--preserve-fds", type=int, default=0, metavar="N",
                       help="pass fds 3..3+N-1 to the container")
        container_id(c)

    c = command("create", _create, "create a container (its process waits for start)")
    create_flags(c)
    c = command("run", _run, "create and start a container")
    create_flags(c)
    c.add_argument("-d", "--detach", action="store_true")
    c.add_argument("--keep", action="store_true", help="do not delete it when it exits")
    c.add_argument("--no-subreaper", action="store_true", help=argparse.SUPPRESS)
    container_id(command("start", _start, "run the created container's process"))
    container_id(command("state", _state, "print the container's state as JSON"))
    c = command("kill", _kill, "send a signal to the container's process")
    c.add_argument("-a", "--all", action="store_true", help="every process of the container")
    container_id(c)
    c.add_argument("signal", nargs="?", default="SIGTERM")
    c = command("delete", _delete, "delete a stopped container", aliases=("rm",))
    c.add_argument("-f", "--force", action="store_true", help="kill it first if it runs")
    container_id(c)
    c = command("exec", _exec, "run another process in the container")
    c.add_argument("-p", "--process", default="", metavar="FILE", help="an OCI process.json")
    c.add_argument("-d", "--detach", action="store_true")
    c.add_argument("--pid-file", default="")
    c.add_argument("--console-socket", default="", metavar="PATH")
    c.add_argument("--pidfd-socket", default="", metavar="PATH")
    c.add_argument("-t", "--tty", action="store_true")
    c.add_argument("--cwd", default="")
    c.add_argument("-e", "--env", action="append", default=[], metavar="K=V")
    c.add_argument("-u", "--user", default="", metavar="UID[:GID]")
    c.add_argument("--preserve-fds", type=int, default=0, metavar="N")
    c.add_argument("-c", "--cap", action="append", default=[], help=argparse.SUPPRESS)
    c.add_argument("--no-new-privs", action="store_true", help=argparse.SUPPRESS)
    c.add_argument("--cgroup", action="append", default=[], help=argparse.SUPPRESS)
    c.add_argument("--ignore-paused", action="store_true", help=argparse.SUPPRESS)
    container_id(c)
    c.add_argument("cmd_args", nargs=argparse.REMAINDER, metavar="COMMAND [ARG...]")
    c = command("ps", _ps, "list the container's processes (host pids)")
    c.add_argument("-f", "--format", choices=["table", "json"], default="table")
    container_id(c)
    c.add_argument("ps_args", nargs=argparse.REMAINDER, metavar="PS-OPTIONS")
    container_id(command("pause", _pause, "freeze every process of the container"))
    container_id(command("resume", _resume, "thaw a paused container"))
    command("features", _features, "print the runtime's features as JSON")
    c = command("list", _list, "list containers", aliases=("ls",))
    c.add_argument("-f", "--format", choices=["table", "json"], default="table")
    c.add_argument("-q", "--quiet", action="store_true")
    c = command("events", _events, "print the container's statistics (--stats)")
    c.add_argument("--stats", action="store_true")
    c.add_argument("--interval", default="5s", help=argparse.SUPPRESS)
    container_id(c)
    c = command("spec", _spec, "write a template config.json")
    c.add_argument("-b", "--bundle", default=".")
    c.add_argument("--rootless", action="store_true", help=argparse.SUPPRESS)
    c = command("update", _update, "(not supported: the limits come from config.json at create)")
    c.add_argument("--resources", "-r", default="")
    container_id(c)


def _version() -> str:
    from .info import VERSION

    return VERSION


def register(sub: argparse._SubParsersAction) -> None:
    """`brandpy oci ...` in brandpy's own command line."""
    p = sub.add_parser("oci", help="the OCI runtime (runc's command line)",
                       description="brandpy as an OCI runtime, with runc's command line "
                       "(also installed as brandpy-runc)")
    add_arguments(p)
    p.set_defaults(func=dispatch)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="brandpy-runc", description="brandpy as an OCI runtime: "
                                "runc's command line over brandpy's syscall-translating "
                                "supervisor")
    add_arguments(p)
    return dispatch(p.parse_args(argv))


def dispatch(args: argparse.Namespace) -> int:
    log = Log(args.log, args.log_format, args.debug)
    opts = Options(root=args.root, log=log, engine=args.engine,
                   kernel_release=args.kernel_release)
    for flag, why in HARMLESS.items():
        if getattr(args, flag, None) not in (None, False, "auto", []):
            log.debug(why)
    try:
        return args.oci_func(opts, args)
    except OciError as exc:
        log.error(str(exc))
        if args.log:   # without --log, the line above went to stderr already
            print(exc, file=sys.stderr)
        return 1


# -- the commands ---------------------------------------------------------------

def _create(opts: Options, a: argparse.Namespace) -> int:
    from .lifecycle import create

    create(opts, a.id, a.bundle, a.pid_file, a.console_socket, a.preserve_fds,
           pidfd_socket=a.pidfd_socket)
    return 0


def _run(opts: Options, a: argparse.Namespace) -> int:
    from .lifecycle import run

    return run(opts, a.id, a.bundle, a.pid_file, a.console_socket, a.preserve_fds,
               detach=a.detach, keep=a.keep, pidfd_socket=a.pidfd_socket)


def _start(opts: Options, a: argparse.Namespace) -> int:
    from .lifecycle import start

    start(opts, a.id)
    return 0


def _state(opts: Options, a: argparse.Namespace) -> int:
    from .lifecycle import state

    print(json.dumps(state(opts, a.id), indent=2))
    return 0


def _kill(opts: Options, a: argparse.Namespace) -> int:
    from .lifecycle import kill
    from .signals import parse_signal

    kill(opts, a.id, parse_signal(a.signal), a.all)
    return 0


def _delete(opts: Options, a: argparse.Namespace) -> int:
    from .lifecycle import delete

    delete(opts, a.id, a.force)
    return 0


def _exec(opts: Options, a: argparse.Namespace) -> int:
    from .execs import exec_process

    if a.cap:
        raise OciError("exec --cap is not supported: exec'd processes get the container's "
                       "capabilities")
    return exec_process(opts, a.id, a.cmd_args, a.process, a.detach, a.pid_file,
                        a.console_socket, a.tty, a.cwd, a.env, a.user, a.preserve_fds,
                        pidfd_socket=a.pidfd_socket)


def _ps(opts: Options, a: argparse.Namespace) -> int:
    from .info import pids, ps_table

    found = pids(opts, a.id)
    if a.format == "json":
        print(json.dumps(found))
    else:
        sys.stdout.write(ps_table(found, a.ps_args))
    return 0


def _pause(opts: Options, a: argparse.Namespace) -> int:
    from .lifecycle import pause

    pause(opts, a.id)
    return 0


def _resume(opts: Options, a: argparse.Namespace) -> int:
    from .lifecycle import resume

    resume(opts, a.id)
    return 0


def _features(opts: Options, a: argparse.Namespace) -> int:
    from .info import features

    print(json.dumps(features(), indent=2))
    return 0


def _list(opts: Options, a: argparse.Namespace) -> int:
    from .info import list_containers

    sys.stdout.write(list_containers(opts, a.format, a.quiet))
    return 0


def _events(opts: Options, a: argparse.Namespace) -> int:
    from .info import stats

    if not a.stats:
        raise OciError("events without --stats (a stream of cgroup events) is not supported: "
                       "use events --stats for brandpy's syscall statistics")
    print(json.dumps(stats(opts, a.id)))
    return 0


def _spec(opts: Options, a: argparse.Namespace) -> int:
    from .info import write_spec

    write_spec(a.bundle)
    return 0


def _update(opts: Options, a: argparse.Namespace) -> int:
    raise OciError("update is not supported: brandpy-runc changes no cgroup resource limits "
                   "of a created container (they come from config.json at create)")
