"""Group mappings and SSO conflicts kept on ingest: never stale, same answers as computed live."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

import pytest
from sqlite_utils import Database

from store import directory, health
from store.cache import Cache
from store.models import (
    Batch,
    EntraGroup,
    EntraMembership,
    HarnessGroupMember,
    HarnessUser,
    Snapshot,
)
from store.overview import directory_answers_fresh
from store.schema import _DIRECTORY_ANSWER_INPUTS, migrations
from tests.builders import DEFAULT_ACCESS, NOW, Tenant
from tests.test_store import directory_oracle


@pytest.fixture
def tenant(tmp_path: Path):
    with Cache.open_writer(tmp_path / "cache.db") as cache:
        yield Tenant(cache)


def fresh(db: Database) -> bool:
    return bool(db.execute("SELECT fresh FROM directory_answers_state").fetchone()[0])


def answers(cache: Cache):
    with cache.reading() as db:
        assert fresh(db), "the stored answers should be up to date after save_batch"
        return directory.group_mappings(db), directory.sso_conflicts(db)


def live(cache: Cache):
    with cache.reading() as db:
        return directory_oracle.compute_group_mappings(db), directory_oracle.compute_sso_conflicts(
            db
        )


def seed_every_state(tenant: Tenant) -> None:
    """Groups in several states, sign-in conflicts of every kind, a nested member."""
    for user in ("alice", "bob", "carol", "dave"):
        tenant.user(user, f"{user}@example.com")
    tenant.user("erin", "erin@example.com", harness=False)
    tenant.group("g1", "Dev Team", direct=("alice", "bob"), nested=("carol",))
    tenant.harness_group("Dev_Team", "Dev Team", members=("alice", "dave"))
    tenant.group("g2", "Ops Team", direct=("carol",))
    tenant.harness_group("Ops_Team", "Ops Team", members=("carol",), bound=False)
    tenant.group("g3", "Dev-Team")
    tenant.group("g4", "Sales", direct=("alice",))
    tenant.harness_group("Old_Team", "Old Team")
    tenant.assign("bob", app="firstgen")
    tenant.assign("erin", role=DEFAULT_ACCESS)
    tenant.save("harness.scim", HarnessUser(id="h-x", email="ghost@example.com", in_scim=True))


def test_stored_answers_equal_the_live_computation(tenant):
    seed_every_state(tenant)
    mappings, conflicts = answers(tenant.cache)
    assert (mappings, conflicts) == live(tenant.cache)
    assert {problem for mapping in mappings for problem in mapping.problems} >= {
        "collision",
        "drift",
        "nested_members",
        "no_role_binding",
        "orphan",
    }
    assert {conflict.kind for conflict in conflicts} == {
        "firstgen_unassigned",
        "unmatched_harness_user",
        "default_access",
    }


def test_a_directory_change_saved_through_save_batch_is_read_afterwards(tenant):
    seed_every_state(tenant)
    before = answers(tenant.cache)
    tenant.save("harness.scim", HarnessGroupMember(group_identifier="Dev_Team", user_id="h-bob"))
    tenant.save("graph.directory", EntraGroup(id="g4", display_name="Sales EMEA"))
    tenant.assign("alice", app="firstgen")
    after = answers(tenant.cache)
    assert after != before
    assert after == live(tenant.cache)
    dev = next(mapping for mapping in after[0] if mapping.entra_group_id == "g1")
    assert "bob@example.com" in dev.harness_members
    assert "bob@example.com" not in dev.missing_in_harness
    assert any(mapping.entra_name == "Sales EMEA" for mapping in after[0])


def test_a_snapshot_pruning_rows_refreshes_the_answers(tenant):
    seed_every_state(tenant)
    tenant.cache.save_batch(_harness_users_snapshot(tenant), NOW, NOW)
    mappings, conflicts = answers(tenant.cache)
    assert all(conflict.principal_id != "h-x" for conflict in conflicts)
    assert (mappings, conflicts) == live(tenant.cache)


def _harness_users_snapshot(tenant: Tenant) -> Batch:
    """The SCIM users poll again, without the ghost user h-x."""
    with tenant.cache.reading() as db:
        kept = [
            HarnessUser(**{**row, "in_scim": True, "in_ng": bool(row["in_ng"])})
            for row in db.query("SELECT * FROM harness_users WHERE id != 'h-x'")
        ]
    return Batch(
        source="harness.scim",
        records=kept,
        snapshots=[Snapshot(table="harness_users", where={"in_scim": 1}, clear="in_scim")],
    )


def test_group_provisioning_events_refresh_the_pending_error(tenant):
    seed_every_state(tenant)
    tenant.event(
        "g3",
        cycle="c1",
        minutes_ago=5,
        status="failure",
        source_type="Group",
        error_code="SystemForCrossDomainIdentityManagementServiceIncompatible",
        reason="Harness said no",
    )
    mappings, conflicts = answers(tenant.cache)
    g3 = next(mapping for mapping in mappings if mapping.entra_group_id == "g3")
    assert "Harness said no" in g3.pending_error
    assert (mappings, conflicts) == live(tenant.cache)


def test_a_pending_group_error_is_what_harness_answered_and_said_once(tenant):
    """Not Microsoft's paragraph cut at 300 characters mid-JSON, twice over."""
    seed_every_state(tenant)
    body = (
        '{"id":null,"detail":"Try using different user group identifier, [Ops] cannot be'
        ' used","status":404,"schemas":["urn:ietf:params:scim:api:messages:2.0:Error"]}'
    )
    tenant.event(
        "g4",  # Sales: no Harness group
        cycle="c1",
        minutes_ago=5,
        status="failure",
        source_type="Group",
        error_code="HarnessEntryConflict",
        reason="StatusCode: Conflict Message: Processing of the HTTP request resulted in an"
        " exception. Please see the HTTP response returned by the 'Response' property of this"
        f" exception for details. Web Response: {body}. This operation was retried 3 times.",
    )
    mappings, _conflicts = answers(tenant.cache)
    sales = next(mapping for mapping in mappings if mapping.entra_group_id == "g4")
    assert sales.pending_error == (
        "HarnessEntryConflict: Try using different user group identifier, [Ops] cannot be used"
    )
    assert "not_provisioned" in sales.problems
    assert "no Harness group found; Entra's create fails (HarnessEntryConflict)" in sales.detail
    assert "Try using" not in sales.detail
    assert (mappings, _conflicts) == live(tenant.cache)


def test_a_batch_that_changes_no_input_keeps_the_answers_without_recomputing(tenant):
    seed_every_state(tenant)
    answers(tenant.cache)
    tenant.save("graph.directory", EntraGroup(id="g1", display_name="Dev Team"))
    tenant.event("alice", cycle="c9", minutes_ago=1)
    with tenant.cache.reading() as db:
        assert fresh(db)


def test_a_write_outside_save_batch_makes_readers_compute_live(tenant):
    seed_every_state(tenant)
    with tenant.cache.transaction() as db:
        db.execute("DELETE FROM harness_group_members WHERE group_identifier = 'Dev_Team'")
    with tenant.cache.reading() as db:
        assert not fresh(db)
        mappings = directory.group_mappings(db)
    dev = next(mapping for mapping in mappings if mapping.entra_group_id == "g1")
    assert dev.harness_members == ()
    assert (mappings, health_conflicts(tenant.cache)) == live(tenant.cache)


def health_conflicts(cache: Cache):
    with cache.reading() as db:
        return directory.sso_conflicts(db)


def test_a_read_only_cache_gets_the_same_answers(tenant):
    seed_every_state(tenant)
    written = answers(tenant.cache)
    with tenant.cache.reading() as db:
        overview = health.overview(db, NOW, ())
        lookups = [
            health.lookup_user(db, who, NOW) for who in ("alice", "bob", "ghost@example.com")
        ]
    reader = Cache.open_reader(tenant.cache.path)
    assert answers(reader) == written
    with reader.reading() as db:
        assert health.overview(db, NOW, ()) == overview
        assert [
            health.lookup_user(db, who, NOW) for who in ("alice", "bob", "ghost@example.com")
        ] == (lookups)


def test_overview_counts_match_the_lists(tenant):
    seed_every_state(tenant)
    mappings, conflicts = answers(tenant.cache)
    with tenant.cache.reading() as db:
        overview = health.overview(db, NOW, ())
    assert overview.group_problems == sum(1 for mapping in mappings if mapping.state != "ok")
    assert overview.sso_conflicts == len(conflicts)


def test_user_lookup_reads_one_user_as_the_whole_directory_would(tenant):
    seed_every_state(tenant)
    tenant.group("g5", "Platform", direct=("carol",), nested=("alice",))
    tenant.save("graph.directory", EntraMembership(group_id="g2", member_id="alice", direct=False))
    tenant.group("fg", "FirstGen users", direct=("carol",), app="firstgen")
    with tenant.cache.reading() as db:
        directory = directory_oracle.Directory(db)
        for user in ("alice", "bob", "carol", "dave", "erin"):
            lookup = health.lookup_user(db, user, NOW)
            expected = [
                f"{app}: {how}"
                for app in ("nextgen", "firstgen")
                if (how := directory.users_in_scope(app).get(user))
            ]
            in_scope = [
                next(a for a in lookup.assignments if a.app == app and not a.default_access)
                for app in ("nextgen", "firstgen")
                if any(a.app == app and not a.default_access for a in lookup.assignments)
            ]
            assert [f"{a.app}: {a.how}" for a in in_scope] == expected
            nested = [
                str(directory.groups[group_id]["display_name"])
                for group_id, members in directory.members.items()
                if any(m["member_id"] == user and not m["direct"] for m in members)
            ]
            assert list(lookup.nested_only_groups) == sorted(nested)
            conflicts = [
                conflict
                for conflict in directory_oracle.compute_sso_conflicts(db)
                if conflict.principal_id in (user, f"h-{user}")
            ]
            assert list(lookup.sso_conflicts) == conflicts
    alice = read_lookup(tenant, "alice")
    assert alice.nested_only_groups == ("Ops Team", "Platform")


def read_lookup(tenant: Tenant, who: str):
    with tenant.cache.reading() as db:
        return health.lookup_user(db, who, NOW)


def as_cache_before_m015(source: Path, path: Path, disabled: str) -> None:
    """`source`'s directory in a cache as the release before m015 left it.

    That release stored the same answers, but its SSO conflicts had no app column, and it
    listed the `disabled` account as one who cannot sign in through FirstGen.
    """
    with closing(sqlite3.connect(path, isolation_level=None)) as conn:
        conn.execute("PRAGMA journal_mode=WAL")
        migrations.apply(Database(conn), stop_before="m015_sso_conflicts_name_their_app")
        conn.execute("ATTACH ? AS source", [str(source)])
        for table in [*_DIRECTORY_ANSWER_INPUTS, "group_mappings"]:
            conn.execute(f"INSERT INTO main.{table} SELECT * FROM source.{table}")
        conn.execute(
            "INSERT INTO main.sso_conflicts SELECT position, kind, principal_id, email,"
            " display_name, detail, what_to_do FROM source.sso_conflicts"
        )
        conn.execute(
            "INSERT INTO main.sso_conflicts (kind, principal_id, email, display_name, detail,"
            " what_to_do) SELECT kind, :disabled, :disabled || '@example.com', :disabled,"
            " replace(detail, '(directly)', '(via group Dev Team)'), what_to_do"
            " FROM main.sso_conflicts WHERE kind = 'firstgen_unassigned' LIMIT 1",
            {"disabled": disabled},
        )
        conn.execute(
            "UPDATE directory_answers_state SET fresh = 1, members_fresh = 1, rules_version = 1"
        )


def test_a_cache_of_the_release_before_upgrades_to_conflicts_naming_their_app(tenant, tmp_path):
    seed_every_state(tenant)
    tenant.user("dan", "dan@example.com", enabled=False)
    tenant.save("graph.directory", EntraMembership(group_id="g1", member_id="dan", direct=True))
    written = answers(tenant.cache)
    assert all(conflict.principal_id != "dan" for conflict in written[1])
    apps = [(conflict.kind, conflict.app) for conflict in written[1]]
    assert ("default_access", "nextgen") in apps
    assert ("firstgen_unassigned", "firstgen") in apps
    older = tmp_path / "older.db"
    as_cache_before_m015(tenant.cache.path, older, disabled="dan")
    with Cache.open_reader(older) as reader:  # not migrated: reads them live meanwhile
        with reader.reading() as db:
            assert not directory_answers_fresh(db)
        assert answers_read_live(reader) == written
    with Cache.open_writer(older) as cache:  # migrates, and stores them again as it opens
        assert answers(cache) == written
        with cache.reading() as db:
            stored_apps = db.execute("SELECT kind, app FROM sso_conflicts ORDER BY position")
            assert stored_apps.fetchall() == apps
            state = db.execute("SELECT members_fresh, rules_version FROM directory_answers_state")
            assert state.fetchone() == (1, directory.DIRECTORY_RULES_VERSION)


def answers_read_live(cache: Cache):
    with cache.reading() as db:
        return directory.group_mappings(db), directory.sso_conflicts(db)


def test_a_disabled_member_entra_never_provisioned_is_not_missing_in_harness(tenant):
    """Entra does not create disabled accounts (graph-api.md 3.6): one with no Harness user is
    not drift that a later cycle would fix. One Harness already has is still expected."""
    tenant.user("alice", "alice@example.com")
    tenant.user("gone", "gone@example.com", harness=False, enabled=False)
    tenant.user("left", "left@example.com", enabled=False)  # provisioned before it was disabled
    tenant.group("g1", "Dev Team", direct=("alice", "gone"))
    tenant.harness_group("Dev_Team", "Dev Team", members=("alice",))
    ((mapping,), _) = answers(tenant.cache)
    assert mapping.missing_in_harness == ()
    assert "drift" not in mapping.problems
    assert mapping.entra_members == ("alice@example.com", "gone@example.com")
    tenant.group("g1", "Dev Team", direct=("alice", "gone", "left"))
    ((mapping,), _) = answers(tenant.cache)
    assert mapping.missing_in_harness == ("left@example.com",)
    assert "drift" in mapping.problems
    assert answers(tenant.cache) == live(tenant.cache)
