"""The collectors against the simulated tenant over real loopback HTTPS (azure-identity too)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest

from collectors.base import CollectorError
from collectors.config import PollingConfig, build_collectors
from collectors.runner import poll_source
from collectors.simulator import ManualClock, SimulatedTenant
from store.cache import Cache
from tests.simulated_tenant import connections


@pytest.fixture(scope="module")
def tenant():
    with SimulatedTenant("incident", seed=7, clock=ManualClock()) as running:
        yield running


@pytest.fixture(autouse=True)
def _clean_faults(tenant):
    tenant.faults.reset()
    tenant.faults.rate_limits_enabled = False
    yield
    tenant.faults.reset()


@pytest.fixture
async def collectors(tenant) -> AsyncIterator[dict[str, object]]:
    graph, harness = connections(tenant)
    polling = PollingConfig(backfill_window=timedelta(days=10), request_deadline=10.0, page_size=50)
    built = build_collectors(
        graph, harness, polling, clock=tenant.scenario.clock.now, reporting_rate=(1000, 1.0)
    )
    try:
        yield {collector.source: collector for collector in built.collectors}
    finally:
        await built.aclose()


def simulator_event_ids(tenant: SimulatedTenant) -> list[str]:
    events = tenant.scenario.events
    return [events.at_position(index).event_id for index in range(len(events))]


def cached_event_ids(cache: Cache) -> list[str]:
    with cache.reading() as db:
        return [row["id"] for row in db.query("SELECT id FROM provisioning_events")]


async def drain(collector, cache) -> int:
    """Poll until the source says it is complete; the number of polls."""
    for polls in range(1, 100):
        result = await poll_source(collector, cache)
        if result.complete:
            return polls
    raise AssertionError("never completed")


async def test_backfill_then_incremental_polls_store_every_event_exactly_once(
    tenant, collectors, cache
):
    provisioning = collectors["graph.provisioning"]
    assert await drain(provisioning, cache) >= 2
    ids = cached_event_ids(cache)
    assert sorted(ids) == sorted(set(simulator_event_ids(tenant)))
    tenant.scenario.run_cycles(2)
    await drain(provisioning, cache)
    await drain(provisioning, cache)
    ids = cached_event_ids(cache)
    assert len(ids) == len(set(ids))
    assert sorted(ids) == sorted(set(simulator_event_ids(tenant)))


async def test_every_source_collects_from_the_simulator(collectors, cache):
    failures: dict[str, CollectorError] = {}
    for source, collector in collectors.items():
        try:
            await drain(collector, cache)
        except CollectorError as error:
            failures[source] = error
    assert failures == {}
    for table in (
        "sync_jobs",
        "app_role_assignments",
        "entra_groups",
        "entra_users",
        "entra_memberships",
        "harness_users",
        "harness_groups",
        "harness_group_members",
        "harness_sso_settings",
    ):
        assert cache.count(table) > 0, table


async def drain_surviving_failures(collector, cache, allowed_failures: int = 2) -> list[str]:
    """Poll to completion, tolerating a few failed polls (the next poll retries)."""
    kinds: list[str] = []
    for _ in range(100):
        try:
            result = await poll_source(collector, cache)
        except CollectorError as error:
            kinds.append(error.kind)
            assert len(kinds) <= allowed_failures, kinds
            continue
        if result.complete:
            return kinds
    raise AssertionError("never completed")


def assert_every_event_once(tenant, cache):
    ids = cached_event_ids(cache)
    assert len(ids) == len(set(ids))
    assert sorted(ids) == sorted(set(simulator_event_ids(tenant)))


@pytest.mark.parametrize(
    ("kind", "params"),
    [
        ("status", {"status": 500}),
        ("status", {"status": 502}),
        ("status", {"status": 503}),
        ("status", {"status": 504}),
        ("reset", {}),
        ("reset", {"after_bytes": 100}),
        ("truncate", {}),
        ("html", {}),
        ("duplicate_items", {"duplicates": 5}),
        ("expired_skiptoken", {}),
        ("token_expiry", {"after_pages": 1}),
        ("gzip_bomb", {"size": 200 * 1024 * 1024}),
        ("oversized", {"size": 40 * 1024 * 1024}),
    ],
)
async def test_provisioning_faults_are_survived_with_nothing_lost_or_duplicated(
    tenant, collectors, cache, kind, params
):
    collector = collectors["graph.provisioning"]
    tenant.faults.set("graph.provisioning", kind, times=1, **params)
    failed = await drain_surviving_failures(collector, cache)
    if kind in ("gzip_bomb", "oversized"):
        assert failed == ["payload"]  # the capped poll fails; the next one succeeds
    else:
        assert failed == []
    assert_every_event_once(tenant, cache)


@pytest.mark.parametrize(
    ("mode", "seconds", "floor"),
    [("seconds", 2.0, 2.0), ("fractional", 1.25, 1.25), ("http-date", 2.0, 1.0)],
)
async def test_no_request_earlier_than_retry_after(tenant, collectors, cache, mode, seconds, floor):
    tenant.faults.set(
        "graph.provisioning", "throttle", times=1, retry_after=mode, retry_after_seconds=seconds
    )
    await drain(collectors["graph.provisioning"], cache)
    seen = [r for r in tenant.faults.requests if r.route == "graph.provisioning"]
    assert len(seen) >= 2
    assert seen[1].monotonic - seen[0].monotonic >= floor - 0.05
    assert_every_event_once(tenant, cache)


async def test_harness_429_without_retry_after_backs_off_and_recovers(tenant, collectors, cache):
    tenant.faults.set("harness.scim.users", "throttle", times=2, retry_after="absent")
    await drain(collectors["harness.scim"], cache)
    seen = [r for r in tenant.faults.requests if r.route == "harness.scim.users"]
    assert len(seen) >= 3
    assert cache.count("harness_users") > 0


async def test_a_foreign_next_link_is_refused_and_no_token_reaches_it(tenant, collectors, cache):
    tenant.faults.set("graph.provisioning", "foreign_next_link", times=1)
    kinds = await drain_surviving_failures(collectors["graph.provisioning"], cache)
    assert kinds == ["foreign_host"]
    hosts = {r.host.split(":")[0] for r in tenant.faults.requests}
    assert hosts == {"127.0.0.1"}
    assert_every_event_once(tenant, cache)


async def test_a_slow_drip_and_a_hang_are_cut_at_the_deadline(tenant, cache):
    graph, harness = connections(tenant)
    polling = PollingConfig(backfill_window=timedelta(days=40), request_deadline=1.0)
    built = build_collectors(
        graph, harness, polling, clock=tenant.scenario.clock.now, reporting_rate=(1000, 1.0)
    )
    try:
        by_source = {collector.source: collector for collector in built.collectors}
        tenant.faults.set("graph.provisioning", "drip", times=1, chunk=16, interval=0.5)
        tenant.faults.set("graph.jobs", "hang", times=1, hang_seconds=5.0)
        loop = asyncio.get_running_loop()
        started = loop.time()
        await drain(by_source["graph.provisioning"], cache)
        # Uncut, a page dripping 16 bytes every 0.5 s takes hours; the backfill itself takes a
        # few seconds (more on a loaded machine): the bound tells the two apart, not speed.
        assert loop.time() - started < 60.0
        started = loop.time()
        await drain(by_source["graph.jobs"], cache)
        assert loop.time() - started < 5.0  # the hang lasts 5 s: it was cut at 1 s
    finally:
        await built.aclose()
    assert_every_event_once(tenant, cache)
    assert cache.count("sync_jobs") > 0


async def test_tls_is_verified_without_the_simulator_ca_nothing_connects(tenant, cache):
    from collectors.http import HttpPolicy

    graph, harness = connections(tenant)
    graph = graph.model_copy(update={"ca_bundle": None})
    harness = harness.model_copy(update={"ca_bundle": None})
    built = build_collectors(
        graph, harness, clock=tenant.scenario.clock.now, policy=HttpPolicy(max_attempts=1)
    )
    try:
        by_source = {collector.source: collector for collector in built.collectors}
        with pytest.raises(CollectorError) as graph_error:
            await poll_source(by_source["graph.jobs"], cache)
        with pytest.raises(CollectorError) as harness_error:
            await poll_source(by_source["harness.scim"], cache)
    finally:
        await built.aclose()
    assert graph_error.value.kind == "auth"  # azure-identity refused the simulator's certificate
    assert harness_error.value.kind == "unavailable"
    assert "CERTIFICATE_VERIFY_FAILED" in str(harness_error.value.__cause__)


async def test_a_window_read_again_after_an_expired_skiptoken_is_counted_once(
    tenant, collectors, cache, caplog
):
    """The backfill log counts each event once, though the window was read twice."""
    tenant.faults.set("graph.provisioning", "expired_skiptoken", times=1)
    with caplog.at_level(logging.INFO, logger="scimwatch.collectors.graph"):
        assert await drain_surviving_failures(collectors["graph.provisioning"], cache) == []
    assert any("rereading the window" in record.getMessage() for record in caplog.records)
    counted = [
        int(record.args[1])
        for record in caplog.records
        if record.getMessage().startswith("graph.provisioning backfill")
    ]
    assert sum(counted) == len(simulator_event_ids(tenant))
