"""A synchronous OCI distribution API client (http.client): manifests, blobs,
uploads, with anonymous, Basic and Bearer-token auth (the WWW-Authenticate
challenge flow Docker Hub uses). Plain http is used for loopback registries
(localhost, 127.0.0.0/8, ::1), https for every other host; where to reach a
registry (mirrors, insecure registries) is endpoints.py's."""
from __future__ import annotations

import http.client
import json
import socket
import ssl
import urllib.parse
from collections.abc import Callable
from typing import BinaryIO, Protocol, TypeVar, runtime_checkable

from brandpy.images import manifests as mf
from brandpy.images.auth import Credentials, parse_challenge
from brandpy.images.compression import Reader
from brandpy.images.endpoints import Endpoint, Registries
from brandpy.images.reference import Reference
from brandpy.images.store import StoreError, sha256_bytes

_REDIRECTS = (301, 302, 303, 307, 308)
_MAX_MANIFEST = 4 << 20


class RegistryError(StoreError):
    def __init__(self, message: str, status: int = 0):
        super().__init__(message)
        self.status = status

    @property
    def http_status(self) -> int:
        return daemon_status(self.status)


def daemon_status(registry_status: int) -> int:
    """What the daemon answers when a registry fails it: the registry's own
    4xx (401, 404, 429...); a registry that cannot be reached (status 0) or
    fails makes the image unavailable, which Docker says with 404 (as for
    "pull access denied")."""
    return registry_status if 400 <= registry_status < 500 else 404


def _error_detail(body: bytes) -> str:
    try:
        errors = json.loads(body).get("errors") or []
        return "; ".join(f"{e.get('code', '').lower().replace('_', ' ')}: {e.get('message', '')}".strip(": ")
                         for e in errors)
    except (ValueError, AttributeError):
        return body[:200].decode(errors="replace").strip()


class Client:
    """One repository on one registry."""

    def __init__(self, ref: Reference, creds: Credentials | None = None, timeout: float = 60,
                 endpoint: Endpoint | None = None):
        """endpoint: where to reach the repository (a mirror, an insecure
        registry); by default the reference's registry."""
        self.ref = ref
        self.endpoint = endpoint or Registries().endpoint(ref.registry_host)
        self.host = self.endpoint.host
        self.repo = ref.path
        self.scheme = self.endpoint.scheme
        self.creds = creds
        self.timeout = timeout
        self._auth: str | None = None   # Authorization header that worked last
        self._tokens: dict[tuple[str, str], str] = {}

    # ---- transport --------------------------------------------------------
    def _connect(self, scheme: str, netloc: str) -> http.client.HTTPConnection:
        if scheme == "https":
            context = ssl.create_default_context()
            if self.endpoint.insecure and netloc == self.host:
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
            return http.client.HTTPSConnection(netloc, timeout=self.timeout, context=context)
        return http.client.HTTPConnection(netloc, timeout=self.timeout)

    def _send(self, method: str, url: str, headers: dict[str, str], body: bytes | Reader | None,
              auth: bool) -> http.client.HTTPResponse:
        u = urllib.parse.urlsplit(url)
        conn = self._connect(u.scheme, u.netloc)
        hdrs = dict(headers)
        if auth and self._auth:
            hdrs["Authorization"] = self._auth
        target = u.path + (f"?{u.query}" if u.query else "")
        try:
            conn.request(method, target, body=body, headers=hdrs)
            resp = conn.getresponse()
        except (OSError, http.client.HTTPException) as e:
            conn.close()
            if isinstance(e, ssl.SSLError) and self.endpoint.insecure and u.scheme == "https" \
                    and u.netloc == self.host:
                # An insecure registry that does not speak TLS: plain HTTP, as dockerd falls back.
                self.scheme = "http"
                if isinstance(body, _Rewindable):
                    body.seek(0)
                return self._send(method, urllib.parse.urlunsplit(u._replace(scheme="http")),
                                  headers, body, auth)
            raise RegistryError(f"cannot reach registry {u.netloc} ({e.__class__.__name__}: {e}); check that "
                                "it is running and the name is right") from None
        return resp

    def request(self, method: str, path: str, headers: dict[str, str] | None = None,
                body: bytes | Reader | None = None, actions: str = "pull",
                extra_scopes: tuple[str, ...] = ()) -> http.client.HTTPResponse:
        """Send a request, answering one auth challenge and following redirects."""
        url = path if "://" in path else f"{self.scheme}://{self.host}{path}"
        headers = headers or {}
        resp = self._send(method, url, headers, body, auth=True)
        if resp.status == 401:
            challenge = resp.getheader("WWW-Authenticate", "")
            resp.read()
            if isinstance(body, _Rewindable):
                body.seek(0)
            self._authenticate(challenge, actions, extra_scopes)
            resp = self._send(method, url, headers, body, auth=True)
        hops = 0
        while resp.status in _REDIRECTS and method in ("GET", "HEAD") and hops < 5:
            location = urllib.parse.urljoin(url, resp.getheader("Location", ""))
            resp.read()
            same = urllib.parse.urlsplit(location).netloc == urllib.parse.urlsplit(url).netloc
            url, hops = location, hops + 1
            # Blob storage behind a redirect must not see our registry credentials.
            resp = self._send(method, url, headers, None, auth=same)
        return resp

    def _authenticate(self, challenge: str, actions: str, extra_scopes: tuple[str, ...]) -> None:
        scheme, params = parse_challenge(challenge)
        if scheme == "basic":
            if self.creds is None:
                raise RegistryError(f"{self.host} requires a login: add credentials to "
                                    "~/.docker/config.json (docker login)", 401)
            self._auth = self.creds.basic_header()
            return
        if scheme != "bearer" or "realm" not in params:
            raise RegistryError(f"{self.host} answered 401 with an unsupported challenge {challenge!r}", 401)
        scopes = [f"repository:{self.repo}:{actions}", *extra_scopes]
        if params.get("scope") and params["scope"] not in scopes:
            scopes.insert(0, params["scope"])
        key = (params["realm"], " ".join(scopes))
        if key not in self._tokens:
            self._tokens[key] = self._fetch_token(params["realm"], params.get("service"), scopes)
        self._auth = "Bearer " + self._tokens[key]

    def _fetch_token(self, realm: str, service: str | None, scopes: list[str]) -> str:
        query = ([("service", service)] if service else []) + [("scope", s) for s in scopes]
        url = realm + ("&" if "?" in realm else "?") + urllib.parse.urlencode(query)
        u = urllib.parse.urlsplit(url)
        if u.scheme not in ("http", "https"):
            raise RegistryError(f"token realm {realm!r} is not an http(s) URL", 401)
        headers = {"Authorization": self.creds.basic_header()} if self.creds else {}
        resp = self._send("GET", url, headers, None, auth=False)
        body = resp.read()
        if resp.status != 200:
            what = "the credentials were refused" if resp.status in (401, 403) else f"it answered {resp.status}"
            raise RegistryError(f"token server {u.netloc} gave no token for {self.repo} ({what}: "
                                f"{_error_detail(body)}); check ~/.docker/config.json (docker login)",
                                resp.status)
        try:
            doc = json.loads(body)
            return doc.get("token") or doc["access_token"]
        except (ValueError, KeyError):
            raise RegistryError(f"token server {u.netloc} sent an answer without a token", 401) from None

    def _fail(self, resp: http.client.HTTPResponse, what: str) -> RegistryError:
        detail = _error_detail(resp.read())
        name = f"{self.host}/{self.repo}"
        if resp.status in (401, 403):
            msg = (f"access to {name} denied ({resp.status}{': ' + detail if detail else ''}): the repository "
                   "does not exist or needs a login; add credentials to ~/.docker/config.json (docker login)")
        elif resp.status == 404:
            msg = f"{what} not found{': ' + detail if detail else ''}"
        elif resp.status == 429:
            msg = f"{self.host} is rate-limiting requests (429 Too Many Requests); wait and try again"
        else:
            msg = (f"registry {self.host} answered {resp.status} {resp.reason} for {what}"
                   f"{': ' + detail if detail else ''}; try again later")
        return RegistryError(msg, resp.status)

    # ---- API ---------------------------------------------------------------
    def get_manifest(self, reference: str) -> tuple[bytes, str, str]:
        """(raw manifest, media type, digest) for a tag or digest; verifies the
        digest when fetched by digest."""
        resp = self.request("GET", f"/v2/{self.repo}/manifests/{reference}", {"Accept": mf.ACCEPT})
        if resp.status != 200:
            raise self._fail(resp, f"manifest for {self.ref.familiar_name}:{reference}"
                             if not reference.startswith("sha256:") else f"manifest {reference}")
        raw = resp.read(_MAX_MANIFEST + 1)
        if len(raw) > _MAX_MANIFEST:
            raise RegistryError(f"manifest {reference} from {self.host} is larger than 4 MiB; refusing it")
        digest = sha256_bytes(raw)
        if reference.startswith("sha256:") and digest != reference:
            raise RegistryError(f"manifest {reference} from {self.host} failed digest verification "
                                f"(content is {digest}); the registry or a proxy altered it")
        return raw, mf.media_type_of(raw, resp.getheader("Content-Type")), digest

    def open_blob(self, digest: str) -> http.client.HTTPResponse:
        resp = self.request("GET", f"/v2/{self.repo}/blobs/{digest}")
        if resp.status != 200:
            raise self._fail(resp, f"blob {digest}")
        return resp

    def blob_exists(self, digest: str) -> bool:
        resp = self.request("HEAD", f"/v2/{self.repo}/blobs/{digest}", actions="pull,push")
        resp.read()
        if resp.status in (200, 404):
            return resp.status == 200
        raise self._fail(resp, f"blob {digest}")

    def mount_blob(self, digest: str, from_repo: str) -> str | None:
        """Cross-repository mount; None if mounted, else an upload URL to use instead."""
        q = urllib.parse.urlencode({"mount": digest, "from": from_repo})
        resp = self.request("POST", f"/v2/{self.repo}/blobs/uploads/?{q}", {"Content-Length": "0"},
                            b"", actions="pull,push", extra_scopes=(f"repository:{from_repo}:pull",))
        resp.read()
        if resp.status == 201:
            return None
        if resp.status == 202:
            return urllib.parse.urljoin(f"{self.scheme}://{self.host}/", resp.getheader("Location", ""))
        raise self._fail(resp, f"mount of blob {digest}")

    def start_upload(self) -> str:
        resp = self.request("POST", f"/v2/{self.repo}/blobs/uploads/", {"Content-Length": "0"}, b"",
                            actions="pull,push")
        resp.read()
        if resp.status != 202:
            raise self._fail(resp, "blob upload")
        return urllib.parse.urljoin(f"{self.scheme}://{self.host}/", resp.getheader("Location", ""))

    def upload_blob(self, location: str, digest: str, src: BinaryIO, size: int,
                    on_progress: Callable[[int], None] | None = None) -> None:
        """Monolithic upload (PUT with the whole blob) to an upload location."""
        sep = "&" if "?" in location else "?"
        body = _ProgressReader(src, on_progress) if on_progress else src
        resp = self.request("PUT", f"{location}{sep}digest={urllib.parse.quote(digest)}",
                            {"Content-Type": "application/octet-stream", "Content-Length": str(size)},
                            body, actions="pull,push")
        resp.read()
        if resp.status not in (201, 204):
            raise self._fail(resp, f"upload of blob {digest}")

    def put_manifest(self, reference: str, raw: bytes, media_type: str) -> str:
        resp = self.request("PUT", f"/v2/{self.repo}/manifests/{reference}",
                            {"Content-Type": media_type, "Content-Length": str(len(raw))}, raw,
                            actions="pull,push")
        resp.read()
        if resp.status not in (200, 201):
            raise self._fail(resp, f"manifest {reference}")
        return resp.getheader("Docker-Content-Digest") or sha256_bytes(raw)


@runtime_checkable
class _Rewindable(Protocol):
    """A body that can be sent again after an auth challenge."""

    def seek(self, pos: int, /) -> object: ...


class _ProgressReader:
    def __init__(self, f: BinaryIO, cb: Callable[[int], None]):
        self.f, self.cb, self.n = f, cb, 0

    def read(self, size: int = -1) -> bytes:
        data = self.f.read(size)
        self.n += len(data)
        self.cb(self.n)
        return data

    def seek(self, pos: int) -> None:
        self.f.seek(pos)
        self.n = pos


# Errors a dropped connection raises while a body is streamed.
STREAM_ERRORS = (http.client.HTTPException, ConnectionError, socket.timeout, ssl.SSLError)


T = TypeVar("T")


def on_endpoints(ref: Reference, creds: Credentials | None, registries: Registries | None,
                 action: Callable[[Client], T]) -> T:
    """action on the first of the registries' endpoints for ref that serves
    it: a Docker Hub image is tried on each mirror first, and a mirror that
    fails in any way (unreachable, no such image, bad content) passes it
    on to the next, as dockerd does; the registry itself is last. The
    registry's credentials are not for a mirror's operator."""
    *mirrors, origin = (registries or Registries()).pull_endpoints(ref)
    for endpoint in mirrors:
        try:
            return action(Client(ref, None, endpoint=endpoint))
        except (StoreError, ValueError, KeyError):
            continue
    return action(Client(ref, creds, endpoint=origin))
