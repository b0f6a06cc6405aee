"""T-D4: random I/O errors (libfiu) under the real save path: every acknowledged save survives.

Debian's fiu-utils provides ``fiu-run`` (.ci/run installs it). A failed save must leave nothing
of itself behind; after a reopen without faults the cache holds exactly the acknowledged saves,
whole, with the watermark of the last one, and `integrity_check` is ok (EXP-13's oracle).
"""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import sys
from collections import Counter
from contextlib import closing

import pytest

from store.cache import Cache
from tests.test_reliability.fiu_worker import PER_BATCH
from tests.test_reliability.oracle import REPO

SAVES = 300

pytestmark = pytest.mark.skipif(
    shutil.which("fiu-run") is None,
    reason="fiu-run not installed (apt-get install fiu-utils; .ci/run does it)",
)


@pytest.mark.parametrize("probability", [0.01, 0.05])
def test_every_acknowledged_save_survives_random_pwrite_failures(tmp_path, probability):
    path = tmp_path / "cache.db"
    done = subprocess.run(
        [
            "fiu-run",
            "-x",
            sys.executable,
            "-m",
            "tests.test_reliability.fiu_worker",
            str(path),
            str(SAVES),
            str(probability),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.splitlines()
    assert lines[-1] == "done"  # the writer carried on after every error: no crash
    acked = {int(line.split()[1]) for line in lines if line.startswith("ack ")}
    failed = [line for line in lines if line.startswith("fail ")]
    assert failed, "no fault fired: the test would prove nothing"
    assert acked, "nothing got through"
    assert len(acked) + len(failed) == SAVES
    # A failure is reported as a SQLite error of the environment, never as corruption.
    assert not [line for line in failed if "malformed" in line or "not a database" in line]

    with Cache.open_writer(path) as cache:
        assert cache.recovered_from is None
        watermark = cache.watermark("graph.provisioning")
        with cache.reading() as db:
            ids = [row["id"] for row in db.query("SELECT id FROM provisioning_events")]
    per_batch = Counter(int(event_id[1:5]) for event_id in ids)
    assert set(per_batch) == acked  # acknowledged == present, failed == absent
    assert set(per_batch.values()) == {PER_BATCH}  # no save half-present
    assert watermark == str(max(acked))
    with closing(sqlite3.connect(path)) as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
