"""The health model on small hand-built caches: every state and its boundaries."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from store import directory, health
from store.cache import Cache
from store.models import (
    HarnessUser,
    ProvisioningEvent,
    UserAssignment,
)
from tests.builders import DEFAULT_ACCESS, JOB, NOW, Tenant


@pytest.fixture
def tenant(tmp_path: Path):
    with Cache.open_writer(tmp_path / "cache.db") as cache:
        yield Tenant(cache)


def read(tenant: Tenant, function, *args):
    with tenant.cache.reading() as db:
        return function(db, *args)


# --- Jobs --------------------------------------------------------------------------------


def test_a_job_that_ran_recently_is_healthy_with_the_next_cycle_expected(tenant):
    tenant.job()
    (job,) = read(tenant, health.job_health, NOW)
    assert job.state == "healthy"
    assert job.next_expected_at == NOW + timedelta(minutes=30)


def test_a_cycle_later_than_interval_plus_grace_is_overdue(tenant):
    tenant.job(last_began=NOW - timedelta(minutes=62), last_ended=NOW - timedelta(minutes=60))
    (job,) = read(tenant, health.job_health, NOW)
    assert job.state == "overdue"
    assert job.overdue_by == timedelta(minutes=20)


def test_a_cycle_late_within_the_grace_is_not_overdue(tenant):
    tenant.job(last_began=NOW - timedelta(minutes=52), last_ended=NOW - timedelta(minutes=49))
    (job,) = read(tenant, health.job_health, NOW)
    assert job.state == "healthy"
    assert "9 min late, within the 10 min grace" in job.summary  # not a bare "expected" time


def test_an_active_job_without_execution_for_three_intervals_is_silent(tenant):
    tenant.job(last_began=NOW - timedelta(hours=3), last_ended=NOW - timedelta(hours=2, minutes=59))
    (job,) = read(tenant, health.job_health, NOW)
    assert job.state == "silent"
    assert "no cycle for" in job.summary


def test_a_quarantined_job_says_why_and_until_when(tenant):
    began = NOW - timedelta(hours=2)
    tenant.job(
        status_code="Quarantine",
        quarantine_reason="EncounteredQuarantineException",
        quarantine_series_began=began,
        quarantine_current_began=began,
        quarantine_next_attempt=NOW + timedelta(hours=4),
    )
    (job,) = read(tenant, health.job_health, NOW)
    assert job.state == "quarantine"
    assert job.next_expected_at == NOW + timedelta(hours=4)
    assert job.quarantine_disabled_at == began + timedelta(days=28)
    assert "token" in job.summary


def test_a_quarantine_that_ended_leaves_a_healthy_job(tenant):
    tenant.job(
        status_code="Quarantine",
        quarantine_reason="TooManyDeletes",
        quarantine_series_began=NOW - timedelta(days=1),
    )
    tenant.job()
    (job,) = read(tenant, health.job_health, NOW)
    assert job.state == "healthy"


def test_a_paused_job_is_reported_as_paused(tenant):
    tenant.job(status_code="Paused", schedule_state="Paused")
    (job,) = read(tenant, health.job_health, NOW)
    assert job.state == "paused"


# --- Cycles ------------------------------------------------------------------------------


def test_cycles_count_events_by_status_and_action_once(tenant):
    tenant.event("u1", cycle="c1", minutes_ago=50)
    tenant.event("u2", cycle="c1", minutes_ago=49, status="failure", error_code="HarnessConflict")
    tenant.event("g1", cycle="c1", minutes_ago=48, action="update", source_type="Group")
    tenant.event("u1", cycle="c2", minutes_ago=10, action="disable")
    cycles = read(tenant, health.recent_cycles, 10)
    assert [cycle.cycle_id for cycle in cycles] == ["c2", "c1"]
    first = cycles[1]
    assert (first.events, first.succeeded, first.failed, first.creates, first.updates) == (
        3,
        2,
        1,
        2,
        1,
    )
    assert first.duration == timedelta(minutes=2)
    assert cycles[0].disables == 1


def test_re_saving_the_same_events_does_not_double_count_cycles(tenant):
    event = ProvisioningEvent(
        id="same",
        activity_at=NOW,
        job_id=JOB,
        cycle_id="c1",
        action="create",
        status="success",
        source_id="u1",
    )
    tenant.save("graph.provisioning", event, event)
    tenant.save("graph.provisioning", event)
    (cycle,) = read(tenant, health.recent_cycles, 10)
    assert cycle.events == 1


def test_cycles_page_by_keyset(tenant):
    for index in range(5):
        tenant.event(f"u{index}", cycle=f"c{index}", minutes_ago=100 - index * 10)
    first_page = read(tenant, health.recent_cycles, 2)
    last = first_page[-1]
    from store.models import iso_utc

    second_page = read(tenant, health.recent_cycles, 2, (iso_utc(last.ended_at), last.cycle_id))
    assert [c.cycle_id for c in first_page + second_page] == ["c4", "c3", "c2", "c1"]


# --- Pending retries ---------------------------------------------------------------------

RETRY_REASON = (
    "Failed to create User 'bob'. The request will be retried again after this date: "
    "11/28/2026 12:40:00 PM (UTC)"
)


def test_a_failure_is_pending_with_its_retry_time_from_the_reason(tenant):
    tenant.job()
    tenant.event(
        "bob",
        cycle="c1",
        minutes_ago=20,
        status="failure",
        error_code="SystemForCrossDomainIdentityManagementServiceIncompatible",
        reason=RETRY_REASON,
    )
    (pending,) = read(tenant, health.pending_retries, NOW)
    assert pending.source_id == "bob"
    assert pending.attempts == 1
    assert pending.escalated is False
    assert pending.retry_at_from == "reason"
    assert pending.retry_at == datetime(2026, 11, 28, 12, 40, tzinfo=UTC)
    assert pending.escrow_expires_at == pending.first_failure_at + timedelta(days=28)
    assert pending.hint.what_to_do


def test_without_a_date_in_the_reason_the_retry_is_the_next_cycle(tenant):
    tenant.job()
    tenant.event("bob", cycle="c1", minutes_ago=20, status="failure", error_code="X", reason="boom")
    (pending,) = read(tenant, health.pending_retries, NOW)
    assert pending.retry_at_from == "next_cycle"
    assert pending.retry_at == NOW + timedelta(minutes=30)


def test_a_second_failed_cycle_escalates(tenant):
    tenant.event("bob", cycle="c1", minutes_ago=80, status="failure", error_code="X")
    tenant.event("bob", cycle="c2", minutes_ago=40, status="failure", error_code="X")
    (pending,) = read(tenant, health.pending_retries, NOW)
    assert pending.attempts == 2
    assert pending.escalated is True
    assert pending.first_failure_at == NOW - timedelta(minutes=80)
    assert read(tenant, health.pending_counts) == (1, 1)


def test_a_retry_that_succeeds_resolves_the_failure(tenant):
    tenant.event("bob", cycle="c1", minutes_ago=80, status="failure", error_code="X")
    tenant.event("bob", cycle="c2", minutes_ago=40, status="success")
    assert read(tenant, health.pending_retries, NOW) == []


def test_a_skip_that_takes_the_object_out_of_scope_resolves_it(tenant):
    tenant.event("bob", cycle="c1", minutes_ago=80, status="failure", error_code="X")
    tenant.event(
        "bob",
        cycle="c2",
        minutes_ago=40,
        status="skipped",
        action="other",
        reason="NotEffectivelyEntitled",
    )
    assert read(tenant, health.pending_retries, NOW) == []


def test_only_consecutive_failures_count_as_attempts(tenant):
    tenant.event("bob", cycle="c1", minutes_ago=200, status="failure", error_code="X")
    tenant.event("bob", cycle="c2", minutes_ago=160, status="success")
    tenant.event("bob", cycle="c3", minutes_ago=120, status="failure", error_code="X")
    (pending,) = read(tenant, health.pending_retries, NOW)
    assert pending.attempts == 1
    assert pending.first_failure_at == NOW - timedelta(minutes=120)


def test_events_saved_out_of_order_give_the_same_state(tenant):
    """A backfill saves newest pages first; the latest event still wins."""
    tenant.event("bob", cycle="c2", minutes_ago=40, status="success")
    tenant.event("bob", cycle="c1", minutes_ago=80, status="failure", error_code="X")
    assert read(tenant, health.pending_retries, NOW) == []


def test_a_group_409_gets_the_harness_collision_hint(tenant):
    tenant.event(
        "g1",
        cycle="c1",
        minutes_ago=5,
        status="failure",
        source_type="Group",
        action="create",
        error_code="SystemForCrossDomainIdentityManagementServiceIncompatible",
        reason="The SCIM endpoint responded with StatusCode: 409 Conflict. Details: group exists",
    )
    (pending,) = read(tenant, health.pending_retries, NOW)
    text = (pending.hint.title + pending.hint.what_to_do).lower()
    assert "identifier" in text or "group" in text


# --- Group mappings ----------------------------------------------------------------------


def mapping_of(tenant: Tenant, group_id: str):
    return next(m for m in read(tenant, directory.group_mappings) if m.entra_group_id == group_id)


def test_a_provisioned_group_with_matching_members_is_ok(tenant):
    tenant.user("alice", "alice@example.com")
    tenant.group("g1", "Dev Team", direct=("alice",))
    tenant.harness_group("Dev_Team", "Dev Team", members=("alice",))
    mapping = mapping_of(tenant, "g1")
    assert mapping.predicted_identifier == "Dev_Team"
    assert mapping.harness_identifier == "Dev_Team"
    assert mapping.state == "ok"


def test_a_group_missing_in_harness_is_not_provisioned_with_its_pending_failure(tenant):
    tenant.group("g1", "Dev Team")
    tenant.event(
        "g1",
        cycle="c1",
        minutes_ago=5,
        status="failure",
        source_type="Group",
        error_code="HarnessDown",
    )
    mapping = mapping_of(tenant, "g1")
    assert mapping.state == "not_provisioned"
    assert "HarnessDown" in mapping.pending_error


def test_two_entra_groups_deriving_one_identifier_collide(tenant):
    tenant.group("g1", "Dev-Team")
    tenant.group("g2", "Dev.Team")
    assert mapping_of(tenant, "g1").state == "collision"
    assert mapping_of(tenant, "g2").state == "collision"


def test_a_native_group_with_the_same_identifier_is_flagged(tenant):
    tenant.group("g1", "Dev Team")
    tenant.harness_group("Dev_Team", "Developers", scim=False)
    mapping = mapping_of(tenant, "g1")
    assert "native_same_identifier" in mapping.problems
    assert mapping.state == "native_same_identifier"


def test_a_native_group_with_the_same_name_is_kept_beside_the_scim_one(tenant):
    tenant.group("g1", "Ops")
    tenant.harness_group("Ops", "Ops")
    tenant.harness_group("ops_native", "Ops", scim=False)
    mapping = mapping_of(tenant, "g1")
    assert mapping.harness_identifier == "Ops"
    assert "native_same_name" in mapping.problems


def test_a_renamed_group_keeps_its_old_identifier(tenant):
    tenant.group("g1", "Platform Team")
    tenant.event("g1", cycle="c1", minutes_ago=100, source_type="Group", target_id="Infra_Team")
    tenant.harness_group("Infra_Team", "Infra Team")
    mapping = mapping_of(tenant, "g1")
    assert mapping.harness_identifier == "Infra_Team"
    assert mapping.predicted_identifier == "Platform_Team"
    assert "renamed" in mapping.problems


def test_a_name_that_yields_no_identifier_is_unsyncable(tenant):
    tenant.group("g1", "$$$")
    assert mapping_of(tenant, "g1").state == "unsyncable"


def test_membership_drift_lists_both_sides(tenant):
    tenant.user("alice", "alice@example.com")
    tenant.user("bob", "bob@example.com")
    tenant.user("carol", "carol@example.com")
    tenant.group("g1", "Dev Team", direct=("alice", "bob"))
    tenant.harness_group("Dev_Team", "Dev Team", members=("alice", "carol"))
    mapping = mapping_of(tenant, "g1")
    assert mapping.state == "drift"
    assert mapping.missing_in_harness == ("bob@example.com",)
    assert mapping.extra_in_harness == ("carol@example.com",)


def test_nested_members_are_listed_as_never_provisioned(tenant):
    tenant.user("alice", "alice@example.com")
    tenant.user("nina", "nina@example.com", harness=False)
    tenant.group("g1", "Dev Team", direct=("alice",), nested=("nina",))
    tenant.harness_group("Dev_Team", "Dev Team", members=("alice",))
    mapping = mapping_of(tenant, "g1")
    assert mapping.nested_only == ("nina@example.com",)
    assert mapping.state == "nested_members"


def test_a_scim_group_without_role_binding_is_flagged(tenant):
    tenant.group("g1", "Dev Team")
    tenant.harness_group("Dev_Team", "Dev Team", bound=False)
    assert mapping_of(tenant, "g1").state == "no_role_binding"


def test_a_scim_group_matching_no_entra_group_is_an_orphan(tenant):
    tenant.harness_group("Old_Team", "Old Team")
    (orphan,) = [m for m in read(tenant, directory.group_mappings) if m.state == "orphan"]
    assert orphan.harness_identifier == "Old_Team"


# --- SSO conflicts and lookup ------------------------------------------------------------


def seed_user1_user2(tenant: Tenant) -> None:
    """The seed's case: user1 assigned to both apps, user_2 only to the NextGen app."""
    tenant.user("user1", "user1@example.com")
    tenant.user("user2", "user_2@example.com")
    tenant.assign("user1")
    tenant.assign("user2")
    tenant.assign("user1", app="firstgen")


def test_user_provisioned_only_through_nextgen_cannot_sign_in_while_firstgen_exists(tenant):
    seed_user1_user2(tenant)
    conflicts = read(tenant, directory.sso_conflicts)
    assert [(c.kind, c.email) for c in conflicts] == [("firstgen_unassigned", "user_2@example.com")]


def test_a_disabled_entra_account_is_not_listed_as_unable_to_sign_in(tenant):
    """It cannot sign in anywhere, and Entra disables its Harness user (graph-api.md 3.6)."""
    seed_user1_user2(tenant)
    tenant.user("user2", "user_2@example.com", enabled=False)
    assert read(tenant, directory.sso_conflicts) == []  # nor is its Harness user unknown
    tenant.user("user2", "user_2@example.com", enabled=True)
    conflicts = read(tenant, directory.sso_conflicts)
    assert [(c.kind, c.principal_id) for c in conflicts] == [("firstgen_unassigned", "user2")]


def test_an_account_entra_says_nothing_about_is_taken_as_enabled(tenant):
    seed_user1_user2(tenant)
    tenant.user("user2", "user_2@example.com", enabled=None)
    (conflict,) = read(tenant, directory.sso_conflicts)
    assert (conflict.kind, conflict.principal_id) == ("firstgen_unassigned", "user2")


def test_a_disabled_account_keeps_its_default_access_conflict(tenant):
    """The assignment is still one to fix, whatever the account's state."""
    tenant.user("dan", "dan@example.com", harness=False, enabled=False)
    tenant.assign("dan", role=DEFAULT_ACCESS)
    (conflict,) = read(tenant, directory.sso_conflicts)
    assert (conflict.kind, conflict.principal_id, conflict.app) == (
        "default_access",
        "dan",
        "nextgen",
    )


def test_the_conflict_and_the_lookup_word_how_a_user_is_assigned_alike(tenant):
    seed_user1_user2(tenant)
    tenant.user("user3", "user3@example.com")
    tenant.group("g1", "Dev Team", direct=("user3",))
    for user, how in (("user2", "directly"), ("user3", "via group Dev Team")):
        lookup = read(tenant, health.lookup_user, user, NOW)
        (conflict,) = lookup.sso_conflicts
        assert [a.how for a in lookup.assignments] == [how]
        assert f"provisioned through the NextGen app ({how}) but" in conflict.detail


def test_firstgen_assignment_through_a_directly_assigned_group_counts(tenant):
    seed_user1_user2(tenant)
    tenant.group("fg", "FirstGen users", direct=("user2",), app="firstgen")
    assert read(tenant, directory.sso_conflicts) == []


def test_without_a_firstgen_app_there_is_no_sign_in_conflict(tenant):
    tenant.user("user2", "user_2@example.com")
    tenant.assign("user2")
    assert read(tenant, directory.sso_conflicts) == []


def test_harness_user_matching_no_assigned_entra_user_is_listed(tenant):
    tenant.save("harness.scim", HarnessUser(id="h-x", email="Ghost@Example.com", in_scim=True))
    tenant.user("alice", "ghost@example.COM", harness=False)
    tenant.assign("alice")
    assert read(tenant, directory.sso_conflicts) == []
    tenant.save("harness.scim", HarnessUser(id="h-y", email="stranger@example.com", in_scim=True))
    (conflict,) = read(tenant, directory.sso_conflicts)
    assert (conflict.kind, conflict.email) == ("unmatched_harness_user", "stranger@example.com")


def test_default_access_assignments_are_listed(tenant):
    tenant.user("dave", "dave@example.com", harness=False)
    tenant.assign("dave", role=DEFAULT_ACCESS)
    (conflict,) = read(tenant, directory.sso_conflicts)
    assert conflict.kind == "default_access"
    assert conflict.email == "dave@example.com"


def test_default_access_on_both_apps_is_two_conflicts_each_naming_its_app(tenant):
    """Two assignments to edit, one per app: the app is what tells them apart."""
    tenant.user("yara", "yara@example.com", harness=False)
    tenant.assign("yara", role=DEFAULT_ACCESS)
    tenant.assign("yara", app="firstgen", role=DEFAULT_ACCESS)
    conflicts = read(tenant, directory.sso_conflicts)
    assert [(c.kind, c.principal_id, c.app) for c in conflicts] == [
        ("default_access", "yara", "nextgen"),
        ("default_access", "yara", "firstgen"),
    ]


def test_default_access_besides_a_role_on_the_same_app_is_to_remove_not_to_edit(tenant):
    """Editing it to the User role would duplicate the role assignment the user already has."""
    tenant.user("rita", "rita@example.com", harness=False)
    tenant.assign("rita")
    tenant.assign("rita", role=DEFAULT_ACCESS)
    (conflict,) = read(tenant, directory.sso_conflicts)
    assert (conflict.kind, conflict.app) == ("default_access", "nextgen")
    assert conflict.what_to_do.startswith("Remove this Default Access assignment in Entra")
    assert conflict.detail == (
        "assigned to the nextgen app with Default Access besides a role that Entra provisions: "
        "the Default Access assignment adds nothing"
    )


def test_default_access_of_a_user_provisioned_through_a_group_is_to_remove(tenant):
    tenant.user("rita", "rita@example.com", harness=False)
    tenant.group("g1", "Dev Team", direct=("rita",))
    tenant.assign("rita", role=DEFAULT_ACCESS)
    (conflict,) = read(tenant, directory.sso_conflicts)
    assert conflict.what_to_do.startswith("Remove this Default Access assignment")


def test_a_group_with_default_access_besides_a_role_is_to_remove(tenant):
    tenant.group("g1", "Dev Team")
    tenant.assign("g1", "Group", role=DEFAULT_ACCESS, name="Dev Team")
    tenant.assign("g2", "Group", role=DEFAULT_ACCESS, name="Other Team")
    conflicts = {c.principal_id: c for c in read(tenant, directory.sso_conflicts)}
    assert conflicts["g1"].what_to_do.startswith("Remove this Default Access assignment")
    assert (
        conflicts["g2"].what_to_do == "Edit the assignment in Entra and pick the app's User role."
    )


def test_a_role_on_one_app_leaves_default_access_on_the_other_to_edit(tenant):
    tenant.user("fay", "fay@example.com", harness=False)
    tenant.assign("fay")
    tenant.assign("fay", app="firstgen", role=DEFAULT_ACCESS)
    (conflict,) = read(tenant, directory.sso_conflicts)
    assert (conflict.app, conflict.what_to_do) == (
        "firstgen",
        "Edit the assignment in Entra and pick the app's User role.",
    )


def test_every_conflict_names_the_entra_app_to_fix(tenant):
    seed_user1_user2(tenant)
    tenant.save("harness.scim", HarnessUser(id="h-y", email="stranger@example.com", in_scim=True))
    tenant.user("dave", "dave@example.com", harness=False)
    tenant.assign("dave", app="firstgen", role=DEFAULT_ACCESS)
    conflicts = read(tenant, directory.sso_conflicts)
    assert [(c.kind, c.app) for c in conflicts] == [
        ("firstgen_unassigned", "firstgen"),
        ("unmatched_harness_user", "nextgen"),
        ("default_access", "firstgen"),
    ]
    lookup = read(tenant, health.lookup_user, "dave@example.com", NOW)
    assert [(c.kind, c.app) for c in lookup.sso_conflicts] == [("default_access", "firstgen")]


def test_user_lookup_shows_both_sides_and_the_verdict(tenant):
    seed_user1_user2(tenant)
    lookup = read(tenant, health.lookup_user, "USER_2@example.com", NOW)
    assert lookup.entra_user is not None
    assert lookup.entra_user.id == "user2"
    assert lookup.harness_user is not None
    assert lookup.assignments == (UserAssignment(app="nextgen"),)
    assert [c.kind for c in lookup.sso_conflicts] == ["firstgen_unassigned"]
    assert "FirstGen" in lookup.verdict


def test_user_lookup_explains_a_nested_only_member(tenant):
    tenant.user("nina", "nina@example.com", harness=False)
    tenant.group("g1", "Dev Team", nested=("nina",))
    lookup = read(tenant, health.lookup_user, "nina", NOW)
    assert lookup.entra_user is not None
    assert "nested" in lookup.verdict


def test_user_lookup_of_a_pending_failure_gives_the_fix(tenant):
    tenant.user("bob", "bob@example.com", harness=False)
    tenant.assign("bob")
    tenant.event("bob", cycle="c1", minutes_ago=5, status="failure", error_code="X")
    lookup = read(tenant, health.lookup_user, "bob@example.com", NOW)
    assert lookup.pending is not None
    assert lookup.verdict.startswith("Provisioning fails")


def test_an_unknown_user_is_said_to_be_unknown(tenant):
    assert read(tenant, health.lookup_user, "nobody", NOW).verdict.startswith("No such user")


def test_recent_events_filter_text_is_a_plain_substring_not_sql(tenant):
    tenant.event("u1", cycle="c1", minutes_ago=3, name="100% legit")
    tenant.event("u2", cycle="c1", minutes_ago=2, name="' OR 1=1 --")
    assert [e.source_name for e in read(tenant, health.recent_events, 10, None, None, "%")] == [
        "100% legit"
    ]
    assert [
        e.source_name for e in read(tenant, health.recent_events, 10, None, None, "' OR 1=1")
    ] == ["' OR 1=1 --"]


def test_overview_counts_everything(tenant):
    tenant.job()
    seed_user1_user2(tenant)
    tenant.event("bob", cycle="c1", minutes_ago=80, status="failure", error_code="X")
    tenant.event("bob", cycle="c2", minutes_ago=40, status="failure", error_code="X")
    tenant.group("g1", "Dev Team")
    result = read(tenant, health.overview, NOW, ())
    assert (result.pending_retries, result.escalated_retries) == (1, 1)
    assert result.sso_conflicts == 1
    assert result.group_problems == 1
    assert result.last_cycle is not None
    assert result.last_cycle.cycle_id == "c2"


def test_the_loser_of_a_collision_is_not_matched_to_the_winners_group(tenant):
    tenant.group("g1", "Dev-Team")
    tenant.group("g2", "Dev Team")
    tenant.event("g1", cycle="c1", minutes_ago=50, source_type="Group", target_id="Dev_Team")
    tenant.event(
        "g2",
        cycle="c1",
        minutes_ago=49,
        source_type="Group",
        status="failure",
        error_code="HarnessEntryConflict",
    )
    tenant.harness_group("Dev_Team", "Dev-Team")
    assert mapping_of(tenant, "g1").harness_identifier == "Dev_Team"
    loser = mapping_of(tenant, "g2")
    assert loser.harness_identifier == ""
    assert {"collision", "not_provisioned"} <= set(loser.problems)


def test_overview_names_a_coverage_gap(tenant):
    from store.models import CoverageGapRecord

    tenant.save(
        "graph.provisioning",
        CoverageGapRecord(
            source="graph.provisioning",
            gap_from=NOW - timedelta(days=40),
            gap_to=NOW - timedelta(days=30),
            detected_at=NOW,
        ),
    )
    (gap,) = read(tenant, health.overview, NOW, ()).coverage_gaps
    assert gap.startswith("graph.provisioning: nothing from 2026-10-19 12:00 UTC to 2026-10-29")


def test_answers_built_without_validation_equal_validated_ones(tenant):
    """pending_retries builds its models unchecked: they must be what validation makes."""
    tenant.job()
    tenant.event("bob", cycle="c1", minutes_ago=20, status="failure", reason=RETRY_REASON)
    (pending,) = read(tenant, health.pending_retries, NOW)
    assert type(pending).model_validate(pending.model_dump()) == pending
    assert pending.model_fields_set == set(type(pending).model_fields)


def _brute_force_matches(tenant: Tenant, text: str, status: str | None = None) -> list[str]:
    """Every event whose own columns contain `text` (ASCII case folded, as LIKE), newest first."""
    with tenant.cache.reading() as db:
        rows = db.execute(
            "SELECT id, activity_at, status, source_name, source_id, target_id, error_code,"
            " cycle_id FROM provisioning_events"
        ).fetchall()
    folded = text.lower()
    found = [
        row
        for row in rows
        if any(folded in str(value).lower() for value in row[3:])
        and (status is None or row[2] == status)
    ]
    return [row[0] for row in sorted(found, key=lambda row: (row[1], row[0]), reverse=True)]


def test_a_vague_text_filter_reads_the_newest_events_in_order(
    tenant: Tenant, monkeypatch: pytest.MonkeyPatch
):
    """A text most events match is answered from the newest events read in time order (the
    window), and gives exactly the newest matches; a rarer one is looked up by object."""
    monkeypatch.setattr(health, "_TEXT_WINDOW", 12)
    for index in range(40):
        status = "failure" if index % 3 == 0 else "success"
        error = "E_VAGUE" if status == "failure" else ""
        name = f"user{index}@contoso.example" if index % 4 else f"Bot {index}"
        tenant.event(
            f"obj-{index % 7}", cycle=f"c{index // 10}", minutes_ago=100 - index, name=name,
            status=status, error_code=error,
        )  # fmt: skip
    looked_up: list[str] = []
    original = health._looked_up

    def spy(db, conditions, params, text, limit):
        looked_up.append(text)
        return original(db, conditions, params, text, limit)

    monkeypatch.setattr(health, "_looked_up", spy)
    cases: list[tuple[str, int, str | None]] = [
        ("user", 5, None),
        ("CONTOSO", 8, None),
        ("e_vague", 3, "failure"),
    ]
    for text, limit, wanted in cases:
        got = [e.id for e in read(tenant, health.recent_events, limit, None, wanted, text)]
        assert got == _brute_force_matches(tenant, text, wanted)[:limit], text
    assert looked_up == [], "a page of matches within the window needs no object lookup"
    rare = [e.id for e in read(tenant, health.recent_events, 5, None, None, "user34@")]
    assert rare == _brute_force_matches(tenant, "user34@")[:5]
    assert looked_up == ["user34@"]


def test_a_text_matching_more_objects_than_a_lookup_round_reads_gives_the_newest_matches(
    tenant: Tenant, monkeypatch: pytest.MonkeyPatch
):
    """The lookup reads the events of the objects with the newest events first, and more of
    them until the page is newer than every object left: the page skips no newer match."""
    monkeypatch.setattr(health, "_TEXT_WINDOW", 4)
    monkeypatch.setattr(health, "_FIRST_SOURCES", 3)
    for index in range(30):  # ten objects named "team ...", the newest events are others'
        matching = index < 20
        tenant.event(
            f"obj-{index % 10}" if matching else f"other-{index}",
            cycle=f"c{index // 10}",
            minutes_ago=100 - index,
            name=f"team {index % 10}" if matching else f"user {index}",
        )
    for limit in (1, 6, 25):
        got = [e.id for e in read(tenant, health.recent_events, limit, None, None, "team")]
        assert got == _brute_force_matches(tenant, "team")[:limit], limit
