"""EventsScreen: the provisioning log, newest first, with a filter and a detail pane."""

from __future__ import annotations

from dataclasses import replace
from typing import ClassVar

from rich.text import Text
from sqlite_utils import Database
from textual.binding import Binding, BindingType

from dashboard.screens.base import CYCLE_ID_WIDTH, TableScreen, job_labels, matches
from dashboard.screens.event_detail import EventDetailModal
from dashboard.timefmt import stamp
from dashboard.widgets.event_text import event_text, status_text
from dashboard.widgets.paged_table import Column, Position, TableRow
from store.detail import unpack_detail
from store.health import cycle_events, recent_events
from store.models import ProvisioningEvent, iso_utc

STATUSES: tuple[str | None, ...] = (None, "failure", "warning", "skipped", "success")
"""What `f` cycles through; None shows every status."""


def event_row(event: ProvisioningEvent, app: str) -> TableRow:
    """One event as a table row keyed by its id; `app` names the app its job syncs."""
    return TableRow(
        key=event.id,
        cells=(
            Text(stamp(event.activity_at)),
            status_text(event.status),
            event.action,
            event.source_type,
            app,
            event.source_name,
            event.error_code,
            event.cycle_id,
        ),
        position=(iso_utc(event.activity_at), event.id),
        payload=event,
    )


class EventsScreen(TableScreen):
    """The provisioning log."""

    MODE = "events"
    SUBJECT = "Provisioning log"
    EXPORT_NAME = "events"
    FILTER_PLACEHOLDER = "filter: identity name or id, target id, error code or cycle id"
    HELP = (
        "Every provisioning event Entra logged, newest first, one page at a time. "
        "The pane below shows the selected event: who, what, the error and Microsoft's "
        "recommendation, the provisioning steps and the properties it changed. "
        "Enter opens it full screen; f cycles the status shown (all, failure, warning, "
        "skipped, success); / filters by name, id, error code or cycle id. App is the Harness "
        "app whose provisioning job logged the event; Cycle the start of the cycle's id."
    )
    COLUMNS = (
        Column("time", "Time (UTC)", 16),
        Column("status", "Status", 7),
        Column("action", "Action", 10),
        Column("type", "Type", 5),
        Column("app", "App", 8),
        Column("identity", "Identity", 26, fill=True),
        Column("error", "Error code", 22),
        Column("cycle", "Cycle", CYCLE_ID_WIDTH),
    )
    BINDINGS: ClassVar[list[BindingType]] = [
        *TableScreen.BINDINGS,
        Binding("f", "cycle_status", "Status filter"),
    ]

    def __init__(
        self,
        filter_text: str = "",
        *,
        cycle: tuple[str, str] | None = None,
        status: str | None = None,
    ) -> None:
        """The whole log, or one cycle's events when `cycle` = (job id, cycle id)."""
        super().__init__(filter_text)
        self.cycle = cycle
        self.status = status
        if cycle is not None:
            self.subject = f"events of cycle {cycle[1]}"

    def fetch(self, db: Database, position: Position | None, limit: int) -> list[TableRow]:
        """A page of the log (or the cycle's events), filtered."""
        apps = job_labels(db)
        if self.cycle is not None:
            events = [
                event
                for event in cycle_events(db, *self.cycle)
                if (self.status is None or event.status == self.status)
                and matches(
                    self.filter_text,
                    event.source_name,
                    event.source_id,
                    event.target_id,
                    event.error_code,
                )
            ]
            return [
                replace(event_row(event, apps.get(event.job_id, "other")), position=None)
                for event in events
            ]
        events = recent_events(
            db, limit, before=position, status=self.status, text=self.filter_text or None
        )
        return [event_row(event, apps.get(event.job_id, "other")) for event in events]

    def detail(self, row: TableRow) -> Text | None:
        """The selected event in full."""
        event: ProvisioningEvent = row.payload
        return event_text(event, unpack_detail(event.detail))

    def drill_in(self, row: TableRow) -> None:
        """Open the event full screen."""
        self.app.push_screen(EventDetailModal(row.key))

    def action_cycle_status(self) -> None:
        """Show only failures, then warnings, skips, successes, then everything."""
        self.status = STATUSES[(STATUSES.index(self.status) + 1) % len(STATUSES)]
        self.notify_plain(f"Showing {self.status or 'every'} status")
        self.table.show_query(self.cache, self.fetch)
