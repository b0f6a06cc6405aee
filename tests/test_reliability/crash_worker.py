"""A `collect --once` of the provisioning log that SIGKILLs itself at a chosen SQL statement.

Run as ``python -m tests.test_reliability.crash_worker``; everything comes from the environment
(the `tests.test_collectors.collect_worker` variables, plus):

- ``CRASH_AT``: kill the process just before the Nth write statement it runs (0: never);
- ``SAVE_VARIANT``: ``atomic`` (the real `Cache.save_batch`) or ``watermark_first`` (a
  deliberately broken save committing the watermark in its own transaction before the data),
  to show the crash oracle catches a non-atomic save.

SQLite's trace callback fires as a statement starts, so a kill at a ``COMMIT`` leaves that
transaction uncommitted: looping ``CRASH_AT`` over every statement is SQLite's own
"move the fault point forward" crash test, with a real process death.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from store.cache import Cache
from store.models import Batch, PollRun, iso_utc

_statements = 0


def _count(statement: str) -> None:
    global _statements
    _statements += 1
    if _statements == int(os.environ.get("CRASH_AT", "0")):
        os.kill(os.getpid(), signal.SIGKILL)


def install() -> None:
    """Patch the cache's write transactions to count statements (and break the save if asked)."""
    original_writing = Cache._writing
    original_save = Cache.save_batch

    @contextlib.contextmanager
    def writing(self: Cache, *args: Any, **kwargs: Any) -> Iterator[sqlite3.Connection]:
        with original_writing(self, *args, **kwargs) as conn:
            conn.set_trace_callback(_count)
            yield conn

    def watermark_first(
        self: Cache, batch: Batch, started: datetime, finished: datetime
    ) -> PollRun:
        if batch.watermark is not None:
            with self._writing() as conn:
                conn.execute(
                    "INSERT INTO watermarks (source, value, complete, updated_at)"
                    " VALUES (?, ?, ?, ?) ON CONFLICT(source) DO UPDATE SET"
                    " value = excluded.value, complete = excluded.complete",
                    (batch.source, batch.watermark, int(batch.complete), iso_utc(finished)),
                )
        return original_save(self, batch, started, finished)

    Cache._writing = writing  # type: ignore[method-assign]
    if os.environ.get("SAVE_VARIANT") == "watermark_first":
        Cache.save_batch = watermark_first  # type: ignore[method-assign,assignment]


if __name__ == "__main__":
    import asyncio
    import sys

    install()
    from tests.test_collectors.collect_worker import main

    status = asyncio.run(main())
    print(f"write statements: {_statements}", file=sys.stderr)
    sys.exit(status)
