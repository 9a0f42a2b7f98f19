"""Extension adapters (brandpyd --adapters FILE), driven by the real docker
CLI: an HTTP pre-hook (a small server here) that rejects `docker run` of
containers labelled policy=deny, a Python pre-hook that adds an env var to
every container, a Python post-hook that changes a response; failing hooks
fail their request with 502 and leave the daemon serving; streams (attach,
exec, logs -f, events) pass through hooks that match every request."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.api.conftest import Daemon, Netns, image_tar

HOOKS = textwrap.dedent('''
    """Python adapters for tests/api/test_adapters.py."""

    def add_env(hook):
        req = hook["Request"]
        if (req["Method"], req["Path"]) != ("POST", "/containers/create"):
            return None
        body = req["Body"]
        body["Env"] = (body.get("Env") or []) + ["ADAPTED=by-python-hook"]
        return {"Request": {"Body": body}}

    async def tag_version(hook):
        resp = hook["Response"]
        resp["Body"]["Version"] += "+adapted"
        return {"Response": {"Body": resp["Body"]}}

    def broken(hook):
        return 1 // 0
''')


class PolicyHandler(BaseHTTPRequestHandler):
    """The HTTP adapter: rejects creating a container labelled policy=deny."""

    def do_POST(self) -> None:   # noqa: N802 - http.server's naming
        hook = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.server.seen.append(hook)    # type: ignore[attr-defined]
        labels = (hook["Request"]["Body"] or {}).get("Labels") or {}
        if labels.get("policy") == "deny":
            answer = json.dumps({"Reject": {"Status": 403, "Message":
                                            "policy adapter: policy=deny containers may "
                                            "not run here"}}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)
        else:
            self.send_response(204)
            self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def adapter_netns():
    """The adapted daemon's network namespace as root (see conftest), where
    its policy server listens; None unprivileged."""
    ns = Netns() if os.geteuid() == 0 else None
    yield ns
    if ns is not None:
        ns.remove()


@pytest.fixture(scope="module")
def policy_server(adapter_netns):
    def make() -> ThreadingHTTPServer:
        return ThreadingHTTPServer(("127.0.0.1", 0), PolicyHandler)
    server = adapter_netns.call(make) if adapter_netns else make()
    server.seen = []     # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def adapted(policy_server, adapter_netns):
    hooks_dir = Path(tempfile.mkdtemp(prefix="bph-", dir="/tmp"))
    (hooks_dir / "bp_test_hooks.py").write_text(HOOKS)
    port = policy_server.server_address[1]
    config = {
        "pre": [
            {"name": "policy", "url": f"http://127.0.0.1:{port}/pre",
             "match": ["POST /containers/create"]},
            {"name": "env", "python": "bp_test_hooks:add_env"},     # every request
            {"name": "gone", "url": "http://127.0.0.1:9/", "match": ["POST /containers/*/pause"],
             "timeout": 5},
            {"name": "broken", "python": "bp_test_hooks:broken",
             "match": ["POST /containers/*/unpause"]},
        ],
        "post": [{"name": "version", "python": "bp_test_hooks:tag_version",
                  "match": ["GET /version"]}],
    }
    (hooks_dir / "adapters.json").write_text(json.dumps(config))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(hooks_dir)] + [p for p in [os.environ.get("PYTHONPATH")] if p])}
    d = Daemon(env=env, args=["--adapters", str(hooks_dir / "adapters.json")],
               netns=adapter_netns or False).start()
    d.ok("import", str(image_tar("busybox")), "busybox:latest")
    yield d
    errors = d.internal_errors()
    d.destroy()
    subprocess.run(["rm", "-rf", str(hooks_dir)], check=True)
    assert not errors, errors[-6000:]


def test_http_adapter_rejects_docker_run_by_label(adapted, policy_server):
    r = adapted.docker("run", "--rm", "--label", "policy=deny", "busybox", "true")
    assert r.status == 125, r
    assert "Error response from daemon: policy adapter: policy=deny containers may not run " \
           "here" in r.err
    assert adapted.ok("ps", "-aq") == ""
    hook = policy_server.seen[-1]
    assert (hook["Protocol"], hook["Type"], hook["Adapter"]) == (1, "pre-hook", "policy")
    req = hook["Request"]
    assert (req["Method"], req["Path"], req["Version"]) == ("POST", "/containers/create", "1.50")
    assert req["Body"]["Labels"] == {"policy": "deny"} and req["Body"]["Cmd"] == ["true"]
    assert req["Headers"]["Content-Type"] == "application/json"
    # the other label values pass, and the rejection left nothing behind
    assert adapted.docker("run", "--rm", "--label", "policy=allow", "busybox",
                          "true").status == 0


def test_python_adapter_adds_env_to_every_container(adapted):
    r = adapted.docker("run", "--rm", "-e", "MINE=1", "busybox", "env")
    assert r.status == 0, r
    env = r.out.splitlines()
    assert "ADAPTED=by-python-hook" in env and "MINE=1" in env
    # the SDK's containers.run goes through the same hook
    client = adapted.client()
    try:
        out = client.containers.run("busybox", ["sh", "-c", "echo $ADAPTED"], remove=True)
        assert out == b"by-python-hook\n"
    finally:
        client.close()


def test_streams_pass_through_hooks_that_match_everything(adapted):
    since = str(time.time() - 1)
    cid = adapted.ok("run", "-d", "busybox", "sh", "-c",
                     "echo one; sleep 0.5; echo two").strip()
    assert adapted.docker("logs", "-f", cid, timeout=20).out == "one\ntwo\n"
    r = adapted.docker("run", "-i", "--rm", "busybox", "cat", input="piped\n")
    assert (r.status, r.out) == (0, "piped\n"), r
    events = adapted.ok("events", "--since", since, "--until", str(time.time() + 1),
                        "--filter", f"container={cid}", "--format", "{{.Action}}").split()
    assert events[:2] == ["create", "start"] and "die" in events, events
    adapted.ok("rm", cid)


def test_post_hook_changes_a_response(adapted):
    server = adapted.ok("version", "--format", "{{.Server.Version}}").strip()
    assert server.endswith("+adapted"), server


def test_failing_hooks_fail_the_request_not_the_daemon(adapted):
    cid = adapted.ok("run", "-d", "busybox", "sleep", "30").strip()
    try:
        r = adapted.docker("pause", cid)
        assert r.status == 1, r
        assert "adapter gone (http://127.0.0.1:9/) cannot be reached" in r.err
        r = adapted.docker("unpause", cid)
        assert "adapter broken (bp_test_hooks:broken) raised ZeroDivisionError: integer " \
               "division or modulo by zero" in r.err, r
        status, _, body = adapted.api("POST", f"/containers/{cid}/pause")
        assert status == 502 and json.loads(body)["message"].startswith("adapter gone")
        assert adapted.ok("exec", cid, "echo", "still serving") == "still serving\n"
    finally:
        adapted.ok("rm", "-f", cid)


def test_bad_adapter_files_stop_the_daemon_with_a_message(tmp_path):
    cases = [
        ({"pre": [{"name": "x", "python": "no_such_module_here:hook"}]},
         "adapter x: python 'no_such_module_here:hook': cannot import no_such_module_here"),
        ({"pre": [{"name": "y", "url": "ftp://example/"}]},
         "adapter y: url 'ftp://example/' is not http:// or https://"),
        ({"post": [{"name": "z", "url": "http://127.0.0.1:1/", "python": "m:f"}]},
         "adapter z: give either url or python"),
        ({"hooks": []}, "expected an object with \"pre\" and/or \"post\" lists"),
    ]
    for config, message in cases:
        path = tmp_path / "adapters.json"
        path.write_text(json.dumps(config))
        p = subprocess.run([sys.executable, "-m", "brandpy", "daemon", "--adapters", str(path),
                            "--data-root", str(tmp_path / "data"), "-H",
                            f"unix://{tmp_path}/d.sock"], capture_output=True, text=True,
                           timeout=30, cwd="/")
        assert p.returncode == 2 and f"--adapters {path}: " in p.stderr, p
        assert message in p.stderr, p.stderr
