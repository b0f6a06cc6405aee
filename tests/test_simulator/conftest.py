"""Fixtures: one simulated tenant per module on a manual clock, faults reset between tests."""

from __future__ import annotations

import ssl
from collections.abc import Iterator

import httpx
import pytest

from collectors.simulator import ManualClock, SimulatedTenant


def tls(tenant: SimulatedTenant) -> ssl.SSLContext:
    """A client TLS context trusting only the tenant's throwaway CA."""
    return ssl.create_default_context(cafile=str(tenant.ca_bundle))


@pytest.fixture(scope="module")
def tenant() -> Iterator[SimulatedTenant]:
    with SimulatedTenant("incident", seed=7, clock=ManualClock()) as running:
        yield running


@pytest.fixture(autouse=True)
def _clean_faults(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    if "tenant" in request.fixturenames:
        request.getfixturevalue("tenant").faults.reset()


@pytest.fixture
def client(tenant: SimulatedTenant) -> Iterator[httpx.Client]:
    with httpx.Client(verify=tls(tenant), timeout=10) as http:
        yield http


def request_token(
    tenant: SimulatedTenant, client: httpx.Client, **credential: str
) -> httpx.Response:
    """A client-credentials token request for the tenant's app, proving it with `credential`.

    `credential` is the form's secret or assertion fields (none, to send no credential).
    """
    return client.post(
        f"{tenant.graph_url}/{tenant.tenant_id}/oauth2/v2.0/token",
        data={
            "client_id": tenant.client_id,
            **credential,
            "grant_type": "client_credentials",
            "scope": "https://graph.microsoft.com/.default",
        },
    )


def graph_token(tenant: SimulatedTenant, client: httpx.Client) -> str:
    response = request_token(tenant, client, client_secret=tenant.client_secret)
    response.raise_for_status()
    return str(response.json()["access_token"])


@pytest.fixture
def graph(tenant: SimulatedTenant, client: httpx.Client) -> httpx.Client:
    """A client authorised for the simulated Graph, with the reporting limit off."""
    tenant.faults.rate_limits_enabled = False
    client.headers["Authorization"] = "Bearer " + graph_token(tenant, client)
    return client
