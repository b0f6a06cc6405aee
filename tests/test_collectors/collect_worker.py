"""A `collect --once` of the provisioning log against a simulated tenant, for crash tests.

Run as ``python -m tests.test_collectors.collect_worker``; everything, secrets included,
comes from the environment (never argv).
"""

from __future__ import annotations

import asyncio
import os
import sys
from datetime import datetime, timedelta
from pathlib import Path

from pydantic import SecretStr

from collectors.config import GraphConnection, PollingConfig, build_collectors
from collectors.headless import make_logger, run_collect
from store.cache import Cache


async def main() -> int:
    env = os.environ
    graph = GraphConnection(
        tenant_id=env["SIM_TENANT_ID"],
        client_id=env["SIM_CLIENT_ID"],
        client_secret=SecretStr(env["SIM_CLIENT_SECRET"]),
        login_url=env["SIM_GRAPH_URL"],
        graph_url=env["SIM_GRAPH_URL"],
        nextgen_sp_id=env["SIM_NEXTGEN_SP_ID"],
        firstgen_sp_id=env.get("SIM_FIRSTGEN_SP_ID") or None,
        ca_bundle=Path(env["SIM_CA_BUNDLE"]),
    )
    now = datetime.fromisoformat(env["SIM_NOW"])
    polling = PollingConfig(backfill_window=timedelta(days=1), page_size=int(env["SIM_PAGE"]))
    built = build_collectors(graph, None, polling, clock=lambda: now, reporting_rate=(1000, 1.0))
    try:
        provisioning = [c for c in built.collectors if c.source == "graph.provisioning"]
        with Cache.open_writer(Path(env["SIM_CACHE"])) as cache:
            return await run_collect(provisioning, cache, polling, True, make_logger("json"))
    finally:
        await built.aclose()


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
