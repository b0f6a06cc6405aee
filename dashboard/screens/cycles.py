"""CyclesScreen: one row per sync cycle, newest first; enter opens the cycle's events."""

from __future__ import annotations

from datetime import datetime

from rich.text import Text
from sqlite_utils import Database

from dashboard.screens.base import CYCLE_ID_WIDTH, TableScreen, job_labels, matches
from dashboard.timefmt import ago, span, stamp
from dashboard.widgets.paged_table import Column, Position, TableRow
from store.health import recent_cycles
from store.models import CycleSummary, iso_utc


def cycle_row(cycle: CycleSummary, now: datetime, app: str) -> TableRow:
    """A cycle as a row keyed by its cycle id; `app` names the app its job syncs."""
    failed = Text(str(cycle.failed), justify="right", style="bold red" if cycle.failed else "")
    return TableRow(
        key=f"{cycle.job_id}:{cycle.cycle_id}",
        ident=cycle.cycle_id,
        cells=(
            Text(stamp(cycle.ended_at)),
            Text(ago(cycle.ended_at, now)),
            Text(span(cycle.duration)),
            cycle.events,
            failed,
            cycle.skipped,
            cycle.creates,
            cycle.updates,
            cycle.deletes + cycle.disables + cycle.staged_deletes,
            app,
            cycle.cycle_id,
        ),
        position=(iso_utc(cycle.ended_at), cycle.cycle_id),
        payload=cycle,
    )


class CyclesScreen(TableScreen):
    """The sync cycle timeline."""

    MODE = "cycles"
    SUBJECT = "Sync cycles"
    EXPORT_NAME = "cycles"
    FILTER_PLACEHOLDER = "filter: cycle id, job id or app (this page)"
    HELP = (
        "Each provisioning cycle Entra ran (events grouped by cycle id), newest first: when "
        "it ended, how long it took, how many objects it touched and how many failed. Entra "
        "runs a cycle about every 40 minutes; a gap much longer than that means the job is "
        "overdue or silent (see the overview). App is the Harness app whose job ran it; Cycle "
        "is the start of its id (y copies the whole id, the filter matches all of it). Enter "
        "opens the cycle's events, failures first."
    )
    COLUMNS = (
        Column("ended", "Ended (UTC)", 16),
        Column("ago", "Ago", 14),
        Column("took", "Took", 9),
        Column("events", "Events", 6),
        Column("failed", "Failed", 6),
        Column("skipped", "Skipped", 7),
        Column("created", "Created", 7),
        Column("updated", "Updated", 7),
        Column("deleted", "Deleted", 7),
        Column("app", "App", 8),
        Column("cycle", "Cycle", CYCLE_ID_WIDTH),
    )

    def fetch(self, db: Database, position: Position | None, limit: int) -> list[TableRow]:
        """A page of cycles before `position`, filtered on this page."""
        now = self.now()
        apps = job_labels(db)
        rows = []
        for cycle in recent_cycles(db, limit, before=position):
            app = apps.get(cycle.job_id, "other")
            if matches(self.filter_text, cycle.cycle_id, cycle.job_id, app):
                rows.append(cycle_row(cycle, now, app))
        return rows

    def drill_in(self, row: TableRow) -> None:
        """The cycle's events, failures first."""
        from dashboard.screens.events import EventsScreen

        cycle: CycleSummary = row.payload
        self.app.push_screen(EventsScreen(cycle=(cycle.job_id, cycle.cycle_id)))
