"""Saves batches through `Cache.save_batch` while libfiu fails a share of `pwrite` calls.

Run under ``fiu-run -x python -m tests.test_reliability.fiu_worker CACHE SAVES PROBABILITY``.
Faults are switched on through libfiu's C API (ctypes) only after the cache is open and
migrated: with faults from process start even ``PRAGMA journal_mode`` fails (EXP-13). Prints
one line per save, ``ack <n>`` or ``fail <n> <error>``, then ``done``.
"""

from __future__ import annotations

import ctypes
import sqlite3
import sys
from datetime import UTC, datetime
from pathlib import Path

from store.cache import Cache
from store.models import Batch, ProvisioningEvent

NOW = datetime(2024, 5, 4, 12, tzinfo=UTC)
PER_BATCH = 5


def batch(number: int) -> Batch:
    return Batch(
        source="graph.provisioning",
        watermark=str(number),
        records=[
            ProvisioningEvent(
                id=f"b{number:04d}-{item}",
                activity_at=NOW,
                job_id="job",
                cycle_id=f"cycle-{number}",
                action="create",
                status="success",
                source_id=f"user-{number}-{item}",
                source_name="n" * 500,
            )
            for item in range(PER_BATCH)
        ],
    )


def main(path: Path, saves: int, probability: float) -> None:
    libfiu = ctypes.CDLL("libfiu.so.0")
    libfiu.fiu_enable_random.argtypes = [
        ctypes.c_char_p,
        ctypes.c_int,
        ctypes.c_void_p,
        ctypes.c_uint,
        ctypes.c_float,
    ]
    libfiu.fiu_disable.argtypes = [ctypes.c_char_p]
    with Cache.open_writer(path) as cache:
        libfiu.fiu_enable_random(b"posix/io/rw/pwrite", 1, None, 0, probability)
        for number in range(saves):
            try:
                cache.save_batch(batch(number), NOW, NOW)
            except sqlite3.Error as error:
                line = f"fail {number} {error}"
            else:
                line = f"ack {number}"
            print(line, flush=True)
        libfiu.fiu_disable(b"posix/io/rw/pwrite")
    print("done", flush=True)


if __name__ == "__main__":
    main(Path(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]))
