"""T-S1 for screenshots and the demo: no simulator client secret or Harness token is written.

The committed screenshots/*.svg come from `scripts/screenshots.py` (the `incident` scenario,
seed 7); the demo fills a throwaway cache the same way. Both are scanned for that tenant's exact
client secret and Harness token and for anything shaped like them (`sim~<hex>`, `pat.<id>.<hex>.`).
"""

from __future__ import annotations

import asyncio
import re
import tempfile
from datetime import timedelta
from pathlib import Path

import pytest

from collectors.config import PollingConfig, build_collectors
from collectors.runner import poll_source
from collectors.simulator import ManualClock, SimulatedTenant
from dashboard.launch import demo_settings, graph_connection, harness_connection
from store.cache import Cache

ROOT = Path(__file__).resolve().parents[2]
SHAPES = (re.compile(rb"sim~[0-9a-fA-F]{8,}"), re.compile(rb"pat\.[\w-]+\.[0-9a-fA-F]{8,}\."))


@pytest.fixture(scope="module")
def tenant():
    with SimulatedTenant("incident", seed=7, clock=ManualClock()) as running:
        yield running


def secrets_of(tenant: SimulatedTenant) -> list[bytes]:
    return [tenant.client_secret.encode(), tenant.harness_token.encode()]


def hits(data: bytes, secrets: list[bytes]) -> list[str]:
    found = [secret.decode()[:8] + "…" for secret in secrets if secret in data]
    found += [
        match.group()[:8].decode() + "…" for shape in SHAPES for match in shape.finditer(data)
    ]
    return found


def test_the_scan_recognises_the_demo_secrets(tenant: SimulatedTenant):
    secrets = secrets_of(tenant)
    for secret in secrets:
        assert hits(b"<text>" + secret + b"</text>", []), secret[:8]


def test_committed_screenshots_hold_no_secret(tenant: SimulatedTenant):
    svgs = sorted((ROOT / "screenshots").glob("*.svg"))
    assert len(svgs) >= 5
    scanned = 0
    for svg in svgs:
        data = svg.read_bytes()
        scanned += len(data)
        assert hits(data, secrets_of(tenant)) == [], svg.name
    assert scanned > 100_000


async def fill(cache: Cache, tenant: SimulatedTenant) -> None:
    """As `scripts/screenshots.py` fills a cache, without the real pacing (seconds, not 70)."""
    with tempfile.TemporaryDirectory() as scratch:
        settings = demo_settings(tenant.env(), Path(scratch))
    built = build_collectors(
        graph_connection(settings),
        harness_connection(settings),
        PollingConfig(backfill_window=timedelta(days=10)),
        clock=tenant.scenario.clock.now,
        reporting_rate=(1000, 1.0),
    )
    try:
        for collector in built.collectors:
            for _ in range(200):
                if (await poll_source(collector, cache, tenant.scenario.clock.now)).complete:
                    break
    finally:
        await built.aclose()


def test_a_demo_fill_writes_no_secret_to_its_cache_dir(tenant: SimulatedTenant, tmp_path: Path):
    tenant.faults.rate_limits_enabled = False
    cache_dir = tmp_path / "demo"
    cache_dir.mkdir()
    with Cache.open_writer(cache_dir / "cache.db") as cache:
        asyncio.run(fill(cache, tenant))
        assert cache.count("provisioning_events") > 0
        assert cache.count("harness_users") > 0
        written = [path for path in cache_dir.rglob("*") if path.is_file()]
        assert any(path.name.endswith("-wal") for path in written)
        scanned = 0
        for path in written:
            data = path.read_bytes()
            scanned += len(data)
            assert hits(data, secrets_of(tenant)) == [], path.name
    assert scanned > 100_000
