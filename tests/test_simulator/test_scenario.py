"""The scenario engine: determinism, ground truth, and the lazily generated large scenario."""

from __future__ import annotations

import tracemalloc
from datetime import timedelta

import httpx

from collectors.simulator import ManualClock, Scenario, SimulatedTenant

from .conftest import graph_token, tls


def test_same_seed_same_tenant() -> None:
    a = Scenario("incident", seed=11, clock=ManualClock())
    b = Scenario("incident", seed=11, clock=ManualClock())
    assert a.planted == b.planted
    assert [e.event_id for e in a.live_log] == [e.event_id for e in b.live_log]
    assert Scenario("incident", seed=12, clock=ManualClock()).tenant_id != a.tenant_id


def test_incident_plants_a_bit_of_everything() -> None:
    planted = Scenario("incident", seed=7, clock=ManualClock()).planted
    assert "user_2@example.com" in planted.sso_conflict_users
    assert "user1@example.com" not in planted.sso_conflict_users
    assert planted.identifier_collisions[0]["identifier"] == "Dev_Team"
    assert planted.native_identifier_clashes[0]["identifier"] == "Platform_Admins"
    assert planted.native_name_clashes[0]["native_identifier"] == "sre_oncall"
    assert planted.unsyncable_groups[0]["identifier"] == ""
    assert planted.renamed_groups[0]["identifier"] == "Data_Science"
    assert planted.orphan_harness_groups == ["Legacy_Contractors"]
    assert planted.groups_without_role_binding == ["Release_Viewers"]
    assert planted.nested_only_members
    assert planted.default_access_assignments
    assert planted.deleted_in_harness_ui
    assert planted.dropped_members
    codes = {r["error_code"] for r in planted.pending_retries}
    assert "HarnessEntryConflict" in codes
    assert all(r["attempts"] >= 2 for r in planted.pending_retries)
    assert all(job["code"] == "Active" for job in planted.jobs.values())
    assert isinstance(planted.as_dict()["pending_retries"], list)


def test_pending_retries_are_retried_in_later_cycles() -> None:
    scenario = Scenario("incident", seed=7, clock=ManualClock())
    before = {r["object_id"]: r["attempts"] for r in scenario.planted.pending_retries}
    scenario.advance(timedelta(days=2))
    after = {r["object_id"]: r["attempts"] for r in scenario.planted.pending_retries}
    assert set(after) <= set(before)
    assert any(after[k] > before[k] for k in after)


def test_large_scenario_is_lazy_and_bounded() -> None:
    tracemalloc.start()
    scenario = Scenario("large", seed=5, clock=ManualClock())
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert len(scenario.events) == 1_000_000
    assert len(scenario.users) == 100_000
    assert peak < 150 * 1024 * 1024
    last = scenario.events.at_position(999_999)
    assert last.at <= scenario.clock.now()
    assert (
        scenario.events.at_position(123_456).event_id
        == scenario.events.at_position(123_456).event_id
    )


def test_large_scenario_serves_a_page_of_1000_events() -> None:
    with (
        SimulatedTenant("large", seed=5, clock=ManualClock()) as big,
        httpx.Client(verify=tls(big), timeout=30) as http,
    ):
        http.headers["Authorization"] = "Bearer " + graph_token(big, http)
        body = http.get(
            big.graph_url + "/v1.0/auditLogs/provisioning", params={"$top": "1000"}
        ).json()
        assert len(body["value"]) == 1000
        assert "@odata.nextLink" in body
        scim = http.get(
            f"{big.harness_url}/gateway/ng/api/scim/account/{big.account_id}/Users",
            params={"startIndex": "50001", "count": "10"},
            headers={"Authorization": f"Bearer {big.harness_token}"},
        ).json()
        assert len(scim["Resources"]) == 10


def test_env_names_scimwatch_settings(tenant: SimulatedTenant) -> None:
    env = tenant.env()
    assert (
        env["SCIMWATCH_GRAPH__LOGIN_URL"] == env["SCIMWATCH_GRAPH__GRAPH_URL"] == tenant.graph_url
    )
    assert env["SCIMWATCH_HARNESS__BASE_URL"] == tenant.harness_url
    assert env["SCIMWATCH_GRAPH__AUTH_KIND"] == "client_secret"
    assert env["SCIMWATCH_GRAPH__CLOUD"] == "custom"
    assert env["SCIMWATCH_GRAPH__FIRSTGEN_SP_ID"] == tenant.firstgen_sp_id
    assert env["SCIMWATCH_CA_BUNDLE"] == str(tenant.ca_bundle)
    assert tenant.ca_bundle.exists()


def test_ca_bundle_is_removed_on_exit() -> None:
    with SimulatedTenant("healthy", seed=1, clock=ManualClock()) as short:
        path = short.ca_bundle
        assert "SCIMWATCH_GRAPH__FIRSTGEN_SP_ID" not in short.env()
    assert not path.exists()
