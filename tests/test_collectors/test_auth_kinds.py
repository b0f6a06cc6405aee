"""Certificate, managed-identity and Azure CLI sign-in, end to end against the simulated tenant.

Each kind goes through azure-identity unchanged, over real loopback HTTP(S), into a collector
poll saved by the runner. What cannot exist here is played by the simulator (the managed-identity
endpoint an Azure host provides) or by a stand-in program (the Azure CLI), never by a mock of
azure-identity.
"""

from __future__ import annotations

import logging
import re
import socket
import traceback
from collections.abc import Iterator

import pytest

from collectors.base import AuthFailed
from collectors.config import GraphConnection, PollingConfig, build_collectors
from collectors.runner import poll_once
from collectors.simulator import ManualClock, SimulatedTenant
from store.cache import Cache
from store.models import PollRun
from tests.simulated_tenant import graph_with

from .credentials import (
    AZURE_CLI_APP_ID,
    Certificate,
    clear_managed_identity_env,
    install_fake_az,
    make_certificate,
)


@pytest.fixture(scope="module")
def tenant() -> Iterator[SimulatedTenant]:
    with SimulatedTenant("incident", seed=7, clock=ManualClock()) as running:
        yield running


@pytest.fixture(scope="module")
def registered(tenant: SimulatedTenant) -> Certificate:
    """A certificate uploaded to the app registration."""
    certificate = make_certificate("scimwatch-registered")
    tenant.register_certificate(certificate.cert_pem)
    return certificate


@pytest.fixture(scope="module")
def stranger() -> Certificate:
    """A certificate the app registration has never seen."""
    return make_certificate("scimwatch-stranger")


@pytest.fixture(autouse=True)
def _clean(tenant: SimulatedTenant, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    clear_managed_identity_env(monkeypatch)
    tenant.faults.reset()
    tenant.faults.rate_limits_enabled = False
    yield
    tenant.faults.reset()


async def poll_jobs(graph: GraphConnection, tenant: SimulatedTenant, cache: Cache) -> PollRun:
    """One poll of the provisioning jobs, through the same factory and runner the app uses."""
    built = build_collectors(
        graph,
        None,
        PollingConfig(request_deadline=20.0),
        clock=tenant.scenario.clock.now,
        reporting_rate=(1000, 1.0),
    )
    try:
        (jobs,) = [c for c in built.collectors if c.source == "graph.jobs"]
        return await poll_once(jobs, cache)
    finally:
        await built.aclose()


async def failed_poll(graph: GraphConnection, tenant: SimulatedTenant, cache: Cache) -> str:
    """Poll expecting AuthFailed; the message, checked against the failed PollRun saved."""
    with pytest.raises(AuthFailed) as caught:
        await poll_jobs(graph, tenant, cache)
    last = cache.last_poll("graph.jobs")
    assert last is not None
    assert not last.ok
    assert last.error_kind == "auth"
    assert last.error == str(caught.value)
    return str(caught.value)


# ---------------------------------------------------------------------------- certificate


@pytest.mark.parametrize(
    ("file_format", "password"),
    [("pem", None), ("pem", b"correct horse battery staple"), ("pfx", b"pfx-password")],
)
async def test_a_registered_certificate_signs_in_and_the_poll_succeeds(
    tenant, registered, cache, tmp_path, file_format, password
):
    if file_format == "pem":
        path = registered.write_pem(tmp_path / "graph.pem", password)
    else:
        path = registered.write_pfx(tmp_path / "graph.pfx", password)
    graph = graph_with(
        tenant,
        auth_kind="certificate",
        certificate_path=path,
        certificate_password=password.decode() if password else None,
    )
    poll_run = await poll_jobs(graph, tenant, cache)
    assert poll_run.ok
    assert cache.count("sync_jobs") > 0


async def test_an_unregistered_certificate_fails_with_entras_reason(
    tenant, registered, stranger, cache, tmp_path
):
    path = stranger.write_pem(tmp_path / "graph.pem")
    graph = graph_with(tenant, auth_kind="certificate", certificate_path=path)
    message = await failed_poll(graph, tenant, cache)
    assert "AADSTS700027" in message
    assert "The key was not found" in message
    assert message.startswith("graph: no token from Entra (certificate):")


async def test_a_wrong_certificate_password_fails_clearly_without_echoing_it(
    tenant, registered, cache, tmp_path
):
    path = registered.write_pem(tmp_path / "graph.pem", b"the-right-password")
    graph = graph_with(
        tenant,
        auth_kind="certificate",
        certificate_path=path,
        certificate_password="a-wrong-password",
    )
    message = await failed_poll(graph, tenant, cache)
    assert f"cannot load the certificate {path}" in message
    assert "password" in message.lower()
    assert "a-wrong-password" not in message
    assert "the-right-password" not in message


async def test_a_missing_certificate_file_fails_clearly(tenant, cache, tmp_path):
    path = tmp_path / "nowhere.pem"
    graph = graph_with(tenant, auth_kind="certificate", certificate_path=path)
    message = await failed_poll(graph, tenant, cache)
    assert message == f"graph: cannot read the certificate {path}: No such file or directory"


async def test_the_key_password_and_tokens_reach_neither_logs_nor_cache_nor_errors(
    tenant, registered, stranger, cache, tmp_path, caplog
):
    """What signs in (key, password) and what the sign-in sends and gets back stays secret.

    The client assertions are the ones the simulated login endpoint received and the access
    tokens the ones it issued: the very strings scimwatch held, looked for verbatim (and by
    signature, the part no other text can share) in every record logged at any level, the
    errors with their chained causes as a crash would print them, and the cache's files.
    """
    password = "s3cret-Pa55word-for-the-key"
    caplog.set_level(logging.DEBUG)
    good = registered.write_pem(tmp_path / "good.pem", password.encode())
    bad = stranger.write_pem(tmp_path / "bad.pem", password.encode())
    assertions_before = len(tenant.client_assertions_received())
    tokens_before = len(tenant.access_tokens_issued())
    errors = []
    for path, secret in ((good, password), (bad, password), (good, "wrong-" + password)):
        graph = graph_with(
            tenant, auth_kind="certificate", certificate_path=path, certificate_password=secret
        )
        try:
            await poll_jobs(graph, tenant, cache)
        except AuthFailed as error:
            errors.append("".join(traceback.format_exception(error)))  # as a crash prints it
    assert len(errors) == 2
    # The good and the stranger's certificate signed one each; a wrong password sends none.
    assertions = tenant.client_assertions_received()[assertions_before:]
    (access_token,) = tenant.access_tokens_issued()[tokens_before:]
    assert len(assertions) == 2
    cache.close()
    stored = b"".join(p.read_bytes() for p in tmp_path.glob("cache.db*"))
    logged = caplog.text + "\n".join(errors)
    signatures = [jwt.rpartition(".")[2] for jwt in (*assertions, access_token)]
    secrets = (password, *registered.key_material(), *stranger.key_material())
    for secret in (*secrets, *assertions, access_token, *signatures):
        assert secret not in logged
        assert secret.encode() not in stored
    assert not re.search(r"eyJ[\w-]+\.[\w-]+\.", logged)  # nor any other JWT


# ---------------------------------------------------------------------------- managed identity


def managed_identity_graph(tenant: SimulatedTenant, client_id: str) -> GraphConnection:
    return graph_with(tenant, auth_kind="managed_identity", client_id=client_id)


async def test_app_service_managed_identity_signs_in_and_the_poll_succeeds(
    tenant, cache, monkeypatch
):
    for name, value in tenant.managed_identity_env().items():
        monkeypatch.setenv(name, value)
    graph = managed_identity_graph(tenant, tenant.managed_identity_client_id)
    seen = len(tenant.identity.requests)
    assert (await poll_jobs(graph, tenant, cache)).ok
    (asked,) = tenant.identity.requests[seen:]
    assert asked.path == "/msi/token"
    assert asked.params == {
        "api-version": "2019-08-01",
        "resource": tenant.graph_url,
        "client_id": tenant.managed_identity_client_id,
    }
    assert asked.identity_header == tenant.identity_host.identity_header


async def test_a_wrong_identity_header_fails_clearly(tenant, cache, monkeypatch):
    monkeypatch.setenv("IDENTITY_ENDPOINT", tenant.managed_identity_env()["IDENTITY_ENDPOINT"])
    monkeypatch.setenv("IDENTITY_HEADER", "not-the-header")
    graph = managed_identity_graph(tenant, tenant.managed_identity_client_id)
    message = await failed_poll(graph, tenant, cache)
    assert message.startswith("graph: no token from the managed identity endpoint:")
    assert "X-IDENTITY-HEADER is not valid" in message
    assert "not-the-header" not in message


async def test_an_identity_not_attached_to_the_host_fails_clearly(tenant, cache, monkeypatch):
    for name, value in tenant.managed_identity_env().items():
        monkeypatch.setenv(name, value)
    graph = managed_identity_graph(tenant, "11111111-2222-4333-8444-555555555555")
    message = await failed_poll(graph, tenant, cache)
    assert "Unable to load the proper Managed Identity" in message


async def test_an_unreachable_identity_endpoint_fails_clearly(tenant, cache, monkeypatch):
    """azure-identity retries a refused connection a few times (its backoff, ~5 s) first."""
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    monkeypatch.setenv("IDENTITY_ENDPOINT", f"http://127.0.0.1:{port}/msi/token")
    monkeypatch.setenv("IDENTITY_HEADER", tenant.identity_host.identity_header)
    graph = managed_identity_graph(tenant, tenant.managed_identity_client_id)
    message = await failed_poll(graph, tenant, cache)
    assert message.startswith("graph: no token from the managed identity endpoint:")
    assert f"127.0.0.1:{port}" in message


async def test_vm_managed_identity_through_imds_signs_in(tenant, cache, monkeypatch):
    """IMDS lives at 169.254.169.254; azure-identity's pod-identity override points it here."""
    monkeypatch.setenv("AZURE_POD_IDENTITY_AUTHORITY_HOST", tenant.identity_url)
    graph = managed_identity_graph(tenant, tenant.managed_identity_client_id)
    seen = len(tenant.identity.requests)
    assert (await poll_jobs(graph, tenant, cache)).ok
    (asked,) = tenant.identity.requests[seen:]
    assert asked.path == "/metadata/identity/oauth2/token"
    assert asked.params["api-version"] == "2018-02-01"
    assert asked.metadata_header == "true"


async def test_vm_without_that_identity_fails_clearly(tenant, cache, monkeypatch):
    monkeypatch.setenv("AZURE_POD_IDENTITY_AUTHORITY_HOST", tenant.identity_url)
    graph = managed_identity_graph(tenant, "11111111-2222-4333-8444-555555555555")
    message = await failed_poll(graph, tenant, cache)
    assert "The requested identity has not been assigned to this resource" in message
    assert "Identity not found" in message


# ---------------------------------------------------------------------------- Azure CLI


async def test_azure_cli_token_is_used_and_the_poll_succeeds(tenant, cache, tmp_path, monkeypatch):
    token = tenant.issue_access_token(AZURE_CLI_APP_ID)
    az = install_fake_az(tmp_path, access_token=token, tenant_id=tenant.tenant_id)
    monkeypatch.setenv("PATH", str(az.bin_dir))
    graph = graph_with(tenant, auth_kind="azure_cli")
    assert (await poll_jobs(graph, tenant, cache)).ok
    assert az.calls() == [
        [
            "account",
            "get-access-token",
            "--output",
            "json",
            "--resource",
            tenant.graph_url,
            "--tenant",
            tenant.tenant_id,
        ]
    ]


async def test_azure_cli_missing_fails_clearly(tenant, cache, tmp_path, monkeypatch):
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    message = await failed_poll(graph_with(tenant, auth_kind="azure_cli"), tenant, cache)
    assert message == "graph: no token from the Azure CLI: Azure CLI not found on path"


async def test_azure_cli_signed_out_fails_clearly(tenant, cache, tmp_path, monkeypatch):
    az = install_fake_az(tmp_path, access_token="", tenant_id=tenant.tenant_id, mode="signed_out")
    monkeypatch.setenv("PATH", str(az.bin_dir))
    message = await failed_poll(graph_with(tenant, auth_kind="azure_cli"), tenant, cache)
    assert "Please run 'az login'" in message
    assert len(az.calls()) == 1


async def test_a_cli_token_the_graph_rejects_is_asked_again_then_fails(
    tenant, cache, tmp_path, monkeypatch
):
    """First token, the refresh after the 401, then a rebuilt credential (az said the same)."""
    az = install_fake_az(tmp_path, access_token="eyJhbGciOi.not.valid", tenant_id="x")
    monkeypatch.setenv("PATH", str(az.bin_dir))
    graph = graph_with(tenant, auth_kind="azure_cli")
    message = await failed_poll(graph, tenant, cache)
    assert message.startswith("graph: the access token was rejected")
    assert "eyJhbGciOi.not.valid" not in message
    assert len(az.calls()) == 3


@pytest.mark.parametrize("auth_kind", ["client_secret", "certificate", "azure_cli"])
async def test_a_malformed_tenant_id_fails_clearly(
    tenant, registered, cache, tmp_path, monkeypatch, auth_kind
):
    monkeypatch.setenv("PATH", str(tmp_path))
    graph = graph_with(
        tenant,
        tenant_id="contoso onmicrosoft com",
        auth_kind=auth_kind,
        client_secret=tenant.client_secret,
        certificate_path=registered.write_pem(tmp_path / "graph.pem"),
    )
    message = await failed_poll(graph, tenant, cache)
    assert message == "graph: tenant_id must be the Directory (tenant) ID GUID or a verified domain"
