"""Hand-built caches for the dashboard tests: a small tenant saved through Cache.save_batch."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from dashboard.settings import PollingSettings, source_intervals
from store.cache import Cache
from store.detail import pack_detail
from store.models import (
    SOURCES,
    AppRoleAssignment,
    Batch,
    EntraGroup,
    EntraMembership,
    EntraUser,
    HarnessGroup,
    HarnessGroupMember,
    HarnessUser,
    PollRun,
    ProvisioningEvent,
    Record,
    RoleAssignment,
    SourceName,
    SsoSetting,
    SyncJob,
)

NOW = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)
"""The frozen clock of every dashboard test."""

INTERVALS = source_intervals(PollingSettings())

USER_ROLE = "11111111-1111-1111-1111-111111111111"
DEFAULT_ACCESS = "00000000-0000-0000-0000-000000000000"

HOSTILE = (
    "[bold red]x[/]",
    "[link=https://evil.example]verify[/link]",
    "[@click=app.quit]click me[/]",
    "\x1b]0;pwned\x07title",
    "\x1b[2Jclear",
    "admin\u202egnp.exe",
    "[/]",
    "\x9b31mred",
    "A" * 10_000,
)
"""Names an attacker could give an Entra or Harness object."""


def frozen_clock() -> datetime:
    return NOW


Namer = Callable[[int, str], str]


def plain_names(_index: int, name: str) -> str:
    return name


def hostile_names(index: int, name: str) -> str:
    return HOSTILE[index % len(HOSTILE)] + name


@dataclass
class Tenant:
    """What the builder saved, so tests can compare screens with it."""

    events: list[ProvisioningEvent] = field(default_factory=list)
    user_names: dict[str, str] = field(default_factory=dict)


def _event(
    number: int,
    minutes_ago: int,
    cycle: str,
    source_id: str,
    name: str,
    *,
    status: str = "success",
    action: str = "update",
    source_type: str = "User",
    error_code: str = "",
    reason: str = "",
) -> ProvisioningEvent:
    detail = {
        "steps": [
            {"name": "EntryImport", "status": "success", "description": f"Retrieved {name}"},
            {"name": "EntryExportUpdate", "status": status, "description": reason or "ok"},
        ],
        "modifiedProperties": [
            {"displayName": "displayName", "oldValue": "", "newValue": name},
        ],
    }
    return ProvisioningEvent(
        id=f"evt-{number:04d}",
        activity_at=NOW - timedelta(minutes=minutes_ago),
        job_id="Harness.nextgen",
        cycle_id=cycle,
        change_id=f"chg-{number}",
        service_principal_id="sp-nextgen",
        action=action,
        status=status,
        source_id=source_id,
        source_type=source_type,
        source_name=name,
        target_id=f"h-{source_id}" if status == "success" else "",
        error_code=error_code,
        error_category="NonServiceFailure" if error_code else "",
        reason=reason,
        detail=pack_detail(detail),
    )


_CONFLICT = (
    "Failed to create Group 'Platform Team' in Harness; Error: 409 Conflict. "
    "Try using different user group identifier. This operation was retried 1 times. "
    "It will be retried again after this date: 11/28/2026 11:10:00 AM UTC"
)
_INCOMPATIBLE = "The SCIM endpoint is not fully compatible: HTTP status code 400"


def provisioning_events(names: Namer) -> list[ProvisioningEvent]:
    """Three cycles of the NextGen job; bob fails twice (escalated), a group once."""
    events: list[ProvisioningEvent] = []
    people = [("u-alice", "Alice Adams"), ("u-bob", "Bob Brown"), ("u-carol", "Carol Chu")]
    for cycle_number, minutes in enumerate((90, 50, 10)):
        cycle = f"cycle-{cycle_number + 1}"
        for offset, (user_id, name) in enumerate(people):
            failing = user_id == "u-bob" and cycle_number > 0
            events.append(
                _event(
                    len(events) + 1,
                    minutes - offset,
                    cycle,
                    user_id,
                    names(len(events), name),
                    status="failure" if failing else "success",
                    error_code="SystemForCrossDomainIdentityManagementServiceIncompatible"
                    if failing
                    else "",
                    reason=names(len(events), _INCOMPATIBLE) if failing else "",
                )
            )
    events.append(
        _event(
            len(events) + 1,
            8,
            "cycle-3",
            "g-platform",
            names(len(events), "Platform Team"),
            status="failure",
            action="create",
            source_type="Group",
            error_code="HarnessConflict",
            reason=_CONFLICT,
        )
    )
    return events


def jobs() -> list[SyncJob]:
    """A healthy NextGen job and a quarantined FirstGen job."""
    return [
        SyncJob(
            service_principal_id="sp-nextgen",
            job_id="Harness.nextgen",
            app="nextgen",
            schedule_state="Active",
            interval_seconds=2400,
            status_code="Active",
            last_began=NOW - timedelta(minutes=12),
            last_ended=NOW - timedelta(minutes=8),
            last_state="EntryLevelErrors",
            observed_at=NOW - timedelta(minutes=1),
        ),
        SyncJob(
            service_principal_id="sp-firstgen",
            job_id="Harness.firstgen",
            app="firstgen",
            schedule_state="Active",
            interval_seconds=2400,
            status_code="Quarantine",
            last_began=NOW - timedelta(hours=5),
            last_ended=NOW - timedelta(hours=5),
            quarantine_reason="EncounteredQuarantineException",
            quarantine_series_began=NOW - timedelta(days=2),
            quarantine_current_began=NOW - timedelta(hours=5),
            quarantine_next_attempt=NOW + timedelta(hours=3),
            observed_at=NOW - timedelta(minutes=1),
        ),
    ]


def directory(names: Namer) -> tuple[list[Record], list[Record]]:
    """(assignments, users/groups/memberships) of the Entra side."""
    users: list[Record] = [
        EntraUser(
            id=user_id,
            user_principal_name=f"{handle}@example.com",
            mail=f"{handle}@example.com",
            display_name=names(index, display),
            account_enabled=True,
        )
        for index, (user_id, handle, display) in enumerate(
            (
                ("u-alice", "alice", "Alice Adams"),
                ("u-bob", "bob", "Bob Brown"),
                ("u-carol", "carol", "Carol Chu"),
                ("u-erin", "erin", "Erin Nested"),
            )
        )
    ]
    groups: list[Record] = [
        EntraGroup(id="g-platform", display_name=names(1, "Platform Team")),
        EntraGroup(id="g-platform2", display_name="Platform-Team"),
        EntraGroup(id="g-ops", display_name=names(2, "Ops")),
    ]
    members: list[Record] = [
        EntraMembership(group_id="g-platform", member_id="u-alice", direct=True),
        EntraMembership(group_id="g-platform", member_id="u-bob", direct=True),
        EntraMembership(group_id="g-platform", member_id="u-erin", direct=False),
        EntraMembership(group_id="g-ops", member_id="u-alice", direct=True),
        EntraMembership(group_id="g-ops", member_id="u-carol", direct=True),
    ]
    assignments: list[Record] = [
        assignment("a1", "nextgen", "Group", "g-platform", names(1, "Platform Team")),
        assignment("a2", "nextgen", "Group", "g-platform2", "Platform-Team"),
        assignment("a3", "nextgen", "Group", "g-ops", names(2, "Ops")),
        assignment("a4", "nextgen", "User", "u-carol", names(3, "Carol Chu")),
        assignment("a5", "firstgen", "User", "u-alice", "Alice Adams"),
        assignment("a6", "nextgen", "User", "u-erin", "Erin Nested", role=DEFAULT_ACCESS),
    ]
    return assignments, users + groups + members


def assignment(
    assignment_id: str,
    app: str,
    principal_type: str,
    principal_id: str,
    name: str,
    role: str = USER_ROLE,
) -> AppRoleAssignment:
    """An assignment of a user or group to one of the two apps (`sp-<app>`)."""
    return AppRoleAssignment(
        id=assignment_id,
        app=app,
        resource_id=f"sp-{app}",
        principal_id=principal_id,
        principal_type=principal_type,
        principal_name=name,
        app_role_id=role,
    )


def harness(names: Namer) -> dict[SourceName, list[Record]]:
    """Harness users and groups (one drifted, one native same-name), SSO and roles."""
    users: list[Record] = [
        HarnessUser(
            id=f"h-{user_id}",
            email=f"{handle}@example.com",
            name=names(index, handle.title()),
            in_scim=True,
            in_ng=True,
            active=True,
        )
        for index, (user_id, handle) in enumerate(
            (("u-alice", "alice"), ("u-bob", "bob"), ("u-carol", "carol"), ("u-x", "mallory"))
        )
    ]
    groups: list[Record] = [
        HarnessGroup(identifier="Ops", name=names(2, "Ops"), externally_managed=True, in_scim=True),
        HarnessGroup(identifier="Platform_Team_native", name="Platform Team", in_ng=True),
    ]
    members: list[Record] = [
        HarnessGroupMember(group_identifier="Ops", user_id="h-u-alice"),
    ]
    return {
        "harness.scim": users,
        "harness.ng": groups + members,
        "harness.sso": [
            SsoSetting(
                id="saml-1",
                sso_type="SAML",
                display_name="Entra FirstGen",
                authentication_enabled=True,
            )
        ],
        "harness.roles": [
            RoleAssignment(identifier="ra-1", principal_identifier="Other", role_identifier="r")
        ],
    }


def build_cache(
    path: Path, *, names: Namer = plain_names, failing: tuple[SourceName, ...] = ()
) -> Tenant:
    """Save a small tenant into a new cache at `path`; `failing` sources end with a failed poll."""
    tenant = Tenant(events=provisioning_events(names))
    assignments, entra = directory(names)
    by_source: dict[SourceName, list[Record]] = {
        "graph.provisioning": list(tenant.events),
        "graph.jobs": list(jobs()),
        "graph.assignments": assignments,
        "graph.directory": entra,
        **harness(names),
    }
    finished = NOW - timedelta(minutes=1)
    with Cache.open_writer(path) as cache:
        for source in SOURCES:
            batch = Batch(source=source, records=by_source.get(source, []))
            cache.save_batch(batch, finished - timedelta(seconds=5), finished)
        for source in failing:
            cache.record_failed_poll(failed_poll(source, names(0, "connection refused")))
    return tenant


def failed_poll(source: SourceName, error: str) -> PollRun:
    return PollRun(
        source=source,
        started_at=NOW - timedelta(seconds=40),
        finished_at=NOW - timedelta(seconds=30),
        ok=False,
        error=error,
        error_kind="unavailable",
    )


def empty_cache(path: Path) -> None:
    with Cache.open_writer(path):
        pass


def failing_users(count: int, *, same_time: bool = False) -> list[ProvisioningEvent]:
    """`count` users whose only event failed, oldest first (the Retries screen's order).

    With `same_time` every failure has the same timestamp, so the retry order ties.
    """
    return [
        _event(
            1000 + index,
            300 if same_time else 300 + count - index,
            "cycle-0",
            f"u-fail-{index:04d}",
            f"Failing User {index:04d}",
            status="failure",
            action="create",
            error_code="HarnessConflict",
            reason="409 Conflict",
        )
        for index in range(count)
    ]


def assigned_groups(count: int) -> tuple[list[Record], list[Record]]:
    """`count` more Entra groups assigned to the NextGen app: (assignments, groups)."""
    groups: list[Record] = [
        EntraGroup(id=f"g-extra-{index:04d}", display_name=f"Extra Team {index:04d}")
        for index in range(count)
    ]
    assignments: list[Record] = [
        assignment(f"a-extra-{index:04d}", "nextgen", "Group", group.id, group.display_name)
        for index, group in enumerate(groups)
        if isinstance(group, EntraGroup)
    ]
    return assignments, groups


def add_records(path: Path, by_source: dict[SourceName, list[Record]]) -> None:
    """Save more records into the cache at `path`, one poll per source."""
    finished = NOW - timedelta(seconds=30)
    with Cache.open_writer(path) as cache:
        for source, records in by_source.items():
            cache.save_batch(Batch(source=source, records=records), finished, finished)
