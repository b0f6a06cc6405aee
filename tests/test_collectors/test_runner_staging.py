"""poll_source with a collector that hands its records over a page at a time."""

from __future__ import annotations

import asyncio
import gc
import io
import os
import subprocess
import sys
import threading
import weakref
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

import pytest

from collectors import runner
from collectors.base import SourceUnavailable
from collectors.runner import poll_source, release_memory
from collectors.wire import collect_whole
from store.cache import Cache
from store.models import Batch, EntraGroup, Snapshot, SourceName

T0 = datetime(2024, 5, 4, 12, 0, tzinfo=UTC)


class PagedCollector:
    """Lists groups in pages of one; fails after `fail_after` pages when set."""

    source: SourceName = "graph.directory"

    def __init__(self, *names: str, fail_after: int | None = None):
        self.names = names
        self.fail_after = fail_after
        self.staged_pages = 0
        self.whole_collects = 0

    async def collect(self, watermark):
        self.whole_collects += 1
        return await collect_whole(self, watermark)

    async def collect_into(self, watermark, stage):
        for index, name in enumerate(self.names):
            if index == self.fail_after:
                raise SourceUnavailable("graph: connection reset")
            await stage([EntraGroup(id=name, display_name=name.title())])
            self.staged_pages += 1
        return Batch(
            source="graph.directory", snapshots=[Snapshot(table="entra_groups")], watermark="w"
        )


def group_ids(cache: Cache) -> list[str]:
    with cache.reading() as db:
        return [row["id"] for row in db.query("SELECT id FROM entra_groups ORDER BY id")]


async def test_pages_are_staged_then_saved_as_one_snapshot(cache):
    collector = PagedCollector("a", "b", "c")
    await poll_source(collector, cache, clock=lambda: T0)
    assert (collector.staged_pages, collector.whole_collects) == (3, 0)  # page by page
    result = await poll_source(PagedCollector("a", "c"), cache, clock=lambda: T0)
    assert result.poll_run.ok
    assert result.poll_run.records == 2
    assert group_ids(cache) == ["a", "c"]
    assert cache.watermark("graph.directory") == "w"
    assert not cache._staged  # the staged poll was closed


async def test_a_listing_failing_halfway_prunes_nothing_and_saves_nothing(cache):
    await poll_source(PagedCollector("a", "b", "c"), cache, clock=lambda: T0)
    collector = PagedCollector("a", "d", "e", fail_after=2)
    with pytest.raises(SourceUnavailable):
        await poll_source(collector, cache, clock=lambda: T0)
    assert collector.staged_pages == 2
    assert group_ids(cache) == ["a", "b", "c"]
    last = cache.last_poll("graph.directory")
    assert last is not None
    assert not last.ok
    assert not cache._staged


async def test_a_cancelled_staged_poll_leaves_nothing_staged_for_the_next_one(cache):
    await poll_source(PagedCollector("a"), cache, clock=lambda: T0)
    started = asyncio.Event()

    class Hanging(PagedCollector):
        async def collect_into(self, watermark, stage):
            await stage([EntraGroup(id="z")])
            started.set()
            await asyncio.Event().wait()
            raise AssertionError("not reached")

    task = asyncio.create_task(poll_source(Hanging(), cache, clock=lambda: T0))
    waiting = asyncio.create_task(started.wait())
    await asyncio.wait({waiting, task}, return_when=asyncio.FIRST_COMPLETED)
    assert started.is_set(), task  # the poll got as far as staging (it did not fail first)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not cache._staged
    # The next poll stages afresh: its snapshot holds its own listing, not the cancelled "z".
    result = await poll_source(PagedCollector("b"), cache, clock=lambda: T0)
    assert result.poll_run.records == 1
    assert group_ids(cache) == ["b"]


async def test_a_poll_cancelled_while_its_staged_poll_opens_closes_it(cache, monkeypatch):
    """The thread opening the staged poll registers it even when the poll is cancelled meanwhile;
    left open, every later poll of the source would fail with 'already has a staged poll'."""
    opening, release = threading.Event(), threading.Event()
    real_staging = cache.staging

    def slow_staging(source):
        opening.set()
        release.wait()
        return real_staging(source)

    monkeypatch.setattr(cache, "staging", slow_staging)
    task = asyncio.create_task(poll_source(PagedCollector("a"), cache, clock=lambda: T0))
    await asyncio.to_thread(opening.wait)
    task.cancel()  # cancels what the poll awaits (the thread's future) while the thread opens
    release.set()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not cache._staged
    monkeypatch.setattr(cache, "staging", real_staging)
    result = await poll_source(PagedCollector("b"), cache, clock=lambda: T0)
    assert result.poll_run.ok
    assert group_ids(cache) == ["b"]


async def test_collect_gathers_the_pages_into_one_batch():
    batch = await PagedCollector("a", "b", "a").collect(None)
    assert [record.id for record in batch.records] == ["a", "b"]
    assert batch.snapshots == [Snapshot(table="entra_groups")]


class Cyclic:
    """An object that refers to itself: only a full collection frees it."""

    def __init__(self) -> None:
        self.me = self


@pytest.mark.parametrize("collect_cycles", [False, True])
def test_release_memory_trims_the_heap_and_frees_cycles_only_when_asked(
    monkeypatch, collect_cycles
):
    trims: list[int] = []
    monkeypatch.setattr(runner, "_malloc_trim", lambda: trims.append)
    gc.disable()  # no automatic collection in between
    garbage = weakref.ref(Cyclic())
    try:
        release_memory(collect_cycles=collect_cycles)
        freed = garbage() is None
    finally:
        gc.enable()
    assert trims == [0]
    assert freed is collect_cycles


class MemoryReleases:
    """Counts what `release_memory` does, whoever calls it: heap trims and full collections."""

    def __init__(self, monkeypatch):
        self.trims = 0
        self.collections = 0
        monkeypatch.setattr(runner, "_malloc_trim", lambda: self.trim)
        monkeypatch.setattr(runner, "gc", SimpleNamespace(collect=self.collect))

    def trim(self, pad: int) -> int:
        self.trims += 1
        return 1

    def collect(self) -> int:
        self.collections += 1
        return 0


async def test_the_collect_loop_trims_once_per_poll_after_a_full_collection(monkeypatch, cache):
    from collectors import headless
    from collectors.config import PollingConfig

    class FailingNg(PagedCollector):
        source: SourceName = "harness.ng"

    releases = MemoryReleases(monkeypatch)
    logger = headless.make_logger("json", io.StringIO())
    status = await headless.run_collect(
        [PagedCollector("a"), FailingNg("b", fail_after=0)],
        cache,
        PollingConfig(),
        True,
        logger,
        handle_signals=False,
    )
    assert status == 1
    # One saved poll and one failed one: each trimmed once, after a full collection.
    assert (releases.trims, releases.collections) == (2, 2)
    last = cache.last_poll("harness.ng")
    assert last is not None
    assert last.error_kind == "unavailable"


async def test_a_poll_outside_the_collect_loop_trims_without_a_full_collection(monkeypatch, cache):
    """The TUI polls through `poll_source` too: a full collection would stall its event loop."""
    releases = MemoryReleases(monkeypatch)
    await poll_source(PagedCollector("a"), cache, clock=lambda: T0)
    with pytest.raises(SourceUnavailable):
        await poll_source(PagedCollector("b", fail_after=0), cache, clock=lambda: T0)
    assert (releases.trims, releases.collections) == (2, 0)


# Eight threads each allocate a block above pymalloc's limit (so glibc's malloc serves it from
# the thread's arena) and wait, all alive, while glibc's malloc_stats prints one "Arena N:"
# section per arena to stderr.
_COUNT_ARENAS = """
import ctypes, sys, threading
from collectors.runner import limit_malloc_arenas
if sys.argv[1] == "capped":
    print(limit_malloc_arenas())
all_allocated = threading.Barrier(9)
reported = threading.Barrier(9)
def allocate():
    block = bytearray(1 << 16)
    all_allocated.wait()
    reported.wait()
threads = [threading.Thread(target=allocate) for _ in range(8)]
for thread in threads:
    thread.start()
all_allocated.wait()
ctypes.CDLL(None).malloc_stats()
reported.wait()
for thread in threads:
    thread.join()
"""


def arenas_used_by_eight_threads(mode: str) -> tuple[str, int]:
    """What the child printed and how many arenas glibc had (in a child: the cap is per process)."""
    env = {k: v for k, v in os.environ.items() if k not in ("MALLOC_ARENA_MAX", "GLIBC_TUNABLES")}
    done = subprocess.run(
        [sys.executable, "-c", _COUNT_ARENAS, mode],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).parents[2],
        env=env,
    )
    arenas = sum(line.startswith("Arena ") for line in done.stderr.splitlines())
    return done.stdout.strip(), arenas


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_the_arena_limit_keeps_threads_to_two_malloc_arenas():
    """`collect` caps glibc's malloc arenas: eight threads share two instead of one each."""
    _, uncapped = arenas_used_by_eight_threads("uncapped")
    assert uncapped > 2  # glibc's own limit is 8 per core: the probe sees threads get arenas
    assert arenas_used_by_eight_threads("capped") == ("True", 2)
