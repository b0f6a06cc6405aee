"""The health model: the answers an admin on call needs, computed from the cache only.

Every screen, `check`, the metrics and the export read these, so they all see the same truth.
Each function takes an open `sqlite_utils.Database` (from `Cache.reading()`) and, where time
matters, an explicit `now` so answers are reproducible.
"""

from __future__ import annotations

import functools
import heapq
import itertools
import json
import sqlite3
from collections import Counter
from collections.abc import Generator, Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Final, Literal, NamedTuple, get_args

from sqlite_utils import Database

from store import harness_ids, playbook
from store.cache import parse_time
from store.derived import spaced
from store.models import (
    AppName,
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
    UserAssignment,
    UserLookup,
    UserMatch,
    construct_trusted,
)
from store.schema import USER_SEARCH_COLUMNS

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


def job_apps(db: Database) -> dict[str, str]:
    """The app ("nextgen", "firstgen") each provisioning job in the cache syncs, by job id."""
    return dict(db.execute("SELECT job_id, app FROM sync_jobs").fetchall())


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

    `text` keeps the events whose own identity name, source id, target id, error code or cycle
    id contains it as a plain substring, ASCII case folded (a bound parameter: never SQL). It
    is looked for among the newest events first (`_newest_matching`), then, when they hold
    less than a page of matches, through the objects and cycles whose events carried it
    (`_looked_up`): the same events either way.
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
        if found is None:
            found = _looked_up(db, conditions, params, text, limit)
        return [_event_from_row(row) for row in found]
    where = f"WHERE {' AND '.join(conditions)}" if conditions else ""
    rows = _rows(
        db,
        f"SELECT * FROM provisioning_events {where} ORDER BY activity_at DESC, id DESC LIMIT ?",
        [*params, limit],
    )
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
    looking it up by object visits thousands of objects. The window is read in order and
    matched as it is read, so the first `limit` matches are the newest; when the window holds
    fewer, None: the caller looks the text up by object instead.
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


class _Source(NamedTuple):
    """Where events matching a text may be, and the time of its newest event."""

    newest_at: str
    kind: Literal["object", "cycle", "anonymous"]
    key: str | int  # an object's term id, a cycle's id; "" for events without a source id
    started_at: str = ""  # a cycle's first event's time


_FIRST_SOURCES = 256
"""Sources whose events the lookup reads first: about a page's worth of objects."""


def _looked_up(
    db: Database, conditions: list[str], params: list[Any], text: str, limit: int
) -> list[dict[str, Any]]:
    """The newest `limit` events matching `text`, read from the sources their matches are in.

    Every matching event is an event of an object whose events carried the text (found
    through the search terms, `_matching_objects`), of a cycle whose id holds it, or of no
    object. Sources go newest event first, and the events of the first few are read; those of
    every other source are no newer than the next source's newest event (the floor), so a
    page of matches newer than the floor is the answer. Otherwise twice the sources are read.
    """
    others = sorted([*_matching_cycles(db, text), *_anonymous(db)], reverse=True)
    # Objects come sorted from SQL and are taken as needed: thousands may match.
    objects = _matching_objects(db, text)
    newest_first = heapq.merge(objects, others, reverse=True)
    sources: list[_Source] = []
    taken = _FIRST_SOURCES
    try:
        while True:
            sources += itertools.islice(newest_first, taken + 1 - len(sources))
            floor = sources[taken].newest_at if taken < len(sources) else None
            page = _source_events(db, sources[:taken], conditions, params, text, limit, floor)
            if floor is None or (len(page) >= limit and page[-1]["activity_at"] > floor):
                return page
            taken *= 2
    finally:
        objects.close()  # its statement ends now, not whenever the generator is collected


def _source_events(
    db: Database,
    sources: Sequence[_Source],
    conditions: list[str],
    params: list[Any],
    text: str,
    limit: int,
    floor: str | None,
) -> list[dict[str, Any]]:
    """The newest `limit` events matching `text` among `sources`' events from `floor` on."""
    own, own_params = _own_match(text)
    filters = " AND ".join([*conditions, own])
    filter_params = [*params, *own_params]
    since = " AND activity_at >= ?" if floor is not None else ""
    since_params = [floor] if floor is not None else []
    order = "ORDER BY activity_at DESC, id DESC LIMIT ?"
    page: dict[str, dict[str, Any]] = {}
    object_ids = [source.key for source in sources if source.kind == "object"]
    if object_ids:
        # By the object index: the status or time index would walk every failure or event.
        # The ids as one JSON list: tens of thousands are more than SQLite's parameters.
        for row in _rows(
            db,
            "SELECT * FROM provisioning_events INDEXED BY provisioning_events_source"
            " WHERE source_id IN (SELECT term FROM search_terms WHERE id IN"
            f" (SELECT value FROM json_each(?))){since} AND {filters} {order}",
            [json.dumps(object_ids), *since_params, *filter_params, limit],
        ):
            page[row["id"]] = row
    for source in sources:
        if source.kind == "cycle":  # its events in time order within its span
            rows = _rows(
                db,
                "SELECT * FROM provisioning_events WHERE +cycle_id = ?"
                f" AND activity_at BETWEEN ? AND ?{since} AND {filters} {order}",
                [source.key, source.started_at, source.newest_at, *since_params,
                 *filter_params, limit],
            )  # fmt: skip
        elif source.kind == "anonymous":
            rows = _rows(
                db,
                "SELECT * FROM provisioning_events INDEXED BY provisioning_events_source"
                f" WHERE source_id = ''{since} AND {filters} {order}",
                [*since_params, *filter_params, limit],
            )
        else:
            continue
        page.update((row["id"], row) for row in rows)
    return sorted(page.values(), key=_time_and_id, reverse=True)[:limit]


def _time_and_id(row: Mapping[str, Any]) -> tuple[str, str]:
    return row["activity_at"], row["id"]


_TRIGRAM = 3
"""The shortest text the trigram index of search terms can look up."""


def _matching_objects(db: Database, text: str) -> Generator[_Source]:
    """Objects whose events carried an id, name, target id or error code containing `text`.

    An object's events carrying a term are no newer than its newest event if it holds the
    term now, else than when it stopped holding it (m013): that time is its source's. Objects
    that hold a matching term now are sorted by their newest event; the others come newest
    first off an index, as the caller takes them (a common error code was held once by a
    quarter of the objects). An object may come more than once. The key is the object's
    term id (its source id's).
    """
    term_ids = _matching_terms(db, text)
    if not term_ids:
        return
    params: list[Any]
    if len(term_ids) == 1:  # the index then gives its objects in order: nothing to sort
        match, params = "t.term_id = ?", list(term_ids)
    else:
        match, params = "t.term_id IN (SELECT value FROM json_each(?))", [json.dumps(term_ids)]
    holding = db.execute(
        "SELECT (SELECT max(s.latest_at) FROM object_state AS s WHERE s.source_id ="
        " (SELECT term FROM search_terms WHERE id = t.object_id)), t.object_id"
        f" FROM object_terms AS t WHERE {match} AND t.holders > 0 ORDER BY 1 DESC, 2 DESC",
        params,
    )
    released = db.execute(
        "SELECT t.released_at, t.object_id FROM object_terms AS t"
        f" INDEXED BY object_terms_released WHERE {match} AND t.holders = 0"
        " ORDER BY 1 DESC, 2 DESC",
        params,
    )
    for newest_at, object_id in heapq.merge(holding, released, reverse=True):
        yield _Source(newest_at, "object", object_id)


def _matching_terms(db: Database, text: str) -> list[int]:
    """The ids of the terms containing `text` (m013).

    Those holding every trigram of the text are found through their index, then checked with
    LIKE (the index folds case beyond ASCII, LIKE does not). A text of one or two characters
    is looked up as the trigram its characters make spaced out (`store.derived.spaced`).
    """
    rows = db.execute(
        "SELECT id FROM search_terms WHERE id IN (SELECT rowid FROM search_terms_text"
        " WHERE search_terms_text MATCH ?) AND term LIKE ? ESCAPE '\\'",
        [_trigram_query(text if len(text) >= _TRIGRAM else spaced(text)), _like(text)],
    )
    return [term_id for (term_id,) in rows]


def _trigram_query(text: str) -> str:
    """An FTS5 query for the terms holding every trigram of `text`, each quoted: never syntax."""
    grams = {text[start : start + _TRIGRAM] for start in range(len(text) - _TRIGRAM + 1)}
    return " AND ".join('"' + gram.replace('"', '""') + '"' for gram in sorted(grams))


def _matching_cycles(db: Database, text: str) -> list[_Source]:
    """Cycles whose id contains `text` (a cycle id is unique across jobs)."""
    rows = db.execute(
        "SELECT max(ended_at), cycle_id, min(started_at) FROM cycles"
        " WHERE cycle_id LIKE ? ESCAPE '\\' GROUP BY cycle_id",
        [_like(text)],
    )
    return [_Source(ended, "cycle", cycle_id, started) for ended, cycle_id, started in rows]


def _anonymous(db: Database) -> list[_Source]:
    """Events without a source id, which no object holds, if there are any."""
    (newest_at,) = db.execute(
        "SELECT max(activity_at) FROM provisioning_events WHERE source_id = ''"
    ).fetchone()
    return [] if newest_at is None else [_Source(newest_at, "anonymous", "")]


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


# --- Directory answers: group mappings and SSO conflicts ---------------------------------

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

DIRECTORY_RULES_VERSION: Final = 1
"""The rules computing the group mappings and SSO conflicts: bump it when they change, and
caches stamped with another version compute them again (m014 stamps existing caches 0).
1: a redundant Default Access assignment is to be removed, not edited."""

_LIST_SEPARATOR = "\x1f"
"""Joins a stored mapping's name lists (the ASCII unit separator: answers whose names hold
it are computed by readers instead, see `_free_separator`)."""

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

_COMPUTED_MAPPINGS = "temp._dir_answer_mappings"
"""Where `_compute_directory_answers` leaves the group mappings (in `group_mappings` form)."""
_COMPUTED_CONFLICTS = "temp._dir_answer_conflicts"
"""Where `_compute_directory_answers` leaves the SSO conflicts (in `sso_conflicts` form)."""

_WORK_TABLES = """
CREATE TEMP TABLE _dir_answer_mappings (position INTEGER PRIMARY KEY, entra_group_id,
    entra_name, predicted_identifier, harness_identifier, harness_name, state, problems, detail,
    entra_members, harness_members, missing_in_harness, extra_in_harness, nested_only,
    pending_error, harness_members_as_entra);
CREATE TEMP TABLE _dir_answer_conflicts (position INTEGER PRIMARY KEY, kind, principal_id,
    email, display_name, detail, what_to_do);
CREATE TEMP TABLE _dir_groups (group_id PRIMARY KEY, position, name, identifier, claims,
    first_assignment, how, harness_identifier, harness_name, recompute DEFAULT 1);
CREATE TEMP TABLE _dir_kept (group_id PRIMARY KEY, entra, harness, missing, extra, nested);
CREATE TEMP TABLE _dir_candidates (group_id, rank, identifier, PRIMARY KEY (group_id, rank))
    WITHOUT ROWID;
CREATE TEMP TABLE _dir_targets (source_id PRIMARY KEY, target_id, latest_status, error_code,
    reason) WITHOUT ROWID;
CREATE TEMP TABLE _dir_entra_members (group_id, direct, label, member_id, email, membership,
    PRIMARY KEY (group_id, direct, label, member_id)) WITHOUT ROWID;
CREATE TEMP TABLE _dir_harness_members (identifier, label, user_id,
    PRIMARY KEY (identifier, label, user_id)) WITHOUT ROWID;
CREATE TEMP TABLE _dir_missing (group_id, label, PRIMARY KEY (group_id, label)) WITHOUT ROWID;
CREATE TEMP TABLE _dir_extra (group_id, label, PRIMARY KEY (group_id, label)) WITHOUT ROWID;
CREATE TEMP TABLE _dir_verdicts (group_id PRIMARY KEY, state, problems, detail, pending_error);
CREATE TEMP TABLE _dir_scope (user_id PRIMARY KEY, email, label, how, k1, k2, k3)
    WITHOUT ROWID;
CREATE TEMP TABLE _dir_firstgen (user_id PRIMARY KEY) WITHOUT ROWID
"""
"""The temp tables of one computation: the answers, then the working tables.

Name lists are built from tables keyed by (owner, name, ...): aggregated over a search of
that key, `group_concat` joins the names in sorted order (SQLite 3.40 has no ORDER BY inside
an aggregate).
"""

_WORK_CACHE_KIB = 32 * 1024
"""Page cache of the temp tables while computing (~25 MB at 100,000 users): SQLite's default
for temp tables is a few pages, and writing them through a temp file doubled the work."""

_WORK_TABLE_NAMES = tuple(
    statement.split()[3] for statement in _WORK_TABLES.split(";") if statement.strip()
)


def _lower(expression: str) -> str:
    """SQL for Python's `str.lower()` of `expression`: SQLite's `lower()` folds ASCII only."""
    return (
        f"CASE WHEN length(CAST({expression} AS BLOB)) = length({expression})"
        f" THEN lower({expression}) ELSE scimwatch_lower({expression}) END"
    )


def _python_lower(text: str | None) -> str | None:
    return None if text is None else text.lower()


_ENTRA_EMAIL = _lower("coalesce(nullif(u.mail, ''), u.user_principal_name)")
"""A user's email as the answers show it (`u` is entra_users; NULL when there is no such user)."""


_HARNESS_LABEL = _lower("coalesce(nullif(u.email, ''), m.user_id)")
"""How the answers name a Harness group member `m` (`u` is harness_users): email, else id."""


def _entra_label(user_id: str) -> str:
    """SQL for how the answers name an Entra user: their email, else their id."""
    return f"coalesce(nullif({_ENTRA_EMAIL}, ''), {user_id})"


def _directory_answers_fresh(db: Database) -> bool:
    """Whether the stored mappings and SSO conflicts are the directory's now, by these rules."""
    try:
        row = db.execute("SELECT fresh, rules_version FROM directory_answers_state").fetchone()
    except sqlite3.OperationalError as error:
        if "no such table" in str(error) or "no such column" in str(error):
            return False  # a read-only cache written before the answers were kept (stamped)
        raise
    return bool(row and row[0] and row[1] == DIRECTORY_RULES_VERSION)


def refresh_directory_answers(conn: sqlite3.Connection) -> None:
    """Recompute the stored group mappings and SSO conflicts if any input changed since.

    Called by `Cache.save_batch` inside its transaction; the inputs' triggers (migrations
    m006, m012) mark the answers stale whenever a row they are computed from changes. When only
    groups' provisioning state or the jobs changed (a provisioning poll), SSO conflicts and
    the member lists of groups still matched to the same Harness group are kept.
    """
    fresh, members_fresh, rules_version = conn.execute(
        "SELECT fresh, members_fresh, rules_version FROM directory_answers_state"
    ).fetchone()
    if rules_version != DIRECTORY_RULES_VERSION:
        fresh = members_fresh = 0  # computed by other rules: all of it again
    if fresh:
        return
    try:
        separator = _compute_directory_answers(conn, keep_members=bool(members_fresh))
        if separator != _LIST_SEPARATOR:
            # A name holds the list separator (a full pass would find it too: its members are
            # a superset of a partial pass's): readers compute the answers live.
            return
        _store_changed_rows(
            conn,
            "group_mappings",
            _COMPUTED_MAPPINGS,
            (*_MAPPING_COLUMNS, "harness_members_as_entra"),
        )
        if not members_fresh:
            _store_changed_rows(conn, "sso_conflicts", _COMPUTED_CONFLICTS, _CONFLICT_COLUMNS)
        conn.execute(
            "UPDATE directory_answers_state SET fresh = 1, members_fresh = 1, rules_version = ?",
            (DIRECTORY_RULES_VERSION,),
        )
    finally:
        _drop_work_tables(conn)


def _store_changed_rows(
    conn: sqlite3.Connection, table: str, computed: str, columns: Sequence[str]
) -> None:
    """Make `table` hold `computed`'s rows, writing only the positions whose row changed.

    A directory change usually leaves most answers as they were: 50,000 unchanged conflicts
    are then not deleted and written again (~20 MB of WAL at 100,000 users).
    """
    same = " AND ".join(f"s.{column} IS c.{column}" for column in columns)
    conn.execute(
        f"DELETE FROM {table} WHERE position NOT IN (SELECT s.position FROM {table} AS s"
        f" JOIN {computed} AS c ON c.position = s.position WHERE {same})"
    )
    listed = ", ".join(("position", *columns))
    conn.execute(
        f"INSERT INTO {table} ({listed}) SELECT {listed} FROM {computed}"
        f" WHERE position NOT IN (SELECT position FROM {table}) ORDER BY position"
    )


def _answer_tables(db: Database) -> tuple[str, str, str]:
    """(mappings, conflicts, list separator) to read: stored, or computed now when stale."""
    if _directory_answers_fresh(db):
        return "group_mappings", "sso_conflicts", _LIST_SEPARATOR
    separator = _compute_directory_answers(db.conn)
    return _COMPUTED_MAPPINGS, _COMPUTED_CONFLICTS, separator


def _drop_work_tables(conn: sqlite3.Connection) -> None:
    for table in _WORK_TABLE_NAMES:
        conn.execute(f"DROP TABLE IF EXISTS temp.{table}")


def _compute_directory_answers(conn: sqlite3.Connection, *, keep_members: bool = False) -> str:
    """Compute every group mapping and SSO conflict into `_COMPUTED_*`, set-based in SQL.

    Python only derives each assigned group's identifiers from its name (`harness_ids`, a
    thousand names) and words each group's problems from a row of facts; nothing per user
    leaves SQLite. Returns the character joining the name lists: `_LIST_SEPARATOR` unless a
    name holds it (the answers can then not be stored, only read from the temp tables).

    `keep_members`: nothing but groups' provisioning state and the jobs changed since the
    stored answers were computed. Member lists are then taken from the stored mappings for
    groups matched to the same Harness group as then, and SSO conflicts are not computed.
    """
    conn.create_function("scimwatch_lower", 1, _python_lower, deterministic=True)
    conn.create_function("scimwatch_list_length", 1, _list_length, deterministic=True)
    _drop_work_tables(conn)
    previous_cache = conn.execute("PRAGMA temp.cache_size").fetchone()[0]
    conn.execute(f"PRAGMA temp.cache_size=-{_WORK_CACHE_KIB}")
    try:
        for statement in _WORK_TABLES.split(";"):
            conn.execute(statement)
        candidates = _fill_assigned_groups(conn)
        _match_harness_groups(conn)
        if keep_members:
            _keep_member_lists(conn)
        _fill_members(conn)
        separator = _free_separator(conn)
        _fill_verdicts(conn, candidates, separator)
        _fill_mappings(conn, separator)
        if not keep_members:
            _fill_conflicts(conn)
        for table in _WORK_TABLE_NAMES[2:]:
            conn.execute(f"DROP TABLE temp.{table}")
    finally:
        conn.execute(f"PRAGMA temp.cache_size={int(previous_cache)}")
    return separator


def _free_separator(conn: sqlite3.Connection) -> str:
    """`_LIST_SEPARATOR`, or when a member's name holds it a character none holds."""
    for code in (ord(_LIST_SEPARATOR), *range(0xE000, 0xF900)):  # then the private use area
        if not conn.execute(
            "SELECT 1 FROM _dir_entra_members WHERE instr(label, ?)"
            " UNION ALL SELECT 1 FROM _dir_harness_members WHERE instr(label, ?) LIMIT 1",
            [chr(code), chr(code)],
        ).fetchone():
            return chr(code)
    raise ValueError("every candidate separator occurs in the directory's names")


def _fill_assigned_groups(conn: sqlite3.Connection) -> dict[str, frozenset[str]]:
    """The groups assigned to the NextGen app, in the list's order, with their identifiers.

    Returns each group's candidate identifiers (every version of Harness's rule).
    """
    names: dict[str, str] = {}
    first: dict[str, tuple[int, str]] = {}  # group -> (first assignment's rowid, "via group X")
    for rowid, group_id, principal_name, display_name in conn.execute(
        "SELECT a.rowid, a.principal_id, a.principal_name, g.display_name"
        " FROM app_role_assignments AS a LEFT JOIN entra_groups AS g ON g.id = a.principal_id"
        " WHERE a.app = 'nextgen' AND a.principal_type = 'Group' AND a.app_role_id != ?"
        " ORDER BY a.rowid",
        [DEFAULT_ACCESS_ROLE],
    ):
        names[group_id] = display_name or principal_name
        first.setdefault(group_id, (rowid, f"via group {principal_name or group_id}"))
    ordered = sorted(names.items(), key=lambda item: str(item[1]).lower())
    identifiers = {
        group_id: harness_ids.harness_identifier(str(name)) for group_id, name in ordered
    }
    claims = Counter(identifiers.values())
    conn.executemany(
        "INSERT INTO _dir_groups (group_id, position, name, identifier, claims,"
        " first_assignment, how) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (
            (
                group_id,
                position,
                str(name),
                identifiers[group_id],
                claims[identifiers[group_id]],
                *first[group_id],
            )
            for position, (group_id, name) in enumerate(ordered)
        ),
    )
    candidates = {
        group_id: [c.identifier for c in harness_ids.candidate_identifiers(str(name))]
        for group_id, name in names.items()
    }
    conn.executemany(
        "INSERT INTO _dir_candidates (group_id, rank, identifier) VALUES (?, ?, ?)",
        (
            (group_id, rank, identifier)
            for group_id, identifiers in candidates.items()
            for rank, identifier in enumerate(identifiers)
        ),
    )
    return {group_id: frozenset(identifiers) for group_id, identifiers in candidates.items()}


_ACCOUNT_GROUP = "scope = 'account' AND harness_managed = 0"
"""The Harness groups the mappings consider (account level, not Harness's built-in ones)."""


def _match_harness_groups(conn: sqlite3.Connection) -> None:
    """Find each assigned group's Harness group: by the SCIM id the logs show, else by name.

    A group provisioned by both apps has a state per job: the NextGen job's wins. Without a
    SCIM id from the logs a SCIM group is matched by the identifiers the rule gives the name,
    unless the logs show another Entra group provisioned it (the loser of a collision).
    """
    conn.execute(
        "INSERT OR IGNORE INTO _dir_targets"
        " SELECT source_id, target_id, latest_status, error_code, reason FROM object_state"
        " WHERE source_type = 'Group' ORDER BY source_id,"
        " job_id IN (SELECT job_id FROM sync_jobs WHERE app = 'nextgen') DESC, job_id DESC"
    )
    conn.execute(
        "UPDATE _dir_groups SET harness_identifier = coalesce("
        " (SELECT h.identifier FROM _dir_targets AS t JOIN harness_groups AS h"
        f"  ON h.identifier = t.target_id AND h.{_ACCOUNT_GROUP}"
        "  WHERE t.source_id = _dir_groups.group_id AND t.target_id != ''),"
        " (SELECT h.identifier FROM _dir_candidates AS c JOIN harness_groups AS h"
        f"  ON h.identifier = c.identifier AND h.{_ACCOUNT_GROUP}"
        "  WHERE c.group_id = _dir_groups.group_id AND h.externally_managed"
        "  AND c.identifier NOT IN (SELECT target_id FROM _dir_targets) ORDER BY c.rank LIMIT 1))"
    )
    conn.execute(
        "UPDATE _dir_groups SET harness_name = (SELECT name FROM harness_groups AS h"
        f" WHERE h.identifier = _dir_groups.harness_identifier AND h.{_ACCOUNT_GROUP})"
    )


def _keep_member_lists(conn: sqlite3.Connection) -> None:
    """Take the stored lists of the groups matched to the same Harness group as when stored."""
    conn.execute(
        "INSERT INTO _dir_kept SELECT g.group_id, m.entra_members, CASE WHEN"
        " m.harness_members_as_entra THEN m.entra_members ELSE m.harness_members END,"
        " m.missing_in_harness, m.extra_in_harness, m.nested_only FROM _dir_groups AS g"
        " JOIN group_mappings AS m ON m.entra_group_id = g.group_id AND m.state != 'orphan'"
        " AND m.entra_name = g.name AND m.harness_identifier = coalesce(g.harness_identifier, '')"
    )
    conn.execute(
        "UPDATE _dir_groups SET recompute = 0 WHERE group_id IN (SELECT group_id FROM _dir_kept)"
    )


def _list_length(text: str | None) -> int:
    """How many names a stored name list holds."""
    return 0 if text is None else text.count(_LIST_SEPARATOR) + 1


def _fill_members(conn: sqlite3.Connection) -> None:
    """Both sides' members of each mapped group, by label, and the differences."""
    conn.execute(
        "INSERT INTO _dir_entra_members SELECT m.group_id, m.direct != 0,"
        f" {_entra_label('m.member_id')}, m.member_id, coalesce({_ENTRA_EMAIL}, ''), m.rowid"
        " FROM entra_memberships AS m LEFT JOIN entra_users AS u ON u.id = m.member_id"
        " WHERE m.member_type = 'user'"
        " AND m.group_id IN (SELECT group_id FROM _dir_groups WHERE recompute)"
    )
    conn.execute(
        "INSERT INTO _dir_harness_members SELECT m.group_identifier,"
        f" {_HARNESS_LABEL}, m.user_id"
        " FROM harness_group_members AS m LEFT JOIN harness_users AS u ON u.id = m.user_id"
        " WHERE m.scope = 'account'"
        " AND m.group_identifier IN (SELECT harness_identifier FROM _dir_groups WHERE recompute)"
    )
    conn.execute(
        "INSERT OR IGNORE INTO _dir_missing SELECT e.group_id, e.label"
        " FROM _dir_groups AS g JOIN _dir_entra_members AS e"
        " ON e.group_id = g.group_id AND e.direct = 1 WHERE g.harness_identifier IS NOT NULL"
        " AND NOT EXISTS (SELECT 1 FROM _dir_harness_members AS h"
        " WHERE h.identifier = g.harness_identifier AND h.label = e.label)"
    )
    conn.execute(
        "INSERT OR IGNORE INTO _dir_extra SELECT g.group_id, h.label"
        " FROM _dir_groups AS g JOIN _dir_harness_members AS h"
        " ON h.identifier = g.harness_identifier WHERE NOT EXISTS (SELECT 1"
        " FROM _dir_entra_members AS e WHERE e.group_id = g.group_id AND e.direct = 1"
        " AND e.label = h.label)"
    )


class _GroupFacts(NamedTuple):
    """What `_group_verdict` needs to know of one assigned group."""

    group_id: str
    name: str
    identifier: str
    claims: int
    """Assigned groups whose name derives `identifier`."""
    harness_identifier: str | None
    harness_name: str | None
    latest_status: str | None
    error_code: str | None
    reason: str | None
    native_managed: int | None
    """`externally_managed` of the Harness group holding `identifier`, None when none does."""
    same_name_identifier: str | None
    """The first native Harness group of the same name (but another identifier)."""
    bound: int
    missing: int
    extra: int
    nested: int


_GROUP_FACTS = f"""
SELECT g.group_id, g.name, g.identifier, g.claims, g.harness_identifier, g.harness_name,
    t.latest_status, t.error_code, t.reason,
    (SELECT n.externally_managed FROM harness_groups AS n
        WHERE n.identifier = g.identifier AND n.{_ACCOUNT_GROUP}),
    (SELECT s.identifier FROM harness_groups AS s WHERE s.name = g.name
        AND +s.scope = 'account' AND s.harness_managed = 0
        AND NOT s.externally_managed AND s.identifier != g.identifier
        ORDER BY s.identifier LIMIT 1),
    g.harness_identifier IN (SELECT principal_identifier FROM harness_role_assignments
        WHERE principal_type = 'USER_GROUP' AND disabled = 0),
    CASE WHEN g.recompute
        THEN (SELECT count(*) FROM _dir_missing AS m WHERE m.group_id = g.group_id)
        ELSE scimwatch_list_length(k.missing) END,
    CASE WHEN g.recompute
        THEN (SELECT count(*) FROM _dir_extra AS x WHERE x.group_id = g.group_id)
        ELSE scimwatch_list_length(k.extra) END,
    CASE WHEN g.recompute
        THEN (SELECT count(*) FROM _dir_entra_members AS e WHERE e.group_id = g.group_id
            AND e.direct = 0)
        ELSE scimwatch_list_length(k.nested) END
FROM _dir_groups AS g LEFT JOIN _dir_targets AS t ON t.source_id = g.group_id
    LEFT JOIN _dir_kept AS k ON k.group_id = g.group_id
"""
"""One `_GroupFacts` per assigned group. Harness groups in identifier order, as SQLite lists
them by the primary key (the first same-name group is the first in that order)."""


def _fill_verdicts(
    conn: sqlite3.Connection, candidates: Mapping[str, frozenset[str]], separator: str
) -> None:
    rows = [_GroupFacts(*row) for row in conn.execute(_GROUP_FACTS)]
    conn.executemany(
        "INSERT INTO _dir_verdicts (group_id, state, problems, detail, pending_error)"
        " VALUES (?, ?, ?, ?, ?)",
        (_group_verdict(facts, candidates[facts.group_id], separator) for facts in rows),
    )


def _group_verdict(
    facts: _GroupFacts, candidates: frozenset[str], separator: str
) -> tuple[Any, ...]:
    """(group id, state, problems, detail, pending error) of one assigned group."""
    problems: list[GroupState] = []
    details: list[str] = []
    name, identifier = facts.name, facts.identifier
    syncable = harness_ids.check_syncable(name)
    if not syncable.ok:
        problems.append("unsyncable")
        details.append(syncable.explanation)
    if identifier and facts.claims > 1:
        problems.append("collision")
        details.append(f"{facts.claims} Entra groups derive the identifier {identifier!r}")
    matched = facts.harness_identifier is not None
    native = facts.native_managed is not None
    if native and not facts.native_managed and facts.harness_identifier != identifier:
        problems.append("native_same_identifier")
        details.append(
            f"a native Harness group already has the identifier {identifier!r}: creating the "
            "SCIM group fails (409) or, on newer Harness, takes the native group over"
        )
    if facts.same_name_identifier is not None:
        problems.append("native_same_name")
        details.append(
            f"a native Harness group is also named {name!r} ({facts.same_name_identifier}): "
            "Harness keeps both, which confuses people assigning roles"
        )
    pending = ""
    if facts.latest_status == "failure":
        pending = f"{facts.error_code or 'failure'}: {facts.reason}"[:300]
    if not matched:
        problems.append("not_provisioned")
        details.append(
            "no Harness group found" + (f"; pending failure {pending}" if pending else "")
        )
    else:
        if facts.harness_identifier not in candidates:
            # Harness never changes an identifier: after a rename in Entra (and the name
            # update SCIM sends) the group keeps the identifier of its first name.
            problems.append("renamed")
            details.append(
                f"renamed in Entra: Harness keeps the identifier {facts.harness_identifier!r} "
                f"(from its old name) and shows {facts.harness_name!r}"
            )
        if not facts.bound:
            problems.append("no_role_binding")
            details.append(
                "no role is bound to this Harness group: its members get no permissions "
                "(roles are never managed from Entra)"
            )
        if facts.missing or facts.extra:
            problems.append("drift")
            details.append(
                f"{facts.missing} Entra member(s) missing in Harness, "
                f"{facts.extra} extra in Harness"
            )
    if facts.nested:
        problems.append("nested_members")
        details.append(f"{facts.nested} member(s) only through nested groups: never provisioned")
    return (
        facts.group_id,
        _worst(problems),
        separator.join(problems) or None,
        "; ".join(details) or "in sync",
        pending,
    )


def _worst(problems: list[GroupState]) -> GroupState:
    for state in _STATE_ORDER:
        if state in problems:
            return state
    return "ok"


def _names(table: str, owner: str, condition: str = "") -> str:
    """SQL joining the labels of one owner's rows of `table` in label order (or NULL).

    The separator is the statement's parameter `:separator`.
    """
    return f"(SELECT group_concat(label, :separator) FROM {table} WHERE {owner} {condition})"


_ORPHAN_DETAIL = (
    "a SCIM-managed Harness group that matches no Entra group assigned to the app "
    "(unassigned, deleted, or provisioned by another app)"
)


def _fill_mappings(conn: sqlite3.Connection, separator: str) -> None:
    """The assigned groups by name, then SCIM groups no assigned group matched (orphans)."""
    conn.execute(
        "WITH computed AS MATERIALIZED (SELECT g.group_id, g.position,"
        f" {_names('_dir_entra_members', 'group_id = g.group_id', 'AND direct = 1')} AS entra,"
        f" {_names('_dir_harness_members', 'identifier = g.harness_identifier')} AS harness,"
        f" {_names('_dir_missing', 'group_id = g.group_id')} AS missing,"
        f" {_names('_dir_extra', 'group_id = g.group_id')} AS extra,"
        f" {_names('_dir_entra_members', 'group_id = g.group_id', 'AND direct = 0')} AS nested"
        " FROM _dir_groups AS g WHERE g.recompute),"
        " lists AS (SELECT * FROM computed UNION ALL SELECT k.group_id, g.position, k.entra,"
        " k.harness, k.missing, k.extra, k.nested FROM _dir_kept AS k"
        " JOIN _dir_groups AS g ON g.group_id = k.group_id)"
        f" INSERT INTO {_COMPUTED_MAPPINGS} ({', '.join(_MAPPING_COLUMNS)},"
        " harness_members_as_entra)"
        " SELECT g.group_id, g.name, g.identifier, coalesce(g.harness_identifier, ''),"
        " coalesce(g.harness_name, ''), v.state, v.problems, v.detail, l.entra,"
        " CASE WHEN l.harness = l.entra THEN NULL ELSE l.harness END, l.missing, l.extra,"
        " l.nested, v.pending_error, coalesce(l.harness = l.entra, 0)"
        " FROM lists AS l JOIN _dir_groups AS g ON g.group_id = l.group_id"
        " JOIN _dir_verdicts AS v ON v.group_id = l.group_id ORDER BY l.position",
        {"separator": separator},
    )
    conn.execute(
        f"INSERT INTO {_COMPUTED_MAPPINGS} ({', '.join(_MAPPING_COLUMNS)},"
        " harness_members_as_entra)"
        " SELECT '', '', '', identifier, name, 'orphan', 'orphan', ?, NULL, NULL, NULL, NULL,"
        f" NULL, '', 0 FROM harness_groups WHERE {_ACCOUNT_GROUP} AND externally_managed"
        " AND identifier NOT IN (SELECT coalesce(harness_identifier, '') FROM _dir_groups)"
        " ORDER BY identifier",
        [_ORPHAN_DETAIL],
    )


def _fill_scope(conn: sqlite3.Connection) -> None:
    """Users Entra provisions for each app: for NextGen how, in first-seen order.

    `k1, k2, k3` order them as assignments list them: direct assignments first, then each
    assigned group's direct members, by assignment then membership (rowid) order. A NextGen
    group's direct members are those `_fill_members` found.
    """
    conn.execute(
        "INSERT INTO _dir_scope SELECT a.principal_id,"
        f" coalesce({_ENTRA_EMAIL}, ''), {_entra_label('a.principal_id')}, 'directly', 0,"
        " min(a.rowid), 0 FROM app_role_assignments AS a"
        " LEFT JOIN entra_users AS u ON u.id = a.principal_id WHERE a.app = 'nextgen'"
        " AND a.principal_type = 'User' AND a.app_role_id != ? GROUP BY a.principal_id",
        [DEFAULT_ACCESS_ROLE],
    )
    conn.execute(
        "INSERT INTO _dir_scope SELECT e.member_id, e.email, e.label, g.how, 1,"
        " g.first_assignment, e.membership FROM _dir_entra_members AS e"
        " JOIN _dir_groups AS g ON g.group_id = e.group_id WHERE e.direct = 1"
        " ORDER BY e.member_id ON CONFLICT (user_id) DO UPDATE SET how = excluded.how,"
        " k2 = excluded.k2, k3 = excluded.k3 WHERE k1 = 1 AND (excluded.k2, excluded.k3) < (k2, k3)"
    )
    conn.execute(
        "INSERT OR IGNORE INTO _dir_firstgen SELECT principal_id FROM app_role_assignments"
        " WHERE app = 'firstgen' AND principal_type = 'User' AND app_role_id != :default"
        " UNION ALL SELECT m.member_id FROM app_role_assignments AS a"
        " JOIN entra_memberships AS m ON m.group_id = a.principal_id"
        " WHERE a.app = 'firstgen' AND a.principal_type = 'Group' AND a.app_role_id != :default"
        " AND m.direct AND m.member_type = 'user'",
        {"default": DEFAULT_ACCESS_ROLE},
    )


_FIRSTGEN_UNASSIGNED = (
    "Assign the user (or a group they are a direct member of) to the FirstGen Harness app in "
    "Entra, or move Harness SAML sign-in to the NextGen app and retire the FirstGen one."
)
_UNMATCHED_HARNESS_USER = (
    "If they should have access, assign them in Entra; otherwise remove them in Harness "
    "(Entra no longer manages them)."
)
_DEFAULT_ACCESS = "Edit the assignment in Entra and pick the app's User role."
_DEFAULT_ACCESS_DETAIL = (
    "assigned to the {app} app with Default Access: Entra never provisions such assignments"
)
"""A Default Access conflict's detail; the stored conflicts have no app column, so readers
tell the app from it (`_conflict_from_row`)."""
_REDUNDANT_DEFAULT_ACCESS = (
    "Remove this Default Access assignment in Entra: a role already gives access (editing it "
    "to the User role would duplicate that)."
)
_REDUNDANT_DEFAULT_ACCESS_DETAIL = (
    "assigned to the {app} app with Default Access besides a role that Entra provisions: the "
    "Default Access assignment adds nothing"
)
"""A redundant Default Access conflict's detail (the app is told from it, as above)."""
_KIND_APPS: dict[str, AppName] = {
    "firstgen_unassigned": "firstgen",
    "unmatched_harness_user": "nextgen",
}
"""The Entra app each kind of conflict but Default Access is about."""
_DEFAULT_ACCESS_APPS: dict[str, AppName] = {
    detail.format(app=app): app
    for detail in (_DEFAULT_ACCESS_DETAIL, _REDUNDANT_DEFAULT_ACCESS_DETAIL)
    for app in get_args(AppName)
}


def _fill_conflicts(conn: sqlite3.Connection) -> None:
    """Users who cannot sign in, Harness users Entra does not know, Default Access assignments.

    In that order; users by email (else id), in scope order when equal; Harness users by
    email as Harness has it; assignments as listed.
    """
    _fill_scope(conn)
    insert = f"INSERT INTO {_COMPUTED_CONFLICTS} ({', '.join(_CONFLICT_COLUMNS)})"
    conn.execute(
        f"{insert} SELECT 'firstgen_unassigned', s.user_id, s.email,"
        " coalesce(u.display_name, ''), 'provisioned through the NextGen app (' || s.how"
        " || ') but not assigned to the FirstGen app, which Harness signs users in through:"
        " sign-in fails', ? FROM _dir_scope AS s LEFT JOIN entra_users AS u ON u.id = s.user_id"
        " WHERE EXISTS (SELECT 1 FROM app_role_assignments WHERE app = 'firstgen')"
        " AND s.user_id NOT IN (SELECT user_id FROM _dir_firstgen)"
        f" AND (s.email = '' OR s.email IN (SELECT {_lower('email')} FROM harness_users"
        "  WHERE email != ''))"
        " ORDER BY s.label, s.k1, s.k2, s.k3",
        [_FIRSTGEN_UNASSIGNED],
    )
    conn.execute(
        f"{insert} SELECT 'unmatched_harness_user', h.id, {_lower('h.email')}, h.name,"
        " 'a SCIM user in Harness whose email matches no user assigned to the NextGen app in"
        " Entra', ? FROM harness_users AS h WHERE h.in_scim AND h.email != ''"
        f" AND {_lower('h.email')} NOT IN (SELECT email FROM _dir_scope)"
        " ORDER BY h.email, h.rowid",
        [_UNMATCHED_HARNESS_USER],
    )
    # A principal Entra provisions for the app anyway (a role of its own, or a user through
    # a group): the Default Access assignment is redundant, to remove rather than edit.
    conn.execute(
        "WITH default_access AS (SELECT a.rowid AS k, a.*, ("
        " EXISTS (SELECT 1 FROM app_role_assignments AS r WHERE r.principal_id = a.principal_id"
        "  AND r.app = a.app AND r.app_role_id != :default)"
        " OR (a.principal_type = 'User' AND a.app = 'nextgen'"
        "  AND a.principal_id IN (SELECT user_id FROM _dir_scope))"
        " OR (a.principal_type = 'User' AND a.app = 'firstgen'"
        "  AND a.principal_id IN (SELECT user_id FROM _dir_firstgen))) AS redundant"
        " FROM app_role_assignments AS a WHERE a.app_role_id = :default)"
        f" {insert} SELECT 'default_access', a.principal_id, coalesce({_ENTRA_EMAIL}, ''),"
        " a.principal_name, replace(CASE WHEN a.redundant THEN :redundant_detail"
        " ELSE :detail END, '{app}', a.app),"
        " CASE WHEN a.redundant THEN :redundant ELSE :edit END"
        " FROM default_access AS a LEFT JOIN entra_users AS u ON u.id = a.principal_id"
        " ORDER BY a.k",
        {
            "default": DEFAULT_ACCESS_ROLE,
            "detail": _DEFAULT_ACCESS_DETAIL,
            "redundant_detail": _REDUNDANT_DEFAULT_ACCESS_DETAIL,
            "edit": _DEFAULT_ACCESS,
            "redundant": _REDUNDANT_DEFAULT_ACCESS,
        },
    )


def group_mappings(db: Database) -> list[GroupMapping]:
    """Every Entra group assigned to the NextGen app, then orphan Harness SCIM groups."""
    mappings, _, separator = _answer_tables(db)
    cursor = db.execute(
        f"SELECT {', '.join(_MAPPING_COLUMNS)}, harness_members_as_entra FROM {mappings}"
        " ORDER BY position"
    )
    return [_mapping_from_row(row, separator) for row in cursor]


def sso_conflicts(db: Database) -> list[SsoConflict]:
    """Users who cannot sign in, Harness users Entra does not know, Default Access assignments."""
    _, conflicts, _ = _answer_tables(db)
    return _stored_conflicts(db, conflicts, None)


def _mapping_from_row(row: Sequence[Any], separator: str) -> GroupMapping:
    values = dict(zip(_MAPPING_COLUMNS, row[:-1], strict=True))
    for name in _MAPPING_LISTS:
        text = values[name]
        values[name] = tuple(text.split(separator)) if text is not None else ()
    if row[-1]:
        values["harness_members"] = values["entra_members"]
    # Rows this module wrote from validated answers: building 1,000 mappings of 100 members
    # each without validating them again halves the groups screen's read.
    return construct_trusted(GroupMapping, values)


def _stored_conflicts(db: Database, table: str, principals: list[str] | None) -> list[SsoConflict]:
    """The SSO conflicts of `table` in order, all or only those of `principals`."""
    where = ""
    if principals is not None:
        where = f"WHERE principal_id IN ({', '.join('?' for _ in principals)})"
    cursor = db.execute(
        f"SELECT {', '.join(_CONFLICT_COLUMNS)} FROM {table} {where} ORDER BY position",
        principals or [],
    )
    return [_conflict_from_row(row) for row in cursor]


def _conflict_from_row(row: Sequence[Any]) -> SsoConflict:
    values = dict(zip(_CONFLICT_COLUMNS, row, strict=True))
    app = _KIND_APPS.get(values["kind"]) or _DEFAULT_ACCESS_APPS[values["detail"]]
    return SsoConflict(**values, app=app)


def _directory_problem_counts(db: Database) -> tuple[int, int]:
    """(group mappings not ok, SSO conflicts): counts for the overview."""
    mappings, conflicts, _ = _answer_tables(db)
    row = db.execute(
        f"SELECT (SELECT count(*) FROM {mappings} WHERE state != 'ok'),"
        f" (SELECT count(*) FROM {conflicts})"
    ).fetchone()
    return int(row[0]), int(row[1])


# --- User lookup -------------------------------------------------------------------------


USER_MATCHES = 20
"""The most users a lookup by part of a name lists; more says "type more"."""


def lookup_user(db: Database, query: str, now: datetime) -> UserLookup:
    """Both sides of one user, by UPN, email or object id (case-insensitive).

    A text that is none of those on either side is looked for in names, UPNs and emails
    (`find_users`): one user found is looked up; several are listed to pick from.
    """
    needle = query.strip()
    answer = _lookup_exact(db, query, needle, now)
    if answer.entra_user is not None or answer.harness_user is not None or not needle:
        return answer
    if len(needle) < _TRIGRAM:
        return answer.model_copy(
            update={"verdict": f"{answer.verdict} Names are searched from three characters."}
        )
    matches = find_users(db, needle, USER_MATCHES + 1)
    if len(matches) == 1:
        return _lookup_exact(db, query, matches[0].key, now)
    if not matches:
        return answer
    shown = matches[:USER_MATCHES]
    verdict = (
        f"{len(matches)} users match: pick one below."
        if len(matches) <= USER_MATCHES
        else f"More than {USER_MATCHES} users match: type more of the name, or pick one below."
    )
    return answer.model_copy(update={"matches": shown, "verdict": verdict})


def find_users(db: Database, text: str, limit: int) -> tuple[UserMatch, ...]:
    """Up to `limit` users whose name, UPN or email holds `text`, by name; one per person.

    An Entra user and the Harness user with its email are one match. The text (three
    characters or more) is looked up in the trigram indexes of m017, and each row found is
    checked with LIKE.
    """
    entra = _users_holding(
        db, "entra_users", ("id", "user_principal_name", "mail", "display_name"), text, limit
    )
    harness = _users_holding(db, "harness_users", ("id", "name", "email"), text, limit)
    matches: dict[str, UserMatch] = {}
    for user_id, upn, mail, name in entra:
        email = mail or upn
        matches[email.lower() or user_id] = UserMatch(name=name, email=email, entra_id=user_id)
    for user_id, name, email in harness:
        key = email.lower() or user_id
        found = matches.get(key)
        matches[key] = (
            found.model_copy(update={"harness_id": user_id})
            if found
            else UserMatch(name=name, email=email, harness_id=user_id)
        )
    ordered = sorted(matches.values(), key=lambda match: (match.name.lower(), match.email))
    return tuple(ordered[:limit])


def _users_holding(
    db: Database, table: str, selected: tuple[str, ...], text: str, limit: int
) -> list[tuple[Any, ...]]:
    """`selected` of up to `limit` rows of a user table whose searched columns hold `text`."""
    columns = ", ".join(f"{table}.{column}" for column in selected)
    held = " OR ".join(
        f"{table}.{column} LIKE :like ESCAPE '\\'" for column in USER_SEARCH_COLUMNS[table]
    )
    sql = (
        f"SELECT {columns} FROM {table}_text JOIN {table} ON {table}.rowid = {table}_text.rowid"
        f" WHERE {table}_text MATCH :match AND ({held}) LIMIT :limit"
    )
    params = {"match": _trigram_query(text), "like": _like(text), "limit": limit}
    return list(db.execute(sql, params))


def _lookup_exact(db: Database, query: str, needle: str, now: datetime) -> UserLookup:
    """`lookup_user` of a text that is the user's id, UPN or email."""
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
    assignments = _assignments_of(db, entra.id) if entra else []
    nested_groups = _nested_only_groups(db, entra.id) if entra else []
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
    facts = _UserFacts(
        entra=entra,
        harness=harness,
        assignments=assignments,
        nested_in_nextgen=_nested_in_nextgen_groups(db, entra.id) if entra else [],
        pending=pending,
        conflicts=conflicts,
        firstgen_present=_firstgen_present(db),
        last_export=_last_nextgen_export(db, entra.id) if entra else None,
    )
    return UserLookup(
        query=query,
        entra_user=entra,
        assignments=tuple(assignments),
        nested_only_groups=tuple(sorted(nested_groups)),
        latest_events=tuple(events),
        event_apps={
            row[0]: row[1]
            for row in db.execute(
                "SELECT job_id, app FROM sync_jobs"
                " WHERE job_id IN (SELECT value FROM json_each(?))",
                [json.dumps(sorted({event.job_id for event in events}))],
            )
        },
        pending=pending,
        harness_user=harness,
        harness_groups=tuple(harness_groups),
        sso_conflicts=tuple(conflicts),
        verdict=_verdict(facts),
    )


def _assignments_of(db: Database, user_id: str) -> list[UserAssignment]:
    """Every way one user is assigned, NextGen first; Default Access ones included.

    Per app as `_fill_scope` orders them: direct assignments first, then the assigned groups
    the user is a direct member of, by assignment (rowid) order; so the first without Default
    Access is how the user is in scope.
    """
    rows = db.execute(
        "SELECT a.app, '', a.app_role_id = :default, a.app = 'firstgen', 0, a.rowid"
        " FROM app_role_assignments AS a"
        " WHERE a.principal_id = :user AND a.principal_type = 'User'"
        " UNION ALL SELECT a.app, coalesce(nullif(a.principal_name, ''), a.principal_id),"
        " a.app_role_id = :default, a.app = 'firstgen', 1, a.rowid"
        " FROM entra_memberships AS m JOIN app_role_assignments AS a"
        " ON a.principal_id = m.group_id WHERE m.member_id = :user AND m.direct"
        " AND m.member_type = 'user' AND a.principal_type = 'Group' ORDER BY 4, 5, 6",
        {"user": user_id, "default": DEFAULT_ACCESS_ROLE},
    )
    found = dict.fromkeys((app, group, bool(default)) for app, group, default, *_ in rows)
    with_role = {app for app, _, default in found if not default}
    return [
        UserAssignment(
            app=app, group=group, default_access=default, redundant=default and app in with_role
        )
        for app, group, default in found
    ]


def _in_scope(assignments: Iterable[UserAssignment], app: AppName) -> UserAssignment | None:
    """How Entra provisions the user for `app` (as `_fill_scope` has it), or None."""
    return next((a for a in assignments if a.app == app and not a.default_access), None)


def _default_access(assignments: Iterable[UserAssignment], app: AppName) -> UserAssignment | None:
    """The user's first Default Access assignment to `app`, or None."""
    return next((a for a in assignments if a.app == app and a.default_access), None)


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


def _nested_in_nextgen_groups(db: Database, user_id: str) -> list[str]:
    """The groups assigned to the NextGen app with a role that hold the user only nested."""
    return [
        str(row[0])
        for row in db.execute(
            "SELECT coalesce(nullif(g.display_name, ''), m.group_id) FROM entra_memberships AS m"
            " LEFT JOIN entra_groups AS g ON g.id = m.group_id"
            " WHERE m.member_id = ? AND NOT m.direct AND m.group_id IN (SELECT principal_id"
            " FROM app_role_assignments WHERE app = 'nextgen' AND principal_type = 'Group'"
            " AND app_role_id != ?) ORDER BY 1",
            [user_id, DEFAULT_ACCESS_ROLE],
        )
    ]


def _firstgen_present(db: Database) -> bool:
    """Whether a FirstGen app is assigned at all (as `_fill_conflicts` tells it)."""
    return bool(
        db.execute("SELECT 1 FROM app_role_assignments WHERE app = 'firstgen' LIMIT 1").fetchone()
    )


def _last_nextgen_export(db: Database, user_id: str) -> tuple[str, datetime] | None:
    """(action, when) if the NextGen job's latest event for the user created or updated it."""
    row = db.execute(
        "SELECT latest_action, latest_status, latest_at FROM object_state WHERE source_id = ?"
        " AND job_id IN (SELECT job_id FROM sync_jobs WHERE app = 'nextgen')"
        " ORDER BY latest_at DESC LIMIT 1",
        [user_id],
    ).fetchone()
    if row is None or row[1] != "success" or row[0] not in ("create", "update"):
        return None
    when = parse_time(row[2])
    return (str(row[0]), when) if when is not None else None


def _conflicts_of(db: Database, principals: list[str]) -> list[SsoConflict]:
    """The SSO conflicts about these Entra or Harness ids, in `sso_conflicts` order."""
    if not principals:
        return []
    _, conflicts, _ = _answer_tables(db)
    return _stored_conflicts(db, conflicts, principals)


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


class _UserFacts(NamedTuple):
    """What `_verdict` needs to know of one looked-up user."""

    entra: EntraUser | None
    harness: HarnessUser | None
    assignments: list[UserAssignment]
    nested_in_nextgen: list[str]
    """Groups assigned to NextGen with a role that hold the user only through nesting."""
    pending: PendingRetry | None
    conflicts: list[SsoConflict]
    firstgen_present: bool
    last_export: tuple[str, datetime] | None
    """The NextGen job's latest create or update of the user that succeeded, if that is its
    latest event for the user."""


def _verdict(facts: _UserFacts) -> str:
    """One line: what is wrong with the user and what to do, or that all is well."""
    entra = facts.entra
    if entra is None:
        if facts.harness is None:
            return "No such user in the cache on either side."
        return (
            "In Harness but unknown to Entra's assignments: "
            "remove them in Harness or assign them in Entra."
        )
    nextgen = _in_scope(facts.assignments, "nextgen")
    if nextgen is None:
        return _unprovisioned_verdict(facts)
    if entra.account_enabled is False:
        return (
            "Account disabled in Entra: Entra does not provision a disabled user, and disabling "
            "one it provisioned removes them from the Harness account. Enable the account in "
            "Entra if they should have access."
        )
    if facts.pending is not None:
        pending = facts.pending
        return f"Provisioning fails ({pending.error_code or 'error'}): {pending.hint.what_to_do}"
    if facts.harness is None:
        return _not_in_harness_verdict(facts, nextgen)
    if facts.conflicts:
        return _conflict_verdict(facts)
    return "All good: assigned, provisioned, and able to sign in."


def _unprovisioned_verdict(facts: _UserFacts) -> str:
    """For a user Entra does not provision for NextGen: why, and what to do."""
    default = _default_access(facts.assignments, "nextgen")
    if default is not None:
        whose = "the group's assignment" if default.group else "the assignment"
        verdict = (
            f"Assigned to the NextGen Harness app {default.how} but with Default Access, which "
            f"Entra never provisions: edit {whose} in Entra and pick the app's User role."
        )
        firstgen = _default_access(facts.assignments, "firstgen")
        if firstgen is not None and _in_scope(facts.assignments, "firstgen") is None:
            verdict += (
                f" Their FirstGen assignment ({firstgen.how}), which Harness signs users in "
                "through, has Default Access too: edit it the same way."
            )
        return verdict
    if facts.nested_in_nextgen:
        return (
            f"Only in nested group(s) {', '.join(facts.nested_in_nextgen)}: Entra never "
            "provisions nested members. Assign the user or a group they are a direct member of."
        )
    return (
        "Not assigned to the NextGen Harness app: assign the user or one of their groups in Entra."
    )


def _not_in_harness_verdict(facts: _UserFacts, nextgen: UserAssignment) -> str:
    """For a user Entra provisions for NextGen whom Harness does not have (yet)."""
    if facts.last_export is not None:
        action, when = facts.last_export
        verdict = (
            f"Entra provisioned the user ({action} succeeded {_clock(when)}) but Harness, as "
            "last read, has no user with their email: probably removed in Harness, which Entra "
            "does not notice. Provision the user on demand in Entra, or restart the job."
        )
    else:
        verdict = (
            f"Assigned ({nextgen.how}), not in Harness yet: it should arrive with the next cycle."
        )
    return verdict + _firstgen_sign_in(facts, " Once there they cannot sign in: ")


def _firstgen_sign_in(facts: _UserFacts, lead: str) -> str:
    """What keeps a NextGen user from signing in through the FirstGen app, or ""."""
    if not facts.firstgen_present or _in_scope(facts.assignments, "firstgen") is not None:
        return ""
    default = _default_access(facts.assignments, "firstgen")
    if default is not None:
        return (
            f"{lead}their FirstGen assignment ({default.how}), which Harness signs users in "
            "through, has Default Access: edit it in Entra and pick the app's User role."
        )
    return (
        f"{lead}also assign them (or a group they are a direct member of) to the FirstGen "
        "Harness app, which Harness signs users in through."
    )


def _conflict_verdict(facts: _UserFacts) -> str:
    """For a provisioned user with SSO conflicts: the first one's fix, worded for them."""
    first = facts.conflicts[0]
    if first.kind == "firstgen_unassigned" and _default_access(facts.assignments, "firstgen"):
        return "Cannot sign in:" + _firstgen_sign_in(facts, " ")
    if first.kind == "default_access" and first.what_to_do == _REDUNDANT_DEFAULT_ACCESS:
        return f"Able to sign in; to tidy up: {first.what_to_do}"
    return first.what_to_do


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
