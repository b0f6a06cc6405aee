"""The headless collect loop: schedules, failures isolated, backfill continued, clean stop."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import signal
from datetime import timedelta

import pytest

from collectors.base import SourceUnavailable, Throttled
from collectors.config import PollingConfig
from collectors.headless import _SourceLoop, make_logger, run_collect
from store.models import Batch, EntraGroup, SourceName, SyncJob

HOUR = timedelta(hours=1)
POLLING = PollingConfig(intervals=dict.fromkeys(("graph.directory", "graph.jobs"), HOUR))


class Directory:
    source: SourceName = "graph.directory"

    def __init__(self, steps: int = 1, stop: asyncio.Event | None = None):
        self.steps = steps
        self.calls = 0
        self.stop = stop

    async def collect(self, watermark):
        self.calls += 1
        if self.stop is not None:
            self.stop.set()
        return Batch(
            source=self.source,
            records=[EntraGroup(id=f"g{self.calls}")],
            watermark=str(self.calls),
            complete=self.calls >= self.steps,
        )


class BrokenJobs:
    source: SourceName = "graph.jobs"

    def __init__(self):
        self.calls = 0

    async def collect(self, watermark):
        self.calls += 1
        raise SourceUnavailable("graph: HTTP 503 (token pat.acct.tokenid.SECRETVALUE leaked?)")


@pytest.fixture
def log_lines():
    stream = io.StringIO()
    logger = make_logger("json", stream)
    yield logger, stream
    for handler in list(logger.handlers):
        logger.removeHandler(handler)


def lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


async def test_once_polls_every_source_and_one_failure_does_not_stop_the_others(cache, log_lines):
    logger, stream = log_lines
    directory, jobs = Directory(), BrokenJobs()
    status = await run_collect(
        [directory, jobs], cache, POLLING, True, logger, handle_signals=False
    )
    assert status == 1
    assert (directory.calls, jobs.calls) == (1, 1)
    assert cache.count("entra_groups") == 1
    failed = cache.last_poll("graph.jobs")
    assert failed is not None
    assert not failed.ok
    events = [line["event"] for line in lines(stream)]
    assert events[0] == "collect_started"
    assert "poll_ok" in events
    assert "poll_failed" in events
    assert events[-1] == "collect_stopped"
    assert "SECRETVALUE" not in stream.getvalue()


async def test_once_finishes_a_backfill_step_by_step(cache, log_lines):
    logger, _ = log_lines
    directory = Directory(steps=4)
    assert await run_collect([directory], cache, POLLING, True, logger, handle_signals=False) == 0
    assert directory.calls == 4
    assert cache.watermark("graph.directory") == "4"


async def test_daemon_stops_cleanly_when_told(cache, log_lines):
    logger, stream = log_lines
    stop = asyncio.Event()
    directory = Directory(stop=stop)
    status = await run_collect(
        [directory], cache, POLLING, False, logger, stop=stop, handle_signals=False
    )
    assert status == 0
    assert directory.calls == 1
    assert lines(stream)[-1]["stopped_by_signal"] is True
    assert cache.count("entra_groups") == 1


async def test_sigterm_stops_the_daemon(cache, log_lines):
    logger, stream = log_lines

    class Signaller(Directory):
        async def collect(self, watermark):
            batch = await super().collect(watermark)
            os.kill(os.getpid(), signal.SIGTERM)
            return batch

    status = await run_collect([Signaller()], cache, POLLING, False, logger)
    assert status == 0
    assert any(line.get("signal") == "SIGTERM" for line in lines(stream))


async def test_a_hung_poll_is_abandoned_after_the_grace_period(cache, log_lines):
    logger, _ = log_lines
    stop = asyncio.Event()

    class Hung:
        source: SourceName = "graph.jobs"

        async def collect(self, watermark):
            stop.set()
            await asyncio.Event().wait()
            raise AssertionError("unreachable")

    status = await run_collect(
        [Hung()], cache, POLLING, False, logger, stop=stop, handle_signals=False, grace_seconds=0.01
    )
    assert status == 0
    assert cache.last_poll("graph.jobs") is None  # nothing half-saved


def test_a_failing_source_backs_off_exponentially_and_honours_retry_after(cache):
    loop = _SourceLoop(
        BrokenJobs(),
        cache,
        PollingConfig(max_backoff=timedelta(seconds=500)),
        logging.getLogger("test"),
        asyncio.Event(),
        clock=lambda: None,  # type: ignore[arg-type,return-value]
        jitter=lambda: 1.0,
    )
    delays = []
    for failures in range(1, 6):
        loop.failures = failures
        delays.append(loop._backoff(60.0, None))
    assert delays == [60.0, 120.0, 240.0, 480.0, 500.0]
    loop.failures = 1
    assert loop._backoff(60.0, Throttled("x", retry_after=900.0)) == 900.0


def test_text_log_lines_are_key_value_and_sanitised():
    stream = io.StringIO()
    logger = make_logger("text", stream)
    try:
        logger.info(
            "poll_failed",
            extra={"fields": {"source": "harness.scim", "error": "bad\x1b]2;x\x07 Bearer abc.def"}},
        )
    finally:
        for handler in list(logger.handlers):
            logger.removeHandler(handler)
    line = stream.getvalue()
    assert "source=harness.scim" in line
    assert "\x1b" not in line
    assert "abc.def" not in line


async def test_sync_job_records_save_through_the_loop(cache, log_lines):
    """A realistic record type goes through the loop and the cache's strict models."""
    logger, _ = log_lines

    class Jobs:
        source: SourceName = "graph.jobs"

        async def collect(self, watermark):
            from datetime import UTC, datetime

            return Batch(
                source="graph.jobs",
                records=[
                    SyncJob(
                        service_principal_id="sp",
                        job_id="j",
                        observed_at=datetime(2024, 1, 1, tzinfo=UTC),
                    )
                ],
            )

    assert await run_collect([Jobs()], cache, POLLING, True, logger, handle_signals=False) == 0
    assert cache.count("sync_jobs") == 1
