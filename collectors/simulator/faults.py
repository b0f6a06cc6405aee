"""Run-time fault knobs for the simulated tenant, per route, and the ASGI layer applying them.

``FaultController.set(route, kind, ...)`` arms a fault on a named route (``"*"`` for all routes of
both apps); ``times`` bounds how often it fires. Transport-level faults (reset, truncated body,
drip, hang) reach below Starlette to the connection's asyncio transport, which uvicorn's
per-request ``send`` callable carries; a reset sets ``SO_LINGER`` 0 and aborts, so the client sees
an RST (reference/reliability.md section 2). Semantic faults (foreign nextLink, duplicated items,
expired skiptoken, token expiring mid-paging) are taken by the Graph paging code itself.
"""

from __future__ import annotations

import asyncio
import collections
import email.utils
import json
import socket
import struct
import threading
import time
import zlib
from collections.abc import AsyncIterator, Callable, Collection
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from starlette.routing import Match, Router
from starlette.types import ASGIApp, Message, Receive, Scope, Send

FaultKind = Literal[
    "throttle",
    "status",
    "reset",
    "truncate",
    "drip",
    "hang",
    "gzip_bomb",
    "oversized",
    "html",
    "foreign_next_link",
    "duplicate_items",
    "expired_skiptoken",
    "token_expiry",
]
RetryAfterMode = Literal["seconds", "fractional", "http-date", "absent"]
SEMANTIC: frozenset[str] = frozenset(
    {"foreign_next_link", "duplicate_items", "expired_skiptoken", "token_expiry"}
)
AppKind = Literal["graph", "harness"]


@dataclass
class Fault:
    """One armed fault. Parameters not used by its kind are ignored."""

    kind: FaultKind
    route: str = "*"
    times: int | None = None
    """How many requests it affects; None until cleared."""
    retry_after: RetryAfterMode = "seconds"
    retry_after_seconds: float = 2.0
    status: int = 503
    after_bytes: int | None = None
    """reset: abort after this many body bytes (None: before any response)."""
    chunk: int = 64
    interval: float = 0.2
    hang_seconds: float = 30.0
    size: int = 64 * 1024 * 1024
    """gzip_bomb: decompressed size; oversized: body size."""
    foreign_host: str = "localhost"
    """foreign_next_link: host put into @odata.nextLink (same server, another host name)."""
    duplicates: int = 3
    after_pages: int = 1
    fired: int = 0


@dataclass(frozen=True)
class RequestRecord:
    """A request as the simulator saw it (for assertions about client behaviour)."""

    route: str
    method: str
    path: str
    query: str
    host: str
    authorized: bool
    wall: float
    monotonic: float


@dataclass
class FaultController:
    """Thread-safe registry of armed faults and a log of requests received."""

    rate_limits_enabled: bool = True
    """Whether the natural limits (Graph reporting 5/10 s per app, Harness per key) apply."""
    rate_clock: Callable[[], float] = time.monotonic
    """Seconds for the rate windows: real time (a frozen scenario clock would never let a
    window slide); tests may swap in a fake to move time without waiting."""
    _faults: list[Fault] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    requests: collections.deque[RequestRecord] = field(
        default_factory=lambda: collections.deque(maxlen=10_000)
    )
    rate_history: dict[str, collections.deque[float]] = field(default_factory=dict)

    def set(self, route: str, kind: FaultKind, *, times: int | None = None, **params: Any) -> Fault:
        """Arm ``kind`` on ``route`` (a route name, or ``"*"``) and return it."""
        fault = Fault(kind=kind, route=route, times=times, **params)
        with self._lock:
            self._faults.append(fault)
        return fault

    def clear(self, route: str | None = None) -> None:
        """Disarm every fault on ``route`` (all routes when None)."""
        with self._lock:
            self._faults = [f for f in self._faults if route is not None and f.route != route]

    def reset(self) -> None:
        """Disarm everything, forget requests and rate-limit history, re-enable natural limits."""
        with self._lock:
            self._faults.clear()
            self.requests.clear()
            self.rate_history.clear()
            self.rate_limits_enabled = True

    def armed(self) -> list[Fault]:
        with self._lock:
            return [replace(f) for f in self._faults]

    def take(self, route: str, kinds: Collection[str]) -> Fault | None:
        """Consume one use of the first armed fault of ``kinds`` matching ``route``."""
        with self._lock:
            for fault in self._faults:
                if fault.kind in kinds and fault.route in (route, "*"):
                    fault.fired += 1
                    if fault.times is not None:
                        fault.times -= 1
                        if fault.times <= 0:
                            self._faults.remove(fault)
                    return replace(fault)
        return None

    def peek(self, route: str, kind: str) -> Fault | None:
        """The first armed fault of ``kind`` on ``route`` without consuming it."""
        with self._lock:
            return next(
                (replace(f) for f in self._faults if f.kind == kind and f.route in (route, "*")),
                None,
            )

    def record(self, rec: RequestRecord) -> None:
        self.requests.append(rec)

    def over_limit(self, key: str, limit: int, window: float, now: float) -> float | None:
        """Count a request against ``key``; return seconds until allowed when over the limit."""
        if not self.rate_limits_enabled:
            return None
        with self._lock:
            history = self.rate_history.setdefault(key, collections.deque())
            while history and history[0] <= now - window:
                history.popleft()
            if len(history) >= limit:
                return max(0.0, history[0] + window - now)
            history.append(now)
            return None


def retry_after_value(fault: Fault) -> str | None:
    """The Retry-After header for ``fault``'s mode."""
    if fault.retry_after == "absent":
        return None
    if fault.retry_after == "fractional":
        return f"{fault.retry_after_seconds:.3f}"
    if fault.retry_after == "http-date":
        return email.utils.formatdate(time.time() + fault.retry_after_seconds, usegmt=True)
    return str(max(1, round(fault.retry_after_seconds)))


def transport_of(send: Send) -> asyncio.Transport | None:
    """The connection's transport, reached through uvicorn's bound ``send`` method."""
    transport = getattr(getattr(send, "__self__", None), "transport", None)
    return transport if isinstance(transport, asyncio.BaseTransport) else None  # type: ignore[return-value]


async def reset_connection(send: Send) -> None:
    """Abort the connection with an RST (SO_LINGER 0), then let uvicorn notice."""
    transport = transport_of(send)
    if transport is None:
        raise RuntimeError("no transport to reset")
    sock = transport.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()
    for _ in range(5):
        await asyncio.sleep(0)


async def close_connection(send: Send) -> None:
    transport = transport_of(send)
    if transport is not None:
        transport.close()
    for _ in range(5):
        await asyncio.sleep(0)


class _Captured:
    def __init__(self) -> None:
        self.status = 200
        self.headers: list[tuple[bytes, bytes]] = []
        self.body = bytearray()

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
            self.headers = list(message.get("headers", []))
        elif message["type"] == "http.response.body":
            self.body.extend(message.get("body", b""))


def _error_body(app_kind: AppKind, status: int) -> tuple[bytes, bytes]:
    body: dict[str, Any]
    if app_kind == "graph" and status == 429:
        body = {
            "error": {
                "code": "TooManyRequests",
                "message": "Please retry again later.",
                "innerError": {"code": "429", "message": "Please retry after", "status": "429"},
            }
        }
        return json.dumps(body).encode(), b"application/json"
    if app_kind == "graph" and status in (500, 503):
        code = "generalException" if status == 500 else "serviceNotAvailable"
        message = "General exception while processing." if status == 500 else "Service unavailable."
        return json.dumps(
            {"error": {"code": code, "message": message}}
        ).encode(), b"application/json"
    if app_kind == "harness" and status == 500:
        body = {
            "status": "ERROR",
            "code": "UNKNOWN_ERROR",
            "message": "Oops, something went wrong on our end. Please contact Harness Support.",
            "correlationId": "sim",
            "detailedMessage": None,
            "responseMessages": [],
            "metadata": None,
        }
        return json.dumps(body).encode(), b"application/json"
    if status == 429:
        return b"Too Many Requests", b"text/plain; charset=utf-8"
    reason = {502: "Bad Gateway", 503: "Service Unavailable", 504: "Gateway Timeout"}.get(
        status, "Error"
    )
    title = f"{status} {reason}"
    html = f"<html><head><title>{title}</title></head><body><h1>{title}</h1></body></html>"
    return html.encode(), b"text/html"


HTML_LOGIN = (
    b"<!DOCTYPE html><html><head><title>Sign in to your account</title></head>"
    b"<body><form method='post' action='/login'><input name='loginfmt'></form></body></html>"
)


class FaultMiddleware:
    """Outermost ASGI layer: records requests and applies armed transport/status faults."""

    def __init__(
        self, app: ASGIApp, router: Router, controller: FaultController, app_kind: AppKind
    ) -> None:
        self.app = app
        self.router = router
        self.controller = controller
        self.app_kind = app_kind

    def route_name(self, scope: Scope) -> str:
        for route in self.router.routes:
            match, _ = route.matches(scope)
            if match == Match.FULL:
                return str(getattr(route, "name", "") or "")
        return ""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        name = self.route_name(scope)
        scope.setdefault("state", {})["route_name"] = name
        headers = {k.decode().lower(): v.decode() for k, v in scope.get("headers", [])}
        self.controller.record(
            RequestRecord(
                name,
                scope["method"],
                scope["path"],
                scope.get("query_string", b"").decode(),
                headers.get("host", ""),
                "authorization" in headers or "x-api-key" in headers,
                time.time(),
                time.monotonic(),
            )
        )
        fault = self.controller.take(name, _TRANSPORT_KINDS)
        if fault is None:
            await self.app(scope, receive, send)
            return
        await self.apply(fault, scope, receive, send)

    async def apply(self, fault: Fault, scope: Scope, receive: Receive, send: Send) -> None:
        handler: Callable[[Fault, Scope, Receive, Send], Any] = getattr(self, "_" + fault.kind)
        await handler(fault, scope, receive, send)

    async def _respond(
        self,
        send: Send,
        status: int,
        body: bytes,
        content_type: bytes,
        extra: list[tuple[bytes, bytes]] | None = None,
    ) -> None:
        headers = [(b"content-type", content_type), (b"content-length", str(len(body)).encode())]
        await send(
            {"type": "http.response.start", "status": status, "headers": headers + (extra or [])}
        )
        await send({"type": "http.response.body", "body": body})

    async def _throttle(self, fault: Fault, scope: Scope, receive: Receive, send: Send) -> None:
        body, content_type = _error_body(self.app_kind, 429)
        value = retry_after_value(fault)
        await self._respond(
            send, 429, body, content_type, [(b"retry-after", value.encode())] if value else []
        )

    async def _status(self, fault: Fault, scope: Scope, receive: Receive, send: Send) -> None:
        body, content_type = _error_body(self.app_kind, fault.status)
        value = (
            retry_after_value(fault)
            if fault.status == 503 and fault.retry_after != "absent"
            else None
        )
        await self._respond(
            send,
            fault.status,
            body,
            content_type,
            [(b"retry-after", value.encode())] if value else [],
        )

    async def _html(self, fault: Fault, scope: Scope, receive: Receive, send: Send) -> None:
        await self._respond(send, 200, HTML_LOGIN, b"text/html; charset=utf-8")

    async def _capture(self, scope: Scope, receive: Receive) -> _Captured:
        captured = _Captured()
        await self.app(scope, receive, captured.send)
        return captured

    async def _reset(self, fault: Fault, scope: Scope, receive: Receive, send: Send) -> None:
        if fault.after_bytes is not None:
            captured = await self._capture(scope, receive)
            await send(
                {
                    "type": "http.response.start",
                    "status": captured.status,
                    "headers": captured.headers,
                }
            )
            await send(
                {
                    "type": "http.response.body",
                    "body": bytes(captured.body[: fault.after_bytes]),
                    "more_body": True,
                }
            )
        await reset_connection(send)

    async def _truncate(self, fault: Fault, scope: Scope, receive: Receive, send: Send) -> None:
        captured = await self._capture(scope, receive)
        cut = fault.after_bytes if fault.after_bytes is not None else len(captured.body) // 2
        await send(
            {"type": "http.response.start", "status": captured.status, "headers": captured.headers}
        )
        await send(
            {"type": "http.response.body", "body": bytes(captured.body[:cut]), "more_body": True}
        )
        await close_connection(send)

    async def _drip(self, fault: Fault, scope: Scope, receive: Receive, send: Send) -> None:
        captured = await self._capture(scope, receive)
        await send(
            {"type": "http.response.start", "status": captured.status, "headers": captured.headers}
        )
        body = bytes(captured.body)
        for offset in range(0, len(body), fault.chunk):
            await send(
                {
                    "type": "http.response.body",
                    "body": body[offset : offset + fault.chunk],
                    "more_body": True,
                }
            )
            await asyncio.sleep(fault.interval)
        await send({"type": "http.response.body", "body": b""})

    async def _hang(self, fault: Fault, scope: Scope, receive: Receive, send: Send) -> None:
        await asyncio.sleep(fault.hang_seconds)
        await close_connection(send)

    async def _stream(
        self, send: Send, headers: list[tuple[bytes, bytes]], chunks: AsyncIterator[bytes]
    ) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        async for chunk in chunks:
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b""})

    async def _gzip_bomb(self, fault: Fault, scope: Scope, receive: Receive, send: Send) -> None:
        headers = [(b"content-type", b"application/json"), (b"content-encoding", b"gzip")]
        await self._stream(send, headers, _gzip_chunks(fault.size))

    async def _oversized(self, fault: Fault, scope: Scope, receive: Receive, send: Send) -> None:
        key = b"value" if self.app_kind == "graph" else b"Resources"
        await self._stream(
            send, [(b"content-type", b"application/json")], _big_json(key, fault.size)
        )


_TRANSPORT_KINDS = frozenset(
    {"throttle", "status", "reset", "truncate", "drip", "hang", "gzip_bomb", "oversized", "html"}
)


async def _gzip_chunks(size: int) -> AsyncIterator[bytes]:
    """A gzip stream that inflates to ``size`` bytes of valid (whitespace-padded) JSON."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    yield compressor.compress(b'{"value": [')
    block = b" " * (1024 * 1024)
    remaining = size
    while remaining > 0:
        piece = block[: min(remaining, len(block))]
        remaining -= len(piece)
        out = compressor.compress(piece)
        if out:
            yield out
        await asyncio.sleep(0)
    yield compressor.compress(b"]}") + compressor.flush()


async def _big_json(key: bytes, size: int) -> AsyncIterator[bytes]:
    """A syntactically valid JSON page of about ``size`` bytes."""
    item = b'{"id":"' + b"0" * 36 + b'","padding":"' + b"x" * 900 + b'"}'
    yield b'{"' + key + b'":[' + item
    written = len(item)
    batch = (b"," + item) * 64
    while written < size:
        yield batch
        written += len(batch)
        await asyncio.sleep(0)
    yield b"]}"
