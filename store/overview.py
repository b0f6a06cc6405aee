"""The overview's answer: each source's freshness, the jobs, the last cycle, the counts.

The TUI draws this in its first frame, read in a thread while Textual is imported, so this
module imports no pydantic and no sqlite-utils (start-up is CPU on one core: importing those
and building their models cost more than the whole frame). Its answers are frozen dataclasses
and its reads take a plain `sqlite3.Connection` or a sqlite-utils `Database` alike (both have
`execute`). `store.health` builds the other answers on these.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Literal, NamedTuple

from store.names import SOURCES, AppName, SourceName

if TYPE_CHECKING:
    from sqlite_utils import Database

    Reader = sqlite3.Connection | Database
    """An open connection to a cache, as `Cache.reading()` or `open_first_read` gives it."""

DIRECTORY_RULES_VERSION: Final = 3
"""The rules computing the group mappings and SSO conflicts: bump it when they change, and
caches stamped with another version compute them again (m014 stamps existing caches 0).
1: a redundant Default Access assignment is to be removed, not edited.
2: conflicts name their app in a column (m015); a disabled Entra account is not one who
cannot sign in through FirstGen."""

SILENT_AFTER_INTERVALS = 3
"""An active job with no execution for this many intervals is silent."""

DEFAULT_INTERVAL = timedelta(minutes=40)
"""Harness syncs "approximately every 40 minutes" (graph-api.md 3.1)."""


def parse_time(text: str | None) -> datetime | None:
    """A cache timestamp back to an aware UTC datetime."""
    if not text:
        return None
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def utc_minute(moment: datetime) -> str:
    """A moment as the health answers word it: `2026-03-01 14:05 UTC`."""
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def span_text(delta: timedelta) -> str:
    """A duration in minutes, hours and minutes, or days."""
    minutes = int(delta.total_seconds() // 60)
    if minutes < 120:
        return f"{minutes} min"
    if minutes < 48 * 60:
        return f"{minutes // 60} h {minutes % 60} min"
    return f"{minutes // (24 * 60)} days"


def _rows(db: Reader, sql: str, params: Iterable[Any] = ()) -> list[dict[str, Any]]:
    cursor = db.execute(sql, list(params))
    columns = [description[0] for description in cursor.description]
    return [dict(zip(columns, row, strict=True)) for row in cursor]


# --- Freshness ----------------------------------------------------------------------------


@dataclass(frozen=True)
class SourceFreshness:
    """How fresh the cache is for one source."""

    source: SourceName
    last_success_at: datetime | None
    last_attempt_at: datetime | None
    last_error: str
    last_error_kind: str
    failing_since: datetime | None
    """Start of the current run of failed polls, None when the last poll succeeded."""
    stale: bool
    """No successful poll within twice the poll interval (or never)."""


def read_freshness(
    db: Reader, now: datetime, intervals: Mapping[SourceName, timedelta]
) -> list[SourceFreshness]:
    """Per source: last success, last error, since when failing, and whether stale.

    Data is stale when the last successful poll is older than twice the source's interval.
    """
    return [
        source_freshness(db, source, now, intervals[source])
        for source in SOURCES
        if source in intervals
    ]


def source_freshness(
    db: Reader, source: SourceName, now: datetime, interval: timedelta
) -> SourceFreshness:
    """One source's freshness (see `read_freshness`)."""
    last_success = _scalar(
        db, "SELECT max(finished_at) FROM poll_runs WHERE source = ? AND ok = 1", source
    )
    last_attempt = _rows(
        db,
        "SELECT finished_at, ok, error, error_kind FROM poll_runs"
        " WHERE source = ? ORDER BY id DESC LIMIT 1",
        [source],
    )
    failing_since = None
    last_error = last_error_kind = ""
    if last_attempt and not last_attempt[0]["ok"]:
        last_error = last_attempt[0]["error"]
        last_error_kind = last_attempt[0]["error_kind"]
        failing_since = parse_time(
            _scalar(
                db,
                "SELECT min(started_at) FROM poll_runs WHERE source = ? AND ok = 0"
                " AND id > coalesce((SELECT max(id) FROM poll_runs"
                " WHERE source = ? AND ok = 1), 0)",
                source,
                source,
            )
        )
    success_at = parse_time(last_success)
    return SourceFreshness(
        source=source,
        last_success_at=success_at,
        last_attempt_at=parse_time(last_attempt[0]["finished_at"]) if last_attempt else None,
        last_error=last_error,
        last_error_kind=last_error_kind,
        failing_since=failing_since,
        stale=success_at is None or now - success_at > 2 * interval,
    )


def _scalar(db: Reader, sql: str, *params: object) -> Any:
    rows = list(db.execute(sql, params).fetchall())
    return rows[0][0] if rows else None


def last_poll_id(db: Reader) -> int:
    """The newest poll run's id (0 before the first): it grows with every saved poll."""
    return int(db.execute("SELECT coalesce(max(id), 0) FROM poll_runs").fetchone()[0])


# --- Jobs ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class JobRow:
    """A provisioning job's state as the cache keeps it.

    The `sync_jobs` row that `store.models.SyncJob` saved, field for field (see there for what
    each means).
    """

    service_principal_id: str
    job_id: str
    app: AppName
    template_id: str
    schedule_state: str
    interval_seconds: int | None
    status_code: str
    successive_failures: int
    escrows_pruned: bool
    last_began: datetime | None
    last_ended: datetime | None
    last_state: str
    last_activity_id: str
    last_error_code: str
    last_error_message: str
    last_escrowed: int | None
    last_exported: int | None
    last_success_began: datetime | None
    last_success_ended: datetime | None
    steady_state_last: datetime | None
    quarantine_reason: str
    quarantine_series_began: datetime | None
    quarantine_current_began: datetime | None
    quarantine_next_attempt: datetime | None
    quarantine_series_count: int | None
    quarantine_error: str
    troubleshooting_url: str
    observed_at: datetime


_JOB_COLUMNS = tuple(field.name for field in fields(JobRow))
_JOB_TIMES = tuple(field.name for field in fields(JobRow) if "datetime" in str(field.type))


def _job_from_row(row: Mapping[str, Any]) -> JobRow:
    values = {name: row[name] for name in _JOB_COLUMNS}
    for name in _JOB_TIMES:
        values[name] = parse_time(values[name])
    values["escrows_pruned"] = bool(values["escrows_pruned"])
    return JobRow(**values)


JobState = Literal["healthy", "running", "overdue", "silent", "quarantine", "paused", "not_run"]


@dataclass(frozen=True)
class JobHealth:
    """One provisioning job with what its schedule and quarantine mean right now."""

    job: JobRow
    state: JobState
    next_expected_at: datetime | None
    """When the next cycle should start: last end + interval, or the quarantine's next attempt."""
    overdue_by: timedelta | None
    """How late the next cycle is, past the grace period."""
    summary: str
    """One line an admin can act on."""
    quarantine_disabled_at: datetime | None = None
    """When a quarantine that lasts will disable the job (four weeks after it began)."""


def grace_for(interval: timedelta) -> timedelta:
    """How late a cycle may be before it is overdue: a quarter interval, at least 10 minutes."""
    return max(interval / 4, timedelta(minutes=10))


def job_health(db: Reader, now: datetime) -> list[JobHealth]:
    """Every provisioning job (NextGen first) with its state and next expected cycle."""
    rows = _rows(db, f"SELECT {', '.join(_JOB_COLUMNS)} FROM sync_jobs ORDER BY app DESC, job_id")
    return [_assess_job(_job_from_row(row), now) for row in rows]


def _assess_job(job: JobRow, now: datetime) -> JobHealth:
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
    summary = f"Next cycle expected {utc_minute(next_expected)}."
    if job.last_ended is None or (job.last_began and job.last_began > job.last_ended):
        state, summary = "running", "A cycle is running."
    elif now - last_activity > interval * SILENT_AFTER_INTERVALS:
        state, overdue_by = "silent", late
        summary = (
            f"Active, yet no cycle for {span_text(now - last_activity)} "
            f"({SILENT_AFTER_INTERVALS}+ intervals): check the job in Entra."
        )
    elif late > grace_for(interval):
        state, overdue_by = "overdue", late
        summary = f"Next cycle is {span_text(late)} late (expected {utc_minute(next_expected)})."
    elif late > timedelta(0):
        summary = (
            f"Next cycle expected {utc_minute(next_expected)}: {span_text(late)} late, within "
            f"the {span_text(grace_for(interval))} grace (cycles often start late)."
        )
    return JobHealth(
        job=job,
        state=state,
        next_expected_at=next_expected,
        overdue_by=overdue_by,
        summary=summary,
    )


def _quarantined(job: JobRow, now: datetime) -> JobHealth:
    from store import playbook  # ~10 ms of import a start-up showing no quarantine saves

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
            f"QUARANTINE ({reason}) since {utc_minute(began)}: {meaning} "
            + (
                f"Entra retries with backoff (next {utc_minute(next_attempt)}) and disables the "
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


# --- Cycles -------------------------------------------------------------------------------


@dataclass(frozen=True)
class CycleSummary:
    """One sync cycle: its span and counts by status and action."""

    job_id: str
    cycle_id: str
    started_at: datetime
    ended_at: datetime
    events: int
    succeeded: int
    failed: int
    skipped: int
    warnings: int
    creates: int
    updates: int
    deletes: int
    disables: int
    staged_deletes: int
    other_actions: int

    @property
    def duration(self) -> timedelta:
        """From the first to the last event of the cycle."""
        return self.ended_at - self.started_at


_CYCLE_COLUMNS = ", ".join(field.name for field in fields(CycleSummary))


def _cycle_from_row(row: tuple[Any, ...]) -> CycleSummary:
    job_id, cycle_id, started_at, ended_at, *counts = row
    return CycleSummary(
        job_id, cycle_id, _required_time(started_at), _required_time(ended_at), *counts
    )


def recent_cycles(
    db: Reader, limit: int = 100, before: tuple[str, str] | None = None
) -> list[CycleSummary]:
    """Cycles newest first; `before` = (ended_at text, cycle_id) of the last row seen (keyset)."""
    if before is None:
        cursor = db.execute(
            f"SELECT {_CYCLE_COLUMNS} FROM cycles ORDER BY ended_at DESC, cycle_id DESC LIMIT ?",
            [limit],
        )
    else:
        cursor = db.execute(
            f"SELECT {_CYCLE_COLUMNS} FROM cycles WHERE (ended_at, cycle_id) < (?, ?)"
            " ORDER BY ended_at DESC, cycle_id DESC LIMIT ?",
            [*before, limit],
        )
    return [_cycle_from_row(row) for row in cursor]


# --- Counts -------------------------------------------------------------------------------


def pending_counts(db: Reader) -> tuple[int, int]:
    """(pending, escalated) failures: cheap counts for the overview and `check`."""
    row = db.execute(
        "SELECT count(*), coalesce(sum(failed_cycles >= 2), 0)"
        " FROM object_state WHERE latest_status = 'failure'"
    ).fetchone()
    return int(row[0]), int(row[1])


def problem_counts(db: Reader) -> tuple[int, int]:
    """(group mappings not ok, SSO conflicts), from the stored answers when they are current.

    Stale answers (the directory changed, or other rules) are computed by `store.directory`,
    which a first frame rarely needs: only then is it imported.
    """
    if not directory_answers_fresh(db):
        from sqlite_utils import Database

        from store.directory import problem_counts as computed_counts

        return computed_counts(db if not isinstance(db, sqlite3.Connection) else Database(db))
    return count_problems(db, "group_mappings", "sso_conflicts")


def count_problems(db: Reader, mappings: str, conflicts: str) -> tuple[int, int]:
    """(mappings not ok, conflicts) in these answer tables (stored, or computed now)."""
    row = db.execute(
        f"SELECT (SELECT count(*) FROM {mappings} WHERE state != 'ok'),"
        f" (SELECT count(*) FROM {conflicts})"
    ).fetchone()
    return int(row[0]), int(row[1])


def directory_answers_fresh(db: Reader) -> bool:
    """Whether the stored mappings and SSO conflicts are the directory's now, by these rules."""
    try:
        row = db.execute("SELECT fresh, rules_version FROM directory_answers_state").fetchone()
    except sqlite3.OperationalError as error:
        if "no such table" in str(error) or "no such column" in str(error):
            return False  # a read-only cache written before the answers were kept (stamped)
        raise
    return bool(row and row[0] and row[1] == DIRECTORY_RULES_VERSION)


# --- Coverage gaps ------------------------------------------------------------------------


class CoverageGap(NamedTuple):
    """A span of a source's log that was never fetched and never can be (past retention)."""

    source: str
    gap_from: datetime
    gap_to: datetime
    detected_at: datetime


def coverage_gaps(db: Reader, source: str | None = None) -> list[CoverageGap]:
    """The recorded coverage gaps, newest first (all sources, or one)."""
    where, params = ("WHERE source = ?", [source]) if source else ("", [])
    rows = db.execute(
        f"SELECT source, gap_from, gap_to, detected_at FROM coverage_gaps {where}"
        " ORDER BY gap_from DESC",
        params,
    ).fetchall()
    return [
        CoverageGap(
            source=source,
            gap_from=_required_time(gap_from),
            gap_to=_required_time(gap_to),
            detected_at=_required_time(detected_at),
        )
        for source, gap_from, gap_to, detected_at in rows
    ]


def _required_time(text: str) -> datetime:
    moment = parse_time(text)
    if moment is None:
        raise ValueError(f"empty time: {text!r}")
    return moment


# --- The overview -------------------------------------------------------------------------


@dataclass(frozen=True)
class Overview:
    """Health at a glance."""

    jobs: tuple[JobHealth, ...]
    last_cycle: CycleSummary | None
    pending_retries: int
    escalated_retries: int
    group_problems: int
    sso_conflicts: int
    freshness: tuple[SourceFreshness, ...]
    coverage_gaps: tuple[str, ...] = ()
    """Spans of the provisioning log lost to downtime past Entra's retention, as sentences."""


def overview(db: Reader, now: datetime, freshness: Iterable[SourceFreshness]) -> Overview:
    """Health at a glance, every number leading to its screen."""
    cycles = recent_cycles(db, limit=1)
    pending, escalated = pending_counts(db)
    group_problems, conflicts = problem_counts(db)
    return Overview(
        jobs=tuple(job_health(db, now)),
        last_cycle=cycles[0] if cycles else None,
        pending_retries=pending,
        escalated_retries=escalated,
        group_problems=group_problems,
        sso_conflicts=conflicts,
        freshness=tuple(freshness),
        coverage_gaps=tuple(
            f"{gap.source}: nothing from {utc_minute(gap.gap_from)} to "
            f"{utc_minute(gap.gap_to)} (scimwatch was down longer than Entra keeps "
            "provisioning logs)"
            for gap in coverage_gaps(db)[:3]
        ),
    )


@dataclass(frozen=True)
class FirstRead:
    """What the TUI reads first: the newest poll, and the overview (freshness included)."""

    last_poll_id: int
    """The newest poll when the read began: the overview shows at least that poll."""
    overview: Overview


def read_first(
    db: Reader, now: datetime, freshness_intervals: Mapping[SourceName, timedelta]
) -> FirstRead:
    """The newest poll id, then the overview, in one read transaction of `db`."""
    poll_id = last_poll_id(db)
    freshness = read_freshness(db, now, freshness_intervals)
    return FirstRead(poll_id, overview(db, now, freshness))


def read_first_from(
    path: Path, now: datetime, freshness_intervals: Mapping[SourceName, timedelta]
) -> FirstRead:
    """`read_first` on a read-only connection of its own to the cache at `path`.

    What the TUI starts before it imports Textual, without opening the cache as `store.cache`
    does (that imports pydantic and sqlite-utils): one snapshot, so the poll id and the overview
    agree.
    """
    conn = sqlite3.connect(
        f"{path.resolve().as_uri()}?mode=ro", uri=True, isolation_level=None, timeout=10.0
    )
    try:
        conn.execute("BEGIN")
        return read_first(conn, now, freshness_intervals)
    finally:
        conn.close()
