"""The command palette's entries: every screen, and every keyed action of the app and screen."""

from __future__ import annotations

from collections.abc import Iterator
from functools import partial
from typing import Any

from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.screen import Screen

from dashboard.widgets.nav_bar import SCREENS


def palette_commands(app: App[Any], screen: Screen[Any]) -> Iterator[SystemCommand]:
    """A "Go to" command per screen, then each described binding as a command."""
    for number, (mode, title) in enumerate(SCREENS, start=1):
        yield SystemCommand(f"Go to {title}", f"Screen {number}", partial(app.switch_mode, mode))
    for namespace, bindings in ((app, app.BINDINGS), (screen, screen.BINDINGS)):
        for binding in bindings:
            if not isinstance(binding, Binding) or not binding.description:
                continue
            if binding.key == "q" or binding.action.startswith("show("):
                continue  # Quit and the screens are listed already
            yield SystemCommand(
                binding.description,
                f"key {binding.key_display or binding.key}",
                partial(app.run_action, binding.action, namespace),
            )
