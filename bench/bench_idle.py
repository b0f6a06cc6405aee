"""Cost of leaving `scimwatch collect` running: CPU% and RSS while it idles between polls.

Run: .venv/bin/python -m bench.bench_idle [--scenario large] [--windows 3] [--window-seconds 60]
[--rate-limits] [--smoke]

The simulated tenant (`large`: 100,000 users in 1,000 assigned groups on both sides, 1,000,000
events over 23 days) runs in its own spawned process on a wall clock (speed 1, so its newest
events are "now"); Graph's reporting rate limit is off unless `--rate-limits`. The installed
console script `scimwatch collect --log-format json` runs against it as a user would, with the
default polling intervals and `backfill_days = 1` (the smallest setting: ~43,000 events on
`large`). Once every source has logged a complete poll (the first backfill and both directory
snapshots are saved), `/proc/<pid>/stat` (utime+stime) and `/proc/<pid>/status` (VmRSS) are
sampled every second for `--windows` consecutive windows of `--window-seconds`; the peak RSS
(VmHWM) is read after the first polls and again at the end. The polls that
fall inside a window (provisioning and jobs every 2 min, Harness every 5) are counted, not
excluded: they are part of leaving it running.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, get_args

from store.models import SourceName

SCRIPT = Path(sys.executable).parent / "scimwatch"
"""The installed console script, as a user runs it."""

SOURCES = frozenset(get_args(SourceName))
"""What `collect` polls when both Entra and Harness are configured."""

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def _serve(scenario: str, seed: int, rate_limits: bool, users: int, conn: Connection) -> None:
    from collectors.simulator import SimulatedTenant
    from collectors.simulator.scenario import ScenarioOptions

    options = ScenarioOptions(large_users=users, large_groups=max(1, users // 100))
    with SimulatedTenant(scenario, seed=seed, speed=1.0, options=options) as tenant:  # type: ignore[arg-type]
        tenant.faults.rate_limits_enabled = rate_limits
        conn.send(tenant.env())
        conn.recv()


@contextmanager
def simulator(scenario: str, seed: int, rate_limits: bool, users: int) -> Iterator[dict[str, str]]:
    """The simulated tenant in a spawned process; yields the environment that points at it."""
    context = multiprocessing.get_context("spawn")
    conn, child = context.Pipe()
    process = context.Process(
        target=_serve, args=(scenario, seed, rate_limits, users, child), daemon=True
    )
    process.start()
    try:
        yield conn.recv()
    finally:
        conn.send("stop")
        process.join(10)
        if process.is_alive():
            process.terminate()
            process.join()


def collect_env(work: Path, simulator_env: Mapping[str, str]) -> dict[str, str]:
    """The user's scimwatch settings left out; the simulator, a fresh cache, 1 day of backfill."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("SCIMWATCH_")}
    env.update(simulator_env)
    env.update(
        SCIMWATCH_CONFIG=str(work / "absent-config.toml"),
        SCIMWATCH_CACHE_PATH=str(work / "cache.db"),
        SCIMWATCH_POLLING__BACKFILL_DAYS="1",
        SCIMWATCH_USE_KEYRING="false",
        XDG_CONFIG_HOME=str(work / "xdg-config"),
        XDG_DATA_HOME=str(work / "xdg-data"),
        XDG_STATE_HOME=str(work / "xdg-state"),
    )
    return env


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of the process so far (its threads included)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime, stime: fields 14, 15


def memory_mb(pid: int) -> dict[str, float]:
    """VmRSS, VmHWM (peak RSS) and RssAnon of the process, in MB."""
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, rest = line.partition(":")
        if name in ("VmRSS", "VmHWM", "RssAnon"):
            values[name] = int(rest.split()[0]) / 1024
    return values


@dataclass
class CollectLog:
    """What the daemon's JSON log lines said so far."""

    path: Path
    offset: int = 0
    complete: set[str] = field(default_factory=set)
    polls: list[dict[str, Any]] = field(default_factory=list)
    failures: list[dict[str, Any]] = field(default_factory=list)

    def read(self) -> None:
        """Take in the lines written since the last read."""
        with self.path.open("rb") as handle:
            handle.seek(self.offset)
            chunk = handle.read()
        end = chunk.rfind(b"\n") + 1
        self.offset += end
        for line in chunk[:end].splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if record.get("event") == "poll_ok":
                self.polls.append(record)
                if record.get("complete"):
                    self.complete.add(record["source"])
            elif record.get("event") in ("poll_failed", "poll_crashed"):
                self.failures.append(record)


@dataclass(frozen=True)
class Window:
    """One idle window: CPU% over it, RSS samples, and the polls that fell in it."""

    seconds: float
    cpu_percent: float
    rss_mb: list[float]
    polls: list[str]
    cpu_per_second: list[float]
    """CPU% of each 1-s sample: the quiet seconds between polls show here."""


def wait_first_polls(process: subprocess.Popen[bytes], log: CollectLog, timeout: float) -> float:
    """Seconds until every source has logged a complete poll."""
    started = time.monotonic()
    while SOURCES - log.complete:
        if process.poll() is not None:
            raise RuntimeError(
                f"collect exited {process.returncode}: {log.path.read_text()[-3000:]}"
            )
        if time.monotonic() - started > timeout:
            raise RuntimeError(
                f"after {timeout:.0f} s still waiting for {sorted(SOURCES - log.complete)}; "
                f"failures: {log.failures[-3:]}"
            )
        time.sleep(1.0)
        log.read()
    return time.monotonic() - started


def idle_window(pid: int, log: CollectLog, seconds: float) -> Window:
    """Sample the process every second for `seconds`."""
    log.read()
    polls_before = len(log.polls)
    cpu_start, wall_start = cpu_seconds(pid), time.monotonic()
    rss = [memory_mb(pid)["VmRSS"]]
    per_second = []
    last_cpu, last_wall = cpu_start, wall_start
    deadline = wall_start + seconds
    while (now := time.monotonic()) < deadline:
        time.sleep(min(1.0, deadline - now))
        rss.append(memory_mb(pid)["VmRSS"])
        cpu, wall = cpu_seconds(pid), time.monotonic()
        per_second.append((cpu - last_cpu) / (wall - last_wall) * 100)
        last_cpu, last_wall = cpu, wall
    cpu_end, wall_end = cpu_seconds(pid), time.monotonic()
    log.read()
    polls = [record["source"] for record in log.polls[polls_before:]]
    elapsed = wall_end - wall_start
    return Window(elapsed, (cpu_end - cpu_start) / elapsed * 100, rss, polls, per_second)


def stop(process: subprocess.Popen[bytes]) -> int:
    """SIGTERM, as a service manager would; the exit status."""
    process.send_signal(signal.SIGTERM)
    try:
        return process.wait(30)
    except subprocess.TimeoutExpired:
        process.kill()
        return process.wait()


def measure(args: argparse.Namespace, work: Path) -> list[str]:
    """Run the simulator and `collect`, wait for the first polls, sample the idle windows."""
    with simulator(args.scenario, args.seed, args.rate_limits, args.users) as simulator_env:
        log = CollectLog(work / "collect.log")
        with log.path.open("wb") as stderr:
            process = subprocess.Popen(
                [str(SCRIPT), "collect", "--log-format", "json"],
                env=collect_env(work, simulator_env),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=stderr,
            )
        try:
            first_polls = wait_first_polls(process, log, args.settle_timeout)
            after_first = memory_mb(process.pid)
            cpu_first = cpu_seconds(process.pid)
            windows = [
                idle_window(process.pid, log, args.window_seconds) for _ in range(args.windows)
            ]
            peak_mb = memory_mb(process.pid)["VmHWM"]
        finally:
            status = stop(process)
    if status != 0:
        raise RuntimeError(f"collect exited {status} on SIGTERM: {log.path.read_text()[-3000:]}")
    return rows(args, first_polls, cpu_first, after_first, windows, peak_mb)


def rows(
    args: argparse.Namespace,
    first_polls: float,
    cpu_first: float,
    after_first: dict[str, float],
    windows: list[Window],
    peak_mb: float,
) -> list[str]:
    """Markdown table rows of the run."""
    users = f" with {args.users:,} users" if args.scenario == "large" else ""
    label = f"`scimwatch collect`, `{args.scenario}`{users} (backfill_days 1, default intervals)"
    cpu = [window.cpu_percent for window in windows]
    rss = [value for window in windows for value in window.rss_mb]
    seconds = [value for window in windows for value in window.cpu_per_second]
    quiet = sum(value < 1.0 for value in seconds) / len(seconds) * 100
    total_seconds = sum(window.seconds for window in windows)
    total_cpu = sum(window.cpu_percent * window.seconds for window in windows) / total_seconds
    polls = ", ".join(
        f"{index + 1}: {', '.join(sorted(window.polls)) or 'none'}"
        for index, window in enumerate(windows)
    )
    return [
        f"| {label}: first poll of every source | - | {first_polls:.0f} s, {cpu_first:.1f} CPU-s, "
        f"peak RSS {after_first['VmHWM']:.0f} MB, RSS then {after_first['VmRSS']:.0f} MB |",
        f"| {label}: CPU while idle, {len(windows)} x {args.window_seconds:.0f} s | < 1% | "
        f"median {statistics.median(cpu):.2f}% ({min(cpu):.2f}-{max(cpu):.2f}); all windows "
        f"{total_cpu:.2f}%; polls in window {polls}; 1-s samples: median "
        f"{statistics.median(seconds):.2f}%, {quiet:.0f}% of them under 1% |",
        f"| {label}: RSS while idle, sampled every 1 s | < 150 MB | "
        f"median {statistics.median(rss):.0f} MB ({min(rss):.0f}-{max(rss):.0f}); peak RSS of "
        f"the whole run (VmHWM, first polls included) {peak_mb:.0f} MB |",
    ]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--scenario", default="large")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--users", type=int, default=100_000, help="`large` only: users (groups of 100 each)"
    )
    parser.add_argument("--windows", type=int, default=3)
    parser.add_argument("--window-seconds", type=float, default=60.0)
    parser.add_argument("--settle-timeout", type=float, default=3600.0)
    parser.add_argument(
        "--rate-limits", action="store_true", help="enforce Graph's reporting limit (5/10 s)"
    )
    parser.add_argument(
        "--smoke", action="store_true", help="tiny tenant, short window: checks the harness"
    )
    args = parser.parse_args()
    if args.smoke:
        args.scenario, args.windows, args.window_seconds = "healthy", 1, 2.0
    work = Path(tempfile.mkdtemp(prefix="scimwatch-bench-idle-"))
    try:
        for row in measure(args, work):
            print(row, flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
