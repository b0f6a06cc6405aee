"""State kept on ingest equals state recomputed from scratch, whatever the saving order."""

from __future__ import annotations

import sqlite3
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from store.cache import Cache
from store.derived import rebuild_derived_state
from store.models import Batch, ProvisioningEvent

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
