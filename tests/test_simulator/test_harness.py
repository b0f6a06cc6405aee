"""The simulated Harness: SCIM with its quirks (checked with scim2-models), NextGen REST, authz."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from pydantic import ValidationError
from scim2_models import Context, Group, ListResponse, User

from collectors.simulator import SimulatedTenant


def scim(tenant: SimulatedTenant, client: httpx.Client, path: str, **params: Any) -> httpx.Response:
    url = f"{tenant.harness_url}/gateway/ng/api/scim/account/{tenant.account_id}/{path}"
    return client.get(
        url, params=params, headers={"Authorization": f"Bearer {tenant.harness_token}"}
    )


def ng(
    tenant: SimulatedTenant, client: httpx.Client, path: str, method: str = "GET", **kw: Any
) -> httpx.Response:
    params = {"accountIdentifier": tenant.account_id} | kw.pop("params", {})
    return client.request(
        method,
        f"{tenant.harness_url}/gateway{path}",
        params=params,
        headers={"x-api-key": tenant.harness_token},
        **kw,
    )


def test_scim_users_list_validates_with_scim2_models(
    tenant: SimulatedTenant, client: httpx.Client
) -> None:
    response = scim(tenant, client, "Users", count=100)
    assert response.headers["content-type"].startswith("application/scim+json")
    body = response.json()
    parsed = ListResponse[User[Any]].model_validate(body, scim_ctx=Context.RESOURCE_QUERY_RESPONSE)
    assert parsed.total_results == len(body["Resources"])  # Harness: totalResults is the page size
    assert body["startIndex"] == 0
    assert body["itemsPerPage"] == 100
    first = body["Resources"][0]
    assert set(first["name"]) == {"familyName", "givenName"}
    assert "user_2@example.com" in {u["userName"] for u in body["Resources"]}


def test_scim_defaults_count_20_and_start_index_0(
    tenant: SimulatedTenant, client: httpx.Client
) -> None:
    body = scim(tenant, client, "Users").json()
    assert body["itemsPerPage"] == 20
    assert body["startIndex"] == 0
    assert body["totalResults"] == len(body["Resources"]) <= 20


def test_crude_eq_filter_ignores_the_attribute_and_case(
    tenant: SimulatedTenant, client: httpx.Client
) -> None:
    by_user = scim(tenant, client, "Users", filter='userName eq "user_2@example.com"').json()
    by_external = scim(tenant, client, "Users", filter='externalId eq "user_2@example.com"').json()
    mixed = scim(tenant, client, "Users", filter='userName eq "User_2@Example.com"').json()
    assert [u["userName"] for u in by_user["Resources"]] == ["user_2@example.com"]
    assert by_external["Resources"] == by_user["Resources"]
    assert mixed["totalResults"] == 0
    assert mixed["Resources"] == []


def test_scim_user_by_id_has_both_shapes(tenant: SimulatedTenant, client: httpx.Client) -> None:
    listed = scim(tenant, client, "Users", filter='userName eq "alice@example.com"').json()[
        "Resources"
    ][0]
    plain = scim(tenant, client, f"Users/{listed['id']}").json()
    assert plain["name"] == {"displayName": plain["displayName"]}
    assert "meta" not in plain
    assert "groups" not in plain
    assert plain["externalId"]
    with pytest.raises(
        ValidationError, match=r"name\.displayName"
    ):  # Harness's documented non-compliance
        User.model_validate(plain, scim_ctx=Context.RESOURCE_QUERY_RESPONSE)
    tenant.scenario.options.new_scim_standards = True
    try:
        flagged = scim(tenant, client, f"Users/{listed['id']}").json()
    finally:
        tenant.scenario.options.new_scim_standards = False
    assert {"givenName", "familyName", "formatted", "displayName"} <= flagged["name"].keys()
    assert flagged["meta"]["resourceType"] == "User"
    assert flagged["meta"]["created"].endswith("+0000")  # offset without a colon, as Harness sends
    assert any(g["value"] == "Engineering" for g in flagged["groups"])


def test_scim_groups_are_only_externally_managed_and_keep_old_identifiers(
    tenant: SimulatedTenant, client: httpx.Client
) -> None:
    body = scim(tenant, client, "Groups", count=100).json()
    ListResponse[Group].model_validate(body, scim_ctx=Context.RESOURCE_QUERY_RESPONSE)
    ids = {g["id"]: g["displayName"] for g in body["Resources"]}
    assert "Platform_Admins" not in ids
    assert "sre_oncall" not in ids
    renamed = tenant.scenario.planted.renamed_groups[0]
    assert ids[renamed["identifier"]] == renamed["new_name"]
    assert all(m["ref"] == "" for g in body["Resources"] for m in g["members"])


def test_scim_error_body_status_is_always_404(
    tenant: SimulatedTenant, client: httpx.Client
) -> None:
    response = scim(tenant, client, "Users/doesnotexist")
    assert response.status_code == 404
    body = response.json()
    assert body["status"] == 404
    assert isinstance(body["status"], int)
    assert body["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:Error"]
    assert body["id"] is None
    assert body["meta"] is None


@pytest.mark.parametrize(
    ("headers", "status", "code"),
    [
        ({}, 500, "UNKNOWN_ERROR"),
        ({"Authorization": "Token abc"}, 401, "INVALID_TOKEN"),
        ({"Authorization": "Bearer wrong"}, 401, "INVALID_TOKEN"),
    ],
)
def test_scim_auth_failures_are_error_dtos(
    tenant: SimulatedTenant, client: httpx.Client, headers: dict[str, str], status: int, code: str
) -> None:
    url = f"{tenant.harness_url}/gateway/ng/api/scim/account/{tenant.account_id}/Users"
    response = client.get(url, headers=headers | {"x-api-key": tenant.harness_token})
    assert response.status_code == status
    assert response.json()["status"] == "ERROR"
    assert response.json()["code"] == code


def test_scim_permission_failure_is_403_ng_access_denied(
    tenant: SimulatedTenant, client: httpx.Client
) -> None:
    tenant.scenario.options.harness_permissions.discard("core_usergroup_view")
    try:
        response = scim(tenant, client, "Groups")
    finally:
        tenant.scenario.options.harness_permissions.add("core_usergroup_view")
    assert response.status_code == 403
    assert response.json()["code"] == "NG_ACCESS_DENIED"
    assert "core_usergroup_view" in response.json()["message"]


def test_static_scim_documents(tenant: SimulatedTenant, client: httpx.Client) -> None:
    config = scim(tenant, client, "ServiceProviderConfig").json()
    assert config["filter"] == {"supported": True, "maxResults": 1000}
    assert scim(tenant, client, "ResourceTypes").json()["startIndex"] == 0


def test_ng_user_groups_show_native_and_scim_groups(
    tenant: SimulatedTenant, client: httpx.Client
) -> None:
    body = ng(tenant, client, "/ng/api/user-groups", params={"pageSize": 100}).json()
    assert body["status"] == "SUCCESS"
    assert body["correlationId"]
    page = body["data"]
    assert page["pageSize"] == 100
    assert page["totalItems"] == len(page["content"])
    groups = {g["identifier"]: g for g in page["content"]}
    assert groups["sre_oncall"]["externallyManaged"] is False
    assert groups["SRE_On_Call"]["externallyManaged"] is True
    assert groups["_account_all_users"]["harnessManaged"] is True
    assert {"ssoLinked", "externallyManaged", "harnessManaged"} <= groups["Engineering"].keys()
    small = ng(
        tenant, client, "/ng/api/user-groups", params={"pageSize": 2, "pageIndex": 1}
    ).json()["data"]
    assert small["pageIndex"] == 1
    assert small["pageItemCount"] == 2
    assert small["totalPages"] == -(-page["totalItems"] // 2)
    missing = ng(tenant, client, "/ng/api/user-groups/nope")
    assert missing.status_code == 400
    assert missing.json()["code"] == "RESOURCE_NOT_FOUND_EXCEPTION"


def test_ng_rest_needs_x_api_key(tenant: SimulatedTenant, client: httpx.Client) -> None:
    response = client.get(
        f"{tenant.harness_url}/gateway/ng/api/user-groups",
        params={"accountIdentifier": tenant.account_id},
        headers={"Authorization": f"Bearer {tenant.harness_token}"},
    )
    assert response.status_code == 401
    assert response.json()["code"] == "INVALID_TOKEN"


def test_users_batch_and_auth_settings(tenant: SimulatedTenant, client: httpx.Client) -> None:
    users = ng(
        tenant, client, "/ng/api/user/batch", "POST", json={}, params={"pageSize": 100}
    ).json()["data"]
    emails = {u["email"]: u for u in users["content"]}
    assert emails["ops-admin@example.com"]["externallyManaged"] is False
    assert {"uuid", "name", "locked", "disabled"} <= emails["user_2@example.com"].keys()
    settings = ng(tenant, client, "/ng/api/authentication-settings").json()
    assert settings["responseMessages"] == []
    saml = [s for s in settings["resource"]["ngAuthSettings"] if s["settingsType"] == "SAML"]
    assert saml[0]["entityIdentifier"] == tenant.scenario.firstgen.entity_id  # type: ignore[union-attr]


def test_role_assignments_and_the_empty_stub(tenant: SimulatedTenant, client: httpx.Client) -> None:
    body = {
        "principalTypeFilter": ["USER_GROUP"],
        "principalScopeLevelFilter": ["account"],
        "disabledFilter": [False],
    }
    bound: set[str] = set()
    for scope in (
        {},
        {"orgIdentifier": "default"},
        {"orgIdentifier": "default", "projectIdentifier": "payments"},
    ):
        page = ng(
            tenant, client, "/authz/api/roleassignments/filter", "POST", json=body, params=scope
        ).json()["data"]
        bound |= {row["roleAssignment"]["principal"]["identifier"] for row in page["content"]}
    scim_groups = {
        g["identifier"]
        for g in tenant.scenario.planted.as_dict()["jobs"]
        and ng(tenant, client, "/ng/api/user-groups", params={"pageSize": 100}).json()["data"][
            "content"
        ]
        if g["externallyManaged"]
    }
    assert scim_groups - bound == set(tenant.scenario.planted.groups_without_role_binding)
    stub = ng(tenant, client, "/ng/api/roleassignments/filter", "POST", json=body).json()["data"]
    assert stub["content"] == []
    assert stub["empty"] is True
    child = ng(
        tenant, client, "/authz/api/roleassignments/filter/internal/childscopes", "POST", json=body
    ).json()
    assert isinstance(child["data"], list)
    assert len(child["data"]) >= len(bound)


def test_firstgen_scim_path_rejects_nextgen_tokens(
    tenant: SimulatedTenant, client: httpx.Client
) -> None:
    url = f"{tenant.harness_url}/gateway/api/scim/account/{tenant.account_id}/Users"
    rejected = client.get(url, headers={"Authorization": f"Bearer {tenant.harness_token}"})
    assert rejected.status_code == 400
    assert rejected.json()["responseMessages"][0]["code"] == "USER_NOT_AUTHORIZED"
    accepted = client.get(url, headers={"Authorization": f"Bearer {tenant.firstgen_api_key}"})
    assert accepted.status_code == 200
    assert "user2@example.com" in {u["userName"] for u in accepted.json()["Resources"]}
