"""A filled cache and the ways to damage one, for the tests of damaged caches and of their
recovery (a cache of `filled` events is big enough to have pages past the first few)."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

from store.cache import Cache
from store.models import Batch, ProvisioningEvent

NOW = datetime(2024, 5, 4, 12, tzinfo=UTC)


def event(number: int) -> ProvisioningEvent:
    return ProvisioningEvent(
        id=f"ev-{number:05d}",
        activity_at=NOW,
        job_id="job",
        cycle_id=f"cycle-{number // 100}",
        action="create",
        status="success",
        source_id=f"user-{number}",
        source_name="x" * 200,
    )


def filled(path: Path, events: int = 2000) -> Path:
    with Cache.open_writer(path) as cache:
        cache.save_batch(
            Batch(
                source="graph.provisioning",
                records=[event(n) for n in range(events)],
                watermark="w",
            ),
            NOW,
            NOW,
        )
    return path


def garbage_page_one(path: Path) -> None:
    with path.open("r+b") as file:
        file.write(os.urandom(4096))


def truncated(path: Path) -> None:
    os.truncate(path, path.stat().st_size // 3)


def garbage_inside(path: Path) -> None:
    # Page 1 intact (the header check passes): quick_check has to find this one.
    with path.open("r+b") as file:
        file.seek(16384 * 3)
        file.write(b"\xff" * 16384 * 4)
