"""RetriesScreen: the objects whose latest provisioning failed, and what to do about each."""

from __future__ import annotations

from rich.text import Text
from sqlite_utils import Database

from dashboard.screens.base import EVERY_ROW, TableScreen, list_page, list_start, matches
from dashboard.timefmt import ago, stamp
from dashboard.widgets.paged_table import Column, Position, TableRow
from dashboard.widgets.safe_text import clean
from store.health import pending_retries
from store.models import PendingRetry
from store.playbook import parse_service_message

RETRY_SOURCES = {
    "reason": "from the error text",
    "next_cycle": "the next cycle (expected)",
    "unknown": "unknown",
}


def retry_row(retry: PendingRetry, retry_in: str) -> TableRow:
    """A pending retry as a row keyed by the object's Entra id."""
    escalated = Text("ESCALATED", style="bold red") if retry.escalated else Text("retrying")
    return TableRow(
        key=f"{retry.job_id}:{retry.source_id}",
        ident=retry.source_id,
        cells=(
            retry.source_name,
            retry.source_type,
            retry.attempts,
            escalated,
            retry.error_code,
            Text(retry_in),
            retry.hint.title,
        ),
        payload=retry,
    )


class RetriesScreen(TableScreen):
    """Failures pending retry."""

    MODE = "retries"
    SUBJECT = "Failures pending retry"
    EXPORT_NAME = "retries"
    FILTER_PLACEHOLDER = "filter: name, id, error code or hint"
    HELP = (
        "Every object whose latest provisioning attempt failed: Entra retries it in later "
        "cycles. ESCALATED means it failed in two or more cycles: waiting will not fix it, "
        "act on the hint. 'Retry' is the time Entra gave in the error text, or else the next "
        "expected cycle. Entra stops retrying 28 days after the first failure (escrow). "
        "A later success, or the object leaving scope, removes it from this list. "
        "Enter shows the object's events."
    )
    COLUMNS = (
        Column("identity", "Identity", 26),
        Column("type", "Type", 5),
        Column("attempts", "Tries", 5),
        Column("escalated", "State", 9),
        Column("error", "Error code", 22),
        Column("retry", "Retry", 13),
        Column("hint", "Hint", 22, fill=True),
    )

    def fetch(self, db: Database, position: Position | None, limit: int) -> list[TableRow]:
        """A page of the pending retries (escalated, then oldest first), filtered."""
        now = self.now()
        # Unfiltered, the rows up to the end of this page are enough; a filter reads them all.
        wanted = EVERY_ROW if self.filter_text else list_start(position) + limit
        rows = [
            retry_row(retry, ago(retry.retry_at, now) if retry.retry_at else "unknown")
            for retry in pending_retries(db, now, limit=wanted)
            if matches(
                self.filter_text,
                retry.source_name,
                retry.source_id,
                retry.error_code,
                retry.hint.title,
                retry.reason,
            )
        ]
        return list_page(rows, position, limit)

    def detail(self, row: TableRow) -> Text | None:
        """The error, Microsoft's recommendation and the Harness hint."""
        retry: PendingRetry = row.payload
        now = self.now()
        text = Text(end="")
        text.append(clean(retry.source_name, 200) or "(no name)", style="bold")
        text.append(f"  {clean(retry.source_type, 20)} {clean(retry.source_id, 80)}\n", style="dim")
        text.append("What to do: ", style="bold")
        style = "bold yellow" if retry.escalated else ""
        text.append(clean(retry.hint.title, 200) + ". ", style=style)
        text.append(clean(retry.hint.what_to_do, 1500) + "\n")
        text.append("Error: ", style="bold")
        text.append(f"{clean(retry.error_code, 80)} ({clean(retry.error_category, 40)})\n")
        if said := parse_service_message(retry.reason):
            text.append("Harness says: ", style="bold")
            text.append(clean(said, 400) + "\n")
        text.append("Reason: ", style="bold")
        text.append(clean(retry.reason, 1500) + "\n")
        if retry.recommended_action:
            text.append("Microsoft recommends: ", style="bold")
            text.append(clean(retry.recommended_action, 800) + "\n")
        text.append("Retry: ", style="bold")
        text.append(f"{stamp(retry.retry_at)} UTC ({RETRY_SOURCES[retry.retry_at_from]}); ")
        text.append(f"{clean(retry.action, 20)} failed in {retry.attempts} cycle(s) since ")
        text.append(f"{stamp(retry.first_failure_at)} UTC ({ago(retry.first_failure_at, now)}); ")
        text.append(f"escrow ends {stamp(retry.escrow_expires_at)} UTC")
        text.append(f" ({ago(retry.escrow_expires_at, now)})\n")
        return text

    def drill_in(self, row: TableRow) -> None:
        """The object's events."""
        from dashboard.screens.events import EventsScreen

        self.app.push_screen(EventsScreen(row.copy_id))
