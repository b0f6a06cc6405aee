"""The headless `collect` loop: every source on its own schedule, until told to stop.

`scimwatch collect [--once] [--log-format text|json]` (dashboard/cli.py) opens the cache as
its writer (which takes the lock), builds the collectors, and calls `run_collect`.

- Each source runs in its own task: polls of one source never overlap, and one failing
  source never stops the others.
- A source that keeps failing backs off exponentially (with jitter, at least Retry-After).
- A backfill step that is not the last is followed at once by the next one.
- SIGTERM/SIGINT stop the loop: in-flight polls get a grace period to finish, then are
  cancelled; a save already running in its thread commits or rolls back whole (SQLite).
- Log lines are structured (text ``key=value`` or JSON), sanitised and redacted.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import signal
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, Literal, TextIO

from collectors.base import Collector, CollectorError, Throttled, redact, sanitize_text
from collectors.config import PollingConfig
from collectors.http import utc_now
from collectors.runner import poll_source
from store.cache import Cache

LOGGER_NAME = "scimwatch"
MAX_BACKFILL_STEPS = 10_000
"""Backfill steps one `--once` run takes at most (30 days in 1-day steps needs 30)."""


def log_event(log: logging.Logger, event: str, level: int = logging.INFO, **fields: Any) -> None:
    """Log one structured line: an event name and its fields."""
    log.log(level, event, extra={"fields": fields})


class _Redacting(logging.Filter):
    """Last line of defence: no token or configured secret leaves through a log line."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = redact(str(record.msg))
        if record.args:
            record.args = tuple(
                redact(arg) if isinstance(arg, str) else arg for arg in tuple(record.args)
            )
        return True


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    fields = getattr(record, "fields", None)
    if not isinstance(fields, dict):
        return {}
    return {
        key: sanitize_text(value, 500) if isinstance(value, str) else value
        for key, value in fields.items()
    }


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, event, then the event's fields."""

    def format(self, record: logging.LogRecord) -> str:
        """The record as a JSON line."""
        line = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": sanitize_text(record.getMessage(), 1000),
            **_fields(record),
        }
        return json.dumps(line, default=str)


class TextFormatter(logging.Formatter):
    """``time level event key=value ...`` lines."""

    def format(self, record: logging.LogRecord) -> str:
        """The record as a text line."""
        moment = datetime.fromtimestamp(record.created, UTC).isoformat(timespec="seconds")
        parts = [moment, record.levelname.lower(), sanitize_text(record.getMessage(), 1000)]
        for key, value in _fields(record).items():
            text = json.dumps(value) if isinstance(value, str) and " " in value else str(value)
            parts.append(f"{key}={text}")
        return " ".join(parts)


def make_logger(
    log_format: Literal["text", "json"] = "text", stream: TextIO | None = None
) -> logging.Logger:
    """The ``scimwatch`` logger writing structured, redacted lines to `stream` (stderr)."""
    logger = logging.getLogger(LOGGER_NAME)
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    handler.addFilter(_Redacting())
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    return logger


class _SourceLoop:
    """The schedule of one source."""

    def __init__(
        self,
        collector: Collector,
        cache: Cache,
        polling: PollingConfig,
        log: logging.Logger,
        stop: asyncio.Event,
        clock: Callable[[], datetime],
        jitter: Callable[[], float],
    ) -> None:
        self.collector = collector
        self.cache = cache
        self.polling = polling
        self.log = log
        self.stop = stop
        self.clock = clock
        self.jitter = jitter
        self.failures = 0
        self.last_ok = False

    async def run(self, once: bool) -> bool:
        """Poll until stopped (or once, finishing any backfill); True if the last poll was ok."""
        steps = 0
        while not self.stop.is_set():
            delay, complete = await self._poll()
            steps += 1
            if self.last_ok and not complete and steps < MAX_BACKFILL_STEPS:
                continue
            if once:
                break
            if await _wait(self.stop, delay):
                break
        return self.last_ok

    async def _poll(self) -> tuple[float, bool]:
        source = self.collector.source
        interval = self.polling.interval(source).total_seconds()
        try:
            result = await poll_source(self.collector, self.cache, self.clock, collect_cycles=True)
        except CollectorError as error:
            self.failures += 1
            self.last_ok = False
            delay = self._backoff(interval, error)
            log_event(
                self.log,
                "poll_failed",
                logging.WARNING,
                source=source,
                kind=error.kind,
                error=str(error),
                failures=self.failures,
                retry_in=round(delay, 1),
            )
            return delay, True
        except Exception as error:  # a bug or a broken cache must not stop the other sources
            self.failures += 1
            self.last_ok = False
            delay = self._backoff(interval, None)
            log_event(
                self.log,
                "poll_crashed",
                logging.ERROR,
                source=source,
                error=f"{type(error).__name__}: {redact(str(error))}",
                failures=self.failures,
                retry_in=round(delay, 1),
            )
            return delay, True
        self.failures = 0
        self.last_ok = True
        run = result.poll_run
        log_event(
            self.log,
            "poll_ok",
            source=source,
            records=run.records,
            skipped=run.skipped,
            complete=result.complete,
            seconds=round((run.finished_at - run.started_at).total_seconds(), 3),
        )
        return interval, result.complete

    def _backoff(self, interval: float, error: CollectorError | None) -> float:
        cap = self.polling.max_backoff.total_seconds()
        base = min(cap, interval * 2.0 ** (self.failures - 1))
        delay = base * (0.5 + self.jitter() / 2)
        if isinstance(error, Throttled) and error.retry_after is not None:
            delay = max(delay, error.retry_after)
        return delay


async def _wait(stop: asyncio.Event, seconds: float) -> bool:
    """Sleep up to `seconds`; True if `stop` was set meanwhile."""
    try:
        await asyncio.wait_for(stop.wait(), timeout=max(0.0, seconds))
    except TimeoutError:
        return False
    return True


async def run_collect(
    collectors: Sequence[Collector],
    cache: Cache,
    polling: PollingConfig,
    once: bool,
    log: logging.Logger,
    *,
    stop: asyncio.Event | None = None,
    clock: Callable[[], datetime] = utc_now,
    handle_signals: bool = True,
    grace_seconds: float = 15.0,
    jitter: Callable[[], float] = random.random,
) -> int:
    """Keep the cache fresh: poll every source on its interval until stopped.

    Args:
        collectors: the sources to poll (from `collectors.config.build_collectors`).
        cache: the cache, opened as its writer (the caller holds the lock).
        polling: intervals and backoff limits.
        once: poll every source once (finishing a first-run backfill) and return.
        log: where structured lines go (see `make_logger`).
        stop: set it to stop the loop (SIGTERM/SIGINT set it too when `handle_signals`).
        clock: the UTC clock.
        handle_signals: install SIGTERM/SIGINT handlers on the running loop.
        grace_seconds: how long in-flight polls may finish after a stop before cancellation.
        jitter: random source for backoff (tests pin it).

    Returns:
        An exit status: 0 when every source's last poll succeeded (or the daemon was stopped
        cleanly), 1 when a source's last poll failed in `--once` mode.
    """
    stop = stop or asyncio.Event()
    loops = [
        _SourceLoop(collector, cache, polling, log, stop, clock, jitter) for collector in collectors
    ]
    installed = _install_signals(stop, log) if handle_signals else []
    log_event(log, "collect_started", sources=len(loops), once=once)
    tasks = [asyncio.create_task(loop.run(once), name=loop.collector.source) for loop in loops]
    try:
        await _until_done_or_stopped(tasks, stop, grace_seconds, log)
    finally:
        loop_ = asyncio.get_running_loop()
        for signum in installed:
            loop_.remove_signal_handler(signum)
    all_ok = all(loop.last_ok for loop in loops)
    log_event(log, "collect_stopped", ok=all_ok, stopped_by_signal=stop.is_set())
    if once and not all_ok:
        return 1
    return 0


async def _until_done_or_stopped(
    tasks: list[asyncio.Task[bool]], stop: asyncio.Event, grace: float, log: logging.Logger
) -> None:
    stop_task = asyncio.create_task(stop.wait())
    try:
        pending: set[asyncio.Task[Any]] = set(tasks)
        while pending:
            done, _ = await asyncio.wait(pending | {stop_task}, return_when=asyncio.FIRST_COMPLETED)
            pending -= done
            if stop_task in done:
                break
        if pending:
            log_event(log, "stopping", in_flight=len(pending), grace_seconds=grace)
            _, still = await asyncio.wait(pending, timeout=grace)
            for task in still:
                task.cancel()
            await asyncio.gather(*still, return_exceptions=True)
    finally:
        stop_task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await stop_task


def _install_signals(stop: asyncio.Event, log: logging.Logger) -> list[signal.Signals]:
    loop = asyncio.get_running_loop()
    installed: list[signal.Signals] = []
    for signum in (signal.SIGTERM, signal.SIGINT):
        try:
            loop.add_signal_handler(signum, _on_signal, stop, log, signum)
        except (NotImplementedError, RuntimeError, ValueError):
            continue
        installed.append(signum)
    return installed


def _on_signal(stop: asyncio.Event, log: logging.Logger, signum: signal.Signals) -> None:
    log_event(log, "signal", signal=signum.name)
    stop.set()
