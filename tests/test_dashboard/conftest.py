"""Fixtures of the dashboard tests: isolated caches and a steady cursor."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from textual.widgets import Input

from dashboard.app import ScimwatchApp
from store.cache import Cache
from tests.test_dashboard.builders import build_cache
from tests.test_dashboard.helpers import screen_text


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


@pytest.fixture
def frames(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The text on screen at each frame the app draws."""
    drawn: list[str] = []
    display = ScimwatchApp._display

    def recording(app: ScimwatchApp, screen: Any, renderable: Any) -> None:
        if renderable is not None:
            drawn.append(screen_text(app))
        display(app, screen, renderable)

    monkeypatch.setattr(ScimwatchApp, "_display", recording)
    return drawn
