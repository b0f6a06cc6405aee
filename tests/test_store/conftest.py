"""Fixtures of the store tests: a writer on a fresh cache."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from store.cache import Cache


@pytest.fixture
def cache_path(tmp_path: Path) -> Path:
    return tmp_path / "data" / "cache.db"


@pytest.fixture
def cache(cache_path: Path) -> Iterator[Cache]:
    with Cache.open_writer(cache_path) as opened:
        yield opened
