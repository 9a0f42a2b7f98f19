"""Bad input gets Docker's status and message, and the daemon keeps
serving with nothing lost or half-made: malformed JSON, wrong types,
unknown fields, missing and conflicting names, a huge body, clients that
go away mid-stream or mid-attach."""

from __future__ import annotations

import http.client
import io
import json
import socket
import tarfile
import time
from urllib.parse import quote


class UnixHTTP(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float = 30) -> None:
        super().__init__("localhost", timeout=timeout)
        self.path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.path)


def call(daemon, method: str, path: str, body: bytes | dict | None = None,
         headers: dict | None = None) -> tuple[int, dict | bytes, http.client.HTTPResponse]:
    conn = UnixHTTP(str(daemon.sock))
    data = json.dumps(body).encode() if isinstance(body, dict) else body
    hdrs = {"Content-Type": "application/json", **(headers or {})}
    conn.request(method, path, body=data, headers=hdrs)
    resp = conn.getresponse()
    raw = resp.read()
    conn.close()
    try:
        return resp.status, json.loads(raw), resp
    except ValueError:
        return resp.status, raw, resp


def container_count(daemon) -> int:
    return len(daemon.ok("ps", "-aq").split())


def test_error_shapes(daemon):
    before = container_count(daemon)
    status, body, resp = call(daemon, "POST", "/v1.50/containers/create", b"{not json")
    assert status == 400 and "invalid JSON" in body["message"]
    assert resp.getheader("Content-Type") == "application/json"
    status, body, _ = call(daemon, "POST", "/v1.50/containers/create",
                           {"Image": "busybox", "Env": "A=1"})
    assert status == 400 and body["message"] == ("json: cannot unmarshal string into Go "
                                                 "struct field ContainerConfigWrapper.Env of "
                                                 "type []string")
    status, body, _ = call(daemon, "POST", "/v1.50/containers/create",
                           {"Image": "busybox", "HostConfig": {"RestartPolicy": {
                               "MaximumRetryCount": "3"}}})
    assert status == 400 and "MaximumRetryCount" in body["message"]
    status, body, _ = call(daemon, "POST", "/v1.50/containers/create?name=bad/name",
                           {"Image": "busybox", "Cmd": ["true"]})
    assert status == 400 and "Invalid container name" in body["message"]
    status, body, _ = call(daemon, "POST", "/v1.50/containers/create",
                           {"Image": "nosuch:1", "Cmd": ["true"]})
    assert (status, body) == (404, {"message": "No such image: nosuch:1"})
    assert container_count(daemon) == before
    # unknown fields are ignored, as by Docker
    status, body, _ = call(daemon, "POST", "/v1.50/containers/create?name=unknown-fields",
                           {"Image": "busybox", "Cmd": ["true"], "NoSuchField": {"x": 1}})
    assert status == 201 and len(body["Id"]) == 64
    status, body, _ = call(daemon, "POST", "/v1.50/containers/create?name=unknown-fields",
                           {"Image": "busybox", "Cmd": ["true"]})
    assert status == 409 and 'The container name "/unknown-fields" is already in use' in \
        body["message"]
    status, body, _ = call(daemon, "GET", "/v1.50/containers/nosuch/json")
    assert (status, body) == (404, {"message": "No such container: nosuch"})
    status, body, _ = call(daemon, "POST", "/v1.50/containers/unknown-fields/stop")
    assert status == 304
    status, body, _ = call(daemon, "POST", "/v1.50/containers/unknown-fields/kill")
    assert status == 409
    status, body, _ = call(daemon, "GET", "/v1.99/version")
    assert status == 400 and "too new" in body["message"]
    status, body, _ = call(daemon, "GET", "/v1.50/no/such/endpoint")
    assert (status, body) == (404, {"message": "page not found"})
    status, body, _ = call(daemon, "POST", "/v1.50/images/create?fromImage=bad%20name")
    assert (status, body) == (400, {"message": "invalid reference format"})
    status, body, _ = call(daemon, "POST", "/v1.50/images/busybox/tag?repo=UPPER/case")
    assert (status, body) == (400, {"message": "invalid reference format: repository name "
                                               "must be lowercase"})
    status, body, _ = call(daemon, "GET", "/v1.50/images/search?term=x")
    assert status == 501 and "not implemented" in body["message"]
    status, body, _ = call(daemon, "DELETE", "/v1.50/containers/unknown-fields")
    assert status == 204
    assert container_count(daemon) == before


def test_huge_body(daemon):
    before = container_count(daemon)
    huge = b'{"Image": "busybox", "Env": ["' + b"x" * (20 << 20) + b'"]}'
    status, body, _ = call(daemon, "POST", "/v1.50/containers/create", huge)
    assert status == 413 and "too large" in body["message"]
    assert call(daemon, "GET", "/_ping")[0] == 200
    assert container_count(daemon) == before


def _raw_request(daemon, text: str) -> socket.socket:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(str(daemon.sock))
    s.sendall(text.encode())
    return s


def test_clients_that_go_away(daemon):
    cid = daemon.ok("run", "-d", "-i", "busybox", "sh", "-c",
                    "while :; do echo tick; sleep 0.1; done").strip()
    try:
        for path in (f"/v1.50/containers/{cid}/logs?follow=1&stdout=1",
                     "/v1.50/events", f"/v1.50/containers/{cid}/stats"):
            s = _raw_request(daemon, f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n")
            assert s.recv(100).startswith(b"HTTP/1.1 200")
            s.close()
        s = _raw_request(daemon, f"POST /v1.50/containers/{cid}/attach?stream=1&stdin=1&"
                                 "stdout=1 HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\n"
                                 "Upgrade: tcp\r\n\r\n")
        assert s.recv(100).startswith(b"HTTP/1.1 101 UPGRADED")
        s.close()
        for n in range(40):    # gone before reading the head (the daemon waits for that)
            s = _raw_request(daemon, f"POST /v1.50/containers/{cid}/attach?stream=1&stdout=1 "
                                     "HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\n"
                                     "Upgrade: tcp\r\n\r\n")
            time.sleep(n % 8 / 1000)
            s.shutdown(socket.SHUT_WR)
            s.close()
        time.sleep(0.5)
        assert not daemon.internal_errors()
        assert call(daemon, "GET", "/_ping")[0] == 200
        assert daemon.ok("inspect", "-f", "{{.State.Running}}", cid) == "true\n"
        assert "tick" in daemon.ok("logs", "--tail", "1", cid)
    finally:
        daemon.ok("rm", "-f", cid)


def test_upload_cut_off_registers_nothing(daemon, tmp_path):
    archive = tmp_path / "bb.tar"
    daemon.ok("tag", "busybox", "cutoff:1")
    daemon.ok("save", "-o", str(archive), "cutoff:1")
    daemon.ok("rmi", "cutoff:1")
    before = daemon.ok("images", "-a", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}")
    data = archive.read_bytes()
    s = _raw_request(daemon, "POST /v1.50/images/load HTTP/1.1\r\nHost: x\r\n"
                             "Content-Type: application/x-tar\r\n"
                             f"Content-Length: {len(data)}\r\n\r\n")
    s.sendall(data[: len(data) // 2])
    s.close()
    time.sleep(1)
    assert call(daemon, "GET", "/_ping")[0] == 200
    assert daemon.ok("images", "-a", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}") == before
    assert daemon.docker("image", "inspect", "cutoff:1").status == 1
    daemon.ok("run", "--rm", "busybox", "true")


def _context(dockerfile: str) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        data = dockerfile.encode()
        info = tarfile.TarInfo("Dockerfile")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _lines(body: bytes) -> list[dict]:
    return [json.loads(line) for line in body.splitlines() if line.strip()]


BAD_REFERENCES = [("Bad:ref", "invalid reference format: repository name must be lowercase"),
                  ("a:b:c", "invalid reference format"), ("x@sha256:12", "invalid reference format"),
                  ("ok:bad!tag", "invalid reference format")]


def test_invalid_references_are_400(daemon):
    """Docker's messages for a malformed reference, as a 400 before any
    work, in every operation that takes one."""
    tar = {"Content-Type": "application/x-tar"}
    for ref, message in BAD_REFERENCES:
        status, _, body = daemon.api("POST", f"/v1.50/build?t={quote(ref)}",
                                     _context("FROM busybox\n"), tar)
        assert (status, json.loads(body)) == (400, {"message": message}), ref
        status, _, body = daemon.api("POST", f"/v1.50/images/create?fromImage={quote(ref)}")
        assert (status, json.loads(body)) == (400, {"message": message}), ref
    for query, message in [("repo=Bad", "invalid reference format: repository name must be "
                                        "lowercase"),
                           ("repo=a:b:c", "invalid reference format"),
                           ("repo=ok&tag=bad!tag", "invalid tag format"),
                           ("repo=ok@sha256:" + "0" * 64,
                            "refusing to create a tag with a digest reference")]:
        status, _, body = daemon.api("POST", f"/v1.50/images/busybox/tag?{query}")
        assert (status, json.loads(body)) == (400, {"message": message}), query
    status, _, body = daemon.api("POST", "/v1.50/images/create?fromImage=ok&tag=bad!")
    assert (status, json.loads(body)) == (400, {"message": "invalid tag format"})


def test_empty_tag_builds_untagged(daemon):
    before = daemon.ok("images", "-q", "--no-trunc").split()
    status, _, body = daemon.api("POST", "/v1.50/build?t=", _context("FROM busybox\nLABEL x=1\n"),
                                 {"Content-Type": "application/x-tar"})
    assert status == 200, body
    lines = _lines(body)
    assert not [m for m in lines if "error" in m], lines
    image_id = next(m["aux"]["ID"] for m in lines if "aux" in m)
    assert not [m for m in lines if "Successfully tagged" in m.get("stream", "")]
    assert daemon.ok("image", "inspect", "-f", "{{json .RepoTags}}", image_id) == "[]\n"
    daemon.ok("rmi", image_id)
    assert daemon.ok("images", "-q", "--no-trunc").split() == before


def test_save_without_names_is_an_empty_archive(daemon):
    """As dockerd 20.10: an archive of no images, which loads as nothing;
    so does dockerd's own (its manifest.json says null)."""
    status, ctype, body = daemon.api("GET", "/v1.50/images/get")
    assert (status, ctype) == (200, "application/x-tar")
    with tarfile.open(fileobj=io.BytesIO(body)) as tar:
        assert json.loads(tar.extractfile("manifest.json").read()) == []
    dockerd_20_10 = io.BytesIO()
    with tarfile.open(fileobj=dockerd_20_10, mode="w") as tar:
        info = tarfile.TarInfo("manifest.json")
        info.size = 4
        tar.addfile(info, io.BytesIO(b"null"))
    before = daemon.ok("images", "-a", "-q")
    for archive in (body, dockerd_20_10.getvalue()):
        status, _, loaded = daemon.api("POST", "/v1.50/images/load", archive,
                                       {"Content-Type": "application/x-tar"})
        assert status == 200 and not [m for m in _lines(loaded) if "error" in m], loaded
    assert daemon.ok("images", "-a", "-q") == before


def test_load_errors_are_in_the_stream(daemon):
    """dockerd answers 200 and reports a bad archive in its progress
    stream (`{"errorDetail": {"message": ...}, "error": ...}`)."""
    for data in (b"", b"garbage", b"\0" * 1024):
        status, ctype, body = daemon.api("POST", "/v1.50/images/load", data,
                                         {"Content-Type": "application/x-tar"})
        assert (status, ctype) == (200, "application/json"), body
        last = _lines(body)[-1]
        assert last["error"] and last["errorDetail"] == {"message": last["error"]}, body
