"""Every screen on a cache filled from the simulator's `incident` scenario by the real collectors.

What is on screen is compared with the health model's answers read from the same cache; the
bindings (drill-in and back, filter, sort, copy, export) are driven with the Pilot; and a live
app polling the simulator shows a source failing under an injected fault, then recovering.
"""

from __future__ import annotations

import asyncio
import csv
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from textual.color import Color
from textual.pilot import Pilot
from textual.widgets import DataTable, Static

from collectors.config import build_collectors
from collectors.http import HttpPolicy
from collectors.simulator import ManualClock, SimulatedTenant
from dashboard.app import ScimwatchApp, make_app
from dashboard.screens.event_detail import EventDetailModal
from dashboard.screens.events import EventsScreen
from dashboard.screens.user_lookup import UserLookupScreen
from dashboard.widgets.paged_table import PagedTable, sort_key
from dashboard.widgets.source_status import SourceStatusBar
from dashboard.widgets.tile import Tile
from store import directory, health
from store.cache import Cache
from store.playbook import parse_service_message
from tests.simulated_tenant import collect_everything, connections
from tests.test_dashboard.builders import INTERVALS
from tests.test_dashboard.helpers import settle

SIZE = (160, 48)


@pytest.fixture(scope="module")
def filled(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Cache, datetime]]:
    """A cache every collector filled from the `incident` scenario, and the scenario's now."""
    with SimulatedTenant("incident", seed=7, clock=ManualClock()) as tenant:
        tenant.faults.rate_limits_enabled = False
        cache = Cache.open_writer(tmp_path_factory.mktemp("simulated") / "cache.db")
        asyncio.run(collect_everything(tenant, cache))
        now = tenant.scenario.clock.now()
    yield cache, now
    cache.close()


def viewer(cache: Cache, now: datetime, export_dir: Path) -> ScimwatchApp:
    """A read-only app on the filled cache, its clock frozen at the scenario's now."""
    return make_app(
        cache,
        [],
        INTERVALS,
        read_only=True,
        writer="test",
        clock=lambda: now,
        export_dir=export_dir,
    )


def read(cache: Cache, function: Any, *args: Any) -> Any:
    with cache.reading() as db:
        return function(db, *args)


def table(app: ScimwatchApp) -> PagedTable:
    return app.screen.query_one(PagedTable)


def keys(app: ScimwatchApp) -> list[str]:
    return [str(row.key.value) for row in table(app).ordered_rows]


def column(app: ScimwatchApp, index: int) -> list[str]:
    grid = table(app)
    return [str(grid.get_row(row.key)[index]) for row in grid.ordered_rows]


def detail(app: ScimwatchApp) -> str:
    return str(app.screen.query_one("#detail", Static).render())


def tile_number(app: ScimwatchApp, tile_id: str) -> str:
    return str(app.screen.query_one(f"#{tile_id}", Tile).render()).split("\n")[0]


async def press(app: ScimwatchApp, pilot: Pilot[None], *keys: str) -> None:
    await pilot.press(*keys)
    await settle(app, pilot)


def exported(directory: Path, name: str) -> list[list[str]]:
    """The rows of the one CSV file ctrl+s wrote for screen `name`."""
    [path] = directory.glob(f"scimwatch-{name}-*.csv")
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.reader(handle))


def retry_key(retry: Any) -> str:
    return f"{retry.job_id}:{retry.source_id}"


def sso_key(conflict: Any) -> str:
    return f"{conflict.kind}:{conflict.app}:{conflict.principal_id or conflict.email}"


def test_the_scenario_filled_every_screen(filled: tuple[Cache, datetime]) -> None:
    """Guard: the assertions below compare non-empty answers."""
    cache, now = filled
    assert read(cache, health.pending_retries, now)
    assert read(cache, directory.group_mappings)
    assert read(cache, directory.sso_conflicts)
    assert read(cache, health.recent_cycles)
    assert read(cache, health.recent_events)


async def test_overview_tiles_and_freshness(filled: tuple[Cache, datetime], tmp_path: Path) -> None:
    cache, now = filled
    with cache.reading() as db:
        expected = health.overview(db, now, cache.freshness(now, INTERVALS))
    assert expected.last_cycle is not None
    app = viewer(cache, now, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await press(app, pilot, "2")
        await press(app, pilot, "1")
        assert tile_number(app, "tile-pending") == str(expected.pending_retries)
        assert tile_number(app, "tile-escalated") == str(expected.escalated_retries)
        assert tile_number(app, "tile-cycle") == str(expected.last_cycle.failed)
        assert tile_number(app, "tile-groups") == str(expected.group_problems)
        assert tile_number(app, "tile-sso") == str(expected.sso_conflicts)
        jobs = str(app.screen.query_one("#jobs", Static).render())
        for job in expected.jobs:
            assert job.state.upper().replace("_", " ") in jobs
        assert expected.last_cycle.cycle_id in str(
            app.screen.query_one("#last-cycle", Static).render()
        )
        freshness = app.screen.query_one("#freshness", DataTable)
        assert [str(key.value) for key in freshness.rows] == [
            item.source for item in expected.freshness
        ]
        await press(app, pilot, "enter")  # the focused tile: pending retries
        assert type(app.screen).__name__ == "RetriesScreen"


async def test_retries_match_and_bindings_work(
    filled: tuple[Cache, datetime], tmp_path: Path
) -> None:
    cache, now = filled
    expected = read(cache, health.pending_retries, now)
    app = viewer(cache, now, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await press(app, pilot, "3")
        assert keys(app) == [retry_key(r) for r in expected]
        assert column(app, 0) == [r.source_name for r in expected]
        assert column(app, 4) == [r.error_code for r in expected]
        assert expected[0].hint.title in detail(app)
        # What Harness answered, out of the body Entra quotes in its reason.
        said = parse_service_message(expected[0].reason)
        assert said
        assert said not in expected[0].hint.what_to_do
        assert f"Harness says: {said}" in " ".join(detail(app).split())
        await press(app, pilot, "y")
        assert app.clipboard == expected[0].source_id
        await press(app, pilot, "s")  # by identity
        by_name = sorted(expected, key=lambda r: sort_key(r.source_name))
        assert keys(app) == [retry_key(r) for r in by_name]
        await press(app, pilot, "ctrl+s")
        rows = exported(tmp_path, "retries")
        assert rows[0][0] == "Identity"
        assert [(row[0], row[4]) for row in rows[1:]] == [
            (r.source_name, r.error_code) for r in expected
        ]
        code = expected[-1].error_code
        await press(app, pilot, "slash", *code)
        assert keys(app) == [
            retry_key(r)
            for r in expected
            if code.casefold()
            in " ".join(
                (r.source_name, r.source_id, r.error_code, r.hint.title, r.reason)
            ).casefold()
        ]
        await press(app, pilot, "escape")  # clears the filter
        selected = table(app).selected
        assert selected is not None
        await press(app, pilot, "enter")  # the object's events
        assert isinstance(app.screen, EventsScreen)
        events = read(cache, health.recent_events, 200, None, None, selected.copy_id)
        assert keys(app) == [event.id for event in events]
        await press(app, pilot, "escape", "escape")  # the filter it opened with, then back
        assert type(app.screen).__name__ == "RetriesScreen"


async def test_cycles_match_and_drill_into_a_cycle(
    filled: tuple[Cache, datetime], tmp_path: Path
) -> None:
    cache, now = filled
    expected = read(cache, health.recent_cycles, 200)
    app = viewer(cache, now, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await press(app, pilot, "2")
        assert keys(app) == [f"{c.job_id}:{c.cycle_id}" for c in expected]
        assert column(app, 4) == [str(c.failed) for c in expected]
        await press(app, pilot, "enter")
        assert isinstance(app.screen, EventsScreen)
        assert app.screen.cycle == (expected[0].job_id, expected[0].cycle_id)
        events = read(cache, health.cycle_events, expected[0].job_id, expected[0].cycle_id)
        assert keys(app) == [event.id for event in events][: table(app).page_size]
        await press(app, pilot, "escape")
        assert type(app.screen).__name__ == "CyclesScreen"


async def test_groups_match_with_states(filled: tuple[Cache, datetime], tmp_path: Path) -> None:
    cache, now = filled
    mappings = sorted(read(cache, directory.group_mappings), key=lambda m: m.state == "ok")
    app = viewer(cache, now, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await press(app, pilot, "4")
        assert keys(app) == [
            m.entra_group_id or f"harness:{m.harness_identifier}" for m in mappings
        ]
        assert column(app, 0) == [m.state.replace("_", " ") for m in mappings]
        drifting = next(i for i, m in enumerate(mappings) if m.missing_in_harness)
        table(app).move_cursor(row=drifting)
        await pilot.pause()
        missing = mappings[drifting].missing_in_harness
        assert f"Missing in Harness ({len(missing)})" in detail(app)
        await press(app, pilot, "home")
        await press(app, pilot, "enter")
        if mappings[0].entra_group_id:
            assert isinstance(app.screen, EventsScreen)
            await press(app, pilot, "escape", "escape")  # the filter it opened with, then back
        assert type(app.screen).__name__ == "GroupsScreen"


async def test_sso_match_and_lead_to_user_lookup(
    filled: tuple[Cache, datetime], tmp_path: Path
) -> None:
    cache, now = filled
    conflicts = read(cache, directory.sso_conflicts)
    shown = list({sso_key(c): c for c in reversed(conflicts)}.values())[::-1]
    app = viewer(cache, now, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await press(app, pilot, "5")
        assert keys(app) == [sso_key(c) for c in shown]
        assert [cell.lower() for cell in column(app, 1)] == [c.app for c in shown]
        assert column(app, 2) == [c.email for c in shown]
        await press(app, pilot, "enter")
        assert isinstance(app.screen, UserLookupScreen)
        first = conflicts[0]
        answer = read(cache, health.lookup_user, first.email or first.principal_id, now)
        verdict = str(app.screen.query_one("#verdict", Static).render())
        assert verdict == f"Verdict: {answer.verdict}"
        await press(app, pilot, "escape")
        assert type(app.screen).__name__ == "SsoScreen"


async def test_sso_shows_every_conflict(filled: tuple[Cache, datetime], tmp_path: Path) -> None:
    cache, now = filled
    conflicts = read(cache, directory.sso_conflicts)
    app = viewer(cache, now, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await press(app, pilot, "5")
        assert table(app).row_count == len(conflicts)
        grid = table(app)
        shown = [tuple(str(cell) for cell in grid.get_row(row.key)) for row in grid.ordered_rows]
        assert len(set(shown)) == len(shown)  # no two conflicts look alike


async def test_events_match_filter_and_detail(
    filled: tuple[Cache, datetime], tmp_path: Path
) -> None:
    cache, now = filled
    expected = read(cache, health.recent_events, 200)
    retry = read(cache, health.pending_retries, now)[0]
    by_object = read(cache, health.recent_events, 200, None, None, retry.source_id)
    app = viewer(cache, now, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await press(app, pilot, "6")
        assert keys(app) == [event.id for event in expected]
        await press(app, pilot, "enter")
        assert isinstance(app.screen, EventDetailModal)
        text = str(app.screen.query_one("#event-detail", Static).render())
        assert expected[0].id in text
        await press(app, pilot, "y")
        assert app.clipboard == expected[0].id
        await press(app, pilot, "escape")
        assert isinstance(app.screen, EventsScreen)
        await press(app, pilot, "slash", *retry.source_id)
        assert keys(app) == [event.id for event in by_object]
        assert by_object
        # The newest is the failure pending retry: what Harness said leads its reason.
        said = parse_service_message(by_object[0].reason)
        assert said
        assert f"Harness says: {said} Reason:" in " ".join(detail(app).split())
        await press(app, pilot, "ctrl+s")
        rows = exported(tmp_path, "events")
        assert len(rows) - 1 == len(by_object)
        # The app of each event's job, and the whole cycle id (the column shows its start).
        apps = {job.job.job_id: job.job.app for job in read(cache, health.job_health, now)}
        assert [(row[4], row[7]) for row in rows[1:]] == [
            ({"nextgen": "NextGen", "firstgen": "FirstGen"}[apps[e.job_id]], e.cycle_id)
            for e in by_object
        ]
        assert all(len(row[7]) == 36 for row in rows[1:])
        await press(app, pilot, "escape")  # clears the filter
        assert keys(app) == [event.id for event in expected]


async def test_user_lookup_matches(filled: tuple[Cache, datetime], tmp_path: Path) -> None:
    cache, now = filled
    retry = read(cache, health.pending_retries, now)[0]
    answer = read(cache, health.lookup_user, retry.source_id, now)
    app = viewer(cache, now, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await press(app, pilot, "7", *retry.source_id, "enter")
        verdict = str(app.screen.query_one("#verdict", Static).render())
        assert verdict == f"Verdict: {answer.verdict}"
        assert answer.pending is not None
        entra = " ".join(str(app.screen.query_one("#entra", Static).render()).split())
        assert answer.pending.error_code in entra
        # What Harness said leads, as on the Retries screen, not Microsoft's whole paragraph.
        said = parse_service_message(answer.pending.reason)
        assert said
        assert f"Harness says: {said}" in entra
        assert " ".join(answer.pending.reason.split())[:60] not in entra
        assert f"What to do: {answer.pending.hint.title}" in entra


def status_words(app: ScimwatchApp) -> dict[str, str]:
    return app.screen.query_one(SourceStatusBar).shown()


async def poll_now(app: ScimwatchApp, pilot: Pilot[None]) -> None:
    app.poll_due_sources(force=True)
    await settle(app, pilot)
    app.refresh_status()
    await settle(app, pilot)


async def test_status_bar_shows_a_failing_source_then_its_recovery(tmp_path: Path) -> None:
    with SimulatedTenant("incident", seed=7, clock=ManualClock()) as tenant:
        tenant.faults.rate_limits_enabled = False
        graph, harness = connections(tenant)
        built = build_collectors(
            graph,
            harness,
            clock=tenant.scenario.clock.now,
            reporting_rate=(1000, 1.0),
            policy=HttpPolicy(max_attempts=1),
        )
        jobs = [c for c in built.collectors if c.source == "graph.jobs"]
        with Cache.open_writer(tmp_path / "cache.db") as cache:
            app = make_app(
                cache,
                jobs,
                INTERVALS,
                clock=tenant.scenario.clock.now,
                export_dir=tmp_path,
                on_exit=built.aclose,
            )
            async with app.run_test(size=SIZE) as pilot:
                await settle(app, pilot)  # the first poll, started on mount
                assert "jobs ✗" not in status_words(app)["graph.jobs"]
                tenant.faults.set("graph.jobs", "status", status=500)
                await poll_now(app, pilot)
                state = {s.source: s for s in app.source_states}["graph.jobs"]
                assert state.condition == "failing"
                assert status_words(app)["graph.jobs"].startswith("jobs ✗ since")
                bar = app.screen.query_one(SourceStatusBar)
                [entry] = [e for e in bar.entries if e.state.source == "graph.jobs"]
                painted = app.screen.get_style_at(bar.region.x + entry.start, bar.region.y)
                assert painted.color is not None
                assert painted.color.triplet == Color.parse(app.get_css_variables()["error"]).rgb
                tenant.faults.clear()
                await poll_now(app, pilot)
                state = {s.source: s for s in app.source_states}["graph.jobs"]
                assert state.condition == "ok"
                assert "✗" not in status_words(app)["graph.jobs"]
                assert any("reachable again" in str(n.message) for n in app._notifications)
