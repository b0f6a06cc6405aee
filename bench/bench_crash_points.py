"""Crash points, long form: SIGKILL at every write statement of a backfill, then resume.

For each statement N of an uninterrupted `collect --once` of the provisioning log (simulated
tenant, real HTTPS, real processes): run the worker with CRASH_AT=N, then to completion, and
judge the cache (lost, duplicated, integrity_check). Then the same for the broken
`watermark_first` save, which must show losses. tests/test_reliability/test_crash_points.py runs
four of these points in CI.

    .venv/bin/python -m bench.bench_crash_points [--step 1] [--variant atomic|watermark_first|both]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from collectors.simulator import ManualClock, SimulatedTenant
from tests.test_reliability.oracle import (
    expected_event_ids,
    judge,
    run_module,
    statements_run,
    worker_env,
)

WORKER = "tests.test_reliability.crash_worker"


def sweep(tenant: SimulatedTenant, variant: str, step: int) -> None:
    expected = expected_event_ids(tenant)
    with tempfile.TemporaryDirectory() as scratch:
        total = statements_run(
            run_module(WORKER, worker_env(tenant, Path(scratch) / "probe.db"))[1]
        )
    started = time.monotonic()
    points = range(1, total + 1, step)
    lost_runs = dup_runs = corrupt = 0
    lost_events = 0
    for point in points:
        with tempfile.TemporaryDirectory() as scratch:
            cache = Path(scratch) / "cache.db"
            run_module(WORKER, worker_env(tenant, cache, SAVE_VARIANT=variant, CRASH_AT=str(point)))
            status, _ = run_module(WORKER, worker_env(tenant, cache, SAVE_VARIANT=variant))
            verdict = judge(cache, expected)
        lost_runs += verdict.lost > 0
        lost_events += verdict.lost
        dup_runs += verdict.duplicated > 0
        corrupt += verdict.integrity != "ok" or status != 0
    print(
        f"{variant}: {len(points)} crash points of {total} write statements, "
        f"{len(expected)} events: runs with loss {lost_runs} ({lost_events} events), "
        f"runs with duplicates {dup_runs}, corrupt or failed {corrupt}, "
        f"wall {time.monotonic() - started:.0f} s"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--step", type=int, default=1)
    parser.add_argument("--variant", default="both")
    args = parser.parse_args()
    variants = ["atomic", "watermark_first"] if args.variant == "both" else [args.variant]
    with SimulatedTenant("incident", seed=11, clock=ManualClock()) as tenant:
        tenant.faults.rate_limits_enabled = False
        for variant in variants:
            sweep(tenant, variant, args.step)


if __name__ == "__main__":
    main()
