"""T-C1/T-C3: readers (as the TUI's thread workers read) while the collector writes.

No `database is locked`, every read sees a committed snapshot that only grows, and short reads
let checkpoints run so the WAL stays bounded. (Two writers: test_cli_secrets_and_lock.py and
tests/test_store/test_cache.py.)
"""

from __future__ import annotations

import sqlite3
import threading
from datetime import UTC, datetime
from pathlib import Path

from store import health
from store.cache import Cache
from store.models import Batch
from tests.test_reliability.damage import event

BATCHES = 120
PER_BATCH = 100
NOW = datetime(2024, 5, 4, 12, tzinfo=UTC)
REFRESH_SECONDS = 0.02
"""Faster than the TUI's refresh (T-C1 uses 100 ms); back-to-back reads with no gap at all
never let the WAL restart (46-50 MB here), a reason to keep reads short and spaced."""
SNAPSHOT = (
    "SELECT (SELECT count(*) FROM provisioning_events) AS events, coalesce((SELECT value FROM"
    " watermarks WHERE source = 'graph.provisioning'), -1) AS mark"
)


def test_readers_never_fail_and_see_only_growing_snapshots_while_the_writer_writes(tmp_path):
    path = tmp_path / "cache.db"
    writer = Cache.open_writer(path)
    reader = Cache.open_reader(path)
    wal = Path(f"{path}-wal")
    finished = threading.Event()
    errors: list[BaseException] = []
    seen: list[tuple[int, int]] = []
    wal_sizes: list[int] = []

    def write() -> None:
        try:
            for number in range(BATCHES):
                records = [event(number * PER_BATCH + n) for n in range(PER_BATCH)]
                batch = Batch(source="graph.provisioning", records=records, watermark=str(number))
                writer.save_batch(batch, NOW, NOW)
                wal_sizes.append(wal.stat().st_size if wal.exists() else 0)
        except BaseException as error:
            errors.append(error)
        finally:
            finished.set()

    def read() -> None:
        try:
            while not finished.is_set():
                with reader.reading() as db:
                    # One statement, one snapshot: `reading()` runs in autocommit, so two
                    # statements may see two different commits (reported; see the module doc).
                    row = next(iter(db.query(SNAPSHOT)))
                    health.recent_events(db, limit=50)
                events, mark = int(row["events"]), int(row["mark"])
                seen.append((events, mark))
                finished.wait(REFRESH_SECONDS)  # a screen refreshes on a timer, not in a spin
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=write), *(threading.Thread(target=read) for _ in range(2))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    writer.close()
    assert errors == []  # no "database is locked", no error of any kind
    assert len(seen) > 20
    for events, mark in seen:
        assert events % PER_BATCH == 0  # a committed snapshot, never half a batch
        assert mark == events // PER_BATCH - 1  # data and watermark from the same commit
    print(f"max WAL {max(wal_sizes) / 2**20:.1f} MB, reads {len(seen)}")
    assert max(wal_sizes) < 32 * 1024 * 1024  # checkpoints kept up: one or two cycles of WAL
    with reader.reading() as db:
        assert reader_watermark(db) == BATCHES - 1  # readers see new data, not a stale view


def reader_watermark(db) -> int:
    rows = list(db.query("SELECT value FROM watermarks WHERE source = 'graph.provisioning'"))
    return int(rows[0]["value"]) if rows else -1


def test_a_long_open_read_transaction_is_what_grows_the_wal(tmp_path):
    """Why reads must stay short: one reader holding a snapshot starves the checkpoint."""
    path = tmp_path / "cache.db"
    with Cache.open_writer(path) as writer:
        holder = sqlite3.connect(path, isolation_level=None)
        holder.execute("BEGIN")
        holder.execute("SELECT count(*) FROM provisioning_events").fetchone()
        for number in range(60):
            records = [event(number * PER_BATCH + n) for n in range(PER_BATCH)]
            writer.save_batch(Batch(source="graph.provisioning", records=records), NOW, NOW)
        starved = Path(f"{path}-wal").stat().st_size
        holder.execute("COMMIT")
        holder.close()
    assert starved > 16 * 1024 * 1024  # past the 1000-page auto-checkpoint, nothing reclaimed
