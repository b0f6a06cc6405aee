"""scimwatch's own path, end to end: the provisioning collector paging the simulator into a cache.

HTTP (httpx, the collector's retry/pacing policy), parse + validate (lenient wire models), and
store (Cache.save_batch: events, cycles, object state), as `scimwatch collect` does, backfilling
everything newer than `--days` days before the scenario's now.

Run alone: .venv/bin/python -m bench.e2e_scimwatch --info sim.json --db /tmp/sw.db --days 3
[--rate 5/10] (bench.bench_ingest / bench.bench_ratelimit write the info file).
Prints one JSON line: events, wall seconds, CPU seconds of this process during the backfill,
polls, and the seconds from start until the newest cycle was in the cache.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sqlite3
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from collectors.base import CollectorError
from collectors.config import GraphConnection, PollingConfig, build_collectors
from collectors.runner import poll_source
from store.cache import Cache


def connection(info: dict[str, Any]) -> GraphConnection:
    return GraphConnection(
        tenant_id=info["tenant_id"],
        client_id=info["client_id"],
        client_secret=SecretStr(info["client_secret"]),
        login_url=info["graph_url"],
        graph_url=info["graph_url"],
        nextgen_sp_id=info["nextgen_sp_id"],
        firstgen_sp_id=info["firstgen_sp_id"],
        ca_bundle=Path(info["ca_bundle"]),
    )


def newest_cycle(path: Path) -> str | None:
    conn = sqlite3.connect(path)
    try:
        row = conn.execute("SELECT cycle_id FROM cycles ORDER BY ended_at DESC LIMIT 1").fetchone()
        return row[0] if row else None
    finally:
        conn.close()


async def run(
    info: dict[str, Any], db_path: Path, days: float, rate: tuple[int, float], max_seconds: float
) -> dict[str, Any]:
    now = datetime.fromisoformat(info["now"])
    polling = PollingConfig(retention=timedelta(days=days))
    built = build_collectors(
        connection(info), None, polling, clock=lambda: now, reporting_rate=rate
    )
    collector = built.collectors[0]
    assert collector.source == "graph.provisioning"
    count = polls = 0
    first_batch_at: float | None = None
    first_cycle: str | None = None
    error = ""
    cpu, wall = time.process_time(), time.perf_counter()
    with Cache.open_writer(db_path) as cache:
        while True:
            try:
                outcome = await poll_source(collector, cache, lambda: now)
            except CollectorError as failure:
                error = str(failure)
                break
            polls += 1
            count += outcome.poll_run.records
            if first_batch_at is None and outcome.poll_run.records:
                first_batch_at = time.perf_counter() - wall
                first_cycle = newest_cycle(db_path)
            if outcome.complete or time.perf_counter() - wall > max_seconds:
                break
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    await built.aclose()
    return {
        "events": count,
        "wall": wall,
        "cpu": cpu,
        "polls": polls,
        "first_batch_seconds": first_batch_at,
        "first_cycle": first_cycle,
        "error": error,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--info", type=Path, required=True)
    parser.add_argument("--db", type=Path, required=True)
    parser.add_argument("--days", type=float, default=3.0)
    parser.add_argument(
        "--rate", default="1000000/1", help="requests/seconds of Graph's reporting limit"
    )
    parser.add_argument("--max-seconds", type=float, default=1e9)
    args = parser.parse_args()
    requests, seconds = args.rate.split("/")
    info = json.loads(args.info.read_text())
    result = asyncio.run(
        run(info, args.db, args.days, (int(requests), float(seconds)), args.max_seconds)
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
