"""Ingest benchmarks: the store path against raw executemany, and end to end against the peer.

Run: .venv/bin/python -m bench.bench_ingest [--events 100000] [--rounds 3] [--e2e-days 3]
     [--peer-days 0.05] [--skip-e2e] [--smoke]

1. Store path: `Cache.save_batch` of the same ProvisioningEvent records (batches of 1,000 = a
   page, and of 43,200 = the one-day backfill window the collector saves as one batch on the
   `large` scenario; one transaction each, events + cycles + object state) against raw `sqlite3.executemany` of the
   same rows (prebuilt tuples) into the same schema (migrated, 16 KB pages, WAL, NORMAL), in one
   transaction, and in one transaction per batch (as many commits as the store, which must
   commit each batch with its watermark). Fresh files every round; the three rotate;
   ratio = store speed / raw speed.
2. End to end: the simulator (`large`, in its own process, limits off) paged by scimwatch's
   provisioning collector into a cache (bench.e2e_scimwatch) and by the msgraph-sdk +
   sqlite-utils peer (bench.peer_msgraph), each in a fresh process, alternating, on the same
   window of events. CPU is the client process's CPU during the fetch+store loop.
Prints Markdown rows; bench/README.md records them.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from sqlite_utils import Database

from bench.simproc import SimulatorProcess
from bench.synthetic import START, events
from store.cache import WRITER_CACHE_KIB, Cache, _event_values
from store.models import Batch, ProvisioningEvent
from store.schema import migrations

PAGE = 1000


def store_seconds(path: Path, pages: list[list[ProvisioningEvent]]) -> float:
    with Cache.open_writer(path) as cache:
        started = time.perf_counter()
        for page in pages:
            cache.save_batch(Batch(source="graph.provisioning", records=list(page)), START, START)
        return time.perf_counter() - started


def raw_seconds(path: Path, rows: list[tuple[Any, ...]], batch: int | None = None) -> float:
    """Raw executemany: all rows in one transaction, or (with `batch`) one per batch."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA page_size=16384")
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    # The store's writer page cache too, so raw is not slowed by spilling (its checkpoints
    # stay SQLite's default, less often than the store's).
    conn.execute(f"PRAGMA cache_size=-{WRITER_CACHE_KIB}")
    migrations.apply(Database(conn))
    columns = list(ProvisioningEvent.model_fields)
    sql = f"INSERT INTO provisioning_events ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"
    step = batch or len(rows)
    started = time.perf_counter()
    for start in range(0, len(rows), step):
        conn.execute("BEGIN")
        conn.executemany(sql, rows[start : start + step])
        conn.execute("COMMIT")
    elapsed = time.perf_counter() - started
    conn.close()
    return elapsed


VARIANTS = ("raw", "raw_batched", "store")
"""raw: one transaction for all rows (the issue's baseline); raw_batched: one transaction per
batch, as many commits as the store makes; store: Cache.save_batch."""


def store_vs_raw(count: int, rounds: int, work: Path, batch: int = PAGE) -> dict[str, float]:
    records = list(events(count))
    pages = [records[i : i + batch] for i in range(0, count, batch)]
    rows = [_event_values(event) for event in records]
    rates: dict[str, list[float]] = {variant: [] for variant in VARIANTS}
    ratios: dict[str, list[float]] = {"raw": [], "raw_batched": []}
    for index in range(rounds):
        shift = index % len(VARIANTS)
        for variant in VARIANTS[shift:] + VARIANTS[:shift]:
            folder = work / f"{variant}{index}"
            folder.mkdir()
            if variant == "store":
                seconds = store_seconds(folder / "c.db", pages)
            else:
                seconds = raw_seconds(folder / "c.db", rows, batch if variant != "raw" else None)
            rates[variant].append(count / seconds)
            shutil.rmtree(folder)
        for baseline in ratios:
            ratios[baseline].append(rates["store"][-1] / rates[baseline][-1])
        print(
            f"  round {index + 1}: "
            + ", ".join(f"{variant} {rates[variant][-1]:,.0f}/s" for variant in VARIANTS)
            + f"; store/raw {ratios['raw'][-1]:.2f}, store/raw_batched {ratios['raw_batched'][-1]:.2f}",
            flush=True,
        )
    result = {variant: statistics.median(rates[variant]) for variant in VARIANTS}
    for baseline, values in ratios.items():
        result[f"ratio_{baseline}"] = statistics.median(values)
        result[f"ratio_{baseline}_min"] = min(values)
        result[f"ratio_{baseline}_max"] = max(values)
    return result


def client(module: str, info_file: Path, db: Path, days: float, *extra: str) -> dict[str, Any]:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            module,
            "--info",
            str(info_file),
            "--db",
            str(db),
            "--days",
            str(days),
            *extra,
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"{module} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def write_info(sim: SimulatorProcess, work: Path) -> Path:
    info = {key: value for key, value in sim.info.items() if key != "env"}
    info["now"] = sim.now.isoformat()
    path = work / "sim.json"
    path.write_text(json.dumps(info))
    return path


def end_to_end(rounds: int, e2e_days: float, peer_days: float, work: Path) -> None:
    with SimulatorProcess("large", rate_limits=False) as sim:
        info = write_info(sim, work)
        ours_big = []
        for index in range(rounds):
            result = client("bench.e2e_scimwatch", info, work / f"ours-big{index}.db", e2e_days)
            ours_big.append(result)
            print(
                f"  scimwatch {result['events']:,} events: {result['events'] / result['wall']:,.0f}/s, {result['cpu'] / result['events'] * 1e5:.1f} CPU-s/100k",
                flush=True,
            )
        speed, cpu = [], []
        for index in range(rounds):
            pair = {}
            for module in ("bench.e2e_scimwatch", "bench.peer_msgraph")[
                :: 1 if index % 2 == 0 else -1
            ]:
                pair[module] = client(module, info, work / f"{module}{index}.db", peer_days)
            ours, peer = pair["bench.e2e_scimwatch"], pair["bench.peer_msgraph"]
            assert ours["events"] == peer["events"], (ours, peer)
            speed.append(peer["wall"] / ours["wall"])
            cpu.append(peer["cpu"] / ours["cpu"])
            print(
                f"  round {index + 1} ({ours['events']:,} events): scimwatch {ours['events'] / ours['wall']:,.0f}/s"
                f" {ours['cpu']:.2f} CPU-s; peer {peer['events'] / peer['wall']:,.0f}/s {peer['cpu']:.1f} CPU-s;"
                f" {speed[-1]:.1f}x faster, {cpu[-1]:.1f}x less CPU",
                flush=True,
            )
    rates = [r["events"] / r["wall"] for r in ours_big]
    cpus = [r["cpu"] / r["events"] * 1e5 for r in ours_big]
    print(
        f"| end to end, scimwatch, {ours_big[0]['events']:,} events | {statistics.median(rates):,.0f} events/s ({min(rates):,.0f}-{max(rates):,.0f}); {statistics.median(cpus):.1f} CPU-s per 100k ({min(cpus):.1f}-{max(cpus):.1f}) |"
    )
    print(
        f"| end to end vs msgraph-sdk + sqlite-utils peer | {statistics.median(speed):.1f}x faster ({min(speed):.1f}-{max(speed):.1f}), {statistics.median(cpu):.1f}x less CPU ({min(cpu):.1f}-{max(cpu):.1f}) |"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--e2e-days", type=float, default=3.0)
    parser.add_argument("--peer-days", type=float, default=0.05)
    parser.add_argument("--skip-e2e", action="store_true")
    parser.add_argument(
        "--batch",
        type=int,
        nargs="+",
        default=[PAGE, 43_200],
        help="records per save_batch: a Graph page, and a backfill window of the large scenario (1 day)",
    )
    parser.add_argument(
        "--smoke", action="store_true", help="tiny sizes: checks the harness, not speed"
    )
    args = parser.parse_args()
    if args.smoke:
        args.events, args.rounds, args.e2e_days, args.peer_days, args.batch = (
            2000,
            1,
            0.01,
            0.005,
            [500],
        )
    work = Path(tempfile.mkdtemp(prefix="scimwatch-bench-"))
    try:
        for batch in args.batch:
            result = store_vs_raw(args.events, args.rounds, work, batch)
            print(
                f"| store path vs raw executemany, {args.events:,} events, save_batch of {batch:,} | raw {result['raw']:,.0f}/s,"
                f" raw one transaction per batch {result['raw_batched']:,.0f}/s, store {result['store']:,.0f}/s"
                f" | {result['ratio_raw']:.2f}x of raw ({result['ratio_raw_min']:.2f}-{result['ratio_raw_max']:.2f}),"
                f" {result['ratio_raw_batched']:.2f}x of raw per batch"
                f" ({result['ratio_raw_batched_min']:.2f}-{result['ratio_raw_batched_max']:.2f}) |",
                flush=True,
            )
        if not args.skip_e2e:
            end_to_end(args.rounds, args.e2e_days, args.peer_days, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
