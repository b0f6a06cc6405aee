"""The cache file before SQLite: the writer lock taken early, the stamp of this version."""

from __future__ import annotations

import dataclasses
import os
import sqlite3
from pathlib import Path

import pytest

from store.cache import Cache
from store.cache_file import (
    CacheLocked,
    damage_marker,
    prepared_by_this_version,
    take_writer_lock,
    writer_holder,
)
from store.models import SyncJob
from store.overview import JobRow


def test_a_cache_this_version_migrated_is_stamped_until_it_needs_work(tmp_path: Path):
    path = tmp_path / "cache.db"
    assert not prepared_by_this_version(path)  # none yet
    Cache.open_writer(path).close()
    assert prepared_by_this_version(path)
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA user_version = 0")  # another version's
    assert not prepared_by_this_version(path)
    Cache.open_writer(path).close()
    assert prepared_by_this_version(path)
    damage_marker(path).touch()
    assert not prepared_by_this_version(path)


def test_a_file_that_is_no_database_is_not_stamped(tmp_path: Path):
    path = tmp_path / "cache.db"
    path.write_bytes(b"not a database" * 100)
    assert not prepared_by_this_version(path)


def test_the_writer_adopts_a_lock_taken_before(tmp_path: Path):
    path = tmp_path / "cache.db"
    Cache.open_writer(path).close()
    lock = take_writer_lock(path)
    assert writer_holder(path) == f"pid {os.getpid()}"
    with pytest.raises(CacheLocked):
        take_writer_lock(path)
    cache = Cache.open_writer(path, quick_check=False, lock=lock)
    assert not cache.read_only
    with pytest.raises(CacheLocked):
        Cache.open_writer(path)
    cache.close()
    assert writer_holder(path) is None


def test_the_overviews_job_row_is_the_saved_job_field_for_field():
    """`store.overview.JobRow` reads back what `store.models.SyncJob` saves."""
    assert [field.name for field in dataclasses.fields(JobRow)] == list(SyncJob.model_fields)
