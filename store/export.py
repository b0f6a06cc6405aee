"""Exports: a SQLite snapshot of the cache with the health answers, or one view as CSV/JSON.

A snapshot is taken with `VACUUM INTO` inside one read transaction, so a collector can keep
writing meanwhile. Files are written 0600 beside the destination and renamed into place, so a
crash never leaves a half-written export under the final name.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import sqlite3
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, TypeAdapter
from sqlite_utils import Database

from store import directory, health
from store.cache import Cache, CacheError, database
from store.models import JobHealth

ExportFormat = Literal["sqlite", "csv", "json", "ndjson"]

HEALTH_TABLES: dict[str, str] = {
    "health_jobs": "each provisioning job with its state, next expected cycle and summary",
    "health_pending_retries": "objects whose latest event failed: attempts, retry time, hint",
    "health_group_mappings": "Entra group -> Harness identifier -> Harness group, with state",
    "health_sso_conflicts": "users who cannot sign in, unmatched Harness users, Default Access",
}
"""Tables added to a SQLite export: the health model's answers at export time."""

RAW_VIEWS = (
    "provisioning_events",
    "cycles",
    "object_state",
    "sync_jobs",
    "job_executions",
    "app_role_assignments",
    "entra_users",
    "entra_groups",
    "entra_memberships",
    "harness_users",
    "harness_groups",
    "harness_group_members",
    "harness_sso_settings",
    "harness_role_assignments",
    "poll_runs",
)
"""Cache tables that `--view` can export as they are."""

TIME_COLUMNS = {
    "provisioning_events": "activity_at",
    "cycles": "ended_at",
    "poll_runs": "started_at",
}
"""The column `--since` filters on, per table."""


class ExportError(Exception):
    """The export cannot be written as asked; the message says why."""


def view_names() -> list[str]:
    """Every name `export_view` accepts."""
    return [name.removeprefix("health_") for name in HEALTH_TABLES] + list(RAW_VIEWS)


def _check_destination(path: Path, overwrite: bool) -> None:
    if path.is_symlink():
        raise ExportError(f"{path} is a symbolic link; refusing to write through it")
    if path.exists():
        if not overwrite:
            raise ExportError(f"{path} already exists; pass --force to replace it")
        if not path.is_file():
            raise ExportError(f"{path} is not a regular file")
    if not path.parent.is_dir():
        raise ExportError(f"{path.parent} is not a directory")


def _remove_stale_partials(path: Path) -> None:
    """Remove what an export killed mid-way left (its process is gone)."""
    for partial in path.parent.glob(f".{path.name}.*.partial*"):
        pid_text = partial.name.removeprefix(f".{path.name}.").split(".", 1)[0]
        if pid_text.isdigit() and not _alive(int(pid_text)):
            with contextlib.suppress(OSError):
                partial.unlink()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextlib.contextmanager
def _staging(path: Path) -> Iterator[Path]:
    """A private temp file beside `path`, renamed onto it on success, removed on failure."""
    _remove_stale_partials(path)
    staging = path.with_name(f".{path.name}.{os.getpid()}.partial")
    with contextlib.suppress(FileNotFoundError):
        staging.unlink()
    try:
        yield staging
        staging.chmod(0o600)
        os.replace(staging, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            staging.unlink()


def _answers(db: Database, now: datetime) -> dict[str, list[dict[str, Any]]]:
    """The health model's answers as plain rows."""
    return {
        "health_jobs": [_job_row(job) for job in health.job_health(db, now)],
        "health_pending_retries": [
            _flat(item) for item in health.pending_retries(db, now, 100_000)
        ],
        "health_group_mappings": [_flat(item) for item in directory.group_mappings(db)],
        "health_sso_conflicts": [_flat(item) for item in directory.sso_conflicts(db)],
    }


def _job_row(job: JobHealth) -> dict[str, Any]:
    row = _flat(job.job)
    row.update(_flat(job, exclude={"job"}))
    return row


def _flat(model: object, exclude: set[str] | None = None) -> dict[str, Any]:
    """A model (or a dataclass answer) as one flat row.

    Nested models become prefixed columns, lists JSON text.
    """
    if isinstance(model, BaseModel):
        dumped = model.model_dump(mode="json", exclude=exclude)
    else:  # store.overview's answers are plain dataclasses: dumped the same way
        dumped = TypeAdapter(type(model)).dump_python(model, mode="json", exclude=exclude)
    row: dict[str, Any] = {}
    for name, value in dumped.items():
        if isinstance(value, dict):
            row.update({f"{name}_{key}": inner for key, inner in value.items()})
        elif isinstance(value, list | tuple):
            row[name] = json.dumps(value, ensure_ascii=False)
        else:
            row[name] = value
    row.pop("detail", None)
    return row


def export_sqlite(cache: Cache, path: Path, now: datetime, *, overwrite: bool = False) -> Path:
    """Write a consistent snapshot of the cache, plus the health answers, to `path`."""
    path = Path(path)
    _check_destination(path, overwrite)
    old_umask = os.umask(0o077)
    try:
        with _staging(path) as staging:
            with cache.reading(snapshot=False) as db:
                # VACUUM INTO reads one consistent snapshot, whatever a writer does meanwhile.
                db.execute("VACUUM INTO ?", [str(staging)])
            _add_health_tables(staging, now)
    except sqlite3.Error as error:
        raise ExportError(f"export failed: {error}") from error
    finally:
        os.umask(old_umask)
    return path


def _add_health_tables(path: Path, now: datetime) -> None:
    """Compute the health answers from the snapshot itself, so they agree with its tables."""
    conn = sqlite3.connect(path)
    try:
        snapshot = database(conn)
        answers = _answers(snapshot, now)
        with conn:
            for table, rows in answers.items():
                if rows:
                    snapshot.table(table).insert_all(rows, alter=True)
                else:
                    snapshot.execute(f"CREATE TABLE {table} (empty TEXT)")
            snapshot.execute("PRAGMA journal_mode=DELETE")
    finally:
        conn.close()


def view_rows(
    cache: Cache, view: str, now: datetime, since: datetime | None = None
) -> list[dict[str, Any]]:
    """The rows of one health answer or cache table (`--since` filters by its time column)."""
    health_name = f"health_{view}"
    with cache.reading() as db:
        if health_name in HEALTH_TABLES:
            return _answers(db, now)[health_name]
        if view not in RAW_VIEWS:
            raise ExportError(f"unknown view {view!r}; choose one of: {', '.join(view_names())}")
        sql = f"SELECT * FROM {view}"
        params: list[Any] = []
        if since is not None and view in TIME_COLUMNS:
            from store.models import iso_utc

            sql += f" WHERE {TIME_COLUMNS[view]} >= ?"
            params.append(iso_utc(since))
        rows = [dict(row) for row in db.query(sql, params)]
    for row in rows:
        row.pop("detail", None)
    return rows


def write_rows(
    rows: Iterable[dict[str, Any]], path: Path, fmt: ExportFormat, *, overwrite: bool = False
) -> Path:
    """Write rows as CSV, a JSON array or NDJSON, privately and atomically."""
    path = Path(path)
    _check_destination(path, overwrite)
    writers: dict[str, Callable[[list[dict[str, Any]], io.TextIOBase], None]] = {
        "csv": _write_csv,
        "json": lambda items, out: json.dump(items, out, ensure_ascii=False, indent=1),
        "ndjson": lambda items, out: out.writelines(
            json.dumps(item, ensure_ascii=False) + "\n" for item in items
        ),
    }
    if fmt not in writers:
        raise ExportError(f"unknown format {fmt!r}")
    items = list(rows)
    with _staging(path) as staging:
        fd = os.open(staging, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as out:
            writers[fmt](items, out)
    return path


def _write_csv(items: list[dict[str, Any]], out: io.TextIOBase) -> None:
    columns: dict[str, None] = {}
    for item in items:
        columns.update(dict.fromkeys(item))
    writer = csv.DictWriter(out, fieldnames=list(columns))
    writer.writeheader()
    for item in items:
        writer.writerow({key: _csv_safe(value) for key, value in item.items()})


def _csv_safe(value: object) -> object:
    """Defuse spreadsheet formulas in API text (a display name like "=HYPERLINK(...)")."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def ensure_readable_cache(path: Path) -> Cache:
    """Open the cache for an export, with a clear error when there is none."""
    try:
        return Cache.open_reader(path)
    except CacheError as error:
        raise ExportError(str(error)) from error
