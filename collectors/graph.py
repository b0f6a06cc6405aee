"""Microsoft Graph collectors: provisioning logs, sync jobs, app assignments, directory.

Wire models are private and lenient (unknown fields ignored, nulls tolerated, enum values kept
as text); they map onto the strict records of `store.models`. One malformed item is set aside
(counted in `Batch.skipped`, reason logged) and never loses its page.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import AliasChoices, Field

from collectors.base import Collector, RecordSink, UnexpectedPayload, sanitize_text
from collectors.config import GraphConnection, PollingConfig
from collectors.http import ApiClient
from collectors.wire import WireModel, collect_whole, dedupe, on_page, parse_items, parse_page
from store.detail import pack_detail
from store.models import (
    AppName,
    AppRoleAssignment,
    Batch,
    CoverageGapRecord,
    EntraGroup,
    EntraMembership,
    EntraUser,
    JobExecution,
    ProvisioningEvent,
    Record,
    Snapshot,
    SourceName,
    SyncJob,
    iso_utc,
)

log = logging.getLogger("scimwatch.collectors.graph")

_FIRST_BACKFILL_WINDOW = timedelta(hours=1)
"""The first backfill step: small, so the newest events are saved first and fast."""

_FUTURE_SKEW = timedelta(minutes=5)
"""Event times further ahead than this never move the watermark (reliability.md 4 row 4)."""


# --- provisioningObjectSummary (graph-api.md 1.6-1.8) -------------------------------------


class _Identity(WireModel):
    id: str | None = None
    display_name: str | None = None
    identity_type: str | None = None
    details: dict[str, Any] | None = None


class _Initiator(WireModel):
    id: str | None = None
    display_name: str | None = None
    # One doc example spells it initiatingType (graph-api.md 1.11 #2).
    initiator_type: str | None = Field(
        default=None, validation_alias=AliasChoices("initiatorType", "initiatingType")
    )


class _ErrorInfo(WireModel):
    error_code: str | None = None
    error_category: str | None = None
    reason: str | None = None
    additional_details: str | None = None
    recommended_action: str | None = None


class _StatusInfo(WireModel):
    status: str | None = None
    error_information: _ErrorInfo | None = None


class _BetaStatusInfo(_ErrorInfo):
    """The deprecated beta `statusInfo` (graph-api.md 1.9.4): status and error side by side."""

    status: str | None = None


class _ProvisioningEvent(WireModel):
    id: str = Field(min_length=1)
    activity_date_time: datetime
    tenant_id: str | None = None
    job_id: str | None = None
    cycle_id: str | None = None
    change_id: str | None = None
    provisioning_action: str | None = None
    action: str | None = None
    provisioning_status_info: _StatusInfo | None = None
    status_info: _BetaStatusInfo | None = None
    duration_in_milliseconds: int | None = None
    service_principal: _Identity | None = None
    source_identity: _Identity | None = None
    target_identity: _Identity | None = None
    source_system: _Identity | None = None
    target_system: _Identity | None = None
    initiated_by: _Initiator | None = None
    provisioning_steps: list[dict[str, Any]] | None = None
    modified_properties: list[dict[str, Any]] | None = None


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _event_record(wire: _ProvisioningEvent) -> ProvisioningEvent:
    status = wire.provisioning_status_info
    error = status.error_information if status else None
    beta = wire.status_info
    if error is None and beta is not None:
        error = beta
    action = wire.provisioning_action or _camel(wire.action) or "unknown"
    source = wire.source_identity or _Identity()
    target = wire.target_identity or _Identity()
    return ProvisioningEvent(
        id=wire.id,
        activity_at=_utc(wire.activity_date_time),
        job_id=wire.job_id or "",
        cycle_id=wire.cycle_id or "",
        change_id=wire.change_id or "",
        service_principal_id=(wire.service_principal.id or "") if wire.service_principal else "",
        action=action,
        status=(status.status if status else None) or (beta.status if beta else None) or "",
        source_id=source.id or "",
        source_type=source.identity_type or "",
        source_name=source.display_name or _detail_name(source.details),
        target_id=target.id or "",
        target_name=target.display_name or "",
        error_code=(error.error_code if error else None) or "",
        error_category=(error.error_category if error else None) or "",
        reason=(error.reason if error else None) or "",
        recommended_action=(error.recommended_action if error else None) or "",
        duration_ms=wire.duration_in_milliseconds,
        initiated_by=(wire.initiated_by.display_name or "") if wire.initiated_by else "",
        detail=_event_detail(wire, error),
    )


def _camel(text: str | None) -> str:
    """Beta PascalCase action names (``Create``) in the v1.0 spelling (``create``)."""
    return text[:1].lower() + text[1:] if text else ""


def _detail_name(details: dict[str, Any] | None) -> str:
    if not details:
        return ""
    for key in ("UserPrincipalName", "DisplayName", "ReportableIdentifier"):
        value = details.get(key)
        if isinstance(value, str) and value:
            return value
    return ""


def _event_detail(wire: _ProvisioningEvent, error: _ErrorInfo | None) -> bytes | None:
    detail: dict[str, Any] = {}
    if wire.provisioning_steps:
        detail["steps"] = wire.provisioning_steps
    if wire.modified_properties:
        detail["modifiedProperties"] = wire.modified_properties
    if error is not None and error.additional_details:
        detail["additionalDetails"] = error.additional_details
    for key, identity in (
        ("sourceIdentityDetails", wire.source_identity),
        ("targetIdentityDetails", wire.target_identity),
    ):
        if identity is not None and identity.details:
            detail[key] = identity.details
    return pack_detail(detail) if detail else None


def graph_time_literal(moment: datetime) -> str:
    """An OData DateTimeOffset literal: unquoted ISO 8601 UTC to the second (graph-api.md 1.3)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class ProvisioningState:
    """Where the provisioning log stands: the newest event saved, and any backfill left.

    Persisted as the source's watermark: a plain ISO time once the backfill is done (the
    newest activityDateTime saved), JSON while the first-run backfill is still walking back.
    """

    newest: datetime | None
    """The newest activityDateTime saved (None until an event was seen)."""
    covered: datetime
    """The time up to which the log has been read (the first poll's start, at least)."""
    backfill_to: datetime | None = None
    """The upper end of the next (older) backfill window; None once the backfill is done."""
    horizon: datetime | None = None
    """The oldest time the backfill goes back to (the retention limit at the first poll)."""

    @classmethod
    def parse(cls, watermark: str | None) -> ProvisioningState | None:
        """The state a watermark encodes; None for a first run (or an unreadable watermark)."""
        if not watermark:
            return None
        try:
            if watermark.startswith("{"):
                data = json.loads(watermark)
                return cls(
                    newest=_optional_time(data.get("newest")),
                    covered=datetime.fromisoformat(data["covered"]),
                    backfill_to=_optional_time(data.get("backfill_to")),
                    horizon=_optional_time(data.get("horizon")),
                )
            moment = datetime.fromisoformat(watermark)
        except (ValueError, KeyError, TypeError):
            log.warning("unreadable provisioning watermark; starting a fresh backfill")
            return None
        return cls(newest=_utc(moment), covered=_utc(moment))

    def dump(self) -> str:
        """The watermark text for this state."""
        if self.backfill_to is None:
            return iso_utc(self.newest or self.covered)
        return json.dumps(
            {
                "newest": iso_utc(self.newest) if self.newest else None,
                "covered": iso_utc(self.covered),
                "backfill_to": iso_utc(self.backfill_to),
                "horizon": iso_utc(self.horizon) if self.horizon else None,
            },
            sort_keys=True,
        )


def _optional_time(text: object) -> datetime | None:
    return _utc(datetime.fromisoformat(text)) if isinstance(text, str) and text else None


class ProvisioningCollector:
    """graph.provisioning: the provisioning log of the configured service principals.

    First run: walks the retention window back in `backfill_window` steps, newest first; each
    step is its own batch (``complete=False`` until the last) so a crash resumes where it
    stopped. Afterwards: everything newer than the watermark minus `overlap`, deduplicated by id
    (upserts), because log rows arrive late (graph-api.md 1.12, 7.8).
    """

    source: SourceName = "graph.provisioning"

    def __init__(
        self,
        api: ApiClient,
        *,
        graph_root: str,
        service_principal_ids: Iterable[str],
        polling: PollingConfig,
        clock: Callable[[], datetime],
        page_size: int = 500,
    ) -> None:
        self._api = api
        self._url = f"{graph_root}/auditLogs/provisioning"
        self._sp_ids = list(dict.fromkeys(service_principal_ids))
        self._polling = polling
        self._clock = clock
        self._page_size = page_size

    def _filter(self, since: datetime, until: datetime | None) -> str:
        parts = [f"activityDateTime gt {graph_time_literal(since)}"]
        if until is not None:
            parts.append(f"activityDateTime lt {graph_time_literal(until)}")
        principals = " or ".join(f"servicePrincipal/id eq '{sp_id}'" for sp_id in self._sp_ids)
        parts.append(f"({principals})" if len(self._sp_ids) > 1 else principals)
        return " and ".join(parts)

    async def collect(self, watermark: str | None) -> Batch:
        """One step: a backfill window while backfilling, else everything since the watermark."""
        return await collect_whole(self, watermark)

    async def collect_into(self, watermark: str | None, stage: RecordSink) -> Batch:
        """`collect`, each page of events handed to `stage`."""
        now = self._clock()
        state = ProvisioningState.parse(watermark)
        if state is None:
            state = ProvisioningState(
                newest=None,
                covered=now,
                backfill_to=now,
                horizon=now - self._polling.retention,
            )
        if state.backfill_to is not None:
            return await self._backfill_step(state, now, stage)
        return await self._incremental(state, now, stage)

    async def _backfill_step(
        self, state: ProvisioningState, now: datetime, stage: RecordSink
    ) -> Batch:
        assert state.backfill_to is not None
        horizon = state.horizon or (now - self._polling.retention)
        high = state.backfill_to
        # Windows grow from an hour, doubling up to `backfill_window`: the newest cycles are
        # saved (and on screen) within seconds whatever the backlog, then the walk speeds up.
        window = min(
            self._polling.backfill_window,
            max(_FIRST_BACKFILL_WINDOW, state.covered - high),
        )
        low = max(high - window, horizon)
        # `gt low` excludes events exactly at `low`: the next (older) window ends one second
        # later than this one starts, so nothing on a boundary is missed.
        fetched = await self._fetch(low, high + timedelta(seconds=1), stage)
        newest = self._newest(state.newest, fetched.newest, now)
        done = low <= horizon
        next_state = ProvisioningState(
            newest=newest,
            covered=state.covered,
            backfill_to=None if done else low,
            horizon=horizon,
        )
        total = (state.covered - horizon).total_seconds() or 1.0
        progress = min(1.0, (state.covered - low).total_seconds() / total)
        log.info(
            "graph.provisioning backfill %.0f%%: %s events back to %s",
            progress * 100,
            fetched.events,
            graph_time_literal(low),
        )
        return Batch(
            source="graph.provisioning",
            watermark=next_state.dump(),
            skipped=fetched.skipped,
            complete=done,
        )

    async def _incremental(
        self, state: ProvisioningState, now: datetime, stage: RecordSink
    ) -> Batch:
        since = (state.newest or state.covered) - self._polling.overlap
        oldest_available = now - self._polling.retention
        gaps: list[Record] = []
        if since < oldest_available:
            log.warning(
                "graph.provisioning: events before %s are past Entra's retention and cannot"
                " be fetched any more (coverage gap)",
                graph_time_literal(oldest_available),
            )
            gaps.append(
                CoverageGapRecord(
                    source="graph.provisioning",
                    gap_from=state.newest or state.covered,
                    gap_to=oldest_available,
                    detected_at=now,
                )
            )
            since = oldest_available
        fetched = await self._fetch(since, None, stage)
        newest = self._newest(state.newest, fetched.newest, now)
        next_state = ProvisioningState(newest=newest, covered=max(state.covered, newest or now))
        return Batch(
            source="graph.provisioning",
            records=gaps,
            watermark=next_state.dump() if newest else iso_utc(state.covered),
            skipped=fetched.skipped,
        )

    def _newest(
        self, previous: datetime | None, latest: datetime | None, now: datetime
    ) -> datetime | None:
        latest = latest or previous
        if latest is None:
            return None
        latest = min(latest, now + _FUTURE_SKEW)
        return max(latest, previous) if previous else latest

    async def _fetch(self, since: datetime, until: datetime | None, stage: RecordSink) -> _Fetched:
        """Hand every event of the window to `stage` a page at a time (the stage dedupes ids).

        A 400 on a continuation page means the skiptoken expired (graph-api.md 8 U2,
        reliability.md 4 row 20): the window is read again from its start, once.
        """
        fetched: _Fetched
        for attempt in range(2):
            pages = 0
            fetched = _Fetched()  # a reread counts the window from its start again
            try:
                async for items in self._pages(since, until):
                    pages += 1
                    events, skipped = await on_page(items, self._keep)
                    fetched.add(events, skipped)
                    await stage(events)
            except UnexpectedPayload as error:
                if error.status != 400 or pages == 0 or attempt > 0:
                    raise
                log.warning("graph.provisioning: paging token rejected; rereading the window")
                continue
            break
        return fetched

    def _pages(self, since: datetime, until: datetime | None) -> AsyncIterator[list[Any]]:
        params: dict[str, str | int] = {
            "$filter": self._filter(since, until),
            "$top": self._page_size,
        }
        return self._api.iterate_graph_pages(
            self._url, params=params, permission="AuditLog.Read.All and Directory.Read.All"
        )

    def _keep(self, items: list[Any]) -> tuple[list[ProvisioningEvent], int]:
        events, skipped = parse_items(
            items, _ProvisioningEvent, _event_record, "provisioning event"
        )
        # Audit filters have been seen ignored (graph-api.md 7.3): re-check the app.
        kept = [
            event
            for event in events
            if not event.service_principal_id or event.service_principal_id in self._sp_ids
        ]
        return kept, skipped


@dataclass
class _Fetched:
    """What a window's pages brought: events handed on, the newest of them, items skipped."""

    events: int = 0
    newest: datetime | None = None
    skipped: int = 0

    def add(self, events: list[ProvisioningEvent], skipped: int) -> None:
        self.events += len(events)
        self.skipped += skipped
        latest = max((event.activity_at for event in events), default=None)
        if latest is not None and (self.newest is None or latest > self.newest):
            self.newest = latest


# --- synchronization jobs (graph-api.md 2.3-2.8) -----------------------------------------


class _SyncError(WireModel):
    code: str | None = None
    message: str | None = None


class _Execution(WireModel):
    activity_identifier: str | None = None
    count_escrowed: int | None = None
    count_exported: int | None = None
    count_imported: int | None = None
    error: _SyncError | None = None
    state: str | None = None
    time_began: str | None = None
    time_ended: str | None = None


class _Quarantine(WireModel):
    current_began: str | None = None
    next_attempt: str | None = None
    reason: str | None = None
    series_began: str | None = None
    series_count: int | None = None
    error: _SyncError | None = None


class _JobStatus(WireModel):
    code: str | None = None
    count_successive_complete_failures: int | None = None
    escrows_pruned: bool | None = None
    last_execution: _Execution | None = None
    last_successful_execution: _Execution | None = None
    quarantine: _Quarantine | None = None
    steady_state_last_achieved_time: str | None = None
    troubleshooting_url: str | None = None


class _Schedule(WireModel):
    interval: str | None = None
    state: str | None = None


class _Job(WireModel):
    id: str = Field(min_length=1)
    template_id: str | None = None
    schedule: _Schedule | None = None
    status: _JobStatus | None = None


def sync_time(text: str | None) -> datetime | None:
    """A synchronization timestamp; None for null, empty or the 0001-01-01 sentinel."""
    if not text:
        return None
    try:
        moment = _utc(datetime.fromisoformat(text))
    except ValueError:
        return None
    return None if moment.year <= 1 else moment


_DURATION = re.compile(
    r"^P(?:(?P<days>\d+)D)?(?:T(?:(?P<hours>\d+)H)?(?:(?P<minutes>\d+)M)?"
    r"(?:(?P<seconds>\d+(?:\.\d+)?)S)?)?$"
)
_NEVER_DAYS = 10_000
"""P10675199DT2H48M5.4775807S is .NET TimeSpan.MaxValue: "never scheduled" (graph-api.md 2.4)."""


def parse_interval(text: str | None) -> int | None:
    """Seconds in an ISO 8601 duration such as PT40M; None when absent, odd or 'never'."""
    if not text:
        return None
    match = _DURATION.match(text.strip())
    if match is None or not any(match.groupdict().values()):
        return None
    days = int(match["days"] or 0)
    if days >= _NEVER_DAYS:
        return None
    seconds = float(match["seconds"] or 0)
    return int(
        days * 86400 + int(match["hours"] or 0) * 3600 + int(match["minutes"] or 0) * 60 + seconds
    )


def _execution_record(job_id: str, execution: _Execution | None) -> JobExecution | None:
    if execution is None:
        return None
    began = sync_time(execution.time_began)
    if began is None:
        return None
    error = execution.error
    code = (error.code if error else None) or ""
    return JobExecution(
        job_id=job_id,
        began=began,
        ended=sync_time(execution.time_ended),
        state=execution.state or "",
        activity_id=execution.activity_identifier or "",
        escrowed=execution.count_escrowed,
        exported=execution.count_exported,
        imported=execution.count_imported,
        error_code="" if code == "None" else code,
        error_message=(error.message if error else None) or "",
    )


def _job_record(sp_id: str, app: AppName, job: _Job, observed_at: datetime) -> SyncJob:
    status = job.status or _JobStatus()
    last = status.last_execution or _Execution()
    success = status.last_successful_execution or _Execution()
    quarantine = status.quarantine
    last_error = last.error or _SyncError()
    last_code = last_error.code or ""
    return SyncJob(
        service_principal_id=sp_id,
        job_id=job.id,
        app=app,
        template_id=job.template_id or "",
        schedule_state=(job.schedule.state if job.schedule else None) or "",
        interval_seconds=parse_interval(job.schedule.interval if job.schedule else None),
        status_code=status.code or "",
        successive_failures=status.count_successive_complete_failures or 0,
        escrows_pruned=bool(status.escrows_pruned),
        last_began=sync_time(last.time_began),
        last_ended=sync_time(last.time_ended),
        last_state=last.state or "",
        last_activity_id=last.activity_identifier or "",
        last_error_code="" if last_code == "None" else last_code,
        last_error_message=last_error.message or "",
        last_escrowed=last.count_escrowed,
        last_exported=last.count_exported,
        last_success_began=sync_time(success.time_began),
        last_success_ended=sync_time(success.time_ended),
        steady_state_last=sync_time(status.steady_state_last_achieved_time),
        quarantine_reason=(quarantine.reason if quarantine else None) or "",
        quarantine_series_began=sync_time(quarantine.series_began) if quarantine else None,
        quarantine_current_began=sync_time(quarantine.current_began) if quarantine else None,
        quarantine_next_attempt=sync_time(quarantine.next_attempt) if quarantine else None,
        quarantine_series_count=quarantine.series_count if quarantine else None,
        quarantine_error=_quarantine_error(quarantine),
        troubleshooting_url=status.troubleshooting_url or "",
        observed_at=observed_at,
    )


def _quarantine_error(quarantine: _Quarantine | None) -> str:
    if quarantine is None or quarantine.error is None:
        return ""
    parts = [part for part in (quarantine.error.code, quarantine.error.message) if part]
    return ": ".join(parts)


class JobsCollector:
    """graph.jobs: the provisioning jobs of both apps and their last executions."""

    source: SourceName = "graph.jobs"

    def __init__(
        self,
        api: ApiClient,
        *,
        graph_root: str,
        apps: dict[AppName, str],
        clock: Callable[[], datetime],
    ) -> None:
        self._api = api
        self._root = graph_root
        self._apps = apps
        self._clock = clock

    async def collect(self, watermark: str | None) -> Batch:
        """Every job of every configured app (a snapshot per service principal)."""
        observed_at = self._clock()
        records: list[Record] = []
        snapshots: list[Snapshot] = []
        skipped = 0
        for app, sp_id in self._apps.items():
            url = f"{self._root}/servicePrincipals/{sp_id}/synchronization/jobs"
            async for items in self._api.iterate_graph_pages(
                url, permission="Synchronization.Read.All"
            ):
                jobs, bad = parse_items(items, _Job, lambda job: job, "synchronization job")
                skipped += bad
                for job in jobs:
                    records.append(_job_record(sp_id, app, job, observed_at))
                    status = job.status or _JobStatus()
                    for execution in (status.last_execution, status.last_successful_execution):
                        record = _execution_record(job.id, execution)
                        if record is not None:
                            records.append(record)
            snapshots.append(Snapshot(table="sync_jobs", where={"service_principal_id": sp_id}))
        return Batch(
            source="graph.jobs",
            records=dedupe(records),
            snapshots=snapshots,
            skipped=skipped,
        )


# --- app role assignments (graph-api.md 4.1) ---------------------------------------------


class _Assignment(WireModel):
    id: str = Field(min_length=1)
    app_role_id: str = Field(min_length=1)
    created_date_time: datetime | None = None
    principal_display_name: str | None = None
    principal_id: str = Field(min_length=1)
    principal_type: str | None = None
    resource_id: str | None = None


def _assignment_record(app: AppName, sp_id: str) -> Callable[[_Assignment], AppRoleAssignment]:
    def build(wire: _Assignment) -> AppRoleAssignment:
        return AppRoleAssignment(
            id=wire.id,
            app=app,
            resource_id=wire.resource_id or sp_id,
            principal_id=wire.principal_id,
            principal_type=wire.principal_type or "",
            principal_name=wire.principal_display_name or "",
            app_role_id=wire.app_role_id,
            created_at=_utc(wire.created_date_time) if wire.created_date_time else None,
        )

    return build


async def _assignments(
    api: ApiClient, root: str, app: AppName, sp_id: str
) -> tuple[list[AppRoleAssignment], int]:
    url = f"{root}/servicePrincipals/{sp_id}/appRoleAssignedTo"
    found: list[AppRoleAssignment] = []
    skipped = 0
    async for items in api.iterate_graph_pages(
        url, params={"$top": 999}, permission="Application.Read.All"
    ):
        records, bad = await parse_page(
            items, _Assignment, _assignment_record(app, sp_id), "app role assignment"
        )
        found += records
        skipped += bad
    return found, skipped


class AssignmentsCollector:
    """graph.assignments: users and groups assigned to the NextGen and FirstGen apps."""

    source: SourceName = "graph.assignments"

    def __init__(self, api: ApiClient, *, graph_root: str, apps: dict[AppName, str]) -> None:
        self._api = api
        self._root = graph_root
        self._apps = apps

    async def collect(self, watermark: str | None) -> Batch:
        """All assignments of each app, as a snapshot per app."""
        records: list[Record] = []
        snapshots: list[Snapshot] = []
        skipped = 0
        for app, sp_id in self._apps.items():
            found, bad = await _assignments(self._api, self._root, app, sp_id)
            records += found
            skipped += bad
            snapshots.append(Snapshot(table="app_role_assignments", where={"app": app}))
        return Batch(
            source="graph.assignments",
            records=dedupe(records),
            snapshots=snapshots,
            skipped=skipped,
        )


# --- directory: assigned groups, their members, the users concerned (graph-api.md 4.2-4.4) ---


class _DirectoryObject(WireModel):
    id: str = Field(min_length=1)
    odata_type: str | None = Field(default=None, alias="@odata.type")
    display_name: str | None = None
    user_principal_name: str | None = None
    mail: str | None = None
    account_enabled: bool | None = None
    security_enabled: bool | None = None
    group_types: list[str] | None = None

    @property
    def kind(self) -> str:
        """user, group, device... from @odata.type; guessed from the fields when absent."""
        if self.odata_type:
            return self.odata_type.rsplit(".", 1)[-1].lower()
        if self.user_principal_name is not None:
            return "user"
        if self.security_enabled is not None or self.group_types is not None:
            return "group"
        return "user"


def _user_record(wire: _DirectoryObject) -> EntraUser:
    return EntraUser(
        id=wire.id,
        user_principal_name=wire.user_principal_name or "",
        mail=wire.mail or "",
        display_name=wire.display_name or "",
        account_enabled=wire.account_enabled,
    )


def _group_record(wire: _DirectoryObject) -> EntraGroup:
    return EntraGroup(
        id=wire.id, display_name=wire.display_name or "", security_enabled=wire.security_enabled
    )


_MEMBER_FIELDS = "id,displayName,userPrincipalName,mail,accountEnabled,securityEnabled,groupTypes"


class DirectoryCollector:
    """graph.directory: assigned groups, direct vs nested members, and the users concerned.

    Entra provisions only direct members of assigned groups (graph-api.md 3.6): members found
    only through /transitiveMembers are stored with ``direct=False``.
    """

    source: SourceName = "graph.directory"

    def __init__(self, api: ApiClient, *, graph_root: str, apps: dict[AppName, str]) -> None:
        self._api = api
        self._root = graph_root
        self._apps = apps

    async def collect(self, watermark: str | None) -> Batch:
        """Groups and users of every app's assignments, as whole-table snapshots."""
        return await collect_whole(self, watermark)

    async def collect_into(self, watermark: str | None, stage: RecordSink) -> Batch:
        """`collect`, each page of members handed to `stage`."""
        group_ids: dict[str, None] = {}
        user_ids: dict[str, None] = {}
        skipped = 0
        for app, sp_id in self._apps.items():
            assignments, bad = await _assignments(self._api, self._root, app, sp_id)
            skipped += bad
            for assignment in assignments:
                target = group_ids if assignment.principal_type == "Group" else user_ids
                if assignment.principal_type in ("Group", "User"):
                    target[assignment.principal_id] = None
        for group_id in group_ids:
            skipped += await self._group(group_id, stage, user_ids)
        users: list[Record] = []
        for user_id in user_ids:  # assigned directly and met in no assigned group
            user = await self._user(user_id)
            if user is None:
                skipped += 1
            else:
                users.append(user)
        return Batch(
            source="graph.directory",
            records=users,
            snapshots=[
                Snapshot(table="entra_groups"),
                Snapshot(table="entra_memberships"),
                Snapshot(table="entra_users"),
            ],
            skipped=skipped,
        )

    async def _group(self, group_id: str, stage: RecordSink, unmet_users: dict[str, None]) -> int:
        """Stage the group and its members (users met are taken off `unmet_users`); skipped."""
        try:
            body = await self._api.get_json(
                f"{self._root}/groups/{group_id}",
                params={"$select": "id,displayName,securityEnabled"},
                permission="Directory.Read.All",
            )
        except UnexpectedPayload as error:
            if error.status == 404:
                log.warning("assigned group %s no longer exists", sanitize_text(group_id, 80))
                return 1
            raise
        groups, skipped = parse_items([body], _DirectoryObject, _group_record, "group")
        await stage(groups)
        direct: set[str] = set()
        for transitive in (False, True):
            path = "transitiveMembers" if transitive else "members"
            async for items in self._api.iterate_graph_pages(
                f"{self._root}/groups/{group_id}/{path}",
                params={"$select": _MEMBER_FIELDS, "$top": 999},
                permission="Directory.Read.All",
            ):
                members, bad = await parse_page(
                    items, _DirectoryObject, lambda m: m, "group member"
                )
                skipped += bad
                records: list[Record] = []
                for member in members:
                    if transitive and member.id in direct:
                        continue
                    if not transitive:
                        direct.add(member.id)
                    records += self._member_records(group_id, member, direct=not transitive)
                for record in records:
                    if isinstance(record, EntraUser):
                        unmet_users.pop(record.id, None)
                await stage(records)
        return skipped

    @staticmethod
    def _member_records(group_id: str, member: _DirectoryObject, *, direct: bool) -> list[Record]:
        kind = member.kind
        records: list[Record] = [
            EntraMembership(group_id=group_id, member_id=member.id, member_type=kind, direct=direct)
        ]
        if kind == "user":
            records.append(_user_record(member))
        elif kind == "group":
            records.append(_group_record(member))
        return records

    async def _user(self, user_id: str) -> EntraUser | None:
        try:
            body = await self._api.get_json(
                f"{self._root}/users/{user_id}",
                params={"$select": "id,displayName,userPrincipalName,mail,accountEnabled"},
                permission="Directory.Read.All",
            )
        except UnexpectedPayload as error:
            if error.status == 404:
                log.warning("assigned user %s no longer exists", sanitize_text(user_id, 80))
                return None
            raise
        users, _ = parse_items([body], _DirectoryObject, _user_record, "user")
        return users[0] if users else None


def make_graph_collectors(
    graph: GraphConnection,
    *,
    reports: ApiClient,
    directory: ApiClient,
    polling: PollingConfig,
    clock: Callable[[], datetime],
) -> list[Collector]:
    """The four Graph collectors for one tenant."""
    root = graph.api_root
    return [
        ProvisioningCollector(
            reports,
            graph_root=root,
            service_principal_ids=graph.apps.values(),
            polling=polling,
            clock=clock,
            page_size=polling.page_size,
        ),
        JobsCollector(directory, graph_root=root, apps=graph.apps, clock=clock),
        AssignmentsCollector(directory, graph_root=root, apps=graph.apps),
        DirectoryCollector(directory, graph_root=root, apps=graph.apps),
    ]
