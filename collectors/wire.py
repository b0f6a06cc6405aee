"""Shared helpers for the private wire models of the Graph and Harness collectors.

Wire models are lenient on purpose (STYLE.md B4): unknown fields are ignored, nulls tolerated
and enum values kept as text, while the records they map onto (`store.models`) are strict.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator
from pydantic.alias_generators import to_camel

from collectors.base import sanitize_text
from store.models import Batch, Record

if TYPE_CHECKING:
    from collectors.base import StagingCollector

log = logging.getLogger("scimwatch.collectors")

W = TypeVar("W", bound=BaseModel)
T = TypeVar("T")
R = TypeVar("R", bound=Record)


_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def without_lone_surrogates(text: str) -> str:
    """Replace lone surrogates (valid JSON escapes, invalid UTF-8) with U+FFFD."""
    return text if text.isascii() else _LONE_SURROGATE.sub("\ufffd", text)


class WireModel(BaseModel):
    """Base of every wire model: camelCase on the wire, snake_case here, extras ignored."""

    model_config = ConfigDict(alias_generator=to_camel, validate_by_name=True, extra="ignore")

    @field_validator("*", mode="after")
    @classmethod
    def _storable_text(cls, value: Any) -> Any:
        # A "\ud800" in a display name is valid JSON but cannot be stored as UTF-8: left alone
        # it would fail the whole batch on every poll (reliability.md section 4).
        return without_lone_surrogates(value) if isinstance(value, str) else value


PAGE_IN_THREAD = 50
"""Pages with at least this many items are validated in a worker thread (`on_page`)."""

P = TypeVar("P", bound=Sequence[Any])


async def on_page(items: P, work: Callable[[P], T]) -> T:
    """`work(items)` for a page just fetched, in a worker thread when the page is large.

    Validating 1,000 items takes ~0.1 s of CPU. The TUI runs the collectors in its event loop:
    done there, it would hold up keys and drawing for that long at every page of a backfill.
    A small page costs less than the hop to a thread and back.
    """
    if len(items) < PAGE_IN_THREAD:
        return work(items)
    return await asyncio.to_thread(work, items)


async def parse_page(
    items: Sequence[Any],
    wire_type: type[W],
    to_record: Callable[[W], T],
    what: str,
) -> tuple[list[T], int]:
    """`parse_items` for a page just fetched, in a thread when the page is large (`on_page`)."""
    return await on_page(items, lambda page: parse_items(page, wire_type, to_record, what))


def parse_items(
    items: Iterable[Any],
    wire_type: type[W],
    to_record: Callable[[W], T],
    what: str,
) -> tuple[list[T], int]:
    """Validate and map each item; a malformed one is logged and counted, never fatal.

    Returns:
        The mapped items and how many were set aside.
    """
    records: list[T] = []
    skipped = 0
    for item in items:
        try:
            records.append(to_record(wire_type.model_validate(item)))
        except (ValidationError, ValueError, TypeError) as error:
            skipped += 1
            item_id = item.get("id") if isinstance(item, dict) else None
            log.warning(
                "skipped a malformed %s (id %s): %s",
                what,
                sanitize_text(str(item_id), 80),
                sanitize_text(_first_error(error), 200),
            )
    return records, skipped


def _first_error(error: Exception) -> str:
    if isinstance(error, ValidationError):
        first = error.errors()[0]
        location = ".".join(str(part) for part in first["loc"])
        return f"{location}: {first['msg']}"
    return str(error)


def dedupe(records: Iterable[R]) -> list[R]:
    """One record per table and primary key (the last seen wins), in first-seen order."""
    by_key: dict[tuple[object, ...], R] = {}
    for record in records:
        key = (type(record).table, *(getattr(record, name) for name in record.primary_key))
        by_key[key] = record
    return list(by_key.values())


async def collect_whole(collector: StagingCollector, watermark: str | None) -> Batch:
    """`collector.collect_into` gathered into one Batch, deduplicated like the cache does."""
    staged: list[Record] = []

    async def keep(records: Sequence[Record]) -> None:
        staged.extend(records)

    batch = await collector.collect_into(watermark, keep)
    return batch.model_copy(update={"records": dedupe([*staged, *batch.records])})
