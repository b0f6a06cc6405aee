"""TUI and start-up figures on a large cache: first paint, screen switches, filter, stalls.

Run: .venv/bin/python -m bench.bench_tui [--events 1000000] [--users 100000] [--runs 5]
     [--cache a-filled-cache.db] [--skip-tmux] [--skip-backfill] [--backfill-seconds 30]
     [--filter-only]

A cache of `--events` synthetic events (bench.synthetic) and a `--users` directory
(bench.bench_store.directory) is built once (or `--cache` is copied and used); then each figure
comes from whole new processes:
- first paint, headless: a child process runs the app (`App.run_test`, 160x48, read-only
  cache, no collectors) and reports the time from interpreter start (`time.perf_counter` at
  the top, before any import) to the Overview's first read drawn, and the CPU time spent;
- first paint, real CLI: `scimwatch` in a 160x48 tmux pane on that cache, as the writer (with
  Graph and Harness configured towards an unroutable address, so the collectors are built),
  and as a reader while another process holds the writer lock: wall time from spawning the
  pane to the Overview's layout on screen, and to what it read from the cache on screen (tmux
  `capture-pane` every 10 ms), with the project's bytecode written first as an install does;
- RSS: the headless child's peak resident set (VmHWM) at its first paint;
- screen switch: in the headless child, each number key 2-7 in turn, first visits then return
  visits: key posted to the app -> the first frame written after that screen showed its read
  (a table's `PagedTable.Loaded`; on a return visit, and for the user lookup, which reads
  nothing until a user is typed, its `ScreenResume`);
- filter keystroke: on the Events screen, `/` then a user's name typed a key at a time: key ->
  the first frame after the table showed the rows for the text so far (`--filter-only`: this
  figure alone, with each prefix's times);
- stalls while a backfill writes: the app as the writer with real collectors backfilling the
  `large` simulated tenant (own process, limits off) while a coroutine in the app's event loop
  asks to wake every 10 ms; the figure is how late it woke (max and p99);
- `scimwatch --help`: wall time of the installed console script, median of `--runs`.
The screen switch and keystroke figures also give the main thread's CPU from key to frame:
the app's own work, which other processes on a busy machine disturb far less than the wall time.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import closing
from pathlib import Path
from typing import Any

SIZE = (160, 48)
FILTER_TEXT = "user12348"
"""A name typed a key at a time into the Events filter (bench.synthetic names users userN@contoso.example)."""


def peak_rss_mb() -> float:
    """This process's peak resident set (VmHWM). Not ru_maxrss: Linux carries that over
    exec from the parent, which here had a 1 GB cache open."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


async def headless_child(
    cache_path: str, started: float, prebuild: bool, filter_only: bool = False
) -> dict[str, Any]:
    """First paint, RSS, screen switches and filter keystrokes in this (fresh) process.

    A key is posted to the app as the terminal driver posts it, and the figure runs to the
    first frame written after the screen showed its read (`PagedTable.Loaded`, or for the user
    lookup, which reads nothing until a user is typed, its `ScreenResume`). Pilot's `press` is
    not used to time: it waits for the process to look idle in 20 ms sleeps (~60 ms a key).
    """
    import gc

    import dashboard.cli  # noqa: F401 - the console script's import
    from dashboard.launch import FastStart
    from store.cache_file import take_writer_lock

    # As `dashboard.launch.run_dashboard` does, on the cache read-only: this process holds the
    # writer lock through another file, as a headless collector would.
    gc.disable()
    os.environ.update(
        SCIMWATCH_CACHE_PATH=cache_path,
        SCIMWATCH_USE_KEYRING="false",
        SCIMWATCH_CONFIG=str(Path(cache_path).with_name("no-config.toml")),
    )
    take_writer_lock(Path(cache_path))
    fast = FastStart.begin(None)
    assert fast is not None, "the bench's cache is stamped by this version (migrated)"
    assert fast.writer, "the bench's cache is read-only"
    app = fast.build_app(prebuild_screens=prebuild, writer="bench")
    from textual import events
    from textual.events import ScreenResume
    from textual.worker import WorkerCancelled, WorkerFailed

    from dashboard.screens.overview import OverviewScreen
    from dashboard.widgets.nav_bar import SCREENS
    from dashboard.widgets.paged_table import PagedTable

    framed = asyncio.Event()
    state: dict[str, Any] = {"want": OverviewScreen.Read, "ready": False, "text": ""}

    def hook(message: object) -> None:
        want = state["want"]
        if want is None or not isinstance(message, want):
            return
        if state["text"] in str(getattr(app.screen, "filter_text", "")):
            state["ready"] = True

    result: dict[str, Any] = {
        figure: [] for figure in ("first", "return", "keystroke", "first_cpu", "keystroke_cpu")
    }
    display = app._display

    def frame(screen: Any, renderable: Any) -> None:
        display(screen, renderable)
        if state["want"] is OverviewScreen.Read and getattr(app.screen, "_shown", 0):
            state["ready"] = True  # the first read was drawn in the screen's first frame
        if renderable is not None and state["ready"]:
            state["want"], state["ready"] = None, False
            framed.set()

    # Hooked before the app runs: its first frame may come before `run_test` hands over.
    app._display = frame  # type: ignore[method-assign]
    async with app.run_test(size=SIZE, message_hook=hook) as pilot:

        async def settle() -> None:
            """Every worker done (an exclusive read cancelled by a newer one is done too)."""
            while not all(worker.is_finished for worker in app.workers):
                with contextlib.suppress(WorkerCancelled, WorkerFailed):
                    await app.workers.wait_for_complete()
            await pilot.pause()

        async def key_to_frame(key: str, want: Any, text: str = "", figure: str = "") -> float:
            """Seconds from the key to the frame; the main thread's CPU in that time (the
            event loop: handlers, layout, drawing; not the reading threads) goes to
            `figure`_cpu, a figure that other processes on a busy machine disturb less."""
            state.update(want=want, ready=False, text=text)
            framed.clear()
            start, cpu = time.perf_counter(), time.thread_time()
            app.post_message(events.Key(key, key if len(key) == 1 else None))
            await framed.wait()
            elapsed = time.perf_counter() - start
            if figure:
                result[f"{figure}_cpu"].append(time.thread_time() - cpu)
            await settle()
            return elapsed

        await framed.wait()  # the first frame after the overview's read
        result["paint"] = time.perf_counter() - started
        result["paint_cpu"] = time.process_time()  # the whole process, interpreter start included
        result["rss_mb"] = peak_rss_mb()
        await settle()  # with `prebuild`, the other screens are built
        for visit in () if filter_only else ("first", "return"):
            for key, (mode, _title) in zip("234567", SCREENS[1:], strict=True):
                built = mode in app._screen_stacks or mode == "user"  # the lookup reads nothing
                result[visit].append(
                    await key_to_frame(
                        key,
                        ScreenResume if built else PagedTable.Loaded,
                        figure="first" if visit == "first" else "",
                    )
                )
                if key == "7":
                    await pilot.press("escape")  # the lookup box has the keyboard until esc
        await pilot.press("6")
        await settle()
        assert type(app.screen).__name__ == "EventsScreen", app.screen
        await pilot.press("slash")
        await pilot.pause()
        for index in range(len(FILTER_TEXT)):
            result["keystroke"].append(
                await key_to_frame(
                    FILTER_TEXT[index], PagedTable.Loaded, FILTER_TEXT[: index + 1], "keystroke"
                )
            )
        result["rss_end_mb"] = peak_rss_mb()  # every screen built, visited and filtered
    return result


async def backfill_child(info_path: str, db_path: str, seconds: float) -> dict[str, Any]:
    """Event-loop lag while the app backfills the simulated tenant as the writer."""
    from datetime import datetime

    from collectors.config import build_collectors
    from dashboard.app import make_app
    from dashboard.launch import demo_settings, graph_connection, harness_connection, polling_config
    from dashboard.settings import source_intervals
    from store.cache import Cache

    info = json.loads(Path(info_path).read_text())  # noqa: ASYNC240 - before the app runs
    now = datetime.fromisoformat(info["now"])

    def clock() -> datetime:
        return now

    settings = demo_settings(info["env"], Path(db_path).parent)
    # Unpaced (the simulator enforces no limits here): the most pages, parses and saves a
    # backfill can put through the app in the time measured.
    collector_set = build_collectors(
        graph_connection(settings),
        harness_connection(settings),
        polling_config(settings),
        clock=clock,
        reporting_rate=(1000, 1.0),
    )
    cache = Cache.open_writer(Path(db_path))
    app = make_app(
        cache,
        collector_set.collectors,
        source_intervals(settings.polling),
        clock=clock,
        on_exit=collector_set.aclose,
    )
    lags: list[float] = []
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()  # the first paint is measured elsewhere: lag from here on
        if os.environ.get("BENCH_SLOW_CALLBACKS"):  # name what stalls (asyncio debug mode)
            import logging

            logging.basicConfig(level=logging.WARNING)
            loop = asyncio.get_running_loop()
            loop.set_debug(True)
            loop.slow_callback_duration = 0.1
        deadline = time.perf_counter() + seconds
        while time.perf_counter() < deadline:
            asked = time.perf_counter()
            await asyncio.sleep(0.01)
            lags.append(time.perf_counter() - asked - 0.01)
        await pilot.press("6")  # the screens still answer
        await pilot.pause()
        app.paused = True
    with cache.reading() as db:
        saved = db.execute("SELECT count(*) FROM provisioning_events").fetchone()[0]
    cache.close()
    return {"lags": lags, "events": saved}


def compile_bytecode() -> None:
    """Write the project's bytecode, as installing a wheel does: start-up is timed as an
    installed scimwatch starts, not as one compiling its modules on every run (an editable
    install under PYTHONDONTWRITEBYTECODE does that, ~80 ms)."""
    import compileall

    for package in ("collectors", "dashboard", "store"):
        compileall.compile_dir(Path(__file__).parent.parent / package, quiet=1)


def run_child(*args: str) -> dict[str, Any]:
    """Run a child; it measures from `started` (perf_counter is CLOCK_MONOTONIC: one clock for
    every process), so its interpreter start-up counts."""
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "bench.bench_tui", "--child", str(started), *args],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-3000:])
    return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def tmux_first_paint(cache: Path, *, writer: bool) -> tuple[float, float]:
    """Seconds from spawning `scimwatch` in tmux to the Overview's layout on screen, and to
    what it read from the cache on screen (the "Reading the cache…" line replaced)."""
    session = f"scimwatch-bench-{os.getpid()}"
    script = Path(sys.executable).parent / "scimwatch"
    env = {
        "SCIMWATCH_CACHE_PATH": str(cache),
        "SCIMWATCH_USE_KEYRING": "false",
        "TEXTUAL_ANIMATIONS": "none",
    }
    if writer:  # configured, so the collectors are built; 192.0.2.1 is TEST-NET, never reached
        env |= {
            "SCIMWATCH_GRAPH__TENANT_ID": "00000000-0000-0000-0000-000000000001",
            "SCIMWATCH_GRAPH__CLIENT_ID": "00000000-0000-0000-0000-000000000002",
            "SCIMWATCH_GRAPH__NEXTGEN_SP_ID": "00000000-0000-0000-0000-000000000003",
            "SCIMWATCH_GRAPH__CLIENT_SECRET": "bench-not-a-secret",
            "SCIMWATCH_HARNESS__ACCOUNT_ID": "bench",
            "SCIMWATCH_HARNESS__TOKEN": "bench-not-a-token",
            "SCIMWATCH_HARNESS__BASE_URL": "https://192.0.2.1",
        }
    if os.environ.get("PYTHONPATH"):  # the tree being measured (tmux does not pass it on)
        env["PYTHONPATH"] = os.environ["PYTHONPATH"]
    exports = " ".join(f"{key}={value}" for key, value in env.items())
    holder = None
    if not writer:  # another process holds the writer lock: the TUI opens read-only
        holder = subprocess.Popen(
            [sys.executable, "-c", HOLD_LOCK, str(cache)], stdout=subprocess.PIPE, text=True
        )
        assert holder.stdout is not None
        holder.stdout.readline()
    try:
        shell: float | None = None
        for _attempt in range(3):  # the tmux server may be exiting with the last session
            start = time.perf_counter()
            spawned = subprocess.run(
                ["tmux", "new-session", "-d", "-s", session, "-x", "160", "-y", "48",
                 f"env {exports} {script}"],
                check=False,
            )  # fmt: skip
            if spawned.returncode == 0:
                break
        else:
            raise RuntimeError("tmux could not start a session")
        while time.perf_counter() - start < 30:
            pane = subprocess.run(
                ["tmux", "capture-pane", "-p", "-t", session], capture_output=True, text=True
            ).stdout
            if shell is None and "pending retries" in pane:
                shell = time.perf_counter() - start  # the layout, before the cache is read
            if shell is not None and "Reading the cache" not in pane:
                return shell, time.perf_counter() - start
            time.sleep(0.01)  # polling a real terminal: nothing to await
        raise RuntimeError(f"the overview never showed:\n{pane}")
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], check=False)
        if holder is not None:
            holder.terminate()
            holder.wait()


HOLD_LOCK = """
import sys, time
from pathlib import Path
from store.cache import Cache
cache = Cache.open_writer(Path(sys.argv[1]))
print("locked", flush=True)
time.sleep(3600)
"""


def help_time(runs: int) -> list[float]:
    script = Path(sys.executable).parent / "scimwatch"
    times = []
    for _ in range(runs + 1):
        start = time.perf_counter()
        subprocess.run([str(script), "--help"], capture_output=True, check=True)
        times.append(time.perf_counter() - start)
    return times[1:]  # the first run warms the OS cache


def spread(values: list[float], scale: float = 1000.0, unit: str = "ms") -> str:
    return (
        f"median {statistics.median(values) * scale:,.0f} {unit} "
        f"({min(values) * scale:,.0f}-{max(values) * scale:,.0f})"
    )


def print_keystrokes(runs: list[dict[str, Any]]) -> None:
    """The filter keystroke figure, and each prefix's times (a key typed -> its rows drawn)."""
    keys = [value for run in runs for value in run["keystroke"]]
    print(f"| filter keystroke -> rows shown, Events, {FILTER_TEXT!r} | {spread(keys)}, p90 "
          f"{p90(keys)}; {main_cpu(runs, 'keystroke')} |")  # fmt: skip
    for index in range(len(FILTER_TEXT)):
        typed = [run["keystroke"][index] for run in runs]
        cpu = [run["keystroke_cpu"][index] for run in runs]
        print(f"|   {FILTER_TEXT[: index + 1]!r} | {spread(typed)}; main-thread CPU "
              f"{spread(cpu)} |")  # fmt: skip


def p90(values: list[float]) -> str:
    return f"{statistics.quantiles(values, n=10)[-1] * 1000:,.0f} ms"


def main_cpu(runs: list[dict[str, Any]], figure: str) -> str:
    """The main thread's CPU from key to frame (see `headless_child`)."""
    cpu = [value for run in runs for value in run[f"{figure}_cpu"]]
    return f"main-thread CPU {spread(cpu)}, p90 {p90(cpu)}"


def backfill_stalls(work: Path, seconds: float) -> dict[str, Any]:
    from bench.bench_ingest import write_info
    from bench.simproc import SimulatorProcess

    with SimulatorProcess("large", rate_limits=False) as sim:
        info = write_info(sim, work)
        data = json.loads(info.read_text())
        data["env"] = sim.info["env"]
        info.write_text(json.dumps(data))
        (work / "backfill").mkdir()
        return run_child("backfill", str(info), str(work / "backfill" / "cache.db"), str(seconds))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--cache", type=Path, help="copy this filled cache instead of filling")
    parser.add_argument("--skip-tmux", action="store_true")
    parser.add_argument("--skip-backfill", action="store_true")
    parser.add_argument("--backfill-seconds", type=float, default=30.0)
    parser.add_argument(
        "--filter-only",
        action="store_true",
        help="only the filter keystroke figure (its children skip the screen switches)",
    )
    args = parser.parse_args()
    compile_bytecode()
    work = Path(tempfile.mkdtemp(prefix="scimwatch-bench-tui-"))
    try:
        cache = work / "cache.db"
        if args.cache:
            shutil.copyfile(args.cache, cache)
        else:
            from bench.bench_store import fill

            fill(cache, args.events, args.users)
        from store.cache import Cache

        Cache.open_writer(cache).close()  # migrate a copied cache
        with closing(sqlite3.connect(cache)) as db:  # as a cache left idle: WAL checkpointed
            db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        label = f"{args.events:,} events + {args.users:,} users" if not args.cache else "cache"
        if args.filter_only:
            runs = [
                run_child("headless", str(cache), "prebuild", "filter-only")
                for _ in range(args.runs)
            ]
            print_keystrokes(runs)
            return
        runs = [run_child("headless", str(cache), "prebuild") for _ in range(args.runs)]
        cold = [run_child("headless", str(cache), "no-prebuild") for _ in range(args.runs)]
        paint = [run["paint"] for run in runs]
        paint_cpu = [run["paint_cpu"] for run in runs]
        print(f"| TUI first paint, headless, {label} | {spread(paint)}; CPU {spread(paint_cpu)} |")
        print(f"| TUI peak RSS at first paint | {spread([r['rss_mb'] for r in runs], 1, 'MB')} |")
        print(f"| TUI peak RSS, every screen visited | "
              f"{spread([r['rss_end_mb'] for r in runs], 1, 'MB')} |")  # fmt: skip
        first = [value for run in runs for value in run["first"]]
        again = [value for run in runs for value in run["return"]]
        unbuilt = [value for run in cold for value in run["first"]]
        print(f"| screen switch, first visit (keys 2-7), screens built ahead | {spread(first)}, "
              f"p90 {p90(first)}; {main_cpu(runs, 'first')} |")  # fmt: skip
        print(f"| screen switch, first visit, screen not built yet | {spread(unbuilt)}, p90 "
              f"{p90(unbuilt)}; {main_cpu(cold, 'first')} |")  # fmt: skip
        print(f"| screen switch, return visit | {spread(again)} |")
        print_keystrokes(runs)
        if not args.skip_tmux and shutil.which("tmux"):
            for writer in (True, False):
                times = [tmux_first_paint(cache, writer=writer) for _ in range(args.runs)]
                role = "writer, collectors built" if writer else "read-only"
                print(f"| TUI first paint (layout), real `scimwatch` in tmux, {role} | "
                      f"{spread([shell for shell, _ in times])} |")  # fmt: skip
                print(f"| TUI first paint (the cache's overview), real `scimwatch` in tmux, "
                      f"{role} | {spread([data for _, data in times])} |")  # fmt: skip
        if not args.skip_backfill:
            stalls = backfill_stalls(work, args.backfill_seconds)
            lags = sorted(stalls["lags"])
            p99 = lags[int(len(lags) * 0.99)]
            print(
                f"| event-loop lag while backfilling `large` as the writer, "
                f"{args.backfill_seconds:.0f} s, {stalls['events']:,} events saved | max "
                f"{lags[-1] * 1000:,.0f} ms, p99 {p99 * 1000:,.0f} ms, "
                f"{sum(lag > 0.1 for lag in lags)} wakes later than 100 ms of {len(lags):,} |"
            )
        helps = help_time(args.runs)
        print(f"| `scimwatch --help` | {spread(helps)} |")
    finally:
        shutil.rmtree(work, ignore_errors=True)


def child_main(argv: list[str]) -> None:
    started, kind, *rest = argv
    if kind == "headless":
        result = asyncio.run(
            headless_child(rest[0], float(started), rest[1] == "prebuild", "filter-only" in rest)
        )
    else:
        result = asyncio.run(backfill_child(rest[0], rest[1], float(rest[2])))
    print(json.dumps(result))


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child_main(sys.argv[2:])
    else:
        main()
