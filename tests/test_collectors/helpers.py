"""Test doubles: a fake clock, a recording mock API, JSON fixtures, fake credentials."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from pydantic import SecretStr

from collectors.auth import GraphAuth, HarnessAuth
from collectors.config import origin_of
from collectors.http import ApiClient, HttpPolicy, RateLimiter

FIXTURES = Path(__file__).parent.parent / "fixtures"
GRAPH = "https://graph.test/v1.0"
HARNESS = "https://harness.test/gateway"


def fixture(kind: str, name: str) -> Any:
    """A JSON fixture from tests/fixtures/<kind>/<name>.json."""
    return json.loads((FIXTURES / kind / f"{name}.json").read_text())


class FakeClock:
    """Monotonic and wall time that only move when something sleeps (or the test says)."""

    def __init__(self, start: datetime | None = None) -> None:
        self.now = 1000.0
        self.start_wall = start or datetime(2024, 5, 4, 12, 0, tzinfo=UTC)
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def wall(self) -> datetime:
        return self.start_wall + timedelta(seconds=self.now - 1000.0)

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += max(0.0, seconds)

    def advance(self, seconds: float) -> None:
        self.now += seconds


def policy(clock: FakeClock, **overrides: Any) -> HttpPolicy:
    """An HttpPolicy on the fake clock, with jitter pinned to 1 (full backoff)."""
    values: dict[str, Any] = {
        "sleep": clock.sleep,
        "monotonic": clock.monotonic,
        "wall_clock": clock.wall,
        "jitter": lambda: 1.0,
        "deadline": 5.0,
    }
    values.update(overrides)
    return HttpPolicy(**values)


@dataclass
class Recorded:
    method: str
    url: httpx.URL
    headers: httpx.Headers
    at: float
    body: bytes


Handler = Callable[[httpx.Request], httpx.Response]


@dataclass
class MockApi:
    """Routes requests to handlers and records each one with the fake time it arrived."""

    clock: FakeClock
    handler: Handler
    requests: list[Recorded] = field(default_factory=list)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(
            Recorded(
                request.method,
                request.url,
                httpx.Headers(request.headers),
                self.clock.now,
                request.content,
            )
        )
        return self.handler(request)

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self)


@dataclass
class FakeToken:
    token: str
    expires_on: int


class FakeCredential:
    """An azure-identity-like async credential that counts tokens handed out."""

    def __init__(
        self, clock: Callable[[], float], lifetime: int = 3600, tokens: list[str] | None = None
    ):
        self.calls = 0
        self.closed = False
        self._clock = clock
        self._lifetime = lifetime
        self._tokens = tokens

    async def get_token(self, *scopes: str, **kwargs: Any) -> FakeToken:
        self.calls += 1
        value = self._tokens.pop(0) if self._tokens else f"token-{self.calls}"
        return FakeToken(value, int(self._clock()) + self._lifetime)

    async def close(self) -> None:
        self.closed = True


def graph_api(
    mock: MockApi,
    *,
    credential: FakeCredential | None = None,
    limit: tuple[int, float] | None = None,
    **policy_overrides: Any,
) -> tuple[ApiClient, GraphAuth]:
    """An ApiClient for Graph over the mock, authenticated by a fake credential."""
    clock = mock.clock
    cred = credential or FakeCredential(clock.monotonic)
    auth = GraphAuth(
        lambda: cred,
        scope="https://graph.test/.default",
        allowed_origin=origin_of(GRAPH),
        clock=clock.monotonic,
    )
    client = httpx.AsyncClient(transport=mock.transport(), auth=auth)
    the_policy = policy(clock, **policy_overrides)
    limiter = RateLimiter(*limit, the_policy) if limit else None
    return ApiClient(client, service="graph", policy=the_policy, limiter=limiter), auth


def harness_api(mock: MockApi, **policy_overrides: Any) -> ApiClient:
    """An ApiClient for Harness over the mock with a PAT."""
    auth = HarnessAuth(
        SecretStr("pat.acct1.tokenid.SECRETVALUE"), allowed_origin=origin_of(HARNESS)
    )
    client = httpx.AsyncClient(transport=mock.transport(), auth=auth)
    return ApiClient(client, service="harness", policy=policy(mock.clock, **policy_overrides))


def json_response(
    body: Any, status: int = 200, headers: dict[str, str] | None = None
) -> httpx.Response:
    return httpx.Response(status, json=body, headers=headers)


def graph_error(
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> httpx.Response:
    body = {
        "error": {"code": code, "message": message, "innerError": {"date": "2024-05-04T12:00:00"}}
    }
    return httpx.Response(status, json=body, headers=headers)


class StreamBody(httpx.AsyncByteStream):
    """A response body that is streamed (as from a socket), in 64 KB chunks."""

    def __init__(self, data: bytes) -> None:
        self._data = data

    async def __aiter__(self):
        for start in range(0, len(self._data), 65536):
            yield self._data[start : start + 65536]

    async def aclose(self) -> None:
        return None
