"""The overview's first read, started before the TUI imports Textual.

Start-up is CPU on one core: importing Textual and building the app take ~0.3 s, and the first
read of the cache used to wait for them, then compete with the first frames for the GIL.
Started in a thread as soon as the cache's path is known, the read (mostly SQLite, which lets
go of the GIL) is done by the time the overview is composed, which shows it in its first frame.
It reads through `store.overview` on a connection of its own: this module imports no Textual,
no pydantic and no sqlite-utils, so `dashboard.launch` starts the read before any of them.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from concurrent.futures import Future
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from store.overview import FirstRead as FirstRead
from store.overview import Overview, overview, read_first_from, read_freshness

if TYPE_CHECKING:
    from store.cache import Cache
    from store.names import SourceName


def read_overview(
    cache: Cache, now: datetime, freshness_intervals: Mapping[SourceName, timedelta]
) -> Overview:
    """The overview screen's answer: each source's freshness, then the health model's."""
    with cache.reading() as db:
        return overview(db, now, read_freshness(db, now, freshness_intervals))


def read_first(
    path: Path, now: datetime, freshness_intervals: Mapping[SourceName, timedelta]
) -> FirstRead:
    """The newest poll id, then the overview (at least that new), of the cache at `path`."""
    return read_first_from(path, now, freshness_intervals)


def start_first_read(
    path: Path, now: datetime, freshness_intervals: Mapping[SourceName, timedelta]
) -> Future[FirstRead]:
    """`read_first` in a daemon thread; its answer (or error) in the returned future."""
    future: Future[FirstRead] = Future()

    def run() -> None:
        if not future.set_running_or_notify_cancel():
            return
        try:
            future.set_result(read_first(path, now, freshness_intervals))
        except BaseException as error:  # handed to whoever waits; the app reads again
            future.set_exception(error)

    threading.Thread(target=run, name="scimwatch-first-read", daemon=True).start()
    return future
