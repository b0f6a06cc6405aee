"""The headless layers never load the UI library, and `--help` loads nothing heavy."""

from __future__ import annotations

import subprocess
import sys

import pytest


def _modules_after_import(statement: str) -> set[str]:
    code = f"{statement}\nimport sys\nprint('\\n'.join(sys.modules))"
    completed = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    return set(completed.stdout.split())


@pytest.mark.parametrize("module", ["store.cache", "store.models", "collectors"])
def test_headless_layers_do_not_import_textual(module):
    loaded = _modules_after_import(f"import {module}")
    assert "textual" not in loaded


def test_cli_module_imports_no_heavy_library():
    """`scimwatch --help` must stay fast: textual, httpx and azure load only when needed."""
    loaded = _modules_after_import("import dashboard.cli")
    assert not {"textual", "httpx", "azure", "pydantic", "sqlite_utils"} & loaded


PRE_PAINT = (
    "import dashboard.cli, dashboard.launch, dashboard.config_file, dashboard.first_read, "
    "dashboard.app, dashboard.screens.overview, store.overview, store.cache_file"
)
"""What `scimwatch` imports before its first frame (`dashboard.launch.run_dashboard`)."""


def test_the_first_frame_imports_no_pydantic_nor_sqlite_utils():
    """The first frame is drawn before the settings, the records and the cache's writer load:
    importing pydantic, pydantic-settings and sqlite-utils and building their models cost more
    CPU than the whole frame."""
    loaded = _modules_after_import(PRE_PAINT)
    assert "textual" in loaded  # the statement did import the app
    assert not {"pydantic", "pydantic_settings", "sqlite_utils", "httpx"} & loaded
