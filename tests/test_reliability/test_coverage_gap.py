"""T-D6: downtime longer than Entra's retention is recorded as a visible coverage gap."""

from __future__ import annotations

from datetime import timedelta

from collectors.config import PollingConfig, build_collectors
from collectors.runner import poll_source
from collectors.simulator import ManualClock, SimulatedTenant
from store import health
from store.cache import Cache
from tests.simulated_tenant import connections


async def test_downtime_past_retention_records_the_missing_days(tmp_path):
    clock = ManualClock()
    with SimulatedTenant("incident", seed=3, clock=clock) as tenant:
        tenant.faults.rate_limits_enabled = False
        graph, _harness = connections(tenant)
        polling = PollingConfig(backfill_window=timedelta(days=40), page_size=200)
        built = build_collectors(graph, None, polling, clock=clock.now, reporting_rate=(1000, 1.0))
        provisioning = next(c for c in built.collectors if c.source == "graph.provisioning")
        try:
            with Cache.open_writer(tmp_path / "cache.db") as cache:
                while not (await poll_source(provisioning, cache)).complete:
                    pass
                with cache.reading() as db:
                    assert health.coverage_gaps(db) == []  # a first backfill is no gap
                newest = cache.watermark("graph.provisioning")
                assert newest is not None
                clock.advance(timedelta(days=40))  # the collector was down 40 days
                await poll_source(provisioning, cache)
                with cache.reading() as db:
                    (gap,) = health.coverage_gaps(db, "graph.provisioning")
                    await poll_source(provisioning, cache)  # polling on finds no new gap
                    assert len(health.coverage_gaps(db)) == 1
        finally:
            await built.aclose()
    assert gap.gap_to == clock.now() - polling.retention
    assert gap.gap_from.isoformat().startswith(newest[:19])
    lost = gap.gap_to - gap.gap_from
    assert timedelta(days=10) <= lost < timedelta(days=11)  # 40 days down - 30 kept
