"""Screens built ahead after the first paint: shown at once, current, and never built twice."""

from __future__ import annotations

import asyncio
import gc
from pathlib import Path

from dashboard.screens.overview import OverviewScreen
from dashboard.widgets.paged_table import PagedTable
from store.cache import Cache
from store.health import recent_cycles
from store.models import Batch
from tests.test_dashboard.builders import NOW, _event
from tests.test_dashboard.helpers import app_on, settle

SIZE = (120, 36)
TABLE_MODES = ("cycles", "retries", "groups", "sso", "events")


def keys(table: PagedTable) -> list[str]:
    return [str(row.key.value) for row in table.ordered_rows]


async def test_every_screen_is_built_and_read_while_the_overview_shows(
    writer: Cache, tmp_path: Path
):
    app = app_on(writer, tmp_path)
    messages: list[object] = []
    async with app.run_test(size=SIZE, message_hook=messages.append) as pilot:
        await settle(app, pilot)
        assert isinstance(app.screen, OverviewScreen)
        assert set(app._screen_stacks) == set(app.MODES)
        for mode in TABLE_MODES:
            [screen] = app._screen_stacks[mode]
            assert screen.query_one(PagedTable).loaded, mode
        cycles_table = app._screen_stacks["cycles"][0].query_one(PagedTable)
        with writer.reading() as db:
            expected = [f"{c.job_id}:{c.cycle_id}" for c in recent_cycles(db, limit=200)]
        assert keys(cycles_table) == expected
        assert sum(isinstance(message, PagedTable.PageRead) for message in messages) == 5
        del messages[:]
        await pilot.press("2")  # shown as built: no read, no new screen
        assert app.screen is app._screen_stacks["cycles"][0]
        assert messages, "the hook sees the switch"
        assert not any(isinstance(message, PagedTable.PageRead) for message in messages)
        assert app.screen.query_one(PagedTable) is cycles_table


async def test_a_screen_built_ahead_reads_again_when_shown_after_the_cache_changed(
    writer: Cache, tmp_path: Path
):
    app = app_on(writer, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        events_table = app._screen_stacks["events"][0].query_one(PagedTable)
        assert "evt-0011" not in keys(events_table)
        newer = _event(11, 1, "cycle-4", "u-dave", "Dave")
        writer.save_batch(Batch(source="graph.provisioning", records=[newer]), NOW, NOW)
        await pilot.press("r")  # the app notices the change
        await settle(app, pilot)
        await pilot.press("6")
        await settle(app, pilot)
        assert app.screen.query_one(PagedTable) is events_table
        assert keys(events_table)[0] == "evt-0011"


async def test_a_key_pressed_before_its_screen_is_built_builds_it_once(
    writer: Cache, tmp_path: Path
):
    app = app_on(writer, tmp_path)
    held = asyncio.Event()
    prebuild = app._prebuild

    async def held_prebuild() -> None:
        await held.wait()
        await prebuild()

    app._prebuild = held_prebuild  # type: ignore[method-assign]
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("6")
        assert set(app._screen_stacks) == {"overview", "events"}, "built by the key alone"
        assert type(app.screen).__name__ == "EventsScreen"
        events_screen = app.screen
        held.set()  # now the prebuild runs, and must skip Events
        await settle(app, pilot)
        assert set(app._screen_stacks) == set(app.MODES)
        assert app._screen_stacks["events"] == [events_screen]
        built = [screen for stack in app._screen_stacks.values() for screen in stack]
        assert len(built) == len(app.MODES)
        await pilot.press("escape", "1", "6")
        assert app._screen_stacks["events"] == [events_screen]


async def test_without_prebuild_screens_are_built_on_their_first_visit(
    writer: Cache, tmp_path: Path
):
    app = app_on(writer, tmp_path, prebuild_screens=False)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        assert set(app._screen_stacks) == {"overview"}
        await pilot.press("3")
        await settle(app, pilot)
        assert set(app._screen_stacks) == {"overview", "retries"}


async def test_the_start_up_heap_is_frozen_after_the_first_paint(writer: Cache, tmp_path: Path):
    gc.unfreeze()
    app = app_on(writer, tmp_path, prebuild_screens=False)
    try:
        async with app.run_test(size=SIZE) as pilot:
            await settle(app, pilot)
            assert gc.get_freeze_count() > 10_000  # modules, Textual, the overview
    finally:
        gc.unfreeze()  # the test process goes on: let the collector see it all again


async def test_quitting_while_screens_are_built_ahead_closes_cleanly(
    writer: Cache, tmp_path: Path, monkeypatch
):
    """ "q" in the first second or two: Textual closes the screens while the background would
    still add some (it failed with "dictionary changed size during iteration")."""
    closing = asyncio.Event()

    class HeldAsyncio:
        """The app's asyncio, but its pause between two screens ends as the app closes."""

        def __getattr__(self, name: str) -> object:
            return getattr(asyncio, name)

        @staticmethod
        async def sleep(_seconds: float) -> None:
            await closing.wait()

    monkeypatch.setattr("dashboard.app.asyncio", HeldAsyncio())
    app = app_on(writer, tmp_path)
    close_all = app._close_all

    async def closing_all() -> None:
        closing.set()  # the background resumes at the close's first await
        await close_all()

    app._close_all = closing_all  # type: ignore[method-assign]
    async with app.run_test(size=SIZE) as pilot:
        while len(app._screen_stacks) < 2:  # the first screen built ahead
            await pilot.pause()
        built = set(app._screen_stacks)
    assert len(built) == 2, "still building when the app quits"
    assert app._exception is None
