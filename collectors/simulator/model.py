"""The simulated tenant's state on both sides of the wire, as plain dataclasses (and a tuple)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Generic, Literal, NamedTuple, TypeVar

DEFAULT_ACCESS_ROLE_ID = "00000000-0000-0000-0000-000000000000"
PrincipalType = Literal["User", "Group"]
K = TypeVar("K")
V = TypeVar("V")


@dataclass(slots=True)
class EntraUser:
    """A user in the Entra directory."""

    id: str
    display_name: str
    given_name: str
    surname: str
    user_principal_name: str
    account_enabled: bool = True
    created: datetime | None = None

    @property
    def mail(self) -> str:
        return self.user_principal_name


@dataclass(slots=True)
class EntraGroup:
    """A security group with its direct members (users and nested groups)."""

    id: str
    display_name: str
    member_user_ids: list[str] = field(default_factory=list)
    member_group_ids: list[str] = field(default_factory=list)
    created: datetime | None = None


@dataclass(slots=True)
class Assignment:
    """An appRoleAssignment of a user or group to an app's service principal."""

    id: str
    principal_id: str
    principal_type: PrincipalType
    app_role_id: str
    created: datetime


@dataclass(slots=True)
class AppIntegration:
    """One Harness enterprise app in Entra (NextGen or FirstGen) with its provisioning job."""

    sp_id: str
    app_id: str
    display_name: str
    generation: Literal["nextgen", "firstgen"]
    entity_id: str
    user_role_id: str
    job_id: str
    assignments: list[Assignment] = field(default_factory=list)


class HarnessUser(NamedTuple):
    """A Harness user (NextGen account member unless ``ng_member`` is False).

    Immutable: a changed user is a new one put into ``HarnessState.users``, so the table (and
    the SCIM listing kept from it) sees every change. A tuple, as the ``large`` scenario builds
    100,000 at a time: a frozen dataclass took four times as long to build.
    """

    uuid: str
    email: str
    name: str
    given_name: str
    family_name: str
    external_id: str | None = None
    imported: bool = True
    externally_managed: bool = True
    disabled: bool = False
    locked: bool = False
    ng_member: bool = True
    created: datetime | None = None
    modified: datetime | None = None


@dataclass(slots=True)
class HarnessGroup:
    """A NextGen user group at account scope."""

    identifier: str
    name: str
    users: list[str] = field(default_factory=list)
    externally_managed: bool = False
    harness_managed: bool = False
    sso_linked: bool = False
    description: str = ""
    created: datetime | None = None
    modified: datetime | None = None


@dataclass(slots=True)
class FirstGenGroup:
    """A FirstGen user group (ids are UUIDs, not identifiers)."""

    uuid: str
    name: str
    users: list[str] = field(default_factory=list)
    imported_by_scim: bool = True


@dataclass(slots=True)
class RoleAssignment:
    """A Harness role binding of a principal at a scope."""

    identifier: str
    principal_identifier: str
    principal_type: str
    role_identifier: str
    resource_group_identifier: str
    org_identifier: str | None = None
    project_identifier: str | None = None
    principal_scope_level: str | None = "account"
    disabled: bool = False
    managed: bool = False
    created_ms: int = 0


@dataclass(slots=True)
class Escrow:
    """An object-level failure Entra holds for retry in a later cycle."""

    object_id: str
    object_type: PrincipalType
    display_name: str
    action: str
    error_code: str
    reason: str
    first_failure: datetime
    last_failure: datetime
    attempts: int
    retry_after: datetime


@dataclass(slots=True)
class Quarantine:
    """A provisioning job's quarantine series."""

    reason: str
    error_code: str
    error_message: str
    series_began: datetime
    current_began: datetime
    next_attempt: datetime
    series_count: int = 1


@dataclass(slots=True)
class Execution:
    """One run of a provisioning job (synchronizationTaskExecution)."""

    activity_identifier: str
    began: datetime
    ended: datetime
    state: Literal["Succeeded", "Failed", "EntryLevelErrors"]
    count_exported: int = 0
    count_escrowed: int = 0
    count_imported: int = 0
    count_entitled: int = 0
    error_code: str | None = None
    error_message: str = ""


@dataclass(slots=True)
class JobState:
    """A provisioning job's schedule and status."""

    code: Literal["NotConfigured", "NotRun", "Active", "Paused", "Quarantine"] = "NotRun"
    schedule_state: Literal["Active", "Disabled", "Paused"] = "Active"
    last_execution: Execution | None = None
    last_successful: Execution | None = None
    last_with_exports: Execution | None = None
    steady_first: datetime | None = None
    steady_last: datetime | None = None
    quarantine: Quarantine | None = None
    successive_failures: int = 0
    synced_users: int = 0
    synced_groups: int = 0
    next_cycle_at: datetime | None = None
    cycle_count: int = 0


class LazyTable(Generic[K, V]):
    """A keyed table whose base rows are computed from an index, with overrides on top.

    Small scenarios keep everything in ``extra``; the ``large`` scenario derives its 100,000 rows
    from ``make(index)`` and decodes keys back to indexes, so memory stays bounded.
    """

    def __init__(
        self,
        make: Callable[[int], V] | None = None,
        base_count: int = 0,
        index_of: Callable[[K], int | None] | None = None,
    ) -> None:
        self._make = make
        self.base_count = base_count if make else 0
        self._index_of = index_of
        self.extra: dict[K, V] = {}
        self.overrides: dict[int, V] = {}
        self.deleted_base: set[int] = set()
        self._rows: list[V] | None = None

    def __len__(self) -> int:
        return self.base_count - len(self.deleted_base) + len(self.extra)

    def base_row(self, index: int) -> V | None:
        if self._make is None or not 0 <= index < self.base_count or index in self.deleted_base:
            return None
        return self.overrides.get(index) or self._make(index)

    def get(self, key: K) -> V | None:
        if key in self.extra:
            return self.extra[key]
        index = self._index_of(key) if self._index_of else None
        return None if index is None else self.base_row(index)

    def put(self, key: K, value: V) -> None:
        self._rows = None
        index = self._index_of(key) if self._index_of else None
        if index is not None and 0 <= index < self.base_count:
            self.overrides[index] = value
            self.deleted_base.discard(index)
        else:
            self.extra[key] = value

    def delete(self, key: K) -> None:
        self._rows = None
        if self.extra.pop(key, None) is not None:
            return
        index = self._index_of(key) if self._index_of else None
        if index is not None and 0 <= index < self.base_count:
            self.deleted_base.add(index)
            self.overrides.pop(index, None)

    def __contains__(self, key: K) -> bool:
        return self.get(key) is not None

    def values(self) -> Iterator[V]:
        for index in range(self.base_count):
            row = self.base_row(index)
            if row is not None:
                yield row
        yield from list(self.extra.values())

    def rows(self) -> list[V]:
        """Every row, as `values()`, kept until the next `put` or `delete`.

        For listings paged over the whole table: building 100,000 base rows takes seconds,
        and rebuilding them for each page of 100 made a full listing quadratic.
        """
        if self._rows is None:
            self._rows = list(self.values())
        return self._rows

    def slice(self, start: int, count: int) -> list[V]:
        """Rows ``start`` .. ``start + count`` in table order (cheap for base rows)."""
        rows: list[V] = []
        position = start
        while len(rows) < count and position < self.base_count:
            row = self.base_row(position)
            if row is not None:
                rows.append(row)
            position += 1
        if len(rows) < count:
            extra_start = max(0, start - self.base_count)
            rows.extend(list(self.extra.values())[extra_start : extra_start + count - len(rows)])
        return rows
