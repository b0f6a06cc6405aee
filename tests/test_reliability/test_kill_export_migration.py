"""T-D3: SIGKILL during a `VACUUM INTO` export and during a schema migration.

Afterwards the cache opens, `integrity_check` is ok, nothing is lost, the schema is the old one
or the new one (never a mix), and no export is left under its final name half-written.
"""

from __future__ import annotations

import random
import shutil
import sqlite3
import subprocess
import sys
import time
from contextlib import closing
from pathlib import Path

from sqlite_utils import Database

from store.cache import Cache
from store.schema import migrations
from tests.test_reliability.oracle import REPO
from tests.test_reliability.test_corrupt_cache import event, filled

KILLS = 6

EXPORT = """
import sys
from datetime import UTC, datetime
from pathlib import Path
from store.cache import Cache
from store.export import export_sqlite
cache = Cache.open_reader(Path(sys.argv[1]))
print("ready", flush=True)
export_sqlite(cache, Path(sys.argv[2]), datetime(2024, 5, 4, tzinfo=UTC))
print("done", flush=True)
"""

MIGRATE = """
import sys
from pathlib import Path
from store.cache import Cache
print("ready", flush=True)
Cache.open_writer(Path(sys.argv[1])).close()
print("done", flush=True)
"""


def start_ready(script: str, args: list[str]) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        [sys.executable, "-c", script, *args], cwd=REPO, stdout=subprocess.PIPE
    )
    assert process.stdout is not None
    assert process.stdout.readline() == b"ready\n"
    return process


def timed(script: str, args: list[str]) -> float:
    """Seconds from ready to done of one uninterrupted run (to spread the kills over)."""
    process = start_ready(script, args)
    started = time.monotonic()
    process.communicate(timeout=60)
    assert process.returncode == 0
    return time.monotonic() - started


def kill_after(script: str, args: list[str], seconds: float) -> bool:
    """Run `script`, SIGKILL it `seconds` after it is ready; True if the kill landed."""
    process = start_ready(script, args)
    try:
        process.wait(timeout=seconds)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        return True
    process.communicate()
    return False


def kill_points(duration: float) -> list[float]:
    """KILLS moments spread over the operation, jittered reproducibly."""
    chooser = random.Random(duration)
    return [duration * (index + chooser.random()) / KILLS for index in range(KILLS)]


def test_kill_during_export_leaves_the_cache_whole_and_no_half_export(tmp_path):
    source = filled(tmp_path / "cache.db", events=20_000)
    duration = timed(EXPORT, [str(source), str(tmp_path / "export-timed.db")])
    landed = 0
    for attempt, moment in enumerate(kill_points(duration)):
        target = tmp_path / f"export-{attempt}.db"
        landed += kill_after(EXPORT, [str(source), str(target)], moment)
        if target.exists():  # finished before the kill: must be a whole export
            with closing(sqlite3.connect(target)) as db:
                assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
                assert db.execute("SELECT count(*) FROM provisioning_events").fetchone() == (
                    20_000,
                )
    assert landed >= KILLS // 2
    # Whatever was left is only ever a dot-file marked partial, never the export's name.
    leftovers = {p.name for p in tmp_path.iterdir()} - {
        "cache.db",
        "cache.db-wal",
        "cache.db-shm",
        "cache.db.lock",
    }
    assert all(name.startswith("export-") or ".partial" in name for name in leftovers), leftovers
    with Cache.open_writer(source) as cache:
        assert cache.count("provisioning_events") == 20_000
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


def schema_state(path: Path) -> tuple[list[str], bool, bool]:
    with closing(sqlite3.connect(path)) as db:
        applied = [row[0] for row in db.execute("SELECT name FROM _sqlite_migrations ORDER BY id")]
        old_index = db.execute(
            "SELECT count(*) FROM sqlite_master WHERE name = 'provisioning_events_cycle'"
        ).fetchone() == (1,)
        columns = {row[1] for row in db.execute("PRAGMA table_info(object_state)")}
    return applied, old_index, "latest_cycle_id" in columns


def test_kill_during_a_migration_leaves_the_old_or_the_new_schema(tmp_path):
    names = [m.name for m in migrations._migrations]
    landed = 0
    template = tmp_path / "template.db"
    old_schema_cache(template, events=10_000)
    shutil.copyfile(template, tmp_path / "timed.db")
    duration = timed(MIGRATE, [str(tmp_path / "timed.db")])
    for attempt, moment in enumerate(kill_points(duration)):
        path = tmp_path / f"cache-{attempt}.db"
        shutil.copyfile(template, path)
        landed += kill_after(MIGRATE, [str(path)], moment)
        applied, old_index, new_column = schema_state(path)
        assert applied == names[: len(applied)]
        if "m004_leaner_event_indexes_and_cycle_of_latest" in applied:
            assert (old_index, new_column) == (False, True)
        else:
            assert (old_index, new_column) == (True, False)  # never half of m004
        with Cache.open_writer(path) as cache:  # the next start finishes the migration
            assert cache.schema_version() == names
            assert cache.count("provisioning_events") == 10_000
            assert cache.recovered_from is None
        with closing(sqlite3.connect(path)) as db:
            assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    assert landed >= KILLS // 2
