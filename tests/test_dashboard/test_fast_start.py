"""`scimwatch` paints the overview first, then loads the settings and opens the cache."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from textual.app import App

import dashboard.settings
from dashboard.app import ScimwatchApp
from dashboard.cli import main
from dashboard.config_file import ConfigError
from dashboard.launch import FastStart, LaunchError, run_dashboard
from dashboard.settings import Settings
from store.cache import Cache
from store.cache_file import damage_marker, writer_holder
from tests.test_dashboard.builders import frozen_clock
from tests.test_dashboard.helpers import settle

SIZE = (120, 36)


@pytest.fixture
def configured(seeded: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The seeded cache as the configuration's cache; no config file, no keyring."""
    monkeypatch.setenv("SCIMWATCH_CACHE_PATH", str(seeded))
    monkeypatch.setenv("SCIMWATCH_USE_KEYRING", "false")
    return seeded


@pytest.fixture
def loads(monkeypatch: pytest.MonkeyPatch, frames: list[str]) -> list[int]:
    """How many frames were drawn when each full settings load began."""
    began: list[int] = []
    load = dashboard.settings.load_settings

    def counting(*args: Any, **kwargs: Any) -> Settings:
        began.append(len(frames))
        return load(*args, **kwargs)

    monkeypatch.setattr(dashboard.settings, "load_settings", counting)
    return began


async def test_the_overview_is_painted_before_the_settings_load_and_the_cache_opens(
    configured: Path, frames: list[str], loads: list[int]
):
    fast = FastStart.begin(None)
    assert fast is not None
    assert fast.writer == ""  # this process took the writer lock
    assert writer_holder(configured) == f"pid {os.getpid()}"
    # Done before the app composes, as when scimwatch starts it before importing Textual.
    first_read = fast.start_first_read(frozen_clock)
    first_read.result(timeout=30)
    app = fast.build_app(clock=frozen_clock, first_read=first_read)
    try:
        async with app.run_test(size=SIZE) as pilot:
            await settle(app, pilot)
            assert app.cache is fast.cache
            assert not app.cache.read_only
            assert app.start_error is None
    finally:
        fast.close()
    assert "HEALTHY" in frames[0]  # the cache's overview, in the first frame
    assert len(loads) == 1  # loaded once,
    assert loads[0] >= 1  # after the first frame
    assert writer_holder(configured) is None


async def test_a_cache_another_process_writes_is_painted_and_opened_read_only(configured: Path):
    with Cache.open_writer(configured):
        fast = FastStart.begin(None)
        assert fast is not None
        assert fast.writer == f"pid {os.getpid()}"
        app = fast.build_app(clock=frozen_clock)
        try:
            async with app.run_test(size=SIZE) as pilot:
                await settle(app, pilot)
                assert app.cache.read_only
        finally:
            fast.close()


def test_a_cache_to_migrate_or_check_first_takes_the_full_path(configured: Path):
    stamped = FastStart.begin(None)  # built by this version: stamped
    assert stamped is not None
    stamped.close()
    with sqlite3.connect(configured) as conn:
        conn.execute("PRAGMA user_version = 0")  # as a cache of an earlier version
    assert FastStart.begin(None) is None
    Cache.open_writer(configured).close()  # migrated (stamped) again
    damage_marker(configured).touch()  # a check found it damaged last time
    assert FastStart.begin(None) is None


def test_no_cache_yet_takes_the_full_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("SCIMWATCH_CACHE_PATH", str(tmp_path / "none.db"))
    assert FastStart.begin(None) is None


def test_settings_that_disagree_with_the_first_frames_are_refused(
    configured: Path, monkeypatch: pytest.MonkeyPatch
):
    fast = FastStart.begin(None)
    assert fast is not None
    load = dashboard.settings.load_settings
    monkeypatch.setattr(
        dashboard.settings,
        "load_settings",
        lambda profile: load(profile).model_copy(update={"cache_path": Path("/elsewhere.db")}),
    )
    try:
        with pytest.raises(LaunchError, match="configuration changed"):
            fast.open_cache()
    finally:
        fast.close()
    assert writer_holder(configured) is None


@pytest.fixture
def headless_run(monkeypatch: pytest.MonkeyPatch) -> None:
    """`App.run` without a terminal."""

    def run(app: App[None]) -> None:
        App.run(app, headless=True, size=SIZE)

    monkeypatch.setattr(ScimwatchApp, "run", run)


def test_a_configuration_refused_after_the_first_frame_is_the_same_error(
    configured: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, headless_run: None
):
    config = tmp_path / "config.toml"
    config.write_text('[graph]\ncloud = "mars"\n')  # the first frame does not read the cloud
    monkeypatch.setenv("SCIMWATCH_CONFIG", str(config))
    with pytest.raises(ConfigError) as before_painting:
        dashboard.settings.load_settings()
    with pytest.raises(ConfigError) as after_painting:
        run_dashboard(None)
    assert str(after_painting.value) == str(before_painting.value)
    assert writer_holder(configured) is None
    result = CliRunner().invoke(main, [])
    assert result.exit_code == 2
    assert f"scimwatch: {before_painting.value}" in result.output


def test_a_configuration_refused_before_the_first_frame_exits_as_before(
    configured: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, headless_run: None
):
    monkeypatch.setenv("SCIMWATCH_POLLING__JOBS_SECONDS", "1")  # the first frame's: refused
    result = CliRunner().invoke(main, [])
    assert result.exit_code == 2
    assert "invalid configuration" in result.output
    assert "polling.jobs_seconds" in result.output


def test_the_first_read_runs_without_pydantic_or_sqlite_utils(seeded: Path):
    """What the first frame reads (the overview of a seeded cache) loads neither."""
    import json
    import subprocess
    import sys

    code = (
        "import json, sys\n"
        "from pathlib import Path\n"
        "from dashboard.config_file import polling_intervals, POLLING_DEFAULTS\n"
        "from dashboard.first_read import read_first\n"
        "from datetime import UTC, datetime\n"
        "NOW = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)\n"
        f"first = read_first(Path({str(seeded)!r}), NOW, polling_intervals(POLLING_DEFAULTS))\n"
        "heavy = [m for m in ('pydantic', 'pydantic_settings', 'sqlite_utils')"
        " if m in sys.modules]\n"
        "print(json.dumps([heavy, first.overview.pending_retries, len(first.overview.jobs)]))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=os.environ
    )
    heavy, pending, jobs = json.loads(done.stdout)
    assert heavy == []
    assert pending > 0
    assert jobs == 2
