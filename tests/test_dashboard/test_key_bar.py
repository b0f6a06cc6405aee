"""KeyBar: the screen's shown keys on one line, following focus and modals; a click presses."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import pytest
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.widgets import Input

from dashboard.screens.event_detail import EventDetailModal
from dashboard.screens.help import HelpModal
from dashboard.screens.retries import RetriesScreen
from dashboard.widgets.key_bar import KeyBar, KeyHint
from dashboard.widgets.paged_table import PagedTable
from store.cache import Cache
from tests.test_dashboard.helpers import app_on, settle

SIZE = (120, 36)
TABLE_KEYS = ("Back", "Filter", "Sort", "Copy id", "Export CSV")
APP_KEYS = ("Refresh", "Pause", "Help", "Quit")


def key_bar(app: App[None]) -> KeyBar:
    return app.screen.query_one(KeyBar)


def shown(bar: KeyBar) -> str:
    """The bar's line as last painted (re-rendered only if the bar asked to be)."""
    return "".join(segment.text for segment in bar.render_line(0))


def hint(bar: KeyBar, key: str) -> KeyHint:
    return next(item for item in bar.hints if item.key == key)


async def click_key(pilot, bar: KeyBar, key: str) -> None:
    """Click the middle of a key's text."""
    item = hint(bar, key)
    await pilot.click(KeyBar, offset=((item.start + item.end) // 2, 0))


async def test_table_screen_shows_its_keys_and_the_palette_key(writer: Cache, tmp_path: Path):
    app = app_on(writer, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("3")
        await settle(app, pilot)
        assert isinstance(app.screen, RetriesScreen)
        line = shown(key_bar(app))
        assert len(line) == SIZE[0]
        for description in (*TABLE_KEYS, *APP_KEYS):
            assert f" {description} " in line
        assert " / Filter " in line
        assert " ^s Export CSV " in line
        assert "Next page" not in line  # bound, but not shown
        assert line.rstrip().endswith("^p palette")
        assert line.index("Quit") < line.index("^p palette")
        assert [item.key for item in key_bar(app).hints] == [
            "escape",
            "slash",
            "s",
            "y",
            "ctrl+s",
            "r",
            "p",
            "question_mark",
            "q",
            "ctrl+p",
        ]


async def test_overview_shows_no_table_keys(writer: Cache, tmp_path: Path):
    app = app_on(writer, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        line = shown(key_bar(app))
        for description in ("Filter", "Sort", "Copy id", "Export CSV"):
            assert description not in line
        for description in APP_KEYS:
            assert f" {description} " in line
        assert line.rstrip().endswith("^p palette")


async def test_keys_follow_focus_into_the_filter_and_back(writer: Cache, tmp_path: Path):
    app = app_on(writer, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("3")
        await settle(app, pilot)
        bar = key_bar(app)
        assert " Sort " in shown(bar)
        await pilot.press("slash")
        await settle(app, pilot)
        assert isinstance(app.focused, Input)
        # Printable keys now type into the filter: their bindings are no longer shown.
        line = shown(bar)
        for description in ("Sort", "Copy id", "Refresh", "Pause", "Help", "Quit"):
            assert f" {description} " not in line
        assert " ^s Export CSV " in line
        assert line.rstrip().endswith("^p palette")
        assert "s" not in [item.key for item in bar.hints]
        await pilot.press("escape")
        await settle(app, pilot)
        assert isinstance(app.focused, PagedTable)
        assert " Sort " in shown(bar)
        assert "s" in [item.key for item in bar.hints]


async def test_a_modal_shows_its_own_keys(writer: Cache, tmp_path: Path):
    app = app_on(writer, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("6", "enter")
        await settle(app, pilot)
        assert isinstance(app.screen, EventDetailModal)
        line = shown(key_bar(app))
        assert " esc Close " in line
        assert " y Copy id " in line
        for description in ("Filter", "Export CSV", "Back", "Quit"):
            assert description not in line
        await pilot.press("escape")
        await settle(app, pilot)
        assert " / Filter " in shown(key_bar(app))


async def test_clicking_help_opens_the_help(writer: Cache, tmp_path: Path):
    app = app_on(writer, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("4")
        await settle(app, pilot)
        await click_key(pilot, key_bar(app), "question_mark")
        await settle(app, pilot)
        assert isinstance(app.screen, HelpModal)
        assert app.screen.about.__class__.__name__ == "GroupsScreen"


async def test_clicking_filter_opens_the_filter(writer: Cache, tmp_path: Path):
    app = app_on(writer, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("3")
        await settle(app, pilot)
        filter_input = app.screen.query_one("#filter", Input)
        assert not filter_input.display
        bar = key_bar(app)
        item = hint(bar, "slash")
        await pilot.click(KeyBar, offset=(item.start, 0))  # the key's first cell
        await settle(app, pilot)
        assert filter_input.display
        assert app.focused is filter_input
        assert filter_input.value == ""  # the click pressed a key, it typed nothing


async def test_clicking_the_palette_key_opens_the_palette(writer: Cache, tmp_path: Path):
    from textual.command import CommandPalette

    app = app_on(writer, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        bar = key_bar(app)
        await pilot.click(KeyBar, offset=(hint(bar, "ctrl+p").end - 1, 0))
        await settle(app, pilot)
        assert isinstance(app.screen, CommandPalette)


async def test_clicking_blank_space_does_nothing(writer: Cache, tmp_path: Path):
    app = app_on(writer, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("3")
        await settle(app, pilot)
        bar = key_bar(app)
        screen = app.screen
        last, palette = bar.hints[-2], bar.hints[-1]
        assert palette.start - last.end > 2
        await pilot.click(KeyBar, offset=((last.end + palette.start) // 2, 0))
        await settle(app, pilot)
        assert app.screen is screen
        assert app.is_running
        assert app.focused is screen.query_one(PagedTable)
        assert not app._notifications


class _LockedScreenApp(App[None]):
    """An app with one key whose action is disabled, and one that works."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("x", "locked", "Locked"),
        Binding("o", "open", "Open"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.ran: list[str] = []
        self.bells = 0

    def compose(self) -> ComposeResult:
        yield KeyBar()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        return None if action == "locked" else True  # None: shown, but disabled

    def action_locked(self) -> None:
        self.ran.append("locked")

    def action_open(self) -> None:
        self.ran.append("open")

    def bell(self) -> None:
        self.bells += 1


async def test_clicking_a_disabled_key_rings_the_bell_and_does_not_run_it():
    """No screen of ours disables a key yet; a small app shows the bar's contract."""
    app = _LockedScreenApp()
    async with app.run_test(size=(80, 5)) as pilot:
        await pilot.pause()
        bar = app.query_one(KeyBar)
        assert " x Locked " in shown(bar)
        assert not hint(bar, "x").enabled
        await click_key(pilot, bar, "x")
        await pilot.pause()
        assert app.ran == []
        assert app.bells == 1
        await click_key(pilot, bar, "o")
        await pilot.pause()
        assert app.ran == ["open"]
        assert app.bells == 1


async def test_a_narrow_bar_still_maps_clicks_to_the_keys_shown(writer: Cache, tmp_path: Path):
    app = app_on(writer, tmp_path)
    async with app.run_test(size=(60, 36)) as pilot:
        await pilot.press("3")
        await settle(app, pilot)
        bar = key_bar(app)
        assert shown(bar).startswith(" esc Back  / Filter ")
        await click_key(pilot, bar, "slash")
        await settle(app, pilot)
        assert isinstance(app.focused, Input)


@pytest.mark.parametrize("width", [80, 100])
async def test_a_narrow_bar_paints_the_line_its_clicks_map(
    writer: Cache, tmp_path: Path, width: int
):
    """Each cell a click maps to a key shows that key's text (the line cropped to the width)."""
    app = app_on(writer, tmp_path)
    async with app.run_test(size=(width, 36)) as pilot:
        await pilot.press("3")
        await settle(app, pilot)
        bar = key_bar(app)
        line = str(bar.render())
        assert len(line) > width
        assert shown(bar).ljust(width) == line[:width]


async def test_clicking_the_blank_end_of_an_80_column_bar_does_nothing(
    writer: Cache, tmp_path: Path
):
    app = app_on(writer, tmp_path)
    async with app.run_test(size=(80, 36)) as pilot:
        await pilot.press("3")
        await settle(app, pilot)
        screen = app.screen
        painted = shown(key_bar(app)).ljust(80)
        blank = [x for x in range(1, 79) if painted[x - 1 : x + 2] == "   "]
        for x in blank:
            await pilot.click(KeyBar, offset=(x, 0))
            await settle(app, pilot)
            assert app.screen is screen, f"a click on blank column {x} opened {app.screen}"
