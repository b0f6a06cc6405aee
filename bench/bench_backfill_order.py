"""Backfill order: seconds from `collect` start until the newest cycle is in the cache.

Run: .venv/bin/python -m bench.bench_backfill_order [--rate 5/10] [--days 30]

The simulator (`large`: 1,000,000 events over 23 days, own process, Graph's 5 requests/10 s
reporting limit enforced) is backfilled by scimwatch's provisioning collector with the default
polling config (30 days of retention, newest window first); the figure is the time until the
first batch committed, which holds the newest cycle (what the TUI's overview and cycles screen
show first). The run stops after that first batch.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from bench.bench_ingest import client, write_info
from bench.simproc import SimulatorProcess


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rate", default="5/10")
    parser.add_argument("--days", type=float, default=30)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="scimwatch-bench-"))
    with SimulatorProcess("large", rate_limits=args.rate == "5/10") as sim:
        info = write_info(sim, work)
        result = client(
            "bench.e2e_scimwatch",
            info,
            work / "c.db",
            args.days,
            "--rate",
            args.rate,
            "--max-seconds",
            "0",
        )
    if result["first_batch_seconds"] is None:
        print(
            f"| backfill order, large scenario, {args.rate} | no batch saved after {result['wall']:.1f} s: {result['error']} |"
        )
        return
    print(
        f"| backfill order, large scenario, {args.rate} | newest cycle in the cache after {result['first_batch_seconds']:.1f} s"
        f" (first batch: {result['events']:,} events, {result['cpu']:.1f} CPU-s) |"
    )


if __name__ == "__main__":
    main()
