"""The simulated Graph over real loopback HTTPS, checked with Microsoft's own models."""

from __future__ import annotations

import base64
import json
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from azure.identity import ClientSecretCredential
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from kiota_serialization_json.json_parse_node import JsonParseNode
from msgraph.generated.models.app_role_assignment_collection_response import (
    AppRoleAssignmentCollectionResponse,
)
from msgraph.generated.models.directory_object_collection_response import (
    DirectoryObjectCollectionResponse,
)
from msgraph.generated.models.provisioning_action import ProvisioningAction
from msgraph.generated.models.provisioning_object_summary_collection_response import (
    ProvisioningObjectSummaryCollectionResponse,
)
from msgraph.generated.models.provisioning_result import ProvisioningResult
from msgraph.generated.models.service_principal_collection_response import (
    ServicePrincipalCollectionResponse,
)
from msgraph.generated.models.synchronization_job_collection_response import (
    SynchronizationJobCollectionResponse,
)
from msgraph.generated.models.synchronization_status_code import SynchronizationStatusCode
from msgraph.generated.models.user_collection_response import UserCollectionResponse

from collectors.simulator import ManualClock, SimulatedTenant
from tests.test_collectors.credentials import Certificate, make_certificate

from .conftest import graph_token, request_token, tls

LOGS = "/v1.0/auditLogs/provisioning"


def parse(body: bytes, model: Any) -> Any:
    return JsonParseNode(json.loads(body)).get_object_value(model)


def all_pages(
    graph: httpx.Client, url: str, params: dict[str, str] | None = None
) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    response = graph.get(url, params=params)
    while True:
        response.raise_for_status()
        body = response.json()
        items += body["value"]
        if "@odata.nextLink" not in body:
            return items
        response = graph.get(body["@odata.nextLink"])


def test_azure_identity_gets_a_token_from_the_simulator(tenant: SimulatedTenant) -> None:
    credential = ClientSecretCredential(
        tenant.tenant_id,
        tenant.client_id,
        tenant.client_secret,
        authority=urlsplit(tenant.graph_url).netloc,
        disable_instance_discovery=True,
        connection_verify=str(tenant.ca_bundle),
    )
    token = credential.get_token("https://graph.microsoft.com/.default")
    assert token.token.count(".") == 2
    with httpx.Client(verify=tls(tenant)) as http:
        response = http.get(
            tenant.graph_url
            + f"/v1.0/servicePrincipals/{tenant.nextgen_sp_id}/synchronization/jobs",
            headers={"Authorization": f"Bearer {token.token}"},
        )
    assert response.status_code == 200


def test_bad_secret_gets_the_real_token_error(
    tenant: SimulatedTenant, client: httpx.Client
) -> None:
    response = request_token(tenant, client, client_secret="wrong")
    body = response.json()
    assert response.status_code == 401
    assert body["error"] == "invalid_client"
    assert body["error_codes"] == [7000215]
    assert body["error_description"].startswith("AADSTS7000215:")
    assert {"timestamp", "trace_id", "correlation_id"} <= body.keys()


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def client_assertion(
    tenant: SimulatedTenant,
    signer: Certificate,
    *,
    named: Certificate | None = None,
    alg: str = "RS256",
    **claims: Any,
) -> str:
    """A client assertion as graph-api.md 5.1 describes, signed by `signer`'s key.

    `named` is the certificate whose thumbprint the header carries (`signer`'s by default):
    ``x5t`` (SHA-1) with RS256, ``x5t#S256`` (SHA-256) with PS256, as azure-identity sends it.
    """
    named = named or signer
    now = int(time.time())
    header: dict[str, str] = {"alg": alg, "typ": "JWT"}
    if alg == "PS256":
        header["x5t#S256"] = _b64(named.certificate.fingerprint(hashes.SHA256()))
    else:
        header["x5t"] = _b64(named.certificate.fingerprint(hashes.SHA1()))
    body = {
        "aud": f"{tenant.graph_url}/{tenant.tenant_id}/oauth2/v2.0/token",
        "iss": tenant.client_id,
        "sub": tenant.client_id,
        "jti": str(uuid.uuid4()),
        "nbf": now,
        "exp": now + 600,
    } | claims
    signed = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(body).encode())}"
    scheme: padding.AsymmetricPadding = (
        padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)
        if alg == "PS256"
        else padding.PKCS1v15()
    )
    signature = signer.key.sign(signed.encode(), scheme, hashes.SHA256())
    return f"{signed}.{_b64(signature)}"


@pytest.fixture(scope="module")
def registered(tenant: SimulatedTenant) -> Certificate:
    certificate = make_certificate("simulator-registered")
    tenant.register_certificate(certificate.cert_pem)
    return certificate


@pytest.fixture(scope="module")
def stranger() -> Certificate:
    return make_certificate("simulator-stranger")


def post_assertion(tenant: SimulatedTenant, client: httpx.Client, assertion: str) -> httpx.Response:
    return request_token(
        tenant,
        client,
        client_assertion_type="urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        client_assertion=assertion,
    )


@pytest.mark.parametrize("alg", ["RS256", "PS256"])
def test_a_certificate_assertion_gets_a_token(
    tenant: SimulatedTenant, client: httpx.Client, registered: Certificate, alg: str
) -> None:
    response = post_assertion(tenant, client, client_assertion(tenant, registered, alg=alg))
    assert response.status_code == 200
    assert response.json()["token_type"] == "Bearer"


@pytest.mark.parametrize(
    ("case", "code", "reason"),
    [
        ("unregistered certificate", 700027, "The key was not found"),
        ("thumbprint of another key", 700027, "failed signature validation"),
        ("unsigned", 700027, "failed signature validation"),
        ("another audience", 700023, "audience claim does not match"),
        ("another issuer", 700021, "application identifier doesn't match"),
        ("another subject", 700021, "application identifier doesn't match"),
        ("expired", 700024, "not within its valid time range"),
        ("no expiry", 700024, "not within its valid time range"),
        ("not yet valid", 700024, "not within its valid time range"),
        ("malformed", 50027, "invalid or malformed"),
    ],
)
def test_a_bad_certificate_assertion_is_refused_like_entra(
    tenant: SimulatedTenant,
    client: httpx.Client,
    registered: Certificate,
    stranger: Certificate,
    case: str,
    code: int,
    reason: str,
) -> None:
    now = int(time.time())
    assertions = {
        "unregistered certificate": lambda: client_assertion(tenant, stranger),
        "thumbprint of another key": lambda: client_assertion(tenant, stranger, named=registered),
        "unsigned": lambda: client_assertion(tenant, registered).rsplit(".", 1)[0] + ".",
        "another audience": lambda: client_assertion(
            tenant, registered, aud="https://login.microsoftonline.com/other/oauth2/v2.0/token"
        ),
        "another issuer": lambda: client_assertion(tenant, registered, iss="someone-else"),
        "another subject": lambda: client_assertion(tenant, registered, sub="someone-else"),
        "expired": lambda: client_assertion(tenant, registered, nbf=now - 7200, exp=now - 3600),
        "no expiry": lambda: client_assertion(tenant, registered, exp=None),
        "not yet valid": lambda: client_assertion(
            tenant, registered, nbf=now + 3600, exp=now + 4200
        ),
        "malformed": lambda: "not-a-jwt",
    }
    response = post_assertion(tenant, client, assertions[case]())
    body = response.json()
    assert response.status_code == 401
    assert body["error"] == "invalid_client"
    assert body["error_codes"] == [code]
    assert body["error_description"].startswith(f"AADSTS{code}:")
    assert reason in body["error_description"]
    assert {"timestamp", "trace_id", "correlation_id"} <= body.keys()


def test_no_client_credential_at_all_is_refused(
    tenant: SimulatedTenant, client: httpx.Client
) -> None:
    response = request_token(tenant, client)  # neither a secret nor an assertion
    assert response.status_code == 401
    assert response.json()["error_codes"] == [7000218]


def test_openid_configuration_points_at_the_simulator(
    tenant: SimulatedTenant, client: httpx.Client
) -> None:
    body = client.get(
        f"{tenant.graph_url}/{tenant.tenant_id}/v2.0/.well-known/openid-configuration"
    ).json()
    assert body["token_endpoint"] == f"{tenant.graph_url}/{tenant.tenant_id}/oauth2/v2.0/token"
    assert body["issuer"] == f"https://login.microsoftonline.com/{tenant.tenant_id}/v2.0"


def test_provisioning_page_survives_microsofts_models(
    tenant: SimulatedTenant, graph: httpx.Client
) -> None:
    response = graph.get(tenant.graph_url + LOGS, params={"$top": "1000"})
    assert response.headers["content-type"].startswith("application/json;odata.metadata=minimal")
    page = parse(response.content, ProvisioningObjectSummaryCollectionResponse)
    raw = response.json()["value"]
    assert len(page.value) == len(raw) == len(tenant.scenario.events)
    for model, item in zip(page.value, raw, strict=True):
        assert model.id == item["id"]
        assert model.cycle_id == item["cycleId"]
        assert model.service_principal.id == item["servicePrincipal"]["id"]
        assert model.provisioning_action == ProvisioningAction(item["provisioningAction"])
        assert model.provisioning_status_info.status == ProvisioningResult(
            item["provisioningStatusInfo"]["status"]
        )
        assert model.activity_date_time == datetime.fromisoformat(item["activityDateTime"])
    failures = [
        m for m in page.value if m.provisioning_status_info.status == ProvisioningResult.Failure
    ]
    assert failures
    assert all(
        "will be retried again after this date"
        in f.provisioning_status_info.error_information.reason
        for f in failures
    )
    assert {m.provisioning_action for m in page.value} >= {
        ProvisioningAction.Create,
        ProvisioningAction.Update,
        ProvisioningAction.Disable,
        ProvisioningAction.Delete,
    }


def test_events_are_newest_first_by_default_and_orderby_asc_reverses(
    tenant: SimulatedTenant, graph: httpx.Client
) -> None:
    newest = graph.get(tenant.graph_url + LOGS, params={"$top": "5"}).json()["value"]
    oldest = graph.get(
        tenant.graph_url + LOGS, params={"$top": "5", "$orderby": "activityDateTime asc"}
    ).json()["value"]
    assert newest[0]["activityDateTime"] >= newest[-1]["activityDateTime"]
    assert oldest[0]["activityDateTime"] <= oldest[-1]["activityDateTime"]
    assert newest[0]["id"] != oldest[0]["id"]


def test_paging_with_skiptoken_returns_every_event_once(
    tenant: SimulatedTenant, graph: httpx.Client
) -> None:
    items = all_pages(graph, tenant.graph_url + LOGS, {"$top": "7"})
    assert len(items) == len(tenant.scenario.events)
    assert len({i["id"] for i in items}) == len(items)
    first = graph.get(tenant.graph_url + LOGS, params={"$top": "7"}).json()["@odata.nextLink"]
    assert first.startswith(tenant.graph_url + LOGS + "?")
    assert "$skiptoken=" in first
    assert "$top=7" in first


@pytest.mark.parametrize(
    ("clause", "check"),
    [
        (
            "provisioningStatusInfo/status eq 'failure'",
            lambda e: e["provisioningStatusInfo"]["status"] == "failure",
        ),
        ("provisioningAction eq 'disable'", lambda e: e["provisioningAction"] == "disable"),
        (
            "contains(sourceIdentity/displayName, 'Team')",
            lambda e: "Team" in e["sourceIdentity"]["displayName"],
        ),
        (
            "sourceIdentity/identityType eq 'Group' and provisioningStatusInfo/status eq 'success'",
            lambda e: e["sourceIdentity"]["identityType"] == "Group",
        ),
        ("durationInMilliseconds gt 2000", lambda e: e["durationInMilliseconds"] > 2000),
    ],
)
def test_documented_filters_select_the_right_events(
    tenant: SimulatedTenant, graph: httpx.Client, clause: str, check: Any
) -> None:
    items = all_pages(graph, tenant.graph_url + LOGS, {"$filter": clause, "$top": "500"})
    assert items
    assert all(check(i) for i in items)


def test_service_principal_filter_separates_the_two_apps(
    tenant: SimulatedTenant, graph: httpx.Client
) -> None:
    ng = all_pages(
        graph,
        tenant.graph_url + LOGS,
        {"$filter": f"servicePrincipal/id eq '{tenant.nextgen_sp_id}'"},
    )
    fg = all_pages(
        graph,
        tenant.graph_url + LOGS,
        {"$filter": f"servicePrincipal/id eq '{tenant.firstgen_sp_id}'"},
    )
    assert ng
    assert fg
    assert len(ng) + len(fg) == len(tenant.scenario.events)
    assert {e["servicePrincipal"]["id"] for e in fg} == {tenant.firstgen_sp_id}


def test_activity_time_window_with_gt_and_lt(tenant: SimulatedTenant, graph: httpx.Client) -> None:
    everything = all_pages(graph, tenant.graph_url + LOGS, {"$top": "1000"})
    times = sorted(e["activityDateTime"] for e in everything)
    low, high = times[10], times[-10]
    clause = f"activityDateTime gt {low} and activityDateTime lt {high}"
    window = all_pages(graph, tenant.graph_url + LOGS, {"$filter": clause})
    assert window
    assert all(low < e["activityDateTime"] < high for e in window)
    exact = all_pages(
        graph, tenant.graph_url + LOGS, {"$filter": f"activityDateTime eq {times[5]}"}
    )
    assert exact
    assert all(e["activityDateTime"] == times[5] for e in exact)


@pytest.mark.parametrize(
    "clause",
    [
        "activityDateTime ge 2026-01-01",
        "servicePrincipal/id gt 'x'",
        "nonsense eq 'x'",
        "provisioningAction eq",
        "((",
    ],
)
def test_unsupported_filters_get_graph_error_json(
    tenant: SimulatedTenant, graph: httpx.Client, clause: str
) -> None:
    response = graph.get(tenant.graph_url + LOGS, params={"$filter": clause})
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "BadRequest"
    assert {"date", "request-id", "client-request-id"} <= error["innerError"].keys()
    assert not error["innerError"]["date"].endswith("Z")


def test_reporting_api_throttles_at_five_requests_per_ten_seconds(
    tenant: SimulatedTenant, graph: httpx.Client
) -> None:
    tenant.faults.rate_limits_enabled = True
    tenant.faults.rate_history.clear()
    seconds = [time.monotonic()]
    tenant.faults.rate_clock = lambda: seconds[0]  # real time by default; moved by hand here
    statuses = [
        graph.get(tenant.graph_url + LOGS, params={"$top": "1"}).status_code for _ in range(6)
    ]
    assert statuses == [200] * 5 + [429]
    throttled = graph.get(tenant.graph_url + LOGS, params={"$top": "1"})
    assert throttled.json()["error"]["code"] == "TooManyRequests"
    assert 1 <= int(throttled.headers["Retry-After"]) <= 10
    seconds[0] += 11
    assert graph.get(tenant.graph_url + LOGS, params={"$top": "1"}).status_code == 200
    tenant.faults.rate_clock = time.monotonic


def test_jobs_parse_with_microsofts_models(tenant: SimulatedTenant, graph: httpx.Client) -> None:
    response = graph.get(
        f"{tenant.graph_url}/v1.0/servicePrincipals/{tenant.nextgen_sp_id}/synchronization/jobs"
    )
    jobs = parse(response.content, SynchronizationJobCollectionResponse)
    raw = response.json()["value"][0]
    job = jobs.value[0]
    assert job.id == raw["id"] == tenant.scenario.nextgen.job_id
    assert raw["schedule"]["interval"] == "PT40M"
    assert job.schedule.interval == timedelta(minutes=40)
    assert job.status.code == SynchronizationStatusCode.Active
    assert raw["status"]["lastExecution"]["timeBegan"].endswith("0Z")
    assert len(raw["status"]["lastExecution"]["timeBegan"]) == len("2026-03-02T08:15:00.0000000Z")
    single = graph.get(
        f"{tenant.graph_url}/v1.0/servicePrincipals/{tenant.nextgen_sp_id}/synchronization/jobs/{job.id}/"
    )
    assert single.json()["id"] == job.id
    assert (
        graph.get(
            f"{tenant.graph_url}/v1.0/servicePrincipals/{tenant.nextgen_sp_id}/synchronization/jobs/nope"
        ).status_code
        == 404
    )


def test_quarantine_scenario_shows_the_quarantine_object_and_recovers() -> None:
    clock = ManualClock()
    with (
        SimulatedTenant("quarantine", seed=3, clock=clock) as quarantined,
        httpx.Client(verify=tls(quarantined)) as http,
    ):
        http.headers["Authorization"] = "Bearer " + graph_token(quarantined, http)
        sp_id = quarantined.nextgen_sp_id
        url = f"{quarantined.graph_url}/v1.0/servicePrincipals/{sp_id}/synchronization/jobs"
        status = http.get(url).json()["value"][0]["status"]
        assert status["code"] == "Quarantine"
        assert status["quarantine"]["reason"] == "EncounteredQuarantineException"
        assert (
            status["quarantine"]["error"]["code"]
            == "SystemForCrossDomainIdentityManagementInvalidCredentials"
        )
        assert status["lastExecution"]["state"] == "Failed"
        assert (
            status["steadyStateFirstAchievedTime"] in ("0001-01-01T00:00:00Z",)
            or status["steadyStateFirstAchievedTime"]
        )
        job = parse(http.get(url).content, SynchronizationJobCollectionResponse).value[0]
        assert job.status.code == SynchronizationStatusCode.Quarantine
        quarantined.scenario.run_cycles(1)
        http.headers["Authorization"] = "Bearer " + graph_token(
            quarantined, http
        )  # the old one expired
        again = http.get(url).json()["value"][0]["status"]
        assert again["quarantine"]["seriesCount"] == 2
        quarantined.scenario.renew_scim_token()
        quarantined.scenario.run_cycles(1)
        http.headers["Authorization"] = "Bearer " + graph_token(quarantined, http)
        recovered = http.get(url).json()["value"][0]["status"]
        assert recovered["code"] == "Active"
        assert recovered["quarantine"] is None


def test_app_role_assignments_include_default_access(
    tenant: SimulatedTenant, graph: httpx.Client
) -> None:
    response = graph.get(
        f"{tenant.graph_url}/v1.0/servicePrincipals/{tenant.nextgen_sp_id}/appRoleAssignedTo"
    )
    page = parse(response.content, AppRoleAssignmentCollectionResponse)
    assert {str(a.resource_id) for a in page.value} == {tenant.nextgen_sp_id}
    default = [
        a for a in page.value if str(a.app_role_id) == "00000000-0000-0000-0000-000000000000"
    ]
    planted = {
        d["principal_id"]
        for d in tenant.scenario.planted.default_access_assignments
        if d["sp_id"] == tenant.nextgen_sp_id
    }
    assert {str(a.principal_id) for a in default} == planted
    paged = all_pages(
        graph,
        f"{tenant.graph_url}/v1.0/servicePrincipals/{tenant.nextgen_sp_id}/appRoleAssignedTo",
        {"$top": "2"},
    )
    assert len(paged) == len(page.value)


def test_direct_members_exclude_nested_ones(tenant: SimulatedTenant, graph: httpx.Client) -> None:
    group_id, nested_users = next(iter(tenant.scenario.planted.nested_only_members.items()))
    direct = graph.get(f"{tenant.graph_url}/v1.0/groups/{group_id}/members")
    transitive = graph.get(f"{tenant.graph_url}/v1.0/groups/{group_id}/transitiveMembers")
    direct_ids = {str(o.id) for o in parse(direct.content, DirectoryObjectCollectionResponse).value}
    transitive_ids = {
        str(o.id) for o in parse(transitive.content, DirectoryObjectCollectionResponse).value
    }
    assert not set(nested_users) & direct_ids
    assert set(nested_users) <= transitive_ids
    types = {o["@odata.type"] for o in direct.json()["value"]}
    assert types == {"#microsoft.graph.user", "#microsoft.graph.group"}
    users_only = graph.get(
        f"{tenant.graph_url}/v1.0/groups/{group_id}/transitiveMembers/microsoft.graph.user",
        params={"$count": "true"},
        headers={"ConsistencyLevel": "eventual"},
    ).json()
    assert users_only["@odata.count"] == len(users_only["value"])
    assert {o["@odata.type"] for o in users_only["value"]} == {"#microsoft.graph.user"}


def test_users_and_service_principals(tenant: SimulatedTenant, graph: httpx.Client) -> None:
    users = graph.get(f"{tenant.graph_url}/v1.0/users", params={"$top": "5"})
    page = parse(users.content, UserCollectionResponse)
    assert len(page.value) == 5
    assert "@odata.nextLink" in users.json()
    one = graph.get(
        f"{tenant.graph_url}/v1.0/users",
        params={"$filter": "userPrincipalName eq 'user_2@example.com'"},
    )
    assert [u["mail"] for u in one.json()["value"]] == ["user_2@example.com"]
    sps = graph.get(
        f"{tenant.graph_url}/v1.0/servicePrincipals",
        params={"$filter": "startswith(displayName, 'Harness')"},
    )
    found = parse(sps.content, ServicePrincipalCollectionResponse).value
    assert {str(sp.id) for sp in found} == {tenant.nextgen_sp_id, tenant.firstgen_sp_id}
    by_app = graph.get(
        f"{tenant.graph_url}/v1.0/servicePrincipals",
        params={"$filter": f"appId eq '{tenant.scenario.nextgen.app_id}'", "$select": "id,appId"},
    )
    assert by_app.json()["value"] == [
        {"id": tenant.nextgen_sp_id, "appId": tenant.scenario.nextgen.app_id}
    ]


def test_missing_permission_is_authorization_request_denied(
    tenant: SimulatedTenant, client: httpx.Client
) -> None:
    tenant.scenario.options.graph_permissions.discard("AuditLog.Read.All")
    try:
        token = graph_token(tenant, client)
    finally:
        tenant.scenario.options.graph_permissions.add("AuditLog.Read.All")
    response = client.get(tenant.graph_url + LOGS, headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "Authorization_RequestDenied"


def test_tokens_expire_on_the_scenario_clock() -> None:
    with (
        SimulatedTenant("healthy", seed=1, clock=ManualClock()) as fresh,
        httpx.Client(verify=tls(fresh)) as http,
    ):
        token = graph_token(fresh, http)
        url = f"{fresh.graph_url}/v1.0/servicePrincipals/{fresh.nextgen_sp_id}/synchronization/jobs"
        assert http.get(url, headers={"Authorization": f"Bearer {token}"}).status_code == 200
        fresh.scenario.advance(timedelta(seconds=3600))
        expired = http.get(url, headers={"Authorization": f"Bearer {token}"})
        assert expired.status_code == 401
        assert expired.json()["error"]["message"] == "Access token has expired or is not yet valid."
        assert http.get(url).json()["error"]["code"] == "InvalidAuthenticationToken"


def test_cycles_on_the_manual_clock_add_events_and_move_the_job() -> None:
    with (
        SimulatedTenant("healthy", seed=2, clock=ManualClock()) as fresh,
        httpx.Client(verify=tls(fresh)) as http,
    ):
        http.headers["Authorization"] = "Bearer " + graph_token(fresh, http)
        url = f"{fresh.graph_url}/v1.0/servicePrincipals/{fresh.nextgen_sp_id}/synchronization/jobs"
        before = http.get(url).json()["value"][0]["status"]["lastExecution"]["timeBegan"]
        count = len(fresh.scenario.events)
        fresh.scenario.run_cycles(2)
        http.headers["Authorization"] = "Bearer " + graph_token(fresh, http)
        after = http.get(url).json()["value"][0]["status"]["lastExecution"]["timeBegan"]
        assert after > before
        assert len(fresh.scenario.events) > count
        newest = http.get(fresh.graph_url + LOGS, params={"$top": "1"}).json()["value"][0][
            "activityDateTime"
        ]
        assert datetime.fromisoformat(newest) <= fresh.scenario.clock.now().astimezone(UTC)


async def test_async_clients_can_use_the_tenant() -> None:
    async with SimulatedTenant("healthy", seed=4, clock=ManualClock()) as fresh:
        url = f"{fresh.graph_url}/{fresh.tenant_id}/v2.0/.well-known/openid-configuration"
        async with httpx.AsyncClient(verify=tls(fresh)) as http:
            response = await http.get(url)
    assert response.status_code == 200
