"""Deterministic identifiers: the same seed always gives the same tenant.

User and group ids carry their index in their last 12 hex digits, and Harness user ids in their
last 4 bytes, so a lazily generated directory of 100,000 users can be looked up without a dict.
"""

from __future__ import annotations

import base64
import hashlib

_HARNESS_ALPHABET_BYTES = 16


def digest(seed: int, *parts: object) -> bytes:
    """32 bytes derived from ``seed`` and ``parts``."""
    text = ":".join([str(seed), *map(str, parts)])
    return hashlib.blake2b(text.encode(), digest_size=32).digest()


def guid(seed: int, *parts: object) -> str:
    """A version-4-shaped GUID derived from ``seed`` and ``parts``."""
    h = digest(seed, *parts).hex()
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{'89ab'[int(h[16], 16) % 4]}{h[17:20]}-{h[20:32]}"


def indexed_guid(seed: int, kind: str, index: int) -> str:
    """A GUID for the ``index``-th object of ``kind`` whose last 12 hex digits are the index."""
    h = digest(seed, kind, index).hex()
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{'89ab'[int(h[16], 16) % 4]}{h[17:20]}-{index:012x}"


def index_of_guid(seed: int, kind: str, value: str) -> int | None:
    """The index encoded in ``value`` if it is one of ``indexed_guid(seed, kind, ...)``."""
    try:
        index = int(value[-12:], 16)
    except ValueError:
        return None
    return index if indexed_guid(seed, kind, index) == value else None


def harness_uuid(seed: int, kind: str, index: int) -> str:
    """A 22-character URL-safe id like Harness's ``generateUuid()`` with the index embedded."""
    raw = digest(seed, kind, index)[:12] + index.to_bytes(4, "big")
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def index_of_harness_uuid(seed: int, kind: str, value: str) -> int | None:
    """The index encoded in a ``harness_uuid`` value, or None."""
    try:
        raw = base64.urlsafe_b64decode(value + "==")
    except (ValueError, TypeError):
        return None
    if len(raw) != _HARNESS_ALPHABET_BYTES:
        return None
    index = int.from_bytes(raw[12:], "big")
    return index if harness_uuid(seed, kind, index) == value else None


def hex_token(seed: int, *parts: object, length: int = 64) -> str:
    """An opaque hex string like Graph's skiptokens."""
    return (digest(seed, *parts).hex() * 4)[:length]
