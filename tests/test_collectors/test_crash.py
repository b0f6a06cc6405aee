"""SIGKILL during a backfill, again and again: every event ends up in the cache exactly once."""

from __future__ import annotations

import random
import sqlite3
import subprocess
import sys
from contextlib import closing
from pathlib import Path

import pytest

from collectors.simulator import ManualClock, SimulatedTenant
from tests.test_reliability.oracle import worker_env as oracle_worker_env

REPO = Path(__file__).resolve().parents[2]
KILLS = 20


@pytest.fixture(scope="module")
def tenant():
    with SimulatedTenant("incident", seed=11, clock=ManualClock()) as running:
        running.faults.rate_limits_enabled = False
        yield running


def worker_env(tenant: SimulatedTenant, cache: Path) -> dict[str, str]:
    return oracle_worker_env(tenant, cache, SIM_PAGE="10")


def start(env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.test_collectors.collect_worker"],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def wait_until_collecting(process: subprocess.Popen[bytes]) -> None:
    """Read the worker's log until it has committed a first batch.

    Start-up (imports, the token) takes a variable while on a loaded machine; waiting for the
    first committed poll makes every kill land inside the backfill, not before it.
    """
    assert process.stderr is not None
    for line in process.stderr:
        if b'"poll_ok"' in line or b'"poll_failed"' in line:
            return


def backfilling(cache: Path) -> bool:
    """Whether the cache holds a half-done backfill (its watermark is the JSON state)."""
    if not cache.exists():
        return False
    with closing(sqlite3.connect(cache)) as db:
        try:
            row = db.execute(
                "SELECT value FROM watermarks WHERE source = 'graph.provisioning'"
            ).fetchone()
        except sqlite3.OperationalError:
            return False
    return row is not None and str(row[0]).startswith("{")


def test_sigkill_during_backfill_loses_and_duplicates_nothing(tenant, tmp_path):
    cache = tmp_path / "cache.db"
    env = worker_env(tenant, cache)
    chooser = random.Random(4)
    kills = 0
    mid_backfill = 0
    while kills < KILLS:
        process = start(env)
        wait_until_collecting(process)
        try:
            # Let it run a random while, then kill it wherever it is.
            process.wait(timeout=chooser.uniform(0.0, 0.5))
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()
            kills += 1
            mid_backfill += backfilling(cache)
            continue
        process.communicate()
        if process.returncode == 0:
            cache.unlink()  # finished before the kill: start over so every kill hits a backfill
            for suffix in ("-wal", "-shm"):
                Path(f"{cache}{suffix}").unlink(missing_ok=True)
    assert mid_backfill >= KILLS // 4  # the kills did land in the middle of backfills
    final = start(env)
    final.communicate(timeout=120)
    assert final.returncode == 0
    events = tenant.scenario.events
    expected = sorted({events.at_position(i).event_id for i in range(len(events))})
    with closing(sqlite3.connect(cache)) as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        ids = [row[0] for row in db.execute("SELECT id FROM provisioning_events")]
    assert len(ids) == len(set(ids))
    assert sorted(ids) == expected
