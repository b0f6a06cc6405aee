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
