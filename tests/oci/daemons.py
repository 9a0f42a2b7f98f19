"""Debian's containerd and dockerd, started for the tests with their own
state, sockets and network namespace, and brandpy-runc registered as a
runtime the way an operator would (daemon.json `runtimes`; containerd's
runc shim with its binary option)."""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import signal
import subprocess
import tarfile
import time
from pathlib import Path

from .conftest import Result

KERNEL_RELEASE = "4.19.0-brandpy"    # what brandpy's containers report under dockerd
IMAGE = "docker.io/library/busybox:latest"


def _run(cmd: list[str], timeout: float = 120, input: str | None = None) -> Result:
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, input=input)
    return Result(p.returncode, p.stdout, p.stderr)


def _wait_for(check, what: str, log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not come up: {log.read_text()[-3000:]}")
        time.sleep(0.1)


class NetNS:
    """A network namespace of the daemons' own: they configure nothing on
    the host's network."""

    def __init__(self, name: str) -> None:
        self.name = name
        subprocess.run(["ip", "netns", "add", name], check=True)
        self.path = f"/run/netns/{name}"

    def enter(self) -> list[str]:
        # nsenter, not `ip netns exec`: that remounts /sys and hides the cgroup mounts
        return ["nsenter", f"--net={self.path}"]

    def remove(self) -> None:
        subprocess.run(["ip", "netns", "delete", self.name], check=False)


class Daemon:
    def __init__(self, proc: subprocess.Popen, log: Path) -> None:
        self.proc = proc
        self.log = log

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


class Containerd(Daemon):
    def __init__(self, base: Path, netns: NetNS) -> None:
        self.base = base
        self.socket = base / "containerd.sock"
        self.runc_root = base / "runc-root"    # brandpy-runc's --root under ctr
        config = base / "containerd.toml"
        config.write_text(f'''version = 2
root = "{base}/root"
state = "{base}/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "{self.socket}"
''')
        log = base / "containerd.log"
        proc = subprocess.Popen(netns.enter() + ["containerd", "--config", str(config)],
                                stdout=log.open("w"), stderr=subprocess.STDOUT)
        super().__init__(proc, log)
        _wait_for(lambda: self.ctr("version").status == 0, "containerd", log)

    def ctr(self, *args: str, **kw) -> Result:
        return _run(["ctr", "-a", str(self.socket), *args], **kw)

    def import_busybox(self, layer_tar: Path) -> None:
        archive = self.base / "busybox-oci.tar"
        oci_archive(layer_tar, archive, IMAGE)
        r = self.ctr("images", "import", str(archive))
        assert r.status == 0, r

    def stop(self) -> None:
        for task in self.ctr("task", "ls", "-q").out.split():
            self.ctr("task", "kill", "-s", "KILL", task)
        super().stop()


class Dockerd(Daemon):
    def __init__(self, base: Path, netns: NetNS, containerd: Containerd, runtime: str) -> None:
        self.base = base
        self.host = f"unix://{base}/docker.sock"
        self.exec_root = base / "exec"
        config = base / "daemon.json"
        config.write_text(json.dumps(daemon_json(runtime)))
        log = base / "dockerd.log"
        proc = subprocess.Popen(netns.enter() + [
            "dockerd", "--config-file", str(config), "--data-root", str(base / "data"),
            "--exec-root", str(self.exec_root), "-H", self.host,
            "--pidfile", str(base / "docker.pid"), "--containerd", str(containerd.socket),
            "--bridge=none", "--iptables=false", "--ip-masq=false", "--storage-driver=vfs"],
            stdout=log.open("w"), stderr=subprocess.STDOUT)
        super().__init__(proc, log)
        _wait_for(lambda: self.docker("version").status == 0, "dockerd", log)

    @property
    def runtime_root(self) -> Path:
        """Where dockerd 20.10 has runtimes keep state (--root)."""
        return self.exec_root / "runtime-runc" / "moby"

    def docker(self, *args: str, **kw) -> Result:
        return _run(["docker", "-H", self.host, *args], **kw)

    def ok(self, *args: str, **kw) -> str:
        r = self.docker(*args, **kw)
        assert r.status == 0, r
        return r.out

    def stop(self) -> None:
        ids = self.docker("ps", "-aq").out.split()
        if ids:
            self.docker("rm", "-f", *ids)
        super().stop()


def daemon_json(runtime: str) -> dict:
    """The operator's registration (README): brandpy-runc as a runtime,
    with runtime-wide options as runtimeArgs."""
    return {"runtimes": {"brandpy": {"path": runtime,
                                     "runtimeArgs": ["--kernel-release", KERNEL_RELEASE]}}}


def oci_archive(layer_tar: Path, out: Path, name: str, cmd: list[str] | None = None) -> None:
    """A one-layer OCI image archive from a rootfs tar, for ctr images import
    (and skopeo); cmd: the config's Cmd (default sh)."""
    layer = layer_tar.read_bytes()

    def digest(blob: bytes) -> str:
        return "sha256:" + hashlib.sha256(blob).hexdigest()

    config = json.dumps({
        "architecture": "amd64", "os": "linux",
        "config": {"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
                   "Cmd": cmd or ["sh"]},
        "rootfs": {"type": "layers", "diff_ids": [digest(layer)]}}).encode()
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": digest(config), "size": len(config)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                    "digest": digest(layer), "size": len(layer)}]}).encode()
    index = json.dumps({"schemaVersion": 2, "manifests": [{
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "digest": digest(manifest), "size": len(manifest),
        "platform": {"architecture": "amd64", "os": "linux"},
        "annotations": {"io.containerd.image.name": name}}]}).encode()
    with tarfile.open(out, "w") as tar:
        for path, data in [("oci-layout", b'{"imageLayoutVersion": "1.0.0"}'),
                           ("index.json", index)] + [
                (f"blobs/sha256/{digest(b)[7:]}", b) for b in (layer, config, manifest)]:
            info = tarfile.TarInfo(path)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def require(*tools: str) -> None:
    import pytest

    missing = [t for t in tools if shutil.which(t) is None]
    if missing:
        pytest.fail(f"{', '.join(missing)} not installed: apt-get install docker.io containerd")
