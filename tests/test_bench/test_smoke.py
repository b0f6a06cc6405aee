"""The benchmarks run at tiny sizes: their harness stays correct (speed is not judged here)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.test_reliability.oracle import REPO


@pytest.mark.parametrize("module", ["bench.bench_store", "bench.bench_ingest"])
def test_benchmark_smoke_run(module):
    completed = subprocess.run(
        [sys.executable, "-m", module, "--smoke"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    rows = [line for line in completed.stdout.splitlines() if line.startswith("| ")]
    assert rows, completed.stdout[-2000:]
    assert all("nan" not in row.lower() for row in rows)
