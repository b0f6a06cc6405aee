"""`run_collect --once` of a backfilling source with the process's file size capped (disk full).

Run as ``python -m tests.test_reliability.disk_full_worker CACHE LIMIT_BYTES``; LIMIT_BYTES 0
means no cap. SIGXFSZ is ignored so a write past the cap fails with EFBIG, which SQLite reports
as "database or disk is full" (SQLITE_FULL), as on a full filesystem.
"""

from __future__ import annotations

import asyncio
import resource
import signal
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from collectors.config import PollingConfig
from collectors.headless import make_logger, run_collect
from store.cache import Cache
from store.models import Batch, ProvisioningEvent, SourceName

NOW = datetime(2024, 5, 4, 12, tzinfo=UTC)
STEPS = 12
PER_STEP = 300


def step_events(step: int) -> list[ProvisioningEvent]:
    return [
        ProvisioningEvent(
            id=f"s{step:03d}-{item:04d}",
            activity_at=NOW - timedelta(days=step, seconds=item),
            job_id="job",
            cycle_id=f"cycle-{step}",
            action="create",
            status="failure",
            source_id=f"user-{step}-{item}",
            source_name=f"user {step} {item} " + "x" * 1500,
            reason="r" * 500,
        )
        for item in range(PER_STEP)
    ]


class Backfill:
    """A source of STEPS windows, one per poll, resuming from its watermark (the next step)."""

    source: SourceName = "graph.provisioning"

    async def collect(self, watermark: str | None) -> Batch:
        step = int(watermark or 0)
        return Batch(
            source=self.source,
            records=list(step_events(step)),
            watermark=str(step + 1),
            complete=step + 1 >= STEPS,
        )


async def main(path: Path, limit: int) -> int:
    with Cache.open_writer(path) as cache:
        if limit:
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
        return await run_collect(
            [Backfill()], cache, PollingConfig(), True, make_logger("json"), handle_signals=False
        )


if __name__ == "__main__":
    sys.exit(asyncio.run(main(Path(sys.argv[1]), int(sys.argv[2]))))
