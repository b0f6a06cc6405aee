"""App-wide messages: what the poll scheduler announces to the app and its screens."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from textual.message import Message

from store.names import SourceName

if TYPE_CHECKING:
    from store.models import PollRun


@dataclass
class PollStarted(Message):
    """A poll of one source began."""

    source: SourceName


@dataclass
class PollSucceeded(Message):
    """A poll committed its batch to the cache."""

    poll_run: PollRun


@dataclass
class PollFailed(Message):
    """A poll of one source failed; the cache keeps its previous data."""

    source: SourceName
    reason: str
    """What went wrong, safe to show (collectors redact secrets)."""
    kind: str = "error"
    """The class of failure: auth, throttled, unavailable, payload..."""
    retry_after: datetime | None = None
    """When the service said to come back (throttling), if it said."""


@dataclass
class CacheChanged(Message):
    """The cache has new data (a poll here, or another process writing it)."""

    changed_at: datetime

    def can_replace(self, message: Message) -> bool:
        """A burst of changes collapses into the latest one."""
        return isinstance(message, CacheChanged)
