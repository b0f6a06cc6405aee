"""Network to store: one poll of one source, saved atomically with its poll run.

The same function serves the TUI's workers and the headless `collect` loop (STYLE.md B3).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import functools
import gc
import logging
import sys
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import cast

from collectors.base import (
    Collector,
    CollectorError,
    StagingCollector,
    redact,
    sanitize_text,
)
from collectors.http import utc_now
from store.cache import Cache, StagedPoll
from store.models import Batch, PollRun, Record, SourceName

log = logging.getLogger("scimwatch.collectors.runner")


@dataclass(frozen=True)
class PollResult:
    """A saved poll, and whether the source has more to fetch right away (a backfill)."""

    poll_run: PollRun
    complete: bool


async def poll_source(
    collector: Collector,
    cache: Cache,
    clock: Callable[[], datetime] = utc_now,
    *,
    collect_cycles: bool = False,
) -> PollResult:
    """Collect one source and save its batch; like `poll_once`, also saying if it is complete.

    However it ends, the poll then gives its memory back (`release_memory`), with a full
    collection first when `collect_cycles` (the headless loop; never under the TUI).

    Raises:
        CollectorError: the source failed; a failed PollRun was recorded first.
    """
    try:
        return await _collect_and_save(collector, cache, clock)
    finally:
        # Shielded, so a cancelled poll gives its memory back too; after the poll's frame
        # is gone, so its batch is garbage by then.
        await asyncio.shield(asyncio.to_thread(release_memory, collect_cycles=collect_cycles))


async def _collect_and_save(
    collector: Collector, cache: Cache, clock: Callable[[], datetime]
) -> PollResult:
    started_at = clock()
    # A staging collector hands its records over page by page, into temp tables of the
    # connection that saves them with the batch (a listing cut short prunes nothing).
    staging: contextlib.AbstractAsyncContextManager[StagedPoll | None] = (
        _staging(cache, collector.source)
        if isinstance(collector, StagingCollector)
        else contextlib.nullcontext()
    )
    async with staging as staged:
        try:
            watermark = await asyncio.to_thread(cache.watermark, collector.source)
            batch = await _collect(collector, watermark, staged)
        except CollectorError as error:
            await _record_failure(cache, collector, started_at, clock(), error, error.kind)
            raise
        _check_source(collector, batch)
        # The save runs in a worker thread that finishes its transaction even if we are
        # cancelled meanwhile: SQLite commits it whole or rolls it back whole.
        poll_run = await asyncio.to_thread(cache.save_batch, batch, started_at, clock())
    return PollResult(poll_run=poll_run, complete=batch.complete)


async def _collect(collector: Collector, watermark: str | None, staged: StagedPoll | None) -> Batch:
    """The collector's batch; with a staged poll, its records go there page by page."""
    if staged is None:
        return await collector.collect(watermark)

    async def stage(records: Sequence[Record]) -> None:
        await asyncio.to_thread(staged.add, records)

    return await cast(StagingCollector, collector).collect_into(watermark, stage)


def _check_source(collector: Collector, batch: Batch) -> None:
    if batch.source != collector.source:
        raise RuntimeError(f"{collector.source} returned a batch for {batch.source}")


@contextlib.asynccontextmanager
async def _staging(cache: Cache, source: SourceName) -> AsyncIterator[StagedPoll]:
    """The source's staged poll, opened in a thread and closed however the poll ends.

    The thread registers it with the cache even when the poll is cancelled while it opens,
    and a staged poll left open would fail every later poll of the source: so the close
    waits for the opening to finish.
    """
    opening = asyncio.ensure_future(asyncio.to_thread(cache.staging, source))
    try:
        yield await asyncio.shield(opening)
    finally:
        # Shielded: a cancelled poll still drops its staged rows (after any save in flight).
        await asyncio.shield(_close_when_open(opening))


async def _close_when_open(opening: asyncio.Future[StagedPoll]) -> None:
    try:
        staged = await opening
    except Exception:  # opening failed: nothing to close
        return
    await asyncio.to_thread(staged.close)


def release_memory(*, collect_cycles: bool = False) -> None:
    """Give the heap a poll left free back to the system (glibc; elsewhere nothing to do).

    A poll's pages, records and SQLite page cache are freed when it ends, but glibc keeps the
    freed memory of its per-thread arenas mapped: `collect` idled at ~2x its working set.
    `collect_cycles` first frees the poll's cyclic garbage with a full collection, which holds
    the GIL for tens of ms: for the headless loop, not under a UI.
    """
    if collect_cycles:
        gc.collect()
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


M_ARENA_MAX = -8
"""glibc's mallopt parameter for the most malloc arenas (malloc.h)."""


def limit_malloc_arenas(arenas: int = 2) -> bool:
    """Let glibc keep at most `arenas` malloc arenas; True if it took the setting.

    Each thread that allocates gets an arena of its own (up to 8 per core), and the freed
    memory scattered over them stays mapped: at 100k users `collect` idled at ~136 MB with
    ~290 MB free in its arenas; two arenas measured ~17 MB less. For the long-running
    headless collector, called before its threads start.
    """
    mallopt = getattr(_glibc(), "mallopt", None)
    return mallopt is not None and bool(mallopt(M_ARENA_MAX, arenas))


@functools.cache
def _glibc() -> ctypes.CDLL | None:
    """The C library when it is glibc's (elsewhere its memory calls do not exist)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(None)
    except OSError:
        return None


def _malloc_trim() -> Callable[[int], int] | None:
    trim: Callable[[int], int] | None = getattr(_glibc(), "malloc_trim", None)  # not on musl
    return trim


async def poll_once(
    collector: Collector, cache: Cache, clock: Callable[[], datetime] = utc_now
) -> PollRun:
    """Collect one source and save the batch, its watermark and an ok PollRun in one go.

    On a `CollectorError` a failed PollRun (kind and a secret-free message) is recorded, the
    cached data and watermark stay as they were, and the error is re-raised so the caller can
    show it. Anything else (a bug, a broken cache) propagates unrecorded.

    Args:
        collector: the source to poll.
        cache: the cache, opened as its writer.
        clock: the UTC clock for the poll run's times.

    Returns:
        The saved poll run.
    """
    return (await poll_source(collector, cache, clock)).poll_run


async def _record_failure(
    cache: Cache,
    collector: Collector,
    started_at: datetime,
    finished_at: datetime,
    error: BaseException,
    kind: str,
) -> None:
    message = sanitize_text(redact(str(error) or type(error).__name__), limit=500)
    poll_run = PollRun(
        source=collector.source,
        started_at=started_at,
        finished_at=finished_at,
        ok=False,
        error=message,
        error_kind=kind,
    )
    await asyncio.to_thread(cache.record_failed_poll, poll_run)
