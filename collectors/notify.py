"""Webhook alerts: Microsoft Teams, Slack and generic JSON, one per state change.

A change is announced to every configured webhook, retried with backoff on 5xx and network
errors. The saved alert state moves only when every webhook took every change, so a failed
delivery is retried on the next round rather than lost (at-least-once).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import httpx
from pydantic import SecretStr

from store.alerts import Change, changes_since_last, current_conditions, save_alerted
from store.cache import Cache
from store.models import SourceFreshness

log = logging.getLogger(__name__)

WebhookFormat = Literal["teams", "slack", "generic"]

_COLOURS = {"critical": "Attention", "warning": "Warning", "resolved": "Good"}


@dataclass(frozen=True)
class Webhook:
    """Where to send alerts; the URL is a secret (it carries the channel's token)."""

    url: SecretStr
    format: WebhookFormat = "generic"


def payload(change: Change, fmt: WebhookFormat, at: datetime) -> dict[str, Any]:
    """The JSON body for one change in a webhook's format."""
    condition = change.condition
    verb = "RESOLVED" if change.kind == "resolved" else condition.severity.upper()
    title = f"scimwatch {verb}: {condition.message}"
    if fmt == "slack":
        return {"text": title}
    if fmt == "teams":
        colour = _COLOURS["resolved" if change.kind == "resolved" else condition.severity]
        return {
            "type": "message",
            "attachments": [
                {
                    "contentType": "application/vnd.microsoft.card.adaptive",
                    "content": {
                        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                        "type": "AdaptiveCard",
                        "version": "1.4",
                        "body": [
                            {
                                "type": "TextBlock",
                                "text": f"scimwatch {verb}",
                                "weight": "Bolder",
                                "color": colour,
                            },
                            {"type": "TextBlock", "text": condition.message, "wrap": True},
                        ],
                    },
                }
            ],
        }
    return {
        "source": "scimwatch",
        "kind": change.kind,
        "severity": condition.severity,
        "key": condition.key,
        "message": condition.message,
        "at": at.isoformat(),
    }


async def deliver(
    client: httpx.AsyncClient,
    webhook: Webhook,
    body: dict[str, Any],
    *,
    attempts: int = 4,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> bool:
    """POST one alert, retrying 5xx, 429 and network errors with exponential backoff."""
    for attempt in range(attempts):
        try:
            response = await client.post(webhook.url.get_secret_value(), json=body)
        except httpx.HTTPError as error:
            # The URL is secret: log the error class only.
            log.warning(
                "webhook delivery failed (%s), attempt %d", type(error).__name__, attempt + 1
            )
        else:
            if response.status_code < 300:
                return True
            if response.status_code < 500 and response.status_code != 429:
                log.warning("webhook refused the alert: HTTP %d", response.status_code)
                return False
            log.warning("webhook answered HTTP %d, attempt %d", response.status_code, attempt + 1)
        if attempt + 1 < attempts:
            await sleep(min(2.0**attempt, 30.0))
    return False


async def announce_changes(
    cache: Cache,
    webhooks: Sequence[Webhook],
    client: httpx.AsyncClient,
    now: datetime,
    freshness: Sequence[SourceFreshness],
    *,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> list[Change]:
    """Send every change since the last announcement; return the changes sent."""
    with cache.reading() as db:
        conditions = current_conditions(db, now, freshness)
        changes = changes_since_last(db, conditions)
    if not changes:
        return []
    delivered = True
    for change in changes:
        for webhook in webhooks:
            ok = await deliver(client, webhook, payload(change, webhook.format, now), sleep=sleep)
            delivered = delivered and ok
    if delivered:
        await asyncio.to_thread(_save, cache, conditions, now)
    return changes


def _save(cache: Cache, conditions: list[Any], now: datetime) -> None:
    with cache.transaction() as db:
        save_alerted(db, conditions, now)
