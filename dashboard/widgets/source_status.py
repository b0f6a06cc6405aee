"""The status bar: each source's connection state and data age, always on screen.

States, worst first: throttled (until when), failing (since when), stale (data older than twice
the poll interval), never polled, ok; a source being polled right now says so too.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, ClassVar, Literal, NamedTuple, cast

from rich.text import Text
from textual.events import MouseMove
from textual.widget import Widget

from dashboard.timefmt import clock
from dashboard.widgets.line_spans import at_column
from dashboard.widgets.safe_text import clean
from store.names import SourceName, service_of
from store.overview import SourceFreshness

if TYPE_CHECKING:
    from dashboard.app import ScimwatchApp

Condition = Literal["ok", "throttled", "failing", "stale", "never"]

SHORT_NAMES: dict[str, str] = {
    "graph.provisioning": "logs",
    "graph.jobs": "jobs",
    "graph.assignments": "assign",
    "graph.directory": "dir",
    "harness.scim": "scim",
    "harness.ng": "ng",
    "harness.sso": "sso",
    "harness.roles": "roles",
}
"""What the status bar calls each source (the overview spells them out)."""


@dataclass(frozen=True)
class SourceState:
    """One source as the status bar shows it."""

    source: SourceName
    condition: Condition
    polling: bool = False
    last_success_at: datetime | None = None
    failing_since: datetime | None = None
    throttled_until: datetime | None = None
    error: str = ""


def no_data(source: SourceName) -> SourceFreshness:
    """The freshness of a source before the cache was read."""
    return SourceFreshness(
        source=source,
        last_success_at=None,
        last_attempt_at=None,
        last_error="",
        last_error_kind="",
        failing_since=None,
        stale=True,
    )


def source_state(
    freshness: SourceFreshness,
    now: datetime,
    *,
    polling: bool = False,
    throttled_until: datetime | None = None,
) -> SourceState:
    """Combine what the cache says about a source with what the app is doing right now."""
    condition: Condition = "ok"
    if throttled_until is not None and throttled_until > now:
        condition = "throttled"
    elif freshness.failing_since is not None:
        condition = "failing"
    elif freshness.last_success_at is None:
        condition = "never"
    elif freshness.stale:
        condition = "stale"
    return SourceState(
        source=freshness.source,
        condition=condition,
        polling=polling,
        last_success_at=freshness.last_success_at,
        failing_since=freshness.failing_since,
        throttled_until=throttled_until if condition == "throttled" else None,
        error=freshness.last_error,
    )


def compact_age(delta: timedelta) -> str:
    """An age in at most four characters: 45s, 12m, 3h, 4d."""
    seconds = max(int(delta.total_seconds()), 0)
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m"
    if seconds < 48 * 3600:
        return f"{seconds // 3600}h"
    return f"{seconds // 86400}d"


def describe(state: SourceState, now: datetime) -> str:
    """The status bar's words for a source: "logs 2m", "scim ✗ since 09:12"..."""
    name = SHORT_NAMES.get(state.source, state.source)
    age = compact_age(now - state.last_success_at) if state.last_success_at else "-"
    words = {
        "ok": age,
        "throttled": f"throttled until {clock(state.throttled_until)}",
        "failing": f"✗ since {clock(state.failing_since)}",
        "stale": f"stale {age}",
        "never": "no data",
    }[state.condition]
    return f"{name} {'⟳ ' if state.polling else ''}{words}"


class StatusEntry(NamedTuple):
    """Where one source sits on the status line, and its state."""

    start: int
    end: int
    state: SourceState


class SourceStatusBar(Widget):
    """All sources, grouped by service, and whether the app polls, is paused or only reads.

    One widget drawing one line, like the nav bar (each widget a screen mounts costs style
    work on its first visit); hovering a source shows its last error as a tooltip.
    """

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "source-status--service",
        "source-status--ok",
        "source-status--throttled",
        "source-status--failing",
        "source-status--stale",
        "source-status--never",
        "source-status--polling",
        "source-status--mode",
    }

    def __init__(self) -> None:
        """A bar following the app's `source_states` and `mode_note`."""
        super().__init__()
        self.entries: list[StatusEntry] = []
        self.line = Text()
        """The line last drawn."""

    @property
    def scim_app(self) -> ScimwatchApp:
        """The app, typed."""
        return cast("ScimwatchApp", self.app)

    def on_mount(self) -> None:
        """Follow the app's states and mode."""
        self.watch(self.app, "source_states", self._changed, init=False)
        self.watch(self.app, "mode_note", self._changed, init=False)

    def _changed(self, _value: object) -> None:
        self.refresh()

    def render(self) -> Text:
        """One line: " Entra logs 2m jobs 5m …  Harness scim 1m …", the mode at the right."""
        app = self.scim_app
        now = app.clock()
        line = Text(no_wrap=True, overflow="crop", end="")
        entries: list[StatusEntry] = []
        for service, label in (("graph", "Entra"), ("harness", "Harness")):
            mine = [state for state in app.source_states if service_of(state.source) == service]
            if not mine:
                continue
            line.append(f" {label} ", self.get_component_rich_style("source-status--service"))
            for state in mine:
                style = self.get_component_rich_style(f"source-status--{state.condition}")
                if state.polling:
                    style += self.get_component_rich_style("source-status--polling", partial=True)
                start = len(line)
                line.append(describe(state, now), style)
                entries.append(StatusEntry(start, len(line), state))
                line.append(" ")
        note = f" {app.mode_note} "
        line.append(" " * max(self.size.width - len(line) - len(note), 1))
        line.append(note, self.get_component_rich_style("source-status--mode"))
        self.entries, self.line = entries, line
        return line

    def shown(self) -> dict[str, str]:
        """Each source's words as last drawn, e.g. {"graph.jobs": "jobs ✗ since 09:12"}."""
        return {e.state.source: self.line.plain[e.start : e.end] for e in self.entries}

    @property
    def mode_shown(self) -> str:
        """The mode note as last drawn (the right end of the line)."""
        return self.line.plain.rstrip().rsplit("  ", 1)[-1].strip()

    def on_mouse_move(self, event: MouseMove) -> None:
        """The last error of the source under the pointer, as a tooltip."""
        entry = at_column(self.entries, event.x)
        error = entry.state.error if entry is not None else ""
        self.tooltip = Text(clean(error, 300)) if error else None
