"""Keys typed in one burst, as a terminal delivers a fast typist's or a paste's.

Pilot waits for the app to be idle after every key; a terminal does not. Keys that arrive
together are queued before the first is handled, so a box that "/" opens must have the
keyboard before the next key is handled, or the rest of the burst runs the screen's keys
("p" pauses polling, "r" polls, "q" quits).
"""

from __future__ import annotations

from pathlib import Path

from textual import events
from textual.widgets import Input

from dashboard.app import ScimwatchApp
from store.cache import Cache
from tests.test_dashboard.helpers import app_on, settle

SIZE = (120, 36)


def burst(app: ScimwatchApp, *keys: str) -> None:
    """Queue key events the way the terminal driver does, without waiting between them."""
    assert app._driver is not None
    for key in keys:
        event = events.Key(key, "/" if key == "slash" else key)
        event.set_sender(app)
        app._driver.send_message(event)


async def test_a_filter_typed_in_one_burst_goes_into_the_box(writer: Cache, tmp_path: Path):
    app = app_on(writer, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("6")
        await settle(app, pilot)
        burst(app, "slash", "p", "r", "q")
        await settle(app, pilot)
        assert app.is_running
        assert not app.paused
        assert app.screen.query_one("#filter", Input).value == "prq"


async def test_a_lookup_typed_in_one_burst_goes_into_the_box(writer: Cache, tmp_path: Path):
    app = app_on(writer, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("7", "escape")  # the box lets go of the keyboard
        await settle(app, pilot)
        query = app.screen.query_one("#query", Input)
        assert app.focused is not query
        burst(app, "slash", "p", "q")
        await settle(app, pilot)
        assert app.is_running
        assert not app.paused
        assert query.value == "pq"


async def test_a_slash_typed_in_an_open_box_is_a_character(writer: Cache, tmp_path: Path):
    """ "/" opens the box; in the box it is text (a group named "Ops/Infra")."""
    app = app_on(writer, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("6", "slash", *"ops", "slash", "i")
        await settle(app, pilot)
        assert app.screen.query_one("#filter", Input).value == "ops/i"
        await pilot.press("enter", "7", *"a", "slash", "b")
        await settle(app, pilot)
        assert app.screen.query_one("#query", Input).value == "a/b"
