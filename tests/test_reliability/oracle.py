"""The crash oracle: what a cache must hold after any fault, and helpers to run workers."""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import sys
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

from collectors.simulator import SimulatedTenant

REPO = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Verdict:
    """What the oracle found in a cache compared with what the source holds."""

    lost: int
    duplicated: int
    integrity: str

    @property
    def ok(self) -> bool:
        return self.lost == 0 and self.duplicated == 0 and self.integrity == "ok"


def expected_event_ids(tenant: SimulatedTenant) -> set[str]:
    events = tenant.scenario.events
    return {events.at_position(index).event_id for index in range(len(events))}


def judge(cache: Path, expected: set[str]) -> Verdict:
    """Lost and duplicated provisioning events, and `PRAGMA integrity_check`."""
    with closing(sqlite3.connect(cache)) as db:
        integrity = db.execute("PRAGMA integrity_check").fetchone()[0]
        ids = [row[0] for row in db.execute("SELECT id FROM provisioning_events")]
    return Verdict(
        lost=len(expected - set(ids)),
        duplicated=len(ids) - len(set(ids)),
        integrity=integrity,
    )


def worker_env(tenant: SimulatedTenant, cache: Path, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        SIM_TENANT_ID=tenant.tenant_id,
        SIM_CLIENT_ID=tenant.client_id,
        SIM_CLIENT_SECRET=tenant.client_secret,
        SIM_GRAPH_URL=tenant.graph_url,
        SIM_NEXTGEN_SP_ID=tenant.nextgen_sp_id,
        SIM_FIRSTGEN_SP_ID=tenant.firstgen_sp_id or "",
        SIM_CA_BUNDLE=str(tenant.ca_bundle),
        SIM_NOW=tenant.scenario.clock.now().isoformat(),
        SIM_CACHE=str(cache),
        SIM_PAGE="50",
    )
    env.update(extra)
    return env


def run_module(module: str, env: dict[str, str], timeout: float = 60) -> tuple[int, str]:
    """Run ``python -m module``; its exit status (negative: killed by that signal) and stderr."""
    done = subprocess.run(
        [sys.executable, "-m", module],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        timeout=timeout,
        check=False,
    )
    return done.returncode, done.stderr.decode(errors="replace")


def statements_run(stderr: str) -> int:
    match = re.search(r"write statements: (\d+)", stderr)
    assert match, stderr[-2000:]
    return int(match.group(1))
