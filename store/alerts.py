"""Alert conditions derived from the health model, and their state changes.

A condition is keyed (``quarantine:<job>``, ``escalated:<object>`` ...). Comparing the current
set with the one saved after the last notification yields the changes to announce: one alert
per state change, never one per poll.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict
from sqlite_utils import Database

from store import directory, health
from store.models import SourceFreshness, iso_utc


class Condition(BaseModel):
    """Something an admin should hear about while it lasts."""

    model_config = ConfigDict(frozen=True)

    key: str
    severity: Literal["warning", "critical"]
    message: str


class Change(BaseModel):
    """A condition that appeared or went away."""

    model_config = ConfigDict(frozen=True)

    kind: Literal["raised", "resolved"]
    condition: Condition


def current_conditions(
    db: Database, now: datetime, freshness: Iterable[SourceFreshness]
) -> list[Condition]:
    """Every alertable condition in the cache right now."""
    conditions = [
        Condition(
            key=f"quarantine:{job.job.job_id}",
            severity="critical",
            message=f"{job.job.app} provisioning job in quarantine "
            f"({job.job.quarantine_reason or 'Unknown'})",
        )
        for job in health.job_health(db, now)
        if job.state == "quarantine"
    ]
    conditions += [
        Condition(
            key=f"escalated:{item.job_id}:{item.source_id}",
            severity="warning",
            message=f"{item.source_type} {item.source_name!r} failed {item.attempts} cycles "
            f"({item.error_code or 'error'}): {item.hint.title}",
        )
        for item in health.pending_retries(db, now)
        if item.escalated
    ]
    conditions += [
        Condition(
            key=f"sso:{conflict.principal_id}",
            severity="critical",
            message=f"{conflict.email or conflict.principal_id} cannot sign in to Harness: "
            "assigned to the NextGen app only while the FirstGen app signs users in",
        )
        for conflict in directory.sso_conflicts(db)
        if conflict.kind == "firstgen_unassigned"
    ]
    conditions += [
        Condition(
            key=f"collision:{mapping.predicted_identifier}",
            severity="warning",
            message=f"Entra groups collide on the Harness identifier "
            f"{mapping.predicted_identifier!r}",
        )
        for mapping in directory.group_mappings(db)
        if mapping.state == "collision"
    ]
    conditions += [
        Condition(
            key=f"source:{item.source}",
            severity="critical" if item.last_error_kind == "auth" else "warning",
            message=f"{item.source} is failing: {item.last_error}"[:300],
        )
        for item in freshness
        if item.failing_since is not None
    ]
    return list({condition.key: condition for condition in conditions}.values())


def changes_since_last(db: Database, conditions: list[Condition]) -> list[Change]:
    """What appeared and what went away since the state was last saved."""
    previous = {
        row["key"]: Condition(key=row["key"], severity=row["severity"], message=row["message"])
        for row in db.query("SELECT key, severity, message FROM alert_state")
    }
    current = {condition.key: condition for condition in conditions}
    raised = [Change(kind="raised", condition=c) for k, c in current.items() if k not in previous]
    resolved = [
        Change(kind="resolved", condition=c) for k, c in previous.items() if k not in current
    ]
    return raised + resolved


def save_alerted(db: Database, conditions: list[Condition], now: datetime) -> None:
    """Remember the conditions announced (call inside `Cache.transaction()`)."""
    keys = [condition.key for condition in conditions]
    marks = ",".join("?" for _ in keys)
    db.execute(f"DELETE FROM alert_state WHERE key NOT IN ({marks})", keys)
    for condition in conditions:
        db.execute(
            "INSERT INTO alert_state (key, message, severity, since) VALUES (?, ?, ?, ?)"
            " ON CONFLICT(key) DO UPDATE SET message = excluded.message,"
            " severity = excluded.severity",
            [condition.key, condition.message, condition.severity, iso_utc(now)],
        )
