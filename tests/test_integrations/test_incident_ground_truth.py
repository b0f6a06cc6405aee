"""The health model on the simulator's `incident` scenario lists exactly what it planted.

Every source is collected over loopback HTTPS into a real cache; each answer of the health
model is compared with the scenario's own record of what it planted.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest

from collectors.simulator import ManualClock, SimulatedTenant
from store import directory, health
from store.cache import Cache
from store.models import GroupMapping
from tests.simulated_tenant import collect_everything


@pytest.fixture(scope="module")
def collected(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Cache, dict[str, Any], datetime]]:
    import asyncio

    with SimulatedTenant("incident", seed=7, clock=ManualClock()) as tenant:
        tenant.faults.rate_limits_enabled = False
        cache = Cache.open_writer(tmp_path_factory.mktemp("gt") / "cache.db")
        asyncio.run(collect_everything(tenant, cache))
        now = tenant.scenario.clock.now()
        yield cache, tenant.scenario.planted.as_dict(), now
        cache.close()


def read(cache: Cache, function: Any, *args: Any) -> Any:
    with cache.reading() as db:
        return function(db, *args)


def mapping(mappings: list[GroupMapping], group_id: str) -> GroupMapping:
    return next(m for m in mappings if m.entra_group_id == group_id)


def test_pending_retries_are_exactly_the_planted_ones(collected):
    cache, planted, now = collected
    pending = {p.source_id: p for p in read(cache, health.pending_retries, now)}
    expected = {p["object_id"]: p for p in planted["pending_retries"]}
    assert set(pending) == set(expected)
    for object_id, truth in expected.items():
        found = pending[object_id]
        assert found.error_code == truth["error_code"]
        assert found.retry_at == datetime.fromisoformat(truth["retry_after"])
        # Graph's activityDateTime has second precision on the wire (graph-api.md 1.6).
        first = datetime.fromisoformat(truth["first_failure"]).replace(microsecond=0)
        assert found.first_failure_at == first
        assert found.escalated is (truth["attempts"] >= 2)


def test_identifier_collisions(collected):
    cache, planted, _ = collected
    mappings = read(cache, directory.group_mappings)
    colliding = {m.entra_group_id for m in mappings if "collision" in m.problems}
    assert colliding == {
        gid for c in planted["identifier_collisions"] for gid in c["entra_group_ids"]
    }


def test_native_name_and_identifier_clashes(collected):
    cache, planted, _ = collected
    mappings = read(cache, directory.group_mappings)
    assert {m.entra_group_id for m in mappings if "native_same_name" in m.problems} == {
        c["entra_group_id"] for c in planted["native_name_clashes"]
    }
    assert {m.entra_group_id for m in mappings if "native_same_identifier" in m.problems} == {
        c["entra_group_id"] for c in planted["native_identifier_clashes"]
    }


def test_unsyncable_and_renamed_groups(collected):
    cache, planted, _ = collected
    mappings = read(cache, directory.group_mappings)
    assert {m.entra_group_id for m in mappings if m.state == "unsyncable"} == {
        g["entra_group_id"] for g in planted["unsyncable_groups"]
    }
    for renamed in planted["renamed_groups"]:
        found = mapping(mappings, renamed["entra_group_id"])
        assert "renamed" in found.problems
        assert found.harness_identifier == renamed["identifier"]
    assert {m.entra_group_id for m in mappings if "renamed" in m.problems} == {
        g["entra_group_id"] for g in planted["renamed_groups"]
    }


def test_nested_only_members(collected):
    cache, planted, _ = collected
    mappings = read(cache, directory.group_mappings)
    with cache.reading() as db:
        emails = {
            row["id"]: (row["mail"] or row["user_principal_name"]).lower()
            for row in db.query("SELECT * FROM entra_users")
        }
    for group_id, members in planted["nested_only_members"].items():
        found = mapping(mappings, group_id)
        assert set(found.nested_only) == {emails.get(m, m) for m in members}
    assert {m.entra_group_id for m in mappings if m.nested_only} == set(
        planted["nested_only_members"]
    )


def test_orphans_and_groups_without_role_binding(collected):
    cache, planted, _ = collected
    mappings = read(cache, directory.group_mappings)
    assert {m.harness_identifier for m in mappings if m.state == "orphan"} == set(
        planted["orphan_harness_groups"]
    )
    assert {m.harness_identifier for m in mappings if "no_role_binding" in m.problems} == set(
        planted["groups_without_role_binding"]
    )


def test_members_harness_dropped_show_as_drift(collected):
    cache, planted, _ = collected
    mappings = read(cache, directory.group_mappings)
    with cache.reading() as db:
        emails = {
            row["id"]: (row["mail"] or row["user_principal_name"]).lower()
            for row in db.query("SELECT * FROM entra_users")
        }
    for identifier, user_ids in planted["dropped_members"].items():
        found = next(m for m in mappings if m.harness_identifier == identifier)
        assert {emails[u] for u in user_ids} <= set(found.missing_in_harness), identifier


def test_sso_conflicts_and_default_access(collected):
    cache, planted, _ = collected
    conflicts = read(cache, directory.sso_conflicts)
    assert sorted(c.email for c in conflicts if c.kind == "firstgen_unassigned") == sorted(
        planted["sso_conflict_users"]
    )
    assert sorted(c.principal_id for c in conflicts if c.kind == "default_access") == sorted(
        a["principal_id"] for a in planted["default_access_assignments"]
    )


def test_jobs_match(collected):
    cache, planted, now = collected
    jobs = {j.job.service_principal_id: j for j in read(cache, health.job_health, now)}
    assert set(jobs) == set(planted["jobs"])
    for sp_id, truth in planted["jobs"].items():
        assert jobs[sp_id].job.status_code == truth["code"]
        assert (jobs[sp_id].state == "quarantine") is (truth["quarantine"] is not None)
