"""Credentials as `httpx.Auth`: Entra tokens through azure-identity, Harness API-key headers.

Both auths attach credentials per request and only to the configured origin, so a nextLink or
redirect to another host can never carry a token (reference/reliability.md 3.7, EXP-7): such a
request raises `ForeignHost` before anything is sent.
"""

from __future__ import annotations

import asyncio
import string
import time
from collections.abc import AsyncGenerator, Callable, Generator
from typing import Any, Protocol

import httpx
from pydantic import SecretStr

from collectors.base import AuthFailed, ForeignHost, sanitize_text
from collectors.config import AuthKind, GraphConnection, origin_of


class AccessTokenLike(Protocol):
    """What `get_token` returns (azure.core.credentials.AccessToken has these)."""

    @property
    def token(self) -> str: ...

    @property
    def expires_on(self) -> int: ...


class AsyncTokenCredential(Protocol):
    """The part of an azure-identity async credential scimwatch uses."""

    async def get_token(self, *scopes: str, **kwargs: Any) -> Any:
        """A token for `scopes` (an AccessToken)."""
        ...

    async def close(self) -> None:
        """Release the credential's transport."""
        ...


CREDENTIAL_NAMES: dict[AuthKind, str] = {
    "client_secret": "Entra (client secret)",
    "certificate": "Entra (certificate)",
    "managed_identity": "the managed identity endpoint",
    "azure_cli": "the Azure CLI",
}
"""Where the token comes from for each auth kind, as error messages name it."""


def make_graph_credential(graph: GraphConnection, *, patient: bool = True) -> AsyncTokenCredential:
    """An azure-identity async credential for the configured kind.

    Not `patient` (doctor): a managed identity asks its endpoint once. azure-identity retries
    the Azure VM endpoint (IMDS) five times with back-off, ~25 s on a host that is not an
    Azure VM before it says so; a collector wants those retries, a diagnosis an answer.

    Custom clouds and the simulator need `disable_instance_discovery` and the CA bundle as
    `connection_verify` (reference/graph-api.md section 10, checked on this machine).

    Raises:
        AuthFailed: the configuration cannot make a credential (no secret, a malformed tenant
            id, an unreadable certificate or a wrong password); the message says which and
            never holds a secret.
    """
    try:
        return _credential(graph, patient=patient)
    except (ValueError, TypeError) as error:
        # azure-identity's constructors (and cryptography's, under CertificateCredential)
        # refuse settings they cannot use with these, before any request is made.
        raise AuthFailed(_refusal(graph, error)) from error


def _credential(graph: GraphConnection, *, patient: bool) -> AsyncTokenCredential:
    from azure.identity.aio import (
        AzureCliCredential,
        ClientSecretCredential,
        ManagedIdentityCredential,
    )

    options: dict[str, Any] = {}
    if graph.ca_bundle is not None:
        options["connection_verify"] = str(graph.ca_bundle)
    authority = graph.login_url.rstrip("/")
    identity_options = dict(options, authority=authority, disable_instance_discovery=True)
    if graph.auth_kind == "client_secret":
        if graph.client_secret is None:
            raise AuthFailed("graph: auth_kind is client_secret but no client secret is set")
        return ClientSecretCredential(
            graph.tenant_id,
            graph.client_id,
            graph.client_secret.get_secret_value(),
            **identity_options,
        )
    if graph.auth_kind == "certificate":
        return _certificate_credential(graph, identity_options)
    if graph.auth_kind == "managed_identity":
        # client_id selects a user-assigned identity; without one the host's own answers.
        if not patient:
            options["retry_total"] = 0
        return ManagedIdentityCredential(client_id=graph.client_id or None, **options)
    return AzureCliCredential(tenant_id=graph.tenant_id)


def _certificate_credential(
    graph: GraphConnection, identity_options: dict[str, Any]
) -> AsyncTokenCredential:
    from azure.identity.aio import CertificateCredential

    path = graph.certificate_path
    if path is None:
        raise AuthFailed("graph: auth_kind is certificate but no certificate path is set")
    password = graph.certificate_password
    try:
        return CertificateCredential(
            graph.tenant_id,
            graph.client_id,
            str(path),
            password=password.get_secret_value() if password else None,
            **identity_options,
        )
    except OSError as error:
        raise AuthFailed(
            f"graph: cannot read the certificate {path}: {error.strerror or 'unreadable'}"
        ) from error


_TENANT_ID_CHARACTERS = frozenset(string.ascii_letters + string.digits + "-.")
"""What azure-identity accepts in a tenant id (its `validate_tenant_id`)."""


def _refusal(graph: GraphConnection, error: ValueError | TypeError) -> str:
    """What a credential's constructor refused, in words that say what to fix."""
    tenant_id = graph.tenant_id
    if graph.auth_kind != "managed_identity" and (
        (not tenant_id and graph.auth_kind != "azure_cli")  # the CLI's own tenant otherwise
        or not set(tenant_id) <= _TENANT_ID_CHARACTERS
    ):
        return "graph: tenant_id must be the Directory (tenant) ID GUID or a verified domain"
    if graph.auth_kind == "certificate":
        # cryptography's own words ("Bad decrypt. Incorrect password?", "Password was not
        # given but private key is encrypted") name the problem without the key or password.
        return (
            f"graph: cannot load the certificate {graph.certificate_path} (a PEM or PKCS#12 "
            f"file with the certificate and its RSA private key; check certificate_password): "
            f"{sanitize_text(str(error), limit=160)}"
        )
    return f"graph: {graph.auth_kind.replace('_', ' ')}: {sanitize_text(str(error))}"


def _refuse_foreign(request: httpx.Request, allowed_origin: str) -> None:
    if origin_of(str(request.url)) != allowed_origin or request.url.userinfo:
        raise ForeignHost(
            f"refused to send credentials to {request.url.host}", url_host=request.url.host
        )


class GraphAuth(httpx.Auth):
    """Bearer tokens from an Entra credential: cached until near expiry, refreshed on a 401.

    A 401 gets exactly one refresh and one retry of the same request; if the credential hands
    back the same token, the credential is rebuilt so its own cache cannot pin a token the
    service has revoked (reference/reliability.md 1.7).
    """

    requires_response_body = False

    def __init__(
        self,
        credential_factory: Callable[[], AsyncTokenCredential],
        *,
        scope: str,
        allowed_origin: str,
        refresh_margin: float = 300.0,
        clock: Callable[[], float] = time.time,
        credential_name: str = "Entra",
    ) -> None:
        self._factory = credential_factory
        self._credential_name = credential_name
        self._credential: AsyncTokenCredential | None = None
        self._scope = scope
        self._allowed_origin = allowed_origin
        self._margin = refresh_margin
        self._clock = clock
        self._token: str | None = None
        self._expires_on = 0.0
        self._lock = asyncio.Lock()
        self.tokens_fetched = 0
        """How many tokens were obtained (tests assert reuse)."""

    def sync_auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response]:
        """Collectors are async only."""
        raise RuntimeError("GraphAuth only works with httpx.AsyncClient")

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        """Attach a token; on a 401, refresh once and resend."""
        _refuse_foreign(request, self._allowed_origin)
        token = await self.token()
        request.headers["Authorization"] = f"Bearer {token}"
        response = yield request
        if response.status_code == 401:
            fresh = await self.token(rejected=token)
            request.headers["Authorization"] = f"Bearer {fresh}"
            yield request

    async def token(self, *, rejected: str | None = None) -> str:
        """A valid access token; `rejected` names one the service just refused."""
        async with self._lock:
            if rejected is None:
                if self._token is None or self._clock() >= self._expires_on - self._margin:
                    await self._fetch()
            elif self._token == rejected:
                await self._fetch()
                if self._token == rejected:
                    await self._reset_credential()
                    await self._fetch()
            assert self._token is not None
            return self._token

    async def _fetch(self) -> None:
        from azure.core.exceptions import AzureError

        if self._credential is None:
            self._credential = self._factory()
        try:
            access = await self._credential.get_token(self._scope)
        except AzureError as error:
            raise AuthFailed(
                f"graph: no token from {self._credential_name}: {_first_line(error)}"
            ) from error
        self._token = str(access.token)
        self._expires_on = float(access.expires_on)
        self.tokens_fetched += 1

    async def _reset_credential(self) -> None:
        if self._credential is not None:
            await self._credential.close()
        self._credential = None

    async def aclose(self) -> None:
        """Close the underlying credential's transport."""
        await self._reset_credential()


def make_graph_auth(
    graph: GraphConnection,
    credential_factory: Callable[[], AsyncTokenCredential] | None = None,
    *,
    patient: bool = True,
) -> GraphAuth:
    """The `GraphAuth` of `graph`: its cloud's scope and origin, a credential of its kind.

    Args:
        graph: the Entra tenant.
        credential_factory: a credential instead of azure-identity's (tests only).
        patient: see `make_graph_credential` (doctor is not).
    """
    return GraphAuth(
        credential_factory or (lambda: make_graph_credential(graph, patient=patient)),
        scope=graph.scope,
        allowed_origin=origin_of(graph.graph_url),
        credential_name=CREDENTIAL_NAMES[graph.auth_kind],
    )


def _first_line(error: Exception) -> str:
    """The reason in an azure-identity error, without the trace ids and repeats that follow.

    Entra's text ends in Trace ID / Correlation ID lines; azure-core formats an endpoint's
    error as ``(code) message`` (``(None)`` when it has no code) then Code: and Message: lines.
    """
    text = str(error).strip()
    first = text.splitlines()[0] if text else type(error).__name__
    return sanitize_text(first.removeprefix("(None) "))


class HarnessAuth(httpx.Auth):
    """The Harness API key: ``Authorization: Bearer`` for SCIM, ``x-api-key`` elsewhere.

    NextGen SCIM reads only the Authorization header; NextGen REST wants x-api-key
    (reference/harness-api.md sections 1.2 and 3.1).
    """

    def __init__(self, token: SecretStr, *, allowed_origin: str) -> None:
        self._token = token
        self._allowed_origin = allowed_origin

    def sync_auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response]:
        """Collectors are async only."""
        raise RuntimeError("HarnessAuth only works with httpx.AsyncClient")

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        """Attach the token in the header the endpoint reads."""
        _refuse_foreign(request, self._allowed_origin)
        secret = self._token.get_secret_value()
        if "/scim/" in request.url.path:
            request.headers["Authorization"] = f"Bearer {secret}"
        else:
            request.headers["x-api-key"] = secret
        yield request
