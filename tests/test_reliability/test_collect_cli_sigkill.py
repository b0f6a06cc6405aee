"""SIGKILL the real `scimwatch collect --once` during a backfill, then let it finish.

The worker-based test (tests/test_collectors/test_crash.py) kills 20 times cheaply; this one
proves the same through the command an admin runs: every provisioning event the simulated
tenant holds within the backfill range ends up in the cache exactly once, the derived cycle
counts agree with the events, and SQLite's integrity check passes.
"""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from contextlib import closing
from datetime import timedelta
from pathlib import Path

import pytest

from collectors.simulator import SimulatedTenant
from tests.test_reliability.oracle import REPO

KILLS = 5


@pytest.fixture(scope="module")
def tenant() -> Iterator[SimulatedTenant]:
    # Real time (speed 1): the CLI reads the wall clock, so the tenant's history must be recent.
    with SimulatedTenant("incident", seed=13, speed=1.0) as running:
        running.faults.rate_limits_enabled = False
        yield running


def collect(env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "dashboard", "collect", "--once", "--log-format", "json"],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def wait_for_first_commit(process: subprocess.Popen[bytes]) -> bool:
    assert process.stderr is not None
    return any(b'"poll_ok"' in line and b"graph.provisioning" in line for line in process.stderr)


def backfilling(cache: Path) -> bool:
    """Whether the provisioning watermark is the JSON of an unfinished backfill."""
    with closing(sqlite3.connect(cache)) as db:
        row = db.execute(
            "SELECT value FROM watermarks WHERE source = 'graph.provisioning'"
        ).fetchone()
    return row is not None and str(row[0]).startswith("{")


def test_sigkilled_collect_command_resumes_with_every_event_once(tenant, tmp_path):
    cache = tmp_path / "cache.db"
    env = dict(os.environ)
    env.update(tenant.env())
    env.update(
        SCIMWATCH_CONFIG=str(tmp_path / "absent.toml"),
        SCIMWATCH_CACHE_PATH=str(cache),
        SCIMWATCH_POLLING__BACKFILL_DAYS="3",
    )
    first_start = tenant.scenario.clock.now()
    chooser = random.Random(13)
    mid_backfill = attempts = 0
    while mid_backfill < KILLS and attempts < 4 * KILLS:
        attempts += 1
        process = collect(env)
        assert wait_for_first_commit(process)
        try:
            process.wait(timeout=chooser.uniform(0.0, 0.4))
        except subprocess.TimeoutExpired:
            process.send_signal(signal.SIGKILL)
        process.communicate(timeout=30)
        if backfilling(cache):
            mid_backfill += 1
        else:  # the backfill finished first: start over, so every kill counted hits one
            for leftover in tmp_path.glob("cache.db*"):
                leftover.unlink()
            first_start = tenant.scenario.clock.now()
    assert mid_backfill == KILLS
    final = collect(env)
    _, stderr = final.communicate(timeout=240)
    assert final.returncode == 0, stderr.decode(errors="replace")[-2000:]
    # Everything the backfill range holds (the first run's start minus three days, with a
    # minute's margin for the boundary) must be there once.
    events = tenant.scenario.events
    horizon = first_start - timedelta(days=3) + timedelta(minutes=1)
    expected = {
        events.at_position(i).event_id
        for i in range(len(events))
        if events.at_position(i).at >= horizon
    }
    assert expected, "the scenario has events in the backfill range"
    with closing(sqlite3.connect(cache)) as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        ids = [row[0] for row in db.execute("SELECT id FROM provisioning_events")]
        per_cycle = dict(
            db.execute("SELECT cycle_id, count(*) FROM provisioning_events GROUP BY cycle_id")
        )
        counted = dict(db.execute("SELECT cycle_id, events FROM cycles"))
    assert len(ids) == len(set(ids))
    assert expected <= set(ids)
    assert counted == per_cycle
