"""Compact storage of an event's detail pane data (steps, modified properties, details).

Raw JSON is most of a naive cache's size (reference/perf-baselines.md), and the detail pane
reads one event at a time, so it is kept as zlib-compressed JSON.
"""

from __future__ import annotations

import json
import zlib
from typing import Any

_MAX_DETAIL_BYTES = 4 * 1024 * 1024
"""Decompressed size limit, so a corrupt or hostile blob cannot exhaust memory."""


def pack_detail(detail: dict[str, Any]) -> bytes:
    """Compress an event's detail for the cache."""
    text = json.dumps(detail, separators=(",", ":"), ensure_ascii=False, sort_keys=True)
    return zlib.compress(text.encode("utf-8"), level=6)


def unpack_detail(blob: bytes | None) -> dict[str, Any]:
    """The detail saved by `pack_detail`; an empty dict when absent or unreadable."""
    if not blob:
        return {}
    decompressor = zlib.decompressobj()
    try:
        text = decompressor.decompress(blob, _MAX_DETAIL_BYTES)
        loaded = json.loads(text.decode("utf-8"))
    except (zlib.error, UnicodeDecodeError, ValueError):
        return {}
    return loaded if isinstance(loaded, dict) else {}
