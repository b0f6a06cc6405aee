"""The one HTTP policy every collector uses: pacing, retries, deadlines, size caps, paging.

Why each rule exists (reference/reliability.md sections 1.2-1.5, 4 and 6.3):

- Idempotent reads are retried on 429, 5xx, resets, timeouts and garbled bodies, with
  exponential backoff and full jitter; Retry-After (seconds, fractional, or HTTP-date) is
  honoured, and no request to the same API goes out before it.
- Each API has a client-side rate limiter so we pace under the documented limits instead of
  bouncing off them (Graph reporting: 5 requests / 10 s per app; Harness: 400/min per key).
- httpx timeouts bound the gap between chunks, not the request: a slow drip defeats them
  (EXP-7), so every attempt runs under `asyncio.timeout`.
- httpx decompresses without a cap (a 199 KB gzip bomb became 200 MB, EXP-7), so bodies are
  read raw and decompressed here, counting decoded bytes against a cap.
- Paging follows continuation links only to the configured origin, with a seen-set and a page
  cap so a loop or an endless listing ends.

Sleep and clocks are injected so tests never really wait.
"""

from __future__ import annotations

import asyncio
import json
import math
import random
import re
import time
import zlib
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, Literal

import httpx

from collectors.base import (
    AuthFailed,
    CollectorError,
    Forbidden,
    ForeignHost,
    SourceUnavailable,
    Throttled,
    UnexpectedPayload,
    sanitize_text,
)
from collectors.config import origin_of

Service = Literal["graph", "harness"]
Params = Mapping[str, str | int] | None


def utc_now() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


@dataclass
class HttpPolicy:
    """Retry, deadline and size limits, with injectable time for tests."""

    max_attempts: int = 5
    """Attempts per request, the first included."""
    backoff_base: float = 1.0
    backoff_cap: float = 60.0
    max_wait_in_poll: float = 120.0
    """A Retry-After longer than this ends the poll with `Throttled` instead of waiting."""
    max_retry_after: float = 3600.0
    """Absurd Retry-After values (86400, year 9999) are clamped to this."""
    deadline: float = 60.0
    """Seconds one attempt may take from sending to the last byte."""
    max_bytes: int = 32 * 1024 * 1024
    """Decoded body size cap (reference/reliability.md section 4 row 6)."""
    max_pages: int = 2000
    """Pages one listing may have before we call it a loop."""
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    monotonic: Callable[[], float] = time.monotonic
    wall_clock: Callable[[], datetime] = utc_now
    jitter: Callable[[], float] = random.random

    def backoff(self, attempt: int) -> float:
        """Full-jitter exponential backoff before retry number `attempt` (1-based)."""
        return self.jitter() * min(self.backoff_cap, self.backoff_base * 2.0 ** (attempt - 1))


class RateLimiter:
    """At most `max_requests` per `period` seconds, plus a 'not before' set by Retry-After."""

    def __init__(self, max_requests: int, period: float, policy: HttpPolicy) -> None:
        self.max_requests = max_requests
        self.period = period
        self._policy = policy
        self._sent: deque[float] = deque()
        self._not_before = 0.0

    def hold_until(self, moment: float) -> None:
        """Send nothing before `moment` (policy.monotonic time)."""
        self._not_before = max(self._not_before, moment)

    async def acquire(self) -> None:
        """Wait until a request may be sent, and count it."""
        while True:
            now = self._policy.monotonic()
            while self._sent and self._sent[0] <= now - self.period:
                self._sent.popleft()
            wait = self._not_before - now
            if len(self._sent) >= self.max_requests:
                wait = max(wait, self._sent[0] + self.period - now)
            if wait <= 0:
                self._sent.append(now)
                return
            await self._policy.sleep(wait)


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds to wait from a Retry-After header: float seconds or an HTTP-date.

    Negative values mean "now"; unparseable ones give None (use backoff instead).
    Graph has sent fractional values such as ``2.128`` (graph-api.md 6.1).
    """
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            moment = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        seconds = (moment - now).total_seconds()
    if not math.isfinite(seconds):
        return None
    return max(0.0, seconds)


@dataclass
class _Attempt:
    """What one attempt produced: a parsed body, or an error and whether to retry it."""

    body: Any = None
    error: CollectorError | None = None
    retry: bool = False
    wait: float | None = None
    redirect: str | None = None


_ACCEPT_ENCODING = "gzip, deflate"
"""We decompress ourselves (with a cap), so only ask for what zlib decodes."""


@dataclass
class ApiClient:
    """JSON over one `httpx.AsyncClient` under the policy, paced by one limiter per API."""

    client: httpx.AsyncClient
    service: Service
    policy: HttpPolicy = field(default_factory=HttpPolicy)
    limiter: RateLimiter | None = None

    async def get_json(
        self,
        url: str,
        *,
        params: Params = None,
        headers: Mapping[str, str] | None = None,
        permission: str = "",
    ) -> Any:
        """GET `url` and return its JSON, retrying per the policy.

        Args:
            url: an absolute URL under the configured origin.
            params: query parameters.
            headers: extra request headers.
            permission: what to name in `Forbidden` if the service answers 403.
        """
        return await self._request("GET", url, params, headers, None, permission)

    async def post_json(
        self, url: str, body: Any, *, params: Params = None, permission: str = ""
    ) -> Any:
        """POST a read-only query (Harness filter endpoints) and return its JSON.

        Only use this for endpoints that read: they are retried like GETs.
        """
        return await self._request("POST", url, params, None, body, permission)

    async def _request(
        self,
        method: str,
        url: str,
        params: Params,
        headers: Mapping[str, str] | None,
        body: Any,
        permission: str,
    ) -> Any:
        origin = origin_of(url)
        attempt = 0
        redirects = 0
        while True:
            attempt += 1
            outcome = await self._attempt(method, url, params, headers, body, permission)
            if outcome.redirect is not None:
                redirects += 1
                url = self._same_origin_redirect(origin, url, outcome.redirect, redirects)
                params = None
                attempt -= 1
                continue
            if outcome.error is None:
                return outcome.body
            if not outcome.retry or attempt >= self.policy.max_attempts:
                raise outcome.error
            wait = outcome.wait if outcome.wait is not None else self.policy.backoff(attempt)
            if self.limiter is not None and outcome.wait is not None:
                self.limiter.hold_until(self.policy.monotonic() + wait)
            await self.policy.sleep(wait)

    def _same_origin_redirect(self, origin: str, url: str, location: str, count: int) -> str:
        target = str(httpx.URL(url).join(location))
        if origin_of(target) != origin:
            host = httpx.URL(target).host
            raise ForeignHost(f"refused a redirect to another host ({host})", url_host=host)
        if count > 5:
            raise UnexpectedPayload("too many redirects")
        return target

    async def _attempt(
        self,
        method: str,
        url: str,
        params: Params,
        headers: Mapping[str, str] | None,
        body: Any,
        permission: str,
    ) -> _Attempt:
        if self.limiter is not None:
            await self.limiter.acquire()
        request_headers = {"Accept": "application/json", "Accept-Encoding": _ACCEPT_ENCODING}
        request_headers.update(headers or {})
        request = self.client.build_request(
            method, url, params=params, headers=request_headers, json=body
        )
        try:
            async with asyncio.timeout(self.policy.deadline):
                status, response_headers, raw = await self._send(request)
        except TimeoutError as error:
            failure = SourceUnavailable(
                f"{self.service}: no complete response within {self.policy.deadline:g} s"
            )
            failure.__cause__ = error
            return _Attempt(error=failure, retry=True)
        except httpx.TransportError as error:
            failure = SourceUnavailable(f"{self.service}: {type(error).__name__} {error}")
            failure.__cause__ = error
            return _Attempt(error=failure, retry=True)
        return self._interpret(status, response_headers, raw, permission)

    async def _send(self, request: httpx.Request) -> tuple[int, httpx.Headers, bytes]:
        response = await self.client.send(request, stream=True)
        try:
            declared = response.headers.get("content-length")
            if declared and declared.isdigit() and int(declared) > self.policy.max_bytes:
                raise UnexpectedPayload(
                    f"{self.service}: response declares {declared} bytes,"
                    f" over the {self.policy.max_bytes} byte cap"
                )
            raw = await read_capped(response, self.policy.max_bytes, self.service)
        finally:
            await response.aclose()
        return response.status_code, response.headers, raw

    def _interpret(
        self, status: int, headers: httpx.Headers, raw: bytes, permission: str
    ) -> _Attempt:
        if 200 <= status < 300:
            return self._parse_success(status, headers, raw)
        if status in (301, 302, 303, 307, 308) and "location" in headers:
            return _Attempt(redirect=headers["location"])
        summary = describe_error(raw, headers)
        code = error_code(raw)
        if status == 429 or status >= 500:
            return self._retryable(status, headers, summary)
        if status == 401:
            return _Attempt(error=AuthFailed(self._auth_message(code, summary), status=401))
        if status == 403 or (status == 400 and code == "USER_NOT_AUTHORIZED"):
            needed = missing_permission(raw, code, permission)
            message = f"{self.service}: not allowed ({summary}); grant {needed}"
            return _Attempt(error=Forbidden(message, permission=needed, status=status))
        return _Attempt(
            error=UnexpectedPayload(f"{self.service}: HTTP {status}: {summary}", status=status)
        )

    def _retryable(self, status: int, headers: httpx.Headers, summary: str) -> _Attempt:
        retry_after = parse_retry_after(headers.get("retry-after"), self.policy.wall_clock())
        if retry_after is not None:
            retry_after = min(retry_after, self.policy.max_retry_after)
        if status == 429:
            message = f"{self.service}: throttled (HTTP 429)"
            if retry_after is not None:
                message += f", asked to wait {retry_after:g} s"
            error: CollectorError = Throttled(message, retry_after=retry_after)
        else:
            error = SourceUnavailable(f"{self.service}: HTTP {status}: {summary}", status=status)
        if retry_after is not None and retry_after > self.policy.max_wait_in_poll:
            if self.limiter is not None:
                self.limiter.hold_until(self.policy.monotonic() + retry_after)
            return _Attempt(error=error, retry=False)
        return _Attempt(error=error, retry=True, wait=retry_after)

    def _auth_message(self, code: str, summary: str) -> str:
        if self.service == "graph":
            return f"graph: the access token was rejected ({summary})"
        return (
            f"harness: the API token was rejected ({summary}); it may be expired or for"
            " another account"
        )

    def _parse_success(self, status: int, headers: httpx.Headers, raw: bytes) -> _Attempt:
        if status == 204 or not raw.strip():
            return _Attempt(body=None)
        try:
            body = parse_json(raw)
        except UnexpectedPayload as error:
            kind = headers.get("content-type", "unknown type").split(";")[0]
            failure = UnexpectedPayload(f"{self.service}: {error} ({kind}, {len(raw)} bytes)")
            failure.__cause__ = error.__cause__
            # A garbled page has been seen on Graph audit logs (graph-api.md 7.5): retry it.
            return _Attempt(error=failure, retry=True)
        if isinstance(body, dict) and isinstance(body.get("error"), dict):
            # 200 with an error object is a failure, not an empty page (reliability.md 4 #23).
            summary = describe_error(raw, headers)
            return _Attempt(error=UnexpectedPayload(f"{self.service}: error in a 200: {summary}"))
        return _Attempt(body=body)

    async def iterate_graph_pages(
        self,
        url: str,
        *,
        params: Params = None,
        headers: Mapping[str, str] | None = None,
        permission: str = "",
    ) -> AsyncIterator[list[Any]]:
        """Yield each page's ``value`` list, following ``@odata.nextLink`` to the end.

        The nextLink is used whole (graph-api.md 1.4) but only to the configured origin: any
        other host, scheme or port raises `ForeignHost` before anything is sent there.
        """
        origin = origin_of(url)
        # The first page's full URL counts too: a nextLink back to it is a loop.
        seen: set[str] = {str(self.client.build_request("GET", url, params=params).url)}
        next_url: str | None = url
        next_params = params
        pages = 0
        while next_url is not None:
            pages += 1
            if pages > self.policy.max_pages:
                raise UnexpectedPayload(f"graph: more than {self.policy.max_pages} pages")
            page = await self.get_json(
                next_url, params=next_params, headers=headers, permission=permission
            )
            if not isinstance(page, dict) or not isinstance(page.get("value"), list):
                raise UnexpectedPayload("graph: page without a 'value' list")
            yield page["value"]
            link = page.get("@odata.nextLink")
            if link is None:
                return
            next_url = self._checked_link(link, origin, seen)
            next_params = None

    @staticmethod
    def _checked_link(link: object, origin: str, seen: set[str]) -> str:
        if not isinstance(link, str) or not link:
            raise UnexpectedPayload("graph: @odata.nextLink is not a URL")
        parsed = httpx.URL(link)
        if origin_of(link) != origin or parsed.userinfo:
            host = parsed.host or "?"
            raise ForeignHost(
                f"graph: refused an @odata.nextLink to another host ({host}); paging stopped",
                url_host=host,
            )
        if link in seen:
            raise UnexpectedPayload("graph: @odata.nextLink loop; paging stopped")
        seen.add(link)
        return link


async def read_capped(response: httpx.Response, max_bytes: int, service: str) -> bytes:
    """The response body, decompressed here with `max_bytes` as a hard cap on decoded size."""
    encoding = response.headers.get("content-encoding", "").strip().lower()
    if encoding in ("", "identity"):
        decoder = None
    elif encoding in ("gzip", "x-gzip", "deflate"):
        # wbits 32+15: accept a gzip or zlib header (some servers send zlib as "deflate").
        decoder = zlib.decompressobj(32 + zlib.MAX_WBITS)
    else:
        raise UnexpectedPayload(f"{service}: unsupported Content-Encoding {encoding!r}")
    chunks: list[bytes] = []
    total = 0

    def take(data: bytes) -> None:
        nonlocal total
        total += len(data)
        if total > max_bytes:
            raise UnexpectedPayload(
                f"{service}: response body over the {max_bytes} byte cap (after decoding)"
            )
        chunks.append(data)

    if response.is_stream_consumed:
        # Only in-memory test transports pre-read bodies; real responses are streamed.
        take(response.content)
        return b"".join(chunks)
    try:
        async for raw in response.aiter_raw():
            if decoder is None:
                take(raw)
                continue
            pending = raw
            while pending:
                take(decoder.decompress(pending, max_bytes - total + 1))
                pending = decoder.unconsumed_tail
        if decoder is not None:
            take(decoder.flush())
    except zlib.error as error:
        raise UnexpectedPayload(f"{service}: corrupt {encoding} body") from error
    return b"".join(chunks)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"non-JSON number {name}")


def parse_json(raw: bytes) -> Any:
    """Strict JSON: no NaN/Infinity; deep nesting and huge numbers are errors, not crashes."""
    try:
        return json.loads(raw, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as error:
        raise UnexpectedPayload("the body is not valid JSON") from error


def _error_object(raw: bytes) -> dict[str, Any]:
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError):
        return {}
    if not isinstance(body, dict):
        return {}
    inner = body.get("error")
    return inner if isinstance(inner, dict) else body


def error_code(raw: bytes) -> str:
    """The API's error code: Graph ``error.code`` or Harness ErrorDTO ``code``."""
    code = _error_object(raw).get("code")
    return code if isinstance(code, str) else ""


def describe_error(raw: bytes, headers: httpx.Headers) -> str:
    """A short, sanitised description of an error body (code and message, or its type)."""
    found = _error_object(raw)
    parts = [
        str(found[key]) for key in ("code", "message", "detail") if isinstance(found.get(key), str)
    ]
    if parts:
        return sanitize_text(": ".join(parts))
    kind = headers.get("content-type", "no content type").split(";")[0]
    text = raw[:200].decode("utf-8", "replace").strip()
    if kind.endswith("json") or kind.startswith("text/plain"):
        return sanitize_text(text or kind, limit=200)
    return f"{kind}, {len(raw)} bytes"


_HARNESS_PERMISSION = re.compile(r"\b(core_[a-z_]+)\b")

# Graph error codes that are about licensing rather than a permission (graph-api.md 6.4).
_LICENCE_CODES = {"Authentication_RequestFromNonPremiumTenantOrB2CTenant"}


def missing_permission(raw: bytes, code: str, hint: str) -> str:
    """Name the permission a 403 lacks, from the error body or the endpoint's hint."""
    if code in _LICENCE_CODES:
        return "an Entra ID P1/P2 licence (and Directory.Read.All)"
    message = str(_error_object(raw).get("message", ""))
    found = _HARNESS_PERMISSION.search(message)
    if found:
        return found.group(1)
    return hint or "the permission this endpoint needs"
