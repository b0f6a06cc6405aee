"""TUI and start-up figures on a large cache: first paint, RSS, `scimwatch --help`.

Run: .venv/bin/python -m bench.bench_tui [--events 1000000] [--users 100000] [--runs 5]

A cache of `--events` synthetic events (bench.synthetic) and a `--users` directory
(bench.bench_store.directory) is built once; then each figure is a whole new process:
- first paint: process start -> the Overview has drawn the cache's answer (headless
  `App.run_test`, 160x48, read-only cache, no collectors), measured inside the child from
  interpreter start (`time.perf_counter` at the top of the script, before any import);
- RSS: the child's peak resident set (ru_maxrss) at that moment;
- screen switch: in the same child, after the first paint, each number key 2-7 in turn:
  time from pressing it to that screen's first read shown (its table's `PagedTable.Loaded`;
  the user lookup, which reads nothing until a user is typed, its `ScreenResume`);
- `scimwatch --help`: wall time of the installed console script, median of `--runs`.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CHILD = r"""
import time
started = time.perf_counter()
import asyncio, resource, sys
from datetime import timedelta
from pathlib import Path

async def main() -> None:
    from dashboard.app import make_app
    from dashboard.screens.overview import OverviewScreen
    from dashboard.settings import PollingSettings, source_intervals
    from store.cache import Cache

    cache = Cache.open_reader(Path(sys.argv[1]))
    app = make_app(cache, [], source_intervals(PollingSettings()), read_only=True, writer="bench")
    from textual.events import ScreenResume
    from dashboard.screens.user_lookup import UserLookupScreen
    from dashboard.widgets.paged_table import PagedTable

    painted = asyncio.Event()
    switched = asyncio.Event()

    def hook(message: object) -> None:
        if isinstance(message, OverviewScreen.Read):
            painted.set()
        elif isinstance(message, PagedTable.Loaded) or (
            isinstance(message, ScreenResume) and isinstance(app.screen, UserLookupScreen)
        ):
            switched.set()

    switches = []
    async with app.run_test(size=(160, 48), message_hook=hook) as pilot:
        await painted.wait()
        await pilot.pause()
        elapsed = time.perf_counter() - started
        rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        for key in "234567":
            switched.clear()
            start = time.perf_counter()
            await pilot.press(key)
            await switched.wait()
            switches.append(time.perf_counter() - start)
            await app.workers.wait_for_complete()
            await pilot.pause()
    print(f"{elapsed:.3f} {rss_mb:.1f}", *(f"{s:.4f}" for s in switches))

asyncio.run(main())
"""


def first_paint(cache: Path, runs: int) -> tuple[list[float], list[float], list[float]]:
    seconds: list[float] = []
    rss: list[float] = []
    switches: list[float] = []
    for _ in range(runs):
        out = subprocess.run(
            [sys.executable, "-c", CHILD, str(cache)], capture_output=True, text=True, check=True
        ).stdout.split()
        seconds.append(float(out[0]))
        rss.append(float(out[1]))
        switches.extend(float(value) for value in out[2:])
    return seconds, rss, switches


def help_time(runs: int) -> list[float]:
    script = Path(sys.executable).parent / "scimwatch"
    times = []
    for _ in range(runs + 1):
        start = time.perf_counter()
        subprocess.run([str(script), "--help"], capture_output=True, check=True)
        times.append(time.perf_counter() - start)
    return times[1:]  # the first run warms the OS cache


def main() -> None:
    from bench.bench_store import fill

    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="scimwatch-bench-tui-"))
    try:
        cache = work / "cache.db"
        fill(cache, args.events, args.users)
        seconds, rss, switches = first_paint(cache, args.runs)
        helps = help_time(args.runs)
        print(
            f"| TUI first paint, {args.events:,} events + {args.users:,} users | median "
            f"{statistics.median(seconds):.2f} s (min {min(seconds):.2f}, max {max(seconds):.2f}) |"
        )
        print(
            f"| TUI peak RSS, same | median {statistics.median(rss):.0f} MB (max {max(rss):.0f}) |"
        )
        print(
            f"| TUI screen switch (keys 2-7, key press -> first read shown), same | median "
            f"{statistics.median(switches) * 1000:.0f} ms (max {max(switches) * 1000:.0f}) |"
        )
        print(
            f"| `scimwatch --help` | median {statistics.median(helps) * 1000:.0f} ms "
            f"(max {max(helps) * 1000:.0f}) |"
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
