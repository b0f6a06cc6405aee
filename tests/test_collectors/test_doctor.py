"""doctor against the simulated tenant: the right verdict and advice for each misconfiguration."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from pydantic import SecretStr

from collectors.doctor import Finding, diagnose
from collectors.simulator import ManualClock, SimulatedTenant
from tests.simulated_tenant import connections, graph_with

from .credentials import (
    AZURE_CLI_APP_ID,
    clear_managed_identity_env,
    install_fake_az,
    make_certificate,
)


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


# ---------------------------------------------------------------------------- other auth kinds


@pytest.fixture(scope="module")
def registered(tenant):
    certificate = make_certificate("doctor-registered")
    tenant.register_certificate(certificate.cert_pem)
    return certificate


@pytest.fixture
def _no_managed_identity(monkeypatch):
    clear_managed_identity_env(monkeypatch)


@pytest.mark.parametrize("file_format", ["pem", "pfx"])
async def test_registered_certificate_is_all_ok_and_its_thumbprint_shown(
    tenant, registered, tmp_path, file_format
):
    write = registered.write_pem if file_format == "pem" else registered.write_pfx
    path = write(tmp_path / f"graph.{file_format}", b"doctor-key-password")
    graph = graph_with(
        tenant,
        auth_kind="certificate",
        certificate_path=path,
        certificate_password="doctor-key-password",
    )
    findings = await diagnose(graph, None)
    assert [f for f in findings if f.status != "ok"] == []
    assert registered.sha1_thumbprint in by_check(findings)["graph.certificate"].found
    assert "doctor-key-password" not in " ".join(f.found + f.fix for f in findings)


async def test_unregistered_certificate_gets_the_upload_advice(tenant, registered, tmp_path):
    stranger = make_certificate("doctor-stranger")
    graph = graph_with(
        tenant,
        auth_kind="certificate",
        certificate_path=stranger.write_pem(tmp_path / "graph.pem"),
    )
    findings = by_check(await diagnose(graph, None))
    assert findings["graph.certificate"].status == "ok"
    assert stranger.sha1_thumbprint in findings["graph.certificate"].found
    assert findings["graph.token"].status == "fail"
    assert "AADSTS700027" in findings["graph.token"].found
    assert "Certificates & secrets" in findings["graph.token"].fix


async def test_a_certificate_about_to_expire_is_a_warning(tenant, tmp_path):
    soon = make_certificate("doctor-soon", days=10)
    tenant.register_certificate(soon.cert_pem)
    graph = graph_with(
        tenant, auth_kind="certificate", certificate_path=soon.write_pem(tmp_path / "g.pem")
    )
    findings = by_check(await diagnose(graph, None))
    assert findings["graph.certificate"].status == "warn"
    assert findings["graph.certificate"].found.startswith("Expires soon:")
    assert findings["graph.token"].status == "ok"


async def test_an_unreadable_certificate_stops_before_signing_in(tenant, tmp_path):
    path = tmp_path / "missing.pem"
    graph = graph_with(tenant, auth_kind="certificate", certificate_path=path)
    (finding,) = await diagnose(graph, None)
    assert finding.check == "graph.certificate"
    assert finding.status == "fail"
    assert str(path) in finding.found


@pytest.mark.usefixtures("_no_managed_identity")
async def test_managed_identity_names_the_host_endpoint_and_identity(tenant, monkeypatch):
    for name, value in tenant.managed_identity_env().items():
        monkeypatch.setenv(name, value)
    graph = graph_with(
        tenant, auth_kind="managed_identity", client_id=tenant.managed_identity_client_id
    )
    findings = await diagnose(graph, None)
    assert [f for f in findings if f.status != "ok"] == []
    found = by_check(findings)["graph.managed_identity"].found
    assert found.startswith("App Service")
    assert tenant.identity_url in found
    assert tenant.managed_identity_client_id in found


@pytest.mark.usefixtures("_no_managed_identity")
async def test_managed_identity_not_on_this_host_gets_advice(tenant, monkeypatch):
    for name, value in tenant.managed_identity_env().items():
        monkeypatch.setenv(name, value)
    graph = graph_with(
        tenant, auth_kind="managed_identity", client_id="11111111-2222-4333-8444-555555555555"
    )
    token = by_check(await diagnose(graph, None))["graph.token"]
    assert token.status == "fail"
    assert "attach the user-assigned identity" in token.fix


@pytest.mark.usefixtures("_no_managed_identity")
async def test_managed_identity_without_variables_says_imds(tenant, monkeypatch):
    monkeypatch.setenv("AZURE_POD_IDENTITY_AUTHORITY_HOST", tenant.identity_url)
    graph = graph_with(
        tenant, auth_kind="managed_identity", client_id=tenant.managed_identity_client_id
    )
    findings = by_check(await diagnose(graph, None))
    assert "Azure VM (IMDS)" in findings["graph.managed_identity"].found
    assert findings["graph.token"].status == "ok"


async def test_azure_cli_signed_in_is_all_ok(tenant, tmp_path, monkeypatch):
    token = tenant.issue_access_token(AZURE_CLI_APP_ID)
    az = install_fake_az(tmp_path, access_token=token, tenant_id=tenant.tenant_id)
    monkeypatch.setenv("PATH", str(az.bin_dir))
    findings = await diagnose(graph_with(tenant, auth_kind="azure_cli"), None)
    assert [f for f in findings if f.status != "ok"] == []
    assert str(az.bin_dir / "az") in by_check(findings)["graph.azure_cli"].found


async def test_azure_cli_missing_is_reported_with_install_advice(tenant, tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    (finding,) = await diagnose(graph_with(tenant, auth_kind="azure_cli"), None)
    assert finding.check == "graph.azure_cli"
    assert finding.status == "fail"
    assert "az login" in finding.fix


async def test_azure_cli_signed_out_gets_login_advice(tenant, tmp_path, monkeypatch):
    az = install_fake_az(tmp_path, access_token="", tenant_id="", mode="signed_out")
    monkeypatch.setenv("PATH", str(az.bin_dir))
    token = by_check(await diagnose(graph_with(tenant, auth_kind="azure_cli"), None))["graph.token"]
    assert token.status == "fail"
    assert token.fix.startswith("Sign the Azure CLI in")


async def test_a_wrong_certificate_password_gets_password_advice(tenant, registered, tmp_path):
    path = registered.write_pem(tmp_path / "graph.pem", b"the-right-password")
    graph = graph_with(
        tenant, auth_kind="certificate", certificate_path=path, certificate_password="wrong-one"
    )
    token = by_check(await diagnose(graph, None))["graph.token"]
    assert token.status == "fail"
    assert token.fix.startswith("Check certificate_password")
    assert "wrong-one" not in token.found + token.fix


@pytest.fixture
def silent_imds() -> Iterator[tuple[str, list[str]]]:
    """An IMDS stand-in on loopback that fails every request (500), and the paths it got."""
    asked: list[str] = []

    class Failing(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            asked.append(self.path)
            self.send_response(500)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Failing)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", asked
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.usefixtures("_no_managed_identity")
async def test_doctor_asks_a_failing_imds_once_and_says_what_it_means(
    tenant, monkeypatch, silent_imds
):
    """azure-identity retries IMDS five times with back-off (~25 s off Azure); doctor asks once."""
    url, asked = silent_imds
    monkeypatch.setenv("AZURE_POD_IDENTITY_AUTHORITY_HOST", url)
    graph = graph_with(tenant, auth_kind="managed_identity", client_id="")
    token = by_check(await diagnose(graph, None))["graph.token"]
    assert token.status == "fail"
    assert len(asked) == 1
    assert asked[0].startswith("/metadata/identity/oauth2/token")
