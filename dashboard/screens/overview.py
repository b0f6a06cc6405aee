"""OverviewScreen: is sync healthy, what failed, will it be retried, what must I do."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.containers import Horizontal, VerticalScroll
from textual.message import Message
from textual.widgets import DataTable, Static

from dashboard.first_read import FirstRead, read_overview
from dashboard.screens.base import APP_LABELS, ScimwatchScreen
from dashboard.timefmt import ago, clock, span
from dashboard.widgets.fast_table import FastTable
from dashboard.widgets.safe_text import clean
from dashboard.widgets.tile import Tile

if TYPE_CHECKING:
    from store.overview import CycleSummary, JobHealth, Overview, SourceFreshness

STATE_STYLES = {
    "healthy": "bold green",
    "running": "bold cyan",
    "overdue": "bold yellow",
    "silent": "bold red",
    "quarantine": "bold white on red",
    "paused": "bold yellow",
    "not_run": "dim",
}


def jobs_text(jobs: tuple[JobHealth, ...], now: datetime) -> Text:
    """Each job: its state, what it means, when the next cycle is due."""
    text = Text(end="")
    if not jobs:
        text.append("No provisioning job in the cache yet", style="bold")
        text.append(": the Entra job source has not been polled successfully.\n")
    for health in jobs:
        job = health.job
        text.append(f" {health.state.upper().replace('_', ' ')} ", style=STATE_STYLES[health.state])
        text.append(f"  {APP_LABELS.get(job.app, job.app)} app ", style="bold")
        text.append(f"job {clean(job.job_id, 60)}\n", style="dim")
        text.append(f"  {clean(health.summary, 600)}\n")
        facts = [f"last cycle ended {ago(job.last_ended, now)}"]
        if health.next_expected_at is not None:
            facts.append(f"next expected {ago(health.next_expected_at, now)}")
        if health.overdue_by is not None:
            facts.append(f"overdue by {span(health.overdue_by)}")
        if job.successive_failures:
            facts.append(f"{job.successive_failures} successive failures")
        if health.quarantine_disabled_at is not None:
            facts.append(f"disabled on {health.quarantine_disabled_at:%Y-%m-%d} if it stays")
        text.append("  " + " · ".join(facts) + "\n", style="dim")
    return text


def cycle_text(cycle: CycleSummary | None, now: datetime) -> Text:
    """The last cycle in one line."""
    text = Text(end="")
    text.append("Last cycle with changes  ", style="bold")
    if cycle is None:
        text.append("none in the cache yet")
        return text
    text.append(f"{clean(cycle.cycle_id, 40)} ended {ago(cycle.ended_at, now)}, ")
    text.append(f"took {span(cycle.duration)}: {cycle.events} events, ")
    text.append(f"{cycle.failed} failed", style="bold red" if cycle.failed else "")
    text.append(f", {cycle.skipped} skipped · {cycle.creates} created, {cycle.updates} updated, ")
    text.append(f"{cycle.deletes + cycle.disables + cycle.staged_deletes} deleted/disabled")
    return text


def offline_text(answer: Overview, now: datetime) -> Text:
    """Warnings: failing sources (the data shown is the cache, this old) and log gaps."""
    failing = [item for item in answer.freshness if item.failing_since is not None]
    text = Text(end="")
    for item in failing:
        text.append(f"{item.source} failing since {clock(item.failing_since)}", style="bold red")
        text.append(f" (data from {ago(item.last_success_at, now)}): ")
        text.append(clean(item.last_error, 200) + "\n")
    if failing:
        text.append("Showing the cached data; polling continues.", style="dim")
    for gap in answer.coverage_gaps:
        text.append("\n" if text.plain else "")
        text.append("Gap in the logs: ", style="bold yellow")
        text.append(gap)
    return text


TILES = (
    ("tile-pending", "pending retries", "retries"),
    ("tile-escalated", "escalated", "retries"),
    ("tile-cycle", "failed last cycle", "cycles"),
    ("tile-groups", "group problems", "groups"),
    ("tile-sso", "SSO conflicts", "sso"),
)
"""The overview's numbers: widget id, what it counts, the screen it opens."""


def tile_values(answer: Overview) -> dict[str, tuple[int | None, str, bool]]:
    """Each tile's number, note and whether it alarms."""
    cycle = answer.last_cycle
    return {
        "tile-pending": (
            answer.pending_retries,
            "Entra retries these",
            answer.pending_retries > 0,
        ),
        "tile-escalated": (
            answer.escalated_retries,
            "failed 2+ cycles: act",
            answer.escalated_retries > 0,
        ),
        "tile-cycle": (
            cycle.failed if cycle else None,
            f"of {cycle.events} events" if cycle else "no cycle yet",
            bool(cycle and cycle.failed),
        ),
        "tile-groups": (answer.group_problems, "mapping or drift", answer.group_problems > 0),
        "tile-sso": (answer.sso_conflicts, "cannot sign in", answer.sso_conflicts > 0),
    }


def freshness_cells(item: SourceFreshness, now: datetime) -> tuple[Text, ...]:
    """A source's freshness row: state, last success, age, error."""
    if item.failing_since is not None:
        state = Text(f"failing since {clock(item.failing_since)}", style="bold red")
    elif item.last_success_at is None:
        state = Text("no data yet", style="yellow")
    elif item.stale:
        state = Text("stale", style="bold yellow")
    else:
        state = Text("ok", style="green")
    return (
        Text(item.source),
        state,
        Text(clock(item.last_success_at)),
        Text(ago(item.last_success_at, now)),
        Text(clean(item.last_error, 120), style="red"),
    )


class OverviewScreen(ScimwatchScreen):
    """Health at a glance; every number opens its screen."""

    MODE = "overview"
    SUBJECT = "Health at a glance"
    HELP = (
        "The provisioning jobs (state, quarantine, last and next cycle), the last cycle, and "
        "the counts that need attention: failures pending retry (escalated ones need you), "
        "Entra groups with a problem in Harness, and users who cannot sign in. Tab to a number "
        "and press enter (or click it) to open its screen. The table at the bottom is each "
        "source's freshness: when it was last read and its last error."
    )

    class Read(Message):
        """The overview was read from the cache."""

        def __init__(self, answer: Overview, asked: int) -> None:
            super().__init__()
            self.answer = answer
            self.asked = asked
            """Which reload asked for it (`OverviewScreen.reload` counts them)."""

    def __init__(self) -> None:
        """The overview, not read yet."""
        super().__init__()
        self._asked = 0
        self._shown = 0
        self._first: FirstRead | None = None

    def compose_body(self) -> ComposeResult:
        """Jobs, last cycle, tiles, freshness: with what the app read first, if it is done."""
        self._first = self.scim_app.first_read()
        answer, now = (self._first.overview if self._first else None), self.now()
        with VerticalScroll(id="overview-top"):
            yield Static(
                jobs_text(answer.jobs, now) if answer else Text("Reading the cache…"), id="jobs"
            )
            yield Static(cycle_text(answer.last_cycle, now) if answer else "", id="last-cycle")
            warning = offline_text(answer, now) if answer else Text("")
            offline = Static(warning, id="offline")
            offline.display = bool(warning.plain)
            yield offline
        values = tile_values(answer) if answer else {}
        with Horizontal(id="tiles"):
            for tile_id, label, target in TILES:
                tile = Tile(label, target, id=tile_id)
                if tile_id in values:
                    number, note, alarm = values[tile_id]
                    tile.show(number, note, alarm=alarm)
                yield tile
        yield FastTable(id="freshness", cursor_type="row", zebra_stripes=True)

    def on_mount(self) -> None:
        """Columns of the freshness table (and its rows, when read first); focus a number."""
        table = self.query_one("#freshness", DataTable)
        for label, width in (
            ("Source", 18),
            ("State", 24),
            ("Last success", 12),
            ("Age", 12),
            ("Last error", 58),
        ):
            table.add_column(label, key=label, width=width)
        if self._first is not None:
            self._show_freshness(self._first.overview.freshness, self.now())
        self.query_one("#tile-pending", Tile).focus()

    def reload(self) -> None:
        """Read the overview in a thread (unless the first frame showed the app's first read).

        Reads are not exclusive: at start-up the first status read asks again ~50 ms after the
        mount did, and cancelling the first read would throw away the answer the first paint
        is waiting for. Each answer is shown unless a newer one already was.
        """
        self._asked += 1
        if self._first is not None:
            self._first = None
            self._shown = self._asked
            return
        self._read(self._asked, self.now())

    @work(thread=True, exit_on_error=False, group="overview-read")
    def _read(self, asked: int, now: datetime) -> None:
        app = self.scim_app
        first = app.first_read(wait=True) if asked == 1 else None
        if first is not None:  # started before the app; not done when the screen was built
            self.post_message(self.Read(first.overview, asked))
            return
        self.post_message(self.Read(read_overview(app.cache, now, app.freshness_intervals), asked))

    def on_overview_screen_read(self, message: Read) -> None:
        """Show what was read, unless a newer read was shown already."""
        if message.asked <= self._shown:
            return
        self._shown = message.asked
        answer, now = message.answer, self.now()
        self.query_one("#jobs", Static).update(jobs_text(answer.jobs, now))
        self.query_one("#last-cycle", Static).update(cycle_text(answer.last_cycle, now))
        offline = offline_text(answer, now)
        self.query_one("#offline", Static).update(offline)
        self.query_one("#offline").display = bool(offline.plain)
        for tile_id, (number, note, alarm) in tile_values(answer).items():
            self.query_one(f"#{tile_id}", Tile).show(number, note, alarm=alarm)
        self._show_freshness(answer.freshness, now)

    def _show_freshness(self, freshness: tuple[SourceFreshness, ...], now: datetime) -> None:
        table = self.query_one("#freshness", DataTable)
        with self.app.batch_update():
            for item in freshness:
                cells = freshness_cells(item, now)
                if item.source in table.rows:
                    for column, value in zip(table.columns, cells, strict=False):
                        table.update_cell(item.source, column, value)
                else:
                    table.add_row(*cells, key=item.source)

    @on(Tile.Chosen)
    def _open(self, event: Tile.Chosen) -> None:
        self.app.switch_mode(event.target)
