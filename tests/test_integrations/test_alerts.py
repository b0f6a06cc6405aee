"""Webhook alerts against a local receiver: one per state change, retries, no secrets."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from collectors.notify import Webhook, announce_changes, payload
from collectors.simulator import ManualClock, SimulatedTenant
from store.alerts import Change, Condition
from store.cache import Cache
from tests.builders import NOW, Tenant
from tests.test_reliability.oracle import REPO

SECRET_TOKEN = "pat.acct.token.SUPERSECRET"


class Receiver:
    """A webhook endpoint on loopback that records bodies and can fail the first requests."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.raw: list[bytes] = []
        self.fail_next = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.raw.append(body)
                if receiver.fail_next > 0:
                    receiver.fail_next -= 1
                    self.send_response(503)
                    self.end_headers()
                    return
                receiver.bodies.append(json.loads(body))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook/SECRETPATH"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as running:
        yield running


@pytest.fixture
def tenant(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("SCIMWATCH_HARNESS__TOKEN", SECRET_TOKEN)
    with Cache.open_writer(tmp_path / "cache.db") as cache:
        yield Tenant(cache)


async def no_sleep(seconds: float) -> None:
    no_sleep.calls.append(seconds)  # type: ignore[attr-defined]


no_sleep.calls = []  # type: ignore[attr-defined]


async def announce(tenant: Tenant, webhook: Webhook) -> list[Change]:
    async with httpx.AsyncClient() as client:
        return await announce_changes(tenant.cache, [webhook], client, NOW, [], sleep=no_sleep)


def quarantine(tenant: Tenant) -> None:
    tenant.job(
        status_code="Quarantine",
        quarantine_reason="EncounteredQuarantineException",
        quarantine_series_began=NOW - timedelta(hours=1),
    )


async def test_one_alert_per_state_change_across_repeated_polls(tenant, receiver):
    webhook = Webhook(url=SecretStr(receiver.url), format="generic")
    tenant.job()
    assert await announce(tenant, webhook) == []
    quarantine(tenant)
    for _ in range(3):
        await announce(tenant, webhook)
    assert [(b["kind"], b["key"]) for b in receiver.bodies] == [
        ("raised", "quarantine:scim.harness.0001")
    ]
    tenant.job()
    await announce(tenant, webhook)
    await announce(tenant, webhook)
    assert [b["kind"] for b in receiver.bodies] == ["raised", "resolved"]


async def test_5xx_is_retried_with_backoff(tenant, receiver):
    webhook = Webhook(url=SecretStr(receiver.url), format="slack")
    quarantine(tenant)
    receiver.fail_next = 2
    no_sleep.calls.clear()  # type: ignore[attr-defined]
    await announce(tenant, webhook)
    assert len(receiver.raw) == 3
    assert len(receiver.bodies) == 1
    assert no_sleep.calls == [1.0, 2.0]  # type: ignore[attr-defined]
    assert receiver.bodies[0]["text"].startswith("scimwatch CRITICAL: nextgen provisioning job")


async def test_an_undelivered_alert_is_sent_again_next_round(tenant, receiver):
    webhook = Webhook(url=SecretStr(receiver.url), format="teams")
    quarantine(tenant)
    receiver.fail_next = 10
    await announce(tenant, webhook)
    assert receiver.bodies == []
    receiver.fail_next = 0
    await announce(tenant, webhook)
    assert len(receiver.bodies) == 1
    card = receiver.bodies[0]["attachments"][0]
    assert card["contentType"] == "application/vnd.microsoft.card.adaptive"


async def test_no_secret_in_any_payload(tenant, receiver):
    quarantine(tenant)
    tenant.event("bob", cycle="c1", minutes_ago=80, status="failure", error_code="X")
    tenant.event("bob", cycle="c2", minutes_ago=40, status="failure", error_code="X")
    for fmt in ("generic", "slack", "teams"):
        with tenant.cache.transaction() as db:
            db.execute("DELETE FROM alert_state")
        await announce(tenant, Webhook(url=SecretStr(receiver.url), format=fmt))
    assert receiver.raw
    for body in receiver.raw:
        assert SECRET_TOKEN.encode() not in body
        assert b"SECRETPATH" not in body


def test_payload_formats_escape_nothing_into_structure():
    change = Change(kind="raised", condition=Condition(key="k", severity="warning", message='"}]{'))
    for fmt in ("generic", "slack", "teams"):
        encoded = json.dumps(payload(change, fmt, NOW))
        assert json.loads(encoded) == payload(change, fmt, NOW)


def test_collect_once_sends_the_alerts_it_raises_to_the_configured_webhook(receiver, tmp_path):
    """`scimwatch collect --once` on a tenant with failing provisioning: the webhook set in
    SCIMWATCH_ALERTS__WEBHOOKS gets the raised alerts, without the tenant's secrets."""
    with SimulatedTenant("incident", seed=5, clock=ManualClock()) as simulated:
        simulated.faults.rate_limits_enabled = False
        env = dict(os.environ)  # conftest points XDG_* at a fresh home for this test
        env.update(simulated.env())
        env["SCIMWATCH_CONFIG"] = str(tmp_path / "absent.toml")
        env["SCIMWATCH_POLLING__BACKFILL_DAYS"] = "1"
        env["SCIMWATCH_CACHE_PATH"] = str(tmp_path / "cache.db")
        env["SCIMWATCH_ALERTS__WEBHOOKS"] = json.dumps([{"url": receiver.url, "format": "generic"}])
        done = subprocess.run(
            [sys.executable, "-m", "dashboard", "collect", "--once"],
            cwd=REPO,
            env=env,
            capture_output=True,
            timeout=180,
            check=False,
        )
        secrets = [simulated.client_secret.encode(), simulated.harness_token.encode()]
    assert done.returncode == 0, done.stderr.decode()
    raised = {body["key"] for body in receiver.bodies if body["kind"] == "raised"}
    assert raised, receiver.raw
    with Cache.open_reader(tmp_path / "cache.db") as cache, cache.reading() as db:
        alerted = {row["key"] for row in db.query("SELECT key FROM alert_state")}
    assert raised == alerted  # each one delivered once, and remembered as delivered
    for body in receiver.raw:
        assert not any(secret in body for secret in secrets)
        assert b"SECRETPATH" not in body
