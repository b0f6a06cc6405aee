"""HelpModal: what the current screen answers, and its keys (contextual `?`)."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.markup import escape
from textual.screen import ModalScreen, Screen
from textual.widgets import Static

from dashboard.widgets.safe_text import clean

GLOBAL_KEYS: tuple[tuple[str, str], ...] = (
    ("1-7", "switch screen: overview, cycles, retries, groups, SSO, events, user lookup"),
    ("enter", "drill into the selected row or number"),
    ("esc", "back (clears an open filter first)"),
    ("r", "refresh now: poll every source and re-read the cache"),
    ("p", "pause or resume polling"),
    ("ctrl+p", "command palette: every action, themes"),
    ("?", "this help"),
    ("q", "quit"),
)


def _keys_of(screen: Screen[object]) -> list[tuple[str, str]]:
    keys: list[tuple[str, str]] = []
    for binding in getattr(screen, "BINDINGS", []):
        if isinstance(binding, Binding) and binding.description:
            keys.append((binding.key_display or binding.key, binding.description))
    return keys


_KEY_NAMES = {
    "slash": "/",
    "right_square_bracket": "]",
    "left_square_bracket": "[",
    "escape": "esc",
}


def help_text(screen: Screen[object]) -> Text:
    """The screen's help paragraph, its own keys, then the keys every screen has."""
    text = Text(end="")
    text.append(str(getattr(screen, "HELP", "")) + "\n", style="")
    screen_keys = _keys_of(screen)
    if screen_keys:
        text.append("\nOn this screen\n", style="bold underline")
        for key, description in screen_keys:
            text.append(f"  {_KEY_NAMES.get(key, key):<8}", style="bold")
            text.append(f"{description}\n")
    text.append("\nEverywhere\n", style="bold underline")
    for key, description in GLOBAL_KEYS:
        text.append(f"  {key:<8}", style="bold")
        text.append(f"{description}\n")
    text.append("\nThe status bar shows each source: its data age, or ✗ failing since, ")
    text.append("throttled until, stale (older than twice its poll interval), ⟳ polling now.")
    return text


class HelpModal(ModalScreen[None]):
    """Help for the screen underneath."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "dismiss", "Close"),
        Binding("question_mark", "dismiss", "Close", show=False),
        Binding("q", "dismiss", "Close", show=False),
    ]

    def __init__(self, screen: Screen[object]) -> None:
        """Help about `screen`."""
        super().__init__()
        self.about = screen

    def compose(self) -> ComposeResult:
        """A framed, scrollable text."""
        with Vertical(id="help-frame"), VerticalScroll():
            yield Static(help_text(self.about), id="help-text")

    def on_mount(self) -> None:
        """Title the frame after the screen."""
        subject = str(getattr(self.about, "subject", "")) or "scimwatch"
        self.query_one("#help-frame").border_title = escape(f"Help: {clean(subject, 80)}")
