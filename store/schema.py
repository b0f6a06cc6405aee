"""Every schema change the cache has ever had, as sqlite-utils migrations.

Never edit an applied migration: add a new one. Times are ISO 8601 UTC text (`...Z`), which
sorts correctly as text; booleans are 0/1.
"""

from __future__ import annotations

from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

migrations = Migrations("scimwatch")

_INITIAL_TABLES = """
CREATE TABLE provisioning_events (
    id TEXT PRIMARY KEY,
    activity_at TEXT NOT NULL,
    job_id TEXT NOT NULL,
    cycle_id TEXT NOT NULL,
    change_id TEXT NOT NULL DEFAULT '',
    service_principal_id TEXT NOT NULL DEFAULT '',
    action TEXT NOT NULL,
    status TEXT NOT NULL,
    source_id TEXT NOT NULL DEFAULT '',
    source_type TEXT NOT NULL DEFAULT '',
    source_name TEXT NOT NULL DEFAULT '',
    target_id TEXT NOT NULL DEFAULT '',
    target_name TEXT NOT NULL DEFAULT '',
    error_code TEXT NOT NULL DEFAULT '',
    error_category TEXT NOT NULL DEFAULT '',
    reason TEXT NOT NULL DEFAULT '',
    recommended_action TEXT NOT NULL DEFAULT '',
    duration_ms INTEGER,
    initiated_by TEXT NOT NULL DEFAULT '',
    detail BLOB
);
CREATE INDEX provisioning_events_activity_at ON provisioning_events (activity_at);
CREATE INDEX provisioning_events_source ON provisioning_events (source_id, activity_at);
CREATE INDEX provisioning_events_cycle ON provisioning_events (job_id, cycle_id);
CREATE INDEX provisioning_events_status ON provisioning_events (status, activity_at);

CREATE TABLE sync_jobs (
    service_principal_id TEXT NOT NULL,
    job_id TEXT NOT NULL,
    app TEXT NOT NULL,
    template_id TEXT NOT NULL DEFAULT '',
    schedule_state TEXT NOT NULL DEFAULT '',
    interval_seconds INTEGER,
    status_code TEXT NOT NULL DEFAULT '',
    successive_failures INTEGER NOT NULL DEFAULT 0,
    escrows_pruned INTEGER NOT NULL DEFAULT 0,
    last_began TEXT,
    last_ended TEXT,
    last_state TEXT NOT NULL DEFAULT '',
    last_activity_id TEXT NOT NULL DEFAULT '',
    last_error_code TEXT NOT NULL DEFAULT '',
    last_error_message TEXT NOT NULL DEFAULT '',
    last_escrowed INTEGER,
    last_exported INTEGER,
    last_success_began TEXT,
    last_success_ended TEXT,
    steady_state_last TEXT,
    quarantine_reason TEXT NOT NULL DEFAULT '',
    quarantine_series_began TEXT,
    quarantine_current_began TEXT,
    quarantine_next_attempt TEXT,
    quarantine_series_count INTEGER,
    quarantine_error TEXT NOT NULL DEFAULT '',
    troubleshooting_url TEXT NOT NULL DEFAULT '',
    observed_at TEXT NOT NULL,
    PRIMARY KEY (service_principal_id, job_id)
);

CREATE TABLE job_executions (
    job_id TEXT NOT NULL,
    began TEXT NOT NULL,
    ended TEXT,
    state TEXT NOT NULL DEFAULT '',
    activity_id TEXT NOT NULL DEFAULT '',
    escrowed INTEGER,
    exported INTEGER,
    imported INTEGER,
    error_code TEXT NOT NULL DEFAULT '',
    error_message TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (job_id, began)
);

CREATE TABLE app_role_assignments (
    id TEXT PRIMARY KEY,
    app TEXT NOT NULL,
    resource_id TEXT NOT NULL,
    principal_id TEXT NOT NULL,
    principal_type TEXT NOT NULL,
    principal_name TEXT NOT NULL DEFAULT '',
    app_role_id TEXT NOT NULL,
    created_at TEXT
);
CREATE INDEX app_role_assignments_principal ON app_role_assignments (principal_id);

CREATE TABLE entra_users (
    id TEXT PRIMARY KEY,
    user_principal_name TEXT NOT NULL DEFAULT '',
    mail TEXT NOT NULL DEFAULT '',
    display_name TEXT NOT NULL DEFAULT '',
    account_enabled INTEGER
);
CREATE INDEX entra_users_upn ON entra_users (user_principal_name COLLATE NOCASE);
CREATE INDEX entra_users_mail ON entra_users (mail COLLATE NOCASE);

CREATE TABLE entra_groups (
    id TEXT PRIMARY KEY,
    display_name TEXT NOT NULL DEFAULT '',
    security_enabled INTEGER
);

CREATE TABLE entra_memberships (
    group_id TEXT NOT NULL,
    member_id TEXT NOT NULL,
    member_type TEXT NOT NULL DEFAULT 'user',
    direct INTEGER NOT NULL,
    PRIMARY KEY (group_id, member_id)
);
CREATE INDEX entra_memberships_member ON entra_memberships (member_id);

CREATE TABLE harness_users (
    id TEXT PRIMARY KEY,
    email TEXT NOT NULL DEFAULT '',
    name TEXT NOT NULL DEFAULT '',
    external_id TEXT NOT NULL DEFAULT '',
    active INTEGER,
    in_scim INTEGER NOT NULL DEFAULT 0,
    in_ng INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX harness_users_email ON harness_users (email COLLATE NOCASE);

CREATE TABLE harness_groups (
    scope TEXT NOT NULL DEFAULT 'account',
    identifier TEXT NOT NULL,
    name TEXT NOT NULL DEFAULT '',
    externally_managed INTEGER NOT NULL DEFAULT 0,
    sso_linked INTEGER NOT NULL DEFAULT 0,
    harness_managed INTEGER NOT NULL DEFAULT 0,
    in_scim INTEGER NOT NULL DEFAULT 0,
    in_ng INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (scope, identifier)
);
CREATE INDEX harness_groups_name ON harness_groups (name);

CREATE TABLE harness_group_members (
    scope TEXT NOT NULL DEFAULT 'account',
    group_identifier TEXT NOT NULL,
    user_id TEXT NOT NULL,
    PRIMARY KEY (scope, group_identifier, user_id)
);
CREATE INDEX harness_group_members_user ON harness_group_members (user_id);

CREATE TABLE harness_sso_settings (
    id TEXT PRIMARY KEY,
    sso_type TEXT NOT NULL DEFAULT '',
    display_name TEXT NOT NULL DEFAULT '',
    origin TEXT NOT NULL DEFAULT '',
    client_id TEXT NOT NULL DEFAULT '',
    authentication_enabled INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE harness_role_assignments (
    identifier TEXT NOT NULL,
    scope TEXT NOT NULL DEFAULT 'account',
    principal_identifier TEXT NOT NULL,
    principal_scope TEXT NOT NULL DEFAULT 'account',
    principal_type TEXT NOT NULL DEFAULT 'USER_GROUP',
    role_identifier TEXT NOT NULL DEFAULT '',
    resource_group_identifier TEXT NOT NULL DEFAULT '',
    disabled INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (identifier, scope)
);
CREATE INDEX harness_role_assignments_principal
    ON harness_role_assignments (principal_scope, principal_identifier);

CREATE TABLE poll_runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    source TEXT NOT NULL,
    started_at TEXT NOT NULL,
    finished_at TEXT NOT NULL,
    ok INTEGER NOT NULL,
    error TEXT NOT NULL DEFAULT '',
    error_kind TEXT NOT NULL DEFAULT '',
    records INTEGER NOT NULL DEFAULT 0,
    skipped INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX poll_runs_source ON poll_runs (source, id);

CREATE TABLE watermarks (
    source TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    complete INTEGER NOT NULL DEFAULT 1,
    updated_at TEXT NOT NULL
);
"""


@migrations()
def m001_initial_tables(db: Database) -> None:
    """The cache's first schema: every source's table, poll runs and watermarks."""
    for statement in _INITIAL_TABLES.split(";"):
        if statement.strip():
            db.execute(statement)


_DERIVED_STATE_TABLES = """
CREATE TABLE cycles (
    job_id TEXT NOT NULL,
    cycle_id TEXT NOT NULL,
    started_at TEXT NOT NULL,
    ended_at TEXT NOT NULL,
    events INTEGER NOT NULL DEFAULT 0,
    succeeded INTEGER NOT NULL DEFAULT 0,
    failed INTEGER NOT NULL DEFAULT 0,
    skipped INTEGER NOT NULL DEFAULT 0,
    warnings INTEGER NOT NULL DEFAULT 0,
    creates INTEGER NOT NULL DEFAULT 0,
    updates INTEGER NOT NULL DEFAULT 0,
    deletes INTEGER NOT NULL DEFAULT 0,
    disables INTEGER NOT NULL DEFAULT 0,
    staged_deletes INTEGER NOT NULL DEFAULT 0,
    other_actions INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (job_id, cycle_id)
);
CREATE INDEX cycles_ended_at ON cycles (ended_at);

CREATE TABLE object_state (
    job_id TEXT NOT NULL,
    source_id TEXT NOT NULL,
    source_type TEXT NOT NULL DEFAULT '',
    source_name TEXT NOT NULL DEFAULT '',
    target_id TEXT NOT NULL DEFAULT '',
    latest_event_id TEXT NOT NULL,
    latest_at TEXT NOT NULL,
    latest_status TEXT NOT NULL,
    latest_action TEXT NOT NULL,
    failed_cycles INTEGER NOT NULL DEFAULT 0,
    first_failure_at TEXT,
    error_code TEXT NOT NULL DEFAULT '',
    error_category TEXT NOT NULL DEFAULT '',
    reason TEXT NOT NULL DEFAULT '',
    recommended_action TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (job_id, source_id)
);
CREATE INDEX object_state_status ON object_state (latest_status, latest_at);
"""


@migrations()
def m002_cycles_and_object_state(db: Database) -> None:
    """Per-cycle counts and each object's latest state, kept on ingest.

    Computing "pending retry" from the events table costs ~310 ms at 1M rows; from a small
    state table 2-3 ms (reference/perf-baselines.md, q3c).
    """
    for statement in _DERIVED_STATE_TABLES.split(";"):
        if statement.strip():
            db.execute(statement)


@migrations()
def m003_alert_state(db: Database) -> None:
    """The conditions already alerted on, so one state change sends one alert."""
    db.execute(
        "CREATE TABLE alert_state (key TEXT PRIMARY KEY, message TEXT NOT NULL,"
        " severity TEXT NOT NULL, since TEXT NOT NULL)"
    )


@migrations()
def m004_leaner_event_indexes_and_cycle_of_latest(db: Database) -> None:
    """Index events by cycle id alone, and keep each object's latest cycle.

    Cycle ids are unique across jobs, so the job id in the index only cost 74 bytes per event;
    the latest cycle lets a failure streak be folded in incrementally on ingest.
    """
    db.execute("DROP INDEX IF EXISTS provisioning_events_cycle")
    db.execute("CREATE INDEX provisioning_events_cycle_id ON provisioning_events (cycle_id)")
    db.execute("ALTER TABLE object_state ADD COLUMN latest_cycle_id TEXT NOT NULL DEFAULT ''")
    # Only failing objects are ever looked up by status: a partial index stays small and
    # costs nothing when a success is folded in.
    db.execute("DROP INDEX IF EXISTS object_state_status")
    db.execute(
        "CREATE INDEX object_state_failing ON object_state (failed_cycles, first_failure_at)"
        " WHERE latest_status = 'failure'"
    )
    from store.derived import rebuild_derived_state

    rebuild_derived_state(db.conn)


@migrations()
def m005_coverage_gaps(db: Database) -> None:
    """Spans of a log no poll could fetch: the collector was down past the API's retention.

    The provisioning collector adds one when its watermark is older than Entra keeps events
    (reliability.md 1.6 point 6), so the history shown is never silently partial.
    """
    db.execute(
        "CREATE TABLE coverage_gaps (source TEXT NOT NULL, gap_from TEXT NOT NULL,"
        " gap_to TEXT NOT NULL, detected_at TEXT NOT NULL, PRIMARY KEY (source, gap_from))"
    )


_DIRECTORY_ANSWER_TABLES = """
CREATE TABLE directory_answers_state (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    fresh INTEGER NOT NULL
);
INSERT INTO directory_answers_state (id, fresh) VALUES (1, 0);

CREATE TABLE group_mappings (
    position INTEGER PRIMARY KEY,
    entra_group_id TEXT NOT NULL,
    entra_name TEXT NOT NULL,
    predicted_identifier TEXT NOT NULL,
    harness_identifier TEXT NOT NULL,
    harness_name TEXT NOT NULL,
    state TEXT NOT NULL,
    problems TEXT,
    detail TEXT NOT NULL,
    entra_members TEXT,
    harness_members TEXT,
    missing_in_harness TEXT,
    extra_in_harness TEXT,
    nested_only TEXT,
    pending_error TEXT NOT NULL
);

CREATE TABLE sso_conflicts (
    position INTEGER PRIMARY KEY,
    kind TEXT NOT NULL,
    principal_id TEXT NOT NULL,
    email TEXT NOT NULL,
    display_name TEXT NOT NULL,
    detail TEXT NOT NULL,
    what_to_do TEXT NOT NULL
);
CREATE INDEX sso_conflicts_principal ON sso_conflicts (principal_id);
"""

_DIRECTORY_ANSWER_INPUTS = {
    "app_role_assignments": "id, app, resource_id, principal_id, principal_type, principal_name,"
    " app_role_id, created_at",
    "entra_users": "id, user_principal_name, mail, display_name, account_enabled",
    "entra_groups": "id, display_name, security_enabled",
    "entra_memberships": "group_id, member_id, member_type, direct",
    "harness_users": "id, email, name, external_id, active, in_scim, in_ng",
    "harness_groups": "scope, identifier, name, externally_managed, sso_linked,"
    " harness_managed, in_scim, in_ng",
    "harness_group_members": "scope, group_identifier, user_id",
    "harness_role_assignments": "identifier, scope, principal_identifier, principal_scope,"
    " principal_type, role_identifier, resource_group_identifier, disabled",
    "sync_jobs": "job_id, app",
}
"""The tables (and their columns) group mappings and SSO conflicts are computed from."""

_STALE = "UPDATE directory_answers_state SET fresh = 0 WHERE fresh = 1"


def _prefixed(prefix: str, columns: str) -> str:
    return ", ".join(f"{prefix}.{column.strip()}" for column in columns.split(","))


@migrations()
def m006_directory_answers(db: Database) -> None:
    """Group mappings and SSO conflicts kept on ingest, and triggers marking them stale.

    Computing them loads the whole directory (seconds at 100,000 users); `Cache.save_batch`
    recomputes them when any input changed, and readers compute them live while they are stale.
    An upsert that changes nothing leaves them fresh, so an unchanged directory poll costs
    nothing more.
    """
    for statement in _DIRECTORY_ANSWER_TABLES.split(";"):
        if statement.strip():
            db.execute(statement)
    for table, columns in _DIRECTORY_ANSWER_INPUTS.items():
        db.execute(
            f"CREATE TRIGGER {table}_stale_insert AFTER INSERT ON {table} BEGIN {_STALE}; END"
        )
        db.execute(
            f"CREATE TRIGGER {table}_stale_delete AFTER DELETE ON {table} BEGIN {_STALE}; END"
        )
        db.execute(
            f"CREATE TRIGGER {table}_stale_update AFTER UPDATE ON {table}"
            f" WHEN ({_prefixed('OLD', columns)}) IS NOT ({_prefixed('NEW', columns)})"
            f" BEGIN {_STALE}; END"
        )
    # Only groups' provisioning state feeds the mappings (their SCIM ids and pending failures).
    group_columns = "job_id, source_id, source_type, target_id, latest_status, error_code, reason"
    db.execute(
        "CREATE TRIGGER object_state_stale_insert AFTER INSERT ON object_state"
        f" WHEN NEW.source_type = 'Group' BEGIN {_STALE}; END"
    )
    db.execute(
        "CREATE TRIGGER object_state_stale_delete AFTER DELETE ON object_state"
        f" WHEN OLD.source_type = 'Group' BEGIN {_STALE}; END"
    )
    db.execute(
        "CREATE TRIGGER object_state_stale_update AFTER UPDATE ON object_state"
        " WHEN (OLD.source_type = 'Group' OR NEW.source_type = 'Group')"
        f" AND ({_prefixed('OLD', group_columns)}) IS NOT ({_prefixed('NEW', group_columns)})"
        f" BEGIN {_STALE}; END"
    )


@migrations()
def m007_group_mappings_share_member_lists(db: Database) -> None:
    """Mark stored mappings whose Harness members equal their Entra members (the usual case).

    Their Harness list is then not stored twice, which halves what reading the groups screen
    fetches and splits at 100,000 users.
    """
    db.execute(
        "ALTER TABLE group_mappings ADD COLUMN harness_members_as_entra INTEGER NOT NULL DEFAULT 0"
    )


@migrations()
def m008_pending_retries_in_order(db: Database) -> None:
    """Index failing objects in the order the retries list shows them (escalated, then oldest).

    `pending_retries` then reads its first rows off the index instead of sorting every failing
    object (24 -> 10 ms for 1,000 of 3,000 at 100,000 objects); only failing rows are indexed.
    """
    db.execute(
        "CREATE INDEX object_state_pending"
        " ON object_state (failed_cycles >= 2 DESC, first_failure_at)"
        " WHERE latest_status = 'failure'"
    )


_PENDING_COLUMNS = (
    "failed_cycles, latest_at, job_id, source_id, source_type, source_name, target_id,"
    " latest_action, error_code, error_category, reason, recommended_action"
)
"""What `store.health.pending_retries` reads of a failing object, after its ordering key."""


@migrations()
def m009_pending_retries_covered(db: Database) -> None:
    """Carry the retries list's columns in its index: the read never visits object_state.

    Only failing objects are indexed (a few percent), so the copy is small; looking each of
    1,000 rows up in a 100,000-object table was most of the read.
    """
    db.execute("DROP INDEX IF EXISTS object_state_pending")
    db.execute(
        "CREATE INDEX object_state_pending"
        # latest_status too: SQLite only counts an index as covering when it holds every
        # column the query names, the partial index's own condition included.
        f" ON object_state (failed_cycles >= 2 DESC, first_failure_at, {_PENDING_COLUMNS},"
        " latest_status)"
        " WHERE latest_status = 'failure'"
    )


_PENDING_COLUMNS_WITH_ANSWERS = f"{_PENDING_COLUMNS}, retry_at, playbook_key, rules_version"
"""What `store.health.pending_retries` reads of a failing object since m010."""


@migrations()
def m010_failing_objects_keep_their_answers(db: Database) -> None:
    """Keep each failing object's retry time and playbook key, computed once on ingest.

    Parsing them from the reason text was most of reading 1,000 pending retries (~18 us a row).
    `rules_version` names the playbook rules they were computed by; readers compute again the
    answers of older rules. Failing objects are a few percent, so the backfill is quick.
    """
    for column, kind in (
        ("retry_at", "TEXT"),
        ("playbook_key", "TEXT"),
        ("rules_version", "INTEGER"),
    ):
        db.execute(f"ALTER TABLE object_state ADD COLUMN {column} {kind}")
    from store.derived import store_failure_answers

    store_failure_answers(db.conn)
    db.execute("DROP INDEX IF EXISTS object_state_pending")
    db.execute(
        "CREATE INDEX object_state_pending"
        f" ON object_state (failed_cycles >= 2 DESC, first_failure_at,"
        f" {_PENDING_COLUMNS_WITH_ANSWERS}, latest_status)"
        " WHERE latest_status = 'failure'"
    )


_OBJECT_STATE_BY_SOURCE = """
CREATE TABLE object_state_by_source (
    job_id TEXT NOT NULL,
    source_id TEXT NOT NULL,
    source_type TEXT NOT NULL DEFAULT '',
    source_name TEXT NOT NULL DEFAULT '',
    target_id TEXT NOT NULL DEFAULT '',
    latest_event_id TEXT NOT NULL,
    latest_at TEXT NOT NULL,
    latest_status TEXT NOT NULL,
    latest_action TEXT NOT NULL,
    failed_cycles INTEGER NOT NULL DEFAULT 0,
    first_failure_at TEXT,
    error_code TEXT NOT NULL DEFAULT '',
    error_category TEXT NOT NULL DEFAULT '',
    reason TEXT NOT NULL DEFAULT '',
    recommended_action TEXT NOT NULL DEFAULT '',
    latest_cycle_id TEXT NOT NULL DEFAULT '',
    retry_at TEXT,
    playbook_key TEXT,
    rules_version INTEGER,
    PRIMARY KEY (source_id, job_id)
) WITHOUT ROWID
"""


@migrations()
def m011_object_state_clustered_by_source(db: Database) -> None:
    """Store object state in its key's order (WITHOUT ROWID, source id first).

    Each saved page of events updates about a thousand objects: folded in key order, the
    updates walk one b-tree in order instead of a key index and a table in random order
    (~20% of a 1,000-event save). The same columns in the same order, indexes and triggers.
    """
    kept = [
        sql
        for (sql,) in db.execute(
            "SELECT sql FROM sqlite_master WHERE tbl_name = 'object_state'"
            " AND type IN ('index', 'trigger') AND sql IS NOT NULL ORDER BY type, name"
        ).fetchall()
    ]
    db.execute(_OBJECT_STATE_BY_SOURCE)
    columns = ", ".join(
        row[1] for row in db.execute("PRAGMA table_info(object_state_by_source)").fetchall()
    )
    db.execute(
        f"INSERT INTO object_state_by_source ({columns}) SELECT {columns} FROM object_state"
        " ORDER BY source_id, job_id"
    )
    db.execute("DROP TABLE object_state")
    db.execute("ALTER TABLE object_state_by_source RENAME TO object_state")
    for sql in kept:
        db.execute(sql)


_STALE_WITH_MEMBERS = (
    "UPDATE directory_answers_state SET fresh = 0, members_fresh = 0"
    " WHERE fresh = 1 OR members_fresh = 1"
)


@migrations()
def m012_directory_answers_keep_member_lists(db: Database) -> None:
    """Tell a change of groups' provisioning state (or of the jobs) from any other input change.

    `members_fresh` stays 1 while only those changed: the next save then keeps the SSO conflicts
    and the stored member lists of groups still matched to the same Harness group, instead of
    computing both again from the whole directory (a provisioning poll saving group events
    recomputed everything: ~3 CPU-s at 100,000 users). Every other input's triggers clear both.
    """
    db.execute(
        "ALTER TABLE directory_answers_state ADD COLUMN members_fresh INTEGER NOT NULL DEFAULT 0"
    )
    for table, columns in _DIRECTORY_ANSWER_INPUTS.items():
        if table == "sync_jobs":
            continue  # the jobs only decide which job's group state wins
        for event in ("insert", "delete", "update"):
            db.execute(f"DROP TRIGGER {table}_stale_{event}")
        db.execute(
            f"CREATE TRIGGER {table}_stale_insert AFTER INSERT ON {table}"
            f" BEGIN {_STALE_WITH_MEMBERS}; END"
        )
        db.execute(
            f"CREATE TRIGGER {table}_stale_delete AFTER DELETE ON {table}"
            f" BEGIN {_STALE_WITH_MEMBERS}; END"
        )
        db.execute(
            f"CREATE TRIGGER {table}_stale_update AFTER UPDATE ON {table}"
            f" WHEN ({_prefixed('OLD', columns)}) IS NOT ({_prefixed('NEW', columns)})"
            f" BEGIN {_STALE_WITH_MEMBERS}; END"
        )


_SEARCH_TERMS = (
    "CREATE TABLE search_terms (id INTEGER PRIMARY KEY, term TEXT NOT NULL UNIQUE)",
    # Contentless, without positions: the text is in search_terms, and a lookup asks for rows
    # holding every trigram of the text (a superset it then checks with LIKE). `spaced` holds
    # the term's characters and pairs of characters as trigrams (store.derived.spaced).
    "CREATE VIRTUAL TABLE search_terms_text USING fts5(term, spaced, content='',"
    " detail='none', columnsize=0, tokenize='trigram')",
    "CREATE TRIGGER search_terms_text_insert AFTER INSERT ON search_terms"
    " BEGIN INSERT INTO search_terms_text (rowid, term, spaced)"
    " VALUES (NEW.id, NEW.term, scimwatch_spaced(NEW.term)); END",
    # An object by its id's term: integers instead of a GUID a row.
    "CREATE TABLE object_terms (term_id INTEGER NOT NULL, object_id INTEGER NOT NULL,"
    " holders INTEGER NOT NULL DEFAULT 0, released_at TEXT NOT NULL DEFAULT '',"
    " PRIMARY KEY (term_id, object_id)) WITHOUT ROWID",
)
"""Every id, name, target id and error code an object's events carried, once each: how many
of its object_state values hold it now, and when one last stopped holding it."""

_OBJECT_TERM = (
    "term_id = (SELECT id FROM search_terms WHERE term = {value})"
    " AND object_id = (SELECT id FROM search_terms WHERE term = {row}.source_id)"
)


def _hold_term(column: str, changed: str) -> str:
    """Trigger statements counting NEW's `column` as a term its object holds, when `changed`."""
    value = f"NEW.{column}"
    when = f"{value} != '' AND {changed}"
    # DO NOTHING, not OR IGNORE: the fold's upsert would override a trigger's OR IGNORE.
    return (
        f"INSERT INTO search_terms (term) SELECT {value} WHERE {when} ON CONFLICT DO NOTHING;"
        " INSERT INTO object_terms (term_id, object_id, holders) SELECT term.id, object.id, 1"
        " FROM search_terms AS term, search_terms AS object"
        f" WHERE term.term = {value} AND object.term = NEW.source_id AND {when}"
        " ON CONFLICT DO UPDATE SET holders = holders + 1;"
    )


def _release_term(column: str, changed: str, released_at: str) -> str:
    """A trigger statement counting OLD's `column` out, noting when, when `changed`."""
    value = f"OLD.{column}"
    return (
        "UPDATE object_terms SET holders = holders - 1,"
        f" released_at = max(released_at, {released_at})"
        f" WHERE {_OBJECT_TERM.format(value=value, row='OLD')} AND {value} != '' AND {changed};"
    )


@migrations()
def m013_search_terms(db: Database) -> None:
    """Find the objects whose events carried a text by index: ids, names, target ids, codes.

    The Events text filter scanned every object's row with three LIKEs (25-45 ms at 100,000
    objects). A trigram index over the distinct terms finds the few that can hold a text, and
    `object_terms` the objects whose events carried them. The fold passes every event through
    its object's row in time order, so triggers on object_state see every value an event
    carried; they run when an object's row is added or removed, or its name, target id or
    error code changes (an object whose values do not change costs the fold one comparison).
    A value that stops being held is noted with the time of the last event that held it
    (OLD.latest_at): no event of the object carried it later, unless a row holds it now.
    Terms are only added: events are never deleted.
    """
    from store.derived import SEARCH_TERM_COLUMNS as _TERM_COLUMNS
    from store.derived import store_search_terms

    for statement in _SEARCH_TERMS:
        db.execute(statement)

    store_search_terms(db.conn)
    # Objects no longer holding a term, newest first, for a lookup to read as it needs them;
    # made after the terms are counted, which moves most rows in and out of it.
    db.execute(
        "CREATE INDEX object_terms_released ON object_terms (term_id, released_at)"
        " WHERE holders = 0"
    )
    changing = ", ".join(_TERM_COLUMNS[1:])
    db.execute(
        "CREATE TRIGGER object_state_terms_insert AFTER INSERT ON object_state BEGIN "
        + "".join(_hold_term(column, "true") for column in _TERM_COLUMNS)
        + " END"
    )
    db.execute(
        "CREATE TRIGGER object_state_terms_update AFTER UPDATE OF"
        f" {changing} ON object_state"
        f" WHEN ({_prefixed('OLD', changing)}) IS NOT ({_prefixed('NEW', changing)}) BEGIN "
        + "".join(
            _release_term(column, f"NEW.{column} IS NOT OLD.{column}", "OLD.latest_at")
            + _hold_term(column, f"NEW.{column} IS NOT OLD.{column}")
            for column in _TERM_COLUMNS[1:]
        )
        + " END"
    )
    # A row is removed to be folded again from all its events (store.derived), which holds
    # and releases its values again: the removal notes no time.
    db.execute(
        "CREATE TRIGGER object_state_terms_delete AFTER DELETE ON object_state BEGIN "
        + "".join(_release_term(column, "true", "''") for column in _TERM_COLUMNS)
        + " END"
    )


@migrations()
def m014_directory_answers_rules_version(db: Database) -> None:
    """Stamp the stored group mappings and SSO conflicts with the rules that computed them.

    The answers were recomputed only when an input row changed: a release that changes how
    they are computed (the advice for a redundant Default Access assignment, say) left a cache
    showing the old answers until the directory next changed. `rules_version` 0 is older than
    any release's (`store.health.DIRECTORY_RULES_VERSION`), so the next save recomputes them
    and readers compute them live until then.
    """
    db.execute(
        "ALTER TABLE directory_answers_state ADD COLUMN rules_version INTEGER NOT NULL DEFAULT 0"
    )


@migrations()
def m015_sso_conflicts_name_their_app(db: Database) -> None:
    """Store the Entra app each SSO conflict is about, instead of telling it from the detail.

    The rows stored before have no app (''): both flags are cleared, so readers compute the
    answers live and the writer's open stores them all again, conflicts included (a cleared
    `fresh` alone keeps the stored conflicts, m012).
    """
    db.execute("ALTER TABLE sso_conflicts ADD COLUMN app TEXT NOT NULL DEFAULT ''")
    db.execute("UPDATE directory_answers_state SET fresh = 0, members_fresh = 0")


@migrations()
def m016_search_terms_indexed_once_per_save(db: Database) -> None:
    """Index a save's new search terms for the text filter in one statement, not one each.

    The trigger m013 put on `search_terms` indexed each term as the fold's triggers added it:
    about twice the cost of one insert of all of a save's new terms into the trigram index
    (`store.derived.index_new_terms`, which the fold and the rebuild call), and a quarter of
    the time saving a day's events took. The terms already indexed stay as they are.
    """
    db.execute("DROP TRIGGER search_terms_text_insert")


USER_SEARCH_COLUMNS = {
    "entra_users": ("display_name", "user_principal_name", "mail"),
    "harness_users": ("name", "email"),
}
"""The columns of each user table that the user lookup finds a user by part of."""


@migrations()
def m017_user_search(db: Database) -> None:
    """Find users by part of a name, UPN or email (the user lookup's "walter" or "kim").

    One trigram index per user table, keyed by the user's rowid, holds every value those
    columns had: triggers add a row's values when it is inserted and when they change, and
    nothing is removed (a changed or deleted user leaves trigrams that a lookup then checks
    against the row itself with LIKE, as it must anyway: the index folds case beyond ASCII,
    LIKE does not). Contentless and without positions: a few bytes a user.
    """
    for table, columns in USER_SEARCH_COLUMNS.items():
        listed = ", ".join(columns)
        new_values = ", ".join(f"NEW.{column}" for column in columns)
        db.execute(
            f"CREATE VIRTUAL TABLE {table}_text USING fts5({listed}, content='',"
            " detail='none', columnsize=0, tokenize='trigram')"
        )
        db.execute(
            f"INSERT INTO {table}_text (rowid, {listed}) SELECT rowid, {listed} FROM {table}"
        )
        insert = f"INSERT INTO {table}_text (rowid, {listed}) VALUES (NEW.rowid, {new_values});"
        db.execute(f"CREATE TRIGGER {table}_text_insert AFTER INSERT ON {table} BEGIN {insert} END")
        db.execute(
            f"CREATE TRIGGER {table}_text_update AFTER UPDATE OF {listed} ON {table}"
            f" WHEN ({_prefixed('OLD', listed)}) IS NOT ({_prefixed('NEW', listed)})"
            f" BEGIN {insert} END"
        )


@migrations()
def m018_object_terms_held_in_two_statements(db: Database) -> None:
    """Add a new object's search terms in two statements instead of two per column (m013).

    The trigger looked the object's own term up once per column and ran eight statements per
    object; an object first saved (most of a backfill's) cost a sixth of the engine's work of
    saving its events. The same terms and counts, added in the same order.
    """
    from store.derived import SEARCH_TERM_COLUMNS as _TERM_COLUMNS

    held = " UNION ALL ".join(
        f"SELECT NEW.{column}{' AS value' if index == 0 else ''}"
        for index, column in enumerate(_TERM_COLUMNS)
    )
    db.execute("DROP TRIGGER object_state_terms_insert")
    # DO NOTHING, not OR IGNORE: the fold's upsert would override a trigger's OR IGNORE.
    db.execute(
        "CREATE TRIGGER object_state_terms_insert AFTER INSERT ON object_state BEGIN"
        f" INSERT INTO search_terms (term) SELECT value FROM ({held}) WHERE value != ''"
        " ON CONFLICT DO NOTHING;"
        " INSERT INTO object_terms (term_id, object_id, holders)"
        f" SELECT term.id, object.id, 1 FROM search_terms AS object, ({held}) AS held"
        " JOIN search_terms AS term ON term.term = held.value"
        " WHERE object.term = NEW.source_id AND held.value != ''"
        " ON CONFLICT DO UPDATE SET holders = holders + 1; END"
    )
