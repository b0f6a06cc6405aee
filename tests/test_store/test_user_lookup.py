"""The user lookup's "Assigned" list and verdict, one case of the verdict at a time."""

from __future__ import annotations

from pathlib import Path

import pytest

from store import health
from store.cache import Cache
from store.models import EntraUser, UserAssignment, UserLookup
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
