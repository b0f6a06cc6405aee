"""Harness's side of the simulated tenant and the SCIM operations Entra performs on it.

The operations follow reference/harness-api.md: group identifiers from the display name (section 2),
409 on identifier collisions in core@2023-12 or adoption in the newer core (2.4), unknown member ids
silently dropped (5.17), ``active=false`` removing the user from the account (1.5), renames keeping
the identifier (5.19). FirstGen SCIM keeps its own users and groups (1.10).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime

from collectors.simulator import ids
from collectors.simulator.identifiers import HarnessGeneration, group_identifier, identifier_problem
from collectors.simulator.model import (
    FirstGenGroup,
    HarnessGroup,
    HarnessUser,
    LazyTable,
    RoleAssignment,
)

_INDEXED_EMAIL = re.compile(r"(\d+)@")


@dataclass(slots=True)
class ScimOutcome:
    """The result of one SCIM call Entra made to Harness."""

    status: int
    target_id: str = ""
    detail: str = ""
    adopted: bool = False

    @property
    def ok(self) -> bool:
        return self.status < 300


@dataclass
class HarnessState:
    """Users, groups, role bindings and SSO settings of one Harness account."""

    seed: int
    account_id: str
    generation: HarnessGeneration = "core-2023-12"
    users: LazyTable[str, HarnessUser] = field(default_factory=LazyTable)
    groups: dict[str, HarnessGroup] = field(default_factory=dict)
    fg_users: dict[str, HarnessUser] = field(default_factory=dict)
    fg_groups: dict[str, FirstGenGroup] = field(default_factory=dict)
    role_assignments: list[RoleAssignment] = field(default_factory=list)
    saml_settings: list[dict[str, object]] = field(default_factory=list)
    orgs: list[tuple[str, str]] = field(default_factory=lambda: [("default", "default")])
    projects: list[tuple[str, str, str]] = field(default_factory=list)
    _email_index: dict[str, str] = field(default_factory=dict)
    _counter: int = 0
    _imported: tuple[list[HarnessUser], list[HarnessUser]] | None = field(
        default=None, init=False, repr=False, compare=False
    )

    def new_uuid(self, kind: str = "hu-extra") -> str:
        self._counter += 1
        return ids.harness_uuid(self.seed, kind, self._counter)

    def add_user(self, user: HarnessUser) -> None:
        self.users.put(user.uuid, user)
        self._email_index[user.email] = user.uuid

    def find_user_by_email(self, email: str) -> HarnessUser | None:
        uuid = self._email_index.get(email)
        if uuid is not None:
            return self.users.get(uuid)
        match = _INDEXED_EMAIL.search(email)
        if match and self.users.base_count:
            candidate = self.users.base_row(int(match.group(1)))
            if candidate is not None and candidate.email == email:
                return candidate
        return None

    def scim_page(self, skip: int, count: int) -> list[HarnessUser]:
        """A page of SCIM ``GET /Users`` before NextGen drops its non-members (harness-api.md 1.4).

        Harness walks its imported users (here: the account's, then FirstGen's) and skips
        ``startIndex - 1`` of them. The imported users are kept until the next user put or
        delete (users are immutable: every change is one), so a page is a slice: walking the
        skipped rows made a full listing quadratic.
        """
        imported = self._imported_users()
        page = imported[skip : skip + count]
        if len(page) < count:  # past the account's users: FirstGen's (a few) come next
            firstgen = [user for user in self.fg_users.values() if user.imported]
            offset = max(0, skip - len(imported))
            page += firstgen[offset : offset + count - len(page)]
        return page

    def _imported_users(self) -> list[HarnessUser]:
        rows = self.users.rows()  # the same list until the next put or delete
        if self._imported is None or self._imported[0] is not rows:
            self._imported = (rows, [user for user in rows if user.imported])
        return self._imported[1]

    def remove_user(self, uuid: str) -> None:
        user = self.users.get(uuid)
        if user is not None:
            self._email_index.pop(user.email, None)
        self.users.delete(uuid)
        for group in self.groups.values():
            if uuid in group.users:
                group.users.remove(uuid)

    def scim_create_user(
        self, email: str, name: str, given: str, family: str, external_id: str, at: datetime
    ) -> ScimOutcome:
        email = email.lower()
        existing = self.find_user_by_email(email)
        if existing is not None:
            if not (existing.imported and existing.externally_managed and existing.ng_member):
                taken_over = existing._replace(
                    imported=True, externally_managed=True, ng_member=True
                )
                self.users.put(existing.uuid, taken_over)
            return ScimOutcome(201, existing.uuid)
        user = HarnessUser(
            self.new_uuid(), email, name, given, family, external_id, created=at, modified=at
        )
        self.add_user(user)
        return ScimOutcome(201, user.uuid)

    def scim_update_user(self, uuid: str, name: str, at: datetime) -> ScimOutcome:
        user = self.users.get(uuid)
        if user is None:
            return ScimOutcome(404, detail="User does not exist in NG")
        self.users.put(uuid, user._replace(name=name, modified=at))
        return ScimOutcome(200, uuid)

    def scim_deactivate_user(self, uuid: str) -> ScimOutcome:
        """NextGen treats ``active=false`` as removal from the account."""
        if self.users.get(uuid) is None:
            return ScimOutcome(404, detail="User does not exist in NG")
        self.remove_user(uuid)
        return ScimOutcome(204, uuid)

    def _known_members(self, member_uuids: list[str]) -> list[str]:
        return [uuid for uuid in member_uuids if uuid in self.users]

    def scim_create_group(
        self, display_name: str, member_uuids: list[str], at: datetime
    ) -> ScimOutcome:
        identifier = group_identifier(display_name, self.generation)
        problem = identifier_problem(identifier)
        if problem is not None:
            return ScimOutcome(409, detail=f"identifier: {problem}")
        existing = self.groups.get(identifier)
        if existing is not None and self.generation == "core-2023-12":
            return ScimOutcome(
                409,
                detail=f"Try using different user group identifier, [{identifier}] cannot be used",
            )
        if existing is not None:
            if not existing.externally_managed:
                existing.externally_managed = True
                existing.users = self._known_members(member_uuids)
                existing.modified = at
            return ScimOutcome(201, identifier, adopted=True)
        self.groups[identifier] = HarnessGroup(
            identifier,
            display_name,
            self._known_members(member_uuids),
            True,
            created=at,
            modified=at,
        )
        return ScimOutcome(201, identifier)

    def scim_patch_group(
        self, identifier: str, name: str | None, add: list[str], remove: list[str], at: datetime
    ) -> ScimOutcome:
        group = self.groups.get(identifier)
        if group is None or not group.externally_managed:
            return ScimOutcome(404)
        if name is not None:
            group.name = name  # the identifier never follows a rename
        for uuid in self._known_members(add):
            if uuid not in group.users:
                group.users.append(uuid)
        group.users = [uuid for uuid in group.users if uuid not in remove]
        group.modified = at
        return ScimOutcome(204, identifier)

    def scim_delete_group(self, identifier: str) -> ScimOutcome:
        group = self.groups.get(identifier)
        if group is None or not group.externally_managed:
            return ScimOutcome(401, detail="Group does not exist")
        del self.groups[identifier]
        return ScimOutcome(204, identifier)

    def fg_create_user(
        self, email: str, name: str, given: str, family: str, at: datetime
    ) -> ScimOutcome:
        email = email.lower()
        for user in self.fg_users.values():
            if user.email == email:
                return ScimOutcome(201, user.uuid)
        user = HarnessUser(
            self.new_uuid("fg-user"), email, name, given, family, ng_member=False, created=at
        )
        self.fg_users[user.uuid] = user
        return ScimOutcome(201, user.uuid)

    def fg_create_group(self, name: str, member_uuids: list[str]) -> ScimOutcome:
        for group in self.fg_groups.values():
            if group.name == name:
                return ScimOutcome(201, group.uuid)
        uuid = self.new_uuid("fg-group")
        known = [m for m in member_uuids if m in self.fg_users]
        self.fg_groups[uuid] = FirstGenGroup(uuid, name, known)
        return ScimOutcome(201, uuid)

    def bound_groups(self) -> set[str]:
        """Identifiers of account-level groups with at least one enabled role binding anywhere."""
        return {
            ra.principal_identifier
            for ra in self.role_assignments
            if ra.principal_type == "USER_GROUP" and not ra.disabled
        }
