"""Times as the admin reads them: relative ("3 min ago", "in 12 min") and short clock times.

Every function takes `now` explicitly: the app passes its injected clock, so snapshots of
screens that show ages are stable.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta


def utc_now() -> datetime:
    """The wall clock, in UTC (the clock the app and the collectors use unless given one)."""
    return datetime.now(UTC)


def span(delta: timedelta) -> str:
    """A duration in the largest unit that reads well: 45 s, 12 min, 3 h 5 min, 4 days."""
    seconds = int(abs(delta.total_seconds()))
    if seconds < 60:
        return f"{seconds} s"
    minutes = seconds // 60
    if minutes < 60:
        return f"{minutes} min"
    hours = minutes // 60
    if hours < 48:
        rest = minutes % 60
        return f"{hours} h {rest} min" if rest and hours < 10 else f"{hours} h"
    return f"{hours // 24} days"


def ago(moment: datetime | None, now: datetime) -> str:
    """`moment` relative to `now`: "3 min ago", "in 12 min", "never"."""
    if moment is None:
        return "never"
    delta = now - moment
    if abs(delta) < timedelta(seconds=5):
        return "just now"
    return f"{span(delta)} ago" if delta > timedelta(0) else f"in {span(delta)}"


def clock(moment: datetime | None) -> str:
    """A short UTC time: "09:41 UTC"; "-" for None."""
    if moment is None:
        return "-"
    return moment.astimezone(UTC).strftime("%H:%M UTC")


def stamp(moment: datetime | None) -> str:
    """Date and UTC time: "2026-11-28 09:41"; "-" for None."""
    if moment is None:
        return "-"
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M")
