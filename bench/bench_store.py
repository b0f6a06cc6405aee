"""Store benchmarks: ingest against raw executemany, size per event, read latency at scale.

Run: .venv/bin/python bench/bench_store.py [--events 1000000] [--out bench/results]
Figures are written to stdout as a Markdown table; bench/README.md records them.
"""

from __future__ import annotations

import argparse
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

from bench.synthetic import START, events
from store import health
from store.cache import Cache
from store.models import Batch, ProvisioningEvent, iso_utc
from store.schema import _INITIAL_TABLES

PAGE = 1000


def ingest_store(path: Path, count: int) -> float:
    """Seconds to save `count` events through Cache.save_batch, one batch per Graph page."""
    generated = events(count)
    pages = []
    while page := list(islice(generated, PAGE)):
        pages.append(page)
    start = time.perf_counter()
    with Cache.open_writer(path) as cache:
        for page in pages:
            cache.save_batch(Batch(source="graph.provisioning", records=page), START, START)
    return time.perf_counter() - start


def ingest_raw(path: Path, count: int) -> float:
    """Seconds for raw sqlite3 executemany of the same rows, one transaction (the limit)."""
    rows = [tuple(e.to_row().values()) for e in events(count)]
    columns = list(ProvisioningEvent.model_fields)
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    for statement in _INITIAL_TABLES.split(";"):
        if "provisioning_events" in statement and statement.strip():
            conn.execute(statement)
    start = time.perf_counter()
    conn.execute("BEGIN")
    conn.executemany(
        f"INSERT INTO provisioning_events ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})",
        rows,
    )
    conn.execute("COMMIT")
    elapsed = time.perf_counter() - start
    conn.close()
    return elapsed


def latency(function: Callable[[], Any], runs: int = 30) -> tuple[float, float]:
    """p50 and p99 in milliseconds (each run on a fresh connection, as screens do)."""
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        function()
        times.append((time.perf_counter() - start) * 1000)
    times.sort()
    return statistics.median(times), times[min(len(times) - 1, int(len(times) * 0.99))]


def reads(path: Path) -> dict[str, tuple[float, float]]:
    cache = Cache.open_reader(path)
    now = START + timedelta(days=30)
    with cache.reading() as db:
        newest = health.recent_events(db, 1)[0]
    middle = (iso_utc(newest.activity_at - timedelta(days=15)), "")

    def run(fn: Callable[..., Any], *args: Any) -> Callable[[], Any]:
        def call() -> Any:
            with cache.reading() as db:
                return fn(db, *args)

        return call

    cycle = run(health.recent_cycles, 1)()[0]
    return {
        "recent_events (first page of 200)": latency(run(health.recent_events, 200)),
        "recent_events (keyset page mid-way)": latency(run(health.recent_events, 200, middle)),
        "recent_events (failures only)": latency(run(health.recent_events, 200, None, "failure")),
        "recent_cycles (100)": latency(run(health.recent_cycles, 100)),
        "cycle_events (one cycle)": latency(run(health.cycle_events, cycle.job_id, cycle.cycle_id)),
        "pending_retries": latency(run(health.pending_retries, now)),
        "pending_counts": latency(run(health.pending_counts)),
        "job_health": latency(run(health.job_health, now)),
        "overview": latency(run(health.overview, now, ())),
        "group_mappings": latency(run(health.group_mappings)),
        "sso_conflicts": latency(run(health.sso_conflicts)),
        "freshness": latency(
            lambda: cache.freshness(now, {"graph.provisioning": timedelta(minutes=2)})
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--ingest-events", type=int, default=100_000)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="scimwatch-bench-"))
    try:
        raw = ingest_raw(work / "raw.db", args.ingest_events)
        stored = ingest_store(work / "store.db", args.ingest_events)
        print(
            f"| ingest {args.ingest_events:,} events | raw executemany {args.ingest_events / raw:,.0f}/s"
            f" | store path {args.ingest_events / stored:,.0f}/s | ratio {raw / stored:.2f}x slower"
            f" ({stored / raw * 100:.0f}% of raw time; store/raw speed = {raw / stored:.2f}) |"
        )
        big = work / "big.db"
        if args.events != args.ingest_events:
            ingest_store(big, args.events)
        else:
            shutil.copy(work / "store.db", big)
        size = big.stat().st_size + sum(p.stat().st_size for p in work.glob("big.db-*"))
        print(f"| cache size at {args.events:,} events | {size / args.events:,.0f} bytes/event |")
        for name, (p50, p99) in reads(big).items():
            print(f"| {name} | p50 {p50:.2f} ms | p99 {p99:.2f} ms |")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
