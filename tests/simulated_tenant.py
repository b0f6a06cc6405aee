"""scimwatch's connections to a running `SimulatedTenant`, and a full collection from it.

For the tests of every layer that run against the simulated tenant over loopback HTTPS.
"""

from __future__ import annotations

from datetime import timedelta

from pydantic import SecretStr

from collectors.config import GraphConnection, HarnessConnection, PollingConfig, build_collectors
from collectors.runner import poll_source
from collectors.simulator import SimulatedTenant
from store.cache import Cache


def connections(tenant: SimulatedTenant) -> tuple[GraphConnection, HarnessConnection]:
    """The tenant's Graph (client secret) and Harness connections, trusting its CA."""
    graph = GraphConnection(
        tenant_id=tenant.tenant_id,
        client_id=tenant.client_id,
        client_secret=SecretStr(tenant.client_secret),
        login_url=tenant.graph_url,
        graph_url=tenant.graph_url,
        nextgen_sp_id=tenant.nextgen_sp_id,
        firstgen_sp_id=tenant.firstgen_sp_id,
        ca_bundle=tenant.ca_bundle,
    )
    harness = HarnessConnection(
        account_id=tenant.account_id,
        base_url=tenant.harness_url,
        token=SecretStr(tenant.harness_token),
        ca_bundle=tenant.ca_bundle,
    )
    return graph, harness


def graph_with(tenant: SimulatedTenant, **update: object) -> GraphConnection:
    """The tenant's Graph connection with no client secret and `update` applied."""
    graph, _ = connections(tenant)
    return GraphConnection.model_validate(graph.model_dump() | {"client_secret": None} | update)


async def collect_everything(tenant: SimulatedTenant, cache: Cache) -> None:
    """Poll every source of the simulated tenant until each is complete (limits off)."""
    graph, harness = connections(tenant)
    built = build_collectors(
        graph,
        harness,
        PollingConfig(backfill_window=timedelta(days=30)),
        clock=tenant.scenario.clock.now,
        reporting_rate=(1000, 1.0),
    )
    try:
        for collector in built.collectors:
            for _ in range(50):
                if (await poll_source(collector, cache)).complete:
                    break
    finally:
        await built.aclose()
