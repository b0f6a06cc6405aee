"""Prometheus metrics read from the cache at scrape time.

`collect --metrics-port N` serves them on 127.0.0.1 (a scrape target); `--metrics-file PATH`
writes node-exporter's textfile format for sites without one. Both read the same registry.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, start_http_server, write_to_textfile
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from store import directory, health
from store.cache import Cache
from store.models import JobHealth, SourceFreshness, SourceName

if TYPE_CHECKING:
    from sqlite_utils import Database


class CacheMetrics(Collector):
    """A prometheus-client collector that answers each scrape from the cache."""

    def __init__(
        self,
        cache: Cache,
        intervals: Mapping[SourceName, timedelta],
        clock: Callable[[], datetime],
    ) -> None:
        """Read `cache`; freshness uses each source's poll interval and `clock`."""
        self.cache = cache
        self.intervals = intervals
        self.clock = clock

    def collect(self) -> Iterator[Metric]:
        """One consistent read of the cache per scrape."""
        now = self.clock()
        freshness = self.cache.freshness(now, self.intervals)
        yield from _source_metrics(freshness, now)
        with self.cache.reading() as db:
            yield from _event_metrics(db)
            pending, escalated = health.pending_counts(db)
            yield _gauge("scimwatch_pending_retries", "Objects whose latest event failed", pending)
            yield _gauge("scimwatch_escalated_retries", "Failures past their 2nd cycle", escalated)
            yield from _job_metrics(health.job_health(db, now))
            mappings = directory.group_mappings(db)
            problems = GaugeMetricFamily(
                "scimwatch_group_problems", "Entra groups by mapping state", labels=["state"]
            )
            for state in sorted({m.state for m in mappings} - {"ok"}):
                problems.add_metric([state], sum(1 for m in mappings if m.state == state))
            yield problems
            conflicts = directory.sso_conflicts(db)
            sso = GaugeMetricFamily("scimwatch_sso_conflicts", "SSO conflicts", labels=["kind"])
            for kind in ("firstgen_unassigned", "unmatched_harness_user", "default_access"):
                sso.add_metric([kind], sum(1 for c in conflicts if c.kind == kind))
            yield sso


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, value=value)


def _source_metrics(freshness: list[SourceFreshness], now: datetime) -> Iterator[Metric]:
    age = GaugeMetricFamily(
        "scimwatch_source_last_success_age_seconds",
        "Seconds since the source's last successful poll (-1: never)",
        labels=["source"],
    )
    up = GaugeMetricFamily("scimwatch_source_up", "1 if the last poll succeeded", labels=["source"])
    stale = GaugeMetricFamily("scimwatch_source_stale", "1 if the data is stale", labels=["source"])
    for item in freshness:
        seconds = (now - item.last_success_at).total_seconds() if item.last_success_at else -1
        age.add_metric([item.source], seconds)
        up.add_metric([item.source], 0 if item.failing_since or not item.last_attempt_at else 1)
        stale.add_metric([item.source], int(item.stale))
    yield from (age, up, stale)


def _event_metrics(db: Database) -> Iterator[Metric]:
    row = next(
        iter(
            db.query(
                "SELECT count(*) AS cycles, coalesce(sum(succeeded), 0) AS success,"
                " coalesce(sum(failed), 0) AS failure, coalesce(sum(skipped), 0) AS skipped,"
                " coalesce(sum(warnings), 0) AS warning, coalesce(sum(creates), 0) AS c,"
                " coalesce(sum(updates), 0) AS u, coalesce(sum(deletes), 0) AS d,"
                " coalesce(sum(disables), 0) AS dis, coalesce(sum(staged_deletes), 0) AS sd,"
                " coalesce(sum(other_actions), 0) AS o FROM cycles"
            )
        )
    )
    yield _gauge("scimwatch_cycles", "Sync cycles in the cache", row["cycles"])
    status = GaugeMetricFamily(
        "scimwatch_events_by_status", "Provisioning events in the cache", labels=["status"]
    )
    for name in ("success", "failure", "skipped", "warning"):
        status.add_metric([name], row[name])
    yield status
    action = GaugeMetricFamily(
        "scimwatch_events_by_action", "Provisioning events in the cache", labels=["action"]
    )
    for label, column in (
        ("create", "c"), ("update", "u"), ("delete", "d"), ("disable", "dis"),
        ("stagedDelete", "sd"), ("other", "o"),
    ):  # fmt: skip
        action.add_metric([label], row[column])
    yield action


def _job_metrics(jobs: list[JobHealth]) -> Iterator[Metric]:
    quarantined = GaugeMetricFamily(
        "scimwatch_job_quarantined", "1 if the provisioning job is in quarantine", labels=["app"]
    )
    state = GaugeMetricFamily(
        "scimwatch_job_state", "The job's state (1 for the current one)", labels=["app", "state"]
    )
    for job in jobs:
        quarantined.add_metric([job.job.app], int(job.state == "quarantine"))
        state.add_metric([job.job.app, job.state], 1)
    yield from (quarantined, state)


def registry_for(
    cache: Cache, intervals: Mapping[SourceName, timedelta], clock: Callable[[], datetime]
) -> CollectorRegistry:
    """A registry holding only scimwatch's metrics."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(CacheMetrics(cache, intervals, clock))
    return registry


def serve_metrics(registry: CollectorRegistry, port: int, host: str = "127.0.0.1") -> None:
    """Serve the registry over HTTP in a daemon thread (loopback unless told otherwise)."""
    start_http_server(port, addr=host, registry=registry)


def write_metrics_file(registry: CollectorRegistry, path: Path) -> None:
    """Write node-exporter's textfile format atomically (temp file + rename)."""
    write_to_textfile(str(path), registry)
