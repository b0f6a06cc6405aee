"""T-S1 (canary scan) and T-C2 (second collector refused), through the real CLI.

The simulated tenant's client secret and Harness token are the canaries: `collect --once`,
`check`, `export`, `doctor` and a collect that fails (TLS refused: the error path) run with them
in the environment; then every byte written (cache, -wal, export, logs, stdout, stderr) is
searched for them.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from collectors.simulator import ManualClock, SimulatedTenant
from store.cache import Cache
from tests.test_reliability.oracle import REPO


@pytest.fixture(scope="module")
def tenant() -> Iterator[SimulatedTenant]:
    with SimulatedTenant("incident", seed=5, clock=ManualClock()) as running:
        running.faults.rate_limits_enabled = False
        yield running


def scimwatch(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "dashboard", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        timeout=180,
        check=False,
    )


@pytest.fixture
def env(tenant, tmp_path) -> dict[str, str]:
    variables = dict(os.environ)  # conftest points XDG_* at a fresh home for this test
    variables.update(tenant.env())
    variables["SCIMWATCH_CONFIG"] = str(tmp_path / "absent.toml")
    # One backfill window: Graph's reporting pace (5 requests / 10 s) makes 30 take minutes.
    variables["SCIMWATCH_POLLING__BACKFILL_DAYS"] = "1"
    return variables


def canaries(tenant: SimulatedTenant) -> list[bytes]:
    values = [tenant.client_secret, tenant.harness_token]
    assert all(len(value) >= 8 for value in values)
    return [value.encode() for value in values]


def test_no_secret_reaches_the_cache_logs_exports_or_output(tenant, env, tmp_path):
    outputs = [
        scimwatch(env, "collect", "--once", "--log-format", "json"),
        scimwatch(env, "check"),
        scimwatch(env, "export", str(tmp_path / "snapshot.db")),
        scimwatch(env, "doctor"),
        # The crash path: an empty CA setting today ends in a traceback (IsADirectoryError on
        # Path("")), so crash output is scanned too. (TLS refusal: test_against_simulator.)
        scimwatch({**env, "SCIMWATCH_CA_BUNDLE": ""}, "collect", "--once"),
    ]
    assert outputs[0].returncode in (0, 1), outputs[0].stderr[-2000:]
    assert (tmp_path / "snapshot.db").is_file(), outputs[3].stderr
    assert outputs[-1].returncode != 0
    home = Path(env["XDG_DATA_HOME"]).parent
    written = [path for path in home.rglob("*") if path.is_file()]
    written += [tmp_path / "snapshot.db"]
    assert any(path.name == "cache.db" for path in written)
    blobs = [path.read_bytes() for path in written]
    blobs += [part for done in outputs for part in (done.stdout, done.stderr)]
    scanned = sum(len(blob) for blob in blobs)
    assert scanned > 100_000
    hits = [canary for canary in canaries(tenant) for blob in blobs if canary in blob]
    assert hits == []


def test_a_second_collector_is_refused_with_a_clear_message(env):
    cache_path = Path(env["XDG_DATA_HOME"]) / "scimwatch" / "cache.db"
    with Cache.open_writer(cache_path):
        refused = scimwatch(env, "collect", "--once")
    assert refused.returncode != 0
    message = refused.stderr.decode()
    assert "being written by another scimwatch process" in message
    assert f"pid {os.getpid()}" in message
    assert "Traceback" not in message
