"""Composition of the headless commands: `collect` (with metrics and alerts) and `doctor`.

Settings are turned into connections here (through `dashboard.launch`), so `collectors` never
reads configuration.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import click

from dashboard.timefmt import utc_now
from store.cache import Cache, CacheError

if TYPE_CHECKING:
    from collectors.doctor import Finding
    from dashboard.settings import Settings

ALERT_AND_METRICS_EVERY = timedelta(seconds=30)
"""How often the daemon refreshes the metrics file and announces state changes."""


def run_collect_command(
    settings: Settings,
    *,
    once: bool,
    log_format: Literal["text", "json"],
    metrics_port: int | None,
    metrics_host: str,
    metrics_file: Path | None,
) -> int:
    """`scimwatch collect`: take the writer lock and keep the cache fresh; the exit status."""
    from collectors.headless import make_logger
    from collectors.runner import limit_malloc_arenas
    from dashboard.launch import build_collector_set, graph_connection, harness_connection

    if graph_connection(settings) is None and harness_connection(settings) is None:
        raise click.ClickException(
            "nothing to collect: configure [graph] (tenant_id, nextgen_sp_id and how to sign "
            "in: auth_kind, client_id and its secret or certificate) and/or [harness] "
            "(account_id and SCIMWATCH_HARNESS__TOKEN); see `scimwatch config init`"
        )
    limit_malloc_arenas()  # before any thread: memory freed after a poll stays less scattered
    try:
        cache = Cache.open_writer(settings.resolved_cache_path())
    except CacheError as error:
        raise click.ClickException(str(error)) from error
    log = make_logger(log_format)
    try:
        collector_set = build_collector_set(settings)
        return asyncio.run(
            _collect(
                settings, cache, collector_set, once, log, metrics_port, metrics_host, metrics_file
            )
        )
    finally:
        cache.close()


async def _collect(
    settings: Settings,
    cache: Cache,
    collector_set: object,
    once: bool,
    log: logging.Logger,
    metrics_port: int | None,
    metrics_host: str,
    metrics_file: Path | None,
) -> int:
    from collectors.config import CollectorSet
    from collectors.headless import log_event, run_collect
    from collectors.metrics import registry_for, serve_metrics
    from dashboard.launch import polling_config

    assert isinstance(collector_set, CollectorSet)
    polling = polling_config(settings)
    intervals = polling.intervals
    registry = registry_for(cache, intervals, utc_now)
    if metrics_port is not None:
        serve_metrics(registry, metrics_port, metrics_host)
        log_event(log, "metrics_serving", host=metrics_host, port=metrics_port)
    side_work = _SideWork(settings, cache, registry, metrics_file, log)
    stop = asyncio.Event()
    side_task = (
        None if once else asyncio.create_task(side_work.every(ALERT_AND_METRICS_EVERY, stop))
    )
    try:
        status = await run_collect(collector_set.collectors, cache, polling, once, log, stop=stop)
    finally:
        stop.set()
        if side_task is not None:
            await side_task
        await side_work.run_once()
        await collector_set.aclose()
    return status


class _SideWork:
    """Metrics file and webhook alerts, refreshed beside the polls."""

    def __init__(
        self,
        settings: Settings,
        cache: Cache,
        registry: object,
        metrics_file: Path | None,
        log: logging.Logger,
    ) -> None:
        self.settings = settings
        self.cache = cache
        self.registry = registry
        self.metrics_file = metrics_file
        self.log = log

    async def every(self, period: timedelta, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await self.run_once()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), period.total_seconds())

    async def run_once(self) -> None:
        from collectors.headless import log_event

        try:
            if self.metrics_file is not None:
                await asyncio.to_thread(self._write_metrics)
            if self.settings.alerts.webhooks:
                await self._announce()
        except Exception as error:  # alerts and metrics must never stop collection
            log_event(
                self.log, "side_work_failed", level=logging.WARNING, error=type(error).__name__
            )

    def _write_metrics(self) -> None:
        from prometheus_client import CollectorRegistry

        from collectors.metrics import write_metrics_file

        assert isinstance(self.registry, CollectorRegistry)
        assert self.metrics_file is not None
        write_metrics_file(self.registry, self.metrics_file)

    async def _announce(self) -> None:
        import httpx

        from collectors.config import make_client
        from collectors.headless import log_event
        from collectors.notify import Webhook, announce_changes
        from dashboard.settings import source_intervals

        webhooks = [
            Webhook(url=hook.url, format=hook.format) for hook in self.settings.alerts.webhooks
        ]
        now = utc_now()
        freshness = self.cache.freshness(now, source_intervals(self.settings.polling))
        async with make_client(self.settings.ca_bundle, timeout=httpx.Timeout(20)) as client:
            changes = await announce_changes(self.cache, webhooks, client, now, freshness)
        for change in changes:
            log_event(self.log, "alert", kind=change.kind, key=change.condition.key)


def run_doctor_command(settings: Settings, echo: Callable[[str], object] = click.echo) -> int:
    """`scimwatch doctor`: every check with its verdict and fix; exit 0 if all pass, else 1."""
    from collectors.doctor import diagnose
    from dashboard.launch import graph_connection, harness_connection

    graph, harness = graph_connection(settings), harness_connection(settings)
    if graph is None and harness is None:
        echo(
            "FAIL  configuration: neither Entra nor Harness is configured. Run "
            "`scimwatch config init`, fill in [graph] and [harness], and set "
            "SCIMWATCH_GRAPH__CLIENT_SECRET and SCIMWATCH_HARNESS__TOKEN."
        )
        return 1
    findings = asyncio.run(diagnose(graph, harness))
    for finding in findings:
        echo(_format_finding(finding))
    return 0 if all(finding.status != "fail" for finding in findings) else 1


def _format_finding(finding: Finding) -> str:
    line = f"{finding.status.upper():<5} {finding.check}: {finding.found}"
    return f"{line}\n      fix: {finding.fix}" if finding.fix else line
