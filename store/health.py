"""The health model: the answers an admin on call needs, computed from the cache only.

Every screen, `check`, the metrics and the export read these, so they all see the same truth.
Each function takes an open `sqlite_utils.Database` (from `Cache.reading()`) and, where time
matters, an explicit `now` so answers are reproducible.
"""

from __future__ import annotations

import functools
import sqlite3
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

from sqlite_utils import Database

from store import harness_ids, playbook
from store.cache import parse_time
from store.models import (
    CycleSummary,
    EntraUser,
    GroupMapping,
    GroupState,
    HarnessUser,
    Hint,
    JobHealth,
    JobState,
    Overview,
    PendingRetry,
    ProvisioningEvent,
    SourceFreshness,
    SsoConflict,
    SyncJob,
    UserLookup,
    construct_trusted,
)

DEFAULT_ACCESS_ROLE = "00000000-0000-0000-0000-000000000000"
"""appRoleId of Default Access: Entra never provisions such assignments (graph-api.md 3.8)."""

SILENT_AFTER_INTERVALS = 3
"""An active job with no execution for this many intervals is silent."""

DEFAULT_INTERVAL = timedelta(minutes=40)
"""Harness syncs "approximately every 40 minutes" (graph-api.md 3.1)."""


def _rows(db: Database, sql: str, params: Iterable[Any] = ()) -> list[dict[str, Any]]:
    # `db.query` yields the same dicts through a generator: a third slower over 100k rows.
    cursor = db.execute(sql, list(params))
    columns = [description[0] for description in cursor.description]
    return [dict(zip(columns, row, strict=True)) for row in cursor]


# --- Jobs and cycles ---------------------------------------------------------------------


def _job_from_row(row: Mapping[str, Any]) -> SyncJob:
    values = dict(row)
    for name, field in SyncJob.model_fields.items():
        if field.annotation in (bool, bool | None) and values.get(name) is not None:
            values[name] = bool(values[name])
        elif "datetime" in str(field.annotation):
            values[name] = parse_time(values.get(name))
    return SyncJob(**values)


def grace_for(interval: timedelta) -> timedelta:
    """How late a cycle may be before it is overdue: a quarter interval, at least 10 minutes."""
    return max(interval / 4, timedelta(minutes=10))


def job_health(db: Database, now: datetime) -> list[JobHealth]:
    """Every provisioning job (NextGen first) with its state and next expected cycle."""
    jobs = [
        _job_from_row(row) for row in _rows(db, "SELECT * FROM sync_jobs ORDER BY app DESC, job_id")
    ]
    return [_assess_job(job, now) for job in jobs]


def _assess_job(job: SyncJob, now: datetime) -> JobHealth:
    interval = timedelta(seconds=job.interval_seconds or DEFAULT_INTERVAL.total_seconds())
    last_activity = job.last_ended or job.last_began
    if job.status_code == "Quarantine":
        return _quarantined(job, now)
    if job.status_code in ("Paused", "NotConfigured") or job.schedule_state in (
        "Paused",
        "Disabled",
    ):
        return JobHealth(
            job=job,
            state="paused",
            next_expected_at=None,
            overdue_by=None,
            summary=f"Provisioning is {job.status_code or job.schedule_state}: nothing syncs "
            "until someone starts the job in Entra.",
        )
    if last_activity is None:
        return JobHealth(
            job=job,
            state="not_run",
            next_expected_at=None,
            overdue_by=None,
            summary="The job has not completed a first cycle yet.",
        )
    next_expected = last_activity + interval
    late = now - next_expected
    state: JobState = "healthy"
    overdue_by = None
    summary = f"Next cycle expected {_clock(next_expected)}."
    if job.last_ended is None or (job.last_began and job.last_began > job.last_ended):
        state, summary = "running", "A cycle is running."
    elif now - last_activity > interval * SILENT_AFTER_INTERVALS:
        state, overdue_by = "silent", late
        summary = (
            f"Active, yet no cycle for {_span(now - last_activity)} "
            f"({SILENT_AFTER_INTERVALS}+ intervals): check the job in Entra."
        )
    elif late > grace_for(interval):
        state, overdue_by = "overdue", late
        summary = f"Next cycle is {_span(late)} late (expected {_clock(next_expected)})."
    elif late > timedelta(0):
        summary = (
            f"Next cycle expected {_clock(next_expected)}: {_span(late)} late, within the "
            f"{_span(grace_for(interval))} grace (cycles often start late)."
        )
    return JobHealth(
        job=job,
        state=state,
        next_expected_at=next_expected,
        overdue_by=overdue_by,
        summary=summary,
    )


def _quarantined(job: SyncJob, now: datetime) -> JobHealth:
    began = job.quarantine_series_began or job.quarantine_current_began or now
    disabled_at = playbook.quarantine_disabled_at(began)
    next_attempt = playbook.quarantine_next_attempt(began, now, job.quarantine_next_attempt)
    reason = job.quarantine_reason or "Unknown"
    meaning = _QUARANTINE_MEANING.get(reason, "Entra put the job in quarantine.")
    return JobHealth(
        job=job,
        state="quarantine",
        next_expected_at=next_attempt,
        overdue_by=None,
        summary=(
            f"QUARANTINE ({reason}) since {_clock(began)}: {meaning} "
            + (
                f"Entra retries with backoff (next {_clock(next_attempt)}) and disables the "
                f"job on {disabled_at:%Y-%m-%d} if it stays."
                if next_attempt
                else "Four weeks have passed: Entra has disabled the job."
            )
        ),
        quarantine_disabled_at=disabled_at,
    )


# graph-api.md 2.7 and 3.3: what each quarantine reason means.
_QUARANTINE_MEANING = {
    "EncounteredQuarantineException": "Harness refused the credentials: the SCIM token is "
    "invalid or expired. Put a new Harness token in the Entra app's provisioning settings.",
    "EncounteredEscrowProportionThreshold": "over 40% of provisioning operations failed. Fix "
    "the failures pending retry, then restart provisioning.",
    "EncounteredTotalEscrowThreshold": "too many failures in total. Fix the failures pending "
    "retry, then restart provisioning.",
    "EncounteredBaseEscrowThreshold": "the failure count passed the base threshold. Fix the "
    "failures pending retry, then restart provisioning.",
    "TooManyDeletes": "a cycle would delete or disable more than the accidental-deletion "
    "threshold. Review the staged deletes, then allow them or fix the scope.",
    "QuarantinedOnDemand": "Microsoft quarantined the job after detecting an issue with the "
    "app. Check the Entra provisioning logs and service health.",
    "IngestionInterrupted": "ingestion was interrupted. Restart provisioning.",
}


def _clock(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def _span(delta: timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    if minutes < 120:
        return f"{minutes} min"
    if minutes < 48 * 60:
        return f"{minutes // 60} h {minutes % 60} min"
    return f"{minutes // (24 * 60)} days"


def _cycle_from_row(row: Mapping[str, Any]) -> CycleSummary:
    values = dict(row)
    values["started_at"] = parse_time(row["started_at"])
    values["ended_at"] = parse_time(row["ended_at"])
    return CycleSummary(**values)


def recent_cycles(
    db: Database, limit: int = 100, before: tuple[str, str] | None = None
) -> list[CycleSummary]:
    """Cycles newest first; `before` = (ended_at text, cycle_id) of the last row seen (keyset)."""
    if before is None:
        rows = _rows(
            db, "SELECT * FROM cycles ORDER BY ended_at DESC, cycle_id DESC LIMIT ?", [limit]
        )
    else:
        rows = _rows(
            db,
            "SELECT * FROM cycles WHERE (ended_at, cycle_id) < (?, ?)"
            " ORDER BY ended_at DESC, cycle_id DESC LIMIT ?",
            [*before, limit],
        )
    return [_cycle_from_row(row) for row in rows]


def _event_from_row(row: Mapping[str, Any]) -> ProvisioningEvent:
    values = dict(row)
    values["activity_at"] = parse_time(row["activity_at"])
    return ProvisioningEvent(**values)


def cycle_events(
    db: Database, job_id: str, cycle_id: str, limit: int = 500
) -> list[ProvisioningEvent]:
    """The events of one cycle, failures first, then newest first.

    Both halves walk a time index inside the cycle's span (from the `cycles` table) and stop
    at `limit`, instead of sorting every event of a large cycle.
    """
    span = _rows(
        db,
        "SELECT started_at, ended_at FROM cycles WHERE job_id = ? AND cycle_id = ?",
        [job_id, cycle_id],
    )
    if not span:
        return []
    started, ended = span[0]["started_at"], span[0]["ended_at"]
    # `+` keeps SQLite off the cycle-id index (it would sort every event of the cycle):
    # walking the time index within the cycle's span stops after `limit` rows.
    in_cycle = "+job_id = ? AND +cycle_id = ? AND activity_at BETWEEN ? AND ?"
    bounds = [job_id, cycle_id, started, ended]
    failures = _rows(
        db,
        f"SELECT * FROM provisioning_events WHERE status = 'failure' AND {in_cycle}"
        " ORDER BY activity_at DESC, id DESC LIMIT ?",
        [*bounds, limit],
    )
    others = _rows(
        db,
        f"SELECT * FROM provisioning_events WHERE {in_cycle} AND status != 'failure'"
        " ORDER BY activity_at DESC, id DESC LIMIT ?",
        [*bounds, max(limit - len(failures), 0)],
    )
    return [_event_from_row(row) for row in failures + others]


def recent_events(
    db: Database,
    limit: int = 200,
    before: tuple[str, str] | None = None,
    status: str | None = None,
    text: str | None = None,
) -> list[ProvisioningEvent]:
    """The provisioning log newest first, keyset-paged, optionally filtered.

    `text` matches identity names and ids, error codes and cycle ids as a plain substring
    (a bound parameter: never SQL): among the newest events first (`_newest_matching`), then,
    when they hold less than a page of matches, through the objects and cycles that match
    (`_text_condition`).
    """
    conditions: list[str] = []
    params: list[Any] = []
    if before is not None:
        conditions.append("(activity_at, id) < (?, ?)")
        params += list(before)
    if status:
        conditions.append("status = ?")
        params.append(status)
    if text:
        found = _newest_matching(db, conditions, params, text, limit)
        if found is not None:
            return [_event_from_row(row) for row in found]
        condition, text_params = _text_condition(db, text)
        conditions.append(condition)
        params += text_params
    where = f"WHERE {' AND '.join(conditions)}" if conditions else ""
    order = "ORDER BY activity_at DESC, id DESC"
    if text:  # thousands of candidates are sorted: by their keys, not their whole rows
        sql = (
            f"SELECT * FROM provisioning_events WHERE rowid IN (SELECT rowid FROM"
            f" provisioning_events {where} {order} LIMIT ?) {order}"
        )
    else:
        sql = f"SELECT * FROM provisioning_events {where} {order} LIMIT ?"
    rows = _rows(db, sql, [*params, limit])
    return [_event_from_row(row) for row in rows]


_TEXT_WINDOW = 2000
"""Newest events a text filter reads in time order before it looks the text up by object."""

_OWN_COLUMNS = ("source_name", "source_id", "target_id", "error_code", "cycle_id")
"""The event columns a text filter matches."""


def _like(text: str) -> str:
    """A LIKE pattern matching `text` anywhere, literally (backslash is the escape)."""
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def _own_match(text: str) -> tuple[str, list[Any]]:
    """Events whose own columns contain `text`."""
    own = " OR ".join(f"{column} LIKE ? ESCAPE '\\'" for column in _OWN_COLUMNS)
    return f"({own})", [_like(text)] * len(_OWN_COLUMNS)


def _newest_matching(
    db: Database, conditions: list[str], params: list[Any], text: str, limit: int
) -> list[dict[str, Any]] | None:
    """The newest `limit` events matching `text`, if the newest `_TEXT_WINDOW` hold them.

    A vague text (one letter, a domain) matches most events: reading the newest events in
    time order finds a page of them within a few hundred rows (~3 ms at 1M events), where
    looking it up by object fetches thousands of events to sort (~100 ms). The window is
    read in order and matched as it is read, so the first `limit` matches are the newest;
    when the window holds fewer, None: the caller looks the text up by object instead.
    """
    where = f"WHERE {' AND '.join(conditions)}" if conditions else ""
    own, own_params = _own_match(text)
    rows = _rows(
        db,
        "SELECT * FROM provisioning_events WHERE rowid IN ("
        f" SELECT rid FROM (SELECT rowid AS rid, {', '.join(_OWN_COLUMNS)}"
        f"  FROM provisioning_events {where} ORDER BY activity_at DESC, id DESC LIMIT ?)"
        f" WHERE {own} LIMIT ?) ORDER BY activity_at DESC, id DESC",
        [*params, _TEXT_WINDOW, *own_params, limit],
    )
    return rows if len(rows) >= limit else None


_TEXT_MATCHES = 500
"""Objects (and cycles) a text filter fetches events of by id; past that it reads the events
newest first instead."""


def _text_condition(db: Database, text: str) -> tuple[str, list[Any]]:
    """Events whose object, cycle or error code contains `text`, through indexes.

    A substring scan of the events table costs ~0.7 s at 1M rows; instead the text is looked
    up in the small per-object and per-cycle tables, and the events are then fetched by their
    indexed object and cycle ids. An object is found by its latest name, its id and its latest
    error code: an event carrying only a former name, or an error code its object no longer
    has, is not (use the status filter for failures). A text more than `_TEXT_MATCHES` objects
    or cycles match is matched on the events' own columns, newest first, instead.
    """
    like = _like(text)
    object_ids = [
        row[0]
        for row in db.execute(
            "SELECT DISTINCT source_id FROM object_state WHERE source_name LIKE ? ESCAPE '\\'"
            " OR source_id LIKE ? ESCAPE '\\' OR error_code LIKE ? ESCAPE '\\' LIMIT ?",
            [like, like, like, _TEXT_MATCHES + 1],
        )
    ]
    cycle_ids = [
        row[0]
        for row in db.execute(
            "SELECT cycle_id FROM cycles WHERE cycle_id LIKE ? ESCAPE '\\' LIMIT ?",
            [like, _TEXT_MATCHES + 1],
        )
    ]
    own, own_params = _own_match(text)
    if len(object_ids) > _TEXT_MATCHES or len(cycle_ids) > _TEXT_MATCHES:
        # Too many to fetch by id, and some of them only would be a wrong page: the events
        # are read newest first on their own columns until a page of them matched (the text
        # is common enough that this stops early; its worst case is a walk of the log).
        return own, own_params
    # A rowid set makes SQLite fetch the candidates by these indexes; a plain OR would let it
    # walk the whole time index for the ORDER BY ... LIMIT instead.
    candidates: list[str] = []
    params: list[Any] = []
    if object_ids:
        marks = ", ".join("?" for _ in object_ids)
        candidates.append(f"SELECT rowid FROM provisioning_events WHERE source_id IN ({marks})")
        params += object_ids
    if cycle_ids:
        marks = ", ".join("?" for _ in cycle_ids)
        candidates.append(f"SELECT rowid FROM provisioning_events WHERE cycle_id IN ({marks})")
        params += cycle_ids
    if not candidates:
        return "0", []
    # The candidates then match on their own columns, as the plain substring scan did.
    return f"rowid IN ({' UNION ALL '.join(candidates)}) AND {own}", [*params, *own_params]


def event_by_id(db: Database, event_id: str) -> ProvisioningEvent | None:
    """One event, with its compressed detail."""
    rows = _rows(db, "SELECT * FROM provisioning_events WHERE id = ?", [event_id])
    return _event_from_row(rows[0]) if rows else None


# --- Failures pending retry --------------------------------------------------------------


def pending_retries(db: Database, now: datetime, limit: int = 1000) -> list[PendingRetry]:
    """Objects whose latest event failed, escalated and oldest first."""
    jobs = {job.job.job_id: job for job in job_health(db, now)}
    # Rows as tuples: a dict per row was a tenth of the 1,000-row read.
    rows = db.execute(
        f"SELECT {_PENDING_COLUMNS} FROM object_state WHERE latest_status = 'failure'"
        " ORDER BY failed_cycles >= 2 DESC, first_failure_at LIMIT ?",
        [limit],
    )
    return [_pending_from_row(row, jobs) for row in rows]


_PENDING_COLUMNS = (
    "first_failure_at, failed_cycles, latest_at, job_id, source_id, source_type, source_name,"
    " target_id, latest_action, error_code, error_category, reason, recommended_action,"
    " retry_at, playbook_key, rules_version"
)
"""The columns `_pending_from_row` reads, in its order; the index of m010 carries them all."""


def pending_retry_for(db: Database, source_id: str, now: datetime) -> PendingRetry | None:
    """The pending failure of one object, if its latest event failed."""
    jobs = {job.job.job_id: job for job in job_health(db, now)}
    row = db.execute(
        f"SELECT {_PENDING_COLUMNS} FROM object_state"
        " WHERE source_id = ? AND latest_status = 'failure' ORDER BY latest_at DESC LIMIT 1",
        [source_id],
    ).fetchone()
    return _pending_from_row(row, jobs) if row else None


def _pending_from_row(row: Sequence[Any], jobs: Mapping[str, JobHealth]) -> PendingRetry:
    """A failing object's `_PENDING_COLUMNS` as the retries list shows it."""
    (
        first_failure_at,
        failed_cycles,
        latest_at,
        job_id,
        source_id,
        source_type,
        source_name,
        target_id,
        action,
        error_code,
        error_category,
        reason,
        recommended_action,
        kept_retry_at,
        kept_key,
        rules_version,
    ) = row
    last_failure = parse_time(latest_at) or datetime.now(UTC)
    first_failure = parse_time(first_failure_at) or last_failure
    if rules_version == playbook.RULES_VERSION:
        retry_at = parse_time(kept_retry_at)
        key = kept_key
    else:  # kept by older rules (store.derived keeps them on ingest)
        retry_at = playbook.parse_retry_time(reason, last_failure)
        key = playbook.playbook_key(error_code, source_type, reason)
    retry_from: Any = "reason"
    if retry_at is None:
        job = jobs.get(job_id)
        retry_at = job.next_expected_at if job else None
        retry_from = "next_cycle" if retry_at else "unknown"
    entry = playbook.playbook_entry(key, error_category, recommended_action)
    # Built without validation: every value is typed here, from columns this module reads,
    # and validating two models per row was a third of the 1,000-row read.
    return construct_trusted(
        PendingRetry,
        dict(
            job_id=job_id,
            source_id=source_id,
            source_type=source_type,
            source_name=source_name,
            target_id=target_id,
            action=action,
            attempts=failed_cycles,
            first_failure_at=first_failure,
            last_failure_at=last_failure,
            error_code=error_code,
            error_category=error_category,
            reason=reason,
            recommended_action=recommended_action,
            retry_at=retry_at,
            retry_at_from=retry_from,
            escalated=playbook.is_escalated(failed_cycles),
            escrow_expires_at=playbook.escrow_expires_at(first_failure),
            hint=_hint(entry),
        ),
    )


@functools.lru_cache(maxsize=256)
def _hint(entry: playbook.PlaybookEntry) -> Hint:
    """The hint of a playbook entry; shared (hints are frozen): a list repeats a handful."""
    return construct_trusted(
        Hint,
        dict(
            title=entry.title,
            what_to_do=entry.what_to_do,
            severity=entry.severity,
            retried_automatically=entry.retried_automatically,
        ),
    )


def pending_counts(db: Database) -> tuple[int, int]:
    """(pending, escalated) failures: cheap counts for the overview and `check`."""
    row = _rows(
        db,
        "SELECT count(*) AS pending, coalesce(sum(failed_cycles >= 2), 0) AS escalated"
        " FROM object_state WHERE latest_status = 'failure'",
    )[0]
    return int(row["pending"]), int(row["escalated"])


# --- Who is assigned ---------------------------------------------------------------------


class _Directory:
    """The Entra and Harness sides loaded once for the mapping and SSO answers."""

    def __init__(self, db: Database) -> None:
        self.users = {row["id"]: row for row in _rows(db, "SELECT * FROM entra_users")}
        self.groups = {row["id"]: row for row in _rows(db, "SELECT * FROM entra_groups")}
        self.assignments = _rows(db, "SELECT * FROM app_role_assignments")
        self.members: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for row in _rows(db, "SELECT * FROM entra_memberships"):
            self.members[row["group_id"]].append(row)
        self.harness_users = {row["id"]: row for row in _rows(db, "SELECT * FROM harness_users")}
        self.harness_by_email = {
            row["email"].lower(): row for row in self.harness_users.values() if row["email"]
        }
        self.harness_groups = _rows(
            db, "SELECT * FROM harness_groups WHERE scope = 'account' AND harness_managed = 0"
        )
        self.harness_members: dict[str, set[str]] = defaultdict(set)
        for row in _rows(db, "SELECT * FROM harness_group_members WHERE scope = 'account'"):
            self.harness_members[row["group_identifier"]].add(row["user_id"])
        self.bound = {
            row["principal_identifier"]
            for row in _rows(
                db,
                "SELECT principal_identifier FROM harness_role_assignments"
                " WHERE principal_type = 'USER_GROUP' AND disabled = 0",
            )
        }
        # A group provisioned by both apps has a state per job: the NextGen job's wins
        # (ordered last), whatever order the rows were written in.
        self.group_targets = {
            row["source_id"]: row
            for row in _rows(
                db,
                "SELECT * FROM object_state WHERE source_type = 'Group' ORDER BY job_id IN"
                " (SELECT job_id FROM sync_jobs WHERE app = 'nextgen'), job_id",
            )
        }
        self.owners = {
            row["target_id"]: group_id
            for group_id, row in self.group_targets.items()
            if row["target_id"]
        }
        """Harness identifier (SCIM id) -> the Entra group the logs show provisioned it."""
        self._emails: dict[str, str] = {}

    def email_of(self, user_id: str) -> str:
        email = self._emails.get(user_id)
        if email is None:
            user = self.users.get(user_id)
            email = str(user["mail"] or user["user_principal_name"]).lower() if user else ""
            self._emails[user_id] = email
        return email

    def label_of(self, user_id: str) -> str:
        return self.email_of(user_id) or user_id

    def assigned(self, app: str, principal_type: str, *, provisioned: bool) -> list[dict[str, Any]]:
        return [
            row
            for row in self.assignments
            if row["app"] == app
            and row["principal_type"] == principal_type
            and (not provisioned or row["app_role_id"] != DEFAULT_ACCESS_ROLE)
        ]

    def direct_users(self, group_id: str) -> list[str]:
        return [
            row["member_id"]
            for row in self.members.get(group_id, [])
            if row["direct"] and row["member_type"] == "user"
        ]

    def nested_users(self, group_id: str) -> list[str]:
        return [
            row["member_id"]
            for row in self.members.get(group_id, [])
            if not row["direct"] and row["member_type"] == "user"
        ]

    def users_in_scope(self, app: str) -> dict[str, str]:
        """Users Entra provisions for an app: user id -> how (directly or via a group)."""
        scope: dict[str, str] = {}
        for row in self.assigned(app, "User", provisioned=True):
            scope[row["principal_id"]] = "directly"
        for row in self.assigned(app, "Group", provisioned=True):
            name = row["principal_name"] or row["principal_id"]
            for user_id in self.direct_users(row["principal_id"]):
                scope.setdefault(user_id, f"via group {name}")
        return scope

    def firstgen_present(self) -> bool:
        return any(row["app"] == "firstgen" for row in self.assignments)


# --- Group / ID mappings -----------------------------------------------------------------

_STATE_ORDER: tuple[GroupState, ...] = (
    "unsyncable",
    "collision",
    "native_same_identifier",
    "not_provisioned",
    "native_same_name",
    "no_role_binding",
    "drift",
    "renamed",
    "nested_members",
    "orphan",
)


def group_mappings(db: Database) -> list[GroupMapping]:
    """Every Entra group assigned to the NextGen app, then orphan Harness SCIM groups."""
    if not _directory_answers_fresh(db):
        return _compute_group_mappings(db)
    cursor = db.execute(
        f"SELECT {', '.join(_MAPPING_COLUMNS)}, harness_members_as_entra FROM group_mappings"
        " ORDER BY position"
    )
    return [_mapping_from_row(row) for row in cursor]


def _compute_group_mappings(
    db: Database, directory: _Directory | None = None
) -> list[GroupMapping]:
    directory = directory or _Directory(db)
    assigned = directory.assigned("nextgen", "Group", provisioned=True)
    names = {
        row["principal_id"]: (
            directory.groups.get(row["principal_id"], {}).get("display_name")
            or row["principal_name"]
        )
        for row in assigned
    }
    predicted = {group_id: harness_ids.harness_identifier(name) for group_id, name in names.items()}
    claims: dict[str, list[str]] = defaultdict(list)
    for group_id, identifier in predicted.items():
        if identifier:
            claims[identifier].append(group_id)
    by_identifier = {row["identifier"]: row for row in directory.harness_groups}
    matched: set[str] = set()
    mappings = []
    for group_id, name in sorted(names.items(), key=lambda item: str(item[1]).lower()):
        mapping = _map_group(
            directory, group_id, str(name), predicted[group_id], claims, by_identifier
        )
        matched.add(mapping.harness_identifier)
        mappings.append(mapping)
    mappings += [
        _orphan(row)
        for row in directory.harness_groups
        if row["externally_managed"] and row["identifier"] not in matched
    ]
    return mappings


def _map_group(
    directory: _Directory,
    group_id: str,
    name: str,
    identifier: str,
    claims: Mapping[str, list[str]],
    by_identifier: Mapping[str, dict[str, Any]],
) -> GroupMapping:
    problems: list[GroupState] = []
    details: list[str] = []
    state = directory.group_targets.get(group_id)
    target = state["target_id"] if state else ""
    harness = by_identifier.get(target) if target else None
    if harness is None:
        # No SCIM id from the logs: match a SCIM group by the identifiers the rule gives this
        # name, unless the logs show another Entra group owns it (the loser of a collision).
        harness = _by_historical_identifier(name, by_identifier, directory.owners, group_id)
    syncable = harness_ids.check_syncable(name)
    if not syncable.ok:
        problems.append("unsyncable")
        details.append(syncable.explanation)
    if identifier and len(claims.get(identifier, [])) > 1:
        problems.append("collision")
        others = [other for other in claims[identifier] if other != group_id]
        details.append(f"{len(others) + 1} Entra groups derive the identifier {identifier!r}")
    native = by_identifier.get(identifier)
    if native is not None and not native["externally_managed"] and harness is not native:
        problems.append("native_same_identifier")
        details.append(
            f"a native Harness group already has the identifier {identifier!r}: creating the "
            "SCIM group fails (409) or, on newer Harness, takes the native group over"
        )
    same_name = [
        row
        for row in directory.harness_groups
        if row["name"] == name and not row["externally_managed"] and row is not native
    ]
    if same_name:
        problems.append("native_same_name")
        details.append(
            f"a native Harness group is also named {name!r} ({same_name[0]['identifier']}): "
            "Harness keeps both, which confuses people assigning roles"
        )
    pending = ""
    if state and state["latest_status"] == "failure":
        pending = f"{state['error_code'] or 'failure'}: {state['reason']}"[:300]
    if harness is None:
        problems.append("not_provisioned")
        details.append(
            "no Harness group found" + (f"; pending failure {pending}" if pending else "")
        )
    entra_members = sorted(directory.label_of(user) for user in directory.direct_users(group_id))
    nested = sorted(directory.label_of(user) for user in directory.nested_users(group_id))
    harness_members: list[str] = []
    missing: list[str] = []
    extra: list[str] = []
    if harness is not None:
        if harness["identifier"] not in {
            c.identifier for c in harness_ids.candidate_identifiers(name)
        }:
            # Harness never changes an identifier: after a rename in Entra (and the name
            # update SCIM sends) the group keeps the identifier of its first name.
            problems.append("renamed")
            details.append(
                f"renamed in Entra: Harness keeps the identifier {harness['identifier']!r} "
                f"(from its old name) and shows {harness['name']!r}"
            )
        if harness["identifier"] not in directory.bound:
            problems.append("no_role_binding")
            details.append(
                "no role is bound to this Harness group: its members get no permissions "
                "(roles are never managed from Entra)"
            )
        harness_members = sorted(
            str(directory.harness_users.get(user, {}).get("email") or user).lower()
            for user in directory.harness_members.get(harness["identifier"], set())
        )
        missing = sorted(set(entra_members) - set(harness_members))
        extra = sorted(set(harness_members) - set(entra_members))
        if missing or extra:
            problems.append("drift")
            details.append(
                f"{len(missing)} Entra member(s) missing in Harness, {len(extra)} extra in Harness"
            )
    if nested:
        problems.append("nested_members")
        details.append(f"{len(nested)} member(s) only through nested groups: never provisioned")
    return GroupMapping(
        entra_group_id=group_id,
        entra_name=name,
        predicted_identifier=identifier,
        harness_identifier=harness["identifier"] if harness else "",
        harness_name=harness["name"] if harness else "",
        state=_worst(problems),
        problems=tuple(problems),
        detail="; ".join(details) or "in sync",
        entra_members=tuple(entra_members),
        harness_members=tuple(harness_members),
        missing_in_harness=tuple(missing),
        extra_in_harness=tuple(extra),
        nested_only=tuple(nested),
        pending_error=pending,
    )


def _by_historical_identifier(
    name: str,
    by_identifier: Mapping[str, dict[str, Any]],
    owners: Mapping[str, str],
    group_id: str,
) -> dict[str, Any] | None:
    for candidate in harness_ids.candidate_identifiers(name):
        row = by_identifier.get(candidate.identifier)
        owner = owners.get(candidate.identifier, group_id)
        if row is not None and row["externally_managed"] and owner == group_id:
            return row
    return None


def _worst(problems: list[GroupState]) -> GroupState:
    for state in _STATE_ORDER:
        if state in problems:
            return state
    return "ok"


def _orphan(row: Mapping[str, Any]) -> GroupMapping:
    return GroupMapping(
        entra_group_id="",
        entra_name="",
        predicted_identifier="",
        harness_identifier=row["identifier"],
        harness_name=row["name"],
        state="orphan",
        problems=("orphan",),
        detail="a SCIM-managed Harness group that matches no Entra group assigned to the app "
        "(unassigned, deleted, or provisioned by another app)",
    )


# --- SSO conflicts -----------------------------------------------------------------------


def sso_conflicts(db: Database) -> list[SsoConflict]:
    """Users who cannot sign in, Harness users Entra does not know, Default Access assignments."""
    if not _directory_answers_fresh(db):
        return _compute_sso_conflicts(db)
    return _stored_conflicts(db, None)


def _compute_sso_conflicts(db: Database, directory: _Directory | None = None) -> list[SsoConflict]:
    directory = directory or _Directory(db)
    conflicts: list[SsoConflict] = []
    nextgen_scope = directory.users_in_scope("nextgen")
    if directory.firstgen_present():
        firstgen_scope = directory.users_in_scope("firstgen")
        for user_id, how in sorted(
            nextgen_scope.items(), key=lambda item: directory.label_of(item[0])
        ):
            if user_id in firstgen_scope:
                continue
            email = directory.email_of(user_id)
            if email and email not in directory.harness_by_email:
                continue  # not in Harness yet: nothing to sign in to
            conflicts.append(
                SsoConflict(
                    kind="firstgen_unassigned",
                    principal_id=user_id,
                    email=email,
                    display_name=str(directory.users.get(user_id, {}).get("display_name", "")),
                    detail=f"provisioned through the NextGen app ({how}) but not assigned to "
                    "the FirstGen app, which Harness signs users in through: sign-in fails",
                    what_to_do="Assign the user (or a group they are a direct member of) to "
                    "the FirstGen Harness app in Entra, or move Harness SAML sign-in to the "
                    "NextGen app and retire the FirstGen one.",
                )
            )
    known_emails = {directory.email_of(user_id) for user_id in nextgen_scope}
    for user in sorted(directory.harness_users.values(), key=lambda row: str(row["email"])):
        email = str(user["email"]).lower()
        if user["in_scim"] and email and email not in known_emails:
            conflicts.append(
                SsoConflict(
                    kind="unmatched_harness_user",
                    principal_id=user["id"],
                    email=email,
                    display_name=user["name"],
                    detail="a SCIM user in Harness whose email matches no user assigned to the "
                    "NextGen app in Entra",
                    what_to_do="If they should have access, assign them in Entra; otherwise "
                    "remove them in Harness (Entra no longer manages them).",
                )
            )
    for row in directory.assignments:
        if row["app_role_id"] == DEFAULT_ACCESS_ROLE:
            conflicts.append(
                SsoConflict(
                    kind="default_access",
                    principal_id=row["principal_id"],
                    email=directory.email_of(row["principal_id"]),
                    display_name=row["principal_name"],
                    detail=f"assigned to the {row['app']} app with Default Access: Entra never "
                    "provisions such assignments",
                    what_to_do="Edit the assignment in Entra and pick the app's User role.",
                )
            )
    return conflicts


# --- Directory answers kept on ingest ----------------------------------------------------

_LIST_SEPARATOR = "\x1f"
"""Joins a stored mapping's name lists (the ASCII unit separator: no name or id holds one)."""

_MAPPING_COLUMNS = (
    "entra_group_id", "entra_name", "predicted_identifier", "harness_identifier",
    "harness_name", "state", "problems", "detail", "entra_members", "harness_members",
    "missing_in_harness", "extra_in_harness", "nested_only", "pending_error",
)  # fmt: skip
_MAPPING_LISTS = frozenset(
    {
        "problems",
        "entra_members",
        "harness_members",
        "missing_in_harness",
        "extra_in_harness",
        "nested_only",
    }
)
_CONFLICT_COLUMNS = ("kind", "principal_id", "email", "display_name", "detail", "what_to_do")


class _Unstorable(Exception):
    """A name holds the list separator: the answers stay stale and are computed live."""


def _directory_answers_fresh(db: Database) -> bool:
    """Whether the stored group mappings and SSO conflicts match the directory now."""
    try:
        row = db.execute("SELECT fresh FROM directory_answers_state").fetchone()
    except sqlite3.OperationalError as error:
        if "no such table" in str(error):
            return False  # a read-only cache written before the answers were kept
        raise
    return bool(row and row[0])


def refresh_directory_answers(conn: sqlite3.Connection) -> None:
    """Recompute the stored group mappings and SSO conflicts if any input changed since.

    Called by `Cache.save_batch` inside its transaction; the inputs' triggers (migration
    m006) mark the answers stale whenever a row they are computed from changes.
    """
    db = Database(conn)
    if _directory_answers_fresh(db):
        return
    directory = _Directory(db)
    mappings = _compute_group_mappings(db, directory)
    conflicts = _compute_sso_conflicts(db, directory)
    try:
        mapping_rows = [_mapping_values(mapping) for mapping in mappings]
    except _Unstorable:
        return
    conn.execute("DELETE FROM group_mappings")
    conn.executemany(
        f"INSERT INTO group_mappings ({', '.join(_MAPPING_COLUMNS)}, harness_members_as_entra)"
        f" VALUES ({', '.join('?' for _ in _MAPPING_COLUMNS)}, ?)",
        mapping_rows,
    )
    conn.execute("DELETE FROM sso_conflicts")
    conn.executemany(
        f"INSERT INTO sso_conflicts ({', '.join(_CONFLICT_COLUMNS)})"
        f" VALUES ({', '.join('?' for _ in _CONFLICT_COLUMNS)})",
        ([getattr(conflict, name) for name in _CONFLICT_COLUMNS] for conflict in conflicts),
    )
    conn.execute("UPDATE directory_answers_state SET fresh = 1")


def _mapping_values(mapping: GroupMapping) -> list[Any]:
    values = [
        _joined(getattr(mapping, name)) if name in _MAPPING_LISTS else getattr(mapping, name)
        for name in _MAPPING_COLUMNS
    ]
    shared = bool(mapping.harness_members) and mapping.harness_members == mapping.entra_members
    if shared:
        values[_MAPPING_COLUMNS.index("harness_members")] = None
    return [*values, int(shared)]


def _joined(names: tuple[str, ...]) -> str | None:
    """A name list as one text (None when empty, so `("",)` and `()` stay distinct)."""
    if not names:
        return None
    if any(_LIST_SEPARATOR in name for name in names):
        raise _Unstorable
    return _LIST_SEPARATOR.join(names)


def _mapping_from_row(row: Sequence[Any]) -> GroupMapping:
    values = dict(zip(_MAPPING_COLUMNS, row[:-1], strict=True))
    for name in _MAPPING_LISTS:
        text = values[name]
        values[name] = tuple(text.split(_LIST_SEPARATOR)) if text is not None else ()
    if row[-1]:
        values["harness_members"] = values["entra_members"]
    # Rows this module wrote from validated answers: building 1,000 mappings of 100 members
    # each without validating them again halves the groups screen's read.
    return construct_trusted(GroupMapping, values)


def _stored_conflicts(db: Database, principals: list[str] | None) -> list[SsoConflict]:
    """The stored SSO conflicts in order, all or only those of `principals`."""
    where = ""
    if principals is not None:
        where = f"WHERE principal_id IN ({', '.join('?' for _ in principals)})"
    cursor = db.execute(
        f"SELECT {', '.join(_CONFLICT_COLUMNS)} FROM sso_conflicts {where} ORDER BY position",
        principals or [],
    )
    return [SsoConflict(**dict(zip(_CONFLICT_COLUMNS, row, strict=True))) for row in cursor]


def _directory_problem_counts(db: Database) -> tuple[int, int]:
    """(group mappings not ok, SSO conflicts): counts for the overview."""
    if not _directory_answers_fresh(db):
        return (
            sum(1 for mapping in _compute_group_mappings(db) if mapping.state != "ok"),
            len(_compute_sso_conflicts(db)),
        )
    row = db.execute(
        "SELECT (SELECT count(*) FROM group_mappings WHERE state != 'ok'),"
        " (SELECT count(*) FROM sso_conflicts)"
    ).fetchone()
    return int(row[0]), int(row[1])


# --- User lookup -------------------------------------------------------------------------


def lookup_user(db: Database, query: str, now: datetime) -> UserLookup:
    """Both sides of one user, by UPN, email or object id (case-insensitive)."""
    needle = query.strip()
    rows = _rows(
        db,
        "SELECT * FROM entra_users WHERE id = ? OR user_principal_name = ? COLLATE NOCASE"
        " OR mail = ? COLLATE NOCASE LIMIT 1",
        [needle, needle, needle],
    )
    entra = _entra_user(rows[0]) if rows else None
    email = (entra.mail or entra.user_principal_name if entra else needle).lower()
    harness_rows = _rows(
        db, "SELECT * FROM harness_users WHERE email = ? COLLATE NOCASE LIMIT 1", [email]
    )
    harness = _harness_user(harness_rows[0]) if harness_rows else None
    assignments: list[str] = []
    nested_groups: list[str] = []
    if entra is not None:
        for app in ("nextgen", "firstgen"):
            how = _how_in_scope(db, app, entra.id)
            if how:
                assignments.append(f"{app}: {how}")
        nested_groups = _nested_only_groups(db, entra.id)
    events = (
        [
            _event_from_row(row)
            for row in _rows(
                db,
                "SELECT * FROM provisioning_events WHERE source_id = ?"
                " ORDER BY activity_at DESC LIMIT 10",
                [entra.id],
            )
        ]
        if entra
        else []
    )
    pending = pending_retry_for(db, entra.id, now) if entra else None
    harness_groups = (
        sorted(
            row["group_identifier"]
            for row in _rows(
                db,
                "SELECT group_identifier FROM harness_group_members WHERE user_id = ?",
                [harness.id],
            )
        )
        if harness
        else []
    )
    conflicts = _conflicts_of(
        db, [principal.id for principal in (entra, harness) if principal is not None]
    )
    verdict = _verdict(entra, harness, assignments, nested_groups, pending, conflicts)
    return UserLookup(
        query=query,
        entra_user=entra,
        assignments=tuple(assignments),
        nested_only_groups=tuple(sorted(nested_groups)),
        latest_events=tuple(events),
        pending=pending,
        harness_user=harness,
        harness_groups=tuple(harness_groups),
        sso_conflicts=tuple(conflicts),
        verdict=verdict,
    )


def _how_in_scope(db: Database, app: str, user_id: str) -> str:
    """How Entra provisions one user for an app (`_Directory.users_in_scope`), or ""."""
    direct = db.execute(
        "SELECT 1 FROM app_role_assignments WHERE principal_id = ? AND app = ?"
        " AND principal_type = 'User' AND app_role_id != ? LIMIT 1",
        [user_id, app, DEFAULT_ACCESS_ROLE],
    ).fetchone()
    if direct:
        return "directly"
    # The first assignment in table order wins, as in `users_in_scope`.
    group = db.execute(
        "SELECT a.principal_name, a.principal_id FROM entra_memberships AS m"
        " JOIN app_role_assignments AS a ON a.principal_id = m.group_id"
        " WHERE m.member_id = ? AND m.direct AND m.member_type = 'user' AND a.app = ?"
        " AND a.principal_type = 'Group' AND a.app_role_id != ? ORDER BY a.rowid LIMIT 1",
        [user_id, app, DEFAULT_ACCESS_ROLE],
    ).fetchone()
    return f"via group {group[0] or group[1]}" if group else ""


def _nested_only_groups(db: Database, user_id: str) -> list[str]:
    """Groups one user belongs to only through nesting, in the membership table's order."""
    return [
        str(row[1] or row[0])
        for row in db.execute(
            "SELECT m.group_id, g.display_name FROM entra_memberships AS m"
            " LEFT JOIN entra_groups AS g ON g.id = m.group_id"
            " WHERE m.member_id = ? AND NOT m.direct"
            " ORDER BY (SELECT min(rowid) FROM entra_memberships WHERE group_id = m.group_id)",
            [user_id],
        )
    ]


def _conflicts_of(db: Database, principals: list[str]) -> list[SsoConflict]:
    """The SSO conflicts about these Entra or Harness ids, in `sso_conflicts` order."""
    if not principals:
        return []
    if _directory_answers_fresh(db):
        return _stored_conflicts(db, principals)
    return [
        conflict for conflict in _compute_sso_conflicts(db) if conflict.principal_id in principals
    ]


def _entra_user(row: Mapping[str, Any]) -> EntraUser:
    values = dict(row)
    if values["account_enabled"] is not None:
        values["account_enabled"] = bool(values["account_enabled"])
    return EntraUser(**values)


def _harness_user(row: Mapping[str, Any]) -> HarnessUser:
    values = dict(row)
    for name in ("in_scim", "in_ng"):
        values[name] = bool(values[name])
    if values["active"] is not None:
        values["active"] = bool(values["active"])
    return HarnessUser(**values)


def _verdict(
    entra: EntraUser | None,
    harness: HarnessUser | None,
    assignments: list[str],
    nested_groups: list[str],
    pending: PendingRetry | None,
    conflicts: list[SsoConflict],
) -> str:
    if entra is None and harness is None:
        return "No such user in the cache on either side."
    if entra is None:
        return (
            "In Harness but unknown to Entra's assignments: "
            "remove them in Harness or assign them in Entra."
        )
    if not any(line.startswith("nextgen") for line in assignments):
        if nested_groups:
            return (
                f"Only in nested group(s) {', '.join(nested_groups)}: Entra never provisions "
                "nested members. Assign the user or a group they are a direct member of."
            )
        return (
            "Not assigned to the NextGen Harness app: "
            "assign the user or one of their groups in Entra."
        )
    if pending is not None:
        return f"Provisioning fails ({pending.error_code or 'error'}): {pending.hint.what_to_do}"
    if harness is None:
        return "Assigned, not in Harness yet: it should arrive with the next cycle."
    if conflicts:
        return conflicts[0].what_to_do
    return "All good: assigned, provisioned, and able to sign in."


# --- Overview ----------------------------------------------------------------------------


def overview(db: Database, now: datetime, freshness: Iterable[SourceFreshness]) -> Overview:
    """Health at a glance, every number leading to its screen."""
    cycles = recent_cycles(db, limit=1)
    pending, escalated = pending_counts(db)
    group_problems, conflicts = _directory_problem_counts(db)
    return Overview(
        jobs=tuple(job_health(db, now)),
        last_cycle=cycles[0] if cycles else None,
        pending_retries=pending,
        escalated_retries=escalated,
        group_problems=group_problems,
        sso_conflicts=conflicts,
        freshness=tuple(freshness),
        coverage_gaps=tuple(
            f"{gap.source}: nothing from {_clock(gap.gap_from)} to {_clock(gap.gap_to)}"
            " (scimwatch was down longer than Entra keeps provisioning logs)"
            for gap in coverage_gaps(db)[:3]
        ),
    )


# --- Coverage gaps ------------------------------------------------------------------------


class CoverageGap(NamedTuple):
    """A span of a source's log that was never fetched and never can be (past retention)."""

    source: str
    gap_from: datetime
    gap_to: datetime
    detected_at: datetime


def coverage_gaps(db: Database, source: str | None = None) -> list[CoverageGap]:
    """The recorded coverage gaps, newest first (all sources, or one)."""
    where, params = ("WHERE source = ?", [source]) if source else ("", [])
    rows = _rows(
        db,
        f"SELECT source, gap_from, gap_to, detected_at FROM coverage_gaps {where}"
        " ORDER BY gap_from DESC",
        params,
    )
    return [
        CoverageGap(
            source=row["source"],
            gap_from=_required_time(row["gap_from"]),
            gap_to=_required_time(row["gap_to"]),
            detected_at=_required_time(row["detected_at"]),
        )
        for row in rows
    ]


def _required_time(text: str) -> datetime:
    moment = parse_time(text)
    if moment is None:
        raise ValueError(f"empty time in coverage_gaps: {text!r}")
    return moment
