"""State derived from provisioning events on ingest: per-cycle counts, per-object latest state.

Both are updated inside the transaction that saves the events, so they can never disagree
with the events table. Events are immutable in Graph, so a cycle's counts only grow by events
the cache did not have; an object's state is recomputed from its (few) events.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from store.models import ProvisioningEvent, iso_utc


def parse_iso(text: str) -> datetime:
    """A cache timestamp back to an aware datetime."""
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


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


def refresh_object_state(
    conn: sqlite3.Connection, events: Sequence[ProvisioningEvent], *, rebuild: bool = False
) -> None:
    """Bring each touched object's latest state up to date with `events`.

    When every new event of an object is newer than its saved state (incremental polls), the
    events are folded in; otherwise (a backfill saving older pages later, or `rebuild`) the
    object's state is recomputed from all its events.
    """
    by_key: dict[tuple[str, str], list[ProvisioningEvent]] = {}
    for event in events:
        if event.source_id:
            by_key.setdefault((event.job_id, event.source_id), []).append(event)
    saved = {} if rebuild else _saved_states(conn, list(by_key))
    rows = []
    for key, new in by_key.items():
        new.sort(key=lambda event: (event.activity_at, event.id))
        state = saved.get(key)
        if rebuild or (state is not None and iso_utc(new[0].activity_at) <= state["latest_at"]):
            recomputed = _recompute(conn, *key)
            if recomputed is not None:
                rows.append(recomputed)
            continue
        for event in new:
            state = _fold(state, event)
        assert state is not None
        rows.append(state)
    _write_states(conn, rows)


def _write_states(conn: sqlite3.Connection, rows: Iterable[dict[str, Any] | None]) -> None:
    updates = ", ".join(f"{column} = excluded.{column}" for column in _STATE_COLUMNS[2:])
    conn.executemany(
        f"INSERT INTO object_state ({', '.join(_STATE_COLUMNS)})"
        f" VALUES ({', '.join('?' for _ in _STATE_COLUMNS)})"
        f" ON CONFLICT (job_id, source_id) DO UPDATE SET {updates}",
        ([row[column] for column in _STATE_COLUMNS] for row in rows if row is not None),
    )


_STATE_COLUMNS = (
    "job_id", "source_id", "source_type", "source_name", "target_id", "latest_event_id",
    "latest_at", "latest_status", "latest_action", "latest_cycle_id", "failed_cycles",
    "first_failure_at", "error_code", "error_category", "reason", "recommended_action",
)  # fmt: skip


_FOLD_COLUMNS = (
    "job_id", "source_id", "target_id", "latest_at", "latest_status", "latest_cycle_id",
    "failed_cycles", "first_failure_at",
)  # fmt: skip
"""What folding a newer event into a saved state needs to know of it."""


def _saved_states(
    conn: sqlite3.Connection, keys: list[tuple[str, str]]
) -> dict[tuple[str, str], dict[str, Any]]:
    saved: dict[tuple[str, str], dict[str, Any]] = {}
    by_job: dict[str, list[str]] = {}
    for job_id, source_id in keys:
        by_job.setdefault(job_id, []).append(source_id)
    for job_id, source_ids in by_job.items():
        for start in range(0, len(source_ids), _CHUNK):
            chunk = source_ids[start : start + _CHUNK]
            # (job_id, source_id) is the primary key: both terms let SQLite use it.
            cursor = conn.execute(
                f"SELECT {', '.join(_FOLD_COLUMNS)} FROM object_state"
                f" WHERE job_id = ? AND source_id IN ({','.join('?' for _ in chunk)})",
                [job_id, *chunk],
            )
            for values in cursor:
                row = dict(zip(_FOLD_COLUMNS, values, strict=True))
                saved[(row["job_id"], row["source_id"])] = row
    return saved


def _fold(state: dict[str, Any] | None, event: ProvisioningEvent) -> dict[str, Any]:
    """The state after one event newer than `state`."""
    at = iso_utc(event.activity_at)
    failed = event.status == "failure"
    streak = state["failed_cycles"] if state and state["latest_status"] == "failure" else 0
    same_cycle = state is not None and state["latest_cycle_id"] == event.cycle_id
    return {
        "job_id": event.job_id,
        "source_id": event.source_id,
        "source_type": event.source_type,
        "source_name": event.source_name,
        "target_id": event.target_id or (state["target_id"] if state else ""),
        "latest_event_id": event.id,
        "latest_at": at,
        "latest_status": event.status,
        "latest_action": event.action,
        "latest_cycle_id": event.cycle_id,
        "failed_cycles": (streak if same_cycle and streak else streak + 1) if failed else 0,
        "first_failure_at": (state["first_failure_at"] if state and streak else at)
        if failed
        else None,
        "error_code": event.error_code,
        "error_category": event.error_category,
        "reason": event.reason,
        "recommended_action": event.recommended_action,
    }


def _recompute(conn: sqlite3.Connection, job_id: str, source_id: str) -> dict[str, Any] | None:
    """An object's state from all its events (the slow, always-right path)."""
    history = conn.execute(
        "SELECT * FROM provisioning_events WHERE source_id = ? AND job_id = ?"
        " ORDER BY activity_at, id",
        (source_id, job_id),
    )
    columns = [description[0] for description in history.description]
    state: dict[str, Any] | None = None
    for values in history:
        row = dict(zip(columns, values, strict=True))
        row["activity_at"] = parse_iso(row["activity_at"])
        state = _fold(state, ProvisioningEvent.model_validate(row))
    return state


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
        "SELECT job_id, source_id, max(activity_at) FROM provisioning_events"
        " WHERE source_id != '' GROUP BY job_id, source_id"
    ).fetchall()
    _write_states(conn, (_recompute(conn, job_id, source_id) for job_id, source_id, _ in keys))
