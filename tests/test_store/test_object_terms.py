"""The search terms object_state's triggers keep are the same since m018 as m013's triggers kept.

m018 adds a new object's terms in two statements instead of two per column. Saved the same
events, in the same batches, a cache keeps the same terms with the same ids, the same
object-term pairs, holders and release times, whichever trigger added them, and across the
upgrade between the two.
"""

from __future__ import annotations

import random
import sqlite3
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlite_utils import Database

from store.cache import _EVENT_VALUES, _event_values, _save_events
from store.derived import register_fold_functions
from store.models import ProvisioningEvent
from store.schema import migrations

BEFORE = "m018_object_terms_held_in_two_statements"
T0 = datetime(2026, 11, 1, tzinfo=UTC)


def _tenant_events(count: int, objects: int) -> list[ProvisioningEvent]:
    """Objects in one job or two, renamed halfway, failing with changing codes and target ids."""
    rng = random.Random(11)
    events = []
    for index in range(count):
        number = rng.randrange(objects)
        late = index > count // 2
        failed = rng.random() < 0.25
        events.append(
            ProvisioningEvent(
                id=f"evt-{index:04d}",
                activity_at=T0 + timedelta(minutes=index // 3 * 2),  # ties in time
                job_id="job-firstgen" if number % 3 == 0 and index % 2 else "job-nextgen",
                cycle_id=f"cyc-{index // 30:02d}",
                action="update",
                status="failure" if failed else "success",
                source_id="" if number % 13 == 12 else f"obj-{number:03d}",
                source_name=f"{'after' if late and number % 5 == 0 else 'before'}-{number}",
                target_id="" if failed else f"tgt-{'new' if late else 'old'}{number}",
                error_code=("E_NEW" if late else "E_OLD") if failed else "",
            )
        )
    return events


def _same_value_everywhere(index: int) -> ProvisioningEvent:
    """An object whose name, target id and error code are one text: held three times."""
    return ProvisioningEvent(
        id=f"same-{index}",
        activity_at=T0 + timedelta(minutes=index),
        job_id="job-nextgen",
        cycle_id="cyc-00",
        action="create",
        status="failure",
        source_id="obj-same",
        source_name="same",
        target_id="same",
        error_code="same",
    )


def _batches() -> list[list[ProvisioningEvent]]:
    """Renames, changed target ids and error codes, two jobs, and batches saved out of order."""
    events = _tenant_events(count=300, objects=30)
    batches = [events[start : start + 40] for start in range(0, len(events), 40)]
    batches.insert(2, [_same_value_everywhere(1)])
    batches.append([_same_value_everywhere(0)])  # older: the object is folded again
    batches[3], batches[5] = batches[5], batches[3]
    return batches


def _save(conn: sqlite3.Connection, batches: list[list[ProvisioningEvent]]) -> None:
    for batch in batches:
        conn.execute("BEGIN")
        _save_events(conn, _EVENT_VALUES, map(_event_values, batch))
        conn.execute("COMMIT")


def _terms(conn: sqlite3.Connection) -> tuple[list[tuple[object, ...]], ...]:
    return (
        conn.execute("SELECT id, term FROM search_terms ORDER BY id").fetchall(),
        conn.execute("SELECT * FROM object_terms ORDER BY term_id, object_id").fetchall(),
    )


def _saved(path: Path, upgrade_after: int | None) -> tuple[list[tuple[object, ...]], ...]:
    """The terms after saving `_batches()`; before m018 until `upgrade_after` batches."""
    batches = _batches()
    with closing(sqlite3.connect(path, isolation_level=None)) as conn:
        register_fold_functions(conn)
        if upgrade_after is not None:
            migrations.apply(Database(conn), stop_before=BEFORE)
            _save(conn, batches[:upgrade_after])
            batches = batches[upgrade_after:]
        migrations.apply(Database(conn))
        _save(conn, batches)
        return _terms(conn)


def _saved_before_m018(path: Path) -> tuple[list[tuple[object, ...]], ...]:
    with closing(sqlite3.connect(path, isolation_level=None)) as conn:
        register_fold_functions(conn)
        migrations.apply(Database(conn), stop_before=BEFORE)
        _save(conn, _batches())
        return _terms(conn)


@pytest.mark.parametrize("upgrade_after", [None, 0, 4, 99], ids=["m018", "empty", "half", "all"])
def test_terms_are_those_m013s_trigger_kept(tmp_path, upgrade_after):
    expected = _saved_before_m018(tmp_path / "m017.db")
    terms, pairs = _saved(tmp_path / "m018.db", upgrade_after)
    assert (terms, pairs) == expected
    assert ("same",) in {(term,) for _, term in terms}
    same = {term: term_id for term_id, term in terms}
    held = {(term_id, object_id): holders for term_id, object_id, holders, _ in pairs}
    assert held[(same["same"], same["obj-same"])] == 3


def test_the_upgrade_replaces_the_insert_trigger(tmp_path):
    with closing(sqlite3.connect(tmp_path / "c.db", isolation_level=None)) as conn:
        migrations.apply(Database(conn))
        (sql,) = conn.execute(
            "SELECT sql FROM sqlite_master WHERE name = 'object_state_terms_insert'"
        ).fetchone()
    assert sql.count("INSERT INTO") == 2
