"""The user lookup's "Assigned" list and verdict, one case of the verdict at a time."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

import pytest
from sqlite_utils import Database

from store import health
from store.cache import Cache
from store.models import Batch, EntraUser, HarnessUser, Snapshot, UserAssignment, UserLookup
from store.schema import migrations
from tests.builders import DEFAULT_ACCESS, NOW, Tenant


@pytest.fixture
def tenant(tmp_path: Path):
    with Cache.open_writer(tmp_path / "cache.db") as cache:
        yield Tenant(cache)


def lookup(tenant: Tenant, who: str) -> UserLookup:
    with tenant.cache.reading() as db:
        return health.lookup_user(db, who, NOW)


def assigned(answer: UserLookup) -> list[str]:
    return [assignment.describe() for assignment in answer.assignments]


# --- Default Access ----------------------------------------------------------------------


def test_default_access_on_both_apps_is_an_assignment_to_edit_not_a_missing_one(tenant):
    """The demo's Yara: assigned to both apps with Default Access, so never provisioned."""
    tenant.user("yara", "yara@example.com", harness=False)
    tenant.assign("yara", role=DEFAULT_ACCESS)
    tenant.assign("yara", app="firstgen", role=DEFAULT_ACCESS)
    answer = lookup(tenant, "yara@example.com")
    assert answer.assignments == (
        UserAssignment(app="nextgen", default_access=True),
        UserAssignment(app="firstgen", default_access=True),
    )
    assert assigned(answer) == [
        "nextgen: directly, with Default Access (never provisioned)",
        "firstgen: directly, with Default Access (never provisioned)",
    ]
    assert answer.verdict == (
        "Assigned to the NextGen Harness app directly but with Default Access, which Entra "
        "never provisions: edit the assignment in Entra and pick the app's User role. Their "
        "FirstGen assignment (directly), which Harness signs users in through, has Default "
        "Access too: edit it the same way."
    )
    conflicts = {conflict.app: conflict for conflict in answer.sso_conflicts}
    assert (
        conflicts["nextgen"].what_to_do
        == "Edit the assignment in Entra and pick the app's User role."
    )


def test_default_access_through_a_group_only_is_the_group_assignment_to_edit(tenant):
    tenant.user("gina", "gina@example.com", harness=False)
    tenant.group("g2", "Visitors", direct=("gina",), role=DEFAULT_ACCESS)
    tenant.assign("g2", "Group", app="firstgen", name="Visitors")
    answer = lookup(tenant, "gina")
    assert assigned(answer) == [
        "nextgen: via group Visitors, with Default Access (never provisioned)",
        "firstgen: via group Visitors",
    ]
    assert answer.verdict == (
        "Assigned to the NextGen Harness app via group Visitors but with Default Access, which "
        "Entra never provisions: edit the group's assignment in Entra and pick the app's User "
        "role."
    )


def test_default_access_through_a_group_beside_a_group_with_a_role_changes_nothing(tenant):
    tenant.user("gina", "gina@example.com", harness=False)
    tenant.group("g1", "Contractors", direct=("gina",))
    tenant.group("g2", "Visitors", direct=("gina",), role=DEFAULT_ACCESS)
    answer = lookup(tenant, "gina")
    assert assigned(answer) == [
        "nextgen: via group Contractors",
        "nextgen: via group Visitors, with Default Access (adds nothing)",
    ]
    assert answer.verdict == (
        "Assigned (via group Contractors), not in Harness yet: it should arrive with the next "
        "cycle."
    )


def test_default_access_besides_a_role_on_the_same_app_is_to_remove(tenant):
    tenant.user("rita", "rita@example.com")
    tenant.assign("rita")
    tenant.assign("rita", role=DEFAULT_ACCESS)
    answer = lookup(tenant, "rita")
    assert assigned(answer) == [
        "nextgen: directly",
        "nextgen: directly, with Default Access (adds nothing)",
    ]
    (conflict,) = answer.sso_conflicts
    assert conflict.kind == "default_access"
    assert conflict.app == "nextgen"
    assert conflict.what_to_do.startswith("Remove this Default Access assignment")
    assert "adds nothing" in conflict.detail
    assert answer.verdict.startswith("Able to sign in; to tidy up: Remove this Default Access")


# --- FirstGen sign-in --------------------------------------------------------------------


def test_provisioned_user_with_firstgen_default_access_is_told_to_edit_it_not_to_assign(tenant):
    tenant.user("fay", "fay@example.com")
    tenant.assign("fay")
    tenant.assign("fay", app="firstgen", role=DEFAULT_ACCESS)
    answer = lookup(tenant, "fay")
    assert [c.kind for c in answer.sso_conflicts] == ["firstgen_unassigned", "default_access"]
    assert answer.verdict == (
        "Cannot sign in: their FirstGen assignment (directly), which Harness signs users in "
        "through, has Default Access: edit it in Entra and pick the app's User role."
    )


def test_provisioned_user_not_assigned_to_firstgen_is_told_to_assign(tenant):
    tenant.user("uma", "uma@example.com")
    tenant.user("other", "other@example.com")
    tenant.assign("uma")
    tenant.assign("other", app="firstgen")
    answer = lookup(tenant, "uma")
    assert answer.verdict.startswith("Assign the user (or a group they are a direct member of)")


def test_not_yet_provisioned_user_is_warned_about_firstgen_sign_in(tenant):
    tenant.user("uma", "uma@example.com", harness=False)
    tenant.user("other", "other@example.com")
    tenant.assign("uma")
    tenant.assign("other", app="firstgen")
    assert lookup(tenant, "uma").verdict == (
        "Assigned (directly), not in Harness yet: it should arrive with the next cycle. Once "
        "there they cannot sign in: also assign them (or a group they are a direct member of) "
        "to the FirstGen Harness app, which Harness signs users in through."
    )


def test_not_yet_provisioned_user_assigned_to_both_apps_just_waits(tenant):
    tenant.user("uma", "uma@example.com", harness=False)
    tenant.assign("uma")
    tenant.assign("uma", app="firstgen")
    answer = lookup(tenant, "uma")
    assert assigned(answer) == ["nextgen: directly", "firstgen: directly"]
    assert answer.verdict == (
        "Assigned (directly), not in Harness yet: it should arrive with the next cycle."
    )


# --- Real roles, groups, nesting ---------------------------------------------------------


def test_assigned_with_a_role_and_provisioned_is_all_good(tenant):
    tenant.user("ann", "ann@example.com")
    tenant.assign("ann")
    answer = lookup(tenant, "ann")
    assert assigned(answer) == ["nextgen: directly"]
    assert answer.verdict == "All good: assigned, provisioned, and able to sign in."


def test_assigned_through_a_group_and_provisioned_is_all_good(tenant):
    tenant.user("ann", "ann@example.com")
    tenant.group("g1", "Dev Team", direct=("ann",))
    answer = lookup(tenant, "ann")
    assert assigned(answer) == ["nextgen: via group Dev Team"]
    assert answer.verdict == "All good: assigned, provisioned, and able to sign in."


def test_only_nested_in_a_nextgen_group_is_explained(tenant):
    tenant.user("nina", "nina@example.com", harness=False)
    tenant.group("g1", "Dev Team", nested=("nina",))
    answer = lookup(tenant, "nina")
    assert answer.assignments == ()
    assert answer.verdict.startswith("Only in nested group(s) Dev Team: Entra never provisions")


def test_nesting_in_a_group_not_assigned_to_nextgen_is_not_the_reason(tenant):
    """Making her a direct member of a FirstGen-only group would not provision her."""
    tenant.user("nina", "nina@example.com", harness=False)
    tenant.group("g1", "Old Team", nested=("nina",), app="firstgen")
    answer = lookup(tenant, "nina")
    assert answer.nested_only_groups == ("Old Team",)
    assert answer.verdict == (
        "Not assigned to the NextGen Harness app: assign the user or one of their groups in Entra."
    )


def test_not_assigned_at_all(tenant):
    tenant.user("zed", "zed@example.com", harness=False)
    answer = lookup(tenant, "zed")
    assert answer.assignments == ()
    assert answer.verdict.startswith("Not assigned to the NextGen Harness app")


# --- Not (or no longer) in Harness -------------------------------------------------------


def test_a_user_entra_created_but_harness_lacks_was_removed_there(tenant):
    """Entra's last export succeeded: waiting for the next cycle would wait forever."""
    tenant.job()
    tenant.user("bob", "bob@example.com", harness=False)
    tenant.assign("bob")
    tenant.event("bob", cycle="c1", minutes_ago=30, action="create")
    verdict = lookup(tenant, "bob").verdict
    assert verdict.startswith("Entra provisioned the user (create succeeded 2026-11-28 11:30 UTC)")
    assert "Provision the user on demand in Entra" in verdict
    assert "next cycle" not in verdict


def test_a_user_whose_last_export_failed_is_a_pending_failure(tenant):
    tenant.job()
    tenant.user("bob", "bob@example.com", harness=False)
    tenant.assign("bob")
    tenant.event("bob", cycle="c1", minutes_ago=30, status="failure", error_code="X")
    assert lookup(tenant, "bob").verdict.startswith("Provisioning fails (X)")


def test_a_disabled_entra_account_is_not_waited_for(tenant):
    tenant.save(
        "graph.directory",
        EntraUser(
            id="dan", user_principal_name="dan@example.com", mail="dan@example.com",
            account_enabled=False,
        ),
    )  # fmt: skip
    tenant.assign("dan")
    verdict = lookup(tenant, "dan").verdict
    assert verdict.startswith("Account disabled in Entra")
    assert "next cycle" not in verdict


def test_a_disabled_account_in_harness_is_told_disabled_not_unable_to_sign_in(tenant):
    tenant.user("dan", "dan@example.com", enabled=False)
    tenant.assign("dan")
    tenant.assign("someone-else", app="firstgen")
    answer = lookup(tenant, "dan")
    assert answer.sso_conflicts == ()
    assert answer.verdict.startswith("Account disabled in Entra")


def test_latest_events_name_the_app_whose_job_logged_them(tenant):
    tenant.job()
    tenant.job(job_id="fg-job", app="firstgen")
    tenant.user("bob", "bob@example.com")
    tenant.assign("bob")
    tenant.event("bob", cycle="c1", minutes_ago=30, action="create")
    tenant.event("bob", cycle="c2", minutes_ago=20, action="create", job_id="fg-job")
    tenant.event("bob", cycle="c3", minutes_ago=10, action="update", job_id="gone-job")
    answer = lookup(tenant, "bob")
    assert [answer.event_apps.get(event.job_id) for event in answer.latest_events] == [
        None,  # a job no longer in the cache
        "firstgen",
        "nextgen",
    ]


# --- By part of a name, UPN or email -----------------------------------------------------


def entra(user_id: str, name: str, email: str = "") -> EntraUser:
    email = email or f"{user_id}@example.com"
    return EntraUser(id=user_id, user_principal_name=email, mail=email, display_name=name)


def harness_user(user_id: str, name: str, email: str) -> HarnessUser:
    return HarnessUser(id=user_id, email=email, name=name, in_scim=True, in_ng=True)


def test_part_of_a_name_that_one_user_holds_looks_that_user_up(tenant):
    """The on-call admin's ticket says "Walter Kim": his surname is enough."""
    tenant.save("graph.directory", entra("wk", "Walter Kim"), entra("ww", "Walter White"))
    answer = lookup(tenant, " kim ")
    assert answer.entra_user is not None
    assert answer.entra_user.id == "wk"
    assert answer.matches == ()


def test_part_of_a_name_several_users_hold_lists_them_by_name_to_pick_from(tenant):
    tenant.save(
        "graph.directory",
        entra("ww", "Walter White"),
        entra("wk", "Walter Kim"),
        entra("ab", "Alice Brown"),
    )
    answer = lookup(tenant, "WALTER")
    assert answer.entra_user is None
    assert answer.harness_user is None
    assert [(match.name, match.entra_id) for match in answer.matches] == [
        ("Walter Kim", "wk"),
        ("Walter White", "ww"),
    ]
    assert answer.verdict == "2 users match: pick one below."
    # Picking one looks it up exactly.
    picked = lookup(tenant, answer.matches[0].key)
    assert picked.entra_user is not None
    assert picked.entra_user.display_name == "Walter Kim"


def test_a_text_too_short_to_search_names_says_so(tenant):
    tenant.save("graph.directory", entra("wk", "Walter Kim"), entra("ab", "Alice Brown"))
    answer = lookup(tenant, "Ki")
    assert answer.entra_user is None
    assert answer.matches == ()
    assert answer.verdict == (
        "No such user in the cache on either side. Names are searched from three characters."
    )
    assert lookup(tenant, "Kim").entra_user is not None


def test_both_sides_of_one_person_are_one_match(tenant):
    tenant.save(
        "graph.directory",
        entra("wk", "Walter Kim", "walter.kim@example.com"),
        entra("ww", "Walter White", "walter.white@example.com"),
    )
    tenant.save(
        "harness.scim",
        harness_user("h1", "Walter Kim", "Walter.Kim@example.com"),
        harness_user("h2", "Walter Smith", "wsmith@example.com"),
    )
    matches = lookup(tenant, "walter").matches
    assert [(m.name, m.entra_id, m.harness_id) for m in matches] == [
        ("Walter Kim", "wk", "h1"),
        ("Walter Smith", "", "h2"),
        ("Walter White", "ww", ""),
    ]
    only_in_harness = lookup(tenant, matches[1].key)
    assert only_in_harness.harness_user is not None
    assert only_in_harness.harness_user.id == "h2"
    assert only_in_harness.entra_user is None


def test_a_name_found_by_email_or_upn(tenant):
    tenant.save("graph.directory", entra("wk", "W. K.", "walter.kim@example.com"))
    assert lookup(tenant, "er.ki").entra_user.id == "wk"  # type: ignore[union-attr]


def test_more_users_than_a_list_holds_asks_for_more_of_the_name(tenant):
    tenant.save("graph.directory", *(entra(f"u{n:02}", f"Contractor {n:02}") for n in range(30)))
    answer = lookup(tenant, "contractor")
    assert len(answer.matches) == health.USER_MATCHES
    assert answer.matches[0].name == "Contractor 00"
    assert answer.verdict.startswith(f"More than {health.USER_MATCHES} users match")


@pytest.mark.parametrize("text", ['" b', "0% s", "r_s", "\\ s", "a%b", 'x" OR "y', "NEAR(", "* N"])
def test_wildcards_and_query_syntax_are_literal_text(tenant, text):
    tenant.save(
        "graph.directory",
        entra("p1", "100% sure"),
        entra("p2", "under_score"),
        entra("p3", 'quote " back \\ star * NEAR( x" OR "y'),
    )
    answer = lookup(tenant, text)
    names = [match.name for match in answer.matches] or (
        [answer.entra_user.display_name] if answer.entra_user else []
    )
    expected = [
        name
        for name in ("100% sure", 'quote " back \\ star * NEAR( x" OR "y', "under_score")
        if text.lower() in name.lower()
    ]
    assert sorted(names) == sorted(expected)


def test_a_renamed_user_is_found_by_the_new_name_only(tenant):
    tenant.save("graph.directory", entra("wk", "Walter Kim"), entra("ab", "Alice Brown"))
    tenant.save("graph.directory", entra("wk", "Walter Park"))
    assert lookup(tenant, "park").entra_user.id == "wk"  # type: ignore[union-attr]
    assert lookup(tenant, "kim").verdict == "No such user in the cache on either side."


def test_a_user_gone_from_the_directory_is_not_found(tenant):
    tenant.save("graph.directory", entra("wk", "Walter Kim"))
    # The next directory poll no longer lists Walter but lists Alice, who may take his rowid.
    tenant.cache.save_batch(
        Batch(
            source="graph.directory",
            records=[entra("ab", "Alice Kimball")],
            snapshots=[Snapshot(table="entra_users")],
        ),
        NOW,
        NOW,
    )
    answer = lookup(tenant, "walter")
    assert answer.entra_user is None
    assert answer.matches == ()
    assert lookup(tenant, "kim").entra_user.id == "ab"  # type: ignore[union-attr]


def test_users_already_cached_are_found_after_the_upgrade(tmp_path):
    path = tmp_path / "older.db"
    with closing(sqlite3.connect(path, isolation_level=None)) as conn:
        migrations.apply(Database(conn), stop_before="m017_user_search")
        conn.execute(
            "INSERT INTO entra_users (id, user_principal_name, mail, display_name)"
            " VALUES ('wk', 'wk@example.com', 'wk@example.com', 'Walter Kim')"
        )
    with Cache.open_writer(path) as cache, cache.reading() as db:
        answer = health.lookup_user(db, "kim", NOW)
    assert answer.entra_user is not None
    assert answer.entra_user.id == "wk"


def test_a_text_of_a_trigram_or_more_is_looked_up_by_index(tenant):
    tenant.save("graph.directory", entra("wk", "Walter Kim"))
    seen: list[str] = []
    with tenant.cache.reading() as db:
        db.conn.set_trace_callback(seen.append)
        health.find_users(db, "walter", 5)
        db.conn.set_trace_callback(None)
        plans = [
            " ".join(str(step[-1]) for step in db.execute(f"EXPLAIN QUERY PLAN {sql}"))
            for sql in seen
            if sql.startswith("SELECT") and "_users_text MATCH" in sql
        ]
    assert len(plans) == 2
    for plan, table in zip(plans, ("entra_users", "harness_users"), strict=True):
        # The index finds the rows; each is then read by its rowid, not by a scan.
        assert f"SCAN {table}_text VIRTUAL TABLE INDEX" in plan, plan
        assert f"SEARCH {table} USING INTEGER PRIMARY KEY (rowid=?)" in plan, plan
