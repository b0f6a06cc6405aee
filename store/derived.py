"""State derived from provisioning events on ingest: per-cycle counts, per-object latest state.

Both are updated inside the transaction that saves the events, so they can never disagree
with the events table. Events are immutable in Graph, so a cycle's counts only grow by events
the cache did not have; an object's state is recomputed from its (few) events.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from typing import Any

from store.models import ProvisioningEvent, iso_utc

_CHUNK = 500
"""Ids per `IN (...)` query, under SQLite's variable limit."""

_ACTION_COLUMNS = {
    "create": "creates",
    "update": "updates",
    "delete": "deletes",
    "disable": "disables",
    "stagedDelete": "staged_deletes",
}
_STATUS_COLUMNS = {
    "success": "succeeded",
    "failure": "failed",
    "skipped": "skipped",
    "warning": "warnings",
}


def new_events(
    conn: sqlite3.Connection, events: Sequence[ProvisioningEvent]
) -> list[ProvisioningEvent]:
    """The events of a batch the cache does not hold yet (first occurrence of each id)."""
    known: set[str] = set()
    ids = [event.id for event in events]
    for start in range(0, len(ids), _CHUNK):
        chunk = ids[start : start + _CHUNK]
        marks = ",".join("?" for _ in chunk)
        known.update(
            row[0]
            for row in conn.execute(
                f"SELECT id FROM provisioning_events WHERE id IN ({marks})", chunk
            )
        )
    fresh: dict[str, ProvisioningEvent] = {}
    for event in events:
        if event.id not in known and event.id not in fresh:
            fresh[event.id] = event
    return list(fresh.values())


def add_to_cycles(conn: sqlite3.Connection, events: Iterable[ProvisioningEvent]) -> None:
    """Count new events into their cycles."""
    totals: dict[tuple[str, str], dict[str, Any]] = {}
    for event in events:
        key = (event.job_id, event.cycle_id)
        at = iso_utc(event.activity_at)
        cycle = totals.setdefault(key, {"started_at": at, "ended_at": at, "events": 0})
        cycle["started_at"] = min(cycle["started_at"], at)
        cycle["ended_at"] = max(cycle["ended_at"], at)
        cycle["events"] += 1
        status_column = _STATUS_COLUMNS.get(event.status)
        if status_column:
            cycle[status_column] = cycle.get(status_column, 0) + 1
        action_column = _ACTION_COLUMNS.get(event.action, "other_actions")
        cycle[action_column] = cycle.get(action_column, 0) + 1
    for (job_id, cycle_id), cycle in totals.items():
        counters = [name for name in cycle if name not in ("started_at", "ended_at")]
        conn.execute(
            f"INSERT INTO cycles (job_id, cycle_id, started_at, ended_at, {', '.join(counters)})"
            f" VALUES (?, ?, ?, ?, {', '.join('?' for _ in counters)})"
            " ON CONFLICT (job_id, cycle_id) DO UPDATE SET"
            " started_at = min(started_at, excluded.started_at),"
            " ended_at = max(ended_at, excluded.ended_at), "
            + ", ".join(f"{name} = {name} + excluded.{name}" for name in counters),
            (
                job_id,
                cycle_id,
                cycle["started_at"],
                cycle["ended_at"],
                *(cycle[n] for n in counters),
            ),
        )


def refresh_object_state(conn: sqlite3.Connection, keys: Iterable[tuple[str, str]]) -> None:
    """Recompute the latest state of each (job_id, source_id) from its events."""
    for job_id, source_id in set(keys):
        if source_id:
            _refresh_one(conn, job_id, source_id)


_EVENT_COLUMNS = (
    "id, activity_at, cycle_id, status, action, source_type, source_name, target_id,"
    " error_code, error_category, reason, recommended_action"
)


def _refresh_one(conn: sqlite3.Connection, job_id: str, source_id: str) -> None:
    history = conn.execute(
        f"SELECT {_EVENT_COLUMNS} FROM provisioning_events"
        " WHERE source_id = ? AND job_id = ? ORDER BY activity_at DESC, id DESC",
        (source_id, job_id),
    ).fetchall()
    if not history:
        return
    latest = history[0]
    failed_cycles: set[str] = set()
    first_failure_at = None
    target_id = next((row[7] for row in history if row[7]), "")
    for row in history:
        if row[3] != "failure":
            break
        failed_cycles.add(row[2])
        first_failure_at = row[1]
    conn.execute(
        "INSERT OR REPLACE INTO object_state (job_id, source_id, source_type, source_name,"
        " target_id, latest_event_id, latest_at, latest_status, latest_action, failed_cycles,"
        " first_failure_at, error_code, error_category, reason, recommended_action)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            job_id,
            source_id,
            latest[5],
            latest[6],
            target_id,
            latest[0],
            latest[1],
            latest[3],
            latest[4],
            len(failed_cycles),
            first_failure_at,
            latest[8],
            latest[9],
            latest[10],
            latest[11],
        ),
    )


def rebuild_derived_state(conn: sqlite3.Connection) -> None:
    """Recompute cycles and object state from the whole events table (migrations, repair)."""
    conn.execute("DELETE FROM cycles")
    conn.execute("DELETE FROM object_state")
    conn.execute(
        "INSERT INTO cycles SELECT job_id, cycle_id, min(activity_at), max(activity_at),"
        " count(*),"
        " sum(status = 'success'), sum(status = 'failure'), sum(status = 'skipped'),"
        " sum(status = 'warning'),"
        " sum(action = 'create'), sum(action = 'update'), sum(action = 'delete'),"
        " sum(action = 'disable'), sum(action = 'stagedDelete'),"
        " sum(action NOT IN ('create', 'update', 'delete', 'disable', 'stagedDelete'))"
        " FROM provisioning_events GROUP BY job_id, cycle_id"
    )
    keys = conn.execute(
        "SELECT DISTINCT job_id, source_id FROM provisioning_events WHERE source_id != ''"
    ).fetchall()
    refresh_object_state(conn, [(row[0], row[1]) for row in keys])
