"""Harness collectors: SCIM paging and both user shapes, NextGen groups, SSO, role bindings."""

from __future__ import annotations

import json

import httpx
import pytest

from collectors.base import UnexpectedPayload
from collectors.config import harness_endpoints
from collectors.harness import NextGenCollector, RolesCollector, ScimCollector, SsoCollector
from store.models import HarnessGroup, HarnessGroupMember, HarnessUser, RoleAssignment, SsoSetting

from .helpers import HARNESS, FakeClock, MockApi, fixture, harness_api, json_response

ENDPOINTS = harness_endpoints(HARNESS, "acct1")


def test_endpoints_from_a_bare_host_a_gateway_root_and_scim_urls():
    bare = harness_endpoints("https://app.harness.io", "A")
    assert bare.scim == "https://app.harness.io/gateway/ng/api/scim/account/A"
    assert harness_endpoints("https://accounts.eu.harness.io", "A").ng == (
        "https://accounts.eu.harness.io/ng/api"
    )
    ng = harness_endpoints("https://app.harness.io/gateway/ng/api/scim/account/A", "A")
    assert (ng.gateway, ng.firstgen_scim) == ("https://app.harness.io/gateway", False)
    fg = harness_endpoints("https://app.harness.io/gateway/api/scim/account/A", "A")
    assert fg.firstgen_scim
    assert harness_endpoints("https://app.harness.io/gateway/gratis", "A").authz == (
        "https://app.harness.io/gateway/gratis/authz/api"
    )


async def test_scim_pages_until_an_empty_page_whatever_total_results_says():
    users = fixture("harness", "scim_users_page1")

    def handler(request):
        start = int(request.url.params["startIndex"])
        if request.url.path.endswith("/Users"):
            if start == 1:
                return json_response(users)  # totalResults 2: the page size, not the total
            if start == 3:
                page = json.loads(json.dumps(users))
                page["Resources"] = page["Resources"][:1]
                page["Resources"][0]["id"] = "third-user"
                page["Resources"][0]["userName"] = "third@example.com"
                return json_response(page)  # a short page: NextGen filters after paging
            return json_response({"totalResults": 0, "Resources": [], "startIndex": start})
        if start == 1:
            return json_response(fixture("harness", "scim_groups_page1"))
        return json_response({"totalResults": 0, "startIndex": start, "itemsPerPage": 100})

    mock = MockApi(FakeClock(), handler)
    batch = await ScimCollector(harness_api(mock), ENDPOINTS).collect(None)
    starts = [(r.url.path.rsplit("/", 1)[-1], r.url.params["startIndex"]) for r in mock.requests]
    assert starts == [
        ("Users", "1"),
        ("Users", "3"),
        ("Users", "4"),
        ("Groups", "1"),
        ("Groups", "2"),
    ]
    assert all(r.headers["authorization"].startswith("Bearer pat.") for r in mock.requests)
    users_by_id = {u.id: u for u in batch.records if isinstance(u, HarnessUser)}
    assert users_by_id["Zk3d0cT1QzSbX3mN8a2LqA"].name == "Jane Doe"
    bob = users_by_id["Ab1d0cT1QzSbX3mN8a2LqB"]
    assert (bob.email, bob.name, bob.external_id) == (
        "bob.smith@example.com",
        "Bob Smith",
        "0b0cfa3e-1b0a-4f9e-9c43-5b1d7b0c9e11",
    )
    assert bob.in_scim
    (group,) = [g for g in batch.records if isinstance(g, HarnessGroup)]
    assert (group.identifier, group.name, group.externally_managed) == (
        "Dev_Team",
        "Dev Team",
        True,
    )
    (member,) = [m for m in batch.records if isinstance(m, HarnessGroupMember)]
    assert member.user_id == "Zk3d0cT1QzSbX3mN8a2LqA"
    assert {s.table for s in batch.snapshots} == {
        "harness_users",
        "harness_groups",
        "harness_group_members",
    }


async def test_scim_paging_that_does_not_advance_is_an_error():
    users = fixture("harness", "scim_users_page1")
    mock = MockApi(FakeClock(), lambda request: json_response(users))
    collector = ScimCollector(harness_api(mock), ENDPOINTS)
    with pytest.raises(UnexpectedPayload, match="does not advance"):
        await collector.collect(None)


async def test_nextgen_groups_include_native_and_child_scope_groups():
    def handler(request):
        if request.url.path.endswith("/user-groups"):
            assert request.url.params["filterType"] == "INCLUDE_CHILD_SCOPE_GROUPS"
            assert request.headers["x-api-key"].startswith("pat.")
            return json_response(fixture("harness", "ng_user_groups"))
        assert request.method == "POST"
        return json_response(fixture("harness", "ng_users"))

    mock = MockApi(FakeClock(), handler)
    batch = await NextGenCollector(harness_api(mock), ENDPOINTS, "acct1").collect(None)
    groups = {(g.scope, g.identifier): g for g in batch.records if isinstance(g, HarnessGroup)}
    scim_group = groups[("account", "Dev_Team")]
    assert (scim_group.externally_managed, scim_group.in_ng) == (True, True)
    assert "in_scim" not in scim_group.model_fields_set  # harness.scim owns that flag
    native = groups[("account", "Dev_Team_native")]
    assert (native.externally_managed, native.sso_linked) == (False, True)
    assert groups[("org/default/project/payments", "_project_all_users")].harness_managed
    users = {u.id: u for u in batch.records if isinstance(u, HarnessUser)}
    assert users["native-user-1"].email == "native@example.com"
    assert users["native-user-1"].active is False
    assert users["Zk3d0cT1QzSbX3mN8a2LqA"].in_ng
    assert "in_scim" not in users["Zk3d0cT1QzSbX3mN8a2LqA"].model_fields_set


async def test_nextgen_group_listing_falls_back_to_the_account_scope():
    def handler(request):
        if request.url.path.endswith("/user-groups"):
            if "filterType" in request.url.params:
                return json_response({"status": "ERROR", "code": "INVALID_REQUEST"}, 400)
            return json_response(fixture("harness", "ng_user_groups"))
        return json_response(fixture("harness", "ng_users"))

    mock = MockApi(FakeClock(), handler)
    batch = await NextGenCollector(harness_api(mock), ENDPOINTS, "acct1").collect(None)
    assert any(isinstance(record, HarnessGroup) for record in batch.records)


async def test_sso_settings_mark_the_active_mechanism():
    mock = MockApi(
        FakeClock(), lambda request: json_response(fixture("harness", "auth_settings_v2"))
    )
    batch = await SsoCollector(harness_api(mock), ENDPOINTS, "acct1").collect(None)
    settings = {s.sso_type: s for s in batch.records if isinstance(s, SsoSetting)}
    saml = settings["SAML"]
    assert (saml.id, saml.display_name, saml.origin) == (
        "aB3dE5fG7hI9jK1lM3nO5p",
        "Entra ID (FirstGen app)",
        "login.microsoftonline.com",
    )
    assert saml.authentication_enabled
    assert not settings["USER_PASSWORD"].authentication_enabled
    assert mock.requests[0].url.path.endswith("/authentication-settings/v2")


async def test_sso_settings_fall_back_to_v1():
    def handler(request):
        if request.url.path.endswith("/v2"):
            return httpx.Response(404)
        return json_response(fixture("harness", "auth_settings_v2"))

    mock = MockApi(FakeClock(), handler)
    batch = await SsoCollector(harness_api(mock), ENDPOINTS, "acct1").collect(None)
    assert len(batch.records) == 2


async def test_role_assignments_are_read_at_every_scope():
    def handler(request):
        path = request.url.path
        if path.endswith("/organizations"):
            return json_response(
                {
                    "status": "SUCCESS",
                    "data": {
                        "totalPages": 1,
                        "content": [{"organization": {"identifier": "default"}}],
                    },
                }
            )
        if path.endswith("/projects"):
            return json_response(
                {
                    "status": "SUCCESS",
                    "data": {
                        "totalPages": 1,
                        "content": [
                            {"project": {"orgIdentifier": "default", "identifier": "payments"}}
                        ],
                    },
                }
            )
        assert json.loads(request.content) == {"principalTypeFilter": ["USER_GROUP"]}
        if "projectIdentifier" in request.url.params:
            row = fixture("harness", "role_assignments_account")
            item = row["data"]["content"][0]
            item["roleAssignment"]["identifier"] = "in_project"
            item["roleAssignment"]["principal"]["scopeLevel"] = None
            item["scope"] = {"orgIdentifier": "default", "projectIdentifier": "payments"}
            return json_response(row)
        if "orgIdentifier" in request.url.params:
            return json_response(
                {"status": "SUCCESS", "data": {"totalPages": 0, "content": [], "empty": True}}
            )
        return json_response(fixture("harness", "role_assignments_account"))

    mock = MockApi(FakeClock(), handler)
    batch = await RolesCollector(harness_api(mock), ENDPOINTS, "acct1").collect(None)
    bindings = {b.identifier: b for b in batch.records if isinstance(b, RoleAssignment)}
    assert bindings["role_assignment_Q3vX9kLm2PzR7tYb1WcN"].scope == "account"
    project = bindings["in_project"]
    assert (project.scope, project.principal_scope) == ("org/default/project/payments", "project")
    filters = [r for r in mock.requests if r.url.path.endswith("/roleassignments/filter")]
    assert len(filters) == 3
    assert all(r.url.path.startswith("/gateway/authz/api/") for r in filters)
