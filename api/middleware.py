"""The HTTP front door: who may send a body, how big it may be, and the headers every answer
carries. Pure ASGI (no ``BaseHTTPMiddleware``), so streamed answers (SSE) pass untouched.

FastAPI reads and parses a request body *before* it resolves the route's dependencies, the
bearer check included: without this guard an anonymous client could make every worker read
and parse hundreds of megabytes. Here a request that carries a body is authenticated first
(bearer token; for platform callbacks: a known subscriber and both signature headers), then
its body is read up to ``max_body_bytes`` and handed on. Role checks stay in the routes.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Awaitable, Callable, MutableMapping
from http.cookies import CookieError, SimpleCookie
from typing import Any

from fastapi import HTTPException
from starlette.concurrency import run_in_threadpool

from api.auth import LOGIN_PATH, PRINCIPAL_STATE, identify, refuse_if_locked
from api.deps import ApiContext
from pipeline.casework.outbox import SIGNATURE_HEADER, TIMESTAMP_HEADER
from pipeline.config import unpaired_surrogate as _unpaired_surrogate

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]

_BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# The UI needs blob: for clips and pictures fetched with the bearer header, and sets a few
# inline widths; scripts only from our own files. /docs loads Swagger from a CDN: no CSP there.
_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' blob: data:; media-src 'self' blob:; connect-src 'self'; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
_HEADERS = (
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=()"),
)
_NO_CSP_PREFIXES = ("/docs", "/redoc")


class FrontDoor:
    def __init__(self, app: App, ctx: ApiContext) -> None:
        self.app = app
        self.ctx = ctx

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        send = self._with_headers(scope, send)
        if scope["method"] not in _BODY_METHODS:
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1")
                   for k, v in scope.get("headers", [])}  # fmt: skip
        refused = await run_in_threadpool(self._admit, scope, headers)  # token lookup: I/O
        if refused is not None:
            await _answer(send, *refused)
            return
        limit = self.ctx.max_body_bytes
        declared = headers.get("content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            await _answer(send, 413, f"request body larger than {limit} bytes", {})
            return
        body = bytearray()
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            if len(body) > limit:
                await _answer(send, 413, f"request body larger than {limit} bytes", {})
                return
            more = bool(message.get("more_body", False))
        kind = headers.get("content-type", "")
        if body and (not kind or "json" in kind):  # FastAPI parses both as JSON
            problem = _json_problem(bytes(body))
            if problem is not None:
                await _answer(send, 422, problem, {})
                return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": bytes(body), "more_body": False}
            return await receive()  # after the body: wait for the disconnect

        await self.app(scope, replay, send)

    def _admit(
        self, scope: Scope, headers: dict[str, str]
    ) -> tuple[int, str, dict[str, str]] | None:
        """None if the request may send its body, else (status, detail, headers)."""
        path: str = scope.get("path", "")
        client = scope.get("client")
        address = client[0] if client else "unknown"
        if path.startswith("/callbacks/"):
            try:
                refuse_if_locked(self.ctx, address, "refused callbacks")
            except HTTPException as exc:
                return exc.status_code, str(exc.detail), dict(exc.headers or {})
            subscriber = path.removeprefix("/callbacks/")
            if subscriber not in self.ctx.secrets:
                return 404, f"unknown subscriber {subscriber!r}", {}
            if not headers.get(TIMESTAMP_HEADER.lower()) or not headers.get(
                SIGNATURE_HEADER.lower()
            ):
                return 401, f"missing {TIMESTAMP_HEADER} or {SIGNATURE_HEADER}", {}
            return None
        if not self.ctx.auth_required:
            return None
        if path == LOGIN_PATH:  # who it is is what the body says; its size is still capped
            try:
                refuse_if_locked(self.ctx, address, "failed authentications")
            except HTTPException as exc:
                return exc.status_code, str(exc.detail), dict(exc.headers or {})
            return None
        cookies = SimpleCookie()
        with contextlib.suppress(CookieError):  # a malformed cookie header names nobody
            cookies.load(headers.get("cookie", ""))
        try:
            who = identify(self.ctx, address, headers, {k: m.value for k, m in cookies.items()},
                           scope["method"])  # fmt: skip
        except HTTPException as exc:
            return exc.status_code, str(exc.detail), dict(exc.headers or {})
        # the route's role check takes it from here instead of looking the token up again
        scope.setdefault("state", {})[PRINCIPAL_STATE] = who
        return None

    @staticmethod
    def _with_headers(scope: Scope, send: Send) -> Send:
        path: str = scope.get("path", "")
        extra = list(_HEADERS)
        if not path.startswith(_NO_CSP_PREFIXES):
            extra.append((b"content-security-policy", _CSP.encode()))

        async def wrapped(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {k.lower() for k, _ in message.get("headers", [])}
                message["headers"] = [
                    *message.get("headers", []),
                    *((k, v) for k, v in extra if k not in present),
                ]
            await send(message)

        return wrapped


def _refuse_constant(name: str) -> None:
    raise ValueError(name)


def _json_problem(body: bytes) -> str | None:
    """Python's JSON reader accepts what JSON does not, and each fails later with a 500:
    ``NaN``/``Infinity`` (the 422 that echoes them cannot be written back as JSON) and a lone
    surrogate escape (``"\\ud800"``: SQLite, cameras.toml and report hashes refuse it)."""
    try:
        value = json.loads(body, parse_constant=_refuse_constant)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None  # malformed: the route's own parser says where
    except RecursionError:
        return "body nests too deeply"
    except ValueError as exc:  # from _refuse_constant
        return f"{exc} is not a JSON number"
    if _unpaired_surrogate(value):
        return "body is not valid Unicode (unpaired surrogate escape)"
    return None


async def _answer(send: Send, status: int, detail: str, headers: dict[str, str]) -> None:
    body = json.dumps({"detail": detail}, ensure_ascii=False).encode()
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    raw += [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})
