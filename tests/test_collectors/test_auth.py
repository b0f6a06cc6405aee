"""Credentials: tokens cached and refreshed, headers per Harness API, never to a foreign host."""

from __future__ import annotations

import httpx
import pytest
from pydantic import SecretStr

from collectors.auth import GraphAuth, HarnessAuth, make_graph_credential
from collectors.base import AuthFailed, ForeignHost
from collectors.config import GraphConnection, origin_of

from .credentials import clear_managed_identity_env
from .helpers import GRAPH, HARNESS, FakeClock, FakeCredential, MockApi, graph_api, json_response


async def test_token_is_fetched_once_and_reused():
    clock = FakeClock()
    credential = FakeCredential(clock.monotonic)
    mock = MockApi(clock, lambda request: json_response({}))
    api, _auth = graph_api(mock, credential=credential)
    for _ in range(5):
        await api.get_json(f"{GRAPH}/x")
    assert credential.calls == 1
    assert {request.headers["authorization"] for request in mock.requests} == {"Bearer token-1"}


async def test_token_is_refreshed_near_expiry():
    clock = FakeClock()
    credential = FakeCredential(clock.monotonic, lifetime=600)
    mock = MockApi(clock, lambda request: json_response({}))
    api, _ = graph_api(mock, credential=credential)
    await api.get_json(f"{GRAPH}/x")
    clock.advance(400)  # within the 300 s refresh margin of a 600 s token
    await api.get_json(f"{GRAPH}/x")
    assert [r.headers["authorization"] for r in mock.requests] == [
        "Bearer token-1",
        "Bearer token-2",
    ]


async def test_a_401_refreshes_once_and_resends_the_same_request():
    clock = FakeClock()
    credential = FakeCredential(clock.monotonic)

    def handler(request):
        if request.headers["authorization"] == "Bearer token-1":
            return httpx.Response(401, json={"error": {"code": "InvalidAuthenticationToken"}})
        return json_response({"ok": 1})

    mock = MockApi(clock, handler)
    api, _ = graph_api(mock, credential=credential)
    assert await api.get_json(f"{GRAPH}/x?a=1") == {"ok": 1}
    assert [str(r.url) for r in mock.requests] == [f"{GRAPH}/x?a=1"] * 2
    assert credential.calls == 2


async def test_a_credential_that_keeps_a_revoked_token_is_rebuilt():
    """azure-identity caches tokens itself; a revoked one must not stick."""
    clock = FakeClock()
    built: list[FakeCredential] = []

    def factory():
        credential = FakeCredential(
            clock.monotonic, tokens=["old", "old"] if not built else ["new"]
        )
        built.append(credential)
        return credential

    auth = GraphAuth(factory, scope="s", allowed_origin=origin_of(GRAPH), clock=clock.monotonic)
    assert await auth.token() == "old"
    assert await auth.token(rejected="old") == "new"
    assert built[0].closed
    assert len(built) == 2
    await auth.aclose()


async def test_graph_auth_refuses_a_foreign_host():
    clock = FakeClock()
    credential = FakeCredential(clock.monotonic)
    mock = MockApi(clock, lambda request: json_response({}))
    auth = GraphAuth(lambda: credential, scope="s", allowed_origin=origin_of(GRAPH))
    async with httpx.AsyncClient(transport=mock.transport(), auth=auth) as client:
        with pytest.raises(ForeignHost):
            await client.get("https://evil.test/v1.0/x")
    assert mock.requests == []
    assert credential.calls == 0


async def test_harness_auth_uses_bearer_for_scim_and_x_api_key_for_rest():
    clock = FakeClock()
    mock = MockApi(clock, lambda request: json_response({}))
    auth = HarnessAuth(SecretStr("pat.acct.id.secret"), allowed_origin=origin_of(HARNESS))
    async with httpx.AsyncClient(transport=mock.transport(), auth=auth) as client:
        await client.get(f"{HARNESS}/ng/api/scim/account/acct/Users")
        await client.get(f"{HARNESS}/ng/api/user-groups")
        with pytest.raises(ForeignHost):
            await client.get("https://other.test/ng/api/user-groups")
    scim, rest = mock.requests
    assert scim.headers["authorization"] == "Bearer pat.acct.id.secret"
    assert "x-api-key" not in scim.headers
    assert rest.headers["x-api-key"] == "pat.acct.id.secret"
    assert "authorization" not in rest.headers


@pytest.mark.parametrize(
    ("settings", "environment", "message"),
    [
        (
            {"client_id": ""},
            {},
            "graph: client secret: client_id should be the id of a Microsoft Entra application",
        ),
        (
            {"auth_kind": "managed_identity", "client_id": ""},
            # An AKS pod's workload identity, but no client id to ask for.
            {
                "AZURE_AUTHORITY_HOST": "https://login.microsoftonline.com",
                "AZURE_TENANT_ID": "contoso.onmicrosoft.com",
                "AZURE_FEDERATED_TOKEN_FILE": "/var/run/secrets/token",
            },
            "graph: managed identity: Workload identity was selected but no client ID was "
            "provided.",
        ),
    ],
    ids=["client secret without a client id", "workload identity without a client id"],
)
def test_settings_a_credential_refuses_fail_as_auth_failed(
    monkeypatch, settings, environment, message
):
    """azure-identity's ValueError from a credential's constructor becomes AuthFailed."""
    clear_managed_identity_env(monkeypatch)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    graph = GraphConnection.model_validate(
        {
            "tenant_id": "contoso.onmicrosoft.com",
            "client_id": "00000000-0000-4000-8000-000000000001",
            "client_secret": "a-secret",
            "nextgen_sp_id": "sp",
        }
        | settings
    )
    with pytest.raises(AuthFailed) as caught:
        make_graph_credential(graph)
    assert str(caught.value).startswith(message)
    assert isinstance(caught.value.__cause__, ValueError)
