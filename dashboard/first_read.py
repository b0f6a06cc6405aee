"""The overview's first read, started before the TUI imports Textual.

Start-up is CPU on one core: importing Textual and building the app take ~0.25 s, and the first
read of the cache used to wait for them, then compete with the first frames for the GIL.
Started in a thread as soon as the cache is open, the read (mostly SQLite, which lets go of
the GIL) is done by the time the overview is composed, which shows it in its first frame.
This module imports no Textual, so `dashboard.launch` can start the read before it does.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import datetime, timedelta

from store.cache import Cache
from store.health import overview
from store.models import Overview, SourceName


@dataclass(frozen=True)
class FirstRead:
    """What the app reads first: the newest poll, and the overview (freshness included)."""

    last_poll_id: int
    """The newest poll when the read began: the overview shows at least that poll."""
    overview: Overview


def read_overview(
    cache: Cache, now: datetime, freshness_intervals: Mapping[SourceName, timedelta]
) -> Overview:
    """The overview screen's answer: each source's freshness, then the health model's."""
    freshness = cache.freshness(now, freshness_intervals)
    with cache.reading() as db:
        return overview(db, now, freshness)


def read_first(
    cache: Cache, now: datetime, freshness_intervals: Mapping[SourceName, timedelta]
) -> FirstRead:
    """Read the newest poll id, then the overview (at least that new)."""
    last_poll_id = cache.last_poll_id()
    answer = read_overview(cache, now, freshness_intervals)
    return FirstRead(last_poll_id, answer)


def start_first_read(
    cache: Cache, now: datetime, freshness_intervals: Mapping[SourceName, timedelta]
) -> Future[FirstRead]:
    """`read_first` in a daemon thread; its answer (or error) in the returned future."""
    future: Future[FirstRead] = Future()

    def run() -> None:
        if not future.set_running_or_notify_cancel():
            return
        try:
            future.set_result(read_first(cache, now, freshness_intervals))
        except BaseException as error:  # handed to whoever waits; the app reads again
            future.set_exception(error)

    threading.Thread(target=run, name="scimwatch-first-read", daemon=True).start()
    return future
