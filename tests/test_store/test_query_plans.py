"""Every interactive read of provisioning_events uses an index: no full table scan.

The statements are captured as the health model runs them (a trace callback on the connection),
then each is explained; a plan step `SCAN provisioning_events` without `USING ... INDEX` would
cost seconds at 1,000,000 events (reference/perf-baselines.md, query table).
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlite_utils import Database

from store import health
from store.cache import Cache
from store.models import Batch, ProvisioningEvent

T0 = datetime(2026, 11, 1, tzinfo=UTC)
NOW = T0 + timedelta(days=1)
# A virtual table's scan is its own: json_each reads the list of ids it is given.
FULL_SCAN = re.compile(r"\bSCAN (provisioning_events|\w+)\b(?! USING| VIRTUAL TABLE)")


def _events() -> list[ProvisioningEvent]:
    return [
        ProvisioningEvent(
            id=f"e{index:03d}",
            activity_at=T0 + timedelta(minutes=index),
            job_id="job",
            cycle_id=f"c{index // 10}",
            action="update",
            status="failure" if index % 7 == 0 else "success",
            source_id=f"u{index % 13}",
            source_type="User",
            source_name=f"user{index % 13}@example.com",
            error_code="E" if index % 7 == 0 else "",
        )
        for index in range(60)
    ]


@pytest.fixture
def cache_path(tmp_path: Path) -> Path:
    path = tmp_path / "cache.db"
    with Cache.open_writer(path) as cache:
        cache.save_batch(Batch(source="graph.provisioning", records=_events()), T0, T0)
    return path


def _statements(path: Path, read: Callable[[Database], Any]) -> list[str]:
    seen: list[str] = []
    conn = sqlite3.connect(path)
    conn.set_trace_callback(seen.append)
    try:
        read(Database(conn))
    finally:
        conn.close()
    return [
        sql
        for sql in seen
        if "provisioning_events" in sql and sql.lstrip().upper().startswith("SELECT")
    ]


def _plan(path: Path, sql: str) -> list[str]:
    conn = sqlite3.connect(path)
    try:
        return [row[3] for row in conn.execute(f"EXPLAIN QUERY PLAN {sql}")]
    finally:
        conn.close()


READS: dict[str, Callable[[Database], Any]] = {
    "recent_events": lambda db: health.recent_events(db, 200),
    "recent_events keyset": lambda db: health.recent_events(
        db, 200, ("2026-11-01T00:30:00.000000Z", "e030")
    ),
    "recent_events failures": lambda db: health.recent_events(db, 200, None, "failure"),
    "recent_events failures keyset": lambda db: health.recent_events(
        db, 200, ("2026-11-01T00:30:00.000000Z", "e030"), "failure"
    ),
    "recent_events text": lambda db: health.recent_events(db, 200, None, None, "user3@"),
    "recent_events text failures keyset": lambda db: health.recent_events(
        db, 200, ("2026-11-01T00:30:00.000000Z", "e030"), "failure", "user3@"
    ),
    "recent_events short text": lambda db: health.recent_events(db, 200, None, "failure", "3@"),
    "recent_events cycle text": lambda db: health.recent_events(db, 200, None, "failure", "c2"),
    "cycle_events": lambda db: health.cycle_events(db, "job", "c2"),
    "event_by_id": lambda db: health.event_by_id(db, "e007"),
    "recent_cycles": lambda db: health.recent_cycles(db, 100),
    "pending_retries": lambda db: health.pending_retries(db, NOW),
    "overview": lambda db: health.overview(db, NOW, ()),
    "lookup_user": lambda db: health.lookup_user(db, "u3", NOW),
}


@pytest.mark.parametrize("name", list(READS))
def test_interactive_reads_of_events_use_an_index(cache_path: Path, name: str) -> None:
    for sql in _statements(cache_path, READS[name]):
        plan = _plan(cache_path, sql)
        scans = [step for step in plan if FULL_SCAN.search(step) and "provisioning_events" in sql]
        assert not scans, f"{name}: {sql}\n{plan}"


def test_the_events_screen_reads_are_captured(cache_path: Path) -> None:
    """The trace sees the statements (so the test above cannot pass vacuously)."""
    assert _statements(cache_path, READS["recent_events"])


def test_pending_retries_walk_their_index_in_order(cache_path: Path) -> None:
    """The 1,000-row retries read walks one small index in order: no sort, no table lookups."""
    seen: list[str] = []
    conn = sqlite3.connect(cache_path)
    conn.set_trace_callback(seen.append)
    try:
        health.pending_retries(Database(conn), NOW)
    finally:
        conn.close()
    (sql,) = [statement for statement in seen if "FROM object_state" in statement]
    plan = _plan(cache_path, sql)
    assert any("USING COVERING INDEX object_state_pending" in step for step in plan), plan
    assert not any("TEMP B-TREE" in step for step in plan), plan


def test_a_text_finds_its_objects_through_the_term_index(cache_path: Path) -> None:
    """Terms by their trigram index (a short text's by its spaced-out characters), then their
    objects by key or, for those no longer held, in time order off their own index."""
    plans: dict[str, list[list[str]]] = {}
    for text in ("user3@", "3@", "user"):
        seen: list[str] = []
        conn = sqlite3.connect(cache_path)
        conn.set_trace_callback(seen.append)
        try:
            list(health._matching_objects(Database(conn), text))
        finally:
            conn.close()
        statements = [
            sql
            for sql in seen
            if sql.startswith("SELECT") and "'main'" not in sql  # FTS5's own
        ]
        plans[text] = [_plan(cache_path, sql) for sql in statements]
    for text, (terms, holding, released) in plans.items():
        assert any("VIRTUAL TABLE INDEX 0:M" in step for step in terms), text
        assert "SEARCH search_terms USING INTEGER PRIMARY KEY (rowid=?)" in terms, text
        assert any("SEARCH t USING PRIMARY KEY (term_id=?)" in step for step in holding), text
        assert "SEARCH s USING PRIMARY KEY (source_id=?)" in holding, holding
        assert any("USING INDEX object_terms_released (term_id=?)" in s for s in released), text
        for plan in (holding, released):
            assert not [step for step in plan if FULL_SCAN.search(step)], plan
    single_term = plans["user3@"][2]  # one term: its objects come in order, unsorted
    assert not any("TEMP B-TREE" in step for step in single_term), single_term
