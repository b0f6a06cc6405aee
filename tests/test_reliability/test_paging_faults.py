"""T-H gaps as figures: faults in the middle of paging, a nextLink loop, token expiry mid-paging,
a 429 storm without Retry-After and the per-request wall time under a slow drip.

The collectors run against the simulated tenant over loopback HTTPS; jitter is pinned so backoff
gaps are exact. The nextLink loop has no simulator knob, so it is served by an in-memory
transport to the real `ApiClient` paging code.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest

from collectors.base import CollectorError, UnexpectedPayload
from collectors.config import PollingConfig, build_collectors
from collectors.http import ApiClient, HttpPolicy
from collectors.runner import poll_source
from collectors.simulator import ManualClock, SimulatedTenant
from collectors.simulator.faults import FaultController, FaultKind, RequestRecord
from store.cache import Cache
from tests.simulated_tenant import connections

PAGE_SIZE = 20


@pytest.fixture(scope="module")
def tenant() -> Iterator[SimulatedTenant]:
    with SimulatedTenant("incident", seed=11, clock=ManualClock()) as running:
        yield running


@pytest.fixture(autouse=True)
def _clean(tenant: SimulatedTenant) -> Iterator[None]:
    tenant.faults.reset()
    tenant.faults.rate_limits_enabled = False
    yield
    tenant.faults.reset()


def collectors_for(tenant: SimulatedTenant, policy: HttpPolicy) -> Any:
    graph, harness = connections(tenant)
    polling = PollingConfig(backfill_window=timedelta(days=10), page_size=PAGE_SIZE)
    return build_collectors(
        graph,
        harness,
        polling,
        clock=tenant.scenario.clock.now,
        reporting_rate=(1000, 1.0),
        policy=policy,
    )


@pytest.fixture
async def built(tenant: SimulatedTenant) -> AsyncIterator[Any]:
    collector_set = collectors_for(tenant, HttpPolicy(jitter=lambda: 1.0, backoff_base=0.2))
    try:
        yield collector_set
    finally:
        await collector_set.aclose()


def source(collector_set: Any, name: str) -> Any:
    return next(c for c in collector_set.collectors if c.source == name)


async def drain(collector: Any, cache: Cache) -> list[str]:
    failures: list[str] = []
    for _ in range(100):
        try:
            if (await poll_source(collector, cache)).complete:
                return failures
        except CollectorError as error:
            failures.append(error.kind)
    raise AssertionError("never completed")


def assert_every_event_once(tenant: SimulatedTenant, cache: Cache) -> int:
    with cache.reading() as db:
        ids = [row["id"] for row in db.query("SELECT id FROM provisioning_events")]
    events = tenant.scenario.events
    expected = {events.at_position(i).event_id for i in range(len(events))}
    assert len(ids) == len(set(ids)), "duplicates"
    assert set(ids) == expected, f"lost {len(expected - set(ids))}"
    return len(ids)


def arm_on_first_continuation(
    faults: FaultController, route: str, kind: FaultKind, **params: Any
) -> None:
    """Arm `kind` on `route` as its first nextLink request (page 2) arrives, so that one gets it."""
    original = faults.record
    armed = False

    def record(rec: RequestRecord) -> None:
        nonlocal armed
        original(rec)
        if rec.route == route and "skiptoken" in rec.query and not armed:
            armed = True
            faults.set(route, kind, times=1, **params)

    faults.record = record  # type: ignore[method-assign]


def provisioning_requests(tenant: SimulatedTenant) -> list[RequestRecord]:
    return [r for r in tenant.faults.requests if r.route == "graph.provisioning"]


async def test_a_500_on_page_2_is_retried_in_place_nothing_lost_or_duplicated(
    tenant: SimulatedTenant, built: Any, cache: Cache
):
    arm_on_first_continuation(tenant.faults, "graph.provisioning", "status", status=500)
    try:
        failures = await drain(source(built, "graph.provisioning"), cache)
    finally:
        del tenant.faults.record
    assert failures == []
    seen = provisioning_requests(tenant)
    first = next(i for i, r in enumerate(seen) if "skiptoken" in r.query)
    assert seen[first].query == seen[first + 1].query  # page 2 asked again, with the same link
    assert sum(1 for r in seen if r.query == seen[first].query) == 2
    stored = assert_every_event_once(tenant, cache)
    assert stored > 2 * PAGE_SIZE  # page 2 was really in the middle


async def test_token_expiry_mid_paging_costs_one_token_and_one_retried_request(
    tenant: SimulatedTenant, built: Any, cache: Cache
):
    tenant.faults.set("graph.provisioning", "token_expiry", times=1, after_pages=2)
    failures = await drain(source(built, "graph.provisioning"), cache)
    assert failures == []
    tokens = [r for r in tenant.faults.requests if r.route == "graph.token"]
    assert len(tokens) == 2  # the first token, and exactly one refresh
    seen = provisioning_requests(tenant)
    queries = [r.query for r in seen]
    repeated = [q for q in set(queries) if queries.count(q) > 1]
    assert len(repeated) == 1  # one request (the 401) was sent again, with the same link
    assert_every_event_once(tenant, cache)


async def test_a_429_storm_without_retry_after_backs_off_exponentially(
    tenant: SimulatedTenant, built: Any, cache: Cache
):
    tenant.faults.set("harness.scim.users", "throttle", times=4, retry_after="absent")
    failures = await drain(source(built, "harness.scim"), cache)
    assert failures == []
    seen = [r for r in tenant.faults.requests if r.route == "harness.scim.users"]
    storm = seen[:5]  # 4 throttled, then the one that passed
    gaps = [b.monotonic - a.monotonic for a, b in itertools.pairwise(storm)]
    # backoff_base 0.2, jitter pinned to 1: 0.2, 0.4, 0.8, 1.6 s between tries, never less.
    for gap, floor in zip(gaps, (0.2, 0.4, 0.8, 1.6), strict=True):
        assert gap >= floor - 0.02, gaps
    window = storm[-1].monotonic - storm[0].monotonic
    assert window >= 2.95
    assert len([r for r in seen if r.monotonic <= storm[-1].monotonic]) == 5  # no tight loop
    assert cache.count("harness_users") > 0


async def test_max_request_wall_time_under_a_slow_drip_is_within_deadline_plus_one(
    tenant: SimulatedTenant, cache: Cache
):
    deadline = 1.0
    collector_set = collectors_for(tenant, HttpPolicy(deadline=deadline, jitter=lambda: 0.0))
    tenant.faults.set("graph.provisioning", "drip", times=2, chunk=8, interval=0.3)
    try:
        failures = await drain(source(collector_set, "graph.provisioning"), cache)
    finally:
        await collector_set.aclose()
    assert failures == []
    seen = provisioning_requests(tenant)
    walls = [b.monotonic - a.monotonic for a, b in itertools.pairwise(seen[:3])]
    # Each dripping request is cut at the deadline and retried at once (jitter 0).
    assert all(wall <= deadline + 1.0 for wall in walls), walls
    assert all(wall >= deadline - 0.2 for wall in walls), walls  # it really dripped
    assert_every_event_once(tenant, cache)


BASE = "https://graph.test/v1.0/items"


async def page_through_loop() -> tuple[list[str], list[str], Exception | None]:
    """Page 1 -> page 2 -> page 1 again; (urls served, ids yielded, error raised)."""
    served: list[str] = []
    items: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        served.append(str(request.url))
        if "page=2" in str(request.url):
            return httpx.Response(200, json={"value": [{"id": "b"}], "@odata.nextLink": BASE})
        return httpx.Response(
            200, json={"value": [{"id": "a"}], "@odata.nextLink": BASE + "?page=2"}
        )

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
        api = ApiClient(client=client, service="graph", policy=HttpPolicy(max_attempts=1))
        try:
            async for page in api.iterate_graph_pages(BASE):
                items.extend(item["id"] for item in page)
        except UnexpectedPayload as error:
            return served, items, error
    return served, items, None


async def test_a_next_link_loop_back_to_page_1_stops_with_a_clear_error():
    served, items, error = await page_through_loop()
    assert error is not None
    assert "nextLink loop" in str(error)
    assert len(served) <= 3  # stopped, not an endless loop
    assert items.count("b") == 1


async def test_a_next_link_loop_back_to_page_1_yields_nothing_twice():
    served, items, _ = await page_through_loop()
    assert items.count("a") == 1, (served, items)
