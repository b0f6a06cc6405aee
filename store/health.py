"""The health model: the answers an admin on call needs, computed from the cache only.

Every screen, `check`, the metrics and the export read these, so they all see the same truth.
Each function takes an open `sqlite_utils.Database` (from `Cache.reading()`) and, where time
matters, an explicit `now` so answers are reproducible.

The overview's reads (jobs, cycles, counts, coverage gaps) live in `store.overview`, which the
TUI's first frame uses before pydantic is imported; they are named here too.
"""

from __future__ import annotations

import functools
import heapq
import itertools
import json
from collections.abc import Generator, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Literal, NamedTuple

from sqlite_utils import Database

from store import directory, playbook
from store.derived import spaced
from store.models import (
    AppName,
    EntraUser,
    HarnessUser,
    Hint,
    PendingRetry,
    ProvisioningEvent,
    SsoConflict,
    UserAssignment,
    UserLookup,
    UserMatch,
    construct_trusted,
)
from store.overview import CoverageGap as CoverageGap
from store.overview import JobHealth, parse_time, utc_minute
from store.overview import coverage_gaps as coverage_gaps
from store.overview import job_health as job_health
from store.overview import overview as overview
from store.overview import pending_counts as pending_counts
from store.overview import recent_cycles as recent_cycles
from store.schema import USER_SEARCH_COLUMNS


def _rows(db: Database, sql: str, params: Iterable[Any] = ()) -> list[dict[str, Any]]:
    # `db.query` yields the same dicts through a generator: a third slower over 100k rows.
    cursor = db.execute(sql, list(params))
    columns = [description[0] for description in cursor.description]
    return [dict(zip(columns, row, strict=True)) for row in cursor]


# --- Jobs and cycles ---------------------------------------------------------------------


def job_apps(db: Database) -> dict[str, str]:
    """The app ("nextgen", "firstgen") each provisioning job in the cache syncs, by job id."""
    return dict(db.execute("SELECT job_id, app FROM sync_jobs").fetchall())


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
    conflicts = directory.sso_conflicts_of(
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
            job: app for job, app in job_apps(db).items() if any(e.job_id == job for e in events)
        },
        pending=pending,
        harness_user=harness,
        harness_groups=tuple(harness_groups),
        sso_conflicts=tuple(conflicts),
        verdict=_verdict(facts),
    )


def _assignments_of(db: Database, user_id: str) -> list[UserAssignment]:
    """Every way one user is assigned, NextGen first; Default Access ones included.

    Per app as `store.directory._fill_scope` orders them: direct assignments first, then the
    assigned groups the user is a direct member of, by assignment (rowid) order; so the first
    without Default Access is how the user is in scope.
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
        {"user": user_id, "default": directory.DEFAULT_ACCESS_ROLE},
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
    """How Entra provisions the user for `app` (as `store.directory` has it), or None."""
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
            [user_id, directory.DEFAULT_ACCESS_ROLE],
        )
    ]


def _firstgen_present(db: Database) -> bool:
    """Whether a FirstGen app is assigned at all (as `store.directory._fill_conflicts` tells it)."""
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
            f"Entra provisioned the user ({action} succeeded {utc_minute(when)}) but Harness, as "
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
    if first.kind == "default_access" and first.what_to_do == directory.REDUNDANT_DEFAULT_ACCESS:
        return f"Able to sign in; to tidy up: {first.what_to_do}"
    return first.what_to_do
