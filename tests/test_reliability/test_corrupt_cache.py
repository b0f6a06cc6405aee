"""T-D7: a corrupt, truncated or emptied cache is detected at open, moved aside and rebuilt.

Never a crash loop: the second open after a recovery finds a sound cache and moves nothing.
Errors of the environment (disk I/O, disk full) never move a good cache aside.
"""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
from contextlib import closing
from pathlib import Path

import pytest

from store import cache as cache_module
from store.cache import Cache
from store.models import Batch
from tests.test_reliability.damage import (
    NOW,
    filled,
    garbage_inside,
    garbage_page_one,
    truncated,
)


def corrupt_copies(path: Path) -> list[Path]:
    return sorted(path.parent.glob(f"{path.name}.corrupt-*"))


def reopen_and_use(path: Path) -> Cache:
    cache = Cache.open_writer(path)
    cache.save_batch(Batch(source="graph.jobs", watermark="after"), NOW, NOW)
    assert cache.watermark("graph.jobs") == "after"
    return cache


@pytest.mark.parametrize("damage", [garbage_page_one, truncated, garbage_inside])
def test_a_damaged_cache_is_moved_aside_and_rebuilt_once(tmp_path, damage):
    path = filled(tmp_path / "cache.db")
    damage(path)
    damaged = path.read_bytes()
    with reopen_and_use(path) as cache:
        assert cache.recovered_from is not None
        assert cache.recovered_from.name.startswith("cache.db.corrupt-")
        assert cache.count("provisioning_events") == 0  # rebuilt empty: the APIs refill it
    (aside,) = corrupt_copies(path)
    assert aside.read_bytes() == damaged  # kept for a post-mortem, untouched
    assert aside.stat().st_mode & 0o077 == 0
    # No crash loop: the next open is a normal one.
    with reopen_and_use(path) as cache:
        assert cache.recovered_from is None
    assert len(corrupt_copies(path)) == 1
    with closing(sqlite3.connect(path)) as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)


def test_an_empty_file_is_simply_a_new_cache(tmp_path):
    path = tmp_path / "cache.db"
    path.touch(mode=0o600)
    with reopen_and_use(path) as cache:
        assert cache.recovered_from is None
    assert corrupt_copies(path) == []


def test_a_wal_deleted_after_a_crash_leaves_a_consistent_older_cache(tmp_path):
    """howtocorrupt: deleting a hot WAL. The cache goes back to its last checkpoint, whole."""
    path = tmp_path / "cache.db"
    script = (
        "import os, signal, sys\n"
        "from datetime import UTC, datetime\n"
        "from store.cache import Cache\n"
        "from tests.test_reliability.damage import event\n"
        "from store.models import Batch\n"
        "now = datetime(2024, 5, 4, tzinfo=UTC)\n"
        "cache = Cache.open_writer(sys.argv[1])\n"
        "for step in range(20):\n"
        "    cache.save_batch(Batch(source='graph.provisioning', watermark=str(step),\n"
        "        records=[event(step * 50 + n) for n in range(50)]), now, now)\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(path)],
        check=False,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert done.returncode == -signal.SIGKILL
    Path(f"{path}-wal").unlink()
    Path(f"{path}-shm").unlink(missing_ok=True)
    with Cache.open_writer(path) as cache:
        events = cache.count("provisioning_events")
        watermark = cache.watermark("graph.provisioning")
    with closing(sqlite3.connect(path)) as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    # A prefix of the commits, and the watermark saved with exactly that prefix.
    assert events % 50 == 0
    assert watermark == (str(events // 50 - 1) if events else None)


def test_environment_errors_never_move_a_good_cache_aside(tmp_path, monkeypatch):
    path = filled(tmp_path / "cache.db", events=10)

    def failing_check(conn):
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(cache_module, "_bounded_quick_check", failing_check)
    with pytest.raises(sqlite3.OperationalError, match="disk I/O error"):
        Cache.open_writer(path)
    assert corrupt_copies(path) == []
    monkeypatch.undo()
    with Cache.open_writer(path) as cache:
        assert cache.count("provisioning_events") == 10


def test_the_quick_check_of_a_big_cache_is_bounded(tmp_path, monkeypatch):
    path = filled(tmp_path / "cache.db", events=20_000)
    monkeypatch.setattr(cache_module, "QUICK_CHECK_BUDGET_SECONDS", 0.0)
    with Cache.open_writer(path) as cache:  # abandoned at once, taken as passed
        assert cache.recovered_from is None
        assert cache.count("provisioning_events") == 20_000


def test_a_cache_that_stays_unusable_is_an_error_not_a_loop(tmp_path, monkeypatch):
    path = filled(tmp_path / "cache.db", events=10)
    monkeypatch.setattr(cache_module, "_header_problem", lambda path: "always broken")
    with pytest.raises(cache_module.CacheError, match="unusable even when rebuilt"):
        Cache.open_writer(path)
    assert len(corrupt_copies(path)) == 1
    monkeypatch.undo()
    with Cache.open_writer(path) as cache:  # lock released, usable again
        assert cache.count("provisioning_events") == 0
