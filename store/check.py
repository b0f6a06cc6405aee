"""`scimwatch check`: the health model as a Nagios-style verdict with performance data.

Exit codes are a stable interface: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from enum import IntEnum

from pydantic import BaseModel, ConfigDict
from sqlite_utils import Database

from store import directory, health
from store.models import JobHealth, SourceFreshness


class Status(IntEnum):
    """Nagios plugin exit codes."""

    OK = 0
    WARNING = 1
    CRITICAL = 2
    UNKNOWN = 3


class Thresholds(BaseModel):
    """When a condition becomes a warning or critical."""

    model_config = ConfigDict(frozen=True)

    source_failing_critical: timedelta = timedelta(hours=1)
    """A source failing for this long is critical (shorter: warning)."""
    escalated_warning: int = 1
    """This many escalated failures (2+ failed cycles) make a warning."""
    escalated_critical: int = 25
    """This many make it critical."""
    group_problems_warning: int = 1
    sso_conflicts_critical: int = 1


class Finding(BaseModel):
    """One condition the check found."""

    model_config = ConfigDict(frozen=True)

    status: Status
    message: str


class CheckResult(BaseModel):
    """The verdict, its reasons, and the numbers for graphs."""

    model_config = ConfigDict(frozen=True)

    status: Status
    findings: tuple[Finding, ...]
    perfdata: dict[str, int | float]

    def summary_line(self) -> str:
        """`SCIMWATCH CRITICAL - reason; reason | key=value ...` (Nagios plugin output)."""
        worst = [f.message for f in self.findings if f.status == self.status] or ["all healthy"]
        others = [f.message for f in self.findings if f.status != self.status]
        text = "; ".join(worst + others)
        perf = " ".join(f"{key}={value}" for key, value in self.perfdata.items())
        return f"SCIMWATCH {self.status.name} - {text} | {perf}"


def evaluate(
    db: Database,
    now: datetime,
    freshness: Iterable[SourceFreshness],
    thresholds: Thresholds | None = None,
) -> CheckResult:
    """Judge the cache: quarantine, jobs, sources, retries, conflicts and staleness."""
    limits = thresholds or Thresholds()
    fresh = list(freshness)
    findings: list[Finding] = []
    if all(item.last_attempt_at is None for item in fresh):
        findings.append(Finding(status=Status.UNKNOWN, message="the cache was never collected"))
    findings += _job_findings(health.job_health(db, now))
    findings += _source_findings(fresh, now, limits)
    pending, escalated = health.pending_counts(db)
    if escalated >= limits.escalated_critical:
        findings.append(Finding(status=Status.CRITICAL, message=f"{escalated} escalated failures"))
    elif escalated >= limits.escalated_warning:
        findings.append(
            Finding(status=Status.WARNING, message=f"{escalated} failures past their 2nd attempt")
        )
    conflicts = directory.sso_conflicts(db)
    blocked = sum(1 for conflict in conflicts if conflict.kind == "firstgen_unassigned")
    if blocked >= limits.sso_conflicts_critical:
        findings.append(
            Finding(
                status=Status.CRITICAL, message=f"{blocked} users cannot sign in (FirstGen app)"
            )
        )
    groups = [mapping for mapping in directory.group_mappings(db) if mapping.state != "ok"]
    if len(groups) >= limits.group_problems_warning:
        findings.append(Finding(status=Status.WARNING, message=f"{len(groups)} group problems"))
    status = max((finding.status for finding in findings), default=Status.OK)
    stale_seconds = max(
        (
            (now - item.last_success_at).total_seconds() if item.last_success_at else -1
            for item in fresh
        ),
        default=-1,
    )
    perfdata: dict[str, int | float] = {
        "pending_retries": pending,
        "escalated_retries": escalated,
        "sso_conflicts": len(conflicts),
        "group_problems": len(groups),
        "stale_s": int(stale_seconds),
        "failing_sources": sum(1 for item in fresh if item.failing_since is not None),
    }
    return CheckResult(status=status, findings=tuple(findings), perfdata=perfdata)


def _job_findings(jobs: list[JobHealth]) -> list[Finding]:
    findings = []
    for job in jobs:
        label = f"{job.job.app} job"
        match job.state:
            case "quarantine":
                findings.append(
                    Finding(
                        status=Status.CRITICAL,
                        message=f"{label} in quarantine ({job.job.quarantine_reason or 'Unknown'})",
                    )
                )
            case "paused" | "silent":
                findings.append(
                    Finding(status=Status.CRITICAL, message=f"{label} not running ({job.state})")
                )
            case "overdue":
                findings.append(Finding(status=Status.WARNING, message=f"{label} cycle overdue"))
    return findings


def _source_findings(
    fresh: list[SourceFreshness], now: datetime, limits: Thresholds
) -> list[Finding]:
    findings = []
    for item in fresh:
        if item.last_error_kind == "auth":
            findings.append(
                Finding(status=Status.CRITICAL, message=f"{item.source} credentials rejected")
            )
        elif item.failing_since is not None:
            failing_for = now - item.failing_since
            status = (
                Status.CRITICAL if failing_for >= limits.source_failing_critical else Status.WARNING
            )
            minutes = int(failing_for.total_seconds() // 60)
            findings.append(
                Finding(status=status, message=f"{item.source} failing for {minutes} min")
            )
        elif item.stale and item.last_attempt_at is not None:
            findings.append(Finding(status=Status.WARNING, message=f"{item.source} data stale"))
    return findings
