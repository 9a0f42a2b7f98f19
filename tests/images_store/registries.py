"""Real registries for the tests: Debian's docker-registry on 127.0.0.1 (with and
without htpasswd Basic auth), and a small token-auth proxy in front of one
that issues Bearer tokens the way Docker Hub's auth server does and can
inject faults (error statuses, a dropped connection, corrupted bytes)."""
from __future__ import annotations

import base64
import http.client
import http.server
import json
import re
import secrets
import shutil
import socket
import subprocess
import threading
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from brandpy.network.netns import run_in


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Registry:
    """docker-registry serving 127.0.0.1:<port>, storage in a temp dir; in
    the network namespace file `netns` if given (a root daemon's, whose
    127.0.0.1 is its own)."""

    def __init__(self, workdir: Path, htpasswd: tuple[str, str] | None = None,
                 netns: str | None = None):
        self.port = free_port()
        self.addr = f"127.0.0.1:{self.port}"
        self.creds = htpasswd
        workdir.mkdir(parents=True, exist_ok=True)
        auth = ""
        if htpasswd:
            line = subprocess.run(["htpasswd", "-Bbn", *htpasswd], check=True, capture_output=True,
                                  text=True).stdout.strip()
            (workdir / "htpasswd").write_text(line + "\n")
            auth = f"auth:\n  htpasswd:\n    realm: brandpy-test\n    path: {workdir / 'htpasswd'}\n"
        (workdir / "config.yml").write_text(
            "version: 0.1\nlog:\n  level: error\n"
            f"storage:\n  filesystem:\n    rootdirectory: {workdir / 'data'}\n  delete:\n    enabled: true\n"
            f"http:\n  addr: {self.addr}\n{auth}")
        binary = shutil.which("docker-registry")
        if binary is None:
            raise RuntimeError("docker-registry is not installed (apt-get install docker-registry)")
        self.log = open(workdir / "registry.log", "wb")
        enter = ["nsenter", f"--net={netns}"] if netns else []
        self.proc = subprocess.Popen([*enter, binary, "serve", str(workdir / "config.yml")],
                                     stdout=self.log, stderr=subprocess.STDOUT)

        def up() -> bool:
            try:
                urllib.request.urlopen(f"http://{self.addr}/v2/", timeout=1)
                return True
            except urllib.error.HTTPError:
                return True  # 401: up, and asking for auth
            except OSError:
                return False

        deadline = time.time() + 20
        while time.time() < deadline:
            if (run_in(netns, up) if netns else up()):
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"docker-registry did not start; see {workdir / 'registry.log'}")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()

    def skopeo_copy(self, src: str, repo_tag: str, extra: tuple[str, ...] = ()) -> None:
        creds = ("--dest-creds", ":".join(self.creds)) if self.creds else ()
        subprocess.run(["skopeo", "copy", "--quiet", "--dest-tls-verify=false", *creds, *extra, src,
                        f"docker://{self.addr}/{repo_tag}"], check=True, capture_output=True)

    def put_manifest(self, repo: str, ref: str, raw: bytes, media_type: str) -> None:
        req = urllib.request.Request(f"http://{self.addr}/v2/{repo}/manifests/{ref}", data=raw,
                                     method="PUT", headers={"Content-Type": media_type})
        urllib.request.urlopen(req, timeout=10).read()

    def get_manifest(self, repo: str, ref: str) -> tuple[bytes, str]:
        req = urllib.request.Request(f"http://{self.addr}/v2/{repo}/manifests/{ref}", headers={
            "Accept": "application/vnd.oci.image.manifest.v1+json, "
                      "application/vnd.docker.distribution.manifest.v2+json"})
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.read(), r.headers["Content-Type"]


@dataclass
class Fault:
    method: str
    path: str          # regex matched against the request path
    action: str        # "status:NNN", "drop" (half the body, then close), "corrupt"
    times: int = 1


@dataclass
class _State:
    upstream: str
    realm: str = ""
    creds: tuple[str, str] | None = None
    tokens: dict[str, list[str]] = field(default_factory=dict)   # token → scopes
    scopes_requested: list[list[str]] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def take_fault(self, method: str, path: str) -> Fault | None:
        with self.lock:
            for f in self.faults:
                if f.method == method and re.search(f.path, path) and f.times > 0:
                    f.times -= 1
                    return f
        return None


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    state: _State

    def log_message(self, *args) -> None:  # noqa: ANN002 - quiet
        pass

    def _reply(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _token(self) -> None:
        st = self.state
        if st.creds:
            want = "Basic " + base64.b64encode(":".join(st.creds).encode()).decode()
            if self.headers.get("Authorization") != want:
                self._reply(401, json.dumps({"errors": [{"code": "UNAUTHORIZED",
                                                         "message": "incorrect username or password"}]}).encode())
                return
        q = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
        scopes = q.get("scope", [])
        st.scopes_requested.append(scopes)
        token = secrets.token_hex(16)
        st.tokens[token] = scopes
        self._reply(200, json.dumps({"token": token, "expires_in": 300}).encode(),
                    {"Content-Type": "application/json"})

    def _authorised(self, path: str) -> bool:
        m = re.match(r"/v2/(.+?)/(manifests|blobs|tags)/", path)
        if not m:
            return True
        repo = m.group(1)
        need = "push" if self.command in ("PUT", "POST", "PATCH", "DELETE") else "pull"
        auth = self.headers.get("Authorization", "")
        scopes = self.state.tokens.get(auth.removeprefix("Bearer "), []) if auth.startswith("Bearer ") else []
        for scope in scopes:
            _, name, actions = scope.split(":")
            if name == repo and need in actions.split(","):
                return True
        challenge = (f'Bearer realm="{self.state.realm}",service="brandpy-test",'
                     f'scope="repository:{repo}:{"pull,push" if need == "push" else "pull"}"')
        self._reply(401, json.dumps({"errors": [{"code": "UNAUTHORIZED",
                                                 "message": "authentication required"}]}).encode(),
                    {"WWW-Authenticate": challenge, "Content-Type": "application/json"})
        return False

    def _handle(self) -> None:
        path = urllib.parse.urlsplit(self.path).path
        if path == "/token":
            self._token()
            return
        if not self._authorised(path):
            self._drain()
            return
        fault = self.state.take_fault(self.command, path)
        if fault and fault.action.startswith("status:"):
            self._drain()
            code = int(fault.action[7:])
            self._reply(code, json.dumps({"errors": [{"code": "INJECTED", "message": f"injected {code}"}]}).encode(),
                        {"Content-Type": "application/json"})
            return
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        conn = http.client.HTTPConnection(self.state.upstream, timeout=30)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("authorization", "connection")}
        conn.request(self.command, self.path, body=body, headers=headers)
        resp = conn.getresponse()
        data = resp.read()
        if fault and fault.action == "corrupt" and data:
            data = bytes([data[0] ^ 0xFF]) + data[1:]
        self.send_response(resp.status)
        for k, v in resp.getheaders():
            if k.lower() not in ("content-length", "connection", "transfer-encoding"):
                self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command == "HEAD":
            return
        if fault and fault.action == "drop":
            self.wfile.write(data[: len(data) // 2])
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
            self.close_connection = True
            return
        self.wfile.write(data)

    def _drain(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)

    do_GET = do_HEAD = do_PUT = do_POST = do_PATCH = do_DELETE = _handle


class TokenProxy:
    """An OCI-distribution front end with Bearer-token auth (and faults) for a registry."""

    def __init__(self, upstream: Registry, creds: tuple[str, str] | None = None):
        self.upstream = upstream
        self.state = _State(upstream.addr, creds=creds)
        handler = type("Handler", (_Handler,), {"state": self.state})
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.server.daemon_threads = True
        self.addr = f"127.0.0.1:{self.server.server_address[1]}"
        self.state.realm = f"http://{self.addr}/token"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def fault(self, method: str, path: str, action: str, times: int = 1) -> None:
        self.state.faults.append(Fault(method, path, action, times))

    def clear_faults(self) -> None:
        self.state.faults.clear()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
