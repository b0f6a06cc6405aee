"""A failing object's retry time and playbook hint, kept on ingest, equal the live computation."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlite_utils import Database

from store import health, playbook
from store.cache import Cache
from store.derived import rebuild_derived_state
from store.models import Batch, PendingRetry, ProvisioningEvent, iso_utc
from store.schema import migrations
from tests.builders import JOB, NOW, Tenant
from tests.test_store.reasons import (
    BOX_409,
    CONTOSO_409,
    DOCUMENTED_CODES,
    HARNESS_DUP_IDENTIFIER_BODY,
    NEXT_SYNC_CYCLE,
    RETRIED_0_TIMES_ELIDED,
    RETRIED_AND_NOTIFIED,
    RETRIED_IN_40,
    entra_reason,
)

REASONS = [
    "",
    CONTOSO_409,
    BOX_409,
    HARNESS_DUP_IDENTIFIER_BODY,
    RETRIED_IN_40,
    RETRIED_AND_NOTIFIED,
    NEXT_SYNC_CYCLE,
    RETRIED_0_TIMES_ELIDED,
    entra_reason("BadRequest", "Bad Request ", 0, "2024-03-24T13:23:44.9198514Z UTC"),
    entra_reason("Conflict", HARNESS_DUP_IDENTIFIER_BODY, 1, "2024-03-25T07:23:47Z UTC"),
    entra_reason("Unauthorized", '{"code":"INVALID_TOKEN"}', 2, "3/24/2026 7:17:42 PM"),
    "retried 2 times. It will be retried again after this date: 2024-03-25T09:00:00+02:00",
    "It will be retried again after this date: 0001-01-01T00:00:00Z",
    "The HTTP status code 402 says the account has no licence left. Retried in 2 hours.",
    "Cannot remove the last account admin; retried in 40 minutes",
    "Group does not exist",
    "Try using different user group identifier, [Dev_Team] cannot be used",
    "ünïcödé retried in 5 minutes — StatusCode: 503",
]
CODES = ["", "EntryConflict", "HarnessEntryConflict", "Timeout", "NoSuchCode"] + [
    code for code, _ in DOCUMENTED_CODES[:12]
]
CATEGORIES = ["failure", "nonServiceFailure", ""]
IDENTITIES = ["User", "Group", ""]
ACTIONS = ["", "  Check the SCIM endpoint  "]


def failure(index: int, reason: str, code: str, category: str, identity: str, action: str):
    return ProvisioningEvent(
        id=f"evt-{index}",
        activity_at=NOW - timedelta(minutes=index % 300, microseconds=index),
        job_id=JOB,
        cycle_id=f"cycle-{index % 3}",
        action="create",
        status="failure",
        source_id=f"object-{index}",
        source_type=identity,
        source_name=f"object {index}",
        error_code=code,
        error_category=category,
        reason=reason,
        recommended_action=action,
    )


def variety() -> list[ProvisioningEvent]:
    """Every reason with a code, category, identity and Microsoft action rotating under it."""
    return [
        failure(
            index,
            reason,
            CODES[index % len(CODES)],
            CATEGORIES[index % len(CATEGORIES)],
            IDENTITIES[(index // 3) % len(IDENTITIES)],
            ACTIONS[index % len(ACTIONS)],
        )
        for index, reason in enumerate(REASONS * 7)
    ]


def live(pending: PendingRetry, next_cycle: datetime | None) -> tuple[object, ...]:
    """What the read answered before answers were kept: parsed from the text on every read."""
    retry_at = playbook.parse_retry_time(pending.reason, pending.last_failure_at)
    retry_from = "reason" if retry_at else ("next_cycle" if next_cycle else "unknown")
    entry = playbook.playbook_for(
        pending.error_code,
        pending.error_category,
        pending.source_type,
        pending.reason,
        pending.recommended_action,
    )
    hint = (entry.title, entry.what_to_do, entry.severity, entry.retried_automatically)
    return retry_at or next_cycle, retry_from, hint


def answers(pending: PendingRetry) -> tuple[object, ...]:
    hint = pending.hint
    return (
        pending.retry_at,
        pending.retry_at_from,
        (hint.title, hint.what_to_do, hint.severity, hint.retried_automatically),
    )


def pending_all(cache: Cache) -> tuple[list[PendingRetry], datetime | None]:
    with cache.reading() as db:
        jobs = health.job_health(db, NOW)
        return health.pending_retries(db, NOW), jobs[0].next_expected_at if jobs else None


def kept_versions(cache: Cache) -> list[object]:
    """The playbook rules the failing objects' answers were kept under."""
    with cache.reading() as db:
        return [
            row[0]
            for row in db.execute(
                "SELECT DISTINCT rules_version FROM object_state WHERE latest_status = 'failure'"
            )
        ]


@pytest.fixture
def tenant(tmp_path: Path):
    with Cache.open_writer(tmp_path / "cache.db") as cache:
        yield Tenant(cache)


@pytest.mark.parametrize("with_job", [True, False])
def test_kept_answers_equal_the_live_computation_for_a_variety_of_failures(tenant, with_job):
    if with_job:
        tenant.job()
    tenant.cache.save_batch(Batch(source="graph.provisioning", records=variety()), NOW, NOW)
    retries, next_cycle = pending_all(tenant.cache)
    assert len(retries) == len(REASONS) * 7
    without_date = "next_cycle" if with_job else "unknown"
    assert {pending.retry_at_from for pending in retries} == {"reason", without_date}
    for pending in retries:
        assert answers(pending) == live(pending, next_cycle), pending.reason
    assert kept_versions(tenant.cache) == [playbook.RULES_VERSION], "kept, not recomputed"


def test_answers_kept_by_other_rules_are_computed_again(tenant, tmp_path):
    tenant.job()
    tenant.cache.save_batch(Batch(source="graph.provisioning", records=variety()), NOW, NOW)
    kept, _ = pending_all(tenant.cache)
    with closing(sqlite3.connect(tmp_path / "cache.db", isolation_level=None)) as conn:
        conn.execute(
            "UPDATE object_state SET retry_at = '2000-01-01T00:00:00.000000Z',"
            " playbook_key = 'unknown', rules_version = ?",
            (playbook.RULES_VERSION - 1,),
        )
    recomputed, _ = pending_all(tenant.cache)
    assert recomputed == kept


def test_a_success_clears_the_kept_answers_and_a_new_failure_replaces_them(tenant, tmp_path):
    tenant.event("bob", cycle="c1", minutes_ago=90, status="failure", reason=RETRIED_IN_40)
    tenant.event("bob", cycle="c2", minutes_ago=50, status="success")
    tenant.event("bob", cycle="c3", minutes_ago=10, status="failure", reason=CONTOSO_409)
    with closing(sqlite3.connect(tmp_path / "cache.db")) as conn:
        kept = conn.execute("SELECT retry_at, playbook_key, rules_version FROM object_state")
        assert kept.fetchall() == [(None, "user_conflict", playbook.RULES_VERSION)]
    tenant.event("bob", cycle="c4", minutes_ago=5, status="success")
    with closing(sqlite3.connect(tmp_path / "cache.db")) as conn:
        kept = conn.execute("SELECT retry_at, playbook_key, rules_version FROM object_state")
        assert kept.fetchall() == [(None, None, None)]


# Text the cache can store (SQLite text is UTF-8: no lone surrogates).
any_text = st.text(st.characters(codec="utf-8"), max_size=300)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    failures=st.lists(
        st.tuples(
            st.one_of(any_text, st.sampled_from(REASONS)),
            st.sampled_from(CODES),
            st.sampled_from(CATEGORIES),
            st.sampled_from(IDENTITIES),
        ),
        min_size=1,
        max_size=20,
    )
)
def test_kept_answers_equal_the_live_computation_for_any_text(tmp_path_factory, failures):
    path = tmp_path_factory.mktemp("cache") / "cache.db"
    events = [
        failure(index, reason, code, category, identity, "")
        for index, (reason, code, category, identity) in enumerate(failures)
    ]
    with Cache.open_writer(path) as cache:
        cache.save_batch(Batch(source="graph.provisioning", records=events), NOW, NOW)
        retries, next_cycle = pending_all(cache)
        versions = kept_versions(cache)
    assert versions == [playbook.RULES_VERSION], "kept, not recomputed"
    assert len(retries) == len(events)
    for pending in retries:
        assert answers(pending) == live(pending, next_cycle)


def test_the_migration_keeps_the_answers_of_failures_saved_before_it(tmp_path):
    path = tmp_path / "cache.db"
    with closing(sqlite3.connect(path, isolation_level=None)) as conn:
        conn.execute("PRAGMA journal_mode=WAL")
        db = Database(conn)
        migrations.apply(db, stop_before="m010_failing_objects_keep_their_answers")
        rows = [event.to_row() for event in variety()]
        db.table("provisioning_events").insert_all(rows)
        rebuild_derived_state(conn)
    with Cache.open_writer(path) as cache:
        retries, next_cycle = pending_all(cache)
    with closing(sqlite3.connect(path)) as conn:
        versions = conn.execute("SELECT DISTINCT rules_version FROM object_state").fetchall()
    assert versions == [(playbook.RULES_VERSION,)]
    assert len(retries) == len(REASONS) * 7
    for pending in retries:
        assert answers(pending) == live(pending, next_cycle), pending.reason


def test_kept_retry_times_are_cache_text(tenant, tmp_path):
    tenant.event("bob", cycle="c1", minutes_ago=10, status="failure", reason=RETRIED_IN_40)
    with closing(sqlite3.connect(tmp_path / "cache.db")) as conn:
        (kept,) = conn.execute("SELECT retry_at FROM object_state").fetchone()
    assert kept == iso_utc(NOW - timedelta(minutes=10) + timedelta(minutes=40))
    assert kept.endswith("Z")
    assert datetime.fromisoformat(kept).tzinfo == UTC
