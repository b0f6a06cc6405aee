"""Helpers of the dashboard tests: fake collectors, the app factory, waiting for workers."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

from textual.pilot import Pilot
from textual.worker import WorkerCancelled, WorkerFailed

from collectors.base import CollectorError
from dashboard.app import ScimwatchApp, make_app
from dashboard.widgets.tile import Tile
from store.cache import Cache
from store.models import Batch, SourceName
from tests.test_dashboard.builders import INTERVALS, frozen_clock


class FakeCollector:
    """A collector that returns an empty batch, or raises, and counts its calls."""

    def __init__(self, source: SourceName, error: CollectorError | None = None) -> None:
        self.source: SourceName = source
        self.error = error
        self.calls = 0

    async def collect(self, watermark: str | None) -> Batch:
        self.calls += 1
        if self.error is not None:
            raise self.error
        return Batch(source=self.source, records=[])


def app_on(
    cache: Cache, tmp_path: Path, collectors: list[Any] | None = None, **kwargs: Any
) -> ScimwatchApp:
    """The app on `cache` with the frozen clock, exporting into `tmp_path`."""
    return make_app(
        cache,
        collectors or [],
        INTERVALS,
        clock=frozen_clock,
        export_dir=tmp_path,
        **kwargs,
    )


async def settle(app: ScimwatchApp, pilot: Pilot[None]) -> None:
    """Wait until no worker runs and no message is pending (never sleeps)."""
    for _ in range(20):
        with contextlib.suppress(WorkerCancelled, WorkerFailed):
            await app.workers.wait_for_complete()
        await pilot.pause()
        if all(worker.is_finished for worker in app.workers):
            await pilot.pause()
            if all(worker.is_finished for worker in app.workers):
                return


def screen_text(app: ScimwatchApp) -> str:
    """Everything on screen as plain text (the SVG export's text, roughly)."""
    from textual.widgets import DataTable, Static

    parts: list[str] = []
    for widget in app.screen.query("*"):
        if isinstance(widget, Static):
            parts.append(str(widget.render()))
        elif isinstance(widget, DataTable):
            for row_key in widget.rows:
                parts.extend(str(cell) for cell in widget.get_row(row_key))
    return "\n".join(parts)


def tile_number(app: ScimwatchApp, tile_id: str) -> str:
    """The big number an overview tile shows."""
    return str(app.screen.query_one(f"#{tile_id}", Tile).render()).split("\n")[0]
