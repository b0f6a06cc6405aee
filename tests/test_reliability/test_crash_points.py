"""T-D1/T-D2: SIGKILL at a chosen write statement, then resume; and the oracle has teeth.

Complements tests/test_collectors/test_crash.py (20 kills at random times): here the fault point
moves over the save path's statements (SQLite's crash-test structure), and the same oracle run
against a deliberately non-atomic save finds the loss. bench/bench_crash_points.py loops over
every statement of a backfill.
"""

from __future__ import annotations

import signal

import pytest

from collectors.simulator import ManualClock, SimulatedTenant
from tests.test_reliability.oracle import expected_event_ids, judge, run_module, worker_env

WORKER = "tests.test_reliability.crash_worker"


@pytest.fixture(scope="module")
def tenant():
    with SimulatedTenant("incident", seed=11, clock=ManualClock()) as running:
        running.faults.rate_limits_enabled = False
        yield running


def crash_then_resume(tenant, cache, variant: str, crash_at: int):
    status, _ = run_module(
        WORKER, worker_env(tenant, cache, SAVE_VARIANT=variant, CRASH_AT=str(crash_at))
    )
    assert status == -signal.SIGKILL  # the worker died at the chosen statement
    status, stderr = run_module(WORKER, worker_env(tenant, cache, SAVE_VARIANT=variant))
    assert status == 0, stderr[-2000:]
    return judge(cache, expected_event_ids(tenant))


# 2: inside the first transaction (before its COMMIT); 4: the next one's BEGIN; 40: mid-backfill.
@pytest.mark.parametrize("crash_at", [2, 4, 40])
def test_a_kill_at_any_statement_of_the_save_loses_and_duplicates_nothing(
    tenant, tmp_path, crash_at
):
    verdict = crash_then_resume(tenant, tmp_path / "cache.db", "atomic", crash_at)
    assert verdict.ok, verdict


def test_the_oracle_catches_a_save_that_commits_the_watermark_before_the_data(tenant, tmp_path):
    # Statement 4 is the data transaction's BEGIN, after the watermark's own COMMIT.
    verdict = crash_then_resume(tenant, tmp_path / "cache.db", "watermark_first", 4)
    assert verdict.integrity == "ok"
    assert verdict.lost > 0  # the oracle fails a broken save: a passing run means something
