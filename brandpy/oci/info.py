"""The read-only commands: features, list, ps, events --stats; and spec,
which writes a template config.json."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from . import control
from .errors import OciError
from .hooks import KINDS
from .options import Options
from .state import LIVE, OCI_VERSION, ContainerDir, oci_view, states

VERSION = "0.1.0"


def features() -> dict[str, Any]:
    """What this runtime implements (features.md): only what it honours."""
    from brandpy.runtime.policy import ALL_CAPS

    from .bundle import PROPAGATION

    return {
        "ociVersionMin": "1.0.0",
        "ociVersionMax": OCI_VERSION,
        "hooks": list(KINDS),
        "mountOptions": sorted(PROPAGATION | {"nosuid", "nodev", "noexec"}),
        "linux": {
            # pid, uts and mount are emulated by syscall translation; the
            # network namespace is a kernel one (made or joined, as root)
            "namespaces": ["mount", "network", "pid", "uts"],
            "capabilities": sorted(ALL_CAPS),
            "cgroup": {"v1": False, "v2": False, "systemd": False, "systemdUser": False},
            "seccomp": {
                "enabled": True,
                "actions": ["SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO", "SCMP_ACT_KILL",
                            "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_KILL_THREAD", "SCMP_ACT_LOG",
                            "SCMP_ACT_TRAP"],
                "operators": ["SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT", "SCMP_CMP_LE",
                              "SCMP_CMP_LT", "SCMP_CMP_MASKED_EQ", "SCMP_CMP_NE"],
                "archs": ["SCMP_ARCH_X86_64"],
                "knownFlags": [],
                "supportedFlags": [],
            },
            "apparmor": {"enabled": False},
            "selinux": {"enabled": False},
        },
        "annotations": {"org.brandpy.version": VERSION,
                        "org.brandpy.annotations": "org.brandpy.engine, "
                        "org.brandpy.kernel-release, org.brandpy.personality, "
                        "org.brandpy.strict, org.brandpy.cpuset"},
    }


def list_containers(opts: Options, fmt: str, quiet: bool) -> str:
    found = [oci_view(s) for s in states(opts.root)]
    if quiet:
        return "".join(s["id"] + "\n" for s in found)
    if fmt == "json":
        return json.dumps(found) + "\n"
    rows = [("ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER")]
    rows += [(s["id"], str(s["pid"]), s["status"], s["bundle"], s["created"], s["owner"])
             for s in found]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "".join("   ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() + "\n"
                   for r in rows)


def pids(opts: Options, cid: str) -> list[int]:
    cdir = ContainerDir(opts.root, cid)
    if cdir.load()["status"] not in LIVE:
        return []
    try:
        return control.request(cdir, "ps")["pids"]
    except control.MonitorGone:
        return []


def ps_table(found: list[int], ps_args: list[str]) -> str:
    """runc's table: the host's ps output, only the container's lines."""
    try:
        out = subprocess.run(["ps", *(ps_args or ["-ef"])], capture_output=True, text=True,
                             check=True).stdout.splitlines()
    except (OSError, subprocess.CalledProcessError) as exc:
        raise OciError(f"ps {' '.join(ps_args or ['-ef'])} failed: {exc}") from None
    header = out[0].split()
    if "PID" not in header:
        raise OciError("ps output has no PID column: keep -e/-f style options")
    col = header.index("PID")
    wanted = {str(p) for p in found}
    return "".join(line + "\n" for line in out[:1] + [
        line for line in out[1:] if len(line.split()) > col and line.split()[col] in wanted])


def stats(opts: Options, cid: str) -> dict[str, Any]:
    """`events --stats`: runc's stats event, with what brandpy counts (the
    supervisor's syscall counters) where runc puts cgroup figures."""
    cdir = ContainerDir(opts.root, cid)
    state = cdir.load()
    if state["status"] in LIVE:
        data = control.request(cdir, "stats")
    else:
        try:
            data = json.loads(cdir.stats_file.read_text())
        except FileNotFoundError:
            raise OciError(f"container {cid} has no statistics: it never ran") from None
    return {"type": "stats", "id": cid,
            "data": {"pids": {"current": len(pids(opts, cid))}, "brandpy": data}}


def write_spec(bundle: str) -> Path:
    """A starting config.json (runc spec's, with brandpy's choices)."""
    from brandpy.runtime.policy import DEFAULT_CAPS

    path = Path(bundle) / "config.json"
    if path.exists():
        raise OciError(f"{path} exists: remove it first")
    caps = sorted(DEFAULT_CAPS)
    spec = {
        "ociVersion": OCI_VERSION,
        "process": {
            "terminal": True, "user": {"uid": 0, "gid": 0}, "args": ["sh"],
            "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                    "TERM=xterm"],
            "cwd": "/",
            "capabilities": {k: caps for k in ("bounding", "effective", "permitted")},
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": True,
        },
        "root": {"path": "rootfs", "readonly": False},
        "hostname": "brandpy",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
             "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts"},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm"},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs",
             "options": ["nosuid", "noexec", "nodev", "ro"]},
        ],
        # the namespaces brandpy gives (it shares ipc and cgroup: see features)
        "linux": {"namespaces": [{"type": t} for t in ("pid", "network", "uts", "mount")]},
    }
    path.write_text(json.dumps(spec, indent=1) + "\n")
    return path
