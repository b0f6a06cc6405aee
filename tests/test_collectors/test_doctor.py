"""doctor against the simulated tenant: the right verdict and advice for each misconfiguration."""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from collectors.doctor import Finding, diagnose
from collectors.simulator import ManualClock, SimulatedTenant

from .test_against_simulator import connections


@pytest.fixture(scope="module")
def tenant():
    with SimulatedTenant("incident", seed=7, clock=ManualClock()) as running:
        yield running


@pytest.fixture(autouse=True)
def _clean(tenant):
    graph_permissions = set(tenant.scenario.options.graph_permissions)
    harness_permissions = set(tenant.scenario.options.harness_permissions)
    tenant.faults.reset()
    tenant.faults.rate_limits_enabled = False
    yield
    tenant.scenario.options.graph_permissions = graph_permissions
    tenant.scenario.options.harness_permissions = harness_permissions
    tenant.faults.reset()


def by_check(findings: list[Finding]) -> dict[str, Finding]:
    return {finding.check: finding for finding in findings}


async def test_good_configuration_is_all_ok(tenant):
    graph, harness = connections(tenant)
    findings = await diagnose(graph, harness)
    assert [f for f in findings if f.status != "ok"] == []
    assert "graph.permission.AuditLog.Read.All" in by_check(findings)
    assert "harness.ng.user_groups" in by_check(findings)


async def test_wrong_secret_gets_the_aadsts7000215_advice(tenant):
    graph, _ = connections(tenant)
    graph = graph.model_copy(update={"client_secret": SecretStr("not-the-secret")})
    findings = await diagnose(graph, None)
    (token,) = findings
    assert token.status == "fail"
    assert "AADSTS7000215" in token.found
    assert "Value" in token.fix


async def test_missing_graph_permission_is_named_with_consent_advice(tenant):
    tenant.scenario.options.graph_permissions.discard("AuditLog.Read.All")
    graph, _ = connections(tenant)
    finding = by_check(await diagnose(graph, None))["graph.permission.AuditLog.Read.All"]
    assert finding.status == "fail"
    assert "AuditLog.Read.All" in finding.fix
    assert "admin consent" in finding.fix


async def test_wrong_service_principal_is_reported(tenant):
    graph, _ = connections(tenant)
    graph = graph.model_copy(update={"nextgen_sp_id": "00000000-1111-2222-3333-444444444444"})
    finding = by_check(await diagnose(graph, None))["graph.service_principal.nextgen"]
    assert finding.status == "fail"
    assert "Object ID" in finding.fix


async def test_expired_harness_token_is_reported(tenant):
    _, harness = connections(tenant)
    bad = tenant.harness_token[:-4] + "XXXX"
    harness = harness.model_copy(update={"token": SecretStr(bad)})
    findings = by_check(await diagnose(None, harness))
    assert findings["harness.scim.users"].status == "fail"
    assert "expired" in findings["harness.scim.users"].fix
    assert findings["harness.token_account"].status == "ok"


async def test_token_without_user_group_permission_is_reported(tenant):
    tenant.scenario.options.harness_permissions.discard("core_usergroup_view")
    _, harness = connections(tenant)
    findings = by_check(await diagnose(None, harness))
    assert findings["harness.scim.users"].status == "ok"
    assert findings["harness.scim.groups"].status == "fail"
    assert "core_usergroup_view" in findings["harness.scim.groups"].fix


async def test_token_of_another_account_is_reported(tenant):
    _, harness = connections(tenant)
    harness = harness.model_copy(update={"account_id": "someOtherAccount"})
    finding = by_check(await diagnose(None, harness))["harness.token_account"]
    assert finding.status == "fail"


async def test_firstgen_scim_url_is_reported(tenant):
    _, harness = connections(tenant)
    url = f"{tenant.harness_url}/gateway/api/scim/account/{tenant.account_id}"
    harness = harness.model_copy(update={"base_url": url})
    finding = by_check(await diagnose(None, harness))["harness.scim_url"]
    assert finding.status == "fail"
    assert "/gateway/ng/api/scim/account/" in finding.fix
