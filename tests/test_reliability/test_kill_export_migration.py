"""T-D3: SIGKILL during a `VACUUM INTO` export and during a schema migration.

Afterwards the cache opens, `integrity_check` is ok, nothing is lost, the schema is the old one
or the new one (never a mix), and no export is left under its final name half-written. Each
kill lands at a chosen point of the work (a statement, or a step count inside one), not at a
guessed moment.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
from contextlib import closing
from pathlib import Path

from sqlite_utils import Database

from store.cache import Cache
from store.schema import migrations
from tests.test_reliability.damage import event, filled
from tests.test_reliability.oracle import REPO

KILLS = 6
EXPORT_EVENTS = 2_000
EVENTS = 500
"""Events in the cache being migrated (its m004 rebuilds derived tables from each one)."""

EXPORT = """
import os
import signal
import sqlite3
import sys
from datetime import UTC, datetime
from pathlib import Path

kill_at = int(os.environ["KILL_AT"])
ticks = 0

def tick():
    global ticks
    ticks += 1
    if ticks == kill_at:
        os.kill(os.getpid(), signal.SIGKILL)
    return 0

connect = sqlite3.connect

def ticking_connect(*args, **kwargs):
    conn = connect(*args, **kwargs)
    conn.set_progress_handler(tick, 200)
    return conn

sqlite3.connect = ticking_connect
replace = os.replace

def ticking_replace(*args, **kwargs):
    tick()  # one more point to die at: the export is written, not yet renamed
    return replace(*args, **kwargs)

os.replace = ticking_replace
from store.cache import Cache
from store.export import export_sqlite
cache = Cache.open_reader(Path(sys.argv[1]))
ticks = 0  # count from the export on
export_sqlite(cache, Path(sys.argv[2]), datetime(2024, 5, 4, tzinfo=UTC))
print(ticks, flush=True)
"""
"""Exports a cache, SIGKILLing itself at the KILL_AT-th tick: SQLite's progress handler every
200 virtual-machine steps of any connection (inside `VACUUM INTO` and the health tables'
writes), and once more just before the finished export is renamed onto its name. KILL_AT=0
runs to the end and prints how many ticks the export took."""

MIGRATE = """
import json
import os
import signal
import sys
from pathlib import Path
from store.cache import Cache
from store.schema import migrations

kill_at = int(os.environ["KILL_AT"])
statements = []

def trace(statement):
    statements.append(statement)
    if len(statements) == kill_at:
        os.kill(os.getpid(), signal.SIGKILL)

apply = migrations.apply

def traced_apply(db, **options):
    db.conn.set_trace_callback(trace)
    apply(db, **options)

migrations.apply = traced_apply
Cache.open_writer(Path(sys.argv[1])).close()
print(json.dumps(statements))
"""
"""Opens (and so migrates) a cache; SIGKILLs itself as the KILL_AT-th statement of the
migration starts (SQLite's trace callback fires before a statement runs, so a kill at a
COMMIT leaves that migration uncommitted). KILL_AT=0 runs to the end and prints every
statement the migration ran."""


def export(source: Path, target: Path, kill_at: int) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-c", EXPORT, str(source), str(target)],
        cwd=REPO,
        env={**os.environ, "KILL_AT": str(kill_at)},
        capture_output=True,
        check=False,
    )


def test_kill_during_export_leaves_the_cache_whole_and_no_half_export(tmp_path):
    source = filled(tmp_path / "cache.db", events=EXPORT_EVENTS)
    whole = export(source, tmp_path / "export-whole.db", kill_at=0)
    assert whole.returncode == 0, whole.stderr.decode()
    ticks = int(whole.stdout)
    # Spread over the export, and the last tick: written whole, killed before the rename.
    kill_points = sorted({*range(1, ticks, max(1, ticks // KILLS)), ticks})
    assert len(kill_points) > KILLS // 2
    for kill_at in kill_points:
        target = tmp_path / f"export-{kill_at}.db"
        killed = export(source, target, kill_at)
        assert killed.returncode == -signal.SIGKILL, (kill_at, killed.stderr.decode())
        assert not target.exists(), kill_at  # never a half export under its final name
    # Whatever was left is only ever a dot-file marked partial, never the export's name.
    leftovers = {p.name for p in tmp_path.iterdir()} - {
        "cache.db",
        "cache.db-wal",
        "cache.db-shm",
        "cache.db.lock",
        "export-whole.db",
    }
    assert all(".partial" in name for name in leftovers), leftovers
    with closing(sqlite3.connect(tmp_path / "export-whole.db")) as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert db.execute("SELECT count(*) FROM provisioning_events").fetchone() == (EXPORT_EVENTS,)
    with Cache.open_writer(source) as cache:
        assert cache.count("provisioning_events") == EXPORT_EVENTS
    with closing(sqlite3.connect(source)) as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)


def old_schema_cache(path: Path, events: int) -> None:
    """A cache as the version before m004 left it, with events to migrate."""
    with closing(sqlite3.connect(path, isolation_level=None)) as conn:
        conn.execute("PRAGMA journal_mode=WAL")
        db = Database(conn)
        migrations.apply(db, stop_before="m004_leaner_event_indexes_and_cycle_of_latest")
        rows = [event(n).to_row() for n in range(events)]
        db.table("provisioning_events").insert_all(rows)


Snapshot = tuple[list[tuple[str, ...]], dict[str, list[str]]]


def snapshot(path: Path) -> tuple[int, Snapshot]:
    """How many migrations are applied, and every schema object and row but their record."""
    with closing(sqlite3.connect(path)) as db:
        applied = [row[0] for row in db.execute("SELECT name FROM _sqlite_migrations ORDER BY id")]
        schema = sorted(
            db.execute(
                "SELECT type, name, tbl_name, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite_%'"
            )
        )
        tables = [
            name
            for kind, name, _table, sql in schema
            if kind == "table"
            and name != "_sqlite_migrations"
            # A contentless FTS table cannot be read back; its shadow tables are compared.
            and not sql.startswith("CREATE VIRTUAL TABLE")
        ]
        rows = {
            table: sorted(map(repr, db.execute(f'SELECT * FROM "{table}"'))) for table in tables
        }
    assert applied == migration_names()[: len(applied)]
    return len(applied), (schema, rows)


def migration_names() -> list[str]:
    return [migration.name for migration in migrations._migrations]


def states_by_version(template: Path, work: Path) -> dict[int, Snapshot]:
    """What the cache holds after each number of applied migrations, migrating without a kill."""
    path = work / "reference.db"
    shutil.copyfile(template, path)
    names = migration_names()
    applied, state = snapshot(path)
    states = {applied: state}
    for version in range(applied + 1, len(names) + 1):
        with closing(sqlite3.connect(path, isolation_level=None)) as conn:
            migrations.apply(Database(conn), stop_before=names[version : version + 1] or None)
        applied, states[version] = snapshot(path)
        assert applied == version
    return states


def migrate(path: Path, kill_at: int) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-c", MIGRATE, str(path)],
        cwd=REPO,
        env={**os.environ, "KILL_AT": str(kill_at)},
        capture_output=True,
        timeout=120,
        check=False,
    )


def statements_to_die_at(statements: list[str]) -> dict[int, int]:
    """Statements to die at (1-based) -> migrations committed before it, chosen from a trace.

    In each migration's transaction its first statement and its COMMIT (a kill just after a
    COMMIT is one inside the next migration), and halfway through the first migration (m004
    rebuilds the derived tables from every event).
    """
    verbs = [statement.split()[0].upper() for statement in statements]
    begins = [index for index, verb in enumerate(verbs) if verb == "BEGIN"]
    commits = [index for index, verb in enumerate(verbs) if verb == "COMMIT"]
    indexes = {index + 1 for index in begins} | set(commits)
    indexes.add((begins[0] + commits[0]) // 2)
    return {index + 1: verbs[:index].count("COMMIT") for index in sorted(indexes)}


def test_kill_during_a_migration_leaves_each_migration_whole_or_absent(tmp_path):
    names = migration_names()
    template = tmp_path / "template.db"
    old_schema_cache(template, events=EVENTS)
    before, _ = snapshot(template)
    states = states_by_version(template, tmp_path)
    shutil.copyfile(template, tmp_path / "traced.db")
    traced = migrate(tmp_path / "traced.db", kill_at=0)
    assert traced.returncode == 0, traced.stderr
    points = statements_to_die_at(json.loads(traced.stdout))
    # What the writer's open leaves after migrating unkilled (it also stores the directory
    # answers the migrations left stale).
    shutil.copyfile(template, tmp_path / "opened.db")
    Cache.open_writer(tmp_path / "opened.db").close()
    opened = snapshot(tmp_path / "opened.db")
    assert len(points) >= 2 * (len(names) - before) + 1, "a migration ran outside a transaction"
    for kill_at, committed in points.items():
        path = tmp_path / f"cache-{kill_at}.db"
        shutil.copyfile(template, path)
        assert migrate(path, kill_at).returncode == -signal.SIGKILL
        applied, state = snapshot(path)
        assert state == states[applied], kill_at  # each migration whole or not there at all
        assert applied == before + committed, kill_at
        with Cache.open_writer(path) as cache:  # the next start finishes the migration
            assert cache.schema_version() == names
            assert cache.count("provisioning_events") == EVENTS
            assert cache.recovered_from is None
        assert snapshot(path) == opened
        with closing(sqlite3.connect(path)) as db:
            assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
