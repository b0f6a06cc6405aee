"""First visits of a screen reuse the parsed CSS, and screens still follow the theme.

`adopt_current_css` sets a private Textual attribute (`Screen._css_update_count`); these
tests fail if a Textual upgrade makes that trick useless (a re-parse per first visit again)
or harmful (a screen styled with an old theme).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.color import Color
from textual.css.stylesheet import Stylesheet
from textual.events import ScreenResume
from textual.screen import Screen
from textual.widget import Widget

import dashboard.screens.base
from dashboard.app import ScimwatchApp
from dashboard.screens.base import ScimwatchScreen
from dashboard.widgets.key_bar import KeyBar
from dashboard.widgets.nav_bar import SCREENS, NavBar
from store.cache import Cache
from tests.test_dashboard.helpers import app_on, settle

SIZE = (120, 36)
SCREEN_KEYS = "234567"


@pytest.fixture
def reparses(monkeypatch: pytest.MonkeyPatch) -> list[Stylesheet]:
    """Every Stylesheet.reparse call, recorded (the method still runs)."""
    calls: list[Stylesheet] = []
    original = Stylesheet.reparse

    def counting_reparse(self: Stylesheet) -> None:
        calls.append(self)
        original(self)

    monkeypatch.setattr(Stylesheet, "reparse", counting_reparse)
    return calls


def theme_colour(app: ScimwatchApp, variable: str) -> Color:
    return Color.parse(app.get_css_variables()[variable])


def painted_background(app: ScimwatchApp, widget: Widget) -> Color:
    """The background the compositor painted at the widget's first cell."""
    style = app.screen.get_style_at(widget.region.x, widget.region.y)
    assert style.bgcolor is not None
    return Color.from_rich_color(style.bgcolor)


def current_nav_item(app: ScimwatchApp) -> tuple[NavBar, int]:
    """The nav bar and the column where the current screen's entry starts."""
    bar = app.screen.query_one(NavBar)
    return bar, bar.offset_of(app.current_mode) - 1


async def visit(app: ScimwatchApp, pilot, key: str) -> None:
    await pilot.press(key)
    await settle(app, pilot)


def assert_styled(app: ScimwatchApp, mode: str) -> None:
    """The screen of `mode` is on top and painted with the current theme."""
    assert app.current_mode == mode
    nav_bar, start = current_nav_item(app)
    title = dict(SCREENS)[mode]
    assert str(nav_bar.render())[start:].lstrip().split(" ", 1)[1].startswith(title)
    accent = theme_colour(app, "accent")
    painted = app.screen.get_style_at(nav_bar.region.x + start + 1, nav_bar.region.y)
    assert painted.bgcolor is not None
    assert Color.from_rich_color(painted.bgcolor) == accent
    assert painted_background(app, nav_bar) == theme_colour(app, "panel")
    bar = app.screen.query_one(KeyBar)
    footer = theme_colour(app, "footer-background")
    assert bar.styles.background == footer
    assert painted_background(app, bar) == footer


async def test_first_visits_do_not_reparse_the_css(
    writer: Cache, tmp_path: Path, reparses: list[Stylesheet]
):
    app = app_on(writer, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        at_start = len(reparses)
        for key in SCREEN_KEYS:
            await visit(app, pilot, key)
            mode = SCREENS[int(key) - 1][0]
            assert len(reparses) == at_start, f"first visit of {mode} re-parsed the CSS"
            assert_styled(app, mode)


async def test_without_adopting_first_visits_reparse(
    writer: Cache,
    tmp_path: Path,
    reparses: list[Stylesheet],
    monkeypatch: pytest.MonkeyPatch,
):
    """The spy sees the re-parse adopt_current_css avoids (if not, Textual changed)."""
    monkeypatch.setattr(dashboard.screens.base, "adopt_current_css", lambda screen: None)
    app = app_on(writer, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        at_start = len(reparses)
        await visit(app, pilot, "3")
        assert len(reparses) > at_start
        assert_styled(app, "retries")


async def test_screens_follow_a_theme_change(writer: Cache, tmp_path: Path):
    app = app_on(writer, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await visit(app, pilot, "2")
        await visit(app, pilot, "3")
        dark_footer = theme_colour(app, "footer-background")
        dark_panel = theme_colour(app, "panel")
        app.theme = "textual-light"
        await settle(app, pilot)
        assert theme_colour(app, "footer-background") != dark_footer
        assert theme_colour(app, "panel") != dark_panel
        assert_styled(app, "retries")  # the screen on top when the theme changed
        await visit(app, pilot, "4")  # never visited
        assert_styled(app, "groups")
        await visit(app, pilot, "2")  # visited under the old theme
        assert_styled(app, "cycles")
        await visit(app, pilot, "1")  # the first screen, created at start
        assert_styled(app, "overview")


async def test_a_screen_pushed_after_a_theme_change_follows_it(writer: Cache, tmp_path: Path):
    app = app_on(writer, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        dark_footer = theme_colour(app, "footer-background")
        app.theme = "textual-light"
        await settle(app, pilot)
        await visit(app, pilot, "3")
        await visit(app, pilot, "enter")  # the retry's events, a pushed EventsScreen
        assert type(app.screen).__name__ == "EventsScreen"
        bar = app.screen.query_one(KeyBar)
        assert painted_background(app, bar) == theme_colour(app, "footer-background")
        assert painted_background(app, bar) != dark_footer


async def test_theme_changed_twice_between_visits(writer: Cache, tmp_path: Path):
    """A screen left under one theme and shown after two changes has the last one's colours."""
    app = app_on(writer, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await visit(app, pilot, "5")
        await visit(app, pilot, "1")
        app.theme = "textual-light"
        await settle(app, pilot)
        app.theme = "nord"
        await settle(app, pilot)
        await visit(app, pilot, "5")
        assert_styled(app, "sso")
        await visit(app, pilot, "6")
        assert_styled(app, "events")


@pytest.fixture
def screen_restyles(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every whole-screen restyle (`update_node_styles` on a screen), by screen class."""
    calls: list[str] = []
    original = Screen.update_node_styles

    def counting(self: Screen[object], animate: bool = True) -> None:
        calls.append(type(self).__name__)
        original(self, animate)

    monkeypatch.setattr(Screen, "update_node_styles", counting)
    return calls


async def test_showing_a_screen_again_does_not_restyle_it(
    writer: Cache, tmp_path: Path, screen_restyles: list[str]
):
    """Textual restyles a screen each time it is shown; ours are current, so they are not."""
    app = app_on(writer, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        for key in "2313":
            await visit(app, pilot, key)
        assert screen_restyles == []
        assert_styled(app, "retries")


async def test_textual_restyles_a_shown_screen_unless_told_not_to(
    writer: Cache, tmp_path: Path, screen_restyles: list[str], monkeypatch: pytest.MonkeyPatch
):
    """The spy sees the restyle `refresh_styles=False` avoids (if not, Textual changed)."""

    def keep_textual_default(self: ScimwatchScreen, event: ScreenResume) -> None:
        pass

    monkeypatch.setattr(ScimwatchScreen, "on_screen_resume", keep_textual_default)
    app = app_on(writer, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await visit(app, pilot, "2")
        await visit(app, pilot, "1")
        assert "CyclesScreen" in screen_restyles
        assert "OverviewScreen" in screen_restyles
