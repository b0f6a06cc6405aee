"""The benchmarks run at tiny sizes: their harness stays correct (speed is not judged here)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.test_reliability.oracle import REPO


def _smoke_rows(module: str) -> list[str]:
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
    return rows


@pytest.mark.parametrize("module", ["bench.bench_store", "bench.bench_ingest"])
def test_benchmark_smoke_run(module):
    _smoke_rows(module)


def test_cli_benchmark_checks_a_cache_and_finds_no_textual_in_headless_commands():
    rows = _smoke_rows("bench.bench_cli")
    check_rows = [row for row in rows if "answered" in row]
    assert len(check_rows) == 2
    assert all("UNKNOWN" not in row for row in check_rows)
    assert rows[-1].endswith("| none | none |"), rows[-1]


def test_idle_benchmark_samples_a_collect_daemon_after_its_first_polls():
    rows = _smoke_rows("bench.bench_idle")
    assert [row.split(": ")[1].split(" |")[0].split(",")[0] for row in rows] == [
        "first poll of every source",
        "CPU while idle",
        "RSS while idle",
    ]
