"""The first read, started before the app: shown in the first frame, never read twice."""

from __future__ import annotations

from concurrent.futures import Future
from pathlib import Path
from typing import Any

import pytest

import dashboard.screens.overview as overview_screen
from dashboard.first_read import FirstRead, read_first, read_overview, start_first_read
from dashboard.widgets.source_status import SourceStatusBar
from store.cache import Cache
from store.health import overview
from store.models import Batch
from tests.test_dashboard.builders import INTERVALS, NOW, failing_users
from tests.test_dashboard.helpers import app_on, settle, tile_number

SIZE = (120, 36)


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """Every overview the screen reads itself (not the first read's)."""
    counted: list[object] = []

    def counting(*args: Any, **kwargs: Any) -> Any:
        counted.append(args)
        return read_overview(*args, **kwargs)

    monkeypatch.setattr(overview_screen, "read_overview", counting)
    return counted


def done(first: FirstRead) -> Future[FirstRead]:
    future: Future[FirstRead] = Future()
    future.set_result(first)
    return future


async def test_the_first_frame_shows_the_first_read_and_nothing_reads_again(
    writer: Cache, tmp_path: Path, reads: list[object], frames: list[str]
):
    future = start_first_read(writer.path, NOW, INTERVALS)
    first = future.result(timeout=30)
    app = app_on(writer, tmp_path, first_read=future)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        assert reads == []  # neither the mount nor the status announced a change
        assert tile_number(app, "tile-pending") == str(first.overview.pending_retries)
        bar = app.screen.query_one(SourceStatusBar).shown()
        assert bar["graph.provisioning"] != "logs no data"
    assert "Reading the cache" not in frames[0]
    assert "HEALTHY" in frames[0]
    assert "QUARANTINE" in frames[0]


async def test_a_first_read_not_done_yet_is_waited_for_not_read_again(
    writer: Cache, tmp_path: Path, reads: list[object], frames: list[str]
):
    future: Future[FirstRead] = Future()
    app = app_on(writer, tmp_path, first_read=future)
    async with app.run_test(size=SIZE) as pilot:
        assert "Reading the cache" in frames[0]
        future.set_result(read_first(writer.path, NOW, INTERVALS))
        await settle(app, pilot)
        truth = future.result()
        assert tile_number(app, "tile-pending") == str(truth.overview.pending_retries)
        # The status, read at mount as usual, announces the cache: one read, not two.
        assert len(reads) == 1


async def test_a_failed_first_read_is_read_again(
    writer: Cache, tmp_path: Path, reads: list[object]
):
    future: Future[FirstRead] = Future()
    future.set_exception(OSError("disk I/O error"))
    app = app_on(writer, tmp_path, first_read=future)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        with writer.reading() as db:
            truth = overview(db, NOW, writer.freshness(NOW, INTERVALS))
        assert tile_number(app, "tile-pending") == str(truth.pending_retries)
        assert len(reads) == 2  # the mount, then the status read's announcement


async def test_a_poll_saved_after_the_first_read_is_shown_at_the_next_status_read(
    writer: Cache, tmp_path: Path, reads: list[object]
):
    """The first read's poll id was read before its overview: a poll saved after it is newer
    than that id, so the next status read announces it and the overview reads again."""
    first = read_first(writer.path, NOW, INTERVALS)
    more = failing_users(3)
    writer.save_batch(Batch(source="graph.provisioning", records=list(more)), NOW, NOW)
    app = app_on(writer, tmp_path, first_read=done(first))
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        assert tile_number(app, "tile-pending") == str(first.overview.pending_retries)
        app.refresh_status()
        await settle(app, pilot)
        assert len(reads) == 1
        assert int(tile_number(app, "tile-pending")) == first.overview.pending_retries + 3
