"""Hostile API text (markup, actions, escapes, bidi, huge) in every widget that shows it."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import DataTable, Static

from collectors.base import SourceUnavailable
from dashboard.widgets.paged_table import PagedTable
from store.cache import Cache
from store.models import Batch
from tests.test_dashboard.builders import NOW, _event, build_cache, hostile_names
from tests.test_dashboard.helpers import FakeCollector, app_on, settle

SIZE = (120, 36)
FORBIDDEN = ("\x1b", "\x9b", "\x07", "\u202e", "\r")


def visible_text(app) -> str:
    """Every Static's and every table cell's text on the current screen."""
    parts = [str(widget.render()) for widget in app.screen.query(Static)]
    for table in app.screen.query(DataTable):
        for row_key in table.rows:
            parts.extend(cell.plain for cell in table.get_row(row_key))
    return "\n".join(parts)


def svg_files(directory: Path) -> list[Path]:
    return list(directory.glob("*.svg"))


def assert_safe(text: str) -> None:
    for bad in FORBIDDEN:
        assert bad not in text, f"{bad!r} reached the screen"


@pytest.fixture
def hostile_cache(cache_path: Path):
    build_cache(cache_path, names=hostile_names, failing=("harness.sso",))
    with Cache.open_writer(cache_path) as cache:
        yield cache


@pytest.mark.parametrize("key", ["1", "2", "3", "4", "5", "6"])
async def test_every_screen_shows_hostile_names_literally(
    hostile_cache: Cache, tmp_path: Path, key: str
):
    app = app_on(hostile_cache, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press(key)
        await settle(app, pilot)
        text = visible_text(app)
        assert_safe(text)
        if key in "3456":
            assert "[@click=app.quit]" in text or "[bold red]x[/]" in text
        for table in app.screen.query(PagedTable):
            for row in range(min(table.row_count, 6)):
                table.move_cursor(row=row)
                await pilot.click(table, offset=(30, row + 1))
                await pilot.pause()
                assert_safe(visible_text(app))
        assert app.is_running
        assert not svg_files(tmp_path)  # no [@click=app.screenshot] fired


async def test_hostile_event_detail_modal(hostile_cache: Cache, tmp_path: Path):
    app = app_on(hostile_cache, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("6")
        await settle(app, pilot)
        for _ in range(4):
            await pilot.press("enter")
            await settle(app, pilot)
            text = str(app.screen.query_one("#event-detail", Static).render())
            assert_safe(text)
            await pilot.press("escape", "down")
        assert app.is_running


async def test_hostile_user_lookup(hostile_cache: Cache, tmp_path: Path):
    app = app_on(hostile_cache, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("7", *"alice@example.com", "enter")
        await settle(app, pilot)
        text = visible_text(app)
        assert_safe(text)
        assert "Verdict:" in text


async def test_hostile_error_in_a_notification_is_plain(writer: Cache, tmp_path: Path):
    error = SourceUnavailable("[@click=app.quit]x[/] \x1b]0;pwned\x07 [link=https://evil]y[/link]")
    app = app_on(writer, tmp_path, [FakeCollector("harness.ng", error)])
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        [notification] = list(app._notifications)
        assert not notification.markup
        assert_safe(notification.message)
        assert "[@click=app.quit]x[/]" in notification.message
        assert app.is_running


async def test_a_megabyte_name_is_cut(writer: Cache, tmp_path: Path):
    huge = _event(
        99,
        0,
        "cycle-9",
        "u-huge",
        "N" * 1_000_000,
        status="failure",
        error_code="E",
        reason="R" * 1_000_000,
    )
    writer.save_batch(Batch(source="graph.provisioning", records=[huge]), NOW, NOW)
    app = app_on(writer, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("6")
        await settle(app, pilot)
        table = app.screen.query_one(PagedTable)
        assert len(table.get_row("evt-0099")[4].plain) <= 200
        assert len(visible_text(app)) < 50_000
        await pilot.press("3")
        await settle(app, pilot)
        assert app.is_running


async def test_hostile_names_in_the_user_lookup_list(hostile_cache: Cache, tmp_path: Path):
    app = app_on(hostile_cache, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("7", *"example.com", "enter")
        await settle(app, pilot)
        assert app.screen.query_one("#matches").display
        text = visible_text(app)
        assert_safe(text)
        assert "users match" in text
