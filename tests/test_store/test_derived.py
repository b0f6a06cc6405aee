"""State kept on ingest equals state recomputed from scratch, whatever the saving order."""

from __future__ import annotations

import sqlite3
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from store.cache import Cache
from store.derived import rebuild_derived_state
from store.models import Batch, ProvisioningEvent, iso_utc

T0 = datetime(2026, 11, 1, tzinfo=UTC)

event_specs = st.lists(
    st.tuples(
        st.sampled_from(["u1", "u2", "g1"]),  # object
        st.integers(min_value=0, max_value=5),  # cycle number
        st.sampled_from(["success", "failure", "skipped", "warning"]),
        st.sampled_from(["create", "update", "disable", "stagedDelete", "other"]),
    ),
    min_size=1,
    max_size=25,
)


def to_events(specs: list[tuple[str, int, str, str]]) -> list[ProvisioningEvent]:
    return [
        ProvisioningEvent(
            id=f"e{index}",
            activity_at=T0 + timedelta(minutes=40 * cycle, seconds=index),
            job_id="job",
            cycle_id=f"c{cycle}",
            action=action,
            status=status,
            source_id=source,
            source_type="Group" if source.startswith("g") else "User",
            error_code="E" if status == "failure" else "",
        )
        for index, (source, cycle, status, action) in enumerate(specs)
    ]


def snapshot(path: Path) -> tuple[list[tuple[object, ...]], list[tuple[object, ...]]]:
    conn = sqlite3.connect(path)
    try:
        state = conn.execute("SELECT * FROM object_state ORDER BY job_id, source_id").fetchall()
        cycles = conn.execute("SELECT * FROM cycles ORDER BY job_id, cycle_id").fetchall()
        return state, cycles
    finally:
        conn.close()


@settings(max_examples=60, deadline=None)
@given(specs=event_specs, batch_size=st.integers(1, 7), reverse=st.booleans(), data=st.data())
def test_incremental_state_equals_a_rebuild(specs, batch_size, reverse, data):
    events = to_events(specs)
    order = sorted(events, key=lambda e: e.activity_at, reverse=reverse)
    order = data.draw(st.permutations(order)) if data.draw(st.booleans()) else order
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "cache.db"
        with Cache.open_writer(path) as cache:
            for start in range(0, len(order), batch_size):
                batch = order[start : start + batch_size]
                cache.save_batch(Batch(source="graph.provisioning", records=batch), T0, T0)
            incremental = snapshot(path)
            conn = sqlite3.connect(path, isolation_level=None)
            rebuild_derived_state(conn)
            conn.close()
            assert snapshot(path) == incremental


def test_events_saved_later_at_the_same_time_or_earlier_are_folded_in_order(tmp_path):
    """An event at the time of the saved latest one, or older, is folded in (time, id) order."""
    same_time = T0 + timedelta(minutes=40)
    specs = [("e2", same_time, "failure"), ("e1", same_time, "success"), ("e0", T0, "failure")]
    events = [
        ProvisioningEvent(
            id=event_id,
            activity_at=at,
            job_id="job",
            cycle_id=f"c{index}",
            action="update",
            status=status,
            source_id="u1",
            source_type="User",
        )
        for index, (event_id, at, status) in enumerate(specs)
    ]
    path = tmp_path / "cache.db"
    with Cache.open_writer(path) as cache:
        for event in events:
            cache.save_batch(Batch(source="graph.provisioning", records=[event]), T0, T0)
            incremental = snapshot(path)
            conn = sqlite3.connect(path, isolation_level=None)
            rebuild_derived_state(conn)
            conn.close()
            assert snapshot(path) == incremental, event.id
            (state,) = incremental[0]
            assert state[5] == "e2"  # the latest event: the later id of the two at the same time


# (id, minute, cycle, status, target id) of one object's events, and its state after them:
# (failed cycles, id of the event its failures began at, target id).
FOLD_CASES = {
    "failures in one cycle": (
        [("e0", 0, "c1", "failure", ""), ("e1", 1, "c1", "failure", "")],
        (1, "e0", ""),
    ),
    "failures in two cycles": (
        [("e0", 0, "c1", "failure", ""), ("e1", 40, "c2", "failure", "")],
        (2, "e0", ""),
    ),
    "failure, success, failure": (
        [
            ("e0", 0, "c1", "failure", ""),
            ("e1", 40, "c2", "success", "t1"),
            ("e2", 80, "c3", "failure", ""),
        ],
        (1, "e2", "t1"),
    ),
    "a cycle coming back counts again": (
        [
            ("e0", 0, "c1", "failure", ""),
            ("e1", 1, "c2", "failure", ""),
            ("e2", 2, "c1", "failure", ""),
        ],
        (3, "e0", ""),
    ),
    "an empty target id keeps the last one given": (
        [
            ("e0", 0, "c1", "success", "t1"),
            ("e1", 40, "c2", "success", ""),
            ("e2", 80, "c3", "failure", ""),
        ],
        (1, "e2", "t1"),
    ),
    "a later target id replaces it": (
        [
            ("e0", 0, "c1", "success", "t1"),
            ("e1", 40, "c2", "success", "t2"),
            ("e2", 41, "c2", "warning", ""),
        ],
        (0, None, "t2"),
    ),
    "ties in time go by id": (
        [
            ("b", 0, "c1", "failure", ""),
            ("a", 0, "c1", "success", "t1"),
            ("d", 5, "c2", "failure", ""),
            ("c", 5, "c2", "failure", ""),
        ],
        (2, "b", "t1"),
    ),
}

SAVINGS = {
    "one batch": lambda events: [events],
    "one event a batch": lambda events: [[event] for event in events],
    "newest first": lambda events: [[event] for event in reversed(events)],
    "halves, newer first": lambda events: [events[len(events) // 2 :], events[: len(events) // 2]],
}


@pytest.mark.parametrize("saving", SAVINGS.values(), ids=SAVINGS.keys())
@pytest.mark.parametrize(("specs", "expected"), FOLD_CASES.values(), ids=FOLD_CASES.keys())
def test_an_objects_streak_and_target_id_whatever_the_batches(tmp_path, specs, expected, saving):
    """Several events of an object in a batch or across them, older ones saved later: the same
    streak (cycles of failures since its last other status) and target id as `_fold`'s."""
    events = [
        ProvisioningEvent(
            id=event_id,
            activity_at=T0 + timedelta(minutes=minute),
            job_id="job",
            cycle_id=cycle,
            action="update",
            status=status,
            source_id="u1",
            source_type="User",
            target_id=target,
        )
        for event_id, minute, cycle, status, target in specs
    ]
    by_id = {event.id: event for event in events}
    path = tmp_path / "cache.db"
    with Cache.open_writer(path) as cache:
        for batch in saving(events):
            cache.save_batch(Batch(source="graph.provisioning", records=batch), T0, T0)
    incremental = snapshot(path)
    conn = sqlite3.connect(path, isolation_level=None)
    rebuild_derived_state(conn)
    conn.close()
    assert snapshot(path) == incremental
    conn = sqlite3.connect(path)
    state = conn.execute(
        "SELECT failed_cycles, first_failure_at, target_id FROM object_state"
    ).fetchall()
    conn.close()
    failed_cycles, first_failure, target_id = expected
    began = None if first_failure is None else iso_utc(by_id[first_failure].activity_at)
    assert state == [(failed_cycles, began, target_id)]
