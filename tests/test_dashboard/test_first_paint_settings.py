"""The first frame's settings agree with the full load, or leave the decision to it."""

from __future__ import annotations

import os
from pathlib import Path
from typing import get_args

import pytest

from dashboard.config_file import first_paint_settings
from dashboard.launch import is_configured
from dashboard.settings import CONFIG_TEMPLATE, ConfigError, load_settings

POLLING_FIELDS = (
    "provisioning_seconds",
    "jobs_seconds",
    "assignments_seconds",
    "directory_seconds",
    "harness_seconds",
    "overlap_minutes",
    "backfill_days",
)

FILE = """
cache_path = "~/caches/top.db"
[graph]
tenant_id = "t-file"
client_id = "c-file"
nextgen_sp_id = "sp-file"
[polling]
jobs_seconds = 60
[profiles.staging]
cache_path = ""
[profiles.staging.polling]
harness_seconds = 45
directory_seconds = 901
[profiles.staging.graph]
auth_kind = "managed_identity"
client_id = ""
[profiles.harness-only.graph]
nextgen_sp_id = ""
[profiles.harness-only.harness]
account_id = "acct"
"""

AGREE = [
    pytest.param(None, {}, None, id="defaults"),
    pytest.param(None, {}, FILE, id="file top level"),
    pytest.param("staging", {}, FILE, id="profile over file"),
    pytest.param("harness-only", {}, FILE, id="a profile configuring Harness only"),
    pytest.param(None, {"SCIMWATCH_PROFILE": "staging"}, FILE, id="profile from env"),
    pytest.param("staging", {"SCIMWATCH_PROFILE": "staging"}, FILE, id="same profile both ways"),
    pytest.param(
        None,
        {"SCIMWATCH_POLLING__JOBS_SECONDS": "300", "SCIMWATCH_CACHE_PATH": "/tmp/x/env.db"},
        FILE,
        id="env over file",
    ),
    pytest.param(None, {"scimwatch_polling__harness_seconds": "77"}, None, id="lowercase env"),
    pytest.param(None, {"SCIMWATCH_CACHE_PATH": ""}, FILE, id="empty cache path is unset"),
    pytest.param(None, {"SCIMWATCH_CACHE_PATH": "~/c.db"}, None, id="cache path expanded"),
    pytest.param(None, {"SCIMWATCH_CACHE_PATH": "rel.db"}, None, id="relative cache path"),
    pytest.param(
        None,
        {"SCIMWATCH_GRAPH__AUTH_KIND": "azure_cli", "SCIMWATCH_GRAPH__NEXTGEN_SP_ID": "sp"},
        None,
        id="azure cli needs no ids",
    ),
    pytest.param(
        None,
        {"SCIMWATCH_GRAPH__AUTH_KIND": "managed_identity", "SCIMWATCH_GRAPH__TENANT_ID": "t"},
        None,
        id="managed identity without the service principal",
    ),
    pytest.param(
        None,
        {"SCIMWATCH_GRAPH__AUTH_KIND": "certificate", "SCIMWATCH_GRAPH__TENANT_ID": "t"},
        FILE,
        id="certificate over the file's client",
    ),
    pytest.param(None, {"SCIMWATCH_GRAPH__TENANT_ID": ""}, FILE, id="env empties a file value"),
    pytest.param(None, {"SCIMWATCH_POLLING__BACKFILL_DAYS": "30"}, None, id="bounds inclusive"),
    pytest.param(None, {"SCIMWATCH_ALERTS__WEBHOOKS": "[]"}, None, id="settings not read here"),
    pytest.param(None, {}, CONFIG_TEMPLATE, id="the template"),
]


def configure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, env: dict[str, str], text: str | None
):
    path = tmp_path / "cfg" / "config.toml"
    monkeypatch.setenv("SCIMWATCH_CONFIG", str(path))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    if text is not None:
        path.parent.mkdir(parents=True)
        path.write_text(text)
        path.chmod(0o600)
    for name, value in env.items():
        monkeypatch.setenv(name, value)


@pytest.mark.parametrize(("profile", "env", "text"), AGREE)
def test_the_first_frames_settings_are_the_full_loads(tmp_path, monkeypatch, profile, env, text):
    configure(tmp_path, monkeypatch, env, text)
    quick = first_paint_settings(profile)
    settings = load_settings(profile)
    assert quick is not None
    assert quick.cache_path == settings.resolved_cache_path()
    assert dict(quick.polling_seconds) == {
        name: getattr(settings.polling, name) for name in POLLING_FIELDS
    }
    assert quick.configured == is_configured(settings)
    assert quick.profile == settings.profile


REFUSED = [
    pytest.param(None, {"SCIMWATCH_POLLING__JOBS_SECONDS": "3"}, None, id="below the minimum"),
    pytest.param(None, {"SCIMWATCH_POLLING__JOBS_SECONDS": "soon"}, None, id="not a number"),
    pytest.param(None, {"SCIMWATCH_POLLING__BACKFILL_DAYS": "31"}, None, id="above the maximum"),
    pytest.param(None, {}, "[polling]\njobs_seconds = 1\n", id="file value below the minimum"),
    pytest.param(None, {}, '[polling]\njobs_seconds = "x"\n', id="file value not a number"),
    pytest.param(None, {}, "[graph]\ntennant_id = 'x'\n", id="unknown key"),
    pytest.param(None, {}, "colour = 'blue'\n", id="unknown top-level key"),
    pytest.param(None, {}, "[graph\n", id="not TOML"),
    pytest.param("qa", {}, FILE, id="unknown profile"),
    pytest.param(None, {"SCIMWATCH_GRAPH__AUTH_KIND": "password"}, None, id="unknown auth kind"),
    pytest.param(None, {"SCIMWATCH_GRAPH__AUTH_KIND": ""}, None, id="empty auth kind"),
    pytest.param(None, {}, "cache_path = 3\n", id="cache path not text"),
    pytest.param(None, {}, "[harness]\naccount_id = 7\n", id="account id not text"),
]


@pytest.mark.parametrize(("profile", "env", "text"), REFUSED)
def test_values_the_full_load_refuses_are_left_to_it(tmp_path, monkeypatch, profile, env, text):
    configure(tmp_path, monkeypatch, env, text)
    assert first_paint_settings(profile) is None
    with pytest.raises(ConfigError):
        load_settings(profile)


def test_a_secret_in_a_shared_file_is_left_to_the_full_load(tmp_path, monkeypatch):
    configure(tmp_path, monkeypatch, {}, "[harness]\ntoken = 'pat.a.b.c'\n")
    (tmp_path / "cfg" / "config.toml").chmod(0o644)
    assert first_paint_settings(None) is None
    with pytest.raises(ConfigError, match="readable by others"):
        load_settings()


@pytest.mark.parametrize(
    ("profile", "env"),
    [
        pytest.param("staging", {"SCIMWATCH_PROFILE": "prod"}, id="env profile differs"),
        pytest.param(None, {"SCIMWATCH_POLLING": '{"jobs_seconds": 60}'}, id="section as JSON"),
        pytest.param(
            None,
            {"SCIMWATCH_CACHE_PATH": "/a.db", "scimwatch_cache_path": "/b.db"},
            id="one variable in two cases",
        ),
        pytest.param(None, {"SCIMWATCH_POLLING__JOBS_SECONDS": "0120"}, id="leading zero"),
        pytest.param(None, {"SCIMWATCH_POLLING__JOBS_SECONDS": " 120"}, id="spaces"),
    ],
)
def test_inputs_read_only_by_the_full_load_are_left_to_it(tmp_path, monkeypatch, profile, env):
    configure(
        tmp_path,
        monkeypatch,
        env,
        FILE.replace("[profiles.staging]", "[profiles.prod]\n[profiles.staging]"),
    )
    assert first_paint_settings(profile) is None


def test_no_first_frame_settings_module_imports_pydantic():
    import subprocess
    import sys

    code = (
        "import sys, dashboard.config_file; "
        "print(sorted(m for m in ('pydantic', 'pydantic_settings') if m in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=os.environ
    )
    assert done.stdout.strip() == "[]"


def test_the_fast_path_knows_every_setting_its_default_and_bounds():
    """A setting added to (or changed in) dashboard.settings without dashboard.config_file
    would make the first frame disagree with the full load at every start: caught here."""
    from annotated_types import Ge, Le
    from pydantic import BaseModel

    from dashboard import config_file, settings

    sections: dict[str, type[BaseModel]] = {
        "graph": settings.GraphSettings,
        "harness": settings.HarnessSettings,
        "polling": settings.PollingSettings,
        "alerts": settings.AlertSettings,
    }
    assert set(settings.Settings.model_fields) == config_file._TOP_LEVEL
    assert {
        name: set(model.model_fields) for name, model in sections.items()
    } == config_file._SECTIONS
    polling = settings.PollingSettings.model_fields
    assert {name: field.default for name, field in polling.items()} == config_file.POLLING_DEFAULTS
    bounds = {
        name: (
            next(m.ge for m in field.metadata if isinstance(m, Ge)),
            next((m.le for m in field.metadata if isinstance(m, Le)), None),
        )
        for name, field in polling.items()
    }
    assert bounds == config_file.POLLING_LIMITS
    assert set(config_file.AUTH_KINDS) == set(get_args(settings.AuthKind))
