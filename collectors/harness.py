"""Harness collectors: SCIM users and groups, NextGen groups and users, SSO, role bindings.

Facts from reference/harness-api.md: SCIM lists are paged by ``startIndex``/``count`` and
``totalResults`` is only the page's size, so we page until an empty page (1.4); NextGen REST
wraps data in ``{"status","data"}`` pages (3.2); authentication settings use the older
``{"resource"}`` envelope (3.5); role bindings live in the access-control service, per scope
(8.2-8.7).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from datetime import datetime
from typing import Any

from pydantic import AliasChoices, Field

from collectors.base import Collector, RecordSink, UnexpectedPayload
from collectors.config import HarnessConnection, HarnessEndpoints
from collectors.http import ApiClient
from collectors.wire import WireModel, collect_whole, dedupe, parse_items, parse_page
from store.models import (
    Batch,
    HarnessGroup,
    HarnessGroupMember,
    HarnessUser,
    Record,
    RoleAssignment,
    Snapshot,
    SourceName,
    SsoSetting,
)

log = logging.getLogger("scimwatch.collectors.harness")

SCIM_PAGE_SIZE = 100
NG_PAGE_SIZE = 100
"""NextGen pages: documented maximum 100 (reference/harness-api.md 3.1)."""

USERS_VIEW = "core_user_view (Users: View)"
GROUPS_VIEW = "core_usergroup_view (User Groups: View)"


# --- SCIM (harness-api.md 1.5, 1.6, 1.8) -------------------------------------------------


class _ScimEmail(WireModel):
    value: str | None = None
    primary: bool | None = None


class _ScimName(WireModel):
    display_name: str | None = None
    formatted: str | None = None
    given_name: str | None = None
    family_name: str | None = None


class _ScimUser(WireModel):
    id: str = Field(min_length=1)
    user_name: str | None = None
    display_name: str | None = None
    external_id: str | None = None
    active: bool | None = None
    emails: list[_ScimEmail] | None = None
    name: _ScimName | None = None


class _ScimMember(WireModel):
    value: str = Field(min_length=1)
    display: str | None = None


class _ScimGroup(WireModel):
    id: str = Field(min_length=1)
    display_name: str | None = None
    members: list[_ScimMember] | None = None


def _scim_user_record(wire: _ScimUser) -> HarnessUser:
    # Two shapes exist: name.displayName from GET Users/{id}, or givenName/familyName from
    # the list (and with PL_NEW_SCIM_STANDARDS, formatted too) (harness-api.md 1.5).
    name = wire.name or _ScimName()
    parts = " ".join(part for part in (name.given_name, name.family_name) if part)
    primary = next((email.value for email in wire.emails or [] if email.primary), None)
    first = next((email.value for email in wire.emails or [] if email.value), None)
    return HarnessUser(
        id=wire.id,
        email=(wire.user_name or primary or first or "").lower(),
        name=wire.display_name or name.display_name or name.formatted or parts,
        external_id=wire.external_id or "",
        active=wire.active,
        # harness.scim owns in_scim, harness.ng owns in_ng: each source sets only its own flag
        # and the cache merges the two views of a row (store.models.Record.presence_flags).
        in_scim=True,
    )


class ScimCollector:
    """harness.scim: the users and groups SCIM provisioned (what Entra sees in Harness)."""

    source: SourceName = "harness.scim"

    def __init__(self, api: ApiClient, endpoints: HarnessEndpoints) -> None:
        self._api = api
        self._scim = endpoints.scim

    async def collect(self, watermark: str | None) -> Batch:
        """Every SCIM user and group, as snapshots of the SCIM-listed rows."""
        return await collect_whole(self, watermark)

    async def collect_into(self, watermark: str | None, stage: RecordSink) -> Batch:
        """`collect`, each page's records handed to `stage`."""
        snapshots = [
            Snapshot(table="harness_users", where={"in_scim": 1}, clear="in_scim"),
            Snapshot(table="harness_groups", where={"in_scim": 1}, clear="in_scim"),
        ]
        skipped = 0
        async for items in self._pages("Users", USERS_VIEW):
            users, bad = await parse_page(items, _ScimUser, _scim_user_record, "SCIM user")
            await stage(users)
            skipped += bad
        async for items in self._pages("Groups", GROUPS_VIEW):
            groups, bad = await parse_page(items, _ScimGroup, lambda group: group, "SCIM group")
            skipped += bad
            page: list[Record] = []
            for group in groups:
                page += _scim_group_records(group)
                snapshots.append(
                    Snapshot(
                        table="harness_group_members",
                        where={"scope": "account", "group_identifier": group.id},
                    )
                )
            await stage(page)
        return Batch(source="harness.scim", snapshots=snapshots, skipped=skipped)

    async def _pages(self, resource: str, permission: str) -> AsyncIterator[list[Any]]:
        """SCIM list pages until an empty one, whatever totalResults says (harness-api.md 1.4).

        ``startIndex`` is 1-based when sent (Harness skips startIndex-1), and pages can be
        short because NextGen filters after paging, so we advance by what came back.
        """
        start = 1
        previous: tuple[object, ...] | None = None
        for _ in range(self._api.policy.max_pages):
            body = await self._api.get_json(
                f"{self._scim}/{resource}",
                params={"startIndex": start, "count": SCIM_PAGE_SIZE},
                permission=permission,
            )
            if not isinstance(body, dict):
                raise UnexpectedPayload(f"harness: SCIM {resource} is not a ListResponse")
            resources = body.get("Resources") or []
            if not isinstance(resources, list):
                raise UnexpectedPayload(f"harness: SCIM {resource} 'Resources' is not a list")
            if not resources:
                return
            ids = tuple(item.get("id") if isinstance(item, dict) else None for item in resources)
            if ids == previous:
                raise UnexpectedPayload(f"harness: SCIM {resource} paging does not advance")
            previous = ids
            yield resources
            start += len(resources)
        raise UnexpectedPayload(f"harness: SCIM {resource} has more than the page limit")


def _scim_group_records(group: _ScimGroup) -> list[Record]:
    records: list[Record] = [
        HarnessGroup(
            scope="account",
            identifier=group.id,
            name=group.display_name or "",
            externally_managed=True,
            in_scim=True,
        )
    ]
    records += [
        HarnessGroupMember(scope="account", group_identifier=group.id, user_id=member.value)
        for member in group.members or []
    ]
    return records


# --- NextGen REST (harness-api.md 3.2-3.4) -----------------------------------------------


async def ng_pages(
    api: ApiClient,
    url: str,
    *,
    params: Mapping[str, str | int],
    permission: str,
    body: Any = None,
) -> AsyncIterator[list[Any]]:
    """Yield ``data.content`` of each NextGen page until ``totalPages`` or an empty page."""
    for page_index in range(api.policy.max_pages):
        page_params = {**params, "pageIndex": page_index, "pageSize": NG_PAGE_SIZE}
        if body is None:
            envelope = await api.get_json(url, params=page_params, permission=permission)
        else:
            envelope = await api.post_json(url, body, params=page_params, permission=permission)
        data = envelope.get("data") if isinstance(envelope, dict) else None
        content = data.get("content") if isinstance(data, dict) else None
        if not isinstance(data, dict) or not isinstance(content, list):
            raise UnexpectedPayload("harness: a NextGen page without data.content")
        if not content:
            return
        yield content
        total_pages = data.get("totalPages")
        if isinstance(total_pages, int) and page_index + 1 >= total_pages:
            return
    raise UnexpectedPayload("harness: a NextGen listing has more than the page limit")


def scope_name(org: str | None, project: str | None) -> str:
    """The cache's scope text: account, org/ORG or org/ORG/project/PROJECT."""
    if org and project:
        return f"org/{org}/project/{project}"
    if org:
        return f"org/{org}"
    return "account"


class _NgGroup(WireModel):
    identifier: str = Field(min_length=1)
    name: str | None = None
    org_identifier: str | None = None
    project_identifier: str | None = None
    users: list[str] | None = None
    externally_managed: bool | None = None
    harness_managed: bool | None = None
    # Lombok's isSsoLinked serialises as ssoLinked; generated clients know both (3.3).
    sso_linked: bool | None = Field(
        default=None, validation_alias=AliasChoices("ssoLinked", "isSsoLinked")
    )


def _ng_group_records(wire: _NgGroup) -> list[Record]:
    scope = scope_name(wire.org_identifier, wire.project_identifier)
    managed = bool(wire.externally_managed)
    records: list[Record] = [
        HarnessGroup(
            scope=scope,
            identifier=wire.identifier,
            name=wire.name or "",
            externally_managed=managed,
            sso_linked=bool(wire.sso_linked),
            harness_managed=bool(wire.harness_managed),
            in_ng=True,
        )
    ]
    records += [
        HarnessGroupMember(scope=scope, group_identifier=wire.identifier, user_id=user_id)
        for user_id in wire.users or []
        if isinstance(user_id, str) and user_id
    ]
    return records


class _NgUser(WireModel):
    uuid: str = Field(min_length=1)
    email: str | None = None
    name: str | None = None
    disabled: bool | None = None
    externally_managed: bool | None = None


def _ng_user_record(wire: _NgUser) -> HarnessUser:
    return HarnessUser(
        id=wire.uuid,
        email=(wire.email or "").lower(),
        name=wire.name or "",
        active=None if wire.disabled is None else not wire.disabled,
        in_ng=True,
    )


class NextGenCollector:
    """harness.ng: every NextGen user group (native ones too, child scopes where allowed)."""

    source: SourceName = "harness.ng"

    def __init__(self, api: ApiClient, endpoints: HarnessEndpoints, account_id: str) -> None:
        self._api = api
        self._ng = endpoints.ng
        self._account = account_id

    async def collect(self, watermark: str | None) -> Batch:
        """All groups with their members, and all users, as snapshots of the NextGen rows."""
        return await collect_whole(self, watermark)

    async def collect_into(self, watermark: str | None, stage: RecordSink) -> Batch:
        """`collect`, each page's records handed to `stage`."""
        skipped = 0
        async for items in self._groups():
            groups, bad = await parse_page(items, _NgGroup, _ng_group_records, "NextGen user group")
            skipped += bad
            await stage([record for group_records in groups for record in group_records])
        async for items in ng_pages(
            self._api,
            f"{self._ng}/user/batch",
            params={"accountIdentifier": self._account},
            permission=USERS_VIEW,
            body={},
        ):
            users, bad = await parse_page(items, _NgUser, _ng_user_record, "NextGen user")
            await stage(users)
            skipped += bad
        return Batch(
            source="harness.ng",
            snapshots=[
                Snapshot(table="harness_groups", where={"in_ng": 1}, clear="in_ng"),
                Snapshot(table="harness_group_members"),
                Snapshot(table="harness_users", where={"in_ng": 1}, clear="in_ng"),
            ],
            skipped=skipped,
        )

    async def _groups(self) -> AsyncIterator[list[Any]]:
        params: dict[str, str | int] = {
            "accountIdentifier": self._account,
            "filterType": "INCLUDE_CHILD_SCOPE_GROUPS",
        }
        url = f"{self._ng}/user-groups"
        try:
            first = True
            async for items in ng_pages(self._api, url, params=params, permission=GROUPS_VIEW):
                first = False
                yield items
            return
        except UnexpectedPayload as error:
            # Child-scope listing is UNCONFIRMED for API keys: fall back to the account scope.
            if error.status != 400 or not first:
                raise
            log.info("harness: child-scope group listing refused; listing account groups only")
        params.pop("filterType")
        async for items in ng_pages(self._api, url, params=params, permission=GROUPS_VIEW):
            yield items


# --- authentication settings (harness-api.md 3.5) ----------------------------------------


class _AuthSetting(WireModel):
    settings_type: str | None = None
    identifier: str | None = None
    display_name: str | None = None
    friendly_saml_name: str | None = None
    origin: str | None = None
    client_id: str | None = None
    authentication_enabled: bool | None = None


class SsoCollector:
    """harness.sso: the account's authentication settings (which SAML app signs users in)."""

    source: SourceName = "harness.sso"

    def __init__(self, api: ApiClient, endpoints: HarnessEndpoints, account_id: str) -> None:
        self._api = api
        self._ng = endpoints.ng
        self._account = account_id

    async def collect(self, watermark: str | None) -> Batch:
        """Every authentication setting, as a snapshot."""
        resource = await self._settings()
        mechanism = resource.get("authenticationMechanism")
        items = resource.get("ngAuthSettings") or []
        if not isinstance(items, list):
            raise UnexpectedPayload("harness: ngAuthSettings is not a list")
        settings, skipped = parse_items(
            items, _AuthSetting, lambda wire: _sso_record(wire, mechanism), "auth setting"
        )
        return Batch(
            source="harness.sso",
            records=dedupe(settings),
            snapshots=[Snapshot(table="harness_sso_settings")],
            skipped=skipped,
        )

    async def _settings(self) -> dict[str, Any]:
        params = {"accountIdentifier": self._account}
        permission = "core_authsetting_view (Authentication Settings: View)"
        # v2 lists every IdP; v1 refuses (400) when multiple IdPs are enabled, and older
        # installs may lack v2: try v2, then v1.
        try:
            body = await self._api.get_json(
                f"{self._ng}/authentication-settings/v2", params=params, permission=permission
            )
        except UnexpectedPayload as error:
            if error.status not in (400, 404, 405):
                raise
            body = await self._api.get_json(
                f"{self._ng}/authentication-settings", params=params, permission=permission
            )
        resource = body.get("resource") if isinstance(body, dict) else None
        if resource is None and isinstance(body, dict):
            resource = body.get("data")
        if not isinstance(resource, dict):
            raise UnexpectedPayload("harness: authentication settings without a resource")
        return resource


def _sso_record(wire: _AuthSetting, mechanism: object) -> SsoSetting:
    kind = wire.settings_type or ""
    active = mechanism == kind and wire.authentication_enabled is not False
    return SsoSetting(
        id=wire.identifier or kind or "unknown",
        sso_type=kind,
        display_name=wire.friendly_saml_name or wire.display_name or "",
        origin=wire.origin or "",
        client_id=wire.client_id or "",
        authentication_enabled=active,
    )


# --- role assignments bound to user groups (harness-api.md 8) ----------------------------


class _Principal(WireModel):
    identifier: str = Field(min_length=1)
    type: str | None = None
    scope_level: str | None = None


class _RoleAssignmentBody(WireModel):
    identifier: str = Field(min_length=1)
    role_identifier: str | None = None
    resource_group_identifier: str | None = None
    principal: _Principal
    disabled: bool | None = None


class _RoleScope(WireModel):
    org_identifier: str | None = None
    project_identifier: str | None = None


class _RoleAssignmentRow(WireModel):
    role_assignment: _RoleAssignmentBody
    scope: _RoleScope | None = None


def _role_record(default_scope: tuple[str | None, str | None]) -> Callable[..., RoleAssignment]:
    def build(wire: _RoleAssignmentRow) -> RoleAssignment:
        org, project = default_scope
        if wire.scope is not None and (wire.scope.org_identifier or wire.scope.project_identifier):
            org, project = wire.scope.org_identifier, wire.scope.project_identifier
        scope = scope_name(org, project)
        body = wire.role_assignment
        # A null principal scope level means the assignment's own level (harness-api.md 8.7).
        level = body.principal.scope_level or (
            "project" if project else "organization" if org else "account"
        )
        return RoleAssignment(
            identifier=body.identifier,
            scope=scope,
            principal_identifier=body.principal.identifier,
            principal_scope=level,
            principal_type=body.principal.type or "",
            role_identifier=body.role_identifier or "",
            resource_group_identifier=body.resource_group_identifier or "",
            disabled=bool(body.disabled),
        )

    return build


class RolesCollector:
    """harness.roles: role bindings of user groups at the account, every org and project.

    The public ``/filter`` endpoint is exact-scope only, so we ask each scope the key can see
    (harness-api.md 8.7 option 1), always with ``principalTypeFilter`` so a missing permission
    is an error rather than an empty answer (8.4).
    """

    source: SourceName = "harness.roles"

    def __init__(self, api: ApiClient, endpoints: HarnessEndpoints, account_id: str) -> None:
        self._api = api
        self._ng = endpoints.ng
        self._authz = endpoints.authz
        self._account = account_id

    async def collect(self, watermark: str | None) -> Batch:
        """Every USER_GROUP role assignment in every visible scope, as a snapshot."""
        records: list[Record] = []
        skipped = 0
        for org, project in await self._scopes():
            params: dict[str, str | int] = {"accountIdentifier": self._account}
            if org:
                params["orgIdentifier"] = org
            if project:
                params["projectIdentifier"] = project
            async for items in ng_pages(
                self._api,
                f"{self._authz}/roleassignments/filter",
                params=params,
                permission=GROUPS_VIEW,
                body={"principalTypeFilter": ["USER_GROUP"]},
            ):
                found, bad = await parse_page(
                    items, _RoleAssignmentRow, _role_record((org, project)), "role assignment"
                )
                records += found
                skipped += bad
        return Batch(
            source="harness.roles",
            records=dedupe(records),
            snapshots=[Snapshot(table="harness_role_assignments")],
            skipped=skipped,
        )

    async def _scopes(self) -> list[tuple[str | None, str | None]]:
        scopes: list[tuple[str | None, str | None]] = [(None, None)]
        account = {"accountIdentifier": self._account}
        async for items in ng_pages(
            self._api,
            f"{self._ng}/organizations",
            params=account,
            permission="core_organization_view",
        ):
            scopes += [(org, None) for org in _identifiers(items, "organization")]
        async for items in ng_pages(
            self._api, f"{self._ng}/projects", params=account, permission="core_project_view"
        ):
            for item in items:
                project = item.get("project") if isinstance(item, dict) else None
                if isinstance(project, dict) and project.get("identifier"):
                    scopes.append(
                        (project.get("orgIdentifier") or "default", project["identifier"])
                    )
        return list(dict.fromkeys(scopes))


def _identifiers(items: Iterable[Any], key: str) -> list[str]:
    found = []
    for item in items:
        inner = item.get(key) if isinstance(item, dict) else None
        if isinstance(inner, dict) and isinstance(inner.get("identifier"), str):
            found.append(inner["identifier"])
    return found


def make_harness_collectors(
    harness: HarnessConnection, *, api: ApiClient, clock: Callable[[], datetime]
) -> list[Collector]:
    """The four Harness collectors for one account."""
    endpoints = harness.endpoints
    return [
        ScimCollector(api, endpoints),
        NextGenCollector(api, endpoints, harness.account_id),
        SsoCollector(api, endpoints, harness.account_id),
        RolesCollector(api, endpoints, harness.account_id),
    ]
