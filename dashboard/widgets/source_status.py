"""The status bar: each source's connection state and data age, always on screen.

States, worst first: throttled (until when), failing (since when), stale (data older than twice
the poll interval), never polled, ok; a source being polled right now says so too.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Literal, cast

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.reactive import reactive
from textual.widgets import Static

from dashboard.timefmt import clock
from dashboard.widgets.safe_text import clean
from store.models import SourceFreshness, SourceName, service_of

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


class SourceStatus(Static):
    """One source: its state word and the age of its data."""

    state: reactive[SourceState | None] = reactive(None)
    """What the app last knew about the source."""

    def __init__(self, state: SourceState, now: datetime) -> None:
        """Show `state` as of `now`."""
        super().__init__(classes="source-status")
        self.now = now
        self.set_reactive(SourceStatus.state, state)

    def on_mount(self) -> None:
        """Show the state given at creation."""
        self.watch_state(self.state)

    def show(self, state: SourceState, now: datetime) -> None:
        """Update to a new state or a new `now`."""
        self.now = now
        self.state = state
        self.mutate_reactive(SourceStatus.state)

    def watch_state(self, state: SourceState | None) -> None:
        """Restyle and reword."""
        if state is None:
            return
        for condition in ("ok", "throttled", "failing", "stale", "never"):
            self.set_class(state.condition == condition, f"-{condition}")
        self.set_class(state.polling, "-polling")
        self.update(Text(describe(state, self.now)))
        self.tooltip = Text(clean(state.error, 300)) if state.error else None


class SourceStatusBar(Horizontal):
    """All sources, grouped by service, and whether the app polls, is paused or only reads."""

    def compose(self) -> ComposeResult:
        """The service labels, one SourceStatus per source, and the mode."""
        app = cast("ScimwatchApp", self.app)
        now = app.clock()
        states = app.source_states
        for service, label in (("graph", "Entra"), ("harness", "Harness")):
            mine = [state for state in states if service_of(state.source) == service]
            if mine:
                yield Static(label, classes="service-label")
                for state in mine:
                    yield SourceStatus(state, now)
        yield Static(Text(app.mode_note), id="mode-note")

    def on_mount(self) -> None:
        """Follow the app's states and mode."""
        self.watch(self.app, "source_states", self._show_states, init=False)
        self.watch(self.app, "mode_note", self._show_mode, init=False)

    def _show_states(self, states: tuple[SourceState, ...]) -> None:
        now = cast("ScimwatchApp", self.app).clock()
        by_source = {state.source: state for state in states}
        for widget in self.query(SourceStatus):
            if widget.state is not None and widget.state.source in by_source:
                widget.show(by_source[widget.state.source], now)

    def _show_mode(self, note: str) -> None:
        self.query_one("#mode-note", Static).update(Text(note))
