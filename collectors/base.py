"""The collector boundary: the `Collector` protocol and the errors collectors raise.

A collector fetches one source and returns a `store.models.Batch`; it never touches SQLite.

Error tree (every error keeps its cause with ``raise ... from``)::

    CollectorError          base; ``kind`` names the failure class (PollRun.error_kind)
    ├── SourceUnavailable   network down, timeouts, deadline, 5xx after retries
    ├── AuthFailed          no token, or the token was rejected (401) after one refresh
    ├── Forbidden           allowed in but not to this; ``permission`` names what is missing
    ├── Throttled           still 429 after retries; ``retry_after`` seconds when known
    ├── UnexpectedPayload   not the JSON we expect, too large, malformed envelope
    └── ForeignHost         a nextLink or redirect named another host; nothing sent there

Error messages are shown to people and stored in the cache, so they never carry a secret: they
are built from status codes, API error codes and sanitised API messages, then passed through
`redact`.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import ClassVar, Protocol, runtime_checkable

from store.models import Batch, Record, SourceName

__all__ = [
    "AuthFailed",
    "Collector",
    "CollectorError",
    "Forbidden",
    "ForeignHost",
    "RecordSink",
    "SourceUnavailable",
    "StagingCollector",
    "Throttled",
    "UnexpectedPayload",
    "redact",
    "sanitize_text",
]


class Collector(Protocol):
    """Fetches one source and returns what to save; see `collectors.runner.poll_once`."""

    source: SourceName

    async def collect(self, watermark: str | None) -> Batch:
        """Fetch the source, incrementally from `watermark` where the source has one."""
        ...


RecordSink = Callable[[Sequence[Record]], Awaitable[None]]
"""Where a `StagingCollector` hands each page's records."""


@runtime_checkable
class StagingCollector(Collector, Protocol):
    """A collector whose records can be handed over a page at a time instead of in one Batch.

    The runner stages the pages in the cache (`store.cache.StagedPoll`) and saves them with
    the returned Batch in one transaction, so a whole-tenant listing never sits in memory.
    """

    async def collect_into(self, watermark: str | None, stage: RecordSink) -> Batch:
        """Like `collect`; each page's records go to `stage`, the Batch carries the rest."""
        ...


class CollectorError(Exception):
    """A source could not be collected; the message is safe to show and store."""

    kind: ClassVar[str] = "error"
    """The class of failure, stored as PollRun.error_kind."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(redact(message))
        self.status = status
        """The HTTP status behind the error, when there was one."""


class SourceUnavailable(CollectorError):
    """The service could not be reached or kept failing (network, timeouts, 5xx)."""

    kind: ClassVar[str] = "unavailable"


class AuthFailed(CollectorError):
    """No token could be obtained, or the service rejected it even after a refresh."""

    kind: ClassVar[str] = "auth"


class Forbidden(CollectorError):
    """The credential works but lacks a permission, which `permission` names."""

    kind: ClassVar[str] = "forbidden"

    def __init__(self, message: str, *, permission: str, status: int | None = 403) -> None:
        super().__init__(message, status=status)
        self.permission = permission
        """The permission to grant (a Graph application permission or a Harness one)."""


class Throttled(CollectorError):
    """The service kept answering 429 after the retries the policy allows."""

    kind: ClassVar[str] = "throttled"

    def __init__(self, message: str, *, retry_after: float | None, status: int | None = 429):
        super().__init__(message, status=status)
        self.retry_after = retry_after
        """Seconds the service asked us to wait, when it said (Harness never does)."""


class UnexpectedPayload(CollectorError):
    """The response was not what the API documents (not JSON, too big, wrong envelope)."""

    kind: ClassVar[str] = "payload"


class ForeignHost(CollectorError):
    """A continuation or redirect pointed at a host other than the configured one."""

    kind: ClassVar[str] = "foreign_host"

    def __init__(self, message: str, *, url_host: str) -> None:
        super().__init__(message)
        self.url_host = url_host
        """The host that was refused (never contacted with credentials)."""


# Patterns from reference/reliability.md section 3.2: bearer tokens, JWTs, Harness PAT/SAT
# tokens, and form fields that carry client secrets or assertions.
_SECRET_PATTERNS = (
    re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]+"),
    re.compile(r"eyJ[\w-]+\.[\w-]+\.[\w-]*"),
    re.compile(r"\b([ps]at\.)[\w-]+\.[\w-]+(\.[\w-]+)?"),
    re.compile(r"(?i)((?:client_secret|client_assertion|x-api-key|api[_-]?key)[=:]\s*)[^\s&,;]+"),
)
_extra_secrets: list[str] = []


def register_secret(value: str) -> None:
    """Add a configured secret so `redact` removes it verbatim wherever it appears."""
    if value and len(value) >= 4 and value not in _extra_secrets:
        _extra_secrets.append(value)


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """`text` with tokens, secrets and the given literal values replaced by `***`."""
    for literal in (*_extra_secrets, *secrets):
        if literal:
            text = text.replace(literal, "***")
    for pattern in _SECRET_PATTERNS:
        text = pattern.sub(_mask, text)
    return text


def _mask(match: re.Match[str]) -> str:
    """The matched secret as `***`, after its label (``Bearer ``, ``pat.``) when it has one."""
    label = match.group(1) if match.re.groups else None  # a bare JWT has no label
    return (label or "") + "***"


_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def sanitize_text(text: str, limit: int = 300) -> str:
    """API text made safe for logs and messages: controls escaped, length capped.

    API data can carry ANSI/OSC sequences and CR/LF (reference/reliability.md sections 3.2, 3.5).
    """
    cleaned = _CONTROL.sub(lambda match: f"\\x{ord(match.group()):02x}", text)
    cleaned = cleaned.replace("\n", "\\n")
    if len(cleaned) > limit:
        cleaned = cleaned[:limit] + "…"
    return redact(cleaned)
