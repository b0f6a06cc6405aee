"""Time to serve pages of 1,000 events from the ``large`` scenario, and peak memory.

Run: .venv/bin/python bench/bench_simulator.py
"""

from __future__ import annotations

import resource
import ssl
import statistics
import time
import tracemalloc

import httpx

from collectors.simulator import ManualClock, Scenario, SimulatedTenant
from collectors.simulator.events import render_event


def build_large() -> tuple[float, int]:
    tracemalloc.start()
    started = time.perf_counter()
    scenario = Scenario("large", seed=5, clock=ManualClock())
    elapsed = time.perf_counter() - started
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert len(scenario.events) == 1_000_000
    return elapsed, peak


def render_only() -> float:
    scenario = Scenario("large", seed=5, clock=ManualClock())
    started = time.perf_counter()
    for position in range(500_000, 501_000):
        render_event(scenario.events.at_position(position))
    return time.perf_counter() - started


def serve_pages(pages: int = 10) -> list[float]:
    timings = []
    with SimulatedTenant("large", seed=5, clock=ManualClock()) as tenant:
        tenant.faults.rate_limits_enabled = False
        context = ssl.create_default_context(cafile=str(tenant.ca_bundle))
        with httpx.Client(verify=context, timeout=60) as http:
            token = http.post(
                f"{tenant.graph_url}/{tenant.tenant_id}/oauth2/v2.0/token",
                data={
                    "client_id": tenant.client_id,
                    "client_secret": tenant.client_secret,
                    "grant_type": "client_credentials",
                    "scope": "https://graph.microsoft.com/.default",
                },
            ).json()["access_token"]
            http.headers["Authorization"] = f"Bearer {token}"
            url: str | None = tenant.graph_url + "/v1.0/auditLogs/provisioning?$top=1000"
            for _ in range(pages):
                assert url is not None
                started = time.perf_counter()
                body = http.get(url).json()
                timings.append(time.perf_counter() - started)
                assert len(body["value"]) == 1000
                url = body.get("@odata.nextLink")
    return timings


def main() -> None:
    build_seconds, build_peak = build_large()
    print(
        f"build large scenario: {build_seconds:.2f} s, tracemalloc peak {build_peak / 1e6:.1f} MB"
    )
    print(f"render 1,000 events (no HTTP): {render_only() * 1000:.0f} ms")
    timings = serve_pages()
    print(
        "serve a page of 1,000 events over HTTPS (10 pages): "
        f"median {statistics.median(timings) * 1000:.0f} ms, "
        f"max {max(timings) * 1000:.0f} ms"
    )
    print(f"process peak RSS: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")


if __name__ == "__main__":
    main()
