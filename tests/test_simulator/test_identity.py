"""The simulated managed-identity endpoints over real loopback HTTP, in both wire formats."""

from __future__ import annotations

import time

import httpx

from collectors.simulator import SimulatedTenant

from .conftest import tls


def app_service(tenant: SimulatedTenant, **params: str) -> httpx.Response:
    env = tenant.managed_identity_env()
    return httpx.get(
        env["IDENTITY_ENDPOINT"],
        params={"api-version": "2019-08-01", "resource": tenant.graph_url} | params,
        headers={"X-IDENTITY-HEADER": env["IDENTITY_HEADER"]},
    )


def test_app_service_answers_with_a_token_the_graph_accepts(tenant: SimulatedTenant) -> None:
    response = app_service(tenant, client_id=tenant.managed_identity_client_id)
    body = response.json()
    assert response.status_code == 200
    assert set(body) == {"access_token", "expires_on", "resource", "token_type", "client_id"}
    assert body["resource"] == tenant.graph_url
    assert body["client_id"] == tenant.managed_identity_client_id
    assert int(body["expires_on"]) > time.time()
    jobs = httpx.get(
        f"{tenant.graph_url}/v1.0/servicePrincipals/{tenant.nextgen_sp_id}/synchronization/jobs",
        headers={"Authorization": f"Bearer {body['access_token']}"},
        verify=tls(tenant),
    )
    assert jobs.status_code == 200


def test_app_service_without_a_client_id_uses_the_system_assigned_identity(
    tenant: SimulatedTenant,
) -> None:
    body = app_service(tenant).json()
    assert body["client_id"] == tenant.identity_host.system_assigned


def test_app_service_refuses_a_wrong_header_and_an_unknown_identity(
    tenant: SimulatedTenant,
) -> None:
    wrong = httpx.get(
        tenant.managed_identity_env()["IDENTITY_ENDPOINT"],
        params={"api-version": "2019-08-01", "resource": tenant.graph_url},
        headers={"X-IDENTITY-HEADER": "nope"},
    )
    assert wrong.status_code == 401
    unknown = app_service(tenant, client_id="11111111-2222-4333-8444-555555555555")
    assert unknown.status_code == 400
    assert unknown.json()["message"] == "Unable to load the proper Managed Identity."


def test_imds_needs_the_metadata_header_and_answers_in_strings(tenant: SimulatedTenant) -> None:
    url = f"{tenant.identity_url}/metadata/identity/oauth2/token"
    params = {"api-version": "2018-02-01", "resource": tenant.graph_url}
    refused = httpx.get(url, params=params)
    assert refused.status_code == 400
    assert refused.json() == {
        "error": "invalid_request",
        "error_description": "Required metadata header not specified",
    }
    body = httpx.get(url, params=params, headers={"Metadata": "true"}).json()
    assert body["token_type"] == "Bearer"
    assert all(isinstance(body[key], str) for key in ("expires_in", "expires_on", "not_before"))
