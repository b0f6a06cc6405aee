"""Autouse isolation (no test reads the real config, cache, keyring or env); shared fixtures."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from store.cache import Cache


@pytest.fixture(autouse=True)
def isolated_environment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Point every platform directory at a temp folder and drop SCIMWATCH_* variables."""
    home = tmp_path_factory.mktemp("home")
    saved = dict(os.environ)
    for name in list(os.environ):
        if name.startswith("SCIMWATCH_"):
            del os.environ[name]
    os.environ["XDG_CONFIG_HOME"] = str(home / "config")
    os.environ["XDG_DATA_HOME"] = str(home / "data")
    os.environ["XDG_STATE_HOME"] = str(home / "state")
    os.environ["XDG_CACHE_HOME"] = str(home / "cache")
    # The "fail" backend: a lookup answers nothing instead of reaching a real OS keyring.
    os.environ["PYTHON_KEYRING_BACKEND"] = "keyring.backends.fail.Keyring"
    try:
        yield home
    finally:
        os.environ.clear()
        os.environ.update(saved)


@pytest.fixture
def cache(tmp_path: Path) -> Iterator[Cache]:
    """A writer on a fresh cache in the test's temp folder (the store tests have their own)."""
    with Cache.open_writer(tmp_path / "cache.db") as opened:
        yield opened
