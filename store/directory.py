"""Group mappings and SSO conflicts: the directory answers, computed set-based in SQL.

Computing them reads the whole directory (seconds at 100,000 users), so `Cache.save_batch`
keeps them in `group_mappings` and `sso_conflicts` (m006) and readers compute them live only
while those are stale. Each reader takes an open `sqlite_utils.Database`.
"""

from __future__ import annotations

import sqlite3
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

from sqlite_utils import Database

from store import harness_ids
from store.models import GroupMapping, GroupState, SsoConflict, construct_trusted, how_assigned
from store.overview import DIRECTORY_RULES_VERSION as DIRECTORY_RULES_VERSION
from store.overview import count_problems, directory_answers_fresh
from store.playbook import parse_service_message

DEFAULT_ACCESS_ROLE = "00000000-0000-0000-0000-000000000000"
"""appRoleId of Default Access: Entra never provisions such assignments (graph-api.md 3.8)."""

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
_CONFLICT_COLUMNS = (
    "kind", "principal_id", "email", "display_name", "detail", "what_to_do", "app",
)  # fmt: skip

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
    email, display_name, detail, what_to_do, app);
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
    if directory_answers_fresh(db):
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
    first: dict[str, tuple[int, str]] = {}  # group -> (first assignment's rowid, how)
    for rowid, group_id, principal_name, display_name in conn.execute(
        "SELECT a.rowid, a.principal_id, a.principal_name, g.display_name"
        " FROM app_role_assignments AS a LEFT JOIN entra_groups AS g ON g.id = a.principal_id"
        " WHERE a.app = 'nextgen' AND a.principal_type = 'Group' AND a.app_role_id != ?"
        " ORDER BY a.rowid",
        [DEFAULT_ACCESS_ROLE],
    ):
        names[group_id] = display_name or principal_name
        first.setdefault(group_id, (rowid, how_assigned(principal_name or group_id)))
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
    # Entra does not provision a disabled account (graph-api.md 3.6): one that Harness has no
    # user for will never join the Harness group, so it is not missing there.
    conn.execute(
        "INSERT OR IGNORE INTO _dir_missing SELECT e.group_id, e.label"
        " FROM _dir_groups AS g JOIN _dir_entra_members AS e"
        " ON e.group_id = g.group_id AND e.direct = 1 WHERE g.harness_identifier IS NOT NULL"
        " AND NOT EXISTS (SELECT 1 FROM _dir_harness_members AS h"
        " WHERE h.identifier = g.harness_identifier AND h.label = e.label)"
        " AND (NOT EXISTS (SELECT 1 FROM entra_users AS u"
        "  WHERE u.id = e.member_id AND u.account_enabled = 0)"
        f" OR e.label IN (SELECT {_lower('email')} FROM harness_users WHERE email != ''))"
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
        # What Harness answered, when Entra quotes it, rather than Microsoft's paragraph.
        said = parse_service_message(facts.reason) or facts.reason
        pending = f"{facts.error_code or 'failure'}: {said}"[:300]
    if not matched:
        problems.append("not_provisioned")
        details.append(
            "no Harness group found"
            + (f"; Entra's create fails ({facts.error_code or 'failure'})" if pending else "")
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
        f" coalesce({_ENTRA_EMAIL}, ''), {_entra_label('a.principal_id')}, :directly, 0,"
        " min(a.rowid), 0 FROM app_role_assignments AS a"
        " LEFT JOIN entra_users AS u ON u.id = a.principal_id WHERE a.app = 'nextgen'"
        " AND a.principal_type = 'User' AND a.app_role_id != :default GROUP BY a.principal_id",
        {"directly": how_assigned(""), "default": DEFAULT_ACCESS_ROLE},
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
"""A Default Access conflict's detail (`{app}` is the assignment's app)."""
REDUNDANT_DEFAULT_ACCESS = (
    "Remove this Default Access assignment in Entra: a role already gives access (editing it "
    "to the User role would duplicate that)."
)
_REDUNDANT_DEFAULT_ACCESS_DETAIL = (
    "assigned to the {app} app with Default Access besides a role that Entra provisions: the "
    "Default Access assignment adds nothing"
)
"""A redundant Default Access conflict's detail (`{app}` as above)."""


def _fill_conflicts(conn: sqlite3.Connection) -> None:
    """Users who cannot sign in, Harness users Entra does not know, Default Access assignments.

    In that order; users by email (else id), in scope order when equal; Harness users by
    email as Harness has it; assignments as listed. Each names the Entra app to fix.

    A disabled Entra account cannot sign in at all, and Entra does not provision it (it
    disables the Harness user: graph-api.md 3.6, 3.7), so it is not one who cannot sign in
    through FirstGen. It stays in NextGen's scope: its Harness user is not unknown to Entra.
    """
    _fill_scope(conn)
    insert = f"INSERT INTO {_COMPUTED_CONFLICTS} ({', '.join(_CONFLICT_COLUMNS)})"
    conn.execute(
        f"{insert} SELECT 'firstgen_unassigned', s.user_id, s.email,"
        " coalesce(u.display_name, ''), 'provisioned through the NextGen app (' || s.how"
        " || ') but not assigned to the FirstGen app, which Harness signs users in through:"
        " sign-in fails', ?, 'firstgen' FROM _dir_scope AS s"
        " LEFT JOIN entra_users AS u ON u.id = s.user_id"
        " WHERE EXISTS (SELECT 1 FROM app_role_assignments WHERE app = 'firstgen')"
        " AND s.user_id NOT IN (SELECT user_id FROM _dir_firstgen)"
        " AND u.account_enabled IS NOT 0"
        f" AND (s.email = '' OR s.email IN (SELECT {_lower('email')} FROM harness_users"
        "  WHERE email != ''))"
        " ORDER BY s.label, s.k1, s.k2, s.k3",
        [_FIRSTGEN_UNASSIGNED],
    )
    conn.execute(
        f"{insert} SELECT 'unmatched_harness_user', h.id, {_lower('h.email')}, h.name,"
        " 'a SCIM user in Harness whose email matches no user assigned to the NextGen app in"
        " Entra', ?, 'nextgen' FROM harness_users AS h WHERE h.in_scim AND h.email != ''"
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
        " CASE WHEN a.redundant THEN :redundant ELSE :edit END, a.app"
        " FROM default_access AS a LEFT JOIN entra_users AS u ON u.id = a.principal_id"
        " ORDER BY a.k",
        {
            "default": DEFAULT_ACCESS_ROLE,
            "detail": _DEFAULT_ACCESS_DETAIL,
            "redundant_detail": _REDUNDANT_DEFAULT_ACCESS_DETAIL,
            "edit": _DEFAULT_ACCESS,
            "redundant": REDUNDANT_DEFAULT_ACCESS,
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


def sso_conflicts_of(db: Database, principals: list[str]) -> list[SsoConflict]:
    """The SSO conflicts about these Entra or Harness ids, in `sso_conflicts` order."""
    if not principals:
        return []
    _, conflicts, _ = _answer_tables(db)
    return _stored_conflicts(db, conflicts, principals)


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
    return SsoConflict(**dict(zip(_CONFLICT_COLUMNS, row, strict=True)))


def problem_counts(db: Database) -> tuple[int, int]:
    """(group mappings not ok, SSO conflicts): counts for the overview."""
    mappings, conflicts, _ = _answer_tables(db)
    return count_problems(db, mappings, conflicts)
