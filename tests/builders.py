"""A small tenant written into a real cache through `Cache.save_batch`, for tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import count

from store import directory
from store.cache import Cache
from store.models import (
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
    SyncJob,
)

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
JOB = "scim.harness.0001"
SP = "sp-nextgen"
FIRSTGEN_SP = "sp-firstgen"
USER_ROLE = "11111111-2222-3333-4444-555555555555"
DEFAULT_ACCESS = directory.DEFAULT_ACCESS_ROLE
_ids = count(1)


class Tenant:
    """A cache under construction, saved through the real batch path."""

    def __init__(self, cache: Cache) -> None:
        self.cache = cache

    def save(self, source: SourceName, *records: Record) -> None:
        self.cache.save_batch(Batch(source=source, records=list(records)), NOW, NOW)

    def event(
        self,
        source_id: str,
        *,
        cycle: str,
        minutes_ago: float,
        status: str = "success",
        action: str = "create",
        source_type: str = "User",
        name: str = "",
        target_id: str = "",
        error_code: str = "",
        reason: str = "",
        job_id: str = JOB,
    ) -> None:
        self.save(
            "graph.provisioning",
            ProvisioningEvent(
                id=f"evt-{next(_ids)}",
                activity_at=NOW - timedelta(minutes=minutes_ago),
                job_id=job_id,
                cycle_id=cycle,
                service_principal_id=SP,
                action=action,
                status=status,
                source_id=source_id,
                source_type=source_type,
                source_name=name or source_id,
                target_id=target_id,
                error_code=error_code,
                error_category="failure" if status == "failure" else "",
                reason=reason,
            ),
        )

    def job(self, **changes: object) -> None:
        values: dict[str, object] = {
            "service_principal_id": SP,
            "job_id": JOB,
            "app": "nextgen",
            "schedule_state": "Active",
            "interval_seconds": 2400,
            "status_code": "Active",
            "last_began": NOW - timedelta(minutes=12),
            "last_ended": NOW - timedelta(minutes=10),
            "last_state": "Succeeded",
            "observed_at": NOW,
        }
        values.update(changes)
        self.save("graph.jobs", SyncJob.model_validate(values))

    def user(
        self,
        user_id: str,
        email: str,
        *,
        harness: bool = True,
        scim: bool = True,
        enabled: bool | None = None,
    ) -> None:
        self.save(
            "graph.directory",
            EntraUser(
                id=user_id,
                user_principal_name=email,
                mail=email,
                display_name=user_id,
                account_enabled=enabled,
            ),
        )
        if harness:
            self.save(
                "harness.scim",
                HarnessUser(id=f"h-{user_id}", email=email, name=user_id, in_scim=scim, in_ng=True),
            )

    def assign(
        self,
        principal_id: str,
        kind: str = "User",
        app: str = "nextgen",
        role: str = USER_ROLE,
        name: str = "",
    ) -> None:
        self.save(
            "graph.assignments",
            AppRoleAssignment(
                id=f"asg-{next(_ids)}",
                app=app,
                resource_id=SP if app == "nextgen" else FIRSTGEN_SP,
                principal_id=principal_id,
                principal_type=kind,
                principal_name=name or principal_id,
                app_role_id=role,
            ),
        )

    def group(
        self,
        group_id: str,
        name: str,
        *,
        direct: tuple[str, ...] = (),
        nested: tuple[str, ...] = (),
        app: str = "nextgen",
        role: str = USER_ROLE,
    ) -> None:
        self.save("graph.directory", EntraGroup(id=group_id, display_name=name))
        self.assign(group_id, "Group", app=app, role=role, name=name)
        for user_id in direct:
            self.save(
                "graph.directory",
                EntraMembership(group_id=group_id, member_id=user_id, direct=True),
            )
        for user_id in nested:
            self.save(
                "graph.directory",
                EntraMembership(group_id=group_id, member_id=user_id, direct=False),
            )

    def harness_group(
        self,
        identifier: str,
        name: str,
        *,
        scim: bool = True,
        members: tuple[str, ...] = (),
        bound: bool = True,
    ) -> None:
        self.save(
            "harness.ng",
            HarnessGroup(
                identifier=identifier, name=name, externally_managed=scim, in_scim=scim, in_ng=True
            ),
            *(
                HarnessGroupMember(group_identifier=identifier, user_id=f"h-{user}")
                for user in members
            ),
        )
        if bound:
            self.save(
                "harness.roles",
                RoleAssignment(
                    identifier=f"ra-{identifier}",
                    principal_identifier=identifier,
                    role_identifier="_account_viewer",
                ),
            )

    def poll(
        self, source: SourceName, *, ok: bool = True, minutes_ago: float = 0, error_kind: str = ""
    ) -> None:
        at = NOW - timedelta(minutes=minutes_ago)
        if ok:
            self.cache.save_batch(Batch(source=source), at, at)
        else:
            self.cache.record_failed_poll(
                PollRun(
                    source=source,
                    started_at=at,
                    finished_at=at,
                    ok=False,
                    error="boom",
                    error_kind=error_kind,
                )
            )
