"""T-U3 with the real TUI in a real terminal: hostile names cannot retitle, clear or quit it.

A cache whose object names carry an OSC title sequence, a clear-screen CSI, Textual action and
link markup, a bidi override and a 100 kB name is written through `Cache.save_batch`; the test
keeps the writer lock, so `python -m dashboard` opens it read-only. Every screen is shown through
tmux send-keys and read back with capture-pane and `#{pane_title}`. A baseline in its own pane
proves the checks have teeth: the same OSC sequence written raw does change the pane title.
"""

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

from store.cache import Cache
from tests.builders import Tenant

ROOT = Path(__file__).resolve().parents[2]
TITLE = "scimwatch-title-canary"
PWNED = "pwned"

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")

HOSTILE = (
    f"\x1b]0;{PWNED}\x07osc-title",
    "\x1b[2Jclear-screen",
    "[@click=app.quit]click-me[/]",
    "[link=https://evil.example]x[/link]",
    "admin\u202egnp.exe",
    "\x1b]2;" + PWNED + "\x1b\\st-title",
    "B" * 100_000,
)


def tmux(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["tmux", *args], capture_output=True, text=True, check=False)


@pytest.fixture
def session() -> Iterator[str]:
    name = f"scimwatch-rel-{uuid.uuid4().hex[:10]}"
    yield name
    tmux("kill-session", "-t", name)  # only the session this test started


def pane(name: str) -> str:
    return tmux("capture-pane", "-p", "-t", name).stdout


def title(name: str) -> str:
    return tmux("display", "-p", "-t", name, "#{pane_title}").stdout.strip()


def wait_for(name: str, *needles: str, timeout: float = 45.0) -> str:
    deadline = time.monotonic() + timeout
    shown = ""
    while time.monotonic() < deadline:
        shown = pane(name)
        if all(needle in shown for needle in needles):
            return shown
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {needles}; the pane shows:\n{shown}")


def build_hostile_cache(path: Path) -> None:
    with Cache.open_writer(path) as cache:
        tenant = Tenant(cache)
        tenant.job()
        for index, name in enumerate(HOSTILE):
            user = f"u{index}"
            tenant.user(user, f"{user}@example.com")
            tenant.event(
                user,
                cycle="c1",
                minutes_ago=5 + index,
                name=name,
                status="failure" if index % 2 else "success",
                error_code="HarnessError" if index % 2 else "",
                reason=name[:2000],
            )
            tenant.group(f"g{index}", name, direct=(user,))
            tenant.harness_group(f"hg{index}", name, members=(user,))
        for source in (
            "graph.jobs",
            "graph.provisioning",
            "graph.assignments",
            "graph.directory",
            "harness.scim",
            "harness.ng",
            "harness.roles",
        ):
            tenant.poll(source)


def environment(tmp_path: Path, cache_path: Path) -> list[str]:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8"}
    env.update(
        TERM="xterm-256color",
        COLUMNS="140",
        LINES="40",
        HOME=str(tmp_path / "home"),
        XDG_CONFIG_HOME=str(tmp_path / "xdg-config"),
        XDG_DATA_HOME=str(tmp_path / "xdg-data"),
        XDG_STATE_HOME=str(tmp_path / "xdg-state"),
        SCIMWATCH_CACHE_PATH=str(cache_path),
        SCIMWATCH_CONFIG=str(tmp_path / "absent-config.toml"),
        SCIMWATCH_USE_KEYRING="false",
    )
    return [arg for name, value in env.items() for arg in ("-e", f"{name}={value}")]


def start(session: str, exports: list[str], command: str) -> None:
    started = tmux(
        "new-session", "-d", "-s", session, "-x", "140", "-y", "40", *exports, "sleep 60"
    )
    assert started.returncode == 0, started.stderr
    tmux("select-pane", "-t", session, "-T", TITLE)
    assert title(session) == TITLE
    tmux("respawn-pane", "-k", "-t", session, command)


def test_baseline_a_raw_osc_sequence_does_retitle_the_pane(session: str, tmp_path: Path):
    exports = environment(tmp_path, tmp_path / "unused.db")
    start(session, exports, f"printf '\\033]0;{PWNED}\\007'; echo DONE; sleep 30")
    wait_for(session, "DONE", timeout=10)
    assert title(session) == PWNED  # so the check below would catch a leak


def test_hostile_names_neither_retitle_clear_nor_quit_the_real_tui(session: str, tmp_path: Path):
    cache_path = tmp_path / "cache.db"
    build_hostile_cache(cache_path)
    exports = environment(tmp_path, cache_path)
    app = f"{shlex.quote(sys.executable)} -m dashboard"
    command = f"cd {shlex.quote(str(ROOT))} && {app}; echo EXIT=$?; sleep 30"
    with Cache.open_writer(cache_path):  # held here, so the TUI opens the cache read-only
        start(session, exports, command)
        wait_for(session, "1 Overview", "pending retries")
        screens = {
            "2": "Ended (UTC)",
            "3": "Hint",
            "4": "Entra group",
            "5": "Problem",
            "6": "Time (UTC)",
            "1": "pending retries",
        }
        seen_literal: set[str] = set()
        for key, needle in screens.items():
            tmux("send-keys", "-t", session, key)
            shown = wait_for(session, needle, "1 Overview", "q Quit")
            for marker in ("[@click=app.quit]", "[link=https://evil.example]", "osc-title"):
                if marker in shown:
                    seen_literal.add(marker)
            lines = [line for line in shown.splitlines() if line.strip()]
            # Not cleared: the header is still on the first row and the footer on the last.
            assert "1 Overview" in lines[0], shown
            assert "q Quit" in lines[-1], shown
            assert "EXIT=" not in shown, shown  # no injected action quit it
            assert title(session) == TITLE, shown
            assert "\u202e" not in shown
        # Each key press above was acted on, so the app was alive between them.
        assert "[@click=app.quit]" in seen_literal, seen_literal
        tmux("send-keys", "-t", session, "q")
        shown = wait_for(session, "EXIT=", timeout=20)
    assert "EXIT=0" in shown, shown
    assert "Traceback" not in shown
    assert title(session) == TITLE
