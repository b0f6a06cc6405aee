"""Collectors built after the first paint: the app shows the cache first, then polls."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path

from collectors.base import AuthFailed
from dashboard.screens.overview import OverviewScreen
from dashboard.widgets.source_status import SourceStatusBar
from store.cache import Cache
from tests.test_dashboard.helpers import FakeCollector, app_on, settle

SIZE = (120, 36)


@dataclass
class FakeSet:
    """What build_collector_set returns, counting closes."""

    collectors: list[FakeCollector]
    closed: int = 0
    built_in: list[str] = field(default_factory=list)

    async def aclose(self) -> None:
        self.closed += 1


def mode_note(app) -> str:
    return app.screen.query_one(SourceStatusBar).mode_shown


async def test_collectors_are_built_off_the_event_loop_then_polled_and_closed(
    writer: Cache, tmp_path: Path
):
    built = FakeSet([FakeCollector("graph.provisioning"), FakeCollector("harness.scim")])
    release = threading.Event()

    def factory() -> FakeSet:
        built.built_in.append(threading.current_thread().name)
        release.wait(timeout=30)  # the app must paint while this blocks
        return built

    app = app_on(writer, tmp_path, collector_factory=factory)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert isinstance(app.screen, OverviewScreen)
        assert mode_note(app) == "starting the collectors…"
        assert [c.calls for c in built.collectors] == [0, 0]
        release.set()
        await settle(app, pilot)
        assert len(built.built_in) == 1
        assert built.built_in[0] != threading.main_thread().name
        assert [c.calls for c in built.collectors] == [1, 1]
        assert mode_note(app) == "live"
    assert built.closed == 1


async def test_a_factory_that_fails_is_reported_and_the_cache_still_shows(
    writer: Cache, tmp_path: Path
):
    def factory() -> FakeSet:
        raise AuthFailed("graph: auth_kind is client_secret but no client secret is set")

    app = app_on(writer, tmp_path, collector_factory=factory)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        assert app.is_running
        assert mode_note(app) == "cache only: no sources configured"
        titles = [notification.title for notification in app._notifications]
        assert "Cannot start the collectors" in titles
        messages = " ".join(notification.message for notification in app._notifications)
        assert "no client secret is set" in messages


async def test_a_reader_never_builds_collectors(reader: Cache, tmp_path: Path):
    calls: list[int] = []

    def factory() -> FakeSet:
        calls.append(1)
        return FakeSet([])

    app = app_on(reader, tmp_path, read_only=True, writer="pid 1", collector_factory=factory)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        assert calls == []
        assert mode_note(app).startswith("read-only")
