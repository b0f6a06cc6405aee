"""The peer: a plain script a user might write instead, with Microsoft's msgraph-sdk + sqlite-utils.

Pages `auditLogs/provisioning` of the simulator ($top=500, everything newer than `--days` days
before the scenario's now) with `GraphServiceClient`, flattens each `ProvisioningObjectSummary`
into a row (step and property details as JSON text), and inserts each page with sqlite-utils
`insert_all(ignore=True)` (no indexes, no derived state: less work than scimwatch does).

Run alone: .venv/bin/python -m bench.peer_msgraph --info sim.json --db /tmp/peer.db --days 3
(bench.bench_ingest writes the info file and runs this against a simulator process).
Prints one JSON line: events, wall seconds, CPU seconds of this process during the fetch+insert.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import ssl
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import sqlite_utils
from kiota_abstractions.authentication import (
    AccessTokenProvider,
    AllowedHostsValidator,
    BaseBearerTokenAuthenticationProvider,
)
from msgraph import GraphRequestAdapter, GraphServiceClient
from msgraph.generated.audit_logs.provisioning.provisioning_request_builder import (
    ProvisioningRequestBuilder,
)
from msgraph_core import GraphClientFactory


class StaticToken(AccessTokenProvider):
    """A token fetched once (the real script would use azure-identity's credential)."""

    def __init__(self, token: str) -> None:
        self.token = token

    async def get_authorization_token(
        self, uri: str, additional_authentication_context: Any = None
    ) -> str:
        return self.token

    def get_allowed_hosts_validator(self) -> AllowedHostsValidator:
        return AllowedHostsValidator([])


def _text(value: Any) -> str:
    return "" if value is None else str(getattr(value, "value", value))


def flatten(item: Any) -> dict[str, Any]:
    status = item.provisioning_status_info
    error = status.error_information if status else None
    source = item.source_identity
    target = item.target_identity
    return {
        "id": item.id,
        "activity_date_time": item.activity_date_time.isoformat()
        if item.activity_date_time
        else None,
        "job_id": item.job_id,
        "cycle_id": item.cycle_id,
        "change_id": item.change_id,
        "service_principal_id": item.service_principal.id if item.service_principal else None,
        "action": _text(item.provisioning_action),
        "status": _text(status.status) if status else "",
        "source_id": source.id if source else None,
        "source_type": source.identity_type if source else None,
        "source_name": source.display_name if source else None,
        "target_id": target.id if target else None,
        "target_name": target.display_name if target else None,
        "error_code": error.error_code if error else None,
        "error_category": _text(error.error_category) if error else None,
        "reason": error.reason if error else None,
        "recommended_action": error.recommended_action if error else None,
        "duration_ms": item.duration_in_milliseconds,
        "initiated_by": item.initiated_by.display_name if item.initiated_by else None,
        "steps": json.dumps(
            [
                {
                    "name": step.name,
                    "type": _text(step.provisioning_step_type),
                    "status": _text(step.status),
                    "description": step.description,
                    "details": step.details.additional_data if step.details else {},
                }
                for step in item.provisioning_steps or []
            ],
            default=str,
        ),
        "modified_properties": json.dumps(
            [
                {"name": prop.display_name, "old": prop.old_value, "new": prop.new_value}
                for prop in item.modified_properties or []
            ],
            default=str,
        ),
    }


async def fetch_token(info: dict[str, Any], verify: ssl.SSLContext) -> str:
    async with httpx.AsyncClient(verify=verify) as http:
        response = await http.post(
            f"{info['graph_url']}/{info['tenant_id']}/oauth2/v2.0/token",
            data={
                "client_id": info["client_id"],
                "client_secret": info["client_secret"],
                "grant_type": "client_credentials",
                "scope": "https://graph.microsoft.com/.default",
            },
        )
        return str(response.json()["access_token"])


async def run(info: dict[str, Any], db_path: Path, days: float) -> dict[str, Any]:
    verify = ssl.create_default_context(cafile=info["ca_bundle"])
    token = await fetch_token(info, verify)
    http = GraphClientFactory.create_with_default_middleware(
        client=httpx.AsyncClient(verify=verify, timeout=60)
    )
    adapter = GraphRequestAdapter(
        BaseBearerTokenAuthenticationProvider(StaticToken(token)), client=http
    )
    adapter.base_url = info["graph_url"] + "/v1.0"
    client = GraphServiceClient(request_adapter=adapter)
    db = sqlite_utils.Database(db_path)
    since = datetime.fromisoformat(info["now"]) - timedelta(days=days)
    config = ProvisioningRequestBuilder.ProvisioningRequestBuilderGetRequestConfiguration(
        query_parameters=ProvisioningRequestBuilder.ProvisioningRequestBuilderGetQueryParameters(
            filter=f"activityDateTime gt {since.strftime('%Y-%m-%dT%H:%M:%SZ')}", top=500
        )
    )
    count = 0
    cpu, wall = time.process_time(), time.perf_counter()
    page = await client.audit_logs.provisioning.get(request_configuration=config)
    while page is not None:
        rows = [flatten(item) for item in page.value or []]
        db["events"].insert_all(rows, pk="id", ignore=True)
        count += len(rows)
        if not page.odata_next_link:
            break
        page = await client.audit_logs.provisioning.with_url(page.odata_next_link).get()
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    await http.aclose()
    stored = db["events"].count
    db.close()
    return {"events": count, "stored": stored, "wall": wall, "cpu": cpu}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--info", type=Path, required=True)
    parser.add_argument("--db", type=Path, required=True)
    parser.add_argument("--days", type=float, default=3.0)
    args = parser.parse_args()
    info = json.loads(args.info.read_text())
    print(json.dumps(asyncio.run(run(info, args.db, args.days))))


if __name__ == "__main__":
    main()
