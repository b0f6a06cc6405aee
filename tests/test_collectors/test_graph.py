"""Graph collectors: parsing the documented shapes, building queries, backfill and increments."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta

import pytest

from collectors.config import PollingConfig
from collectors.graph import (
    AssignmentsCollector,
    DirectoryCollector,
    JobsCollector,
    ProvisioningCollector,
    ProvisioningState,
    graph_time_literal,
    parse_interval,
    sync_time,
)
from collectors.wire import PAGE_IN_THREAD
from store.detail import unpack_detail
from store.models import (
    AppRoleAssignment,
    EntraGroup,
    EntraMembership,
    EntraUser,
    JobExecution,
    ProvisioningEvent,
    SyncJob,
)

from .helpers import GRAPH, FakeClock, MockApi, fixture, graph_api, json_response

NOW = datetime(2024, 5, 4, 12, 0, tzinfo=UTC)


def _state(watermark):
    state = ProvisioningState.parse(watermark)
    assert state is not None
    return state


def provisioning(mock, **polling):
    api, _ = graph_api(mock)
    return ProvisioningCollector(
        api,
        graph_root=GRAPH,
        service_principal_ids=["sp-nextgen"],
        polling=PollingConfig(**polling),
        clock=lambda: NOW,
    )


async def test_provisioning_events_map_to_records_and_a_malformed_one_is_set_aside():
    mock = MockApi(
        FakeClock(), lambda request: json_response(fixture("graph", "provisioning_mixed"))
    )
    collector = provisioning(mock)
    batch = await collector.collect(json.dumps({"x": 1}) and "2024-05-04T11:00:00Z")
    events = {event.id: event for event in batch.records}
    assert batch.skipped == 1
    assert set(events) == {
        "75b5b0ae-9fc5-8d0e-e0a9-7a6a4728de56",
        "ac532ff9-a265-ec76-861e-42e2970a8218",
        "c0ffee00-0000-4000-8000-000000000003",
    }
    created = events["75b5b0ae-9fc5-8d0e-e0a9-7a6a4728de56"]
    assert isinstance(created, ProvisioningEvent)
    assert created.activity_at == datetime(2024, 5, 4, 3, 0, 54, tzinfo=UTC)
    assert (created.action, created.status, created.source_type) == ("create", "success", "User")
    assert created.service_principal_id == "sp-nextgen"
    assert created.initiated_by == "Azure AD Provisioning Service"
    detail = unpack_detail(created.detail)
    assert [step["name"] for step in detail["steps"]] == ["EntryImportAdd", "EntryExportAdd"]
    assert detail["sourceIdentityDetails"] == {"UserPrincipalName": "alice@example.com"}
    failed = events["ac532ff9-a265-ec76-861e-42e2970a8218"]
    assert (failed.status, failed.error_code, failed.error_category) == (
        "failure",
        "HarnessEntryConflict",
        "nonServiceFailure",
    )
    assert "retried again after this date" in failed.reason
    assert unpack_detail(failed.detail)["additionalDetails"].startswith("Try using")
    odd = events["c0ffee00-0000-4000-8000-000000000003"]
    assert (odd.action, odd.status, odd.source_id, odd.detail) == (
        "someFutureAction",
        "warning",
        "",
        None,
    )


async def test_the_deprecated_beta_shape_is_understood():
    mock = MockApi(
        FakeClock(), lambda request: json_response(fixture("graph", "provisioning_beta_shape"))
    )
    collector = ProvisioningCollector(
        graph_api(mock)[0],
        graph_root=GRAPH,
        service_principal_ids=["sp"],
        polling=PollingConfig(),
        clock=lambda: NOW,
    )
    batch = await collector.collect("2019-06-24T20:00:00Z")
    (event,) = [r for r in batch.records if isinstance(r, ProvisioningEvent)]
    assert isinstance(event, ProvisioningEvent)
    assert (event.action, event.status, event.error_code) == (
        "create",
        "failure",
        "BoxEntryConflict",
    )


async def test_incremental_filter_starts_at_the_watermark_minus_the_overlap():
    mock = MockApi(FakeClock(), lambda request: json_response({"value": []}))
    collector = provisioning(mock, overlap=timedelta(minutes=15))
    batch = await collector.collect("2024-05-04T11:00:00.000000Z")
    (request,) = mock.requests
    assert request.url.path == "/v1.0/auditLogs/provisioning"
    assert request.url.params["$filter"] == (
        "activityDateTime gt 2024-05-04T10:45:00Z and servicePrincipal/id eq 'sp-nextgen'"
    )
    assert request.url.params["$top"] == "500"
    assert batch.complete
    assert batch.watermark == "2024-05-04T11:00:00.000000Z"


async def test_watermark_becomes_the_newest_event_saved_and_never_the_future():
    page = fixture("graph", "provisioning_mixed")
    page["value"][0]["activityDateTime"] = "2099-01-01T00:00:00Z"
    mock = MockApi(FakeClock(), lambda request: json_response(page))
    batch = await provisioning(mock).collect("2024-05-04T03:00:00Z")
    assert _state(batch.watermark).newest == NOW + timedelta(minutes=5)


async def test_events_of_other_service_principals_are_dropped_client_side():
    page = fixture("graph", "provisioning_mixed")
    page["value"][0]["servicePrincipal"]["id"] = "someone-else"
    mock = MockApi(FakeClock(), lambda request: json_response(page))
    batch = await provisioning(mock).collect("2024-05-04T03:00:00Z")
    assert "75b5b0ae-9fc5-8d0e-e0a9-7a6a4728de56" not in {event.id for event in batch.records}


@pytest.mark.parametrize(
    ("events", "in_worker_thread"), [(PAGE_IN_THREAD - 1, False), (PAGE_IN_THREAD, True)]
)
async def test_a_provisioning_page_goes_to_a_thread_only_when_large_enough(
    monkeypatch, events, in_worker_thread
):
    """The same size rule as every other page (`on_page`): a small page stays on the loop."""
    template = fixture("graph", "provisioning_mixed")["value"][0]
    page = {"value": [{**template, "id": f"event-{index}"} for index in range(events)]}
    mock = MockApi(FakeClock(), lambda request: json_response(page))
    collector = provisioning(mock)
    keep = collector._keep
    threads: list[threading.Thread] = []

    def recording_keep(items):
        threads.append(threading.current_thread())
        return keep(items)

    monkeypatch.setattr(collector, "_keep", recording_keep)
    batch = await collector.collect("2024-05-04T03:00:00Z")
    assert len(batch.records) == events
    assert [thread is threading.main_thread() for thread in threads] == [not in_worker_thread]


async def test_first_run_backfills_newest_first_in_growing_windows_to_the_retention_limit():
    """The first hour is saved first (newest on screen at once); windows double up to a day."""
    mock = MockApi(FakeClock(), lambda request: json_response({"value": []}))
    collector = provisioning(mock, retention=timedelta(days=3), backfill_window=timedelta(days=1))
    watermark = None
    batches = []
    for _ in range(20):
        batch = await collector.collect(watermark)
        batches.append(batch)
        watermark = batch.watermark
        if batch.complete:
            break
    assert [batch.complete for batch in batches] == [False] * 7 + [True]
    filters = [request.url.params["$filter"] for request in mock.requests]
    lows = [f.split("activityDateTime gt ", 1)[1].split(" ", 1)[0] for f in filters]
    hours_back = [1, 2, 4, 8, 16, 32, 56, 72]
    assert lows == [graph_time_literal(NOW - timedelta(hours=h)) for h in hours_back]
    assert filters[0].startswith(
        "activityDateTime gt 2024-05-04T11:00:00Z and activityDateTime lt 2024-05-04T12:00:01Z"
    )
    # Nothing was found: later polls continue from the first poll's start.
    assert _state(watermark).newest == NOW


async def test_backfill_resumes_where_a_saved_step_left_off():
    mock = MockApi(FakeClock(), lambda request: json_response({"value": []}))
    collector = provisioning(mock, retention=timedelta(days=3))
    first = await collector.collect(None)
    state = _state(first.watermark)
    assert state.backfill_to == NOW - timedelta(hours=1)
    resumed = provisioning(mock, retention=timedelta(days=3))
    await resumed.collect(first.watermark)
    assert (
        "gt 2024-05-04T10:00:00Z and activityDateTime lt 2024-05-04T11:00:01Z"
        in (mock.requests[-1].url.params["$filter"])
    )


async def test_two_service_principals_are_ored_in_the_filter():
    mock = MockApi(FakeClock(), lambda request: json_response({"value": []}))
    collector = ProvisioningCollector(
        graph_api(mock)[0],
        graph_root=GRAPH,
        service_principal_ids=["a", "b"],
        polling=PollingConfig(),
        clock=lambda: NOW,
    )
    await collector.collect("2024-05-04T11:00:00Z")
    assert (
        mock.requests[0]
        .url.params["$filter"]
        .endswith("(servicePrincipal/id eq 'a' or servicePrincipal/id eq 'b')")
    )


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("PT40M", 2400),
        ("PT20M", 1200),
        ("PT2M", 120),
        ("P1DT2H", 93600),
        ("PT1.5S", 1),
        ("P10675199DT2H48M5.4775807S", None),
        (None, None),
        ("", None),
        ("garbage", None),
        ("P", None),
    ],
)
def test_interval_parsing(text, seconds):
    assert parse_interval(text) == seconds


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0001-01-01T00:00:00Z", None),
        ("", None),
        (None, None),
        ("2021-05-24T21:45:53.6330529Z", datetime(2021, 5, 24, 21, 45, 53, 633052, tzinfo=UTC)),
    ],
)
def test_sync_time_sentinels_are_none(text, expected):
    assert sync_time(text) == expected


async def test_jobs_and_their_last_execution():
    mock = MockApi(FakeClock(), lambda request: json_response(fixture("graph", "jobs_quarantine")))
    collector = JobsCollector(
        graph_api(mock)[0], graph_root=GRAPH, apps={"nextgen": "sp-nextgen"}, clock=lambda: NOW
    )
    batch = await collector.collect(None)
    jobs = {job.job_id: job for job in batch.records if isinstance(job, SyncJob)}
    executions = [record for record in batch.records if isinstance(record, JobExecution)]
    quarantined = jobs[
        "Harness.ff8bf889e03141ac8f7baedb059892ee.bfc8712e-0986-4d47-896b-6872713598c6"
    ]
    assert quarantined.status_code == "Quarantine"
    assert quarantined.interval_seconds == 2400
    assert quarantined.quarantine_reason == "EncounteredQuarantineException"
    assert quarantined.quarantine_next_attempt == datetime(
        2021, 5, 24, 21, 50, 54, 498136, tzinfo=UTC
    )
    assert quarantined.last_error_code == "SystemForCrossDomainIdentityManagementInvalidCredentials"
    assert quarantined.steady_state_last is None
    assert quarantined.observed_at == NOW
    never = jobs["Harness.never-started"]
    assert (never.interval_seconds, never.last_began, never.status_code) == (
        None,
        None,
        "NotConfigured",
    )
    (execution,) = executions
    assert execution.state == "Failed"
    assert execution.activity_id == "c3173f7b-9e67-4759-828c-cb499967be57"
    assert [snapshot.where for snapshot in batch.snapshots] == [
        {"service_principal_id": "sp-nextgen"}
    ]
    assert mock.requests[0].url.path == "/v1.0/servicePrincipals/sp-nextgen/synchronization/jobs"


async def test_assignments_of_both_apps_with_snapshots_per_app():
    def handler(request):
        page = fixture("graph", "app_role_assigned_to")
        if "sp-firstgen" in request.url.path:
            page["value"] = page["value"][1:2]
            page["value"][0]["id"] = "firstgen-assignment"
        return json_response(page)

    mock = MockApi(FakeClock(), handler)
    collector = AssignmentsCollector(
        graph_api(mock)[0],
        graph_root=GRAPH,
        apps={"nextgen": "sp-nextgen", "firstgen": "sp-firstgen"},
    )
    batch = await collector.collect(None)
    assignments = {a.id: a for a in batch.records if isinstance(a, AppRoleAssignment)}
    assert batch.skipped == 1
    assert (
        assignments["41W1zT6z1U-kJxf62svfp1HFE8pMZhxDun-ThPczmJE"].app_role_id
        == "00000000-0000-0000-0000-000000000000"
    )
    assert assignments["firstgen-assignment"].app == "firstgen"
    assert [snapshot.where for snapshot in batch.snapshots] == [
        {"app": "nextgen"},
        {"app": "firstgen"},
    ]


async def test_directory_marks_nested_only_members_as_not_direct():
    def handler(request):
        path = request.url.path
        if path.endswith("/appRoleAssignedTo"):
            return json_response(
                {
                    "value": [
                        {
                            "id": "a1",
                            "appRoleId": "r",
                            "principalId": "group-dev",
                            "principalType": "Group",
                        },
                        {
                            "id": "a2",
                            "appRoleId": "r",
                            "principalId": "user-solo",
                            "principalType": "User",
                        },
                    ]
                }
            )
        if path == "/v1.0/groups/group-dev":
            return json_response(
                {"id": "group-dev", "displayName": "Dev Team", "securityEnabled": True}
            )
        if path == "/v1.0/groups/group-dev/members":
            return json_response(
                {
                    "value": [
                        {
                            "@odata.type": "#microsoft.graph.user",
                            "id": "user-alice",
                            "userPrincipalName": "alice@example.com",
                            "displayName": "Alice",
                            "accountEnabled": True,
                        },
                        {
                            "@odata.type": "#microsoft.graph.group",
                            "id": "group-nested",
                            "displayName": "Nested",
                            "securityEnabled": True,
                        },
                    ]
                }
            )
        if path == "/v1.0/groups/group-dev/transitiveMembers":
            return json_response(
                {
                    "value": [
                        {
                            "@odata.type": "#microsoft.graph.user",
                            "id": "user-alice",
                            "userPrincipalName": "alice@example.com",
                        },
                        {
                            "@odata.type": "#microsoft.graph.group",
                            "id": "group-nested",
                            "displayName": "Nested",
                        },
                        {
                            "@odata.type": "#microsoft.graph.user",
                            "id": "user-bob",
                            "userPrincipalName": "bob@example.com",
                            "displayName": "Bob",
                        },
                    ]
                }
            )
        if path == "/v1.0/users/user-solo":
            return json_response(
                {
                    "id": "user-solo",
                    "userPrincipalName": "solo@example.com",
                    "mail": "solo@example.com",
                }
            )
        return json_response({"error": {"code": "Request_ResourceNotFound", "message": path}}, 404)

    mock = MockApi(FakeClock(), handler)
    batch = await DirectoryCollector(
        graph_api(mock)[0], graph_root=GRAPH, apps={"nextgen": "sp"}
    ).collect(None)
    memberships = {
        (m.group_id, m.member_id): m for m in batch.records if isinstance(m, EntraMembership)
    }
    assert memberships[("group-dev", "user-alice")].direct is True
    assert memberships[("group-dev", "group-nested")].member_type == "group"
    assert memberships[("group-dev", "user-bob")].direct is False
    users = {u.id for u in batch.records if isinstance(u, EntraUser)}
    assert users == {"user-alice", "user-bob", "user-solo"}
    groups = {g.id: g for g in batch.records if isinstance(g, EntraGroup)}
    assert groups["group-dev"].display_name == "Dev Team"
    assert {snapshot.table for snapshot in batch.snapshots} == {
        "entra_groups",
        "entra_memberships",
        "entra_users",
    }
