"""Overview and user lookup against the health model; `scimwatch` without configuration."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from textual.widgets import DataTable, Input, OptionList, Static

from dashboard.launch import NOT_CONFIGURED, LaunchError, open_cache, run_tui
from dashboard.screens.user_lookup import UserLookupScreen
from dashboard.settings import Settings
from dashboard.widgets.source_status import SourceStatusBar
from store.cache import Cache
from store.health import overview
from store.models import EntraUser, Record
from tests.test_dashboard.builders import DEFAULT_ACCESS, INTERVALS, NOW, add_records, assignment
from tests.test_dashboard.helpers import app_on, settle, tile_number

SIZE = (120, 36)


async def test_overview_numbers_match_the_health_model(writer: Cache, tmp_path: Path):
    with writer.reading() as db:
        expected = overview(db, NOW, writer.freshness(NOW, INTERVALS))
    app = app_on(writer, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        assert tile_number(app, "tile-pending") == str(expected.pending_retries)
        assert tile_number(app, "tile-escalated") == str(expected.escalated_retries)
        assert tile_number(app, "tile-groups") == str(expected.group_problems)
        assert tile_number(app, "tile-sso") == str(expected.sso_conflicts)
        assert expected.last_cycle is not None
        assert tile_number(app, "tile-cycle") == str(expected.last_cycle.failed)
        jobs = str(app.screen.query_one("#jobs", Static).render())
        assert "HEALTHY" in jobs
        assert "QUARANTINE" in jobs
        assert "next expected in 32 min" in jobs
        last_cycle = str(app.screen.query_one("#last-cycle", Static).render())
        assert "cycle-3 ended 8 min ago" in last_cycle
        freshness = app.screen.query_one("#freshness", DataTable)
        assert freshness.row_count == len(INTERVALS)


async def test_start_up_reads_the_overview_once_and_once_more_for_the_status(
    writer: Cache, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """The mount reads; the first status read announces the cache and the overview reads again.
    The app's `cache_changed_at` being initialised must not add a third read."""
    import dashboard.screens.overview as overview_screen
    from dashboard.first_read import read_overview

    reads: list[object] = []

    def counted(*args: object, **kwargs: object) -> object:
        reads.append(args)
        return read_overview(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(overview_screen, "read_overview", counted)
    app = app_on(writer, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        assert len(reads) == 2


async def test_an_overtaken_read_is_shown_and_an_older_answer_never_replaces_a_newer(
    writer: Cache, tmp_path: Path
):
    """Reads are not cancelled by newer ones (the first paint waits on the first); answers
    arriving out of order show the newest."""
    from dashboard.screens.overview import OverviewScreen

    with writer.reading() as db:
        truth = overview(db, NOW, writer.freshness(NOW, INTERVALS))
    app = app_on(writer, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        screen = app.screen
        assert isinstance(screen, OverviewScreen)
        asked = screen._asked
        screen.post_message(OverviewScreen.Read(replace(truth, pending_retries=41), asked + 2))
        screen.post_message(OverviewScreen.Read(replace(truth, pending_retries=7), asked + 1))
        await pilot.pause()
        assert tile_number(app, "tile-pending") == "41"
        screen.post_message(OverviewScreen.Read(replace(truth, pending_retries=5), asked + 3))
        await pilot.pause()
        assert tile_number(app, "tile-pending") == "5"


async def test_overview_on_an_empty_cache_says_so(cache_path: Path, tmp_path: Path):
    with Cache.open_writer(cache_path) as cache:
        app = app_on(cache, tmp_path)
        async with app.run_test(size=SIZE) as pilot:
            await settle(app, pilot)
            assert "No provisioning job" in str(app.screen.query_one("#jobs", Static).render())
            assert tile_number(app, "tile-pending") == "0"
            bar = app.screen.query_one(SourceStatusBar)
            assert bar.shown()["graph.provisioning"] == "logs no data"


async def look_up(app, pilot, who: str) -> tuple[str, str, str]:
    """Look `who` up on screen 7: the Entra side, the Harness side and the verdict."""
    await pilot.press("7", *who, "enter")
    await settle(app, pilot)
    entra, harness, verdict = (
        str(app.screen.query_one(f"#{pane}", Static).render())
        for pane in ("entra", "harness", "verdict")
    )
    return entra, harness, verdict


async def test_user_lookup_shows_both_sides_and_the_verdict(writer: Cache, tmp_path: Path):
    app = app_on(writer, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        entra, harness, verdict = await look_up(app, pilot, "carol@example.com")
        assert "nextgen: directly" in entra
        assert "h-u-carol" in harness
        assert verdict.startswith("Verdict: ")


async def test_user_lookup_of_default_access_on_both_apps_says_assigned_with_the_wrong_role(
    seeded: Path, tmp_path: Path
):
    """The demo's Yara: Default Access is an assignment to edit, shown on the Entra side."""
    yara = EntraUser(
        id="u-yara",
        user_principal_name="yara@example.com",
        mail="yara@example.com",
        display_name="Yara Haddad",
        account_enabled=True,
    )
    default_access: list[Record] = [
        assignment(f"a-yara-{app}", app, "User", "u-yara", "Yara Haddad", role=DEFAULT_ACCESS)
        for app in ("nextgen", "firstgen")
    ]
    add_records(seeded, {"graph.directory": [yara], "graph.assignments": default_access})
    with Cache.open_writer(seeded) as cache:
        app = app_on(cache, tmp_path)
        async with app.run_test(size=SIZE) as pilot:
            entra, harness, verdict = await look_up(app, pilot, "yara@example.com")
    assert "not assigned to either app" not in entra
    assert "nextgen: directly with Default Access" in entra
    assert "firstgen: directly with Default Access" in entra
    assert "Sign-in" not in harness
    assert "Default Access" not in harness
    assert verdict.startswith(
        "Verdict: Assigned to the NextGen Harness app directly but with Default Access"
    )
    assert "pick the app's User role" in verdict
    assert "Not assigned" not in verdict


def test_tui_without_configuration_says_how_to_configure(tmp_path: Path):
    settings = Settings(cache_path=tmp_path / "none.db", use_keyring=False)
    with pytest.raises(LaunchError) as raised:
        run_tui(settings)
    assert raised.value.message == NOT_CONFIGURED
    assert "scimwatch demo" in NOT_CONFIGURED


def test_cache_held_by_a_collector_opens_read_only(seeded: Path):
    with Cache.open_writer(seeded):
        cache, writer = open_cache(seeded)
        assert cache.read_only
        assert writer.startswith("pid ")
    cache, writer = open_cache(seeded)
    assert not cache.read_only
    assert writer == ""
    cache.close()


def test_exports_go_to_the_data_dir_when_the_current_one_is_read_only(tmp_path, monkeypatch):
    from dashboard.launch import export_directory

    monkeypatch.chdir(tmp_path)
    assert export_directory() == tmp_path
    monkeypatch.setattr("os.access", lambda path, mode: False)
    assert export_directory().name == "exports"


async def test_user_lookup_by_part_of_a_name_lists_the_users_to_pick_from(
    writer: Cache, tmp_path: Path
):
    """ "example" is in every user's email: the list shows them by name; enter on one looks
    that one up, down moves first (so the pick is not simply the first row)."""
    app = app_on(writer, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        _entra, _harness, verdict = await look_up(app, pilot, "example")
        matches = app.screen.query_one("#matches", OptionList)
        assert verdict.endswith("users match: pick one below.")
        assert matches.display
        assert not app.screen.query_one("#sides").display
        assert app.focused is matches
        lines = [str(matches.get_option_at_index(n).prompt) for n in range(matches.option_count)]
        assert lines[:2] == [
            "Alice Adams  alice@example.com  in Entra and Harness",
            "Bob Brown  bob@example.com  in Entra and Harness",
        ]
        await pilot.press("down")
        # The cache changed (a poll): the same list comes back and the highlight stays.
        screen = app.screen
        assert isinstance(screen, UserLookupScreen)
        screen.reload()
        await settle(app, pilot)
        assert matches.highlighted == 1
        assert app.focused is matches
        await pilot.press("enter")
        await settle(app, pilot)
        assert not matches.display
        assert app.screen.query_one("#sides").display
        entra = str(app.screen.query_one("#entra", Static).render())
        assert entra.startswith("Bob Brown\nbob@example.com\nu-bob")
        assert app.screen.query_one("#query", Input).value == "u-bob"
