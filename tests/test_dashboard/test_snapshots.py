"""What each screen looks like on the seeded cache: SVG baselines, fixed size and frozen clock."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.pilot import Pilot

from store.cache import Cache
from tests.test_dashboard.builders import build_cache, empty_cache, hostile_names
from tests.test_dashboard.helpers import app_on, settle

SIZE = (120, 36)


def keys_then_settle(*keys: str):
    async def run_before(pilot: Pilot[None]) -> None:
        await settle(pilot.app, pilot)  # type: ignore[arg-type]
        for key in keys:
            await pilot.press(key)
            await settle(pilot.app, pilot)  # type: ignore[arg-type]

    return run_before


@pytest.mark.parametrize(
    ("name", "keys"),
    [
        ("overview", ()),
        ("cycles", ("2",)),
        ("retries", ("3",)),
        ("groups", ("4",)),
        ("sso", ("5",)),
        ("events", ("6",)),
        ("user_lookup", ("7", *"bob@example.com", "enter")),
        ("event_detail", ("6", "down", "down", "enter")),
        ("cycle_events", ("2", "enter")),
        ("help", ("3", "question_mark")),
        ("events_failures_only", ("6", "f")),
    ],
)
def test_screen(snap_compare, writer: Cache, tmp_path: Path, name: str, keys: tuple[str, ...]):
    app = app_on(writer, tmp_path)
    assert snap_compare(app, terminal_size=SIZE, run_before=keys_then_settle(*keys))


def test_empty_cache(snap_compare, cache_path: Path, tmp_path: Path):
    empty_cache(cache_path)
    with Cache.open_writer(cache_path) as cache:
        app = app_on(cache, tmp_path)
        assert snap_compare(app, terminal_size=SIZE, run_before=keys_then_settle())


def test_failing_source(snap_compare, cache_path: Path, tmp_path: Path):
    build_cache(cache_path, failing=("harness.scim", "harness.ng"))
    with Cache.open_writer(cache_path) as cache:
        app = app_on(cache, tmp_path)
        assert snap_compare(app, terminal_size=SIZE, run_before=keys_then_settle())


def test_read_only(snap_compare, seeded: Path, tmp_path: Path):
    app = app_on(Cache.open_reader(seeded), tmp_path, read_only=True, writer="pid 4242")
    assert snap_compare(app, terminal_size=SIZE, run_before=keys_then_settle())


def test_hostile_events(snap_compare, cache_path: Path, tmp_path: Path):
    build_cache(cache_path, names=hostile_names)
    with Cache.open_writer(cache_path) as cache:
        app = app_on(cache, tmp_path)
        assert snap_compare(app, terminal_size=SIZE, run_before=keys_then_settle("6"))
