"""The simulated Microsoft Graph and Entra login endpoints (Starlette).

Wire formats follow reference/graph-api.md: the OpenID discovery document and v2.0 token endpoint
MSAL needs (section 10), which takes a client secret or a certificate's signed client assertion
and refuses either with Entra's AADSTS error JSON (5.1-5.3); the provisioning log with
``$filter``/``$top``/``$orderby`` and ``@odata.nextLink`` + ``$skiptoken`` (section 1),
synchronization jobs with PascalCase codes and ``0001-01-01`` sentinels (section 2),
appRoleAssignedTo, group members (section 4), users and service principals, Graph's error JSON
(6.3) and 429 at 5 requests / 10 s per app on the reporting API (6.2).
"""

from __future__ import annotations

import base64
import json
import math
import secrets
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlencode

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from collectors.simulator.events import EventRecord, render_event
from collectors.simulator.faults import Fault, FaultController, FaultMiddleware
from collectors.simulator.model import AppIntegration, EntraGroup, EntraUser, Execution, JobState
from collectors.simulator.odata import FilterError, compile_filter
from collectors.simulator.scenario import Scenario

ODATA_JSON = (
    "application/json;odata.metadata=minimal;odata.streaming=true;"
    "IEEE754Compatible=false;charset=utf-8"
)
SENTINEL = "0001-01-01T00:00:00Z"
LOG_PAGE_DEFAULT = 50  # undocumented (graph-api.md U1)
LOG_PAGE_MAX = 1000
DIRECTORY_PAGE_DEFAULT = 100
DIRECTORY_PAGE_MAX = 999
SCAN_BUDGET = 50_000
REPORT_LIMIT = (5, 10.0)
JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
ASSERTION_SKEW = 300.0
"""Seconds of clock skew allowed on a client assertion's exp and nbf."""
_LOG_FILTER = {
    "id": "eq contains",
    "activityDateTime": "eq gt lt",
    "tenantId": "eq contains",
    "jobId": "eq contains",
    "changeId": "eq contains",
    "cycleId": "eq contains",
    "provisioningAction": "eq contains",
    "durationInMilliseconds": "eq gt lt",
    "provisioningStatusInfo/status": "eq contains",
    "sourceSystem/displayName": "eq contains",
    "targetSystem/displayName": "eq contains",
    "sourceIdentity/identityType": "eq contains",
    "targetIdentity/identityType": "eq contains",
    "sourceIdentity/id": "eq contains",
    "targetIdentity/id": "eq contains",
    "sourceIdentity/displayName": "eq contains",
    "targetIdentity/displayName": "eq contains",
    "servicePrincipal/id": "eq contains",
    "servicePrincipal/displayName": "eq contains",
    "initiatedBy/displayName": "eq contains",
}
_USER_FILTER = {
    "id": "eq",
    "userPrincipalName": "eq startswith",
    "mail": "eq startswith",
    "displayName": "eq startswith",
    "accountEnabled": "eq",
}
_SP_FILTER = {"id": "eq", "appId": "eq", "displayName": "eq startswith"}
_READ_LOGS = {"AuditLog.Read.All"}
_READ_JOBS = {
    "Synchronization.Read.All",
    "Synchronization.ReadWrite.All",
    "Application.ReadWrite.OwnedBy",
}
_READ_APPS = {"Application.Read.All", "Application.ReadWrite.All", "Directory.Read.All"}
_READ_MEMBERS = {"GroupMember.Read.All", "Group.Read.All", "Directory.Read.All"}
_READ_USERS = {"User.Read.All", "User.ReadBasic.All", "Directory.Read.All"}


def _ops(table: Mapping[str, str], extra: Iterable[str] = ()) -> dict[str, frozenset[str]]:
    return {k: frozenset(v.split()) | frozenset(extra) for k, v in table.items()}


def sync_time(when: datetime | None) -> str:
    """Synchronization API timestamp: 7 fractional digits and ``Z`` (or the 0001 sentinel)."""
    if when is None:
        return SENTINEL
    when = when.astimezone(UTC)
    return f"{when:%Y-%m-%dT%H:%M:%S}.{when.microsecond:06d}0Z"


def iso(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class IssuedToken:
    client_id: str
    roles: frozenset[str]
    expires: float
    pages: int = 0


@dataclass
class GraphState:
    """Tokens issued by the simulated login endpoint, and the app's registered certificates."""

    tokens: dict[str, IssuedToken] = field(default_factory=dict)
    certificates: list[x509.Certificate] = field(default_factory=list)
    assertions: list[str] = field(default_factory=list)
    """Every client assertion the login endpoint received, accepted or not."""
    lock: threading.Lock = field(default_factory=threading.Lock)


class GraphError(Exception):
    """Raised inside handlers; rendered as Graph's error JSON."""

    def __init__(
        self, status: int, code: str, message: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers or {}


class GraphApp:
    """The Graph + login Starlette application bound to one scenario."""

    def __init__(self, scenario: Scenario, faults: FaultController) -> None:
        self.scenario = scenario
        self.faults = faults
        self.state = GraphState()
        self.base_url = "https://127.0.0.1"
        self.assertion_clock: Callable[[], float] = time.time
        """Epoch seconds client assertions are checked against (the client signs with real time)."""
        routes = [
            Route(
                "/{tenant}/v2.0/.well-known/openid-configuration", self.openid, name="graph.openid"
            ),
            Route("/{tenant}/oauth2/v2.0/token", self.token, methods=["POST"], name="graph.token"),
            Route("/v1.0/auditLogs/provisioning", self.provisioning, name="graph.provisioning"),
            Route(
                "/v1.0/servicePrincipals", self.service_principals, name="graph.servicePrincipals"
            ),
            Route(
                "/v1.0/servicePrincipals/{sp}",
                self.service_principal,
                name="graph.servicePrincipal",
            ),
            Route(
                "/v1.0/servicePrincipals/{sp}/synchronization/jobs", self.jobs, name="graph.jobs"
            ),
            Route(
                "/v1.0/servicePrincipals/{sp}/synchronization/jobs/", self.jobs, name="graph.jobs"
            ),
            Route(
                "/v1.0/servicePrincipals/{sp}/synchronization/jobs/{job}",
                self.job,
                name="graph.job",
            ),
            Route(
                "/v1.0/servicePrincipals/{sp}/synchronization/jobs/{job}/",
                self.job,
                name="graph.job",
            ),
            Route(
                "/v1.0/servicePrincipals/{sp}/appRoleAssignedTo",
                self.assigned_to,
                name="graph.appRoleAssignedTo",
            ),
            Route("/v1.0/groups/{group}", self.group, name="graph.group"),
            Route("/v1.0/groups/{group}/members", self.members, name="graph.members"),
            Route("/v1.0/groups/{group}/members/{cast}", self.members, name="graph.members"),
            Route(
                "/v1.0/groups/{group}/transitiveMembers",
                self.transitive,
                name="graph.transitiveMembers",
            ),
            Route(
                "/v1.0/groups/{group}/transitiveMembers/{cast}",
                self.transitive,
                name="graph.transitiveMembers",
            ),
            Route("/v1.0/users", self.users, name="graph.users"),
            Route("/v1.0/users/{user}", self.user, name="graph.user"),
        ]
        self.starlette = Starlette(routes=routes)
        self.asgi = FaultMiddleware(self.starlette, self.starlette.router, faults, "graph")

    # ------------------------------------------------------------------ plumbing

    def _headers(self, request: Request) -> dict[str, str]:
        request_id = str(uuid.uuid4())
        return {
            "request-id": request_id,
            "client-request-id": request.headers.get("client-request-id", request_id),
            "OData-Version": "4.0",
        }

    def error(self, request: Request, exc: GraphError) -> Response:
        headers = self._headers(request) | exc.headers
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S")
        inner = {
            "date": now,
            "request-id": headers["request-id"],
            "client-request-id": headers["client-request-id"],
        }
        body = {"error": {"code": exc.code, "message": exc.message, "innerError": inner}}
        return JSONResponse(body, exc.status, headers=headers)

    def ok(self, request: Request, body: Mapping[str, Any]) -> Response:
        payload = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
        return Response(payload, 200, headers=self._headers(request), media_type=ODATA_JSON)

    async def _guard(
        self, request: Request, roles: set[str], handler: Callable[[Request, IssuedToken], Response]
    ) -> Response:
        try:
            token = self._authenticate(request, roles)
            self.scenario.sync()
            with self.scenario.lock:
                return handler(request, token)
        except GraphError as exc:
            return self.error(request, exc)

    def _authenticate(self, request: Request, roles: set[str]) -> IssuedToken:
        header = request.headers.get("authorization", "")
        if not header.lower().startswith("bearer ") or not header[7:].strip():
            raise GraphError(401, "InvalidAuthenticationToken", "Access token is empty.")
        with self.state.lock:
            token = self.state.tokens.get(header[7:].strip())
        if token is None:
            raise GraphError(401, "InvalidAuthenticationToken", "Access token validation failure.")
        if token.expires <= self.scenario.clock.wall():
            raise GraphError(
                401, "InvalidAuthenticationToken", "Access token has expired or is not yet valid."
            )
        if roles and not roles & token.roles:
            raise GraphError(
                403,
                "Authorization_RequestDenied",
                "Insufficient privileges to complete the operation.",
            )
        return token

    # ------------------------------------------------------------------ login

    async def openid(self, request: Request) -> Response:
        tenant = request.path_params["tenant"]
        base = f"{self.base_url}/{tenant}"
        return JSONResponse(
            {
                "token_endpoint": f"{base}/oauth2/v2.0/token",
                "token_endpoint_auth_methods_supported": [
                    "client_secret_post",
                    "private_key_jwt",
                    "client_secret_basic",
                ],
                "jwks_uri": f"{self.base_url}/{tenant}/discovery/v2.0/keys",
                "response_modes_supported": ["query", "fragment", "form_post"],
                "subject_types_supported": ["pairwise"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
                "scopes_supported": ["openid", "profile", "email", "offline_access"],
                "issuer": f"https://login.microsoftonline.com/{self.scenario.tenant_id}/v2.0",
                "request_uri_parameter_supported": False,
                "userinfo_endpoint": "https://graph.microsoft.com/oidc/userinfo",
                "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
                "device_authorization_endpoint": f"{base}/oauth2/v2.0/devicecode",
                "http_logout_supported": True,
                "frontchannel_logout_supported": True,
                "end_session_endpoint": f"{base}/oauth2/v2.0/logout",
                "claims_supported": ["sub", "iss", "aud", "exp", "iat", "nbf", "tid"],
                "kerberos_endpoint": f"{base}/kerberos",
                "tenant_region_scope": "EU",
                "cloud_instance_name": "microsoftonline.com",
                "cloud_graph_host_name": "graph.windows.net",
                "msgraph_host": "graph.microsoft.com",
                "rbac_url": "https://pas.windows.net",
            }
        )

    def _token_error(self, status: int, error: str, code: int, text: str) -> Response:
        trace, correlation = str(uuid.uuid4()), str(uuid.uuid4())
        stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%SZ")
        description = (
            f"AADSTS{code}: {text}\r\nTrace ID: {trace}\r\n"
            f"Correlation ID: {correlation}\r\nTimestamp: {stamp}"
        )
        body = {
            "error": error,
            "error_description": description,
            "error_codes": [code],
            "timestamp": stamp,
            "trace_id": trace,
            "correlation_id": correlation,
        }
        return JSONResponse(body, status)

    async def token(self, request: Request) -> Response:
        form = parse_qs((await request.body()).decode(), keep_blank_values=True)
        fields = {k: v[0] for k, v in form.items()}
        client_id, secret = fields.get("client_id", ""), fields.get("client_secret")
        basic = request.headers.get("authorization", "")
        if basic.lower().startswith("basic "):
            client_id, _, secret = base64.b64decode(basic[6:]).decode().partition(":")
        s = self.scenario
        tenant = request.path_params["tenant"]
        if tenant not in (s.tenant_id, "organizations", "common") and not tenant.endswith(
            ".onmicrosoft.com"
        ):
            return self._token_error(400, "invalid_request", 90002, f"Tenant '{tenant}' not found.")
        if fields.get("grant_type") != "client_credentials":
            return self._token_error(
                400, "unsupported_grant_type", 70003, "The app requested an unsupported grant type."
            )
        if client_id != s.client_id:
            return self._token_error(
                400,
                "unauthorized_client",
                700016,
                f"Application with identifier '{client_id}' was not found in the directory.",
            )
        if not fields.get("scope", "").endswith("/.default"):
            return self._token_error(
                400,
                "invalid_scope",
                70011,
                "The provided value for the input parameter 'scope' is not valid.",
            )
        refusal = self._client_refusal(fields, secret, client_id, tenant)
        if refusal is not None:
            code, text = refusal
            return self._token_error(s.options.invalid_client_status, "invalid_client", code, text)
        return JSONResponse(self.issue(client_id))

    def _client_refusal(
        self, fields: Mapping[str, str], secret: str | None, client_id: str, tenant: str
    ) -> tuple[int, str] | None:
        """Why the client's credential is refused, as (AADSTS code, text); None if accepted."""
        if secret is not None:
            if secrets.compare_digest(secret.encode(), self.scenario.client_secret.encode()):
                return None
            return (
                7000215,
                "Invalid client secret provided. Ensure the secret being sent in the request is "
                "the client secret value, not the client secret ID.",
            )
        if fields.get("client_assertion_type") == JWT_BEARER:
            audiences = {
                f"{self.base_url}/{name}/oauth2/v2.0/token"
                for name in (tenant, self.scenario.tenant_id)
            }
            assertion = fields.get("client_assertion", "")
            with self.state.lock:
                registered = list(self.state.certificates)
                self.state.assertions.append(assertion)
            return assertion_refusal(
                assertion,
                client_id=client_id,
                audiences=audiences,
                certificates=registered,
                now=self.assertion_clock(),
            )
        return (
            7000218,
            "The request body must contain the following parameter: 'client_assertion' or "
            "'client_secret'.",
        )

    def register_certificate(self, pem: bytes) -> None:
        """Upload the public certificate(s) in `pem` to the app registration's credentials."""
        loaded = x509.load_pem_x509_certificates(pem)
        with self.state.lock:
            self.state.certificates += loaded

    def issue(self, client_id: str) -> dict[str, Any]:
        """A token response for `client_id`, its access token now valid on this Graph."""
        s = self.scenario
        lifetime = int(s.options.token_lifetime.total_seconds())
        roles = sorted(s.options.graph_permissions)
        now = int(s.clock.wall())
        claims = {
            "aud": "https://graph.microsoft.com",
            "iss": f"https://sts.windows.net/{s.tenant_id}/",
            "iat": now,
            "nbf": now,
            "exp": now + lifetime,
            "appid": client_id,
            "roles": roles,
            "tid": s.tenant_id,
            "uti": secrets.token_urlsafe(16),
        }
        token = (
            ".".join(_b64json(part) for part in ({"typ": "JWT", "alg": "RS256"}, claims))
            + "."
            + secrets.token_urlsafe(32)
        )
        with self.state.lock:
            self.state.tokens[token] = IssuedToken(
                client_id, frozenset(roles), s.clock.wall() + lifetime
            )
        return {
            "token_type": "Bearer",
            "expires_in": lifetime,
            "ext_expires_in": lifetime,
            "access_token": token,
        }

    # ------------------------------------------------------------------ paging

    def _page(
        self,
        request: Request,
        route: str,
        items: list[dict[str, Any]],
        context: str,
        token: IssuedToken,
        default_top: int,
        max_top: int,
        extra: dict[str, Any] | None = None,
    ) -> Response:
        top = _top(request, default_top, max_top)
        start = self._skip_position(request, route, token)
        dup = self.faults.take(route, {"duplicate_items"}) if start else None
        if dup is not None:
            start = max(0, start - dup.duplicates)
        page = items[start : start + top]
        body: dict[str, Any] = {"@odata.context": context}
        body.update(extra or {})
        body["value"] = page
        if start + top < len(items):
            body["@odata.nextLink"] = self._next_link(request, route, {"o": start + top})
        return self.ok(request, body)

    def _skip_position(self, request: Request, route: str, token: IssuedToken) -> int:
        raw = request.query_params.get("$skiptoken")
        if raw is None:
            self._count_page(route, token)
            return 0
        state = self._decode_skiptoken(raw, route)
        self._count_page(route, token)
        return int(state.get("o", 0))

    def _count_page(self, route: str, token: IssuedToken) -> None:
        fault = self.faults.peek(route, "token_expiry")
        if fault is None:
            return
        token.pages += 1
        if token.pages >= fault.after_pages:
            self.faults.take(route, {"token_expiry"})
            token.expires = self.scenario.clock.wall()  # the next request with it fails

    def _decode_skiptoken(self, raw: str, route: str) -> dict[str, Any]:
        if self.faults.take(route, {"expired_skiptoken"}) is not None:
            raise GraphError(
                400,
                "BadRequest",
                "The skip token has expired or is invalid. Restart the query without it.",
            )
        try:
            state = json.loads(bytes.fromhex(raw).decode())
        except (ValueError, UnicodeDecodeError) as exc:
            raise GraphError(400, "BadRequest", "Invalid $skiptoken value.") from exc
        if not isinstance(state, dict):
            raise GraphError(400, "BadRequest", "Invalid $skiptoken value.")
        return state

    def _next_link(self, request: Request, route: str, state: dict[str, Any]) -> str:
        params = [(k, v) for k, v in request.query_params.multi_items() if k != "$skiptoken"]
        params.append(("$skiptoken", json.dumps(state, separators=(",", ":")).encode().hex()))
        base = self.base_url
        foreign = self.faults.take(route, {"foreign_next_link"})
        if foreign is not None:
            base = _swap_host(base, foreign)
        return f"{base}{request.url.path}?{urlencode(params, safe='$,()/:')}"

    # ------------------------------------------------------------------ provisioning logs

    async def provisioning(self, request: Request) -> Response:
        limited = self._report_limit(request)
        if limited is not None:
            return limited
        return await self._guard(request, _READ_LOGS, self._provisioning)

    def _report_limit(self, request: Request) -> Response | None:
        header = request.headers.get("authorization", "")
        with self.state.lock:
            token = (
                self.state.tokens.get(header[7:].strip())
                if header.lower().startswith("bearer ")
                else None
            )
        if token is None:
            return None
        wait = self.faults.over_limit(
            "graph:" + token.client_id, *REPORT_LIMIT, self.faults.rate_clock()
        )
        if wait is None:
            return None
        exc = GraphError(
            429,
            "TooManyRequests",
            "Too many requests. Please retry again later.",
            {"Retry-After": str(max(1, math.ceil(wait)))},
        )
        return self.error(request, exc)

    def _provisioning(self, request: Request, token: IssuedToken) -> Response:
        s = self.scenario
        extra_ops = ("ge", "le") if s.options.accept_ge_le else ()
        allowed = _ops(_LOG_FILTER)
        allowed["activityDateTime"] |= frozenset(extra_ops)
        try:
            predicate, bounds = (
                compile_filter(request.query_params.get("$filter", ""), allowed)
                if request.query_params.get("$filter")
                else ((lambda item: True), [])
            )
        except FilterError as exc:
            raise GraphError(400, "BadRequest", str(exc)) from exc
        descending = _descending(request, s.options.default_order)
        top = _top(request, LOG_PAGE_DEFAULT, LOG_PAGE_MAX)
        raw = request.query_params.get("$skiptoken")
        if raw is None:
            after = max(
                (b.value for b in bounds if b.path == "activityDateTime" and b.op in ("gt", "ge")),
                default=None,
            )
            before = min(
                (b.value for b in bounds if b.path == "activityDateTime" and b.op in ("lt", "le")),
                default=None,
            )
            lo, hi = s.events.seq_range(after, before)
            position = hi - 1 if descending else lo
            self._count_page("graph.provisioning", token)
        else:
            state = self._decode_skiptoken(raw, "graph.provisioning")
            self._count_page("graph.provisioning", token)
            lo, hi, position = int(state["lo"]), int(state["hi"]), int(state["p"])
            dup = self.faults.take("graph.provisioning", {"duplicate_items"})
            if dup is not None:
                position += dup.duplicates if descending else -dup.duplicates
        skip_info = s.options.skip_error_info
        items: list[dict[str, Any]] = []
        scanned = 0
        step = -1 if descending else 1
        while lo <= position < hi and len(items) < top and scanned < SCAN_BUDGET:
            item = render_event(s.events.at_position(position), skip_error_info=skip_info)
            if predicate(item):
                items.append(item)
            position += step
            scanned += 1
        body: dict[str, Any] = {
            "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#auditLogs/provisioning",
            "value": items,
        }
        if lo <= position < hi:
            body["@odata.nextLink"] = self._next_link(
                request, "graph.provisioning", {"lo": lo, "hi": hi, "p": position}
            )
        return self.ok(request, body)

    # ------------------------------------------------------------------ service principals and jobs

    def _app(self, sp_id: str) -> AppIntegration:
        app = self.scenario.apps.get(sp_id)
        if app is None:
            raise GraphError(
                404,
                "Request_ResourceNotFound",
                _not_found(sp_id),
            )
        return app

    def _sp_json(self, app: AppIntegration) -> dict[str, Any]:
        return {
            "id": app.sp_id,
            "deletedDateTime": None,
            "accountEnabled": True,
            "appId": app.app_id,
            "appDisplayName": app.display_name,
            "displayName": app.display_name,
            "appRoleAssignmentRequired": True,
            "preferredSingleSignOnMode": "saml",
            "servicePrincipalNames": [app.entity_id, app.app_id],
            "servicePrincipalType": "Application",
            "signInAudience": "AzureADMyOrg",
            "tags": [
                "WindowsAzureActiveDirectoryIntegratedApp",
                "WindowsAzureActiveDirectoryCustomSingleSignOnApplication",
            ],
            "appRoles": [
                {
                    "allowedMemberTypes": ["User"],
                    "description": "User",
                    "displayName": "User",
                    "id": app.user_role_id,
                    "isEnabled": True,
                    "origin": "Application",
                    "value": None,
                },
                {
                    "allowedMemberTypes": ["User"],
                    "description": "msiam_access",
                    "displayName": "msiam_access",
                    "id": str(
                        uuid.UUID(bytes=bytes.fromhex(app.user_role_id.replace("-", ""))[::-1])
                    ),
                    "isEnabled": True,
                    "origin": "Application",
                    "value": None,
                },
            ],
        }

    async def service_principals(self, request: Request) -> Response:
        def handler(req: Request, token: IssuedToken) -> Response:
            items = [self._sp_json(app) for app in self.scenario.apps.values()]
            items = _select(_filtered(req, items, _ops(_SP_FILTER)), req)
            return self._page(
                req,
                "graph.servicePrincipals",
                items,
                "https://graph.microsoft.com/v1.0/$metadata#servicePrincipals",
                token,
                DIRECTORY_PAGE_DEFAULT,
                DIRECTORY_PAGE_MAX,
            )

        return await self._guard(request, _READ_APPS, handler)

    async def service_principal(self, request: Request) -> Response:
        def handler(req: Request, token: IssuedToken) -> Response:
            app = self._app(req.path_params["sp"])
            body = {
                "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#servicePrincipals/$entity"
            }
            return self.ok(req, body | _select([self._sp_json(app)], req)[0])

        return await self._guard(request, _READ_APPS, handler)

    def _job_json(self, app: AppIntegration) -> dict[str, Any]:
        state = self.scenario.jobs[app.sp_id]
        return {
            "id": app.job_id,
            "templateId": "Harness",
            "schedule": {"expiration": None, "interval": "PT40M", "state": state.schedule_state},
            "status": _status_json(state),
            "synchronizationJobSettings": [
                {"name": "AzureIngestionAttributeOptimization", "value": "False"},
                {"name": "LookaheadQueryEnabled", "value": "False"},
                {"name": "QuarantineTooManyDeletesThreshold", "value": "500"},
            ],
        }

    async def jobs(self, request: Request) -> Response:
        def handler(req: Request, token: IssuedToken) -> Response:
            app = self._app(req.path_params["sp"])
            context = f"https://graph.microsoft.com/v1.0/$metadata#servicePrincipals('{app.sp_id}')/synchronization/jobs"
            return self.ok(req, {"@odata.context": context, "value": [self._job_json(app)]})

        return await self._guard(request, _READ_JOBS, handler)

    async def job(self, request: Request) -> Response:
        def handler(req: Request, token: IssuedToken) -> Response:
            app = self._app(req.path_params["sp"])
            if req.path_params["job"] != app.job_id:
                raise GraphError(
                    404,
                    "Request_ResourceNotFound",
                    f"Job '{req.path_params['job']}' was not found.",
                )
            context = f"https://graph.microsoft.com/v1.0/$metadata#servicePrincipals('{app.sp_id}')/synchronization/jobs/$entity"
            return self.ok(req, {"@odata.context": context} | self._job_json(app))

        return await self._guard(request, _READ_JOBS, handler)

    async def assigned_to(self, request: Request) -> Response:
        def handler(req: Request, token: IssuedToken) -> Response:
            app = self._app(req.path_params["sp"])
            items = [
                {
                    "id": a.id,
                    "deletedDateTime": None,
                    "appRoleId": a.app_role_id,
                    "createdDateTime": iso(a.created),
                    "principalDisplayName": self.scenario.principal_name(a.principal_id),
                    "principalId": a.principal_id,
                    "principalType": a.principal_type,
                    "resourceDisplayName": app.display_name,
                    "resourceId": app.sp_id,
                }
                for a in app.assignments
            ]
            context = f"https://graph.microsoft.com/v1.0/$metadata#servicePrincipals('{app.sp_id}')/appRoleAssignedTo"
            return self._page(
                req,
                "graph.appRoleAssignedTo",
                items,
                context,
                token,
                DIRECTORY_PAGE_DEFAULT,
                DIRECTORY_PAGE_MAX,
            )

        return await self._guard(request, _READ_APPS, handler)

    # ------------------------------------------------------------------ groups and users

    def _group(self, group_id: str) -> EntraGroup:
        group = self.scenario.groups.get(group_id)
        if group is None:
            raise GraphError(
                404,
                "Request_ResourceNotFound",
                _not_found(group_id),
            )
        return group

    async def group(self, request: Request) -> Response:
        def handler(req: Request, token: IssuedToken) -> Response:
            body = {"@odata.context": "https://graph.microsoft.com/v1.0/$metadata#groups/$entity"}
            return self.ok(req, body | _group_json(self._group(req.path_params["group"])))

        return await self._guard(request, _READ_MEMBERS, handler)

    def _member_page(self, request: Request, token: IssuedToken, transitive: bool) -> Response:
        s = self.scenario
        group = self._group(request.path_params["group"])
        cast = request.path_params.get("cast")
        if cast not in (None, "microsoft.graph.user", "microsoft.graph.group", "$count"):
            raise GraphError(400, "Request_UnsupportedQuery", "Unsupported query.")
        user_ids = s.transitive_user_ids(group) if transitive else s.direct_user_ids(group)
        groups = (
            _nested_groups(s, group)
            if transitive
            else [s.groups[g] for g in group.member_group_ids if g in s.groups]
        )
        items: list[dict[str, Any]] = []
        if cast != "microsoft.graph.group":
            items += [_user_json(u, member=True) for uid in user_ids if (u := s.users.get(uid))]
        if cast != "microsoft.graph.user":
            items += [{"@odata.type": "#microsoft.graph.group"} | _group_json(g) for g in groups]
        if cast == "$count":
            return Response(str(len(items)), 200, media_type="text/plain")
        extra = (
            {"@odata.count": len(items)} if request.query_params.get("$count") == "true" else None
        )
        route = "graph.transitiveMembers" if transitive else "graph.members"
        return self._page(
            request,
            route,
            _select(items, request),
            "https://graph.microsoft.com/v1.0/$metadata#directoryObjects",
            token,
            DIRECTORY_PAGE_DEFAULT,
            DIRECTORY_PAGE_MAX,
            extra,
        )

    async def members(self, request: Request) -> Response:
        return await self._guard(
            request, _READ_MEMBERS, lambda r, t: self._member_page(r, t, False)
        )

    async def transitive(self, request: Request) -> Response:
        return await self._guard(request, _READ_MEMBERS, lambda r, t: self._member_page(r, t, True))

    async def users(self, request: Request) -> Response:
        def handler(req: Request, token: IssuedToken) -> Response:
            s = self.scenario
            top = _top(req, DIRECTORY_PAGE_DEFAULT, DIRECTORY_PAGE_MAX)
            start = self._skip_position(req, "graph.users", token)
            text = req.query_params.get("$filter")
            if text:
                try:
                    predicate, _ = compile_filter(text, _ops(_USER_FILTER))
                except FilterError as exc:
                    raise GraphError(400, "Request_UnsupportedQuery", str(exc)) from exc
                rows = [u for u in s.users.values() if predicate(_user_json(u, full=True))]
                page, more = rows[start : start + top], start + top < len(rows)
            else:
                page = s.users.slice(start, top)
                more = start + top < len(s.users)
            body: dict[str, Any] = {
                "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#users",
                "value": _select([_user_json(u) for u in page], req),
            }
            if more:
                body["@odata.nextLink"] = self._next_link(req, "graph.users", {"o": start + top})
            return self.ok(req, body)

        return await self._guard(request, _READ_USERS, handler)

    async def user(self, request: Request) -> Response:
        def handler(req: Request, token: IssuedToken) -> Response:
            key = req.path_params["user"]
            user = self.scenario.users.get(key) or next(
                (u for u in self.scenario.users.extra.values() if u.user_principal_name == key),
                None,
            )
            if user is None or user.id in self.scenario.deleted_users:
                raise GraphError(
                    404,
                    "Request_ResourceNotFound",
                    _not_found(key),
                )
            body = {"@odata.context": "https://graph.microsoft.com/v1.0/$metadata#users/$entity"}
            return self.ok(req, body | _select([_user_json(user, full=True)], req)[0])

        return await self._guard(request, _READ_USERS, handler)


def _status_json(state: JobState) -> dict[str, Any]:
    q = state.quarantine
    quarantine = (
        None
        if q is None
        else {
            "currentBegan": sync_time(q.current_began),
            "nextAttempt": sync_time(q.next_attempt),
            "reason": q.reason,
            "seriesBegan": sync_time(q.series_began),
            "seriesCount": q.series_count,
            "error": {"code": q.error_code, "message": q.error_message, "tenantActionable": True},
        }
    )
    return {
        "code": state.code,
        "countSuccessiveCompleteFailures": state.successive_failures,
        "escrowsPruned": False,
        "lastExecution": _execution_json(state.last_execution),
        "lastSuccessfulExecution": _execution_json(state.last_successful),
        "lastSuccessfulExecutionWithExports": _execution_json(state.last_with_exports),
        "progress": [],
        "quarantine": quarantine,
        "steadyStateFirstAchievedTime": sync_time(state.steady_first),
        "steadyStateLastAchievedTime": sync_time(state.steady_last),
        "synchronizedEntryCountByType": [
            {"key": "user to User", "value": state.synced_users},
            {"key": "group to Group", "value": state.synced_groups},
        ],
        "troubleshootingUrl": "",
    }


def _execution_json(execution: Execution | None) -> dict[str, Any] | None:
    if execution is None:
        return None
    error = None
    if execution.error_code:
        error = {
            "code": execution.error_code,
            "message": execution.error_message,
            "tenantActionable": True,
        }
    return {
        "activityIdentifier": execution.activity_identifier,
        "countEntitled": execution.count_entitled,
        "countEntitledForProvisioning": execution.count_entitled,
        "countEscrowed": execution.count_escrowed,
        "countEscrowedRaw": execution.count_escrowed,
        "countExported": execution.count_exported,
        "countExports": execution.count_exported + execution.count_escrowed,
        "countImported": execution.count_imported,
        "countImportedDeltas": execution.count_imported,
        "countImportedReferenceDeltas": 0,
        "error": error,
        "state": execution.state,
        "timeBegan": sync_time(execution.began),
        "timeEnded": sync_time(execution.ended),
    }


def _group_json(group: EntraGroup) -> dict[str, Any]:
    created = group.created or datetime(2025, 1, 1, tzinfo=UTC)
    return {
        "id": group.id,
        "deletedDateTime": None,
        "createdDateTime": iso(created),
        "description": None,
        "displayName": group.display_name,
        "groupTypes": [],
        "mail": None,
        "mailEnabled": False,
        "mailNickname": group.id[:8],
        "securityEnabled": True,
        "visibility": None,
    }


def _user_json(user: EntraUser, member: bool = False, full: bool = False) -> dict[str, Any]:
    body: dict[str, Any] = {"@odata.type": "#microsoft.graph.user"} if member else {}
    body |= {
        "businessPhones": [],
        "displayName": user.display_name,
        "givenName": user.given_name,
        "jobTitle": None,
        "mail": user.mail,
        "mobilePhone": None,
        "officeLocation": None,
        "preferredLanguage": None,
        "surname": user.surname,
        "userPrincipalName": user.user_principal_name,
        "id": user.id,
    }
    if full:
        body["accountEnabled"] = user.account_enabled
    return body


def _nested_groups(s: Scenario, group: EntraGroup) -> list[EntraGroup]:
    found: list[EntraGroup] = []
    stack = list(group.member_group_ids)
    while stack:
        child = s.groups.get(stack.pop(0))
        if child is not None and child not in found and child.id != group.id:
            found.append(child)
            stack.extend(child.member_group_ids)
    return found


def _top(request: Request, default: int, maximum: int) -> int:
    raw = request.query_params.get("$top")
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise GraphError(400, "BadRequest", f"Invalid value '{raw}' for $top.") from exc
    if value < 1:
        raise GraphError(400, "BadRequest", f"Invalid value '{raw}' for $top.")
    return min(value, maximum)


def _descending(request: Request, default: str) -> bool:
    order = request.query_params.get("$orderby")
    if order is None:
        return default == "desc"
    field_name, _, direction = order.strip().partition(" ")
    if field_name != "activityDateTime" or direction.strip() not in ("", "asc", "desc"):
        raise GraphError(400, "BadRequest", f"Invalid $orderby clause '{order}'.")
    return direction.strip() == "desc"


def _filtered(
    request: Request, items: list[dict[str, Any]], allowed: dict[str, frozenset[str]]
) -> list[dict[str, Any]]:
    text = request.query_params.get("$filter")
    if not text:
        return items
    try:
        predicate, _ = compile_filter(text, allowed)
    except FilterError as exc:
        raise GraphError(400, "Request_UnsupportedQuery", str(exc)) from exc
    return [item for item in items if predicate(item)]


def _select(items: list[dict[str, Any]], request: Request) -> list[dict[str, Any]]:
    raw = request.query_params.get("$select")
    if not raw:
        return items
    keep = {name.strip() for name in raw.split(",")} | {"@odata.type", "id"}
    return [{k: v for k, v in item.items() if k in keep} for item in items]


def _swap_host(base: str, fault: Fault) -> str:
    scheme, _, rest = base.partition("://")
    _, _, port = rest.partition(":")
    host = fault.foreign_host
    return f"{scheme}://{host}" if ":" in host or not port else f"{scheme}://{host}:{port}"


def _b64json(part: Mapping[str, Any]) -> str:
    return (
        base64.urlsafe_b64encode(json.dumps(part, separators=(",", ":")).encode())
        .decode()
        .rstrip("=")
    )


def assertion_refusal(
    assertion: str,
    *,
    client_id: str,
    audiences: set[str],
    certificates: list[x509.Certificate],
    now: float,
) -> tuple[int, str] | None:
    """Why Entra would refuse a certificate's client assertion, as (AADSTS code, text).

    graph-api.md 5.1 (CERT-CREDS): a JWT signed with the certificate's key, the thumbprint in
    the header (``x5t``, SHA-1, with RS256; azure-identity now sends ``x5t#S256`` with PS256),
    ``aud`` the token endpoint, ``iss`` = ``sub`` = the client id, and a current ``exp``.
    """
    try:
        header_part, claims_part, signature_part = assertion.split(".")
        header = json.loads(_b64decode(header_part))
        claims = json.loads(_b64decode(claims_part))
        signature = _b64decode(signature_part)
    except ValueError:  # binascii.Error and JSONDecodeError are ValueErrors
        return 50027, "JWT token is invalid or malformed."
    if not isinstance(header, dict) or not isinstance(claims, dict):
        return 50027, "JWT token is invalid or malformed."
    certificate, thumbprint = _signing_certificate(header, certificates)
    if certificate is None:
        return (
            700027,
            "Client assertion contains an invalid signature. [Reason - The key was not found., "
            f"Thumbprint of key used by client: '{thumbprint}', Please visit the Azure Portal, "
            "Graph Explorer or directly use MS Graph to see configured keys for app Id "
            f"'{client_id}'.]",
        )
    if certificate.not_valid_after_utc.timestamp() < now:
        return (
            700027,
            "Client assertion contains an invalid signature. [Reason - The key used is expired., "
            f"Thumbprint of key used by client: '{thumbprint}']",
        )
    signed = f"{header_part}.{claims_part}".encode()
    if not _signature_valid(certificate, header.get("alg"), signed, signature):
        return 700027, "Client assertion failed signature validation."
    if claims.get("aud") not in audiences:
        return 700023, "Client assertion audience claim does not match Realm issuer."
    if claims.get("iss") != client_id or claims.get("sub") != client_id:
        return (
            700021,
            "Client assertion application identifier doesn't match 'client_id' parameter.",
        )
    expires, not_before = claims.get("exp"), claims.get("nbf", now)
    if (
        not isinstance(expires, int | float)
        or not isinstance(not_before, int | float)
        or expires + ASSERTION_SKEW < now
        or not_before - ASSERTION_SKEW > now
    ):
        return (
            700024,
            "Client assertion is not within its valid time range. Current time: "
            f"{iso(datetime.fromtimestamp(now, UTC))}, assertion valid until {expires!r}.",
        )
    return None


def _b64decode(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def _signing_certificate(
    header: Mapping[str, Any], certificates: list[x509.Certificate]
) -> tuple[x509.Certificate | None, str]:
    """The registered certificate the header's thumbprint names, and that thumbprint in hex."""
    for name, algorithm in (("x5t#S256", hashes.SHA256()), ("x5t", hashes.SHA1())):
        raw = header.get(name)
        if not isinstance(raw, str):
            continue
        try:
            wanted = _b64decode(raw)
        except ValueError:
            return None, raw
        for certificate in certificates:
            if certificate.fingerprint(algorithm) == wanted:
                return certificate, wanted.hex().upper()
        return None, wanted.hex().upper()
    return None, ""


def _signature_valid(
    certificate: x509.Certificate, algorithm: object, signed: bytes, signature: bytes
) -> bool:
    public_key = certificate.public_key()
    if not isinstance(public_key, rsa.RSAPublicKey):
        return False
    scheme: padding.AsymmetricPadding
    if algorithm == "RS256":
        scheme = padding.PKCS1v15()
    elif algorithm == "PS256":
        scheme = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.AUTO)
    else:
        return False
    try:
        public_key.verify(signature, signed, scheme, hashes.SHA256())
    except InvalidSignature:
        return False
    return True


def events_for_test(scenario: Scenario) -> list[EventRecord]:
    """Every event of a small scenario, oldest first (a test helper; never for ``large``)."""
    return [scenario.events.at_position(i) for i in range(len(scenario.events))]


def _not_found(key: str) -> str:
    return (
        f"Resource '{key}' does not exist or one of its queried reference-property objects "
        "are not present."
    )
