"""Staged polls: records saved page by page into temp tables, applied with the batch at once."""

from __future__ import annotations

import pytest

from store.cache import Cache, CacheError
from store.models import (
    Batch,
    HarnessGroup,
    HarnessGroupMember,
    HarnessUser,
    Record,
    Snapshot,
)
from tests.test_store.helpers import T0, event, rows

SCIM_USERS = Snapshot(table="harness_users", where={"in_scim": 1}, clear="in_scim")
NG_USERS = Snapshot(table="harness_users", where={"in_ng": 1}, clear="in_ng")


def save(cache: Cache, batch: Batch, *, staged: bool) -> int:
    """Save `batch` as one Batch, or staged a record per page; the poll run's record count."""
    if not staged:
        return cache.save_batch(batch, T0, T0).records
    staging = cache.staging(batch.source)
    try:
        for record in batch.records:
            staging.add([record])
        return cache.save_batch(batch.model_copy(update={"records": []}), T0, T0).records
    finally:
        staging.close()


def harness_scim(users: list[str], members: list[tuple[str, str]], listed: list[str]) -> Batch:
    records: list[Record] = [
        HarnessUser(id=user, email=f"{user}@example.com", external_id=f"x-{user}", in_scim=True)
        for user in users
    ]
    records += [HarnessGroup(identifier=group, in_scim=True) for group in listed]
    records += [HarnessGroupMember(group_identifier=g, user_id=u) for g, u in members]
    snapshots = [SCIM_USERS] + [
        Snapshot(table="harness_group_members", where={"scope": "account", "group_identifier": g})
        for g in listed
    ]
    return Batch(source="harness.scim", records=records, snapshots=snapshots)


def ng(users: list[str]) -> Batch:
    records: list[Record] = [HarnessUser(id=user, name=user.title(), in_ng=True) for user in users]
    return Batch(source="harness.ng", records=records, snapshots=[NG_USERS])


SEQUENCE = [
    harness_scim(["u0", "u1", "u2"], [("a", "u0"), ("a", "u1"), ("b", "u2"), ("c", "u2")], []),
    ng(["u1", "u2", "u3"]),
    harness_scim(["u1", "u2"], [("a", "u1"), ("b", "u1")], ["a", "b"]),
    ng(["u1"]),
    Batch(source="graph.provisioning", records=[event("e1"), event("e2", 1)], watermark="w1"),
    Batch(source="graph.provisioning", records=[event("e2", 5, "failure"), event("e3", 2)]),
]
TABLES = {
    "harness_users": "SELECT * FROM harness_users ORDER BY id",
    "harness_groups": "SELECT * FROM harness_groups ORDER BY identifier",
    "harness_group_members": "SELECT * FROM harness_group_members ORDER BY 1, 2, 3",
    "provisioning_events": "SELECT * FROM provisioning_events ORDER BY id",
    "cycles": "SELECT * FROM cycles ORDER BY 1, 2",
    "object_state": "SELECT * FROM object_state ORDER BY 1, 2",
    "watermarks": "SELECT source, value, complete FROM watermarks",
    "poll_runs": "SELECT source, records FROM poll_runs ORDER BY id",
}


def test_a_staged_save_leaves_the_same_cache_as_one_batch(tmp_path):
    """Merged presence flags, per-group snapshots, kept and folded events: the same rows."""
    results = []
    for staged in (False, True):
        path = tmp_path / f"staged-{staged}.db"
        with Cache.open_writer(path) as opened:
            for batch in SEQUENCE:
                save(opened, batch, staged=staged)
        results.append({name: rows(path, sql) for name, sql in TABLES.items()})
    assert results[0] == results[1]
    assert results[1]["harness_users"][0][0] == "u1"  # u0 left SCIM, u2 and u3 left NextGen
    assert results[1]["cycles"]
    assert results[1]["object_state"]


@pytest.mark.parametrize("staged", [False, True])
def test_records_setting_different_fields_each_update_only_their_own(cache, cache_path, staged):
    """One poll, two shapes of user: each writes the fields it set over the cached row."""
    save(cache, harness_scim(["u1", "u2"], [], []), staged=staged)
    shapes: list[Record] = [
        HarnessUser(id="u1", name="Una", in_ng=True),
        HarnessUser(id="u2", email="new@example.com", in_ng=True),
    ]
    save(cache, Batch(source="harness.ng", records=shapes), staged=staged)
    assert rows(
        cache_path,
        "SELECT id, email, name, external_id, in_scim, in_ng FROM harness_users ORDER BY id",
    ) == [
        ("u1", "u1@example.com", "Una", "x-u1", 1, 1),
        ("u2", "new@example.com", "", "x-u2", 1, 1),
    ]


def test_a_key_staged_twice_takes_the_last_values_and_is_counted_once(cache, cache_path):
    staging = cache.staging("harness.ng")
    staging.add([HarnessUser(id="u1", name="Old", in_ng=True)])
    staging.add([HarnessUser(id="u1", name="New", in_ng=True), HarnessUser(id="u2", in_ng=True)])
    poll_run = cache.save_batch(Batch(source="harness.ng", snapshots=[NG_USERS]), T0, T0)
    staging.close()
    assert poll_run.records == 2
    assert rows(cache_path, "SELECT id, name FROM harness_users ORDER BY id") == [
        ("u1", "New"),
        ("u2", ""),
    ]


def test_a_staged_poll_closed_unsaved_changes_nothing_and_prunes_nothing(cache, cache_path):
    """A listing that failed halfway: what it staged never reaches the cache."""
    save(cache, ng(["u1", "u2"]), staged=False)
    staging = cache.staging("harness.ng")
    staging.add([HarnessUser(id="u3", in_ng=True)])
    staging.close()
    cache.save_batch(Batch(source="harness.scim"), T0, T0)  # another source saves meanwhile
    assert rows(cache_path, "SELECT id, in_ng FROM harness_users ORDER BY id") == [
        ("u1", 1),
        ("u2", 1),
    ]
    with pytest.raises(CacheError, match="closed"):
        staging.add([HarnessUser(id="u4", in_ng=True)])
    save(cache, ng(["u1"]), staged=False)  # the next save of the source is not the staged one
    assert rows(cache_path, "SELECT id FROM harness_users") == [("u1",)]


def test_a_failing_staged_save_rolls_back_whole(cache, cache_path):
    save(cache, ng(["u1"]), staged=False)
    staging = cache.staging("harness.ng")
    staging.add([HarnessUser(id="u2", in_ng=True)])
    bad = Batch(source="harness.ng", snapshots=[Snapshot(table="no_such_table")])
    with pytest.raises(CacheError):
        cache.save_batch(bad, T0, T0)
    staging.close()
    assert rows(cache_path, "SELECT id FROM harness_users") == [("u1",)]


def test_one_staged_poll_per_source_at_a_time(cache):
    staging = cache.staging("harness.ng")
    with pytest.raises(CacheError, match="already"):
        cache.staging("harness.ng")
    cache.staging("harness.scim").close()
    staging.close()
    cache.staging("harness.ng").close()


def test_staging_needs_the_writer(cache_path, cache):
    reader = Cache.open_reader(cache_path)
    with pytest.raises(CacheError, match="read-only"):
        reader.staging("harness.ng")
