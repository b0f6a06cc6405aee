"""The cache: idempotent atomic batches, the writer lock, migrations, private files."""

from __future__ import annotations

import logging
import os
import sqlite3
import stat
import subprocess
import sys
import textwrap
from contextlib import closing
from datetime import timedelta, timezone

import pytest
from sqlite_utils import Database

from store.cache import Cache, CacheError, CacheLocked, _event_values
from store.detail import pack_detail, unpack_detail
from store.models import (
    Batch,
    HarnessGroup,
    HarnessGroupMember,
    HarnessUser,
    JobExecution,
    PollRun,
    ProvisioningEvent,
    Snapshot,
)
from store.schema import migrations
from tests.test_store.helpers import T0, event, rows


def events_batch(*ids: str, watermark: str | None = None) -> Batch:
    return Batch(
        source="graph.provisioning",
        records=[event(event_id, index) for index, event_id in enumerate(ids)],
        watermark=watermark,
    )


def test_saving_same_batch_twice_keeps_one_row_per_event(cache, cache_path):
    batch = events_batch("a", "b", "c", watermark="2026-11-28T09:02:00Z")
    cache.save_batch(batch, T0, T0)
    cache.save_batch(batch, T0, T0)
    assert rows(cache_path, "SELECT id FROM provisioning_events ORDER BY id") == [
        ("a",),
        ("b",),
        ("c",),
    ]
    assert rows(cache_path, "SELECT count(*) FROM poll_runs") == [(2,)]


def test_a_later_batch_updates_the_row_of_the_same_id(cache, cache_path):
    cache.save_batch(
        Batch(source="harness.ng", records=[HarnessGroup(identifier="g", name="Old")]), T0, T0
    )
    cache.save_batch(
        Batch(source="harness.ng", records=[HarnessGroup(identifier="g", name="New")]), T0, T0
    )
    assert rows(cache_path, "SELECT identifier, name FROM harness_groups") == [("g", "New")]


def test_an_event_already_cached_is_kept_as_first_saved(cache, cache_path):
    """Graph's provisioning events are immutable: a re-sent id is not counted twice."""
    cache.save_batch(events_batch("a"), T0, T0)
    cache.save_batch(
        Batch(source="graph.provisioning", records=[event("a", status="failure")]), T0, T0
    )
    assert rows(cache_path, "SELECT id, status FROM provisioning_events") == [("a", "success")]
    assert rows(cache_path, "SELECT events, failed FROM cycles") == [(1, 0)]


def test_batch_and_watermark_commit_together_or_not_at_all(cache, cache_path):
    """A failure in the middle of a batch leaves neither its rows nor its watermark."""
    cache.save_batch(events_batch("a", watermark="w1"), T0, T0)
    conn = sqlite3.connect(cache_path)
    conn.execute(
        "CREATE TRIGGER fail_mid_batch BEFORE INSERT ON provisioning_events"
        " WHEN NEW.id = 'boom' BEGIN SELECT RAISE(ABORT, 'disk on fire'); END"
    )
    conn.commit()
    conn.close()
    with pytest.raises(sqlite3.IntegrityError, match="disk on fire"):
        cache.save_batch(events_batch("b", "c", "boom", "d", watermark="w2"), T0, T0)
    assert rows(cache_path, "SELECT id FROM provisioning_events") == [("a",)]
    assert cache.watermark("graph.provisioning") == "w1"
    assert rows(cache_path, "SELECT count(*) FROM poll_runs") == [(1,)]


def test_snapshot_removes_rows_that_vanished_upstream(cache, cache_path):
    groups = [HarnessGroup(identifier=name, name=name) for name in ("a", "b", "c")]
    members = [HarnessGroupMember(group_identifier="a", user_id=user) for user in ("u1", "u2")]
    snapshots = [Snapshot(table="harness_groups"), Snapshot(table="harness_group_members")]
    cache.save_batch(
        Batch(source="harness.ng", records=[*groups, *members], snapshots=snapshots), T0, T0
    )
    cache.save_batch(
        Batch(source="harness.ng", records=[groups[1], members[0]], snapshots=snapshots), T0, T0
    )
    assert rows(cache_path, "SELECT identifier FROM harness_groups") == [("b",)]
    assert rows(cache_path, "SELECT group_identifier, user_id FROM harness_group_members") == [
        ("a", "u1")
    ]


def test_snapshot_bounded_by_where_leaves_other_rows_alone(cache, cache_path):
    scim = HarnessGroup(identifier="scim_group", in_scim=True)
    native = HarnessGroup(identifier="native", scope="org/eng")
    cache.save_batch(Batch(source="harness.ng", records=[scim, native]), T0, T0)
    cache.save_batch(
        Batch(
            source="harness.ng",
            records=[],
            snapshots=[Snapshot(table="harness_groups", where={"scope": "account"})],
        ),
        T0,
        T0,
    )
    assert rows(cache_path, "SELECT identifier FROM harness_groups") == [("native",)]


def test_snapshot_of_an_unknown_table_is_refused_and_saves_nothing(cache, cache_path):
    batch = Batch(
        source="harness.ng",
        records=[HarnessGroup(identifier="a")],
        snapshots=[Snapshot(table="sqlite_master")],
    )
    with pytest.raises(CacheError, match="unknown cache table"):
        cache.save_batch(batch, T0, T0)
    assert rows(cache_path, "SELECT count(*) FROM harness_groups") == [(0,)]


def test_failed_poll_is_recorded_and_keeps_data_and_watermark(cache):
    cache.save_batch(events_batch("a", watermark="w1"), T0, T0)
    failed = PollRun(
        source="graph.provisioning",
        started_at=T0 + timedelta(minutes=5),
        finished_at=T0 + timedelta(minutes=5, seconds=3),
        ok=False,
        error="Graph answered 503",
        error_kind="unavailable",
    )
    cache.record_failed_poll(failed)
    last = cache.last_poll("graph.provisioning")
    assert last is not None
    assert (last.ok, last.error, last.error_kind) == (False, "Graph answered 503", "unavailable")
    assert cache.watermark("graph.provisioning") == "w1"
    assert cache.count("provisioning_events") == 1


def test_freshness_reports_stale_failing_and_never_polled_sources(cache):
    cache.save_batch(events_batch("a"), T0, T0)
    for minute in (10, 20):
        cache.record_failed_poll(
            PollRun(
                source="graph.provisioning",
                started_at=T0 + timedelta(minutes=minute),
                finished_at=T0 + timedelta(minutes=minute),
                ok=False,
                error="timeout",
                error_kind="unavailable",
            )
        )
    interval = timedelta(minutes=5)
    fresh = cache.freshness(
        T0 + timedelta(minutes=21), {"graph.provisioning": interval, "harness.scim": interval}
    )
    by_source = {item.source: item for item in fresh}
    provisioning = by_source["graph.provisioning"]
    assert provisioning.last_success_at == T0
    assert provisioning.failing_since == T0 + timedelta(minutes=10)
    assert provisioning.last_error == "timeout"
    assert provisioning.stale is True
    assert by_source["harness.scim"].stale is True
    assert by_source["harness.scim"].last_success_at is None


def test_a_source_polled_within_twice_its_interval_is_not_stale(cache):
    cache.save_batch(events_batch("a"), T0, T0)
    (fresh,) = cache.freshness(
        T0 + timedelta(minutes=9), {"graph.provisioning": timedelta(minutes=5)}
    )
    assert fresh.stale is False
    assert fresh.failing_since is None


def test_second_writer_is_refused_while_a_reader_still_reads(cache, cache_path):
    cache.save_batch(events_batch("a"), T0, T0)
    with pytest.raises(CacheLocked, match=f"pid {os.getpid()}") as refused:
        Cache.open_writer(cache_path)
    assert "read-only" in str(refused.value)
    reader = Cache.open_reader(cache_path)
    assert reader.count("provisioning_events") == 1
    assert Cache.writer_holder(cache_path) == f"pid {os.getpid()}"


def test_writer_lock_is_refused_to_another_process(cache, cache_path):
    code = textwrap.dedent(
        f"""
        from pathlib import Path
        from store.cache import Cache, CacheLocked
        try:
            Cache.open_writer(Path({str(cache_path)!r}))
        except CacheLocked as error:
            print("refused:", error)
        """
    )
    completed = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert completed.stdout.startswith("refused:")
    assert f"pid {os.getpid()}" in completed.stdout


def test_lock_is_released_on_close(cache_path):
    Cache.open_writer(cache_path).close()
    assert Cache.writer_holder(cache_path) is None
    Cache.open_writer(cache_path).close()


def test_reader_cannot_write(cache, cache_path):
    reader = Cache.open_reader(cache_path)
    with pytest.raises(CacheError, match="read-only"):
        reader.save_batch(events_batch("x"), T0, T0)
    with reader.reading() as db, pytest.raises(sqlite3.OperationalError, match="readonly"):
        db.execute("DELETE FROM provisioning_events")


def test_opening_a_missing_cache_for_reading_says_how_to_make_one(tmp_path):
    with pytest.raises(CacheError, match="collect --once"):
        Cache.open_reader(tmp_path / "absent.db")


def test_migrations_applied_twice_are_harmless(cache, cache_path):
    cache.save_batch(events_batch("a"), T0, T0)
    applied = cache.schema_version()
    cache.close()
    with Cache.open_writer(cache_path) as reopened:
        assert reopened.schema_version() == applied
        assert reopened.count("provisioning_events") == 1
    conn = sqlite3.connect(cache_path)
    migrations.apply(Database(conn))
    conn.close()
    assert rows(cache_path, "SELECT count(*) FROM _sqlite_migrations") == [(len(applied),)]


def test_cache_files_are_private(cache, cache_path):
    cache.save_batch(events_batch("a"), T0, T0)
    with cache.reading() as db:  # keep a connection open so the WAL files exist
        db.execute("SELECT 1")
        for path in cache_path.parent.iterdir():
            assert stat.S_IMODE(path.stat().st_mode) == 0o600, path.name
    assert stat.S_IMODE(cache_path.parent.stat().st_mode) == 0o700
    assert rows(cache_path, "PRAGMA journal_mode") == [("wal",)]


def test_an_existing_world_readable_cache_is_tightened(cache_path):
    cache_path.parent.mkdir(parents=True)
    cache_path.touch(mode=0o644)
    cache_path.chmod(0o644)
    Cache.open_writer(cache_path).close()
    assert stat.S_IMODE(cache_path.stat().st_mode) == 0o600


def test_a_symlinked_cache_path_is_refused(tmp_path):
    target = tmp_path / "elsewhere.db"
    target.touch()
    link = tmp_path / "cache.db"
    link.symlink_to(target)
    with pytest.raises(CacheError, match="symbolic link"):
        Cache.open_writer(link)


def test_event_detail_round_trips_compactly():
    detail = {"provisioningSteps": [{"name": "EntryExportAdd", "details": {"k": "v" * 500}}]}
    blob = pack_detail(detail)
    assert unpack_detail(blob) == detail
    assert len(blob) < 200


@pytest.mark.parametrize("blob", [None, b"", b"not zlib", pack_detail({})[:-3]])
def test_unreadable_event_detail_is_empty_not_an_error(blob):
    assert unpack_detail(blob) == {}


def test_snapshot_matches_keys_as_stored_whatever_the_time_zone(cache, cache_path):
    """A listed execution's `began` key, given in UTC+1, still matches its stored UTC text."""
    paris = timezone(timedelta(hours=1))
    executions = [
        JobExecution(job_id="job-1", began=(T0 + timedelta(minutes=minute)).astimezone(paris))
        for minute in (0, 40)
    ]
    snapshot = [Snapshot(table="job_executions", where={"job_id": "job-1"})]
    cache.save_batch(Batch(source="graph.jobs", records=executions), T0, T0)
    cache.save_batch(Batch(source="graph.jobs", records=executions[1:], snapshots=snapshot), T0, T0)
    assert rows(cache_path, "SELECT began FROM job_executions") == [
        ("2026-11-28T09:40:00.000000Z",)
    ]


def test_two_sources_describing_one_row_each_keep_their_fields(cache, cache_path):
    """SCIM knows a user's externalId, NextGen does not: a NextGen poll must not blank it."""
    scim = HarnessUser(
        id="u1", email="a@example.com", external_id="ext-1", active=True, in_scim=True
    )
    cache.save_batch(Batch(source="harness.scim", records=[scim]), T0, T0)
    ng = HarnessUser(id="u1", email="a@example.com", name="Alice", in_ng=True)
    cache.save_batch(Batch(source="harness.ng", records=[ng]), T0, T0)
    assert rows(
        cache_path, "SELECT id, name, external_id, active, in_scim, in_ng FROM harness_users"
    ) == [("u1", "Alice", "ext-1", 1, 1, 1)]


def test_a_row_goes_only_when_no_source_lists_it(cache, cache_path):

    snapshot_scim = [Snapshot(table="harness_users", where={"in_scim": 1}, clear="in_scim")]
    snapshot_ng = [Snapshot(table="harness_users", where={"in_ng": 1}, clear="in_ng")]
    both = HarnessUser(id="u1", email="a@example.com", in_scim=True)
    cache.save_batch(Batch(source="harness.scim", records=[both], snapshots=snapshot_scim), T0, T0)
    cache.save_batch(
        Batch(
            source="harness.ng", records=[HarnessUser(id="u1", in_ng=True)], snapshots=snapshot_ng
        ),
        T0,
        T0,
    )
    cache.save_batch(Batch(source="harness.scim", records=[], snapshots=snapshot_scim), T0, T0)
    assert rows(cache_path, "SELECT id, in_scim, in_ng FROM harness_users") == [("u1", 0, 1)]
    cache.save_batch(Batch(source="harness.ng", records=[], snapshots=snapshot_ng), T0, T0)
    assert rows(cache_path, "SELECT count(*) FROM harness_users") == [(0,)]


def test_one_reading_sees_one_commit_while_the_writer_saves(cache):
    cache.save_batch(events_batch("a"), T0, T0)
    with cache.reading() as db:
        before = db.execute("SELECT count(*) FROM provisioning_events").fetchone()[0]
        cache.save_batch(events_batch("b", "c"), T0, T0)
        after = db.execute("SELECT count(*) FROM provisioning_events").fetchone()[0]
    assert (before, after) == (1, 1)
    assert cache.count("provisioning_events") == 3


def test_one_snapshot_per_group_prunes_each_group_and_nothing_else(cache, cache_path):
    """The Harness SCIM shape: a membership snapshot per listed group, flags on the rest."""
    users = [HarnessUser(id=f"u{n}", email=f"u{n}@example.com", in_scim=True) for n in range(4)]
    groups = [HarnessGroup(identifier=name, in_scim=True) for name in ("a", "b")]
    members = [
        HarnessGroupMember(group_identifier="a", user_id="u0"),
        HarnessGroupMember(group_identifier="a", user_id="u1"),
        HarnessGroupMember(group_identifier="b", user_id="u1"),
        HarnessGroupMember(group_identifier="b", user_id="u2"),
        HarnessGroupMember(group_identifier="c", user_id="u3"),  # a group not listed again
    ]

    def snapshots(*listed: str) -> list[Snapshot]:
        return [
            Snapshot(table="harness_users", where={"in_scim": 1}, clear="in_scim"),
            *(
                Snapshot(
                    table="harness_group_members",
                    where={"scope": "account", "group_identifier": name},
                )
                for name in listed
            ),
        ]

    cache.save_batch(
        Batch(source="harness.scim", records=[*users, *groups, *members], snapshots=snapshots()),
        T0,
        T0,
    )
    # Again: u0 left group a, u2 left group b, u3 is gone from SCIM; group c is not listed.
    again = [users[0], users[1], users[2], members[1], members[2]]
    cache.save_batch(
        Batch(source="harness.scim", records=again, snapshots=snapshots("a", "b")), T0, T0
    )
    assert rows(
        cache_path,
        "SELECT group_identifier, user_id FROM harness_group_members ORDER BY 1, 2",
    ) == [("a", "u1"), ("b", "u1"), ("c", "u3")]
    assert rows(cache_path, "SELECT id FROM harness_users ORDER BY id") == [
        ("u0",),
        ("u1",),
        ("u2",),
    ]


def test_no_sqlite_utils_plugin_is_loaded_or_run_on_the_cache(cache_path, tmp_path, monkeypatch):
    """Loading sqlite-utils plugins scans every installed package (~40 ms before the first
    paint) and would let an installed plugin run code on the cache's connections."""
    import sqlite_utils.db

    from store.export import export_sqlite

    loads: list[str] = []
    monkeypatch.setattr(sqlite_utils.db, "ensure_plugins_loaded", lambda: loads.append("load"))
    with Cache.open_writer(cache_path) as writer:
        writer.save_batch(Batch(source="graph.provisioning", records=[]), T0, T0)
        with writer.reading() as db:
            db.execute("SELECT count(*) FROM provisioning_events").fetchone()
        export_sqlite(writer, tmp_path / "export.db", T0)
    with Cache.open_reader(cache_path) as reader, reader.reading() as db:
        db.execute("SELECT count(*) FROM poll_runs").fetchone()
    assert loads == []


def test_upgrading_an_older_cache_says_so_once(tmp_path, caplog, monkeypatch):
    """A migration can take a minute on a large cache: the admin is told why the start waits."""
    # The collector's logging (configured by other tests in this process) stops propagation.
    monkeypatch.setattr(logging.getLogger("scimwatch"), "propagate", True)
    with Cache.open_writer(tmp_path / "new.db"):
        pass
    assert "upgrading" not in caplog.text  # a new cache is made, not upgraded
    path = tmp_path / "older.db"
    last = migrations._migrations[-1].name
    with closing(sqlite3.connect(path, isolation_level=None)) as conn:
        migrations.apply(Database(conn), stop_before=last)  # as the version before left it
    with Cache.open_writer(path) as cache:
        assert cache.schema_version()[-1] == last
    assert caplog.text.count("upgrading the cache") == 1
    caplog.clear()
    with Cache.open_writer(path):
        pass
    assert "upgrading" not in caplog.text


@pytest.mark.parametrize(
    "activity_at",
    [
        "2026-11-28T09:00:00.123456Z",
        "2026-11-28T09:00:00Z",
        "2026-11-28T09:00:00.000001+00:00",
        "2026-11-28T10:30:00.5+01:30",
        "2026-11-28T04:00:00.25-05:00",
        "0999-01-01T00:00:00.1Z",
    ],
)
def test_the_save_paths_event_row_is_the_events_own_values(activity_at):
    """The save path's shortcut stores the time exactly as `iso_utc` would, whatever its zone."""
    parsed = ProvisioningEvent.model_validate(
        event("e1").model_dump() | {"activity_at": activity_at}
    )
    assert _event_values(parsed) == parsed.to_values()
