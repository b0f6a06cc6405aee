"""Fixtures of the dashboard tests: isolated caches and a steady cursor."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from textual.widgets import Input

from store.cache import Cache
from tests.test_dashboard.builders import build_cache


@pytest.fixture(autouse=True)
def no_cursor_blink(monkeypatch: pytest.MonkeyPatch) -> None:
    """A blinking cursor makes snapshots flaky."""
    monkeypatch.setattr(Input, "cursor_blink", False)


@pytest.fixture
def cache_path(tmp_path: Path) -> Path:
    return tmp_path / "data" / "cache.db"


@pytest.fixture
def seeded(cache_path: Path) -> Path:
    build_cache(cache_path)
    return cache_path


@pytest.fixture
def writer(seeded: Path) -> Iterator[Cache]:
    with Cache.open_writer(seeded) as cache:
        yield cache


@pytest.fixture
def reader(seeded: Path) -> Cache:
    return Cache.open_reader(seeded)
