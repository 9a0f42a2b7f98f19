"""docker-py 6.1.3's own integration tests against a daemon, as issue 18
measured them: brandpyd, or Debian's dockerd 20.10 for the reference.

    python -m tests.dockerpy.run brandpyd|dockerd [--json OUT] [-k EXPR]

Everything runs in a network namespace of its own with only loopback (the
daemons configure nothing on the host's network, and nothing reaches
out): a Debian docker-registry on 127.0.0.1 serves the images the suite
pulls from Docker Hub, built here from the test busybox rootfs (the image
set below, pinned), and is the daemon's registry mirror. The swarm,
plugin and credential-helper tests are left out, as in the issue's
reference. The summary is passed, failed and skipped tests, and the
failures' names."""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path

SUITE = Path(os.environ.get("BRANDPY_DOCKERPY_SUITE", "/var/cache/brandpy/docker-py-6.1.3"))
VENV = Path(os.environ.get("BRANDPY_DOCKERPY_VENV", "/opt/brandpy/dockerpy-venv"))
LEFT_OUT = ["api_swarm_test.py", "api_service_test.py", "api_secret_test.py",
            "api_config_test.py", "models_services_test.py", "models_swarm_test.py",
            "models_nodes_test.py", "api_plugin_test.py", "credentials"]
# name:tag -> (the image config's Cmd, whether it has Alpine's accounts).
# Every one is the busybox test rootfs: stand-ins for Docker Hub's alpine
# and hello-world (the suite runs their shell tools and inspects them; of
# Alpine it needs only its users: exec -u postgres).
IMAGE_SET = {"library/busybox:latest": (["sh"], False),
             "library/alpine:3.10": (["/bin/sh"], True),
             "library/alpine:latest": (["/bin/sh"], True),
             "library/hello-world:latest": (["echo", "Hello from Docker!"], False)}
ALPINE_ACCOUNTS = {
    "etc/passwd": "root:x:0:0:root:/root:/bin/ash\nbin:x:1:1:bin:/bin:/sbin/nologin\n"
                  "daemon:x:2:2:daemon:/sbin:/sbin/nologin\n"
                  "postgres:x:70:70::/var/lib/postgresql:/bin/sh\n"
                  "guest:x:405:100:guest:/dev/null:/sbin/nologin\n"
                  "nobody:x:65534:65534:nobody:/:/sbin/nologin\n",
    "etc/group": "root:x:0:root\nbin:x:1:root,bin,daemon\ndaemon:x:2:root,bin,daemon\n"
                 "users:x:100:games\npostgres:x:70:\nnogroup:x:65533:\nnobody:x:65534:\n"}
TEST_TIMEOUT = 300


def _in_netns(argv: list[str]) -> int:
    """Run this module again inside a new network namespace (lo up)."""
    name = f"bpdpy-{os.getpid()}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        subprocess.run(["ip", "-n", name, "link", "set", "lo", "up"], check=True)
        return subprocess.run(["nsenter", f"--net=/run/netns/{name}", sys.executable, "-m",
                               "tests.dockerpy.run", "--inside", *argv]).returncode
    finally:
        subprocess.run(["ip", "netns", "delete", name], check=False)


def _push_images(registry, work: Path) -> None:  # noqa: ANN001 - tests.images_store's Registry
    from tests.conftest import IMAGES
    from tests.oci.daemons import oci_archive

    alpine = work / "alpine-rootfs.tar"
    _with_files(IMAGES / "busybox.tar", alpine, ALPINE_ACCOUNTS)
    for name, (cmd, accounts) in IMAGE_SET.items():
        archive = work / (name.replace("/", "_").replace(":", "_") + ".tar")
        oci_archive(alpine if accounts else IMAGES / "busybox.tar", archive, name, cmd)
        registry.skopeo_copy(f"oci-archive:{archive}", name)


def _with_files(src: Path, dest: Path, files: dict[str, str]) -> None:
    """The rootfs tar src with these files' contents replaced."""
    with tarfile.open(src) as tin, tarfile.open(dest, "w") as tout:
        for member in tin:
            content = files.get(member.name.removeprefix("./"))
            if content is not None:
                data = content.encode()
                member.size = len(data)
                tout.addfile(member, io.BytesIO(data))
            else:
                tout.addfile(member, tin.extractfile(member) if member.isfile() else None)


class _Brandpyd:
    def __init__(self, mirror: str) -> None:
        from tests.api.conftest import Daemon
        # in this process's namespace, made for the run, where the mirror is
        self.daemon = Daemon(args=["--registry-mirror", mirror], netns=False).start()
        self.host = self.daemon.host

    def stop(self) -> None:
        self.daemon.destroy()


class _Here:
    """The network namespace this process is in already."""

    def enter(self) -> list[str]:
        return []


class _Dockerd:
    """Debian's containerd and dockerd 20.10, with a bridge and iptables
    of their own (in this namespace), the registry as their mirror."""

    def __init__(self, mirror: str, base: Path) -> None:
        from tests.oci.daemons import Containerd, Daemon, _wait_for

        (base / "containerd").mkdir(parents=True)
        self.containerd = Containerd(base / "containerd", _Here())   # type: ignore[arg-type]
        self.host = f"unix://{base}/docker.sock"
        (base / "daemon.json").write_text(json.dumps({"registry-mirrors": [mirror]}))
        log = base / "dockerd.log"
        with log.open("w") as out:
            proc = subprocess.Popen(
                ["dockerd", "--data-root", str(base / "data"), "--exec-root", str(base / "exec"),
                 "-H", self.host, "--pidfile", str(base / "docker.pid"), "--containerd",
                 str(self.containerd.socket), "--storage-driver=vfs", "--config-file",
                 str(base / "daemon.json")], stdout=out, stderr=subprocess.STDOUT)
        self.dockerd = Daemon(proc, log)
        _wait_for(lambda: subprocess.run(["docker", "-H", self.host, "version"],
                                         capture_output=True).returncode == 0, "dockerd", log)

    def stop(self) -> None:
        ids = subprocess.run(["docker", "-H", self.host, "ps", "-aq"], capture_output=True,
                             text=True).stdout.split()
        if ids:
            subprocess.run(["docker", "-H", self.host, "rm", "-f", *ids], capture_output=True)
        self.dockerd.stop()
        self.containerd.stop()


def _pytest(host: str, out: Path, select: str) -> None:
    ignores = [f"--ignore=tests/integration/{name}" for name in LEFT_OUT]
    # The suite's docker contexts go next to the client config it finds:
    # a private one, not the user's nor the suite's directory;
    config = out.parent / "docker-config"
    config.mkdir()
    (config / "config.json").write_text("{}")
    # and its temporary files (some tests leave theirs) below the work directory
    tmp = out.parent / "tmp"
    tmp.mkdir()
    env = {**os.environ, "DOCKER_HOST": host, "DOCKER_CONFIG": str(config), "TMPDIR": str(tmp),
           "PYTHONDONTWRITEBYTECODE": "1"}
    env.pop("PYTHONPATH", None)
    p = subprocess.run([str(VENV / "bin" / "python"), "-m", "pytest", "tests/integration",
                        *ignores, "-p", "no:cacheprovider", f"--junitxml={out}",
                        f"--timeout={TEST_TIMEOUT}", "-q", *(["-k", select] if select else [])],
                       cwd=SUITE, env=env, capture_output=True, text=True)
    if not out.exists():
        raise RuntimeError(f"docker-py's suite did not run:\n{p.stdout[-3000:]}{p.stderr[-3000:]}")


def summary(junit: Path) -> dict:
    passed, failed, skipped = [], {}, []
    for case in ET.parse(junit).iter("testcase"):
        name = f"{case.get('classname', '').rpartition('.')[2]}::{case.get('name')}"
        problem = case.find("failure")
        if problem is None:
            problem = case.find("error")
        if problem is not None:
            failed[name] = (problem.get("message") or "").splitlines()[0][:300] \
                if problem.get("message") else ""
        elif case.find("skipped") is not None:
            skipped.append(name)
        else:
            passed.append(name)
    return {"passed": len(passed), "failed": len(failed), "skipped": len(skipped),
            "failures": failed}


def measure(daemon: str, select: str = "") -> dict:
    """Inside the namespace: registry, images, daemon, the suite."""
    from tests.images_store.registries import Registry

    if not (SUITE / "READY").exists() or not (VENV / "bin" / "python").exists():
        raise SystemExit(f"docker-py's suite is missing: run `make dockerpy` ({SUITE}, {VENV})")
    work = Path(tempfile.mkdtemp(prefix="bpdpy-", dir="/tmp"))
    registry = Registry(work / "registry")
    target = None
    try:
        _push_images(registry, work)
        mirror = f"http://{registry.addr}"
        target = _Brandpyd(mirror) if daemon == "brandpyd" else _Dockerd(mirror, work)
        _pytest(target.host, work / "junit.xml", select)
        return summary(work / "junit.xml")
    finally:
        if target is not None:
            target.stop()
        registry.stop()
        shutil.rmtree(work, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tests.dockerpy.run")
    p.add_argument("daemon", choices=["brandpyd", "dockerd"])
    p.add_argument("--json", metavar="OUT", help="write the summary there")
    p.add_argument("-k", dest="select", default="", help="pytest's -k, for a part")
    p.add_argument("--inside", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if not args.inside:
        return _in_netns(sys.argv[1:] if argv is None else argv)
    result = measure(args.daemon, args.select)
    text = json.dumps(result, indent=1, sort_keys=True)
    if args.json:
        Path(args.json).write_text(text + "\n")
    print(f"{args.daemon}: {result['passed']} passed, {result['failed']} failed, "
          f"{result['skipped']} skipped", file=sys.stderr)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
