"""The docker-compose story (issue 18) with Debian's docker-compose 1.29:
two services on the project network, the client reaching the web server
by service name, a named volume, an env file, and depends_on gated by the
web server's health check; logs, ps, exec, and down -v leaving nothing."""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest

from brandpy.engine import timefmt
from tests.images_store.registries import free_port

COMPOSE = """\
version: "2.4"
services:
  web:
    image: busybox
    command: ["sh", "-c", "echo \\"$$GREETING\\" > /www/index.html; exec httpd -f -p {port} -h /www"]
    env_file: web.env
    volumes:
      - webdata:/www
    healthcheck:
      test: ["CMD", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1:{port}/index.html"]
      interval: 1s
      retries: 5
  client:
    image: busybox
    command: ["sh", "-c", "wget -q -O - http://web:{port}/index.html; exec sleep 60"]
    depends_on:
      web:
        condition: service_healthy
volumes:
  webdata:
"""


def test_compose_two_services(daemon, tmp_path):
    binary = shutil.which("docker-compose")
    if binary is None:
        pytest.fail("docker-compose is not installed: run `make deps` (Debian's docker-compose)")
    (tmp_path / "docker-compose.yml").write_text(COMPOSE.format(port=free_port()))
    (tmp_path / "web.env").write_text("GREETING=hello from the web service\n")
    env = {**os.environ, "DOCKER_HOST": daemon.host}

    def compose(*args: str) -> str:
        p = subprocess.run([binary, "-p", "story", *args], cwd=tmp_path, env=env,
                           capture_output=True, text=True, timeout=120)
        assert p.returncode == 0, (args, p.stdout, p.stderr)
        return p.stdout

    try:
        compose("up", "-d")
        ps = compose("ps")
        assert "story_web_1" in ps and "Up (healthy)" in ps and "story_client_1" in ps
        # the client started once the web server was healthy, and reached it by name
        web, client = (json.loads(daemon.ok("inspect", f"story_{s}_1"))[0]
                       for s in ("web", "client"))
        healthy = min(timefmt.to_ns(r["End"]) for r in web["State"]["Health"]["Log"]
                      if r["ExitCode"] == 0)
        assert timefmt.to_ns(client["State"]["StartedAt"]) >= healthy
        assert "hello from the web service" in compose("logs", "client")
        assert compose("exec", "-T", "web", "cat", "/www/index.html") == \
            "hello from the web service\n"
        assert daemon.ok("volume", "ls", "-q").split() == ["story_webdata"]
    finally:
        compose("down", "-v", "-t", "1")
    assert daemon.ok("ps", "-aq") == ""
    assert daemon.ok("volume", "ls", "-q") == ""
    assert sorted(daemon.ok("network", "ls", "--format", "{{.Name}}").split()) == [
        "bridge", "host", "none"]
    assert not any((daemon.root / "data" / "volumes").iterdir())
