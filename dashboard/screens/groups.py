"""GroupsScreen: each Entra group in scope, the Harness identifier it maps to, and problems."""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text
from sqlite_utils import Database

from dashboard.screens.base import TableScreen, list_page, matches
from dashboard.widgets.paged_table import Column, Position, TableRow
from dashboard.widgets.safe_text import clean
from store.directory import group_mappings
from store.models import GroupMapping

STATE_STYLES = {
    "ok": "green",
    "unsyncable": "bold red",
    "collision": "bold red",
    "native_same_identifier": "bold red",
    "not_provisioned": "bold red",
    "native_same_name": "yellow",
    "no_role_binding": "yellow",
    "drift": "yellow",
    "renamed": "yellow",
    "nested_members": "yellow",
    "orphan": "magenta",
}

MEMBERS_SHOWN = 40
"""Members listed per side in the detail pane; the rest are counted."""


def mapping_row(mapping: GroupMapping) -> TableRow:
    """A mapping as a row keyed by the Entra group id (or the orphan's identifier)."""
    key = mapping.entra_group_id or f"harness:{mapping.harness_identifier}"
    return TableRow(
        key=key,
        ident=mapping.entra_group_id or mapping.harness_identifier,
        cells=(
            Text(mapping.state.replace("_", " "), style=STATE_STYLES[mapping.state]),
            mapping.entra_name,
            mapping.predicted_identifier,
            mapping.harness_identifier or "-",
            len(mapping.entra_members),
            len(mapping.harness_members),
            ", ".join(problem.replace("_", " ") for problem in mapping.problems[1:]),
        ),
        payload=mapping,
    )


def _members(text: Text, heading: str, members: Sequence[str], style: str = "") -> None:
    text.append(f"{heading} ({len(members)}): ", style="bold")
    shown = ", ".join(clean(member, 80) for member in members[:MEMBERS_SHOWN])
    more = f" … and {len(members) - MEMBERS_SHOWN} more" if len(members) > MEMBERS_SHOWN else ""
    text.append((shown or "none") + more + "\n", style=style)


class GroupsScreen(TableScreen):
    """Entra group → Harness identifier mappings and conflicts."""

    MODE = "groups"
    SUBJECT = "Group mappings"
    EXPORT_NAME = "groups"
    FILTER_PLACEHOLDER = "filter: group name, identifier, state or member"
    HELP = (
        "Each Entra group assigned to the NextGen app, the identifier Harness derives from "
        "its name (characters other than letters, digits and _ become _), and the Harness "
        "group actually there. Problems: identifier collisions between Entra groups, native "
        "Harness groups with the same identifier or name, renames (Harness keeps the old "
        "identifier), names Entra cannot sync, membership drift, members only through nested "
        "groups (never provisioned), groups without a role binding, and orphan Harness groups. "
        "The pane below lists both member lists and the drift. Enter shows the group's events."
    )
    COLUMNS = (
        Column("state", "State", 22),
        Column("entra", "Entra group", 26),
        Column("predicted", "Identifier (predicted)", 22),
        Column("harness", "Harness group", 22),
        Column("entra_n", "Entra", 5),
        Column("harness_n", "Harn.", 5),
        Column("also", "Also", 20, fill=True),
    )

    def fetch(self, db: Database, position: Position | None, limit: int) -> list[TableRow]:
        """A page of the mappings (problems first), filtered."""
        mappings = sorted(group_mappings(db), key=lambda mapping: mapping.state == "ok")
        rows = [
            mapping_row(mapping)
            for mapping in mappings
            if matches(
                self.filter_text,
                mapping.entra_name,
                mapping.predicted_identifier,
                mapping.harness_identifier,
                mapping.harness_name,
                mapping.state,
                *mapping.entra_members,
            )
        ]
        return list_page(rows, position, limit)

    def detail(self, row: TableRow) -> Text | None:
        """What is wrong, both member lists, and the drift."""
        mapping: GroupMapping = row.payload
        text = Text(end="")
        text.append(clean(mapping.entra_name, 200) or "(no Entra group)", style="bold")
        text.append(f"  {clean(mapping.entra_group_id, 80)}", style="dim")
        text.append(f"  → Harness {clean(mapping.harness_identifier, 120) or '(none)'}")
        text.append(f" {clean(mapping.harness_name, 120)}\n", style="dim")
        text.append(clean(mapping.detail, 1500) + "\n")
        if mapping.pending_error:
            text.append("Pending failure: ", style="bold red")
            text.append(clean(mapping.pending_error, 500) + "\n")
        _members(text, "Entra direct members", mapping.entra_members)
        _members(text, "Harness members", mapping.harness_members)
        if mapping.missing_in_harness:
            _members(text, "Missing in Harness", mapping.missing_in_harness, "red")
        if mapping.extra_in_harness:
            _members(text, "Only in Harness", mapping.extra_in_harness, "yellow")
        if mapping.nested_only:
            _members(text, "Only via nested groups (never provisioned)", mapping.nested_only)
        return text

    def drill_in(self, row: TableRow) -> None:
        """The group's provisioning events."""
        from dashboard.screens.events import EventsScreen

        mapping: GroupMapping = row.payload
        if mapping.entra_group_id:
            self.app.push_screen(EventsScreen(mapping.entra_group_id))
