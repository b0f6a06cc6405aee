"""`scimwatch doctor`: test both connections and every permission, and say what to change.

Like Entra's "Test Connection", but each finding names what was found and what to do about it.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import pkcs12
from pydantic import SecretStr

from collectors.auth import AsyncTokenCredential, GraphAuth, HarnessAuth, make_graph_auth
from collectors.base import AuthFailed, CollectorError, Forbidden, UnexpectedPayload
from collectors.config import (
    AuthKind,
    GraphConnection,
    HarnessConnection,
    make_client,
    origin_of,
)
from collectors.http import ApiClient, HttpPolicy

FindingStatus = Literal["ok", "warn", "fail"]

_TIMEOUT = httpx.Timeout(20.0)
"""Every phase of a check's request (doctor answers sooner than a collector waits)."""

_CONSENT = (
    "In the Entra admin center: App registrations > (scimwatch's app) > API permissions > "
    "Add a permission > Microsoft Graph > Application permissions > {permission}, then "
    "'Grant admin consent'."
)


@dataclass(frozen=True)
class Finding:
    """One check's verdict."""

    check: str
    status: FindingStatus
    found: str
    """What was found, in plain words."""
    fix: str = ""
    """What to change (empty when all is well)."""


# AADSTS codes seen when client-credential sign-in fails (graph-api.md 5.3).
_AADSTS_ADVICE = {
    "AADSTS7000215": "The client secret is wrong: use the secret's Value (shown once when it "
    "was created), not its Secret ID, or create a new secret.",
    "AADSTS7000222": "The client secret has expired: create a new one under Certificates & "
    "secrets and update scimwatch's secret.",
    "AADSTS700016": "No application with this client id exists in this tenant: check "
    "graph.client_id (Application (client) ID) and graph.tenant_id.",
    "AADSTS90002": "The tenant was not found: check graph.tenant_id (Directory (tenant) ID) "
    "and the cloud (login_url).",
    "AADSTS900023": "The tenant id is malformed: use the Directory (tenant) ID GUID or a "
    "verified domain.",
    "AADSTS700027": "The certificate was not accepted: upload its public key to the app "
    "registration (Certificates & secrets) and check certificate_path.",
    "AADSTS700024": "The certificate's sign-in was outside its valid time: check this machine's "
    "clock (it must be within a few minutes of real time).",
    "AADSTS700023": "The certificate's sign-in named another authority: check graph.tenant_id "
    "and the cloud (login_url).",
    "AADSTS700021": "The certificate's sign-in named another application: check "
    "graph.client_id (Application (client) ID).",
    "AADSTS50027": "Entra could not read the certificate's sign-in: check that certificate_path "
    "holds an RSA key and its certificate.",
}

# What azure-identity says when a token cannot be had without Entra being asked.
_NO_TOKEN_ADVICE: dict[str, str] = {
    "cannot load the certificate": (
        "Check certificate_password (SCIMWATCH_GRAPH__CERTIFICATE_PASSWORD or the keyring) and "
        "that the file holds the RSA private key with its certificate."
    ),
    "Azure CLI not found": (
        "Install the Azure CLI and sign in with `az login --tenant <tenant id>` as the user "
        "scimwatch runs as, or choose another graph.auth_kind."
    ),
    "az login": (
        "Sign the Azure CLI in as the user scimwatch runs as: `az login --tenant <tenant id>`."
    ),
    "Unable to load the proper Managed Identity": (
        "This host has no managed identity with that client id: attach the user-assigned "
        "identity to it, or set graph.client_id to the Client ID of one that is attached."
    ),
    "not been assigned to this resource": (
        "This VM has no managed identity with that client id: assign the identity to it "
        "(Identity > User assigned), or fix graph.client_id."
    ),
    "no response from the IMDS endpoint": (
        "Nothing answered at the Azure VM metadata endpoint (IMDS): this host is not an Azure "
        "VM with a managed identity. Run scimwatch on the Azure host whose identity holds the "
        "Graph permissions, or choose another graph.auth_kind."
    ),
    "No managed identity endpoint": (
        "This host offers no managed identity: run scimwatch on the Azure host whose identity "
        "holds the Graph permissions, or choose another graph.auth_kind."
    ),
}

_NO_TOKEN_FIX: dict[AuthKind, str] = {
    "client_secret": "Check tenant_id, client_id, the secret, login_url and ca_bundle.",
    "certificate": "Check tenant_id, client_id, certificate_path and certificate_password, and "
    "that the certificate is uploaded to the app registration (Certificates & secrets).",
    "managed_identity": "Check that this host has the managed identity (graph.client_id is its "
    "Client ID) and that the endpoint named above answers.",
    "azure_cli": "Run `az account get-access-token --resource <graph_url>` as the user "
    "scimwatch runs as and fix what it reports.",
}

_EXPIRY_WARNING = timedelta(days=30)


async def diagnose(
    graph: GraphConnection | None,
    harness: HarnessConnection | None,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
    credential_factory: Callable[[], AsyncTokenCredential] | None = None,
) -> list[Finding]:
    """Check both connections and every permission scimwatch needs.

    Args:
        graph: the Entra tenant to check, or None.
        harness: the Harness account to check, or None.
        transport: an httpx transport instead of the network (tests only).
        credential_factory: a credential instead of azure-identity's (tests only).

    Returns:
        The findings, in the order the checks ran.
    """
    findings: list[Finding] = []
    if graph is not None:
        findings += await _diagnose_graph(graph, transport, credential_factory)
    if harness is not None:
        findings += await _diagnose_harness(harness, transport)
    return findings


async def _diagnose_graph(
    graph: GraphConnection,
    transport: httpx.AsyncBaseTransport | None,
    credential_factory: Callable[[], AsyncTokenCredential] | None,
) -> list[Finding]:
    graph.register_secrets()
    findings = _credential_findings(graph)
    if any(finding.status == "fail" for finding in findings):
        return findings
    auth = make_graph_auth(graph, credential_factory, patient=False)
    try:
        token_finding = await _token_finding(auth, graph.auth_kind)
        findings.append(token_finding)
        if token_finding.status == "fail":
            return findings
        async with make_client(graph.ca_bundle, auth, transport, timeout=_TIMEOUT) as client:
            api = ApiClient(client, service="graph", policy=HttpPolicy(max_attempts=2, deadline=30))
            findings += await _graph_permissions(api, graph)
            for app, sp_id in graph.apps.items():
                findings.append(await _service_principal(api, graph, app, sp_id))
        return findings
    finally:
        await auth.aclose()


async def _token_finding(auth: GraphAuth, kind: AuthKind) -> Finding:
    try:
        await auth.token()
    except AuthFailed as error:
        text = str(error)
        for code, advice in _AADSTS_ADVICE.items():
            if f"{code}:" in text:
                return Finding(
                    "graph.token", "fail", f"Entra refused the sign-in ({code}).", advice
                )
        for marker, advice in _NO_TOKEN_ADVICE.items():
            if marker in text:
                return Finding("graph.token", "fail", f"No token: {text}", advice)
        return Finding("graph.token", "fail", f"No token: {text}", _NO_TOKEN_FIX[kind])
    return Finding("graph.token", "ok", "A Graph access token was obtained.")


def _credential_findings(graph: GraphConnection) -> list[Finding]:
    """What can be told about the configured credential before asking for a token."""
    if graph.auth_kind == "certificate":
        return [_certificate_finding(graph)]
    if graph.auth_kind == "managed_identity":
        return [_managed_identity_finding(graph)]
    if graph.auth_kind == "azure_cli":
        return [_azure_cli_finding()]
    return []


def _certificate_finding(graph: GraphConnection) -> Finding:
    check = "graph.certificate"
    upload = (
        "Create a certificate, upload its public part to the app registration (Certificates "
        "& secrets) and point graph.certificate_path at the file with its private key."
    )
    if graph.certificate_path is None:
        return Finding(check, "fail", "auth_kind is certificate but no certificate_path.", upload)
    try:
        certificate = _public_certificate(graph.certificate_path, graph.certificate_password)
    except OSError as error:
        found = f"Cannot read {graph.certificate_path}: {error.strerror or 'unreadable'}."
        return Finding(check, "fail", found, "Check graph.certificate_path and its permissions.")
    except ValueError:
        found = f"{graph.certificate_path} holds no certificate scimwatch can read."
        return Finding(
            check,
            "fail",
            found,
            "Use a PEM file with the private key and the certificate, or a PKCS#12 (.pfx) "
            "file with graph.certificate_password set.",
        )
    thumbprint = certificate.fingerprint(hashes.SHA1()).hex().upper()
    expires = certificate.not_valid_after_utc
    found = (
        f"{certificate.subject.rfc4514_string()}, thumbprint {thumbprint}, valid until "
        f"{expires:%Y-%m-%d}."
    )
    now = datetime.now(UTC)
    if expires <= now:
        return Finding(check, "fail", f"Expired: {found}", upload)
    if expires - now < _EXPIRY_WARNING:
        return Finding(check, "warn", f"Expires soon: {found}", upload)
    return Finding(check, "ok", found)


def _public_certificate(path: Path, password: SecretStr | None) -> x509.Certificate:
    """The certificate in a PEM or PKCS#12 file (its key is only decrypted for PKCS#12)."""
    data = path.read_bytes()
    if b"-----BEGIN CERTIFICATE-----" in data:
        return x509.load_pem_x509_certificates(data)[0]
    secret = password.get_secret_value().encode() if password else None
    _, certificate, _ = pkcs12.load_key_and_certificates(data, secret)
    if certificate is None:
        raise ValueError("no certificate in the PKCS#12 file")
    return certificate


def _managed_identity_finding(graph: GraphConnection) -> Finding:
    host, endpoint = _managed_identity_host(os.environ)
    identity = (
        f"user-assigned identity {graph.client_id}"
        if graph.client_id
        else "the system-assigned identity"
    )
    return Finding(
        "graph.managed_identity", "ok", f"{host} endpoint {endpoint}; asking for {identity}."
    )


def _managed_identity_host(env: Mapping[str, str]) -> tuple[str, str]:
    """Which host's endpoint azure-identity will use, by the variables the host sets."""
    endpoint = env.get("IDENTITY_ENDPOINT", "")
    if endpoint and env.get("IDENTITY_HEADER"):
        if env.get("IDENTITY_SERVER_THUMBPRINT"):
            return "Service Fabric", endpoint
        return "App Service (or Functions, Container Apps)", endpoint
    if endpoint and env.get("IMDS_ENDPOINT"):
        return "Azure Arc", endpoint
    if env.get("MSI_ENDPOINT"):
        host = "Azure Machine Learning" if env.get("MSI_SECRET") else "Cloud Shell"
        return host, env["MSI_ENDPOINT"]
    if env.get("AZURE_FEDERATED_TOKEN_FILE") and env.get("AZURE_TENANT_ID"):
        return "Workload identity (AKS)", env["AZURE_FEDERATED_TOKEN_FILE"]
    imds = env.get("AZURE_POD_IDENTITY_AUTHORITY_HOST", "http://169.254.169.254")
    return "No managed-identity variables are set: Azure VM (IMDS)", imds


def _azure_cli_finding() -> Finding:
    path = shutil.which("az")
    if path is None:
        return Finding(
            "graph.azure_cli",
            "fail",
            "The Azure CLI (az) is not on PATH.",
            _NO_TOKEN_ADVICE["Azure CLI not found"],
        )
    return Finding(
        "graph.azure_cli",
        "ok",
        f"Azure CLI at {path}: Graph sees the account signed in to it (`az login`).",
    )


async def _graph_permissions(api: ApiClient, graph: GraphConnection) -> list[Finding]:
    root = graph.api_root
    sp_id = graph.nextgen_sp_id
    probes: list[tuple[str, str, dict[str, str | int]]] = [
        ("AuditLog.Read.All", f"{root}/auditLogs/provisioning", {"$top": 1}),
        ("Directory.Read.All", f"{root}/users", {"$top": 1, "$select": "id"}),
        ("Synchronization.Read.All", f"{root}/servicePrincipals/{sp_id}/synchronization/jobs", {}),
        (
            "Application.Read.All",
            f"{root}/servicePrincipals/{sp_id}/appRoleAssignedTo",
            {"$top": 1},
        ),
    ]
    findings = []
    for permission, url, params in probes:
        findings.append(
            await _probe(
                f"graph.permission.{permission}",
                _getter(api, url, params, permission),
                ok=f"{permission}: the endpoint answered.",
                forbidden_fix=_CONSENT.format(permission=permission),
            )
        )
    return findings


def _getter(
    api: ApiClient, url: str, params: dict[str, str | int], permission: str
) -> Callable[[], Awaitable[Any]]:
    async def call() -> Any:
        return await api.get_json(url, params=params, permission=permission)

    return call


async def _probe(
    check: str,
    call: Callable[[], Awaitable[Any]],
    *,
    ok: str,
    forbidden_fix: str,
    unauthorized_fix: str = "",
) -> Finding:
    try:
        await call()
    except Forbidden as error:
        if "licence" in error.permission:
            return Finding(
                check,
                "fail",
                str(error),
                "Provisioning logs need an Entra ID P1/P2 licence; if the tenant has one, also "
                "grant Directory.Read.All (the reporting API checks the licence through it).",
            )
        return Finding(check, "fail", str(error), forbidden_fix)
    except AuthFailed as error:
        return Finding(check, "fail", str(error), unauthorized_fix or "Check the credential.")
    except UnexpectedPayload as error:
        if error.status == 404:
            return Finding(check, "fail", str(error), "Check the configured ids and URL.")
        return Finding(check, "warn", str(error), "The endpoint answered unexpectedly.")
    except CollectorError as error:
        return Finding(check, "fail", str(error), "Check the URL, the network and ca_bundle.")
    return Finding(check, "ok", ok)


async def _service_principal(
    api: ApiClient, graph: GraphConnection, app: str, sp_id: str
) -> Finding:
    check = f"graph.service_principal.{app}"
    try:
        body = await api.get_json(
            f"{graph.api_root}/servicePrincipals/{sp_id}",
            params={"$select": "id,appId,displayName,appDisplayName"},
            permission="Application.Read.All",
        )
    except UnexpectedPayload as error:
        if error.status in (400, 404):
            return Finding(
                check,
                "fail",
                f"No service principal with object id {sp_id}.",
                f"Set graph.{app}_sp_id to the Object ID on the Harness enterprise application's "
                "Overview page (Enterprise applications, not App registrations).",
            )
        return Finding(check, "warn", str(error), "")
    except CollectorError as error:
        return Finding(check, "fail", str(error), "Grant Application.Read.All (admin consent).")
    names = [str(body.get(key) or "") for key in ("displayName", "appDisplayName")]
    name = next((value for value in names if value), "?")
    if any("harness" in value.lower() for value in names):
        return Finding(check, "ok", f"{sp_id} is '{name}'.")
    return Finding(
        check,
        "warn",
        f"{sp_id} is '{name}', which does not look like a Harness app.",
        f"Check graph.{app}_sp_id: it should be the Object ID of the Harness enterprise app "
        "that provisions (NextGen) or signs users in (FirstGen).",
    )


async def _diagnose_harness(
    harness: HarnessConnection, transport: httpx.AsyncBaseTransport | None
) -> list[Finding]:
    endpoints = harness.endpoints
    findings = [_scim_url_finding(harness), _token_account_finding(harness)]
    auth = HarnessAuth(harness.token, allowed_origin=origin_of(endpoints.gateway))
    expired = (
        "The token is invalid, expired, or for another account: create a new API key token "
        "(a service account with Users and User Groups permissions) and update scimwatch."
    )
    async with make_client(harness.ca_bundle, auth, transport, timeout=_TIMEOUT) as client:
        api = ApiClient(client, service="harness", policy=HttpPolicy(max_attempts=2, deadline=30))
        account: dict[str, str | int] = {"accountIdentifier": harness.account_id}
        checks: list[tuple[str, str, dict[str, str | int], str]] = [
            ("harness.scim.users", f"{endpoints.scim}/Users", {"count": 1}, "core_user_view"),
            (
                "harness.scim.groups",
                f"{endpoints.scim}/Groups",
                {"count": 1},
                "core_usergroup_view",
            ),
            (
                "harness.ng.user_groups",
                f"{endpoints.ng}/user-groups",
                {**account, "pageSize": 1},
                "core_usergroup_view",
            ),
        ]
        for check, url, params, permission in checks:
            findings.append(
                await _probe(
                    check,
                    _getter(api, url, params, permission),
                    ok=f"{url.rsplit('/', 1)[-1]}: the token can read it.",
                    forbidden_fix=f"Give the token's user or service account {permission} "
                    "(Users / User Groups view; SCIM also needs manage to provision).",
                    unauthorized_fix=expired,
                )
            )
    return findings


def _scim_url_finding(harness: HarnessConnection) -> Finding:
    endpoints = harness.endpoints
    if endpoints.firstgen_scim:
        return Finding(
            "harness.scim_url",
            "fail",
            f"{harness.base_url} is a FirstGen SCIM URL (/gateway/api/scim/...).",
            "Use the NextGen SCIM URL .../gateway/ng/api/scim/account/<account id>, both here "
            "and as the Tenant URL in the Entra app's provisioning settings (harness-api.md 1.1).",
        )
    return Finding("harness.scim_url", "ok", f"NextGen SCIM at {endpoints.scim}.")


def _token_account_finding(harness: HarnessConnection) -> Finding:
    parts = harness.token.get_secret_value().split(".")
    if len(parts) == 4 and parts[0] in ("pat", "sat"):
        if parts[1] == harness.account_id:
            return Finding("harness.token_account", "ok", "The token is for this account.")
        return Finding(
            "harness.token_account",
            "fail",
            f"The token is for account {parts[1]}, not {harness.account_id}.",
            "Use a token created in this account, or fix harness.account_id.",
        )
    if len(parts) == 3 and parts[0] in ("pat", "sat"):
        return Finding(
            "harness.token_account",
            "warn",
            "An old-format token: its account cannot be checked.",
            "Prefer a current token (pat.<account>.<id>.<secret>).",
        )
    return Finding(
        "harness.token_account",
        "warn",
        "The token is not a Harness API key token (pat./sat.).",
        "Use a Harness NextGen API key token; FirstGen keys do not work with NextGen SCIM.",
    )
