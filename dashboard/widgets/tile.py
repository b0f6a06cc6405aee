"""Tile: one number on the overview that leads to the screen explaining it."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual.binding import Binding, BindingType
from textual.events import Click
from textual.message import Message
from textual.widgets import Static


class Tile(Static, can_focus=True):
    """A big number and what it counts; enter or a click opens `target`."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("enter", "choose", "Open", show=False)]

    class Chosen(Message):
        """The admin wants the screen behind a tile."""

        def __init__(self, target: str) -> None:
            super().__init__()
            self.target = target

    def __init__(self, label: str, target: str, *, id: str | None = None) -> None:  # noqa: A002
        """A tile counting `label`, leading to the `target` screen (a mode name)."""
        super().__init__(id=id, classes="tile")
        self.label = label
        self.target = target

    def show(self, number: int | None, note: str = "", *, alarm: bool = False) -> None:
        """Show a count (None while loading) and a short note under it.

        Called before the tile is mounted (the overview composed with data), it only sets the
        classes: the tile is styled with them when it mounts, not restyled now.
        """
        text = Text(justify="center")
        text.append("…" if number is None else str(number), style="bold")
        text.append(f"\n{self.label}")
        if note:
            text.append(f"\n{note}", style="dim")
        mounted = self.is_mounted
        self.set_class(alarm, "-alarm", update=mounted)
        self.set_class(number == 0, "-zero", update=mounted)
        self.update(text)

    def action_choose(self) -> None:
        """Open the screen behind the number."""
        self.post_message(self.Chosen(self.target))

    def on_click(self, event: Click) -> None:
        """A click opens it too."""
        event.stop()
        self.action_choose()
