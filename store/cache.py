"""The SQLite cache: open and migrate, save a poll's batch atomically, read what screens need.

One process writes a cache at a time (an exclusive lock on `<cache>.lock`); any number read it.
Each unit of work opens its own connection in the thread doing it, so readers in TUI workers
and the writer in a collector never share one.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlite_utils import Database

from store.cache_file import CacheError as CacheError
from store.cache_file import CacheLocked as CacheLocked
from store.cache_file import create_private_file as create_private_file
from store.cache_file import damage_marker as _damage_marker
from store.cache_file import ensure_private_dir as ensure_private_dir
from store.cache_file import header_problem as _header_problem
from store.cache_file import schema_stamp, take_writer_lock, writer_holder
from store.derived import fold_new_events, register_fold_functions
from store.models import (
    Batch,
    PollRun,
    ProvisioningEvent,
    Record,
    Snapshot,
    SourceFreshness,
    SourceName,
    iso_utc,
)
from store.overview import last_poll_id, read_freshness
from store.overview import parse_time as parse_time
from store.schema import migrations

BUSY_TIMEOUT_SECONDS = 10.0
"""How long a connection waits for a lock before failing; WAL readers never wait on writers."""
WRITER_CACHE_KIB = 64 * 1024
"""Page cache of a write unit (SQLite's default is 2 MiB, 125 pages of 16 KB). A batch dirties
pages of the random-keyed indexes and object state; when they do not fit, SQLite spills them to
the WAL mid-transaction and writes them again at commit, which made a save of a day's 43,200
events about half as fast (bench_ingest). Freed when the unit's connection closes."""
STAGING_CACHE_KIB = 4 * 1024
"""Page cache of a staged poll's temp tables: beyond it, staged rows wait in a temp file."""
QUICK_CHECK_BUDGET_SECONDS = 0.25
"""How long `open_writer` lets `PRAGMA quick_check` run: all of a small cache, the start of a
large one (a multi-GB cache would take seconds; the header check and the first use cover it)."""

log = logging.getLogger("scimwatch.store.cache")


def database(conn: sqlite3.Connection) -> Database:
    """sqlite-utils' view of a connection, without its plugins.

    scimwatch uses none; loading them scans every installed package's entry points (~40 ms of
    start-up, before the first paint) and would let any installed plugin run its code on the
    cache's connections.
    """
    return Database(conn, execute_plugins=False)


class _Corrupt(Exception):
    """The cache file is not a usable SQLite database (internal to `open_writer`)."""


def _bounded_quick_check(conn: sqlite3.Connection) -> None:
    """`PRAGMA quick_check`, abandoned (as passed) when it outruns its budget."""
    deadline = time.monotonic() + QUICK_CHECK_BUDGET_SECONDS
    conn.set_progress_handler(lambda: int(time.monotonic() > deadline), 10_000)
    try:
        rows = conn.execute("PRAGMA quick_check").fetchall()
    except sqlite3.OperationalError as error:
        if "interrupt" in str(error):
            return
        raise
    finally:
        conn.set_progress_handler(None, 0)
    if rows != [("ok",)]:
        raise _Corrupt("quick_check: " + "; ".join(str(row[0]) for row in rows[:3]))


def _is_corruption(error: sqlite3.DatabaseError) -> bool:
    """Whether SQLite says the file is damaged or not a database (not full, locked, I/O)."""
    code = getattr(error, "sqlite_errorcode", None)
    if code is not None:
        return code & 0xFF in (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB)
    text = str(error)
    return "malformed" in text or "not a database" in text


def _move_aside(path: Path) -> Path:
    """Rename a corrupt cache (and its -wal/-shm) to ``<name>.corrupt-<UTC time>``."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    target = path.with_name(f"{path.name}.corrupt-{stamp}")
    serial = 1
    while target.exists():
        serial += 1
        target = path.with_name(f"{path.name}.corrupt-{stamp}-{serial}")
    os.replace(path, target)
    for suffix in ("-wal", "-shm"):
        companion = path.with_name(path.name + suffix)
        with contextlib.suppress(FileNotFoundError):
            os.replace(companion, target.with_name(target.name + suffix))
    return target


class Cache:
    """A scimwatch cache file, opened as its single writer or as a reader."""

    def __init__(self, path: Path, *, read_only: bool) -> None:
        """Use `Cache.open_writer` or `Cache.open_reader` instead."""
        self.path = path
        self.read_only = read_only
        self._lock_fd: int | None = None
        self._keeper: sqlite3.Connection | None = None
        self._staged: dict[SourceName, StagedPoll] = {}
        self.recovered_from: Path | None = None
        """Where a corrupt cache found at open was moved before this one was rebuilt."""

    @classmethod
    def open_writer(cls, path: Path, *, quick_check: bool = True, lock: int | None = None) -> Cache:
        """Take the writer lock, create the file (0600) if needed, and migrate it.

        `quick_check=False` leaves the bounded `quick_check` (~0.5 s on a 1 GB cache) to a
        later `damage()` call: the TUI paints first and checks in the background. The header
        check and corruption errors met while migrating still move a damaged cache aside, and
        damage that `damage()` found leaves a marker that makes the next open check.

        A cache found corrupt or truncated (not a database, a failed bounded `quick_check`, or
        a corruption error while migrating) is moved aside to ``<name>.corrupt-<UTC time>``
        (with its ``-wal``/``-shm``) and rebuilt empty, once: the collectors fetch it again
        from the APIs. `recovered_from` then names where the old file went. Errors of the
        environment (disk full, I/O errors, permissions) never move a cache aside.

        `lock` is the writer lock when the caller took it already (`take_writer_lock`: the TUI
        takes it before its first frame and opens the cache after); the cache closes it.

        Raises:
            CacheLocked: another process is writing this cache.
            CacheError: the path cannot be used (a symlink, not a file, no permission), or a
                freshly rebuilt cache is still unusable.
        """
        path = Path(path)
        ensure_private_dir(path.parent)
        cache = cls(path, read_only=False)
        if lock is None:
            cache._take_lock()
        else:
            cache._lock_fd = lock
        try:
            create_private_file(path)
            # A damage() found last time makes this open check (and so move it aside).
            marker = _damage_marker(path)
            quick_check = quick_check or marker.exists()
            try:
                cache._prepare(quick_check=quick_check)
            except _Corrupt as corrupt:
                cache.recovered_from = _move_aside(path)
                log.warning(
                    "cache %s was unusable (%s); moved it to %s and started a new one",
                    path,
                    corrupt,
                    cache.recovered_from,
                )
                create_private_file(path)
                try:
                    cache._prepare()
                except _Corrupt as again:
                    raise CacheError(f"{path} is unusable even when rebuilt: {again}") from again
            marker.unlink(missing_ok=True)
            # An idle connection held for the writer's lifetime: without it each unit of work
            # is the last connection to close and pays a full WAL checkpoint (~18 ms a batch);
            # with it SQLite checkpoints automatically every 1000 pages. Never used to query.
            cache._keeper = sqlite3.connect(path, check_same_thread=False)
            cache._keeper.execute("SELECT count(*) FROM sqlite_master").fetchall()
        except BaseException:
            cache.close()
            raise
        return cache

    def _prepare(self, *, quick_check: bool = True) -> None:
        """Check the file is a sound SQLite database, set it up and migrate it.

        Raises:
            _Corrupt: the file is not a database, or damaged.
        """
        problem = _header_problem(self.path)
        if problem:
            raise _Corrupt(problem)
        try:
            with self._connection() as conn:
                if quick_check:
                    _bounded_quick_check(conn)
                # 16 KB pages: +26% insert speed and -19% size (reference/perf-baselines.md);
                # only takes effect on a new, empty file.
                conn.execute("PRAGMA page_size=16384")
                conn.execute("PRAGMA journal_mode=WAL")
                db = database(conn)
                pending = migrations.pending(db)
                if pending and migrations.applied(db):
                    log.warning(
                        "upgrading the cache %s to this version of scimwatch: once, and up to"
                        " a minute or two on a cache of a million events",
                        self.path,
                    )
                migrations.apply(db)
                # Directory answers stored by older rules (or never) are computed now, once,
                # not by every read until the next save (seconds each at 100,000 users).
                from store.directory import refresh_directory_answers

                with _transaction(conn):
                    refresh_directory_answers(conn)
                # Migrated by this version: a later start may read it before importing the
                # migrations (`store.cache_file.prepared_by_this_version`).
                conn.execute(f"PRAGMA user_version = {schema_stamp()}")
        except sqlite3.DatabaseError as error:
            if _is_corruption(error):
                raise _Corrupt(str(error)) from error
            raise

    @classmethod
    def open_reader(cls, path: Path) -> Cache:
        """Open an existing cache for reading; never writes, never migrates.

        Raises:
            CacheError: there is no cache at `path` yet.
        """
        path = Path(path)
        if not path.is_file():
            raise CacheError(f"no cache at {path} yet: run `scimwatch collect --once` first")
        return cls(path, read_only=True)

    def _take_lock(self) -> None:
        self._lock_fd = take_writer_lock(self.path)

    @staticmethod
    def writer_holder(path: Path) -> str | None:
        """Who holds the writer lock of the cache at `path`, or None when nobody does."""
        return writer_holder(path)

    def damage(self) -> str:
        """What a bounded `quick_check` finds wrong with the cache, or "" (see open_writer).

        Raises:
            CacheError: the cache cannot be read at all (I/O error, permissions).
        """
        try:
            with self._connection() as conn:
                _bounded_quick_check(conn)
        except _Corrupt as corrupt:
            problem = str(corrupt)
        except sqlite3.DatabaseError as error:
            if not _is_corruption(error):
                raise CacheError(f"{self.path}: {error}") from error
            problem = str(error)
        else:
            return ""
        if not self.read_only:  # the next open_writer checks it, and moves it aside
            create_private_file(_damage_marker(self.path))
        return problem

    def close(self) -> None:
        """Release the writer lock (readers hold nothing)."""
        for staged in list(self._staged.values()):
            staged.close()
        if self._keeper is not None:
            self._keeper.close()
            self._keeper = None
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def __enter__(self) -> Cache:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @contextlib.contextmanager
    def _connection(self) -> Iterator[sqlite3.Connection]:
        conn = self._connect()
        try:
            yield conn
        finally:
            conn.close()

    def _connect(self, *, check_same_thread: bool = True) -> sqlite3.Connection:
        conn = sqlite3.connect(
            f"{self.path.resolve().as_uri()}?mode=ro" if self.read_only else self.path,
            uri=self.read_only,
            timeout=BUSY_TIMEOUT_SECONDS,
            isolation_level=None,
            check_same_thread=check_same_thread,
        )
        if not self.read_only:
            # WAL + NORMAL: a commit survives any crash of the process; only a power loss may
            # drop the last commits, and then the watermark, saved with the data, drops too:
            # the next poll fetches them again (data is a cache of the APIs).
            conn.execute("PRAGMA synchronous=NORMAL")
            # 16 KB pages make the default 1000-page checkpoint a 16 MB WAL: keep it near 4 MB.
            conn.execute("PRAGMA wal_autocheckpoint=256")
            conn.execute(f"PRAGMA journal_size_limit={64 * 1024 * 1024}")
            conn.execute(f"PRAGMA cache_size=-{WRITER_CACHE_KIB}")
            register_fold_functions(conn)
        return conn

    @contextlib.contextmanager
    def reading(self, *, snapshot: bool = True) -> Iterator[Database]:
        """A connection for one unit of reading, in the calling thread.

        With `snapshot` (the default) every query of the unit sees the same commit: a screen
        never mixes two polls. Keep units short: an open read holds the WAL from shrinking.
        `snapshot=False` is for statements that cannot run in a transaction (VACUUM INTO).
        """
        with self._connection() as conn:
            if snapshot:
                conn.execute("BEGIN")
            try:
                yield database(conn)
            finally:
                if snapshot and conn.in_transaction:
                    conn.execute("COMMIT" if not self.read_only else "ROLLBACK")

    def _check_writer(self) -> None:
        if self.read_only:
            raise CacheError(f"{self.path} is open read-only")
        if self._lock_fd is None:
            raise CacheError(f"{self.path} is closed")

    @contextlib.contextmanager
    def _writing(self, staged: StagedPoll | None = None) -> Iterator[sqlite3.Connection]:
        """One `BEGIN IMMEDIATE` transaction: committed whole, or rolled back whole.

        On the `staged` poll's connection when given (its temp tables are only visible there).
        """
        self._check_writer()
        with (
            staged.connection() if staged is not None else self._connection() as conn,
            _transaction(conn),
        ):
            yield conn

    def staging(self, source: SourceName) -> StagedPoll:
        """Stage a poll's records page by page; the next `save_batch` of `source` saves them.

        Snapshot sources list ~200k rows at 100k users: staged as they arrive, they never sit
        in memory together as records. Close it once saved or failed (writer only).

        Raises:
            CacheError: `source` already has a staged poll (polls of a source never overlap).
        """
        self._check_writer()
        if source in self._staged:
            raise CacheError(f"{source} already has a staged poll")
        staged = StagedPoll(
            self._connect(check_same_thread=False), lambda: self._unstage(source, staged)
        )
        self._staged[source] = staged
        return staged

    def _unstage(self, source: SourceName, staged: StagedPoll) -> None:
        if self._staged.get(source) is staged:
            del self._staged[source]

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Database]:
        """A `BEGIN IMMEDIATE` write transaction (writer only), committed on success."""
        with self._writing() as conn:
            yield database(conn)

    def save_batch(self, batch: Batch, started_at: datetime, finished_at: datetime) -> PollRun:
        """Save a poll's records, snapshots, watermark and poll run in one transaction.

        Upserts are keyed by the APIs' ids, so saving the same batch twice changes nothing.
        Group mappings and SSO conflicts are recomputed in the same transaction when the batch
        changed anything they are computed from. Records staged for the source (`staging`) are
        saved with the batch's own.
        """
        poll_run = PollRun(
            source=batch.source,
            started_at=started_at,
            finished_at=finished_at,
            ok=True,
            records=len(batch.records),
            skipped=batch.skipped,
        )
        staged = self._staged.get(batch.source)
        if staged is not None:
            with self._writing(staged) as conn:
                return staged.save(conn, batch, poll_run)
        with self._writing() as conn:
            by_type = _group_by_type(batch.records)
            events = [
                record
                for record in by_type.pop(ProvisioningEvent, [])
                if isinstance(record, ProvisioningEvent)
            ]
            if events:
                _save_events(conn, _EVENT_VALUES, map(_event_values, events))
            for record_type, records in by_type.items():
                _upsert(conn, record_type, records)
            _prune_snapshots(
                conn,
                batch.snapshots,
                lambda record_type: _fill_kept(conn, record_type, by_type.get(record_type, [])),
            )
            return _finish_batch(conn, batch, poll_run)

    def record_failed_poll(self, poll_run: PollRun) -> PollRun:
        """Record a poll that failed; its data (none) and the old watermark stay as they were."""
        with self._writing() as conn:
            return _insert_poll_run(conn, poll_run)

    def watermark(self, source: SourceName) -> str | None:
        """The source's watermark, derived from what was saved with its data."""
        with self.reading() as db:
            rows = list(db.query("SELECT value FROM watermarks WHERE source = ?", [source]))
        return str(rows[0]["value"]) if rows else None

    def last_poll(self, source: SourceName) -> PollRun | None:
        """The most recent poll of a source, successful or not."""
        with self.reading() as db:
            rows = list(
                db.query(
                    "SELECT * FROM poll_runs WHERE source = ? ORDER BY id DESC LIMIT 1", [source]
                )
            )
        return _poll_run_from_row(rows[0]) if rows else None

    def freshness(
        self, now: datetime, intervals: Mapping[SourceName, timedelta]
    ) -> list[SourceFreshness]:
        """Per source: last success, last error, since when failing, and whether stale.

        Data is stale when the last successful poll is older than twice the source's interval.
        """
        with self.reading() as db:
            return read_freshness(db, now, intervals)

    def last_poll_id(self) -> int:
        """The newest poll run's id (0 before the first): it grows with every saved poll."""
        with self.reading() as db:
            return last_poll_id(db)

    def count(self, table: str) -> int:
        """Rows in one of the cache's tables."""
        _record_type_for(table)
        with self.reading() as db:
            rows = list(db.query(f"SELECT count(*) AS n FROM [{table}]"))
        return int(rows[0]["n"])

    def schema_version(self) -> list[str]:
        """Names of the applied migrations, oldest first."""
        with self.reading() as db:
            return [migration.name for migration in migrations.applied(db)]


@contextlib.contextmanager
def _transaction(conn: sqlite3.Connection, begin: str = "BEGIN IMMEDIATE") -> Iterator[None]:
    """A transaction on `conn`, committed if the block succeeds, else rolled back."""
    conn.execute(begin)
    try:
        yield
    except BaseException:
        # SQLite may already have rolled back (I/O error, disk full): keep its error.
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def _finish_batch(conn: sqlite3.Connection, batch: Batch, poll_run: PollRun) -> PollRun:
    """The end of every save: watermark, derived directory answers, the poll run."""
    if batch.watermark is not None:
        conn.execute(
            "INSERT INTO watermarks (source, value, complete, updated_at)"
            " VALUES (?, ?, ?, ?) ON CONFLICT(source) DO UPDATE SET"
            " value = excluded.value, complete = excluded.complete,"
            " updated_at = excluded.updated_at",
            (batch.source, batch.watermark, int(batch.complete), iso_utc(poll_run.finished_at)),
        )
    # Imported here: the health model reads through this module (parse_time).
    from store.directory import refresh_directory_answers

    refresh_directory_answers(conn)
    return _insert_poll_run(conn, poll_run)


class StagedPoll:
    """One poll's records, staged page by page in temp tables of the connection that saves them.

    Staging takes no lock on the cache and changes nothing readers see: temp tables belong to
    this connection (their pages spill to a temp file, not memory). `Cache.save_batch` applies
    them with the batch in one transaction; a poll that fails, or a process that dies, before
    it leaves the cache untouched (no snapshot is pruned from half a listing). Safe to call
    from any thread, one call at a time.
    """

    def __init__(self, conn: sqlite3.Connection, on_close: Callable[[], object]) -> None:
        self._conn: sqlite3.Connection | None = conn
        self._on_close = on_close
        self._lock = threading.Lock()
        self._staged: dict[type[Record], _StagedTable] = {}
        """The temp table of each record type staged so far, in first-staged order."""
        # On disk even where SQLite was built to keep temp tables in memory by default.
        conn.execute("PRAGMA temp_store=FILE")
        conn.execute(f"PRAGMA temp.cache_size=-{STAGING_CACHE_KIB}")

    def add(self, records: Iterable[Record]) -> None:
        """Stage records; a key staged again takes the new values and keeps its first place."""
        with self.connection() as conn:
            if conn.in_transaction:
                raise CacheError("staged poll is being saved")
            with _transaction(conn, "BEGIN"):
                self._add(conn, records)

    @contextlib.contextmanager
    def connection(self) -> Iterator[sqlite3.Connection]:
        """The staging connection, held by the calling thread meanwhile."""
        with self._lock:
            if self._conn is None:
                raise CacheError("staged poll is closed")
            yield self._conn

    def save(self, conn: sqlite3.Connection, batch: Batch, poll_run: PollRun) -> PollRun:
        """The staged records and `batch` saved in `conn`'s open transaction (save_batch)."""
        self._add(conn, batch.records)
        records = sum(
            conn.execute(f"SELECT count(*) FROM temp.{table.name}").fetchone()[0]
            for table in self._staged.values()
        )
        for record_type, table in self._staged.items():
            _apply_staged(conn, record_type, table)
        _prune_snapshots(conn, batch.snapshots, lambda kind: self._fill_kept(conn, kind))
        return _finish_batch(conn, batch, poll_run.model_copy(update={"records": records}))

    def close(self) -> None:
        """Drop what is staged (if not saved, nothing of it reaches the cache)."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
                self._on_close()

    def _add(self, conn: sqlite3.Connection, records: Iterable[Record]) -> None:
        for record_type, group in _group_by_type(list(records)).items():
            _stage(conn, self._table(conn, record_type), record_type, group)

    def _table(self, conn: sqlite3.Connection, record_type: type[Record]) -> _StagedTable:
        table = self._staged.get(record_type)
        if table is None:
            table = _StagedTable(f"_staged_{record_type.table}")
            columns = ", ".join([*record_type.model_fields, "_owned"])
            keys = ", ".join(record_type.primary_key)
            conn.execute(f"CREATE TEMP TABLE {table.name} ({columns}, PRIMARY KEY ({keys}))")
            self._staged[record_type] = table
        return table

    def _fill_kept(self, conn: sqlite3.Connection, record_type: type[Record]) -> None:
        _fill_kept(conn, record_type, ())
        table = self._staged.get(record_type)
        if table is None:
            return
        keys = record_type.primary_key
        padded = ", ".join([*keys, *("NULL" for _ in range(3 - len(keys)))])
        conn.execute(f"INSERT OR IGNORE INTO _kept_keys SELECT {padded} FROM temp.{table.name}")


@dataclasses.dataclass
class _StagedTable:
    """The temp table of a staged poll holding one record type's rows."""

    name: str
    owned: dict[tuple[str, ...], int] = dataclasses.field(default_factory=dict)
    """Each tuple of owned columns (`_group_by_owned`) staged so far, and the number its rows
    hold in the table's `_owned` column."""


def _stage(
    conn: sqlite3.Connection, table: _StagedTable, record_type: type[Record], records: list[Record]
) -> None:
    columns = (*record_type.model_fields, "_owned")
    sql = (
        f"INSERT INTO temp.{table.name} ({', '.join(columns)})"
        f" VALUES ({', '.join('?' for _ in columns)}) {_on_conflict(record_type, columns)}"
    )
    if record_type is ProvisioningEvent:
        events = (record for record in records if isinstance(record, ProvisioningEvent))
        conn.executemany(sql, ((*_event_values(event), None) for event in events))
        return
    for owned, group in _group_by_owned(record_type, records).items():
        number = table.owned.setdefault(owned, len(table.owned))
        conn.executemany(sql, ((*record.to_values(), number) for record in group))


def _apply_staged(conn: sqlite3.Connection, record_type: type[Record], table: _StagedTable) -> None:
    """`_save_events` or `_upsert` of the staged rows of one record type, in staging order."""
    columns = list(record_type.model_fields)
    select = f"SELECT {', '.join(columns)} FROM temp.{table.name}"
    if record_type is ProvisioningEvent:
        # WHERE true: without it SQLite would read ON CONFLICT as a join constraint.
        _save_events(conn, f"{select} WHERE true ORDER BY rowid")
        return
    for owned, number in table.owned.items():
        conn.execute(
            f"INSERT INTO {record_type.table} ({', '.join(columns)})"
            f" {select} WHERE _owned = ? ORDER BY rowid {_on_conflict(record_type, owned)}",
            (number,),
        )


def _on_conflict(record_type: type[Record], updated: tuple[str, ...]) -> str:
    keys = record_type.primary_key
    updates = ", ".join(f"{column} = excluded.{column}" for column in updated if column not in keys)
    return f"ON CONFLICT ({', '.join(keys)}) " + (
        f"DO UPDATE SET {updates}" if updates else "DO NOTHING"
    )


def _group_by_type(records: Sequence[Record]) -> dict[type[Record], list[Record]]:
    by_type: dict[type[Record], list[Record]] = {}
    for record in records:
        by_type.setdefault(type(record), []).append(record)
    return by_type


def _record_type_for(table: str) -> type[Record]:
    from store.models import RECORD_TYPES

    for record_type in RECORD_TYPES:
        if record_type.table == table:
            return record_type
    raise CacheError(f"unknown cache table {table!r}")


def _upsert(conn: sqlite3.Connection, record_type: type[Record], records: list[Record]) -> None:
    for owned, group in _group_by_owned(record_type, records).items():
        _upsert_columns(conn, record_type, group, owned)


def _group_by_owned(
    record_type: type[Record], records: list[Record]
) -> dict[tuple[str, ...], list[Record]]:
    """Records grouped by the columns they write over an existing row (in field order).

    Rows several sources describe (`Record.presence_flags`) are merged: each source updates
    only the fields its records set. Other rows take all of a record's fields.
    """
    columns = tuple(record_type.model_fields)
    if not record_type.presence_flags:
        return {columns: records}
    by_fields: dict[frozenset[str], list[Record]] = {}
    for record in records:
        by_fields.setdefault(frozenset(record.model_fields_set), []).append(record)
    return {
        tuple(column for column in columns if column in fields_set): group
        for fields_set, group in by_fields.items()
    }


def _upsert_columns(
    conn: sqlite3.Connection,
    record_type: type[Record],
    records: list[Record],
    updated: tuple[str, ...],
) -> None:
    columns = list(record_type.model_fields)
    sql = (
        f"INSERT INTO {record_type.table} ({', '.join(columns)})"
        f" VALUES ({', '.join('?' for _ in columns)}) {_on_conflict(record_type, updated)}"
    )
    conn.executemany(sql, (record.to_values() for record in records))


def _save_events(
    conn: sqlite3.Connection, rows_sql: str, rows: Iterable[tuple[Any, ...]] | None = None
) -> None:
    """Insert the events the cache lacks (Graph events are immutable) and fold them in.

    `rows_sql` gives the events in field order: `_EVENT_VALUES` run for each of `rows`, or a
    SELECT. The first occurrence of an id wins. Rows get increasing rowids, so the rows this
    insert added are those after the largest rowid before it; the derived tables are updated
    from them in SQL (store.derived.fold_new_events).
    """
    sql = (
        f"INSERT INTO provisioning_events ({', '.join(_EVENT_FIELDS)}) {rows_sql}"
        " ON CONFLICT (id) DO NOTHING"
    )
    after = conn.execute("SELECT coalesce(max(rowid), 0) FROM provisioning_events").fetchone()[0]
    inserted = (conn.execute(sql) if rows is None else conn.executemany(sql, rows)).rowcount
    if inserted > 0:
        fold_new_events(conn, after)


_EVENT_FIELDS = tuple(ProvisioningEvent.model_fields)
_EVENT_VALUES = f"VALUES ({', '.join('?' for _ in _EVENT_FIELDS)})"
_ACTIVITY_AT = _EVENT_FIELDS.index("activity_at")


def _event_values(event: ProvisioningEvent) -> tuple[Any, ...]:
    """`event.to_values()` for the hot path: only `activity_at` needs converting."""
    values = list(event.__dict__.values())
    values[_ACTIVITY_AT] = iso_utc(values[_ACTIVITY_AT])
    return tuple(values)


def _prune_snapshots(
    conn: sqlite3.Connection,
    snapshots: Iterable[Snapshot],
    fill_kept: Callable[[type[Record]], None],
) -> None:
    """Apply each snapshot of a batch: delete (or, with `clear`, unflag) what it did not bring.

    The keys a table's records brought back are written once per table into an indexed temp
    table, whatever the number of snapshots: Harness SCIM sends one snapshot per group, and
    rebuilding the kept keys for each (unindexed) made a 100k-user save quadratic.
    `fill_kept(record_type)` writes them (`_fill_kept` from records, or from staged rows).
    """
    per_type: dict[type[Record], list[Snapshot]] = {}
    for snapshot in snapshots:
        per_type.setdefault(_record_type_for(snapshot.table), []).append(snapshot)
    for record_type, table_snapshots in per_type.items():
        fill_kept(record_type)
        for snapshot in table_snapshots:
            _prune_snapshot(conn, record_type, snapshot)
        if any(snapshot.clear for snapshot in table_snapshots):
            # Rows no source lists any more go, once per table (a scan of it).
            unlisted = " AND ".join(f"{flag} = 0" for flag in record_type.presence_flags)
            conn.execute(f"DELETE FROM {record_type.table} WHERE {unlisted}")


def _fill_kept(conn: sqlite3.Connection, record_type: type[Record], kept: Iterable[Record]) -> None:
    conn.execute(
        "CREATE TEMP TABLE IF NOT EXISTS _kept_keys (k1, k2, k3, PRIMARY KEY (k1, k2, k3))"
    )
    conn.execute("DELETE FROM _kept_keys")
    rows = ((*record.key_values(), None, None)[:3] for record in kept)
    conn.executemany("INSERT OR IGNORE INTO _kept_keys VALUES (?, ?, ?)", rows)


def _prune_snapshot(
    conn: sqlite3.Connection, record_type: type[Record], snapshot: Snapshot
) -> None:
    """Delete or unflag the snapshot's rows whose keys are not in `_kept_keys`.

    Rows left with no flag set are deleted by `_prune_snapshots`, once per table.
    """
    keys = record_type.primary_key
    for column in [*snapshot.where, *([snapshot.clear] if snapshot.clear else [])]:
        if column not in record_type.model_fields:
            raise CacheError(f"{record_type.table} has no column {column!r}")
    if snapshot.clear and snapshot.clear not in record_type.presence_flags:
        raise CacheError(f"{snapshot.clear!r} is not a presence flag of {record_type.table}")
    matches_kept = " AND ".join(
        f"_kept_keys.k{index} = {record_type.table}.{key}" for index, key in enumerate(keys, 1)
    )
    conditions = [f"NOT EXISTS (SELECT 1 FROM _kept_keys WHERE {matches_kept})"]
    conditions += [f"{column} = ?" for column in snapshot.where]
    where = " AND ".join(conditions)
    params = tuple(snapshot.where.values())
    if snapshot.clear is None:
        conn.execute(f"DELETE FROM {record_type.table} WHERE {where}", params)
        return
    conn.execute(f"UPDATE {record_type.table} SET {snapshot.clear} = 0 WHERE {where}", params)


def _insert_poll_run(conn: sqlite3.Connection, poll_run: PollRun) -> PollRun:
    cursor = conn.execute(
        "INSERT INTO poll_runs (source, started_at, finished_at, ok, error, error_kind,"
        " records, skipped) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (
            poll_run.source,
            iso_utc(poll_run.started_at),
            iso_utc(poll_run.finished_at),
            int(poll_run.ok),
            poll_run.error,
            poll_run.error_kind,
            poll_run.records,
            poll_run.skipped,
        ),
    )
    return poll_run.model_copy(update={"id": cursor.lastrowid})


def _poll_run_from_row(row: Mapping[str, Any]) -> PollRun:
    return PollRun(
        id=row["id"],
        source=row["source"],
        started_at=parse_time(row["started_at"]),
        finished_at=parse_time(row["finished_at"]),
        ok=bool(row["ok"]),
        error=row["error"],
        error_kind=row["error_kind"],
        records=row["records"],
        skipped=row["skipped"],
    )
