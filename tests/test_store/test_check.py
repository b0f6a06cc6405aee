"""`check`: each state and exit code on hand-built caches, and the perfdata line."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from dashboard.cli import main
from dashboard.settings import PollingSettings, source_intervals
from store.cache import Cache
from store.check import Status, evaluate
from tests.builders import NOW, Tenant

INTERVALS = source_intervals(PollingSettings())


@pytest.fixture
def tenant(tmp_path: Path):
    with Cache.open_writer(tmp_path / "cache.db") as cache:
        yield Tenant(cache)


def healthy(tenant: Tenant) -> None:
    for source in INTERVALS:
        tenant.poll(source, minutes_ago=1)
    tenant.job()


def judge(tenant: Tenant):
    freshness = tenant.cache.freshness(NOW, INTERVALS)
    with tenant.cache.reading() as db:
        return evaluate(db, NOW, freshness)


def test_a_healthy_tenant_is_ok_with_perfdata(tenant):
    healthy(tenant)
    result = judge(tenant)
    assert result.status == Status.OK
    line = result.summary_line()
    assert line.startswith("SCIMWATCH OK - all healthy | ")
    assert "pending_retries=0" in line
    assert "stale_s=60" in line


def test_a_never_collected_cache_is_unknown(tenant):
    assert judge(tenant).status == Status.UNKNOWN


def test_quarantine_is_critical(tenant):
    healthy(tenant)
    tenant.job(
        status_code="Quarantine",
        quarantine_reason="EncounteredQuarantineException",
        quarantine_series_began=NOW - timedelta(hours=1),
    )
    result = judge(tenant)
    assert result.status == Status.CRITICAL
    assert "quarantine (EncounteredQuarantineException)" in result.summary_line()


def test_a_paused_job_is_critical(tenant):
    healthy(tenant)
    tenant.job(status_code="Paused", schedule_state="Paused")
    assert judge(tenant).status == Status.CRITICAL


def test_an_overdue_cycle_is_a_warning(tenant):
    healthy(tenant)
    tenant.job(last_began=NOW - timedelta(minutes=70), last_ended=NOW - timedelta(minutes=65))
    result = judge(tenant)
    assert result.status == Status.WARNING
    assert "overdue" in result.summary_line()


def test_escalated_failures_are_a_warning(tenant):
    healthy(tenant)
    tenant.event("bob", cycle="c1", minutes_ago=80, status="failure", error_code="X")
    tenant.event("bob", cycle="c2", minutes_ago=40, status="failure", error_code="X")
    result = judge(tenant)
    assert result.status == Status.WARNING
    assert result.perfdata["escalated_retries"] == 1


def test_a_single_failure_pending_retry_is_not_yet_a_warning(tenant):
    healthy(tenant)
    tenant.event("bob", cycle="c1", minutes_ago=5, status="failure", error_code="X")
    result = judge(tenant)
    assert result.status == Status.OK
    assert result.perfdata["pending_retries"] == 1


def test_a_source_failing_briefly_warns(tenant):
    healthy(tenant)
    tenant.poll("harness.scim", ok=False, minutes_ago=0.5, error_kind="unavailable")
    assert judge(tenant).status == Status.WARNING


def test_a_source_failing_past_the_threshold_is_critical(tenant):
    healthy(tenant)
    tenant.poll("harness.scim", ok=False, minutes_ago=90, error_kind="unavailable")
    tenant.poll("harness.scim", ok=False, minutes_ago=1, error_kind="unavailable")
    result = judge(tenant)
    assert result.status == Status.CRITICAL
    assert "harness.scim failing for 90 min" in result.summary_line()


def test_rejected_credentials_are_critical(tenant):
    healthy(tenant)
    tenant.poll("graph.provisioning", ok=False, error_kind="auth")
    result = judge(tenant)
    assert result.status == Status.CRITICAL
    assert "credentials rejected" in result.summary_line()


def test_sso_conflicts_are_critical(tenant):
    healthy(tenant)
    tenant.user("user2", "user_2@example.com")
    tenant.user("user1", "user1@example.com")
    tenant.assign("user2")
    tenant.assign("user1")
    tenant.assign("user1", app="firstgen")
    assert judge(tenant).status == Status.CRITICAL


def test_group_problems_are_a_warning(tenant):
    healthy(tenant)
    tenant.group("g1", "Dev Team")
    assert judge(tenant).status == Status.WARNING


def test_stale_data_is_a_warning(tenant):
    for source in INTERVALS:
        tenant.poll(source, minutes_ago=600)
    tenant.job(last_began=NOW - timedelta(minutes=12), last_ended=NOW - timedelta(minutes=10))
    result = judge(tenant)
    assert result.status == Status.WARNING
    assert "stale" in result.summary_line()


def run_check(cache_path: Path, *args: str):
    return CliRunner().invoke(
        main,
        ["check", *args],
        env={"SCIMWATCH_CACHE_PATH": str(cache_path)},
        catch_exceptions=False,
    )


def test_check_command_exit_codes_and_json(tenant, tmp_path):
    healthy(tenant)
    tenant.job(
        status_code="Quarantine",
        quarantine_reason="TooManyDeletes",
        quarantine_series_began=NOW - timedelta(hours=1),
    )
    result = run_check(tmp_path / "cache.db")
    assert result.exit_code == 2
    assert result.output.startswith("SCIMWATCH CRITICAL - ")
    as_json = run_check(tmp_path / "cache.db", "--json")
    assert as_json.exit_code == 2
    document = json.loads(as_json.output)
    assert document["status"] == 2
    assert document["perfdata"]["pending_retries"] == 0


def test_check_without_a_cache_is_unknown(tmp_path):
    result = run_check(tmp_path / "absent.db")
    assert result.exit_code == 3
    assert result.output.startswith("SCIMWATCH UNKNOWN - ")


def test_check_with_a_broken_config_is_unknown(tmp_path, monkeypatch):
    config = tmp_path / "c.toml"
    config.write_text("[graph\n")
    monkeypatch.setenv("SCIMWATCH_CONFIG", str(config))
    assert CliRunner().invoke(main, ["check"]).exit_code == 3
