"""The shared HTTP policy: retries, Retry-After, pacing, deadlines, size caps, paging."""

from __future__ import annotations

import asyncio
import gzip
from datetime import UTC, datetime

import httpx
import pytest

from collectors.base import (
    AuthFailed,
    Forbidden,
    ForeignHost,
    SourceUnavailable,
    Throttled,
    UnexpectedPayload,
)
from collectors.http import parse_retry_after

from .helpers import (
    GRAPH,
    HARNESS,
    FakeClock,
    MockApi,
    StreamBody,
    fixture,
    graph_api,
    graph_error,
    harness_api,
    json_response,
)

NOW = datetime(2024, 5, 4, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("5", 5.0),
        ("2.128", 2.128),
        ("Sat, 04 May 2024 12:00:30 GMT", 30.0),
        ("-1", 0.0),
        ("86400", 86400.0),
        ("abc", None),
        ("", None),
        (None, None),
        ("nan", None),
    ],
)
def test_retry_after_is_parsed_as_seconds_or_http_date(header, expected):
    assert parse_retry_after(header, NOW) == expected


@pytest.mark.parametrize("retry_after", ["5", "2.128", "Sat, 04 May 2024 12:00:07 GMT"])
async def test_429_waits_retry_after_before_retrying(retry_after):
    """No request goes out earlier than Retry-After says."""
    clock = FakeClock(start=NOW)
    answers = [
        graph_error(
            429, "TooManyRequests", "Please retry again later.", {"Retry-After": retry_after}
        )
    ]

    def handler(request):
        return answers.pop(0) if answers else json_response({"value": [1]})

    mock = MockApi(clock, handler)
    api, _ = graph_api(mock)
    assert await api.get_json(f"{GRAPH}/x") == {"value": [1]}
    first, second = mock.requests
    wanted = parse_retry_after(retry_after, NOW)
    assert wanted is not None
    assert second.at - first.at >= wanted


async def test_retry_after_holds_every_request_to_the_same_api():
    """After a 429 the limiter keeps the other requests of that API back too."""
    clock = FakeClock()
    answers = [graph_error(429, "TooManyRequests", "slow down", {"Retry-After": "10"})]

    def handler(request):
        if request.url.path.endswith("/a") and answers:
            return answers.pop(0)
        return json_response({})

    mock = MockApi(clock, handler)
    api, _ = graph_api(mock, limit=(100, 10.0))
    await api.get_json(f"{GRAPH}/a")
    await api.get_json(f"{GRAPH}/b")
    assert mock.requests[-1].at - mock.requests[0].at >= 10


async def test_absurd_retry_after_ends_the_poll_as_throttled_without_waiting():
    clock = FakeClock()
    mock = MockApi(
        clock, lambda request: graph_error(429, "TooManyRequests", "x", {"Retry-After": "86400"})
    )
    api, _ = graph_api(mock)
    with pytest.raises(Throttled) as caught:
        await api.get_json(f"{GRAPH}/x")
    assert caught.value.retry_after == 3600  # clamped
    assert len(mock.requests) == 1
    assert clock.sleeps == []


async def test_429_without_retry_after_backs_off_exponentially_then_fails():
    """Harness never sends Retry-After (harness-api.md 3.6)."""
    clock = FakeClock()
    mock = MockApi(clock, lambda request: httpx.Response(429, text="Too Many requests"))
    api = harness_api(mock, max_attempts=4)
    with pytest.raises(Throttled) as caught:
        await api.get_json(f"{HARNESS}/ng/api/user-groups")
    assert caught.value.retry_after is None
    assert clock.sleeps == [1.0, 2.0, 4.0]
    assert len(mock.requests) == 4


async def test_5xx_is_retried_then_succeeds():
    clock = FakeClock()
    answers = [httpx.Response(503), httpx.Response(502), httpx.Response(500, text="oops")]

    def handler(request):
        return answers.pop(0) if answers else json_response({"ok": True})

    api, _ = graph_api(MockApi(clock, handler))
    assert await api.get_json(f"{GRAPH}/x") == {"ok": True}


async def test_persistent_5xx_raises_source_unavailable():
    clock = FakeClock()
    api, _ = graph_api(MockApi(clock, lambda request: httpx.Response(504)), max_attempts=3)
    with pytest.raises(SourceUnavailable) as caught:
        await api.get_json(f"{GRAPH}/x")
    assert caught.value.status == 504


@pytest.mark.parametrize(
    "error",
    [
        httpx.ReadTimeout("slow"),
        httpx.ConnectError("refused"),
        httpx.RemoteProtocolError("peer closed"),
    ],
)
async def test_transport_errors_are_retried_then_raise_source_unavailable(error):
    clock = FakeClock()

    def handler(request):
        raise error

    mock = MockApi(clock, handler)
    api, _ = graph_api(mock, max_attempts=3)
    with pytest.raises(SourceUnavailable) as caught:
        await api.get_json(f"{GRAPH}/x")
    assert caught.value.__cause__ is error
    assert len(mock.requests) == 3


async def test_a_reset_then_success_recovers():
    clock = FakeClock()
    calls = []

    def handler(request):
        calls.append(1)
        if len(calls) == 1:
            raise httpx.ReadError("reset")
        return json_response({"value": []})

    api, _ = graph_api(MockApi(clock, handler))
    assert await api.get_json(f"{GRAPH}/x") == {"value": []}


async def test_401_after_refresh_raises_auth_failed():
    clock = FakeClock()
    mock = MockApi(
        clock,
        lambda request: graph_error(
            401, "InvalidAuthenticationToken", "Access token has expired or is not yet valid."
        ),
    )
    api, _auth = graph_api(mock)
    with pytest.raises(AuthFailed) as caught:
        await api.get_json(f"{GRAPH}/x")
    assert "InvalidAuthenticationToken" in str(caught.value)
    assert len(mock.requests) == 2  # the original and one retry with a fresh token
    assert mock.requests[0].headers["authorization"] != mock.requests[1].headers["authorization"]


async def test_graph_403_names_the_missing_permission():
    clock = FakeClock()
    mock = MockApi(
        clock,
        lambda request: graph_error(
            403, "Authorization_RequestDenied", "Insufficient privileges to complete the operation."
        ),
    )
    api, _ = graph_api(mock)
    with pytest.raises(Forbidden) as caught:
        await api.get_json(f"{GRAPH}/auditLogs/provisioning", permission="AuditLog.Read.All")
    assert caught.value.permission == "AuditLog.Read.All"
    assert "AuditLog.Read.All" in str(caught.value)
    assert len(mock.requests) == 1


async def test_harness_403_names_the_permission_from_the_error_dto():
    clock = FakeClock()
    mock = MockApi(
        clock, lambda request: json_response(fixture("harness", "error_access_denied"), 403)
    )
    api = harness_api(mock)
    with pytest.raises(Forbidden) as caught:
        await api.get_json(f"{HARNESS}/ng/api/scim/account/acct1/Groups")
    assert caught.value.permission == "core_usergroup_view"


async def test_html_200_is_retried_then_reported_as_unexpected_payload():
    clock = FakeClock()
    mock = MockApi(
        clock,
        lambda request: httpx.Response(
            200, text="<html>maintenance</html>", headers={"content-type": "text/html"}
        ),
    )
    api, _ = graph_api(mock, max_attempts=2)
    with pytest.raises(UnexpectedPayload) as caught:
        await api.get_json(f"{GRAPH}/x")
    assert "text/html" in str(caught.value)
    assert len(mock.requests) == 2


async def test_error_object_in_a_200_is_a_failure_not_an_empty_page():
    clock = FakeClock()
    mock = MockApi(
        clock, lambda request: json_response({"error": {"code": "BadRequest", "message": "nope"}})
    )
    api, _ = graph_api(mock)
    with pytest.raises(UnexpectedPayload):
        await api.get_json(f"{GRAPH}/x")


async def test_gzip_bomb_is_capped_after_decompression():
    """200 MB of zeros in a small gzip body never reaches memory whole."""
    clock = FakeClock()
    bomb = gzip.compress(b"0" * (50 * 1024 * 1024), compresslevel=9)
    assert len(bomb) < 100_000
    mock = MockApi(
        clock,
        lambda request: httpx.Response(
            200,
            stream=StreamBody(bomb),
            headers={"content-encoding": "gzip", "content-type": "application/json"},
        ),
    )
    api, _ = graph_api(mock, max_bytes=1024 * 1024)
    with pytest.raises(UnexpectedPayload, match="cap"):
        await api.get_json(f"{GRAPH}/x")
    assert len(mock.requests) == 1


async def test_gzip_body_within_the_cap_is_decoded():
    clock = FakeClock()
    body = gzip.compress(b'{"value": [1, 2, 3]}')
    mock = MockApi(
        clock,
        lambda request: httpx.Response(
            200, stream=StreamBody(body), headers={"content-encoding": "gzip"}
        ),
    )
    api, _ = graph_api(mock)
    assert await api.get_json(f"{GRAPH}/x") == {"value": [1, 2, 3]}
    assert mock.requests[0].headers["accept-encoding"] == "gzip, deflate"


async def test_declared_oversize_body_is_refused_before_reading():
    clock = FakeClock()
    mock = MockApi(
        clock,
        lambda request: httpx.Response(
            200, content=b"{}" * 10, headers={"content-length": str(10**10)}
        ),
    )
    api, _ = graph_api(mock, max_bytes=1000)
    with pytest.raises(UnexpectedPayload, match="cap"):
        await api.get_json(f"{GRAPH}/x")


class _Drip(httpx.AsyncByteStream):
    """A body that arrives one byte at a time, slowly (the slowloris of EXP-7)."""

    async def __aiter__(self):
        for byte in b'{"value": []}' * 100:
            await asyncio.sleep(0.01)
            yield bytes([byte])

    async def aclose(self) -> None:
        return None


async def test_deadline_cuts_a_slow_drip():
    """httpx's read timeout never fires on a drip; the whole-request deadline does."""
    clock = FakeClock()
    mock = MockApi(clock, lambda request: httpx.Response(200, stream=_Drip()))
    api, _ = graph_api(mock, deadline=0.1, max_attempts=1)
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(SourceUnavailable, match=r"within 0\.1 s"):
        await api.get_json(f"{GRAPH}/x")
    assert loop.time() - started < 1.0


async def test_rate_limiter_paces_under_five_requests_per_ten_seconds():
    clock = FakeClock()
    mock = MockApi(clock, lambda request: json_response({}))
    api, _ = graph_api(mock, limit=(5, 10.0))
    for _ in range(11):
        await api.get_json(f"{GRAPH}/auditLogs/provisioning")
    times = [request.at for request in mock.requests]
    for index in range(5, len(times)):
        assert times[index] - times[index - 5] >= 10.0


async def test_next_link_is_followed_to_the_end():
    clock = FakeClock()

    def handler(request):
        token = request.url.params.get("$skiptoken")
        if token is None:
            return json_response(
                {"value": [1], "@odata.nextLink": f"{GRAPH}/items?$top=1&$skiptoken=a"}
            )
        if token == "a":
            return json_response(
                {"value": [2], "@odata.nextLink": f"{GRAPH}/items?$top=1&$skiptoken=b"}
            )
        return json_response({"value": [3]})

    mock = MockApi(clock, handler)
    api, _ = graph_api(mock)
    pages = [page async for page in api.iterate_graph_pages(f"{GRAPH}/items", params={"$top": 1})]
    assert pages == [[1], [2], [3]]


@pytest.mark.parametrize(
    "link",
    [
        "https://evil.test/v1.0/items?$skiptoken=a",
        "http://graph.test/v1.0/items?$skiptoken=a",
        "https://graph.test:8443/v1.0/items?$skiptoken=a",
        "https://user:pw@graph.test/v1.0/items?$skiptoken=a",
    ],
)
async def test_foreign_next_link_is_refused_without_sending_the_token(link):
    clock = FakeClock()
    mock = MockApi(clock, lambda request: json_response({"value": [1], "@odata.nextLink": link}))
    api, _ = graph_api(mock)
    with pytest.raises(ForeignHost):
        async for _ in api.iterate_graph_pages(f"{GRAPH}/items"):
            pass
    assert len(mock.requests) == 1
    assert all(
        request.url.host == "graph.test" and request.url.port is None for request in mock.requests
    )


async def test_foreign_redirect_is_refused_without_sending_the_token():
    clock = FakeClock()

    def handler(request):
        return httpx.Response(302, headers={"location": "https://evil.test/steal"})

    mock = MockApi(clock, handler)
    api, _ = graph_api(mock)
    with pytest.raises(ForeignHost):
        await api.get_json(f"{GRAPH}/x")
    assert [request.url.host for request in mock.requests] == ["graph.test"]


async def test_same_host_redirect_is_followed():
    clock = FakeClock()

    def handler(request):
        if request.url.path.endswith("/old"):
            return httpx.Response(301, headers={"location": "/v1.0/new"})
        return json_response({"moved": True})

    api, _ = graph_api(MockApi(clock, handler))
    assert await api.get_json(f"{GRAPH}/old") == {"moved": True}


async def test_next_link_loop_stops_paging():
    clock = FakeClock()
    link = f"{GRAPH}/items?$skiptoken=same"
    mock = MockApi(clock, lambda request: json_response({"value": [1], "@odata.nextLink": link}))
    api, _ = graph_api(mock)
    with pytest.raises(UnexpectedPayload, match="loop"):
        async for _ in api.iterate_graph_pages(f"{GRAPH}/items"):
            pass
    assert len(mock.requests) == 2


async def test_page_cap_stops_an_endless_listing():
    clock = FakeClock()
    counter = iter(range(10**6))
    mock = MockApi(
        clock,
        lambda request: json_response(
            {"value": [], "@odata.nextLink": f"{GRAPH}/items?$skiptoken={next(counter)}"}
        ),
    )
    api, _ = graph_api(mock, max_pages=7)
    with pytest.raises(UnexpectedPayload, match="pages"):
        async for _ in api.iterate_graph_pages(f"{GRAPH}/items"):
            pass
    assert len(mock.requests) == 7
