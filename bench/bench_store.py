"""Cache size and read latency at scale: 1,000,000 events and a 100,000-user tenant.

Run: .venv/bin/python -m bench.bench_store [--events 1000000] [--users 100000] [--runs 50]
     [--keep bench/cache-1m.db] [--cache a-filled-cache.db [--filter-only [--cold]]] [--smoke]

Fills a fresh cache through `Cache.save_batch` (synthetic events of bench.synthetic over
`--users` identities, in one-day batches of 43,200 as the collector saves a backfill), then a
directory of that many users: Entra users, 1,000 groups assigned to the NextGen app, one direct
membership per user, Harness users (SCIM) and groups with the same members, one sync job.
Size: bytes on disk (main file after a WAL checkpoint; every table and index) per event, and the
growth the directory adds. Reads: every health-model read behind a screen, `check` and the
overview, each on a new connection as screens do; p50 and p99 over `--runs` runs.
`--filter-only`: the Events text filter alone, for every prefix of a user name and other texts;
`--cold` evicts the copy from the OS page cache (posix_fadvise) before each run.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import timedelta
from itertools import islice
from pathlib import Path
from typing import Any

from bench.synthetic import JOB_ID, SP_ID, START, _uuid, events
from store import health
from store.cache import Cache
from store.check import evaluate
from store.directory import group_mappings, sso_conflicts
from store.models import (
    AppRoleAssignment,
    Batch,
    EntraGroup,
    EntraMembership,
    EntraUser,
    HarnessGroup,
    HarnessGroupMember,
    HarnessUser,
    Record,
    SyncJob,
)

WINDOW = 43_200
GROUPS = 1_000


def disk_bytes(path: Path) -> int:
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    return sum(
        p.stat().st_size for p in path.parent.glob(path.name + "*") if not p.name.endswith(".lock")
    )


def save(cache: Cache, source: str, records: list[Record]) -> None:
    for start in range(0, len(records), WINDOW):
        cache.save_batch(
            Batch(source=source, records=records[start : start + WINDOW]), START, START
        )  # type: ignore[arg-type]


def directory(users: int) -> tuple[list[Record], list[Record], list[str]]:
    import random

    rng = random.Random(11)
    user_ids = [_uuid(rng) for _ in range(users)]
    group_ids = [_uuid(rng) for _ in range(GROUPS)]
    entra: list[Record] = [
        EntraUser(
            id=uid,
            user_principal_name=f"user{i}@contoso.example",
            mail=f"user{i}@contoso.example",
            display_name=f"User {i}",
            account_enabled=True,
        )
        for i, uid in enumerate(user_ids)
    ]
    entra += [
        EntraGroup(id=gid, display_name=f"Team {g:04d}", security_enabled=True)
        for g, gid in enumerate(group_ids)
    ]
    entra += [
        EntraMembership(group_id=group_ids[i % GROUPS], member_id=uid, direct=True)
        for i, uid in enumerate(user_ids)
    ]
    entra += [
        AppRoleAssignment(
            id=_uuid(rng),
            app="nextgen",
            resource_id=SP_ID,
            principal_id=gid,
            principal_type="Group",
            principal_name=f"Team {g:04d}",
            app_role_id=_uuid(rng),
        )
        for g, gid in enumerate(group_ids)
    ]
    harness: list[Record] = [
        HarnessUser(
            id=f"hu{i:06d}",
            email=f"user{i}@contoso.example",
            name=f"User {i}",
            external_id=uid,
            active=True,
            in_scim=True,
        )
        for i, uid in enumerate(user_ids)
    ]
    harness += [
        HarnessGroup(
            identifier=f"Team_{g:04d}", name=f"Team {g:04d}", externally_managed=True, in_scim=True
        )
        for g in range(GROUPS)
    ]
    harness += [
        HarnessGroupMember(group_identifier=f"Team_{i % GROUPS:04d}", user_id=f"hu{i:06d}")
        for i in range(users)
    ]
    return entra, harness, user_ids


def fill(path: Path, count: int, users: int) -> dict[str, float]:
    started = time.perf_counter()
    with Cache.open_writer(path) as cache:
        generated = events(count, users=users)
        while page := list(islice(generated, WINDOW)):
            cache.save_batch(Batch(source="graph.provisioning", records=page), START, START)
        events_seconds = time.perf_counter() - started
        events_bytes = disk_bytes(path)
        entra, harness, _ = directory(users)
        cache.save_batch(
            Batch(
                source="graph.jobs",
                records=[
                    SyncJob(
                        service_principal_id=SP_ID,
                        job_id=JOB_ID,
                        schedule_state="Active",
                        interval_seconds=2400,
                        status_code="Active",
                        observed_at=START,
                    )
                ],
            ),
            START,
            START,
        )
        save(cache, "graph.directory", entra)
        save(cache, "harness.scim", harness)
    return {
        "events_seconds": events_seconds,
        "events_bytes": events_bytes,
        "total_bytes": disk_bytes(path),
    }


def reuse(source: Path, path: Path) -> None:
    """Copy a filled cache (with its WAL, if any) and migrate the copy."""
    shutil.copy(source, path)
    wal = source.with_name(source.name + "-wal")
    if wal.exists():
        shutil.copy(wal, path.with_name(path.name + "-wal"))
    started = time.perf_counter()
    with Cache.open_writer(path):
        pass
    print(f"  copied {source} and migrated it in {time.perf_counter() - started:.1f} s", flush=True)


def drop_from_os_cache(path: Path) -> None:
    """Evict the cache file's pages from the OS page cache (this file only: no root needed)."""
    for file in (path, path.with_name(path.name + "-wal")):
        if file.exists():
            fd = os.open(file, os.O_RDONLY)
            try:
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            finally:
                os.close(fd)


def latency(
    function: Callable[[], Any], runs: int, cold: Path | None = None
) -> tuple[float, float]:
    """p50 and p99 of `runs` calls; with `cold`, that file leaves the OS page cache first."""
    times = []
    function()  # warm the OS page cache, as a running TUI has it
    for _ in range(runs):
        if cold is not None:
            drop_from_os_cache(cold)
        start = time.perf_counter()
        function()
        times.append((time.perf_counter() - start) * 1000)
    times.sort()
    return statistics.median(times), times[min(len(times) - 1, round(len(times) * 0.99) - 1)]


FILTER_TEXTS = (
    *("user12348"[:end] for end in range(1, 10)),
    "Team 0042",  # a group name (the synthetic events are users': matches nothing)
    "SystemForCross",  # an error code
    "4f1c2a9e",  # a fragment of the job id (not a column the filter matches)
    "nothing-matches",
    "zq",  # too short for the trigram index, and in no event
    "%",  # a LIKE wildcard, literally: in no event
)
"""Texts typed into the Events filter: every prefix of a user name, and other realistic ones."""


def filter_reads(path: Path, runs: int, cold: bool) -> dict[str, tuple[float, float]]:
    """The Events screen's text filter (a page of 201 rows, as the table asks) per text."""
    cache = Cache.open_reader(path)
    results = {}
    for text in FILTER_TEXTS:

        def call(text: str = text) -> Any:
            with cache.reading() as db:
                return health.recent_events(db, 201, None, None, text)

        name = f"recent_events, text filter {text!r}{' (cold OS cache)' if cold else ''}"
        results[name] = latency(call, runs, path if cold else None)
        p50, p99 = results[name]
        print(f"  {name}: p50 {p50:.2f} ms, p99 {p99:.2f} ms", flush=True)
    return results


def reads(path: Path, runs: int) -> dict[str, tuple[float, float]]:
    cache = Cache.open_reader(path)
    with cache.reading() as db:
        newest = health.recent_events(db, 1)[0]
        failing = health.recent_events(db, 1, None, "failure")[0]
    now = newest.activity_at + timedelta(minutes=5)
    middle = ((newest.activity_at - timedelta(days=10)).isoformat().replace("+00:00", "Z"), "")
    intervals = {"graph.provisioning": timedelta(minutes=1)}

    def run(fn: Callable[..., Any], *args: Any) -> Callable[[], Any]:
        def call() -> Any:
            with cache.reading() as db:
                return fn(db, *args)

        return call

    def check() -> Any:
        freshness = cache.freshness(now, intervals)
        with cache.reading() as db:
            return evaluate(db, now, freshness)

    cycle = run(health.recent_cycles, 1)()[0]
    measured = {
        "overview (overview screen)": run(health.overview, now, ()),
        "job_health": run(health.job_health, now),
        "recent_cycles, 100 (cycles screen)": run(health.recent_cycles, 100),
        "cycle_events, one cycle (cycle drill-in)": run(
            health.cycle_events, cycle.job_id, cycle.cycle_id
        ),
        "recent_events, newest 200 (events screen)": run(health.recent_events, 200),
        "recent_events, keyset page 10 days back": run(health.recent_events, 200, middle),
        "recent_events, failures only": run(health.recent_events, 200, None, "failure"),
        "recent_events, text filter (user name)": run(
            health.recent_events, 200, None, None, "user4711@"
        ),
        "event_by_id (detail modal)": run(health.event_by_id, failing.id),
        "pending_retries, page of 200 (retries screen)": run(health.pending_retries, now, 200),
        "pending_retries, 1000 (alerts, export)": run(health.pending_retries, now),
        "pending_counts": run(health.pending_counts),
        "group_mappings (groups screen)": run(group_mappings),
        "sso_conflicts (SSO screen)": run(sso_conflicts),
        "lookup_user (user lookup)": run(health.lookup_user, "user4711@contoso.example", now),
        "lookup_user, part of a name (one user)": run(health.lookup_user, "User 47113", now),
        "lookup_user, part of a name (list of 20)": run(health.lookup_user, "user 47", now),
        "lookup_user, part of a name (nobody)": run(health.lookup_user, "walter", now),
        "coverage_gaps": run(health.coverage_gaps),
        "freshness (status bar)": lambda: cache.freshness(now, intervals),
        "check (evaluate + freshness)": check,
    }
    results = {}
    for name, function in measured.items():
        results[name] = latency(function, runs)
        p50, p99 = results[name]
        print(f"  {name}: p50 {p50:.2f} ms, p99 {p99:.2f} ms", flush=True)
    return results


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument(
        "--keep", type=Path, help="keep the filled cache here (for the TUI benchmarks)"
    )
    parser.add_argument(
        "--cache",
        type=Path,
        help="measure reads on a copy of this filled cache (migrated; the original is not"
        " touched) instead of filling one; --events/--users are then ignored",
    )
    parser.add_argument(
        "--smoke", action="store_true", help="tiny sizes: checks the harness, not speed"
    )
    parser.add_argument(
        "--filter-only",
        action="store_true",
        help="with --cache: only the Events text filter, per text (FILTER_TEXTS)",
    )
    parser.add_argument(
        "--cold",
        action="store_true",
        help="with --filter-only: drop the copy from the OS page cache before each run",
    )
    args = parser.parse_args()
    if args.smoke:
        args.events, args.users, args.runs = 3000, 500, 3
    work = Path(tempfile.mkdtemp(prefix="scimwatch-bench-"))
    path = work / "cache.db"
    try:
        if args.cache:
            reuse(args.cache, path)
            measured = (
                filter_reads(path, args.runs, args.cold)
                if args.filter_only
                else reads(path, args.runs)
            )
            for name, (p50, p99) in measured.items():
                print(f"| {name} | p50 {p50:.2f} ms | p99 {p99:.2f} ms |")
            return
        filled = fill(path, args.events, args.users)
        print(
            f"| fill {args.events:,} events through save_batch | {args.events / filled['events_seconds']:,.0f} events/s |"
        )
        print(
            f"| cache size, {args.events:,} events (all tables and indexes) | {filled['events_bytes'] / args.events:,.0f} bytes/event ({filled['events_bytes'] / 1e6:,.0f} MB) |"
        )
        print(
            f"| + directory of {args.users:,} users, {GROUPS:,} groups, memberships both sides | {(filled['total_bytes'] - filled['events_bytes']) / 1e6:,.1f} MB |"
        )
        for name, (p50, p99) in reads(path, args.runs).items():
            print(f"| {name} | p50 {p50:.2f} ms | p99 {p99:.2f} ms |")
        if args.keep:
            shutil.copy(path, args.keep)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
