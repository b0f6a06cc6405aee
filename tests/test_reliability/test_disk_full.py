"""T-D5: the disk fills up mid-backfill; the poll fails cleanly, says why, and resumes later.

The cap is a file-size limit (RLIMIT_FSIZE) in a subprocess, which needs no root and no tmpfs.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from contextlib import closing
from pathlib import Path

from tests.test_reliability.disk_full_worker import PER_STEP, STEPS
from tests.test_reliability.oracle import REPO


def collect(path: Path, limit: int) -> tuple[int, list[dict[str, object]]]:
    done = subprocess.run(
        [sys.executable, "-m", "tests.test_reliability.disk_full_worker", str(path), str(limit)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    lines = [json.loads(line) for line in done.stderr.splitlines() if line.startswith("{")]
    return done.returncode, lines


def contents(path: Path) -> tuple[str, dict[str, int], str | None]:
    with closing(sqlite3.connect(path)) as db:
        integrity = db.execute("PRAGMA integrity_check").fetchone()[0]
        steps: dict[str, int] = {}
        for (event_id,) in db.execute("SELECT id FROM provisioning_events"):
            steps[event_id[:4]] = steps.get(event_id[:4], 0) + 1
        row = db.execute(
            "SELECT value FROM watermarks WHERE source = 'graph.provisioning'"
        ).fetchone()
    return integrity, steps, row[0] if row else None


def test_disk_full_fails_the_poll_cleanly_and_the_next_run_resumes(tmp_path):
    path = tmp_path / "cache.db"
    status, log = collect(path, limit=12 * 1024 * 1024)
    assert status == 1  # `--once` says the source failed
    (crash,) = [line for line in log if line["event"] in ("poll_crashed", "poll_failed")]
    # Explained, not a traceback: EFBIG from the size cap is SQLite's "disk I/O error", a full
    # filesystem's ENOSPC its "database or disk is full".
    assert "disk" in str(crash["error"])
    assert log[-1]["event"] == "collect_stopped"

    integrity, steps, watermark = contents(path)
    assert integrity == "ok"
    assert 0 < len(steps) < STEPS  # some windows were saved before the disk filled
    assert set(steps.values()) == {PER_STEP}  # nothing partial
    assert watermark == str(len(steps))  # the watermark is that of the last whole save

    status, log = collect(path, limit=0)  # space freed: resume where it stopped
    assert status == 0
    polls = [line for line in log if line["event"] == "poll_ok"]
    assert len(polls) == STEPS - len(steps)  # no window fetched twice
    integrity, steps, watermark = contents(path)
    assert integrity == "ok"
    assert len(steps) == STEPS
    assert set(steps.values()) == {PER_STEP}
    assert watermark == str(STEPS)
