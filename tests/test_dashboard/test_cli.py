"""The command line frame: help, paths, config path|show|init."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from dashboard.cli import main


def invoke(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_help_lists_every_command():
    result = invoke("--help")
    assert result.exit_code == 0
    for command in ("demo", "collect", "check", "export", "doctor", "simulate", "config", "paths"):
        assert command in result.output


def test_paths_names_config_cache_and_logs():
    result = invoke("paths")
    assert result.exit_code == 0
    lines = dict(line.split(maxsplit=1) for line in result.output.splitlines())
    home = Path(os.environ["XDG_DATA_HOME"]).parent
    assert lines["config"] == str(home / "config/scimwatch/config.toml")
    assert lines["cache"] == str(home / "data/scimwatch/cache.db")
    assert lines["logs"].startswith(str(home / "state/scimwatch"))


def test_paths_follows_the_profile(tmp_path, monkeypatch):
    config = tmp_path / "c.toml"
    config.write_text('[profiles.prod.harness]\naccount_id = "a"\n')
    monkeypatch.setenv("SCIMWATCH_CONFIG", str(config))
    result = invoke("--profile", "prod", "paths")
    assert "cache-prod.db" in result.output


def test_config_init_writes_a_private_template_once(tmp_path, monkeypatch):
    config = tmp_path / "new" / "config.toml"
    monkeypatch.setenv("SCIMWATCH_CONFIG", str(config))
    assert invoke("config", "init").exit_code == 0
    assert stat.S_IMODE(config.stat().st_mode) == 0o600
    assert "[graph]" in config.read_text()
    again = invoke("config", "init")
    assert again.exit_code == 2
    assert "already exists" in again.output
    assert invoke("config", "init", "--force").exit_code == 0


def test_config_init_refuses_to_follow_a_symlink(tmp_path, monkeypatch):
    target = tmp_path / "target"
    link = tmp_path / "config.toml"
    link.symlink_to(target)
    monkeypatch.setenv("SCIMWATCH_CONFIG", str(link))
    result = invoke("config", "init", "--force")
    assert result.exit_code == 2
    assert not target.exists()


def test_config_path_prints_the_override(tmp_path, monkeypatch):
    monkeypatch.setenv("SCIMWATCH_CONFIG", str(tmp_path / "x.toml"))
    assert invoke("config", "path").output.strip() == str(tmp_path / "x.toml")


def test_config_show_never_prints_a_secret(tmp_path, monkeypatch):
    config = tmp_path / "config.toml"
    config.write_text('[graph]\nclient_secret = "file-secret-123"\n')
    config.chmod(0o600)
    monkeypatch.setenv("SCIMWATCH_CONFIG", str(config))
    monkeypatch.setenv("SCIMWATCH_HARNESS__TOKEN", "pat.acct.tok.env-secret-456")
    result = invoke("config", "show")
    assert result.exit_code == 0
    assert "file-secret-123" not in result.output
    assert "env-secret-456" not in result.output
    assert '"token": "********"' in result.output


def test_config_errors_exit_2_with_the_reason(tmp_path, monkeypatch):
    config = tmp_path / "config.toml"
    config.write_text('[harness]\ntoken = "leaky"\n')
    config.chmod(0o644)
    monkeypatch.setenv("SCIMWATCH_CONFIG", str(config))
    result = invoke("config", "show")
    assert result.exit_code == 2
    assert "chmod 600" in result.output
    assert "leaky" not in result.output


def console_script() -> str:
    """The installed `scimwatch` script beside this interpreter (the venv need not be on PATH)."""
    beside = Path(sys.executable).parent / "scimwatch"
    executable = str(beside) if beside.exists() else shutil.which("scimwatch")
    if executable is None:
        pytest.fail("the scimwatch console script is not installed")
    return executable


def test_installed_console_script_runs():
    """`scimwatch --help` and `scimwatch paths` work from the installed package."""
    executable = console_script()
    assert subprocess.run([executable, "--help"], capture_output=True, check=True).returncode == 0
    completed = subprocess.run([executable, "paths"], capture_output=True, text=True, check=True)
    assert "cache" in completed.stdout


def test_simulate_prints_the_environment_and_stops_cleanly_on_sigterm(tmp_path):
    """`scimwatch simulate` serves, prints its SCIMWATCH_* variables, and cleans up on TERM."""
    import signal

    executable = console_script()
    with subprocess.Popen(
        [executable, "simulate", "--scenario", "healthy"], stdout=subprocess.PIPE, text=True
    ) as process:
        assert process.stdout is not None
        lines = []
        for line in process.stdout:
            lines.append(line)
            if line.startswith("# one provisioning cycle"):
                break
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=20) == 0
    exports = dict(
        line.removeprefix("export ").strip().split("=", 1)
        for line in lines
        if line.startswith("export ")
    )
    assert exports["SCIMWATCH_GRAPH__LOGIN_URL"].startswith("https://127.0.0.1:")
    assert not Path(exports["SCIMWATCH_CA_BUNDLE"]).exists()
