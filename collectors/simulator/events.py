"""Provisioning events: compact records, their exact Graph wire shape, and the logs holding them.

``EventRecord`` is what the engine keeps; ``render_event`` turns one into a
``provisioningObjectSummary`` exactly as reference/graph-api.md section 1.6-1.11 describes
(lower-camel enums, ``""`` ids, ``{}`` details, ``null`` errorInformation on success).
``MemoryEventLog`` holds the events of small scenarios; ``SyntheticEventLog`` computes the
``large`` scenario's million events from their index, so they are never all in memory.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from collectors.simulator import ids

JsonDict = dict[str, Any]
ENTRA_NAME = "Azure Active Directory"
INITIATOR = {"id": "", "displayName": "Azure AD Provisioning Service", "initiatorType": "system"}


@dataclass(slots=True)
class EventRecord:
    """One provisioning event as the engine records it."""

    seq: int
    at: datetime
    tenant_id: str
    sp_id: str
    sp_name: str
    app_id: str
    job_id: str
    cycle_id: str
    change_id: str
    event_id: str
    action: str
    status: str
    identity_type: str
    source_id: str
    source_name: str
    upn: str = ""
    target_id: str = ""
    target_name: str = ""
    error_code: str | None = None
    reason: str | None = None
    error_category: str = "nonServiceFailure"
    recommended_action: str | None = None
    skip_reason: str | None = None
    duration_ms: int = 1000
    modified: tuple[tuple[str, str | None, str | None], ...] = field(default_factory=tuple)


def graph_time(when: datetime) -> str:
    """Provisioning-log timestamp: second precision with ``Z``."""
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _verb(action: str) -> tuple[str, str]:
    return {
        "create": ("Add", "created"),
        "update": ("Update", "updated"),
        "disable": ("Update", "updated"),
        "delete": ("Delete", "deleted"),
        "stagedDelete": ("Delete", "deleted"),
    }.get(action, ("Add", "processed"))


def _step(name: str, kind: str, status: str, description: str, details: JsonDict) -> JsonDict:
    return {
        "name": name,
        "provisioningStepType": kind,
        "status": status,
        "description": description,
        "details": details,
    }


def _import_step(rec: EventRecord) -> JsonDict:
    change, _ = _verb(rec.action)
    label = rec.upn or rec.source_name
    details: JsonDict = {"objectId": rec.source_id, "displayName": rec.source_name}
    if rec.upn:
        details["userPrincipalName"] = rec.upn
        details["accountEnabled"] = "False" if rec.action == "disable" else "True"
    return _step(
        f"EntryImport{change}",
        "import",
        "success",
        f"Received {rec.identity_type} '{label}' change of type ({change}) from {ENTRA_NAME}",
        details,
    )


def _scoping_step(rec: EventRecord) -> JsonDict:
    in_scope = rec.skip_reason is None
    details = {
        "Active in the source system": "True",
        "Assigned to the application": "True",
        "User has the required role": "True" if in_scope else "False",
        "Scoping filter evaluation passed": "True",
    }
    return _step(
        "EntrySynchronizationScoping",
        "scoping",
        "success" if in_scope else "skipped",
        f"Determine if {rec.identity_type} in scope by evaluating against each scoping filter",
        details,
    )


def _processing_step(rec: EventRecord) -> JsonDict:
    label = rec.upn or rec.source_name
    if rec.skip_reason is not None:
        details = {
            "SkipReason": rec.skip_reason,
            "IsActive": "True",
            "Assigned to the application": "True",
            "IsInProvisioningScope": "False",
        }
        return _step(
            "EntrySynchronizationSkipped",
            "processing",
            "skipped",
            f"The {rec.identity_type} '{label}' will be skipped",
            details,
        )
    change, past = _verb(rec.action)
    why = {
        "create": f"{rec.identity_type} is active and assigned in {ENTRA_NAME}, but no matching "
        f"{rec.identity_type} was found in Harness",
        "update": f"{rec.identity_type} changed in {ENTRA_NAME}",
        "disable": f"{rec.identity_type} is no longer assigned or active in {ENTRA_NAME}",
        "delete": f"{rec.identity_type} was deleted in {ENTRA_NAME}",
    }.get(rec.action, "")
    return _step(
        f"EntrySynchronization{change}",
        "matching",
        "success",
        f"{rec.identity_type} '{label}' will be {past} in Harness ({why})",
        {},
    )


def _export_step(rec: EventRecord) -> JsonDict:
    change, past = _verb(rec.action)
    label = rec.upn or rec.source_name
    ok = rec.status == "success"
    verb = {"Add": "create", "Update": "update", "Delete": "delete"}[change]
    description = (
        f"{rec.identity_type} '{label}' was {past} in Harness"
        if ok
        else f"Failed to {verb} {rec.identity_type} '{label}' in Harness"
    )
    return _step(
        f"EntryExport{change}",
        "export",
        "success" if ok else "failure",
        description,
        {"ReportableIdentifier": label},
    )


def _steps(rec: EventRecord) -> list[JsonDict]:
    steps = [_import_step(rec), _scoping_step(rec), _processing_step(rec)]
    if rec.skip_reason is None:
        steps.append(_export_step(rec))
    return steps


def _status_info(rec: EventRecord, skip_error_info: bool) -> JsonDict:
    info: JsonDict | None = None
    if rec.status == "failure":
        info = {
            "errorCode": rec.error_code,
            "reason": rec.reason,
            "additionalDetails": None,
            "errorCategory": rec.error_category,
            "recommendedAction": rec.recommended_action,
        }
    elif rec.status == "skipped" and skip_error_info:
        info = {
            "errorCode": "EntrySynchronizationSkipped",
            "reason": f"SkipReason: {rec.skip_reason}. {rec.reason or ''}".strip(),
            "additionalDetails": None,
            "errorCategory": "nonServiceFailure",
            "recommendedAction": None,
        }
    return {"status": rec.status, "errorInformation": info}


def render_event(rec: EventRecord, *, skip_error_info: bool = True) -> JsonDict:
    """The provisioningObjectSummary JSON object for ``rec``."""
    target_details = {
        "ApplicationId": rec.app_id,
        "ServicePrincipalId": rec.sp_id,
        "ServicePrincipalDisplayName": rec.sp_name,
    }
    source_details: JsonDict = {"id": rec.source_id, "odatatype": rec.identity_type}
    if rec.upn:
        source_details.update(DisplayName=rec.source_name, UserPrincipalName=rec.upn)
    return {
        "id": rec.event_id,
        "activityDateTime": graph_time(rec.at),
        "tenantId": rec.tenant_id,
        "jobId": rec.job_id,
        "cycleId": rec.cycle_id,
        "changeId": rec.change_id,
        "provisioningAction": rec.action,
        "durationInMilliseconds": rec.duration_ms,
        "servicePrincipal": {"id": rec.sp_id, "displayName": rec.sp_name},
        "sourceSystem": {"id": rec.tenant_id, "displayName": ENTRA_NAME, "details": {}},
        "targetSystem": {"id": rec.app_id, "displayName": rec.sp_name, "details": target_details},
        "initiatedBy": dict(INITIATOR),
        "sourceIdentity": {
            "id": rec.source_id,
            "displayName": rec.source_name,
            "identityType": rec.identity_type,
            "details": source_details,
        },
        "targetIdentity": {
            "id": rec.target_id,
            "displayName": rec.target_name,
            "identityType": rec.identity_type,
            "details": {},
        },
        "provisioningStatusInfo": _status_info(rec, skip_error_info),
        "provisioningSteps": _steps(rec),
        "modifiedProperties": [
            {"displayName": name, "oldValue": old, "newValue": new}
            for name, old, new in rec.modified
        ],
    }


class EventLog(Protocol):
    """What the Graph app needs from an event store: events in time order, addressed by seq."""

    def __len__(self) -> int: ...

    def seq_range(self, after: datetime | None, before: datetime | None) -> tuple[int, int]:
        """Half-open range of positions whose time is strictly inside (after, before)."""
        ...

    def at_position(self, position: int) -> EventRecord: ...

    def position_of_seq(self, seq: int) -> int:
        """The position of the first event whose seq is >= ``seq``."""
        ...


class MemoryEventLog:
    """Append-only, time-ordered events of a small scenario."""

    def __init__(self) -> None:
        self._events: list[EventRecord] = []
        self._times: list[float] = []

    def __len__(self) -> int:
        return len(self._events)

    def append(self, rec: EventRecord) -> None:
        if self._times and rec.at.timestamp() < self._times[-1]:
            raise ValueError("events must be appended in time order")
        self._events.append(rec)
        self._times.append(rec.at.timestamp())

    def __iter__(self) -> Iterator[EventRecord]:
        return iter(list(self._events))

    def seq_range(self, after: datetime | None, before: datetime | None) -> tuple[int, int]:
        lo = 0 if after is None else bisect.bisect_right(self._times, after.timestamp())
        hi = (
            len(self._times)
            if before is None
            else bisect.bisect_left(self._times, before.timestamp())
        )
        return lo, max(lo, hi)

    def at_position(self, position: int) -> EventRecord:
        return self._events[position]

    def position_of_seq(self, seq: int) -> int:
        return bisect.bisect_left([e.seq for e in self._events], seq) if self._events else 0


class SyntheticEventLog:
    """``count`` events computed from their index, one every ``spacing``, ending at ``end``."""

    def __init__(
        self,
        count: int,
        end: datetime,
        spacing: timedelta,
        make: Callable[[int, datetime], EventRecord],
    ) -> None:
        self.count = count
        self.start = end - spacing * count
        self.spacing = spacing
        self._make = make

    def __len__(self) -> int:
        return self.count

    def _time(self, position: int) -> datetime:
        return self.start + self.spacing * (position + 1)

    def _position_after(self, when: datetime) -> int:
        steps = (when - self.start) / self.spacing
        return min(self.count, max(0, int(steps)))

    def seq_range(self, after: datetime | None, before: datetime | None) -> tuple[int, int]:
        lo = 0 if after is None else self._position_after(after)
        while lo < self.count and after is not None and self._time(lo) <= after:
            lo += 1
        hi = self.count if before is None else self._position_after(before)
        while hi > 0 and before is not None and self._time(hi - 1) >= before:
            hi -= 1
        return lo, max(lo, hi)

    def at_position(self, position: int) -> EventRecord:
        return self._make(position, self._time(position))

    def position_of_seq(self, seq: int) -> int:
        return min(max(seq, 0), self.count)


class CombinedEventLog:
    """A synthetic history followed by live events appended by the engine."""

    def __init__(self, history: SyntheticEventLog, live: MemoryEventLog) -> None:
        self.history = history
        self.live = live

    def __len__(self) -> int:
        return len(self.history) + len(self.live)

    def seq_range(self, after: datetime | None, before: datetime | None) -> tuple[int, int]:
        h_lo, h_hi = self.history.seq_range(after, before)
        l_lo, l_hi = self.live.seq_range(after, before)
        n = len(self.history)
        lo = h_lo if h_lo < h_hi else n + l_lo
        hi = n + l_hi if l_lo < l_hi else h_hi
        return lo, max(lo, hi)

    def at_position(self, position: int) -> EventRecord:
        n = len(self.history)
        return (
            self.history.at_position(position)
            if position < n
            else self.live.at_position(position - n)
        )

    def position_of_seq(self, seq: int) -> int:
        n = len(self.history)
        if seq < n:
            return self.history.position_of_seq(seq)
        return n + self.live.position_of_seq(seq)


def event_ids(seed: int, seq: int) -> tuple[str, str]:
    """(id, changeId) of the event numbered ``seq``."""
    return ids.guid(seed, "event", seq), ids.guid(seed, "change", seq)
