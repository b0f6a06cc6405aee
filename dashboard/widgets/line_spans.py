"""Finding the part of a one-line bar under the pointer (nav, status and key bars)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol, TypeVar


class Spanned(Protocol):
    """A part of a drawn line: columns `start` (included) to `end` (excluded)."""

    @property
    def start(self) -> int:
        """First column."""
        ...

    @property
    def end(self) -> int:
        """Column after the last."""
        ...


S = TypeVar("S", bound=Spanned)


def at_column(parts: Iterable[S], x: int) -> S | None:
    """The part covering column `x`, if any."""
    return next((part for part in parts if part.start <= x < part.end), None)
