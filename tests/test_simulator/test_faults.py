"""Every fault knob, switched at run time, as a real client sees it over loopback HTTPS."""

from __future__ import annotations

import email.utils
import gzip

import httpx
import pytest

from collectors.simulator import SimulatedTenant

LOGS = "/v1.0/auditLogs/provisioning"


def jobs_url(tenant: SimulatedTenant) -> str:
    return f"{tenant.graph_url}/v1.0/servicePrincipals/{tenant.nextgen_sp_id}/synchronization/jobs"


@pytest.mark.parametrize(
    ("mode", "check"),
    [
        ("seconds", lambda v: v == "2"),
        ("fractional", lambda v: v == "2.000"),
        ("http-date", lambda v: email.utils.parsedate_to_datetime(v) is not None),
        ("absent", lambda v: v is None),
    ],
)
def test_throttle_with_each_retry_after_shape(
    tenant: SimulatedTenant, graph: httpx.Client, mode: str, check
) -> None:
    tenant.faults.set("graph.provisioning", "throttle", times=1, retry_after=mode)
    throttled = graph.get(tenant.graph_url + LOGS)
    assert throttled.status_code == 429
    assert throttled.json()["error"]["code"] == "TooManyRequests"
    assert check(throttled.headers.get("Retry-After"))
    assert graph.get(tenant.graph_url + LOGS).status_code == 200  # times=1: the next request passes


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_server_errors(tenant: SimulatedTenant, graph: httpx.Client, status: int) -> None:
    tenant.faults.set("graph.jobs", "status", times=1, status=status)
    assert graph.get(jobs_url(tenant)).status_code == status
    assert graph.get(jobs_url(tenant)).status_code == 200


def test_harness_429_has_no_retry_after(tenant: SimulatedTenant, client: httpx.Client) -> None:
    tenant.faults.set("harness.scim.users", "throttle", times=1, retry_after="absent")
    url = f"{tenant.harness_url}/gateway/ng/api/scim/account/{tenant.account_id}/Users"
    response = client.get(url, headers={"Authorization": f"Bearer {tenant.harness_token}"})
    assert response.status_code == 429
    assert "retry-after" not in response.headers


def test_connection_reset(tenant: SimulatedTenant, graph: httpx.Client) -> None:
    tenant.faults.set("graph.jobs", "reset", times=1)
    with pytest.raises((httpx.ReadError, httpx.RemoteProtocolError, httpx.ConnectError)):
        graph.get(jobs_url(tenant))
    assert graph.get(jobs_url(tenant)).status_code == 200


def test_reset_mid_body(tenant: SimulatedTenant, graph: httpx.Client) -> None:
    tenant.faults.set("graph.provisioning", "reset", times=1, after_bytes=100)
    with pytest.raises((httpx.ReadError, httpx.RemoteProtocolError)):
        graph.get(tenant.graph_url + LOGS)


def test_truncated_body(tenant: SimulatedTenant, graph: httpx.Client) -> None:
    tenant.faults.set("graph.provisioning", "truncate", times=1)
    with pytest.raises(httpx.RemoteProtocolError):
        graph.get(tenant.graph_url + LOGS)


def test_slow_drip_trips_a_read_timeout(tenant: SimulatedTenant, graph: httpx.Client) -> None:
    tenant.faults.set("graph.jobs", "drip", times=1, chunk=8, interval=0.5)
    with pytest.raises(httpx.ReadTimeout):
        graph.get(jobs_url(tenant), timeout=httpx.Timeout(5, read=0.2))


def test_hang_trips_a_read_timeout(tenant: SimulatedTenant, graph: httpx.Client) -> None:
    tenant.faults.set("graph.jobs", "hang", times=1, hang_seconds=5)
    with pytest.raises(httpx.ReadTimeout):
        graph.get(jobs_url(tenant), timeout=httpx.Timeout(5, read=0.3))


def test_gzip_bomb_inflates_far_beyond_its_wire_size(
    tenant: SimulatedTenant, graph: httpx.Client
) -> None:
    tenant.faults.set("graph.provisioning", "gzip_bomb", times=1, size=20 * 1024 * 1024)
    with graph.stream("GET", tenant.graph_url + LOGS) as response:
        assert response.headers["content-encoding"] == "gzip"
        wire = b"".join(response.iter_raw())
    assert len(wire) < 200_000
    assert len(gzip.decompress(wire)) > 20 * 1024 * 1024


def test_oversized_page(tenant: SimulatedTenant, graph: httpx.Client) -> None:
    tenant.faults.set("graph.provisioning", "oversized", times=1, size=8 * 1024 * 1024)
    response = graph.get(tenant.graph_url + LOGS)
    assert len(response.content) > 8 * 1024 * 1024
    assert isinstance(response.json()["value"], list)


def test_html_200(tenant: SimulatedTenant, graph: httpx.Client) -> None:
    tenant.faults.set("graph.provisioning", "html", times=1)
    response = graph.get(tenant.graph_url + LOGS)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")


def test_next_link_to_another_host_and_what_reaches_it(
    tenant: SimulatedTenant, graph: httpx.Client
) -> None:
    tenant.faults.set("graph.provisioning", "foreign_next_link", times=1)
    link = graph.get(tenant.graph_url + LOGS, params={"$top": "2"}).json()["@odata.nextLink"]
    assert link.startswith("https://localhost:")
    with httpx.Client(verify=graph._transport._pool._ssl_context) as naive:  # type: ignore[attr-defined]
        naive.get(link)
    seen = [r for r in tenant.faults.requests if r.host.startswith("localhost")]
    assert seen
    assert not seen[-1].authorized


def test_duplicated_items_across_pages(tenant: SimulatedTenant, graph: httpx.Client) -> None:
    first = graph.get(tenant.graph_url + LOGS, params={"$top": "5"}).json()
    tenant.faults.set("graph.provisioning", "duplicate_items", times=1, duplicates=2)
    second = graph.get(first["@odata.nextLink"]).json()
    assert [e["id"] for e in second["value"][:2]] == [e["id"] for e in first["value"][-2:]]


def test_expired_skiptoken(tenant: SimulatedTenant, graph: httpx.Client) -> None:
    link = graph.get(tenant.graph_url + LOGS, params={"$top": "5"}).json()["@odata.nextLink"]
    tenant.faults.set("graph.provisioning", "expired_skiptoken", times=1)
    response = graph.get(link)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "BadRequest"
    assert graph.get(link).status_code == 200


def test_token_expiring_mid_paging(tenant: SimulatedTenant, graph: httpx.Client) -> None:
    tenant.faults.set("graph.provisioning", "token_expiry", times=1, after_pages=1)
    link = graph.get(tenant.graph_url + LOGS, params={"$top": "5"}).json()["@odata.nextLink"]
    expired = graph.get(link)
    assert expired.status_code == 401
    assert expired.json()["error"]["code"] == "InvalidAuthenticationToken"


def test_wildcard_route_and_clear(tenant: SimulatedTenant, client: httpx.Client) -> None:
    tenant.faults.set("*", "status", status=503)
    url = f"{tenant.harness_url}/gateway/ng/api/user-groups"
    assert client.get(url, params={"accountIdentifier": tenant.account_id}).status_code == 503
    tenant.faults.clear()
    assert (
        client.get(
            url,
            params={"accountIdentifier": tenant.account_id},
            headers={"x-api-key": tenant.harness_token},
        ).status_code
        == 200
    )
