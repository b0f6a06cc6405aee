"""The simulated tenant in its own process, so its CPU never counts against the client measured.

    with SimulatorProcess("large", rate_limits=False) as sim:
        sim.info["graph_url"], sim.throttled()

The child serves `SimulatedTenant(scenario, clock=ManualClock())` over loopback HTTPS and
answers "throttled" (how many requests Graph's natural limits refused so far) and "stop".
"""

from __future__ import annotations

import multiprocessing
from datetime import datetime
from multiprocessing.connection import Connection
from typing import Any


def _serve(scenario: str, rate_limits: bool, seed: int, conn: Connection) -> None:
    from collectors.simulator import ManualClock, SimulatedTenant

    with SimulatedTenant(scenario, seed=seed, clock=ManualClock()) as tenant:  # type: ignore[arg-type]
        faults = tenant.faults
        faults.rate_limits_enabled = rate_limits
        refused = [0]
        over_limit = faults.over_limit

        def counting(key: str, limit: int, window: float, now: float) -> float | None:
            wait = over_limit(key, limit, window, now)
            if wait is not None:
                refused[0] += 1
            return wait

        faults.over_limit = counting  # type: ignore[method-assign]
        conn.send(
            {
                "tenant_id": tenant.tenant_id,
                "client_id": tenant.client_id,
                "client_secret": tenant.client_secret,
                "graph_url": tenant.graph_url,
                "harness_url": tenant.harness_url,
                "harness_token": tenant.harness_token,
                "account_id": tenant.account_id,
                "nextgen_sp_id": tenant.nextgen_sp_id,
                "firstgen_sp_id": tenant.firstgen_sp_id,
                "ca_bundle": str(tenant.ca_bundle),
                "now": tenant.scenario.clock.now(),
                "env": tenant.env(),
            }
        )
        while True:
            command = conn.recv()
            if command == "throttled":
                conn.send(refused[0])
            elif command == "requests":
                conn.send(len(faults.requests))
            else:
                break


class SimulatorProcess:
    """Start the simulator in a spawned process; `info` describes how to reach it."""

    def __init__(
        self, scenario: str = "large", *, rate_limits: bool = False, seed: int = 5
    ) -> None:
        self._args = (scenario, rate_limits, seed)
        self.info: dict[str, Any] = {}

    def __enter__(self) -> SimulatorProcess:
        context = multiprocessing.get_context("spawn")
        self._conn, child = context.Pipe()
        self._process = context.Process(target=_serve, args=(*self._args, child), daemon=True)
        self._process.start()
        self.info = self._conn.recv()
        return self

    @property
    def now(self) -> datetime:
        return self.info["now"]  # type: ignore[no-any-return]

    def throttled(self) -> int:
        """Requests refused by the natural rate limits since the start."""
        self._conn.send("throttled")
        return int(self._conn.recv())

    def __exit__(self, *exc: object) -> None:
        self._conn.send("stop")
        self._process.join(10)
        if self._process.is_alive():
            self._process.terminate()
            self._process.join()
