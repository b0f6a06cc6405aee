"""SsoScreen: who cannot sign in to Harness and why, and assignments that do nothing."""

from __future__ import annotations

from rich.text import Text
from sqlite_utils import Database

from dashboard.screens.base import APP_LABELS, TableScreen, list_page, matches
from dashboard.widgets.paged_table import Column, Position, TableRow
from dashboard.widgets.safe_text import clean
from store.directory import sso_conflicts
from store.models import SsoConflict

KIND_LABELS = {
    "firstgen_unassigned": Text("cannot sign in", style="bold red"),
    "unmatched_harness_user": Text("unknown to Entra", style="yellow"),
    "default_access": Text("Default Access", style="yellow"),
}


class SsoScreen(TableScreen):
    """Sign-in conflicts between the FirstGen and NextGen Harness apps."""

    MODE = "sso"
    SUBJECT = "SSO conflicts"
    EXPORT_NAME = "sso"
    FILTER_PLACEHOLDER = "filter: email, name, id or app"
    HELP = (
        "When a FirstGen Harness app exists in Entra, Harness signs users in through it. Users "
        "provisioned through the NextGen app but not assigned to the FirstGen one cannot sign "
        "in. Also listed: SCIM users in Harness whose email matches no assigned Entra user, "
        "and assignments with the Default Access role, which Entra never provisions. "
        "App: the Entra app to fix. Enter looks the user up on both sides."
    )
    COLUMNS = (
        Column("kind", "Problem", 16),
        Column("app", "App", 8),
        Column("email", "Email", 34),
        Column("name", "Name", 26, fill=True),
        Column("id", "Object id", 38),
    )

    def fetch(self, db: Database, position: Position | None, limit: int) -> list[TableRow]:
        """A page of the conflicts, filtered."""
        rows = [
            TableRow(
                # One user can hold Default Access on both apps: two conflicts.
                key=f"{conflict.kind}:{conflict.app}:{conflict.principal_id or conflict.email}",
                ident=conflict.principal_id or conflict.email,
                cells=(
                    KIND_LABELS[conflict.kind],
                    APP_LABELS[conflict.app],
                    conflict.email,
                    conflict.display_name,
                    conflict.principal_id,
                ),
                payload=conflict,
            )
            for conflict in sso_conflicts(db)
            if matches(
                self.filter_text,
                conflict.email,
                conflict.display_name,
                conflict.principal_id,
                APP_LABELS[conflict.app],
            )
        ]
        return list_page(rows, position, limit)

    def detail(self, row: TableRow) -> Text | None:
        """Why, and what to do."""
        conflict: SsoConflict = row.payload
        text = Text(end="")
        text.append(clean(conflict.display_name, 200) or "(no name)", style="bold")
        text.append(f"  {clean(conflict.email, 200)}\n", style="dim")
        text.append("Why: ", style="bold")
        text.append(clean(conflict.detail, 1000) + "\n")
        text.append("What to do: ", style="bold")
        text.append(clean(conflict.what_to_do, 1000) + "\n")
        return text

    def drill_in(self, row: TableRow) -> None:
        """Both sides of the user."""
        from dashboard.screens.user_lookup import UserLookupScreen

        conflict: SsoConflict = row.payload
        self.app.push_screen(UserLookupScreen(conflict.email or conflict.principal_id))
