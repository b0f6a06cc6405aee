"""The simulated Harness gateway (Starlette): NextGen SCIM, FirstGen SCIM, NextGen REST, authz.

Quirks reproduced on purpose (reference/harness-api.md): SCIM lists with the crude ``eq`` filter
(attribute ignored), ``startIndex`` default 0, ``count`` default 20, ``totalResults`` = page size,
short pages after the NextGen post-filter, only SCIM users and externally managed groups; both
user shapes (flag PL_NEW_SCIM_STANDARDS); Bearer-only SCIM auth with ErrorDTO for 401/403 and
SCIM errors whose ``status`` is always 404; NextGen REST behind ``x-api-key`` with the
``{"status":"SUCCESS","data":...}`` envelope; role assignments (section 8) including the ng-manager
stub that always answers an empty page; 429 without Retry-After past the documented limits.
"""

from __future__ import annotations

import json
import math
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from collectors.simulator.faults import FaultController, FaultMiddleware
from collectors.simulator.model import HarnessGroup, HarnessUser, RoleAssignment
from collectors.simulator.scenario import Scenario

SCIM_JSON = "application/scim+json"
USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Group"
LIST_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
ERROR_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:Error"
SCIM_DEFAULT_COUNT = 20
NG_DEFAULT_PAGE = 50
API_KEY_LIMIT = (1000, 60.0)
DOC_URI = "https://docs.harness.io/category/fe0577j8ie-access-management"


class HarnessError(Exception):
    """A response to send instead of the handler's result."""

    def __init__(self, response: Response) -> None:
        super().__init__(response.status_code)
        self.response = response


def error_dto(status: int, code: str, message: str) -> Response:
    """Harness's ErrorDTO (auth, permission and uncaught errors)."""
    body: dict[str, Any] = {
        "status": "ERROR",
        "code": code,
        "message": message,
        "correlationId": str(uuid.uuid4()),
        "detailedMessage": None,
        "responseMessages": [
            {
                "code": code,
                "level": "ERROR",
                "message": message,
                "exception": None,
                "failureTypes": [],
            }
        ],
        "metadata": None,
    }
    return JSONResponse(body, status)


def scim_error(http_status: int, detail: str) -> Response:
    """Harness's SCIM error: ``status`` is the integer 404 whatever the HTTP status."""
    body = {
        "id": None,
        "externalId": None,
        "meta": None,
        "detail": detail,
        "status": 404,
        "schemas": [ERROR_SCHEMA],
    }
    return Response(json.dumps(body), http_status, media_type=SCIM_JSON)


def _meta_time(when: datetime | None) -> str:
    when = (when or datetime(2025, 1, 1, tzinfo=UTC)).astimezone(UTC)
    return f"{when:%Y-%m-%dT%H:%M:%S}.{when.microsecond // 1000:03d}+0000"


def _epoch_ms(when: datetime | None) -> int:
    return int((when or datetime(2025, 1, 1, tzinfo=UTC)).timestamp() * 1000)


class HarnessApp:
    """The Harness Starlette application bound to one scenario."""

    def __init__(self, scenario: Scenario, faults: FaultController) -> None:
        self.scenario = scenario
        self.faults = faults
        ng_scim = "/ng/api/scim/account/{account}"
        fg_scim = "/api/scim/account/{account}"
        table: list[tuple[str, Callable[[Request], Any], str, list[str]]] = [
            (f"{ng_scim}/Users", self.scim_users, "harness.scim.users", ["GET"]),
            (f"{ng_scim}/Users/{{id}}", self.scim_user, "harness.scim.user", ["GET"]),
            (f"{ng_scim}/Groups", self.scim_groups, "harness.scim.groups", ["GET"]),
            (f"{ng_scim}/Groups/{{id}}", self.scim_group, "harness.scim.group", ["GET"]),
            (f"{ng_scim}/ServiceProviderConfig", self.scim_static, "harness.scim.static", ["GET"]),
            (f"{ng_scim}/ResourceTypes", self.scim_static, "harness.scim.static", ["GET"]),
            (f"{ng_scim}/Schemas", self.scim_static, "harness.scim.static", ["GET"]),
            (f"{fg_scim}/Users", self.fg_users, "harness.fg.users", ["GET"]),
            (f"{fg_scim}/Users/{{id}}", self.fg_user, "harness.fg.user", ["GET"]),
            (f"{fg_scim}/Groups", self.fg_groups, "harness.fg.groups", ["GET"]),
            (f"{fg_scim}/Groups/{{id}}", self.fg_group, "harness.fg.group", ["GET"]),
            ("/ng/api/user-groups", self.user_groups, "harness.ng.userGroups", ["GET"]),
            ("/ng/api/user-groups/{id}", self.user_group, "harness.ng.userGroup", ["GET"]),
            (
                "/ng/api/user-groups/{id}/scopes",
                self.user_group_scopes,
                "harness.ng.userGroupScopes",
                ["GET"],
            ),
            ("/ng/api/user/batch", self.user_batch, "harness.ng.users", ["POST"]),
            (
                "/ng/api/authentication-settings",
                self.auth_settings,
                "harness.ng.authSettings",
                ["GET"],
            ),
            (
                "/ng/api/authentication-settings/v2",
                self.auth_settings,
                "harness.ng.authSettings",
                ["GET"],
            ),
            ("/ng/api/organizations", self.organizations, "harness.ng.organizations", ["GET"]),
            ("/ng/api/projects", self.projects, "harness.ng.projects", ["GET"]),
            (
                "/ng/api/roleassignments/filter",
                self.stub_role_assignments,
                "harness.ng.roleAssignmentsStub",
                ["POST"],
            ),
            (
                "/authz/api/roleassignments",
                self.role_assignments,
                "harness.authz.roleAssignments",
                ["GET"],
            ),
            (
                "/authz/api/roleassignments/filter",
                self.role_assignments,
                "harness.authz.roleAssignments",
                ["POST"],
            ),
            (
                "/authz/api/roleassignments/filter/internal/childscopes",
                self.child_scope_assignments,
                "harness.authz.childScopes",
                ["POST"],
            ),
        ]
        routes = [
            Route(prefix + path, endpoint, methods=methods, name=name)
            for prefix in ("/gateway", "")
            for path, endpoint, name, methods in table
        ]
        self.starlette = Starlette(routes=routes)
        self.asgi = FaultMiddleware(self.starlette, self.starlette.router, faults, "harness")

    # ------------------------------------------------------------------ auth

    def _rate_limit(self, key: str) -> None:
        if (
            self.faults.over_limit("harness:" + key, *API_KEY_LIMIT, self.faults.rate_clock())
            is not None
        ):
            raise HarnessError(Response("Too Many Requests", 429, media_type="text/plain"))

    def _scim_auth(self, request: Request, permission: str, entity: str) -> None:
        header = request.headers.get("authorization")
        if header is None:
            raise HarnessError(
                error_dto(
                    500,
                    "UNKNOWN_ERROR",
                    "Oops, something went wrong on our end. Please contact Harness Support.",
                )
            )
        if "Bearer " not in header:
            raise HarnessError(error_dto(401, "INVALID_TOKEN", "Bearer prefix not found"))
        token = header[len("Bearer ") :].strip()
        self._check_token(request, token)
        if permission not in self.scenario.options.harness_permissions:
            account = self.scenario.account_id
            raise HarnessError(
                error_dto(
                    403,
                    "NG_ACCESS_DENIED",
                    f"Token needs to have {permission} permission on account: {account} "
                    f"to perform SCIM {entity} action",
                )
            )

    def _check_token(self, request: Request, token: str) -> None:
        account = request.path_params.get("account") or request.query_params.get(
            "accountIdentifier"
        )
        if not account:
            raise HarnessError(
                error_dto(400, "INVALID_REQUEST", "Account detail is not present in the request")
            )
        if token != self.scenario.harness_token or account != self.scenario.account_id:
            raise HarnessError(
                error_dto(
                    401,
                    "INVALID_TOKEN",
                    "Invalid call: Invalid token or token expired. "
                    f"Account id for API called: {account}",
                )
            )
        self._rate_limit(token)

    def _rest_auth(self, request: Request, permission: str) -> None:
        token = request.headers.get("x-api-key")
        if token is None:
            raise HarnessError(error_dto(401, "INVALID_TOKEN", "Token is not valid."))
        self._check_token(request, token)
        if permission not in self.scenario.options.harness_permissions:
            response = error_dto(
                403, "NG_ACCESS_DENIED", f"Missing permission {permission} on account"
            )
            raise HarnessError(response)

    async def _handle(
        self, request: Request, auth: Callable[[], None], build: Callable[[], Response]
    ) -> Response:
        try:
            auth()
            self.scenario.sync()
            with self.scenario.lock:
                return build()
        except HarnessError as exc:
            return exc.response

    # ------------------------------------------------------------------ SCIM rendering

    def _user_groups_of(self, uuid_: str) -> list[dict[str, str]]:
        return [
            {"value": g.identifier, "ref": "", "display": g.name}
            for g in self.scenario.harness.groups.values()
            if g.externally_managed and uuid_ in g.users
        ]

    def _scim_user_json(self, user: HarnessUser, listing: bool) -> dict[str, Any]:
        flag = self.scenario.options.new_scim_standards
        body: dict[str, Any] = {"schemas": [USER_SCHEMA], "id": user.uuid}
        if not listing and user.external_id:
            body["externalId"] = user.external_id
        body |= {
            "userName": user.email,
            "displayName": user.name,
            "active": not user.disabled,
            "emails": [{"value": user.email, "primary": True}],
        }
        if listing:
            name: dict[str, str] = {
                "familyName": user.family_name or user.name,
                "givenName": user.given_name or user.name,
            }
        else:
            name = {"displayName": user.name}
            if flag:
                name |= {
                    "givenName": user.given_name or user.name,
                    "familyName": user.family_name or user.name,
                }
        if flag:
            name["formatted"] = (
                f"{user.given_name}, {user.family_name}" if user.given_name else user.name
            )
            body["meta"] = {
                "resourceType": "User",
                "created": _meta_time(user.created),
                "lastModified": _meta_time(user.modified or user.created),
                "version": "",
                "location": "",
            }
            body["groups"] = self._user_groups_of(user.uuid)
        body["name"] = name
        return body

    def _scim_group_json(self, group: HarnessGroup) -> dict[str, Any]:
        users = self.scenario.harness.users
        members = [
            {"value": u, "ref": "", "display": m.email} for u in group.users if (m := users.get(u))
        ]
        body: dict[str, Any] = {
            "schemas": [GROUP_SCHEMA],
            "id": group.identifier,
            "displayName": group.name,
            "members": members,
        }
        if self.scenario.options.new_scim_standards:
            body["meta"] = {
                "resourceType": "Group",
                "created": _meta_time(group.created),
                "lastModified": _meta_time(group.modified or group.created),
                "version": "",
                "location": "",
            }
        return body

    @staticmethod
    def _scim_response(body: Any, status: int = 200) -> Response:
        return Response(json.dumps(body, ensure_ascii=False), status, media_type=SCIM_JSON)

    @staticmethod
    def _list_params(request: Request) -> tuple[str | None, int, int, int]:
        """(search value, echoed startIndex, skip, count) with Harness's parsing."""
        try:
            start = int(request.query_params.get("startIndex", "0"))
            count = int(request.query_params.get("count", str(SCIM_DEFAULT_COUNT)))
        except ValueError as exc:
            raise HarnessError(scim_error(404, "Invalid paging parameters")) from exc
        search = None
        raw = request.query_params.get("filter")
        if raw:
            parts = unquote(raw).split(" eq ")
            if len(parts) > 1 and len(parts[1]) >= 2:
                search = parts[1][1:-1]  # the attribute name is ignored, as Harness does
        return search, start, 0 if start == 0 else start - 1, count

    def _list(self, rows: list[dict[str, Any]], start: int, count: int) -> Response:
        return self._scim_response(
            {
                "schemas": [LIST_SCHEMA],
                "totalResults": len(rows),
                "Resources": rows,
                "startIndex": start,
                "itemsPerPage": count,
            }
        )

    async def scim_users(self, request: Request) -> Response:
        def build() -> Response:
            search, start, skip, count = self._list_params(request)
            h = self.scenario.harness
            if search is not None:
                found = h.find_user_by_email(search)
                fg = [u for u in h.fg_users.values() if u.email == search]
                candidates = ([found] if found and found.imported else []) + fg
                page = candidates[skip : skip + count]
            else:
                page = h.scim_page(skip, count)
            page = [u for u in page if u.ng_member]  # NG drops users that are not NextGen members
            return self._list([self._scim_user_json(u, listing=True) for u in page], start, count)

        return await self._handle(
            request, lambda: self._scim_auth(request, "core_user_view", "user"), build
        )

    async def scim_user(self, request: Request) -> Response:
        def build() -> Response:
            user = self.scenario.harness.users.get(request.path_params["id"])
            if user is None or not user.ng_member:
                return scim_error(404, "User does not exist in NG")
            return self._scim_response(self._scim_user_json(user, listing=False))

        return await self._handle(
            request, lambda: self._scim_auth(request, "core_user_view", "user"), build
        )

    async def scim_groups(self, request: Request) -> Response:
        def build() -> Response:
            search, start, skip, count = self._list_params(request)
            groups = [g for g in self.scenario.harness.groups.values() if g.externally_managed]
            if search is not None:
                groups = [g for g in groups if g.name == search]
            page = groups[skip : skip + count]
            return self._list([self._scim_group_json(g) for g in page], start, count)

        return await self._handle(
            request, lambda: self._scim_auth(request, "core_usergroup_view", "UserGroup"), build
        )

    async def scim_group(self, request: Request) -> Response:
        def build() -> Response:
            group = self.scenario.harness.groups.get(request.path_params["id"])
            if group is None:
                return scim_error(404, "Group does not exist")
            return self._scim_response(self._scim_group_json(group))

        return await self._handle(
            request, lambda: self._scim_auth(request, "core_usergroup_view", "UserGroup"), build
        )

    async def scim_static(self, request: Request) -> Response:
        def build() -> Response:
            kind = request.url.path.rsplit("/", 1)[-1]
            return Response(json.dumps(STATIC[kind]), 200, media_type=SCIM_JSON)

        return await self._handle(
            request, lambda: self._scim_auth(request, "core_user_view", "user"), build
        )

    # ------------------------------------------------------------------ FirstGen SCIM

    def _fg_auth(self, request: Request) -> None:
        header = request.headers.get("authorization", "")
        token = header[len("Bearer ") :].strip() if header.startswith("Bearer ") else ""
        if (
            token != self.scenario.firstgen_api_key
            or request.path_params.get("account") != self.scenario.account_id
        ):
            body = {
                "metaData": None,
                "resource": None,
                "responseMessages": [
                    {
                        "code": "USER_NOT_AUTHORIZED",
                        "level": "ERROR",
                        "message": "User not authorized",
                        "failureTypes": [],
                    }
                ],
            }
            raise HarnessError(JSONResponse(body, 400))
        self._rate_limit(token)

    async def fg_users(self, request: Request) -> Response:
        def build() -> Response:
            search, start, skip, count = self._list_params(request)
            users = [
                u
                for u in self.scenario.harness.fg_users.values()
                if search is None or u.email == search
            ]
            rows = [self._scim_user_json(u, listing=True) for u in users[skip : skip + count]]
            return self._list(rows, start, count)

        return await self._handle(request, lambda: self._fg_auth(request), build)

    async def fg_user(self, request: Request) -> Response:
        def build() -> Response:
            user = self.scenario.harness.fg_users.get(request.path_params["id"])
            if user is None:
                return scim_error(404, "User does not exist in Harness")
            return self._scim_response(self._scim_user_json(user, listing=True))

        return await self._handle(request, lambda: self._fg_auth(request), build)

    def _fg_group_json(self, uuid_: str) -> dict[str, Any]:
        h = self.scenario.harness
        group = h.fg_groups[uuid_]
        members = [
            {"value": u, "ref": None, "display": h.fg_users[u].email}
            for u in group.users
            if u in h.fg_users
        ]
        return {
            "schemas": [GROUP_SCHEMA],
            "id": group.uuid,
            "displayName": group.name,
            "members": members,
        }

    async def fg_groups(self, request: Request) -> Response:
        def build() -> Response:
            search, start, skip, count = self._list_params(request)
            groups = [
                g.uuid
                for g in self.scenario.harness.fg_groups.values()
                if search is None or g.name == search
            ]
            return self._list(
                [self._fg_group_json(g) for g in groups[skip : skip + count]], start, count
            )

        return await self._handle(request, lambda: self._fg_auth(request), build)

    async def fg_group(self, request: Request) -> Response:
        def build() -> Response:
            if request.path_params["id"] not in self.scenario.harness.fg_groups:
                return scim_error(404, "Group does not exist")
            return self._scim_response(self._fg_group_json(request.path_params["id"]))

        return await self._handle(request, lambda: self._fg_auth(request), build)

    # ------------------------------------------------------------------ NextGen REST

    @staticmethod
    def _envelope(data: Any) -> Response:
        return JSONResponse(
            {
                "status": "SUCCESS",
                "data": data,
                "metaData": None,
                "correlationId": str(uuid.uuid4()),
            }
        )

    @staticmethod
    def _paging(request: Request) -> tuple[int, int]:
        try:
            return int(request.query_params.get("pageIndex", "0")), int(
                request.query_params.get("pageSize", str(NG_DEFAULT_PAGE))
            )
        except ValueError as exc:
            raise HarnessError(
                error_dto(400, "INVALID_REQUEST", "Invalid page parameters")
            ) from exc

    @staticmethod
    def _page(items: list[Any], index: int, size: int) -> dict[str, Any]:
        content = items[index * size : (index + 1) * size]
        return {
            "totalPages": math.ceil(len(items) / size) if size else 0,
            "totalItems": len(items),
            "pageItemCount": len(content),
            "pageSize": size,
            "content": content,
            "pageIndex": index,
            "empty": not content,
            "pageToken": None,
        }

    def _group_dto(self, group: HarnessGroup) -> dict[str, Any]:
        body: dict[str, Any] = {
            "accountIdentifier": self.scenario.account_id,
            "identifier": group.identifier,
            "name": group.name,
            "users": list(group.users),
            "notificationConfigs": [],
            "externallyManaged": group.externally_managed,
            "description": group.description,
            "tags": {},
            "harnessManaged": group.harness_managed,
            "ssoLinked": group.sso_linked,
        }
        return body

    async def user_groups(self, request: Request) -> Response:
        def build() -> Response:
            index, size = self._paging(request)
            term = request.query_params.get("searchTerm", "").lower()
            groups = [
                g
                for g in self.scenario.harness.groups.values()
                if term in g.name.lower() or term in g.identifier.lower()
            ]
            groups.sort(
                key=lambda g: (_epoch_ms(g.modified or g.created), g.identifier), reverse=True
            )
            return self._envelope(self._page([self._group_dto(g) for g in groups], index, size))

        return await self._handle(
            request, lambda: self._rest_auth(request, "core_usergroup_view"), build
        )

    async def user_group(self, request: Request) -> Response:
        def build() -> Response:
            group = self.scenario.harness.groups.get(request.path_params["id"])
            if group is None:
                body = {
                    "status": "FAILURE",
                    "code": "RESOURCE_NOT_FOUND_EXCEPTION",
                    "message": f"User Group with identifier [{request.path_params['id']}] "
                    "is not found in the given scope",
                    "correlationId": str(uuid.uuid4()),
                    "errors": [],
                }
                return JSONResponse(body, 400)
            return self._envelope(self._group_dto(group))

        return await self._handle(
            request, lambda: self._rest_auth(request, "core_usergroup_view"), build
        )

    async def user_group_scopes(self, request: Request) -> Response:
        def build() -> Response:
            identifier = request.path_params["id"]
            scopes = {
                (ra.org_identifier, ra.project_identifier)
                for ra in self.scenario.harness.role_assignments
                if ra.principal_identifier == identifier and ra.org_identifier
            }
            projects = {p[1]: p[2] for p in self.scenario.harness.projects}
            data = [
                {
                    "accountIdentifier": self.scenario.account_id,
                    "orgName": org,
                    "orgIdentifier": org,
                    "projectName": projects.get(project) if project else None,
                    "projectIdentifier": project,
                }
                for org, project in sorted(scopes, key=lambda s: (s[0] or "", s[1] or ""))
            ]
            return self._envelope(data)

        return await self._handle(
            request, lambda: self._rest_auth(request, "core_usergroup_view"), build
        )

    async def user_batch(self, request: Request) -> Response:
        body = await _json_body(request)

        def build() -> Response:
            index, size = self._paging(request)
            term = str(body.get("searchTerm") or "").lower()
            wanted_ids = set(body.get("identifiers") or [])
            wanted_emails = {str(e).lower() for e in body.get("emails") or []}
            users = [
                u
                for u in self.scenario.harness.users.rows()
                if u.ng_member
                and (not term or term in u.email.lower() or term in u.name.lower())
                and (not wanted_ids or u.uuid in wanted_ids)
                and (not wanted_emails or u.email in wanted_emails)
            ]
            rows = [
                {
                    "name": u.name,
                    "email": u.email,
                    "uuid": u.uuid,
                    "locked": u.locked,
                    "disabled": u.disabled,
                    "externallyManaged": u.externally_managed,
                    "twoFactorAuthenticationEnabled": False,
                }
                for u in users
            ]
            return self._envelope(self._page(rows, index, size))

        return await self._handle(
            request, lambda: self._rest_auth(request, "core_user_view"), build
        )

    async def auth_settings(self, request: Request) -> Response:
        def build() -> Response:
            saml = [
                {
                    "settingsType": "SAML",
                    "origin": s["origin"],
                    "identifier": s["identifier"],
                    "logoutUrl": None,
                    "groupMembershipAttr": "http://schemas.microsoft.com/ws/2008/06/identity/claims/groups",
                    "displayName": s["displayName"],
                    "authorizationEnabled": True,
                    "entityIdentifier": s["entityIdentifier"],
                    "samlProviderType": "AZURE",
                    "clientId": None,
                    "clientSecret": None,
                    "friendlySamlName": s["displayName"],
                    "authenticationEnabled": True,
                    "jitEnabled": False,
                    "jitValidationKey": None,
                    "jitValidationValue": None,
                }
                for s in self.scenario.harness.saml_settings
            ]
            password = {
                "settingsType": "USER_PASSWORD",
                "loginSettings": {
                    "uuid": "loginsettings",
                    "userLockoutPolicy": {"enableLockoutPolicy": False},
                    "passwordExpirationPolicy": {"enabled": False},
                    "passwordStrengthPolicy": {"enabled": False},
                },
            }
            resource = {
                "ngAuthSettings": [*saml, password],
                "whitelistedDomains": [],
                "authenticationMechanism": "SAML" if saml else "USER_PASSWORD",
                "twoFactorEnabled": False,
                "sessionTimeoutInMinutes": 1440,
                "publicAccessEnabled": False,
                "oauthEnabled": False,
            }
            return JSONResponse({"metaData": None, "resource": resource, "responseMessages": []})

        return await self._handle(
            request, lambda: self._rest_auth(request, "core_authsetting_view"), build
        )

    async def organizations(self, request: Request) -> Response:
        def build() -> Response:
            index, size = self._paging(request)
            rows = [
                {
                    "organization": {"identifier": i, "name": n, "description": "", "tags": {}},
                    "createdAt": 0,
                    "lastModifiedAt": 0,
                    "harnessManaged": i == "default",
                }
                for i, n in self.scenario.harness.orgs
            ]
            return self._envelope(self._page(rows, index, size))

        return await self._handle(
            request, lambda: self._rest_auth(request, "core_organization_view"), build
        )

    async def projects(self, request: Request) -> Response:
        def build() -> Response:
            index, size = self._paging(request)
            rows = [
                {
                    "project": {
                        "orgIdentifier": o,
                        "identifier": i,
                        "name": n,
                        "color": "#0063f7",
                        "modules": [],
                        "description": "",
                        "tags": {},
                    },
                    "createdAt": 0,
                    "lastModifiedAt": 0,
                    "isFavorite": False,
                }
                for o, i, n in self.scenario.harness.projects
            ]
            return self._envelope(self._page(rows, index, size))

        return await self._handle(
            request, lambda: self._rest_auth(request, "core_project_view"), build
        )

    async def stub_role_assignments(self, request: Request) -> Response:
        def build() -> Response:
            index, size = self._paging(request)
            return self._envelope(self._page([], index, size))

        return await self._handle(
            request, lambda: self._rest_auth(request, "core_usergroup_view"), build
        )

    # ------------------------------------------------------------------ role assignments

    def _ra_json(self, ra: RoleAssignment) -> dict[str, Any]:
        return {
            "roleAssignment": {
                "identifier": ra.identifier,
                "resourceGroupIdentifier": ra.resource_group_identifier,
                "roleIdentifier": ra.role_identifier,
                "principal": {
                    "scopeLevel": ra.principal_scope_level,
                    "identifier": ra.principal_identifier,
                    "type": ra.principal_type,
                },
                "disabled": ra.disabled,
                "managed": ra.managed,
                "internal": False,
            },
            "scope": {
                "accountIdentifier": self.scenario.account_id,
                "orgIdentifier": ra.org_identifier,
                "projectIdentifier": ra.project_identifier,
            },
            "createdAt": ra.created_ms,
            "lastModifiedAt": ra.created_ms,
            "harnessManaged": ra.managed,
        }

    def _matching(
        self, request: Request, body: dict[str, Any], child_scopes: bool
    ) -> list[RoleAssignment]:
        org = request.query_params.get("orgIdentifier")
        project = request.query_params.get("projectIdentifier")
        can_view_groups = "core_usergroup_view" in self.scenario.options.harness_permissions
        types = set(body.get("principalTypeFilter") or [])
        principals = body.get("principalFilter") or []
        if ((types and "USER_GROUP" in types) or principals) and not can_view_groups:
            raise HarnessError(
                error_dto(
                    400,
                    "USER_NOT_AUTHORIZED",
                    "Current principal is not authorized to the view the role assignments",
                )
            )
        rows = []
        for ra in self.scenario.harness.role_assignments:
            if child_scopes:
                in_scope = (org is None or ra.org_identifier == org) and (
                    project is None or ra.project_identifier == project
                )
            else:
                in_scope = ra.org_identifier == org and ra.project_identifier == project
            if (
                in_scope
                and _ra_filter(ra, body)
                and (can_view_groups or ra.principal_type != "USER_GROUP")
            ):
                rows.append(ra)
        return rows

    async def role_assignments(self, request: Request) -> Response:
        body = await _json_body(request) if request.method == "POST" else {}

        def build() -> Response:
            index, size = self._paging(request)
            rows = [self._ra_json(ra) for ra in self._matching(request, body, child_scopes=False)]
            return self._envelope(self._page(rows, index, size))

        return await self._handle(
            request, lambda: self._rest_auth(request, "core_user_view"), build
        )

    async def child_scope_assignments(self, request: Request) -> Response:
        body = await _json_body(request)

        def build() -> Response:
            rows = [self._ra_json(ra) for ra in self._matching(request, body, child_scopes=True)][
                :1000
            ]
            return self._envelope(rows)

        return await self._handle(
            request, lambda: self._rest_auth(request, "core_user_view"), build
        )


def _ra_filter(ra: RoleAssignment, body: dict[str, Any]) -> bool:
    checks = [
        ("principalTypeFilter", ra.principal_type),
        ("principalScopeLevelFilter", ra.principal_scope_level),
        ("roleFilter", ra.role_identifier),
        ("resourceGroupFilter", ra.resource_group_identifier),
        ("disabledFilter", ra.disabled),
        ("harnessManagedFilter", ra.managed),
    ]
    for key, value in checks:
        wanted = body.get(key)
        if wanted and value not in wanted:
            return False
    principals = body.get("principalFilter") or []
    return not principals or any(
        p.get("identifier") == ra.principal_identifier
        and p.get("type") == ra.principal_type
        and (p.get("scopeLevel") is None or p.get("scopeLevel") == ra.principal_scope_level)
        for p in principals
    )


async def _json_body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw:
        return {}
    try:
        body = json.loads(raw)
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


STATIC: dict[str, Any] = {
    "ServiceProviderConfig": {
        "documentationUri": DOC_URI,
        "patch": {"supported": True},
        "bulk": {"supported": False, "maxOperations": 1, "maxPayloadSize": 0},
        "filter": {"supported": True, "maxResults": 1000},
        "changePassword": {"supported": False},
        "sort": {"supported": False},
        "etag": {"supported": False},
        "scimAuthenticationSchemes": [
            {
                "name": "OAuth Bearer Token",
                "description": "Authentication scheme using the OAuth Bearer Token Standard",
                "specUri": "http://www.rfc-editor.org/info/rfc6750",
                "type": "oauthbearertoken",
                "primary": True,
            }
        ],
    },
    "ResourceTypes": {
        "schemas": [LIST_SCHEMA],
        "totalResults": 2,
        "Resources": [
            {
                "schemas": [USER_SCHEMA],
                "id": "User",
                "documentationUri": DOC_URI,
                "name": "User",
                "endpoint": "/Users",
                "description": "User Account",
                "schema": USER_SCHEMA,
            },
            {
                "schemas": [GROUP_SCHEMA],
                "id": "Group",
                "documentationUri": DOC_URI,
                "name": "Group",
                "endpoint": "/Groups",
                "description": "Groups",
                "schema": GROUP_SCHEMA,
            },
        ],
        "startIndex": 0,
        "itemsPerPage": 2,
    },
    "Schemas": {
        "schemas": [LIST_SCHEMA],
        "totalResults": 2,
        "startIndex": 0,
        "itemsPerPage": 2,
        "Resources": [
            {
                "id": USER_SCHEMA,
                "name": "User",
                "description": "User Account",
                "attributes": [
                    {"name": n, "type": "string"} for n in ("userName", "externalId", "displayName")
                ],
            },
            {
                "id": GROUP_SCHEMA,
                "name": "Group",
                "description": "Group",
                "attributes": [{"name": "displayName", "type": "string"}],
            },
        ],
    },
}
