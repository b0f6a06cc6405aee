"""The TUI opens its cache without the integrity check and runs it after the first paint."""

from __future__ import annotations

from pathlib import Path

from dashboard.widgets.source_status import SourceStatusBar
from store.cache import Cache
from tests.test_dashboard.helpers import FakeCollector, app_on, settle
from tests.test_reliability.damage import filled, garbage_inside

SIZE = (120, 36)


def test_damage_is_empty_for_a_sound_cache_and_names_the_problem_otherwise(tmp_path: Path):
    path = filled(tmp_path / "cache.db")
    with Cache.open_writer(path) as cache:
        assert cache.damage() == ""
    garbage_inside(path)
    with Cache.open_writer(path, quick_check=False) as cache:
        assert cache.recovered_from is None  # not checked at open: nothing moved aside
        assert cache.damage() != ""
    # What damage() found makes the next open check, even unasked: moved aside, rebuilt.
    with Cache.open_writer(path, quick_check=False) as cache:
        assert cache.recovered_from is not None
        assert cache.damage() == ""
    assert not path.with_name("cache.db.damaged").exists()


async def test_a_damaged_cache_is_reported_after_the_first_paint_and_polling_stops(
    tmp_path: Path,
):
    path = filled(tmp_path / "cache.db")
    garbage_inside(path)
    collector = FakeCollector("graph.jobs")
    with Cache.open_writer(path, quick_check=False) as cache:
        app = app_on(cache, tmp_path, [collector], check_cache=True)
        async with app.run_test(size=SIZE) as pilot:
            await settle(app, pilot)
            assert app.damaged != ""
            titles = [notification.title for notification in app._notifications]
            assert "The cache is damaged" in titles
            bar = app.screen.query_one(SourceStatusBar)
            assert bar.mode_shown.startswith("cache damaged")
            calls = collector.calls
            await pilot.press("r")  # even a forced refresh no longer polls
            await settle(app, pilot)
            assert collector.calls == calls
            assert app.is_running


async def test_a_sound_cache_checks_quietly(tmp_path: Path):
    path = filled(tmp_path / "cache.db")
    collector = FakeCollector("graph.jobs")
    with Cache.open_writer(path, quick_check=False) as cache:
        app = app_on(cache, tmp_path, [collector], check_cache=True)
        async with app.run_test(size=SIZE) as pilot:
            await settle(app, pilot)
            assert app.damaged == ""
            assert not [n for n in app._notifications if n.severity == "error"]
            await pilot.press("r")
            await settle(app, pilot)
            assert collector.calls >= 2
