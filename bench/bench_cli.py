"""Start-up of the headless commands: `scimwatch check` on a large cache, each `--help`, imports.

Run: .venv/bin/python -m bench.bench_cli [--cache PATH] [--events 1000000] [--users 100000]
[--runs 7] [--smoke]

Every figure is the wall time of a whole new process of the installed console script
(`.venv/bin/scimwatch`), from `subprocess.run` to its exit; median and min-max of `--runs`
after one unmeasured warm-up run. `check` reads a copy of `--cache` (a cache is never opened in
place: a reader may leave -wal/-shm files beside it), else a cache built by
`bench.bench_store.fill`. The config file points nowhere and secrets are unset, so only the
environment (`SCIMWATCH_CACHE_PATH`) configures the commands.

Import check: each non-TUI command runs once more in a child that records `sys.modules` at
exit; none may load textual, and the `--help`s, `check` and `export` nothing of the network
(`doctor` and `collect --once` are pointed at a closed port so they fail fast after importing
everything they use).
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
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

SCRIPT = Path(sys.executable).parent / "scimwatch"
"""The installed console script, as a user runs it."""

HELP_COMMANDS: tuple[tuple[str, ...], ...] = (
    ("--help",),
    ("check", "--help"),
    ("collect", "--help"),
    ("export", "--help"),
    ("doctor", "--help"),
    ("simulate", "--help"),
    ("paths", "--help"),
    ("config", "--help"),
)

NETWORK = frozenset({"httpx", "httpcore", "h11", "h2", "anyio", "azure", "msal", "keyring"})
"""Modules of the network side: a command that reads only the cache has no use for them."""
HEAVY = frozenset({"pydantic", "pydantic_settings", "sqlite_utils", "prometheus_client"})
"""Loaded by commands that read settings or the cache, never by a `--help`."""

PROBE = r"""
import json, sys
from dashboard.cli import main
try:
    main(sys.argv[2:], prog_name="scimwatch")
except SystemExit:
    pass
with open(sys.argv[1], "w") as out:
    json.dump(sorted({name.split(".")[0] for name in sys.modules}), out)
"""
"""Runs one command in-process and writes the top-level packages it left in sys.modules."""


@dataclass(frozen=True)
class ImportCase:
    """One command whose loaded modules are checked."""

    args: tuple[str, ...]
    forbidden: frozenset[str]
    env: Mapping[str, str] | None = None
    """Extra environment for this command (e.g. an unreachable service)."""
    required: frozenset[str] = frozenset({"dashboard", "click"})
    """Loaded when the command really ran its path (proof the probe exercised it)."""


def isolated_env(work: Path, cache: Path) -> dict[str, str]:
    """The environment without the user's scimwatch settings, with the cache at `cache`."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("SCIMWATCH_")}
    env.update(
        SCIMWATCH_CONFIG=str(work / "absent-config.toml"),
        SCIMWATCH_CACHE_PATH=str(cache),
        SCIMWATCH_USE_KEYRING="false",
        XDG_CONFIG_HOME=str(work / "xdg-config"),
        XDG_DATA_HOME=str(work / "xdg-data"),
        XDG_STATE_HOME=str(work / "xdg-state"),
        XDG_CACHE_HOME=str(work / "xdg-cache"),
    )
    return env


def unreachable_env(work: Path) -> dict[str, str]:
    """A configured Harness at a closed port, with a cache of its own: fails fast, loads all."""
    return {
        "SCIMWATCH_HARNESS__ACCOUNT_ID": "benchaccount",
        "SCIMWATCH_HARNESS__BASE_URL": "https://127.0.0.1:9",
        "SCIMWATCH_HARNESS__TOKEN": "pat.benchaccount.0000.not-a-secret",
        "SCIMWATCH_CACHE_PATH": str(work / "collect-once.db"),
    }


def import_cases(work: Path) -> list[ImportCase]:
    """Every non-TUI command with what it must not load."""
    quiet = frozenset({"textual"}) | NETWORK | HEAVY
    cases = [ImportCase(args, quiet) for args in HELP_COMMANDS]
    cache_only = frozenset({"textual", "collectors"}) | NETWORK
    reads_cache = frozenset({"dashboard", "click", "store", "sqlite_utils"})
    network = frozenset({"dashboard", "click", "collectors", "httpx"})
    export = ("export", str(work / "export.csv"), "--format", "csv", "--view", "cycles", "--force")
    cases += [
        ImportCase(("check",), cache_only, required=reads_cache),
        ImportCase(("check", "--json"), cache_only, required=reads_cache),
        ImportCase(export, cache_only, required=reads_cache),
        ImportCase(("paths",), cache_only),
        ImportCase(("doctor",), frozenset({"textual"}), unreachable_env(work), network),
        ImportCase(("collect", "--once"), frozenset({"textual"}), unreachable_env(work), network),
    ]
    return cases


def loaded_modules(args: Sequence[str], env: Mapping[str, str], record: Path) -> set[str]:
    """Top-level packages in sys.modules after running `scimwatch ARGS` in a child."""
    record.unlink(missing_ok=True)
    subprocess.run(
        [sys.executable, "-c", PROBE, str(record), *args],
        env=dict(env),
        capture_output=True,
        timeout=120,
        check=False,
    )
    return set(json.loads(record.read_text())) if record.exists() else set()


def import_violations(env: Mapping[str, str], work: Path) -> list[str]:
    """One line per command that loaded a module it must not; empty when all are clean.

    The children run side by side: `doctor` and `collect --once` spend ~5-15 s sleeping
    between retries of the closed port.
    """
    cases = import_cases(work)
    with ThreadPoolExecutor(max_workers=len(cases)) as pool:
        loaded_per_case = pool.map(
            lambda numbered: loaded_modules(
                numbered[1].args,
                {**env, **(numbered[1].env or {})},
                work / f"modules-{numbered[0]}.json",
            ),
            enumerate(cases),
        )
        problems = []
        for case, loaded in zip(cases, loaded_per_case, strict=True):
            command = " ".join(("scimwatch", *case.args))
            if missing := sorted(case.required - loaded):
                problems.append(f"{command} did not run (no {', '.join(missing)})")
            elif bad := sorted(case.forbidden & loaded):
                problems.append(f"{command} loaded {', '.join(bad)}")
    return problems


def timed_runs(
    args: Sequence[str], env: Mapping[str, str], runs: int, ok_codes: frozenset[int]
) -> tuple[list[float], subprocess.CompletedProcess[str]]:
    """Wall seconds of `runs` whole processes of the console script (after one warm-up)."""
    seconds: list[float] = []
    completed = None
    for index in range(runs + 1):
        started = time.perf_counter()
        completed = subprocess.run(
            [str(SCRIPT), *args], env=dict(env), capture_output=True, text=True, check=False
        )
        elapsed = time.perf_counter() - started
        if completed.returncode not in ok_codes:
            raise RuntimeError(
                f"scimwatch {' '.join(args)} exited {completed.returncode}: "
                f"{(completed.stdout + completed.stderr)[-2000:]}"
            )
        if index:
            seconds.append(elapsed)
    assert completed is not None
    return seconds, completed


def check_answer(completed: subprocess.CompletedProcess[str], as_json: bool) -> str:
    """The check's verdict, after making sure it read the cache (never UNKNOWN)."""
    if as_json:
        status = json.loads(completed.stdout)["status"]
        if status not in (0, 1, 2):
            raise RuntimeError(f"check --json answered status {status}: {completed.stdout}")
        return f"status {status}"
    first_line = completed.stdout.splitlines()[0]
    if not first_line.startswith("SCIMWATCH ") or "UNKNOWN" in first_line:
        raise RuntimeError(f"check did not read the cache: {first_line}")
    return first_line.split(" - ")[0]


def spread(seconds: Sequence[float]) -> str:
    """``median ms (min-max)``."""
    low, mid, high = min(seconds), statistics.median(seconds), max(seconds)
    return f"{mid * 1000:.0f} ms ({low * 1000:.0f}-{high * 1000:.0f})"


def check_rows(cache: Path, label: str, env: Mapping[str, str], runs: int) -> list[str]:
    """Table rows for `check` and `check --json` on `cache`."""
    rows = []
    for extra in ((), ("--json",)):
        seconds, completed = timed_runs(("check", *extra), env, runs, frozenset({0, 1, 2}))
        verdict = check_answer(completed, as_json=bool(extra))
        command = " ".join(("scimwatch check", *extra))
        rows.append(
            f"| `{command}`, {label}, whole process | < 1 s | {spread(seconds)}, "
            f"{len(seconds)} runs; answered {verdict} |"
        )
    return rows


def help_rows(env: Mapping[str, str], runs: int, commands: Sequence[tuple[str, ...]]) -> list[str]:
    """One table row per `--help`."""
    rows = []
    for args in commands:
        seconds, completed = timed_runs(args, env, runs, frozenset({0}))
        if "Usage:" not in completed.stdout:
            raise RuntimeError(f"scimwatch {' '.join(args)} printed no usage")
        rows.append(
            f"| `scimwatch {' '.join(args)}` | < 300 ms | {spread(seconds)}, {len(seconds)} runs |"
        )
    return rows


def prepare_cache(work: Path, source: Path | None, events: int, users: int) -> tuple[Path, str]:
    """A cache only this run reads: a copy of `source`, or one filled with synthetic data."""
    from bench.bench_store import fill
    from store.cache import Cache

    cache = work / "cache.db"
    if source is None:
        fill(cache, events, users)
        with Cache.open_writer(cache):
            pass  # the writer's last close checkpoints the WAL into the main file
        return cache, f"{events:,} events + {users:,} users (bench_store.fill)"
    shutil.copyfile(source, cache)
    with Cache.open_reader(cache).reading() as db:
        count = db.execute("SELECT count(*) FROM provisioning_events").fetchone()[0]
        user_count = db.execute("SELECT count(*) FROM entra_users").fetchone()[0]
    return cache, f"{count:,} events + {user_count:,} users (copy of {source})"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cache", type=Path, help="an existing cache to copy and check")
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument(
        "--smoke", action="store_true", help="tiny sizes: checks the harness, not speed"
    )
    args = parser.parse_args()
    if args.smoke:
        args.cache, args.events, args.users, args.runs = None, 2_000, 200, 1
    work = Path(tempfile.mkdtemp(prefix="scimwatch-bench-cli-"))
    try:
        cache, label = prepare_cache(work, args.cache, args.events, args.users)
        env = isolated_env(work, cache)
        violations = import_violations(env, work)
        for row in check_rows(cache, label, env, args.runs):
            print(row, flush=True)
        for row in help_rows(env, args.runs, HELP_COMMANDS[:1] if args.smoke else HELP_COMMANDS):
            print(row, flush=True)
        verdict = "none" if not violations else "; ".join(violations)
        print(f"| non-TUI commands loading textual or needless modules | none | {verdict} |")
        if violations:
            sys.exit(1)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
