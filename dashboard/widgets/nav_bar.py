"""NavBar: the screens by number, the current one highlighted; click one to go there."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.events import Click
from textual.widgets import Static

SCREENS: tuple[tuple[str, str], ...] = (
    ("overview", "Overview"),
    ("cycles", "Cycles"),
    ("retries", "Retries"),
    ("groups", "Groups"),
    ("sso", "SSO"),
    ("events", "Events"),
    ("user", "User lookup"),
)
"""(mode name, title) of the screens the number keys 1-7 switch to."""


class NavItem(Static):
    """One screen's number and title."""

    def __init__(self, number: int, mode: str, title: str, *, current: bool) -> None:
        """An item for `mode`, highlighted when `current`."""
        super().__init__(f"{number} {title}", classes="nav-item" + (" -current" if current else ""))
        self.mode = mode

    async def on_click(self, event: Click) -> None:
        """Switch to this screen."""
        event.stop()
        await self.app.run_action(f"app.show('{self.mode}')")


class NavBar(Horizontal):
    """The title and the screens, the current one highlighted."""

    def __init__(self, current: str, title: str) -> None:
        """A bar with `current` highlighted and `title` (the screen's subject) on the left."""
        super().__init__(id="nav-bar")
        self.current = current
        self.title_text = title

    def compose(self) -> ComposeResult:
        """The app name, then each screen."""
        yield Static("scimwatch", id="app-name")
        for number, (mode, title) in enumerate(SCREENS, start=1):
            yield NavItem(number, mode, title, current=mode == self.current)
        yield Static(Text(self.title_text), id="nav-subject")
