"""The simulated managed-identity endpoints a host gives its code (Starlette, plain HTTP).

Two wire formats, as azure-identity's ManagedIdentityCredential speaks them:

- App Service / Functions / Container Apps: ``GET $IDENTITY_ENDPOINT?api-version=2019-08-01
  &resource=...`` with the ``X-IDENTITY-HEADER: $IDENTITY_HEADER`` secret; the answer carries
  ``expires_on`` as epoch seconds (a string), ``resource``, ``token_type`` and ``client_id``.
- Azure VMs (IMDS): ``GET http://169.254.169.254/metadata/identity/oauth2/token?api-version=
  2018-02-01&resource=...`` with ``Metadata: true``; every number in the answer is a string, and
  a resource with no (or not this) identity answers 400 ``invalid_request``.

A user-assigned identity is chosen with ``client_id`` (or ``object_id``, ``mi_res_id`` /
``msi_res_id``); without one the system-assigned identity answers. The access tokens come from
the simulated login, so the simulated Graph accepts them. The exact error texts of App Service
are not documented (UNCONFIRMED); IMDS's 400 ``Identity not found`` is the documented one.
"""

from __future__ import annotations

import secrets
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

APP_SERVICE_PATH = "/msi/token"
IMDS_PATH = "/metadata/identity/oauth2/token"
_SELECTORS = ("client_id", "object_id", "principal_id", "mi_res_id", "msi_res_id")


@dataclass(frozen=True)
class IdentityRequest:
    """A token request as the endpoint saw it (for assertions about the client)."""

    path: str
    params: dict[str, str]
    identity_header: str | None
    metadata_header: str | None


@dataclass
class ManagedIdentityHost:
    """What the host knows: its identities and the secret it put in IDENTITY_HEADER."""

    system_assigned: str | None
    """Client id of the system-assigned identity, or None when it is off."""
    user_assigned: set[str] = field(default_factory=set)
    """Client ids of the user-assigned identities attached to the host."""
    identity_header: str = field(default_factory=lambda: secrets.token_hex(16))


class ManagedIdentityApp:
    """The App Service and IMDS token endpoints, issuing tokens through `issue`."""

    def __init__(self, host: ManagedIdentityHost, issue: Callable[[str], dict[str, Any]]) -> None:
        self.host = host
        self._issue = issue
        self._lock = threading.Lock()
        self.requests: list[IdentityRequest] = []
        """Every token request, oldest first."""
        self.asgi = Starlette(
            routes=[
                Route(APP_SERVICE_PATH, self.app_service, name="identity.app_service"),
                Route(IMDS_PATH, self.imds, name="identity.imds"),
            ]
        )

    def _record(self, request: Request) -> dict[str, str]:
        params = dict(request.query_params)
        with self._lock:
            self.requests.append(
                IdentityRequest(
                    request.url.path,
                    params,
                    request.headers.get("x-identity-header"),
                    request.headers.get("metadata"),
                )
            )
        return params

    def _identity(self, params: dict[str, str]) -> str | None:
        chosen = [params[name] for name in _SELECTORS if params.get(name)]
        if not chosen:
            return self.host.system_assigned
        # Naming the system-assigned identity by its client id is not documented to work.
        return chosen[0] if chosen[0] in self.host.user_assigned else None

    async def app_service(self, request: Request) -> Response:
        params = self._record(request)
        sent = request.headers.get("x-identity-header", "")
        if not secrets.compare_digest(sent.encode(), self.host.identity_header.encode()):
            return _app_service_error(401, "Unauthorized: the X-IDENTITY-HEADER is not valid.")
        if params.get("api-version") != "2019-08-01" or not params.get("resource"):
            return _app_service_error(400, "The api-version or resource parameter is invalid.")
        client_id = self._identity(params)
        if client_id is None:
            return _app_service_error(400, "Unable to load the proper Managed Identity.")
        issued = self._issue(client_id)
        return JSONResponse(
            {
                "access_token": issued["access_token"],
                # Epoch seconds of real time: clients cache by it, as they would in Azure.
                "expires_on": str(int(time.time()) + int(issued["expires_in"])),
                "resource": params["resource"],
                "token_type": "Bearer",
                "client_id": client_id,
            }
        )

    async def imds(self, request: Request) -> Response:
        params = self._record(request)
        if request.headers.get("metadata", "").lower() != "true":
            return _imds_error("Required metadata header not specified")
        if params.get("api-version") != "2018-02-01" or not params.get("resource"):
            return _imds_error("Invalid api-version or resource")
        client_id = self._identity(params)
        if client_id is None:
            return _imds_error("Identity not found")
        issued = self._issue(client_id)
        now, lifetime = int(time.time()), int(issued["expires_in"])
        return JSONResponse(
            {
                "access_token": issued["access_token"],
                "client_id": client_id,
                "expires_in": str(lifetime),
                "expires_on": str(now + lifetime),
                "ext_expires_in": str(lifetime),
                "not_before": str(now),
                "resource": params["resource"],
                "token_type": "Bearer",
            }
        )


def _app_service_error(status: int, message: str) -> Response:
    body = {"statusCode": status, "message": message, "correlationId": str(uuid.uuid4())}
    return JSONResponse(body, status)


def _imds_error(description: str) -> Response:
    return JSONResponse({"error": "invalid_request", "error_description": description}, 400)
