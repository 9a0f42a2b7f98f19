"""The README's list of 501s is what the daemon answers: every endpoint it
lists answers 501 with a message, and no other route of the daemon does
(each requested bare: no body, placeholders filled with a name that does
not exist, so what the request lacks is a 4xx)."""

from __future__ import annotations

import http.client
import json
import socket
from pathlib import Path

from brandpy.api.server import make_app
from brandpy.engine.engine import Engine
from tests.api.conftest import Daemon
from tests.not_implemented import documented, is_documented


def routes(root: Path) -> list[tuple[str, str]]:
    """Every (method, path template) the daemon serves, unversioned."""
    app = make_app(Engine(root))
    out = {(r.method, r.resource.canonical) for r in app.router.routes()
           if r.resource is not None and not r.resource.canonical.startswith("/v{version}")}
    return sorted(out)


def status_of(daemon: Daemon, method: str, path: str) -> tuple[int, dict[str, object] | None]:
    """The status, and the JSON body of a 501 (streams are not read)."""
    conn = http.client.HTTPConnection("localhost", timeout=30)
    conn.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    conn.sock.settimeout(30)
    conn.sock.connect(str(daemon.sock))
    try:
        conn.request(method, path, headers={"Content-Length": "0"})
        resp = conn.getresponse()
        return resp.status, json.loads(resp.read()) if resp.status == 501 else None
    finally:
        conn.close()


def test_readme_lists_the_501s(fresh: Daemon, tmp_path: Path) -> None:
    served = routes(tmp_path / "root")
    for endpoint in documented():
        assert any(endpoint.matches(m, p, {}) or (m, p) == (endpoint.method, endpoint.path)
                   for m, p in served), f"README lists {endpoint}, which the daemon does not serve"
        status, body = status_of(fresh, *endpoint.example())
        assert status == 501 and body and body.get("message"), (str(endpoint), status, body)
    unlisted = []
    for method, template in served:
        path = "/".join("x" if part.startswith("{") else part for part in template.split("/"))
        status, _ = status_of(fresh, method, path)
        if status == 501 and not is_documented(method, template, {}):
            unlisted.append(f"{method} {template}")
    assert not unlisted, f"answer 501 but are not in README's list: {unlisted}"
