"""poll_once: a fake collector, a real cache on disk."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from collectors.base import AuthFailed, CollectorError
from collectors.runner import poll_once, poll_source
from store.models import Batch, EntraGroup, Snapshot, SourceName

T0 = datetime(2024, 5, 4, 12, 0, tzinfo=UTC)


class FakeCollector:
    source: SourceName = "graph.directory"

    def __init__(self, batch: Batch | None = None, error: CollectorError | None = None):
        self.batch = batch
        self.error = error
        self.watermarks: list[str | None] = []

    async def collect(self, watermark):
        self.watermarks.append(watermark)
        if self.error is not None:
            raise self.error
        return self.batch


def batch(*names: str, watermark: str | None = "w1", complete: bool = True) -> Batch:
    return Batch(
        source="graph.directory",
        records=[EntraGroup(id=name, display_name=name.title()) for name in names],
        snapshots=[Snapshot(table="entra_groups")],
        watermark=watermark,
        complete=complete,
    )


async def test_success_saves_rows_watermark_and_an_ok_poll_run(cache):
    collector = FakeCollector(batch("a", "b"))
    poll_run = await poll_once(collector, cache, clock=lambda: T0)
    assert poll_run.ok
    assert poll_run.records == 2
    assert poll_run.id is not None
    assert cache.count("entra_groups") == 2
    assert cache.watermark("graph.directory") == "w1"
    assert cache.last_poll("graph.directory") == poll_run
    assert collector.watermarks == [None]


async def test_the_saved_watermark_is_handed_to_the_next_poll(cache):
    collector = FakeCollector(batch("a"))
    await poll_once(collector, cache, clock=lambda: T0)
    await poll_once(collector, cache, clock=lambda: T0)
    assert collector.watermarks == [None, "w1"]


async def test_failure_records_a_failed_poll_run_and_no_rows(cache):
    await poll_once(FakeCollector(batch("a")), cache, clock=lambda: T0)
    error = AuthFailed(
        "graph: the access token was rejected; Bearer eyJhbGciOi.eyJzdWIi.sig pat.acct.id.s3cret"
    )
    with pytest.raises(AuthFailed):
        await poll_once(FakeCollector(error=error), cache, clock=lambda: T0)
    failed = cache.last_poll("graph.directory")
    assert failed is not None
    assert not failed.ok
    assert failed.error_kind == "auth"
    assert "eyJ" not in failed.error
    assert "s3cret" not in failed.error
    assert cache.count("entra_groups") == 1  # the previous data stays
    assert cache.watermark("graph.directory") == "w1"


async def test_poll_source_reports_an_incomplete_backfill(cache):
    result = await poll_source(FakeCollector(batch("a", complete=False)), cache, clock=lambda: T0)
    assert result.complete is False
    assert result.poll_run.ok


async def test_a_vanished_row_vanishes_with_the_snapshot(cache):
    await poll_once(FakeCollector(batch("a", "b")), cache, clock=lambda: T0)
    await poll_once(FakeCollector(batch("a")), cache, clock=lambda: T0)
    assert cache.count("entra_groups") == 1
