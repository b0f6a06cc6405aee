"""CPU and peak memory of a save that changes the directory, at 100,000 users.

Run: .venv/bin/python -m bench.bench_directory_answers [--users 100000] [--rounds 5]
     [--tree /path/to/other/checkout ...]

Builds one cache (bench_store's directory: `--users` Entra and Harness users, 1,000 groups
assigned to the NextGen app with the same members on both sides; plus every other group
assigned to the FirstGen app, so the SSO answers compare both scopes). Then, per round and per
tree (this checkout and each `--tree`: a directory holding another version's `store`
package, e.g. from `git archive <commit> store | tar -x -C <dir>`; alternating), a fresh process copies the cache, opens it
as the writer and saves, through `Cache.save_batch`, a failure event of one assigned group (what
a provisioning poll saves), then that group renamed (a directory poll): each save brings the
stored group mappings and SSO conflicts up to date. Reports the save's wall time, CPU time, and its peak
RSS above the RSS before it (VmHWM after resetting it, /proc/self/clear_refs).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def build(path: Path, users: int) -> None:
    from bench.bench_store import directory, save
    from bench.synthetic import SP_ID, _uuid
    from store.cache import Cache
    from store.models import AppRoleAssignment, EntraGroup, Record

    entra, harness, _ = directory(users)
    groups = [record for record in entra if isinstance(record, EntraGroup)]
    import random

    rng = random.Random(5)
    firstgen: list[Record] = [
        AppRoleAssignment(
            id=_uuid(rng),
            app="firstgen",
            resource_id=SP_ID,
            principal_id=group.id,
            principal_type="Group",
            principal_name=group.display_name,
            app_role_id=_uuid(rng),
        )
        for group in groups[::2]
    ]
    with Cache.open_writer(path) as cache:
        save(cache, "graph.directory", entra + firstgen)
        save(cache, "harness.scim", harness)


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def child(base: Path) -> None:
    """One measured save, in this process: prints a JSON line."""
    from datetime import UTC, datetime

    from bench.synthetic import JOB_ID, SP_ID
    from store.cache import Cache
    from store.models import Batch, EntraGroup, ProvisioningEvent

    now = datetime.now(UTC)
    with tempfile.TemporaryDirectory() as work:
        path = Path(work) / "cache.db"
        shutil.copy(base, path)
        with Cache.open_writer(path, quick_check=False) as cache:
            with cache.reading() as db:
                group_id = db.execute("SELECT principal_id FROM app_role_assignments").fetchone()[0]
            event = ProvisioningEvent(
                id="evt-group-failure",
                activity_at=now,
                job_id=JOB_ID,
                cycle_id="c1",
                service_principal_id=SP_ID,
                action="update",
                status="failure",
                source_id=group_id,
                source_type="Group",
                source_name="Team",
                error_code="SystemForCrossDomainIdentityManagementServiceIncompatible",
                reason="Harness said no",
            )
            rename = EntraGroup(id=group_id, display_name="Team renamed")
            figures = {
                "event": _measured(cache, Batch(source="graph.provisioning", records=[event])),
                "rename": _measured(cache, Batch(source="graph.directory", records=[rename])),
            }
    print(
        json.dumps(
            {
                f"{save}_{key}": value
                for save, measured in figures.items()
                for key, value in measured.items()
            }
        )
    )


def _measured(cache: Any, batch: Any) -> dict[str, float]:
    """Wall and CPU seconds and peak RSS above the start of one `save_batch`."""
    import gc
    from datetime import UTC, datetime

    now = datetime.now(UTC)
    gc.collect()
    rss_before = _status_kib("VmRSS")
    Path("/proc/self/clear_refs").write_text("5")
    cpu, wall = time.process_time(), time.perf_counter()
    cache.save_batch(batch, now, now)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    peak = _status_kib("VmHWM")
    with cache.reading() as db:
        fresh = db.execute("SELECT fresh FROM directory_answers_state").fetchone()[0]
    assert fresh == 1
    return {
        "wall": wall,
        "cpu": cpu,
        "rss_before_mb": rss_before / 1024,
        "peak_above_mb": (peak - rss_before) / 1024,
    }


def run(tree: Path, base: Path) -> dict[str, float]:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    output = subprocess.run(
        [sys.executable, __file__, "--child", str(base)],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return dict(json.loads(output.splitlines()[-1]))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--tree", type=Path, action="append", default=[])
    parser.add_argument("--base", type=Path, help="reuse a cache this script built")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child)
        return
    with tempfile.TemporaryDirectory() as work:
        base = args.base or Path(work) / "base.db"
        if not args.base:
            started = time.perf_counter()
            build(base, args.users)
            print(f"built {args.users:,} users in {time.perf_counter() - started:.0f} s")
        trees = [ROOT, *args.tree]
        results: dict[Path, list[dict[str, float]]] = {tree: [] for tree in trees}
        for round_number in range(args.rounds):
            for tree in trees if round_number % 2 == 0 else trees[::-1]:
                result = run(tree, base)
                results[tree].append(result)
                print(f"  {tree}: {result}", flush=True)
        for tree, runs in results.items():
            print(f"{tree}:")
            for key in runs[0]:
                values = sorted(run[key] for run in runs)
                print(
                    f"  {key}: median {statistics.median(values):.2f}"
                    f" ({values[0]:.2f}-{values[-1]:.2f})"
                )


if __name__ == "__main__":
    main()
