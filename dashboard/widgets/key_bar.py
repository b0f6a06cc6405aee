"""KeyBar: the screen's keys on one line, as one widget; click a key to press it.

It shows what Textual's Footer shows (the bindings with `show=True`, then the command
palette's key on the right) but draws them as one line of text instead of mounting a widget
per key. The Footer recomposes its keys on every bindings change and made opening a screen
~0.4 s slower here (bench/README.md, figure 6); this keeps screen switches quick.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, NamedTuple

from rich.text import Text
from textual.events import Click
from textual.widget import Widget

from dashboard.widgets.line_spans import at_column

if TYPE_CHECKING:
    from textual.screen import Screen


class KeyHint(NamedTuple):
    """One key as shown: where it sits on the line, and the key it presses."""

    start: int
    end: int
    key: str
    enabled: bool


class KeyBar(Widget):
    """The active screen's key bindings, docked at the bottom."""

    ALLOW_SELECT = False
    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "key-bar--key",
        "key-bar--description",
        "key-bar--disabled",
    }
    DEFAULT_CSS = """
    KeyBar {
        dock: bottom;
        height: 1;
        text-wrap: nowrap;
        text-overflow: clip;
        color: $footer-foreground;
        background: $footer-background;
        & > .key-bar--key {
            color: $footer-key-foreground;
            background: $footer-key-background;
            text-style: bold;
        }
        & > .key-bar--description {
            color: $footer-description-foreground;
            background: $footer-description-background;
        }
        & > .key-bar--disabled {
            text-style: dim;
        }
    }
    """

    def __init__(self) -> None:
        """A bar for the screen it is mounted on."""
        super().__init__()
        self.hints: list[KeyHint] = []

    def on_mount(self) -> None:
        """Follow the screen's bindings (focus changes, modal screens, disabled actions)."""
        self.screen.bindings_updated_signal.subscribe(self, self._bindings_changed)

    def on_unmount(self) -> None:
        """Stop following."""
        self.screen.bindings_updated_signal.unsubscribe(self)

    def _bindings_changed(self, screen: Screen[object]) -> None:
        if screen is self.screen:
            self.refresh()

    def render(self) -> Text:
        """Each shown binding as ` key description `, the palette key at the right end."""
        key_style = self.get_component_rich_style("key-bar--key")
        description_style = self.get_component_rich_style("key-bar--description")
        disabled_style = self.get_component_rich_style("key-bar--disabled")
        active = self.screen.active_bindings
        seen: set[str] = set()
        line = Text(no_wrap=True, overflow="crop", end="")
        hints: list[KeyHint] = []
        palette_key = self.app.COMMAND_PALETTE_BINDING
        for key, (_node, binding, enabled, _tooltip) in active.items():
            if not binding.show or binding.action in seen or key == palette_key:
                continue
            seen.add(binding.action)
            start = len(line)
            line.append(f" {self.app.get_key_display(binding)} ", key_style)
            line.append(f"{binding.description} ", description_style)
            if not enabled:
                line.stylize(disabled_style, start)
            hints.append(KeyHint(start, len(line), binding.key, enabled))
        if self.app.ENABLE_COMMAND_PALETTE and palette_key in active:
            _node, binding, enabled, _tooltip = active[palette_key]
            label = Text.assemble(
                (f" {self.app.get_key_display(binding)} ", key_style),
                (f"{binding.description} ", description_style),
            )
            start = max(len(line) + 1, self.size.width - len(label))
            line.append(" " * (start - len(line)))
            line.append_text(label)
            hints.append(KeyHint(start, len(line), binding.key, enabled))
        self.hints = hints
        return line

    def on_click(self, event: Click) -> None:
        """Press the key under the pointer."""
        hint = at_column(self.hints, event.x)
        if hint is None:
            return
        event.stop()
        if hint.enabled:
            self.app.simulate_key(hint.key)
        else:
            self.app.bell()
