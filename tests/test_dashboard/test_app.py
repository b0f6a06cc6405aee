"""The app: navigation, polling, the status bar, read-only mode, failures made visible."""

from __future__ import annotations

from pathlib import Path

from textual.widgets import Static

from collectors.base import SourceUnavailable, Throttled
from dashboard.messages import PollFailed, PollStarted, PollSucceeded
from dashboard.screens.events import EventsScreen
from dashboard.screens.overview import OverviewScreen
from dashboard.screens.retries import RetriesScreen
from dashboard.widgets.nav_bar import NavBar
from dashboard.widgets.source_status import SourceStatusBar
from store.cache import Cache
from tests.test_dashboard.builders import INTERVALS
from tests.test_dashboard.helpers import FakeCollector, app_on, settle

SIZE = (120, 36)


def status_bar_text(app) -> str:
    return " ".join(app.screen.query_one(SourceStatusBar).shown().values())


def mode_note(app) -> str:
    return app.screen.query_one(SourceStatusBar).mode_shown


async def test_number_keys_switch_screens_and_escape_goes_back(writer: Cache, tmp_path: Path):
    app = app_on(writer, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        assert isinstance(app.screen, OverviewScreen)
        expected = {
            "2": "CyclesScreen",
            "3": "RetriesScreen",
            "4": "GroupsScreen",
            "5": "SsoScreen",
            "6": "EventsScreen",
            "7": "UserLookupScreen",
            "escape,1": "OverviewScreen",  # the lookup box has the keyboard until esc
        }
        for keys, name in expected.items():
            await pilot.press(*keys.split(","))
            await settle(app, pilot)
            assert type(app.screen).__name__ == name
        await pilot.press("3", "escape")
        assert isinstance(app.screen, OverviewScreen)


async def test_overview_number_opens_its_screen(writer: Cache, tmp_path: Path):
    app = app_on(writer, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.click("#tile-pending")
        await settle(app, pilot)
        assert isinstance(app.screen, RetriesScreen)
        await pilot.press("1")
        await settle(app, pilot)
        app.screen.query_one("#tile-sso").focus()
        await pilot.press("enter")
        await settle(app, pilot)
        assert type(app.screen).__name__ == "SsoScreen"


async def test_fake_collectors_are_polled_and_status_bar_says_ok(writer: Cache, tmp_path: Path):
    collectors = [FakeCollector("graph.provisioning"), FakeCollector("harness.scim")]
    messages: list[object] = []
    app = app_on(writer, tmp_path, collectors)
    async with app.run_test(size=SIZE, message_hook=messages.append) as pilot:
        await settle(app, pilot)
        assert [c.calls for c in collectors] == [1, 1]
        assert sum(isinstance(m, PollStarted) for m in messages) == 2
        assert sum(isinstance(m, PollSucceeded) for m in messages) == 2
        assert "logs 0s" in status_bar_text(app)
        assert mode_note(app) == "live"


async def test_polls_of_one_source_never_overlap(writer: Cache, tmp_path: Path):
    collector = FakeCollector("graph.jobs")
    app = app_on(writer, tmp_path, [collector])
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        assert collector.calls == 1  # the first poll, at start
        app.poll_due_sources(force=True)
        app.poll_due_sources(force=True)  # the previous poll is still running: skipped
        await settle(app, pilot)
        assert collector.calls == 2


async def test_failing_collector_posts_poll_failed_and_status_shows_it(
    writer: Cache, tmp_path: Path
):
    failing = FakeCollector("harness.scim", SourceUnavailable("connection refused"))
    messages: list[object] = []
    app = app_on(writer, tmp_path, [failing])
    async with app.run_test(size=SIZE, message_hook=messages.append) as pilot:
        await settle(app, pilot)
        failed = [m for m in messages if isinstance(m, PollFailed)]
        assert len(failed) == 1
        assert failed[0].source == "harness.scim"
        assert failed[0].kind == "unavailable"
        assert "scim ✗ since 10:00 UTC" in status_bar_text(app)
        assert [n.message for n in app._notifications] == ["connection refused"]
        # The overview says so, and keeps the cached data on screen.
        offline = str(app.screen.query_one("#offline", Static).render())
        assert "harness.scim failing since" in offline
        assert "connection refused" in offline
        assert "HEALTHY" in str(app.screen.query_one("#jobs", Static).render())


async def test_source_recovers_after_failure(writer: Cache, tmp_path: Path):
    collector = FakeCollector("harness.scim", SourceUnavailable("connection refused"))
    app = app_on(writer, tmp_path, [collector])
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        assert "✗" in status_bar_text(app)
        collector.error = None
        await pilot.press("r")
        await settle(app, pilot)
        assert "✗" not in status_bar_text(app)
        assert "scim 0s" in status_bar_text(app)
        assert any(n.title == "Recovered" for n in app._notifications)


async def test_throttled_source_shows_until_when(writer: Cache, tmp_path: Path):
    collector = FakeCollector("graph.provisioning", Throttled("429", retry_after=300))
    app = app_on(writer, tmp_path, [collector])
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        assert "logs throttled until 10:05 UTC" in status_bar_text(app)


async def test_pause_stops_polling_and_says_so(writer: Cache, tmp_path: Path):
    collector = FakeCollector("graph.jobs")
    app = app_on(writer, tmp_path, [collector])
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("p")
        assert app.paused
        assert mode_note(app) == "PAUSED (p resumes)"
        app.poll_due_sources()
        await settle(app, pilot)
        assert collector.calls == 1


async def test_read_only_app_never_polls_and_follows_the_writer(
    seeded: Path, reader: Cache, tmp_path: Path
):
    collector = FakeCollector("graph.jobs")
    app = app_on(reader, tmp_path, [collector], read_only=True, writer="pid 4242")
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        assert collector.calls == 0
        assert mode_note(app) == "read-only: pid 4242 writes this cache"
        changes: list[object] = []
        app.watch(app, "cache_changed_at", lambda when: changes.append(when), init=False)
        # Another process (a headless collector) records a poll: the app follows.
        from store.models import Batch
        from tests.test_dashboard.builders import NOW

        with Cache.open_writer(seeded) as other_writer:
            other_writer.save_batch(Batch(source="graph.jobs"), NOW, NOW)
        app.refresh_status()
        await settle(app, pilot)
        assert len(changes) == 1


async def test_unexpected_error_in_a_poll_is_shown_not_fatal(writer: Cache, tmp_path: Path):
    collector = FakeCollector("graph.jobs", RuntimeError("bug"))  # type: ignore[arg-type]
    app = app_on(writer, tmp_path, [collector])
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        assert app.is_running
        assert any("unexpected error" in str(n.message) for n in app._notifications)


async def test_command_palette_lists_every_screen_and_action(writer: Cache, tmp_path: Path):
    app = app_on(writer, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("6")
        await settle(app, pilot)
        titles = [command.title for command in app.get_system_commands(app.screen)]
        for title in (
            "Go to Retries",
            "Refresh",
            "Pause",
            "Help",
            "Filter",
            "Sort",
            "Copy id",
            "Export CSV",
            "Status filter",
            "Theme",
        ):
            assert title in titles
        assert isinstance(app.screen, EventsScreen)


async def test_help_is_contextual(writer: Cache, tmp_path: Path):
    app = app_on(writer, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("3")
        await settle(app, pilot)
        await pilot.press("question_mark")
        await pilot.pause()
        text = str(app.screen.query_one("#help-text", Static).render())
        assert "ESCALATED" in text
        assert "Copy id" in text
        await pilot.press("escape")
        assert isinstance(app.screen, RetriesScreen)


async def test_mouse_on_the_nav_bar_switches_screens(writer: Cache, tmp_path: Path):
    app = app_on(writer, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        bar = app.screen.query_one(NavBar)
        assert str(bar.render())[bar.offset_of("events") :].startswith("6 Events")
        await pilot.click(NavBar, offset=(bar.offset_of("events"), 0))
        await settle(app, pilot)
        assert isinstance(app.screen, EventsScreen)


async def test_a_failing_source_backs_off(writer: Cache, tmp_path: Path):
    import time

    collector = FakeCollector("graph.jobs", SourceUnavailable("down"))
    app = app_on(writer, tmp_path, [collector])
    interval = INTERVALS["graph.jobs"].total_seconds()
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        first_wait = app._next_due["graph.jobs"] - time.monotonic()
        app.poll_due_sources(force=True)
        await settle(app, pilot)
        second_wait = app._next_due["graph.jobs"] - time.monotonic()
        assert interval * 0.9 < first_wait <= interval
        assert interval * 1.9 < second_wait <= interval * 2
        assert len(app._notifications) == 1  # one notification per failure run
