"""State derived from provisioning events on ingest: per-cycle counts, per-object latest state.

Both are updated inside the transaction that saves the events, so they can never disagree
with the events table. Events are immutable in Graph, so a cycle's counts only grow by events
the cache did not have; an object's newer events are folded into its state, and an object
that receives an older event is folded again from its (few) events.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from store import playbook
from store.models import ProvisioningEvent, iso_utc


def parse_iso(text: str) -> datetime:
    """A cache timestamp back to an aware datetime."""
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def fold_new_events(conn: sqlite3.Connection, after_rowid: int) -> None:
    """Count and fold the events inserted after `after_rowid` (this transaction's new rows).

    All in SQL, so ingest does no per-row Python work here. Cycles add the new events' counts.
    Object state folds each object's new events in (activity_at, id) order through an upsert
    whose SET clause is `_fold`; an object with a new event no newer than its saved state
    (a backfill saving older pages later) is instead folded again from all its events.
    `rebuild_derived_state` keeps the Python fold as the reference the tests compare against.
    A failing object also keeps its retry time and playbook key (`_FAILURE_ANSWERS`), computed
    by the functions `register_fold_functions` gives a connection (`Cache` gives them to
    each writer connection once). The terms the fold's triggers added are indexed for the text
    filter once, at the end (`index_new_terms`).
    """
    newest_term = _newest_term(conn)
    conn.execute(
        f"INSERT INTO cycles (job_id, cycle_id, started_at, ended_at, {', '.join(_CYCLE_COUNTERS)})"
        " SELECT job_id, cycle_id, min(activity_at), max(activity_at),"
        f" count(*), {_CYCLE_COUNTS} FROM provisioning_events WHERE rowid > ?"
        " GROUP BY job_id, cycle_id"
        " ON CONFLICT (job_id, cycle_id) DO UPDATE SET"
        " started_at = min(started_at, excluded.started_at),"
        " ended_at = max(ended_at, excluded.ended_at), "
        + ", ".join(f"{name} = {name} + excluded.{name}" for name in _CYCLE_COUNTERS),
        (after_rowid,),
    )
    stale = conn.execute(
        "SELECT DISTINCT e.job_id, e.source_id FROM provisioning_events AS e"
        " JOIN object_state AS s ON s.job_id = e.job_id AND s.source_id = e.source_id"
        " WHERE e.rowid > ? AND e.source_id != '' AND e.activity_at <= s.latest_at",
        (after_rowid,),
    ).fetchall()
    if stale:
        conn.execute(
            "CREATE TEMP TABLE IF NOT EXISTS refold (job_id TEXT, source_id TEXT,"
            " PRIMARY KEY (source_id, job_id))"
        )
        conn.execute("DELETE FROM temp.refold")
        conn.executemany("INSERT INTO temp.refold (job_id, source_id) VALUES (?, ?)", stale)
        conn.execute(
            "DELETE FROM object_state WHERE (job_id, source_id) IN"
            " (SELECT job_id, source_id FROM temp.refold)"
        )
        conn.execute(
            f"{_FOLD_INSERT} FROM temp.refold AS r JOIN provisioning_events AS e"
            " ON e.source_id = r.source_id AND e.job_id = r.job_id"
            f" WHERE true ORDER BY {_FOLD_ORDER} {_FOLD_UPSERT}"
        )
    conn.execute(
        f"{_FOLD_INSERT} FROM provisioning_events AS e WHERE e.rowid > ? AND e.source_id != ''"
        + (
            " AND NOT EXISTS (SELECT 1 FROM temp.refold AS r"
            " WHERE r.source_id = e.source_id AND r.job_id = e.job_id)"
            if stale
            else ""
        )
        + f" ORDER BY {_FOLD_ORDER} {_FOLD_UPSERT}",
        (after_rowid,),
    )
    index_new_terms(conn, newest_term)


_FOLD_ORDER = "e.source_id, e.job_id, e.activity_at, e.id"
"""Each object's events oldest first, objects in object_state's key order (one ordered walk)."""

_CYCLE_COUNTERS = (
    "events", "succeeded", "failed", "skipped", "warnings", "creates", "updates", "deletes",
    "disables", "staged_deletes", "other_actions",
)  # fmt: skip

_CYCLE_COUNTS = (
    "sum(status = 'success'), sum(status = 'failure'), sum(status = 'skipped'),"
    " sum(status = 'warning'),"
    " sum(action = 'create'), sum(action = 'update'), sum(action = 'delete'),"
    " sum(action = 'disable'), sum(action = 'stagedDelete'),"
    " sum(action NOT IN ('create', 'update', 'delete', 'disable', 'stagedDelete'))"
)
"""The counters after `events`, in `_CYCLE_COUNTERS` order."""

_FOLD_INSERT = (
    "INSERT INTO object_state (job_id, source_id, source_type, source_name, target_id,"
    " latest_event_id, latest_at, latest_status, latest_action, latest_cycle_id,"
    " failed_cycles, first_failure_at, error_code, error_category, reason, recommended_action,"
    " retry_at, playbook_key, rules_version)"
    " SELECT e.job_id, e.source_id, e.source_type, e.source_name, e.target_id,"
    " e.id, e.activity_at, e.status, e.action, e.cycle_id,"
    " e.status = 'failure', CASE WHEN e.status = 'failure' THEN e.activity_at END,"
    " e.error_code, e.error_category, e.reason, e.recommended_action, "
    + ", ".join(
        f"CASE WHEN e.status = 'failure' THEN {answer} END"
        for answer in (
            "scimwatch_retry_at(e.reason, e.activity_at)",
            "scimwatch_playbook_key(e.error_code, e.source_type, e.reason)",
            str(playbook.RULES_VERSION),
        )
    )
)
"""An object's first event: `_fold(None, event)`; the rows are upserted in the SELECT's order."""

_FOLD_UPSERT = (
    "ON CONFLICT (job_id, source_id) DO UPDATE SET"
    " source_type = excluded.source_type, source_name = excluded.source_name,"
    " target_id = CASE WHEN excluded.target_id != '' THEN excluded.target_id ELSE target_id END,"
    " latest_event_id = excluded.latest_event_id, latest_at = excluded.latest_at,"
    " latest_status = excluded.latest_status, latest_action = excluded.latest_action,"
    " latest_cycle_id = excluded.latest_cycle_id,"
    " failed_cycles = CASE WHEN excluded.latest_status != 'failure' THEN 0"
    " WHEN latest_status != 'failure' THEN 1"
    " WHEN latest_cycle_id = excluded.latest_cycle_id AND failed_cycles != 0"
    " THEN failed_cycles ELSE failed_cycles + 1 END,"
    " first_failure_at = CASE WHEN excluded.latest_status != 'failure' THEN NULL"
    " WHEN latest_status = 'failure' AND failed_cycles != 0 THEN first_failure_at"
    " ELSE excluded.latest_at END,"
    " error_code = excluded.error_code, error_category = excluded.error_category,"
    " reason = excluded.reason, recommended_action = excluded.recommended_action,"
    " retry_at = excluded.retry_at, playbook_key = excluded.playbook_key,"
    " rules_version = excluded.rules_version"
)
"""A newer event folded into the saved state: `_fold(state, event)` in SQL (old values on the
right of each `=` are the saved state's)."""


def register_fold_functions(conn: sqlite3.Connection) -> None:
    """Give `conn` the SQL functions the fold needs (its triggers' too).

    `_FAILURE_ANSWERS` computes a failing object's answers with two; new search terms are
    indexed with `spaced` (`index_new_terms`; before m016 by a trigger).
    """
    conn.create_function("scimwatch_retry_at", 2, _retry_at, deterministic=True)
    conn.create_function("scimwatch_playbook_key", 3, playbook.playbook_key, deterministic=True)
    conn.create_function("scimwatch_spaced", 1, spaced, deterministic=True)


def _newest_term(conn: sqlite3.Connection) -> int:
    """The largest search term id: terms added later have larger ids (they are never removed)."""
    return int(conn.execute("SELECT coalesce(max(id), 0) FROM search_terms").fetchone()[0])


def index_new_terms(conn: sqlite3.Connection, after_id: int) -> None:
    """Add the search terms after `after_id` to the trigram index of terms (m016).

    One statement a save: a trigger indexing each term as it was added (m013) cost about
    twice as much, and made up a quarter of saving a day's events.
    """
    conn.execute(
        "INSERT INTO search_terms_text (rowid, term, spaced)"
        " SELECT id, term, scimwatch_spaced(term) FROM search_terms WHERE id > ? ORDER BY id",
        (after_id,),
    )


def spaced(term: str) -> str:
    """`term` with a space around each character: its trigrams hold each character and pair.

    " a " stands for "a", "a b" for "ab": a text too short for a trigram of its own is then
    looked up as one (`store.health._matching_terms`).
    """
    return f" {' '.join(term)} "


def _retry_at(reason: str | None, activity_at: str) -> str | None:
    """When Entra retries a failure (`playbook.parse_retry_time`), as cache text."""
    retry_at = playbook.parse_retry_time(reason, parse_iso(activity_at))
    return None if retry_at is None else iso_utc(retry_at)


_FAILURE_ANSWERS = (
    "retry_at = scimwatch_retry_at(reason, latest_at),"
    " playbook_key = scimwatch_playbook_key(error_code, source_type, reason),"
    f" rules_version = {playbook.RULES_VERSION}"
)
"""What a failing object keeps of its latest event's text, so reading a list of them parses none
(`store.health.pending_retries`); the fold sets the same from the event."""


def store_failure_answers(conn: sqlite3.Connection) -> None:
    """Compute the kept answers of every failing object (migration, rebuild)."""
    register_fold_functions(conn)
    conn.execute(f"UPDATE object_state SET {_FAILURE_ANSWERS} WHERE latest_status = 'failure'")


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
    register_fold_functions(conn)
    # Since m013 the terms the states hold are added as they are written, indexed since m016
    # with the others (store_search_terms).
    has_terms = bool(
        conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'object_terms'").fetchone()
    )
    newest_term = _newest_term(conn) if has_terms else 0
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
    columns = {row[1] for row in conn.execute("PRAGMA table_info(object_state)")}
    # Migrations before m010 rebuild a table that does not keep these answers yet.
    if "rules_version" in columns:
        store_failure_answers(conn)
    # Nor before m013 the search terms.
    if has_terms:
        store_search_terms(conn, newest_term)


SEARCH_TERM_COLUMNS = ("source_id", "source_name", "target_id", "error_code")
"""The object_state (and event) columns that are search terms (m013): the event columns the
text filter matches but the cycle id, as cycles are looked up in their own table."""

_EVENT_TERMS = " UNION ALL ".join(
    f"SELECT source_id, {column} AS term, activity_at FROM provisioning_events"
    f" WHERE source_id != '' AND {column} != ''"
    for column in SEARCH_TERM_COLUMNS
)
"""Every (object, term, time) the events carry: what object_state's triggers keep on ingest."""


def store_search_terms(conn: sqlite3.Connection, newest_term: int | None = None) -> None:
    """Add the search terms of every event (migration, rebuild): the triggers keep them after.

    A term's release time is its object's last event carrying it; its holders are counted
    from object_state again. Since m016 the terms after `newest_term` (by default, those this
    call adds) are indexed here.
    """
    register_fold_functions(conn)
    if newest_term is None:
        newest_term = _newest_term(conn)
    conn.execute(
        f"INSERT OR IGNORE INTO search_terms (term) SELECT DISTINCT term FROM ({_EVENT_TERMS})"
    )
    # Before m016 a trigger indexed each term as it was added.
    if not conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'trigger' AND name = 'search_terms_text_insert'"
    ).fetchone():
        index_new_terms(conn, newest_term)
    conn.execute(
        "INSERT INTO object_terms (term_id, object_id, released_at)"
        " SELECT term.id, object.id, max(pairs.activity_at)"
        f" FROM ({_EVENT_TERMS}) AS pairs"
        " JOIN search_terms AS term ON term.term = pairs.term"
        " JOIN search_terms AS object ON object.term = pairs.source_id"
        " WHERE true GROUP BY term.id, object.id ORDER BY term.id, object.id"
        " ON CONFLICT DO UPDATE SET released_at = max(released_at, excluded.released_at)"
    )
    conn.execute("UPDATE object_terms SET holders = 0 WHERE holders != 0")
    conn.execute(
        "UPDATE object_terms SET holders = held.holders FROM (SELECT term.id AS term_id,"
        " object.id AS object_id, count(*) AS holders FROM ("
        + " UNION ALL ".join(
            f"SELECT source_id, {column} AS term FROM object_state WHERE {column} != ''"
            for column in SEARCH_TERM_COLUMNS
        )
        + ") AS held_terms JOIN search_terms AS term ON term.term = held_terms.term"
        " JOIN search_terms AS object ON object.term = held_terms.source_id"
        " GROUP BY term.id, object.id) AS held"
        " WHERE object_terms.term_id = held.term_id AND object_terms.object_id = held.object_id"
    )
