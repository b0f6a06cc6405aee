"""Helpers of the store tests."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

from store.detail import pack_detail
from store.models import ProvisioningEvent

T0 = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)


def event(event_id: str, minute: int = 0, status: str = "success") -> ProvisioningEvent:
    """A provisioning event of user `user-<event_id>`, `minute` minutes after T0."""
    return ProvisioningEvent(
        id=event_id,
        activity_at=T0 + timedelta(minutes=minute),
        job_id="scim.0123",
        cycle_id="cycle-1",
        action="create",
        status=status,
        source_id=f"user-{event_id}",
        source_type="User",
        source_name=f"User {event_id}",
        detail=pack_detail({"provisioningSteps": [{"name": "EntryImport"}]}),
    )


def rows(path: Path, sql: str) -> list[tuple[object, ...]]:
    """Every row `sql` reads from the cache file, through a connection of its own."""
    conn = sqlite3.connect(path)
    try:
        return list(conn.execute(sql))
    finally:
        conn.close()
