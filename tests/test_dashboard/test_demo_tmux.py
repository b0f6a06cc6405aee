"""End to end: the real `scimwatch demo` in a real terminal (tmux), read back from the pane."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")


def tmux(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["tmux", *args], capture_output=True, text=True, check=False)


@pytest.fixture
def session() -> Iterator[str]:
    name = f"scimwatch-test-{uuid.uuid4().hex[:8]}"
    yield name
    tmux("kill-session", "-t", name)  # only the session this test started


def wait_for(name: str, *needles: str, timeout: float = 60.0) -> str:
    deadline = time.monotonic() + timeout
    pane = ""
    while time.monotonic() < deadline:
        pane = tmux("capture-pane", "-p", "-t", name).stdout
        if all(needle in pane for needle in needles):
            return pane
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {needles}; the pane shows:\n{pane}")


def test_demo_shows_the_overview_and_quits_on_q(session: str, tmp_path: Path):
    env = {
        name: value
        for name, value in os.environ.items()
        if name.startswith(("XDG_", "PYTHON_KEYRING")) or name in ("HOME", "PATH", "LANG")
    }
    env["TERM"] = "xterm-256color"
    # A tmux server started from here inherits pytest's COLUMNS/LINES, which Textual obeys.
    env["COLUMNS"], env["LINES"] = "140", "40"
    demo = f"{shlex.quote(sys.executable)} -m dashboard demo"
    command = f"cd {shlex.quote(str(ROOT))} && {demo}; echo EXIT=$?; sleep 30"
    exports = [arg for name, value in env.items() for arg in ("-e", f"{name}={value}")]
    started = tmux("new-session", "-d", "-s", session, "-x", "140", "-y", "40", *exports, command)
    assert started.returncode == 0, started.stderr
    pane = wait_for(session, "1 Overview", "pending retries", "NextGen app", "HEALTHY")
    assert "NextGen app" in pane
    assert "live" in pane
    tmux("send-keys", "-t", session, "6")
    wait_for(session, "Provisioning log", "Time (UTC)")
    tmux("send-keys", "-t", session, "q")
    pane = wait_for(session, "EXIT=", timeout=20)
    assert "EXIT=0" in pane, pane
    assert "Traceback" not in pane
