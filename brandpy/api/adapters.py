"""Extension adapters: the protocol between the daemon and its pre- and
post-hooks, and the middleware that runs them (chain in adapter_config.py).

A hook receives one JSON object (POSTed to its url, or passed to its Python
function):

    {"Protocol": 1, "Type": "pre-hook" | "post-hook", "Adapter": NAME,
     "Request": {"Method": "POST", "Path": "/containers/create",
                 "Version": "1.50" | null, "Query": {"name": ["web"]},
                 "Headers": {...}, "Body": JSON | null},
     "Response": {"Status": 201, "Headers": {...}, "Body": JSON | null}}  (post)

and answers with a JSON object (HTTP 200; a 204, an empty body or a
function's None change nothing):

    {"Request": {"Query"?, "Headers"?, "Body"?}}    pre: serve this instead
    {"Response": {"Status"?, "Headers"?, "Body"?}}  post: send this instead
    {"Reject": {"Status": 403, "Message": "..."}}   either: answer with this error

Bodies are the JSON values of JSON requests and responses; other bodies are
null to hooks and pass unchanged (uploads stream through). Post-hooks see
only responses held whole: a streamed one (attach, exec start, logs, events,
stats, wait, pull and build progress, exports, the trace) is already on its
way to the client. A hook that fails (unreachable, too slow, an exception,
a malformed answer) fails the request with 502 and a message naming it.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import re
import sys
import traceback
from typing import Any

import aiohttp
from aiohttp import web
from multidict import CIMultiDict

from .adapter_config import Adapter, Chain
from .http import JSON_LIMIT, error
from .router import Handler

PROTOCOL = 1
VERSIONED = re.compile(r"^/v(\d+\.\d+)(/.*)$")
CHAIN_KEY = web.AppKey("adapters", Chain)
SESSION_KEY = web.AppKey("adapter_session", aiohttp.ClientSession)
GUIDE = "see README, 'Extension adapters'"


class AdapterFailure(Exception):
    """A hook could not be run or answered wrongly: 502 to the client."""


class Rejected(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _is_json(content_type: str) -> bool:
    return content_type in ("application/json", "text/json") or content_type.endswith("+json")


def _headers(headers: Any) -> dict[str, str]:
    return {k: ", ".join(headers.getall(k)) for k in dict.fromkeys(headers.keys())}


def _plain(obj: Any) -> Any:
    """A copy made of JSON types only: what an HTTP hook would get, so a
    Python hook cannot change the chain's state behind its answer."""
    return json.loads(json.dumps(obj))


async def describe_request(request: web.Request) -> tuple[dict[str, Any], bytes | None]:
    """The request as hooks see it, and its JSON body's bytes (read here,
    so the handler must be given them: see rebuild)."""
    match = VERSIONED.match(request.path)
    version, path = (match.group(1), match.group(2)) if match else (None, request.path)
    raw, body = None, None
    if request.body_exists and _is_json(request.content_type):
        raw = await request.content.read()
        if len(raw) > JSON_LIMIT:
            raise Rejected(413, f"request body too large: JSON bodies are limited to "
                                f"{JSON_LIMIT >> 20} MiB")
        try:
            body = json.loads(raw) if raw.strip() else None
        except ValueError:
            body = None     # the handler answers 400 for it
    return {"Method": request.method, "Path": path, "Version": version,
            "Query": {k: request.query.getall(k) for k in dict.fromkeys(request.query.keys())},
            "Headers": _headers(request.headers), "Body": body}, raw


async def _post(adapter: Adapter, payload: dict[str, Any], session: aiohttp.ClientSession) -> Any:
    async with session.post(adapter.url, json=payload,
                            timeout=aiohttp.ClientTimeout(total=adapter.timeout)) as r:
        text = await r.text()
    if r.status >= 300:
        raise AdapterFailure(f"adapter {adapter.name} ({adapter.url}) answered HTTP "
                             f"{r.status}: {text.strip()[:300]}")
    if r.status == 204 or not text.strip():
        return None
    try:
        return json.loads(text)
    except ValueError:
        raise AdapterFailure(f"adapter {adapter.name} ({adapter.url}) did not answer JSON: "
                             f"{text.strip()[:200]!r}") from None


async def _run_python(adapter: Adapter, payload: dict[str, Any]) -> Any:
    fn = adapter.function
    assert fn is not None
    if inspect.iscoroutinefunction(fn):
        return await fn(payload)
    # a plain function may block: off the loop, so other requests go on
    result = await asyncio.to_thread(fn, payload)
    return await result if inspect.isawaitable(result) else result


async def call(adapter: Adapter, payload: dict[str, Any], session: aiohttp.ClientSession | None,
               answers: str) -> dict[str, Any]:
    """Run one hook; its answer checked (answers: "Request" or "Response",
    what it may change). Raises Rejected or AdapterFailure."""
    who = f"adapter {adapter.name} ({adapter.where})"
    try:
        if adapter.function is not None:
            answer = await asyncio.wait_for(_run_python(adapter, _plain(payload)),
                                            adapter.timeout)
        else:
            assert session is not None
            answer = await _post(adapter, payload, session)
    except TimeoutError:
        raise AdapterFailure(f"{who} did not answer within {adapter.timeout:g} s") from None
    except aiohttp.ClientError as exc:
        raise AdapterFailure(f"{who} cannot be reached: {exc} (is it running? the adapters "
                             f"are configured with the daemon's --adapters)") from None
    except AdapterFailure:
        raise
    except Exception as exc:    # the hook's own bug: the request fails, the daemon goes on
        frame = traceback.extract_tb(exc.__traceback__)[-1]
        print(f"brandpy: {who} raised {exc.__class__.__name__}: {exc} "
              f"(at {frame.filename}:{frame.lineno})", file=sys.stderr)
        raise AdapterFailure(f"{who} raised {exc.__class__.__name__}: {exc}") from None
    if answer is None:
        return {}
    if not isinstance(answer, dict):
        raise AdapterFailure(f"{who} answered {type(answer).__name__}, not a JSON object "
                             f"({GUIDE})")
    unknown = sorted(set(answer) - {answers, "Reject"})
    if unknown:
        raise AdapterFailure(f"{who} answered with {unknown[0]!r}: a {payload['Type']} may "
                             f"answer {answers} or Reject ({GUIDE})")
    reject = answer.get("Reject")
    if reject is not None:
        status = reject.get("Status", 403) if isinstance(reject, dict) else None
        if not isinstance(status, int) or not 400 <= status <= 599:
            raise AdapterFailure(f"{who}: Reject needs a Status from 400 to 599 and a Message")
        raise Rejected(status, str(reject.get("Message") or f"rejected by {who}"))
    change = answer.get(answers)
    if change is not None and not isinstance(change, dict):
        raise AdapterFailure(f"{who}: {answers} must be a JSON object ({GUIDE})")
    return change or {}


def _str_map(who: str, what: str, value: Any, lists: bool = False) -> None:
    ok = isinstance(value, dict) and all(
        isinstance(v, str) or (lists and isinstance(v, list) and all(isinstance(x, str)
                                                                     for x in v))
        for v in value.values())
    if not ok:
        raise AdapterFailure(f"{who}: {what} must map names to "
                             f"{'strings or lists of strings' if lists else 'strings'}")


def apply_request(adapter: Adapter, desc: dict[str, Any], change: dict[str, Any], streamed: bool) -> dict[str, Any]:
    who = f"adapter {adapter.name} ({adapter.where})"
    for key in ("Method", "Path", "Version"):
        if key in change and change[key] != desc[key]:
            raise AdapterFailure(f"{who} changed the request's {key}: adapters may change "
                                 "its Query, Headers and Body only")
    if "Query" in change:
        _str_map(who, "Query", change["Query"], lists=True)
    if "Headers" in change:
        _str_map(who, "Headers", change["Headers"])
    if "Body" in change and change["Body"] != desc["Body"] and streamed:
        raise AdapterFailure(f"{who} changed the body of {desc['Method']} {desc['Path']}, "
                             "which is streamed: only JSON bodies can be changed")
    return {**desc, **{k: v for k, v in change.items() if k in ("Query", "Headers", "Body")}}


def rebuild(request: web.Request, original: dict[str, Any], final: dict[str, Any], raw: bytes | None
            ) -> web.Request:
    """The request the handler serves: the hooks' changes applied, and the
    JSON body read by describe_request handed back."""
    body = raw
    headers = dict(final["Headers"])
    if final["Body"] != original["Body"]:
        body = json.dumps(final["Body"]).encode() if final["Body"] is not None else b""
        headers = {k: v for k, v in headers.items()
                   if k.lower() not in ("content-length", "transfer-encoding", "content-type")}
        headers.update({"Content-Type": "application/json", "Content-Length": str(len(body))})
    changes: dict[str, Any] = {}
    if final["Query"] != original["Query"]:
        changes["rel_url"] = request.rel_url.with_query(
            [(k, v) for k, vs in final["Query"].items()
             for v in (vs if isinstance(vs, list) else [vs])])
    if headers != original["Headers"]:
        changes["headers"] = headers
    if changes:
        request = request.clone(**changes)
    if body is not None:
        # aiohttp's cache of read(): body_json and every later read() get it
        request._read_bytes = body
    return request


def describe_response(resp: web.StreamResponse) -> dict[str, Any] | None:
    """The response as post-hooks see it; None when it is streamed."""
    if not isinstance(resp, web.Response) or resp.prepared:
        return None
    body = resp.body
    if body is not None and not isinstance(body, (bytes, bytearray)):
        return None     # a payload aiohttp streams (a file)
    parsed = None
    if body and _is_json(resp.content_type):
        try:
            parsed = json.loads(body)
        except ValueError:
            parsed = None
    return {"Status": resp.status, "Headers": _headers(resp.headers), "Body": parsed}


def apply_response(adapter: Adapter, desc: dict[str, Any], change: dict[str, Any]) -> dict[str, Any]:
    who = f"adapter {adapter.name} ({adapter.where})"
    status = change.get("Status", desc["Status"])
    if not isinstance(status, int) or not 100 <= status <= 599:
        raise AdapterFailure(f"{who}: Response Status must be an HTTP status code")
    if "Headers" in change:
        _str_map(who, "Headers", change["Headers"])
    final = {**desc, **{k: v for k, v in change.items() if k in ("Status", "Headers", "Body")}}
    if final["Status"] in (204, 304) and final["Body"] is not None:
        raise AdapterFailure(f"{who}: a {final['Status']} response has no body")
    return final


def make_response(resp: web.Response, original: dict[str, Any], final: dict[str, Any]) -> web.Response:
    if final == original:
        return resp
    headers = CIMultiDict(final["Headers"])
    headers.popall("Content-Length", None)
    body = resp.body
    if final["Body"] != original["Body"]:
        body = json.dumps(final["Body"]).encode() if final["Body"] is not None else b""
        headers["Content-Type"] = "application/json"
    return web.Response(status=final["Status"], body=body, headers=headers)


def _failed(status: int, message: str) -> web.StreamResponse:
    return error(status, message)


@web.middleware
async def run_adapters(request: web.Request, handler: Handler) -> web.StreamResponse:
    chain = request.app[CHAIN_KEY]
    match = VERSIONED.match(request.path)
    path = match.group(2) if match else request.path
    pre = chain.matching("pre", request.method, path)
    post = chain.matching("post", request.method, path)
    if not pre and not post:
        return await handler(request)
    session = request.app.get(SESSION_KEY)
    try:
        original, raw = await describe_request(request)
        streamed = raw is None and request.body_exists
        desc = original
        for adapter in pre:
            change = await call(adapter, {"Protocol": PROTOCOL, "Type": "pre-hook",
                                          "Adapter": adapter.name, "Request": desc},
                                session, "Request")
            if change:
                desc = apply_request(adapter, desc, change, streamed)
        request = rebuild(request, original, desc, raw)
    except Rejected as exc:
        return _failed(exc.status, str(exc))
    except AdapterFailure as exc:
        return _failed(502, str(exc))
    resp = await handler(request)
    shown = describe_response(resp) if post else None
    if shown is None or not isinstance(resp, web.Response):     # (None for all but a Response)
        return resp
    final = shown
    try:
        for adapter in post:
            change = await call(adapter, {"Protocol": PROTOCOL, "Type": "post-hook",
                                          "Adapter": adapter.name, "Request": desc,
                                          "Response": final}, session, "Response")
            if change:
                final = apply_response(adapter, final, change)
    except Rejected as exc:
        return _failed(exc.status, str(exc))
    except AdapterFailure as exc:
        return _failed(502, str(exc))
    return make_response(resp, shown, final)


def install(app: web.Application, chain: Chain) -> None:
    """The chain for run_adapters (the outermost middleware, so hooks see
    Docker's error replies too), and an HTTP client for url adapters."""
    app[CHAIN_KEY] = chain
    if any(a.url for a in chain.pre + chain.post):
        async def open_session(app: web.Application) -> None:
            app[SESSION_KEY] = aiohttp.ClientSession()

        async def close_session(app: web.Application) -> None:
            await app[SESSION_KEY].close()

        app.on_startup.append(open_session)
        app.on_cleanup.append(close_session)
