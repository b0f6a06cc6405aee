"""Metrics: the exposition parses back with prometheus-client's own parser."""

from __future__ import annotations

import urllib.request
from datetime import timedelta
from pathlib import Path

import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from collectors.metrics import registry_for, serve_metrics, write_metrics_file
from dashboard.settings import PollingSettings, source_intervals
from store.cache import Cache
from tests.builders import NOW, Tenant

INTERVALS = source_intervals(PollingSettings())


@pytest.fixture
def tenant(tmp_path: Path):
    with Cache.open_writer(tmp_path / "cache.db") as cache:
        built = Tenant(cache)
        built.job(
            status_code="Quarantine",
            quarantine_reason="TooManyDeletes",
            quarantine_series_began=NOW - timedelta(hours=1),
        )
        built.poll("harness.ng", minutes_ago=2)
        built.poll("harness.sso", ok=False, error_kind="unavailable")
        built.event("bob", cycle="c1", minutes_ago=80, status="failure", error_code="X")
        built.event("bob", cycle="c2", minutes_ago=40, status="failure", error_code="X")
        built.event("amy", cycle="c2", minutes_ago=39, action="update")
        built.user("user1", "user1@example.com")
        built.user("user2", "user_2@example.com")
        built.assign("user1")
        built.assign("user2")
        built.assign("user1", app="firstgen")
        yield built


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_metrics_parse_back_with_the_values_of_the_cache(tenant):
    registry = registry_for(tenant.cache, INTERVALS, lambda: NOW)
    values = samples(generate_latest(registry).decode())
    assert values[("scimwatch_pending_retries", ())] == 1
    assert values[("scimwatch_escalated_retries", ())] == 1
    assert values[("scimwatch_cycles", ())] == 2
    assert values[("scimwatch_events_by_status", (("status", "failure"),))] == 2
    assert values[("scimwatch_events_by_action", (("action", "update"),))] == 1
    assert values[("scimwatch_job_quarantined", (("app", "nextgen"),))] == 1
    assert values[("scimwatch_job_state", (("app", "nextgen"), ("state", "quarantine")))] == 1
    assert values[("scimwatch_sso_conflicts", (("kind", "firstgen_unassigned"),))] == 1
    assert values[("scimwatch_source_up", (("source", "graph.provisioning"),))] == 1
    assert values[("scimwatch_source_up", (("source", "harness.sso"),))] == 0
    assert values[("scimwatch_source_last_success_age_seconds", (("source", "harness.ng"),))] == 120
    assert (
        values[("scimwatch_source_last_success_age_seconds", (("source", "harness.roles"),))] == -1
    )


def test_textfile_output_is_written_atomically_and_parses(tenant, tmp_path):
    registry = registry_for(tenant.cache, INTERVALS, lambda: NOW)
    out = tmp_path / "scimwatch.prom"
    write_metrics_file(registry, out)
    assert samples(out.read_text())[("scimwatch_pending_retries", ())] == 1
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith("scimwatch.prom")] == [
        "scimwatch.prom"
    ]


def test_metrics_are_served_on_loopback(tenant):
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    serve_metrics(registry_for(tenant.cache, INTERVALS, lambda: NOW), port)
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        body = response.read().decode()
    assert samples(body)[("scimwatch_escalated_retries", ())] == 1
