"""NavBar: the screens by number, the current one highlighted; click one to go there.

One widget drawing one line (not a widget per entry): every screen has a nav bar, and each
widget a screen mounts costs style work on its first visit (bench/README.md, figure 6).
"""

from __future__ import annotations

from typing import ClassVar, NamedTuple

from rich.text import Text
from textual.events import Click, Leave, MouseMove
from textual.widget import Widget

from dashboard.widgets.line_spans import at_column

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

APP_NAME = " scimwatch "


class NavEntry(NamedTuple):
    """Where one screen's entry sits on the line."""

    start: int
    end: int
    mode: str


def nav_entries() -> list[NavEntry]:
    """Each screen's entry: " 1 Overview " after the app name, in order."""
    entries = []
    start = len(APP_NAME)
    for number, (mode, title) in enumerate(SCREENS, start=1):
        end = start + len(f" {number} {title} ")
        entries.append(NavEntry(start, end, mode))
        start = end
    return entries


class NavBar(Widget):
    """The app name, the screens (the current one highlighted) and the screen's subject."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "nav-bar--app",
        "nav-bar--item",
        "nav-bar--current",
        "nav-bar--hover",
        "nav-bar--subject",
    }

    def __init__(self, current: str, title: str) -> None:
        """A bar with `current` highlighted and `title` (the screen's subject) on the right."""
        super().__init__(id="nav-bar")
        self.current = current
        self.title_text = title
        self.entries = nav_entries()
        self.hover: str | None = None

    def render(self) -> Text:
        """One line: app name, numbered screens, subject right-aligned."""
        line = Text(no_wrap=True, overflow="crop", end="")
        line.append(APP_NAME, self.get_component_rich_style("nav-bar--app"))
        for number, (mode, title) in enumerate(SCREENS, start=1):
            if mode == self.current:
                style = self.get_component_rich_style("nav-bar--current")
            elif mode == self.hover:
                style = self.get_component_rich_style("nav-bar--hover")
            else:
                style = self.get_component_rich_style("nav-bar--item")
            line.append(f" {number} {title} ", style)
        subject = f" {self.title_text} "
        line.append(" " * max(self.size.width - len(line) - len(subject), 1))
        line.append(subject, self.get_component_rich_style("nav-bar--subject"))
        return line

    def entry_at(self, x: int) -> str | None:
        """The mode whose entry covers column `x`."""
        entry = at_column(self.entries, x)
        return entry.mode if entry is not None else None

    def offset_of(self, mode: str) -> int:
        """A column inside `mode`'s entry (for a click)."""
        return next(entry.start + 1 for entry in self.entries if entry.mode == mode)

    async def on_click(self, event: Click) -> None:
        """Switch to the screen clicked."""
        mode = self.entry_at(event.x)
        if mode is not None:
            event.stop()
            await self.app.run_action(f"app.show('{mode}')")

    def on_mouse_move(self, event: MouseMove) -> None:
        """Highlight the entry under the pointer."""
        self._set_hover(self.entry_at(event.x))

    def on_leave(self, _event: Leave) -> None:
        """No entry under the pointer."""
        self._set_hover(None)

    def _set_hover(self, mode: str | None) -> None:
        if mode != self.hover:
            self.hover = mode
            self.refresh()
