"""Retries and Groups page an answer read whole: `]`/`[`, filter before paging, export all."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from textual.widgets import Static

from dashboard.app import ScimwatchApp
from dashboard.screens.base import TableScreen
from dashboard.screens.groups import GroupsScreen
from dashboard.screens.retries import RetriesScreen
from dashboard.widgets.paged_table import PagedTable
from store.cache import Cache
from store.directory import group_mappings
from store.health import pending_retries
from tests.test_dashboard.builders import (
    NOW,
    add_records,
    assigned_groups,
    build_cache,
    failing_users,
)
from tests.test_dashboard.helpers import app_on, settle

SIZE = (120, 36)
PAGE = 4


def table(app: ScimwatchApp) -> PagedTable:
    return app.screen.query_one(PagedTable)


def keys(app: ScimwatchApp) -> list[str]:
    return [str(row.key.value) for row in table(app).ordered_rows]


def page_line(app: ScimwatchApp) -> str:
    return str(app.screen.query_one("#page-line", Static).render())


def notes(app: ScimwatchApp) -> list[str]:
    return [str(notification.message) for notification in app._notifications]


def read_export(directory: Path, name: str) -> list[list[str]]:
    [path] = directory.glob(f"scimwatch-{name}-*.csv")
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.reader(handle))


def retry_keys(cache_path: Path) -> list[str]:
    """Every pending retry's row key, in the health model's order."""
    with Cache.open_reader(cache_path).reading() as db:
        return [f"{r.job_id}:{r.source_id}" for r in pending_retries(db, NOW, limit=-1)]


def mapping_keys(cache_path: Path) -> list[str]:
    """Every mapping's row key, problems first, as the Groups screen orders them."""
    with Cache.open_reader(cache_path).reading() as db:
        mappings = sorted(group_mappings(db), key=lambda mapping: mapping.state == "ok")
    return [m.entra_group_id or f"harness:{m.harness_identifier}" for m in mappings]


async def open_paged(app: ScimwatchApp, pilot, key: str, page_size: int = PAGE) -> TableScreen:
    """Open a table screen and re-read it with a small page."""
    await pilot.press(key)
    await settle(app, pilot)
    screen = app.screen
    assert isinstance(screen, TableScreen)
    table(app).page_size = page_size
    table(app).show_query(screen.cache, screen.fetch)
    await settle(app, pilot)
    return screen


async def press(app: ScimwatchApp, pilot, *pressed: str) -> None:
    await pilot.press(*pressed)
    await settle(app, pilot)


@pytest.fixture
def six_more_failures(cache_path: Path) -> Path:
    """The small tenant (bob escalated, Platform Team) plus six failing users: 8 retries."""
    build_cache(cache_path)
    add_records(cache_path, {"graph.provisioning": list(failing_users(6))})
    return cache_path


async def test_retries_page_forward_and_back(six_more_failures: Path, tmp_path: Path):
    expected = retry_keys(six_more_failures)
    assert len(expected) == 8
    with Cache.open_writer(six_more_failures) as cache:
        app = app_on(cache, tmp_path)
        async with app.run_test(size=SIZE) as pilot:
            screen = await open_paged(app, pilot, "3")
            assert isinstance(screen, RetriesScreen)
            assert keys(app) == expected[:4]
            assert page_line(app) == "page 1 · 4 rows · ] next"
            await press(app, pilot, "right_square_bracket")
            assert keys(app) == expected[4:]
            # Exactly two pages: the second says where back is, and not that more follow.
            assert page_line(app) == "page 2 · 4 rows · [ previous"
            await press(app, pilot, "right_square_bracket")
            assert "This is the last page" in notes(app)
            assert keys(app) == expected[4:]
            await press(app, pilot, "left_square_bracket")
            assert keys(app) == expected[:4]
            assert page_line(app) == "page 1 · 4 rows · ] next"
            await press(app, pilot, "left_square_bracket")
            assert "This is the first page" in notes(app)


async def test_retries_last_page_holds_the_remainder(cache_path: Path, tmp_path: Path):
    build_cache(cache_path)
    add_records(cache_path, {"graph.provisioning": list(failing_users(7))})
    expected = retry_keys(cache_path)
    assert len(expected) == 9
    with Cache.open_writer(cache_path) as cache:
        app = app_on(cache, tmp_path)
        async with app.run_test(size=SIZE) as pilot:
            await open_paged(app, pilot, "3")
            await press(app, pilot, "right_square_bracket")
            assert keys(app) == expected[4:8]
            assert page_line(app) == "page 2 · 4 rows · ] next · [ previous"
            await press(app, pilot, "right_square_bracket")
            assert keys(app) == expected[8:]
            assert page_line(app) == "page 3 · 1 rows · [ previous"


async def test_retries_filter_applies_before_paging(six_more_failures: Path, tmp_path: Path):
    expected = retry_keys(six_more_failures)
    # The rows the filter matches are all on the second unfiltered page.
    wanted = [key for key in expected if key.endswith(("u-fail-0004", "u-fail-0005"))]
    assert len(wanted) == 2
    assert set(wanted) <= set(expected[4:])
    with Cache.open_writer(six_more_failures) as cache:
        app = app_on(cache, tmp_path)
        async with app.run_test(size=SIZE) as pilot:
            await open_paged(app, pilot, "3")
            assert not set(wanted) & set(keys(app))
            await press(app, pilot, "slash", *"user 000", "4")
            assert keys(app) == [wanted[0]]
            await press(app, pilot, "backspace", "5")
            assert keys(app) == [wanted[1]]
            await press(app, pilot, "escape")  # clears the filter: back to the first page
            assert keys(app) == expected[:4]
            await press(app, pilot, "slash", *"platform team", "enter")
            assert [key.split(":")[1] for key in keys(app)] == ["g-platform"]
            assert page_line(app) == "filter 'platform team' · page 1 · 1 rows"


async def test_retries_filter_pages_its_matches(cache_path: Path, tmp_path: Path):
    build_cache(cache_path)
    add_records(cache_path, {"graph.provisioning": list(failing_users(10))})
    matching = [key for key in retry_keys(cache_path) if "u-fail-" in key]
    assert len(matching) == 10
    with Cache.open_writer(cache_path) as cache:
        app = app_on(cache, tmp_path)
        async with app.run_test(size=SIZE) as pilot:
            await open_paged(app, pilot, "3")
            await press(app, pilot, "slash", *"failing user", "enter")
            assert keys(app) == matching[:4]
            assert page_line(app) == "filter 'failing user' · page 1 · 4 rows · ] next"
            await press(app, pilot, "right_square_bracket", "right_square_bracket")
            assert keys(app) == matching[8:]
            assert page_line(app) == "filter 'failing user' · page 3 · 2 rows · [ previous"


async def test_retries_export_writes_every_page(six_more_failures: Path, tmp_path: Path):
    with Cache.open_reader(six_more_failures).reading() as db:
        names = [retry.source_name for retry in pending_retries(db, NOW, limit=-1)]
    with Cache.open_writer(six_more_failures) as cache:
        app = app_on(cache, tmp_path)
        async with app.run_test(size=SIZE) as pilot:
            await open_paged(app, pilot, "3")
            await press(app, pilot, "right_square_bracket")  # from the second page
            await press(app, pilot, "ctrl+s")
            assert "Exported 8 rows to" in " ".join(notes(app))
    rows = read_export(tmp_path, "retries")
    assert rows[0][0] == "Identity"
    assert [row[0] for row in rows[1:]] == names


async def test_retries_export_writes_every_filtered_row(cache_path: Path, tmp_path: Path):
    build_cache(cache_path)
    add_records(cache_path, {"graph.provisioning": list(failing_users(10))})
    with Cache.open_writer(cache_path) as cache:
        app = app_on(cache, tmp_path)
        async with app.run_test(size=SIZE) as pilot:
            await open_paged(app, pilot, "3")
            await press(app, pilot, "slash", *"failing user", "enter", "ctrl+s")
    rows = read_export(tmp_path, "retries")
    assert [row[0] for row in rows[1:]] == [f"Failing User {index:04d}" for index in range(10)]


async def test_retries_with_tied_times_page_every_row_once(cache_path: Path, tmp_path: Path):
    """Failures at the same instant tie in the order; pages must still not repeat or skip."""
    build_cache(cache_path)
    add_records(cache_path, {"graph.provisioning": list(failing_users(10, same_time=True))})
    expected = retry_keys(cache_path)
    with Cache.open_writer(cache_path) as cache:
        app = app_on(cache, tmp_path)
        async with app.run_test(size=SIZE) as pilot:
            await open_paged(app, pilot, "3")
            seen = keys(app)
            for _ in range(len(expected)):  # bounded: a broken `]` could promise more forever
                if "] next" not in page_line(app):
                    break
                await press(app, pilot, "right_square_bracket")
                seen += keys(app)
    assert len(seen) == len(expected) == 12
    assert sorted(seen) == sorted(expected)


async def test_retries_beyond_a_thousand_are_shown_and_exported(cache_path: Path, tmp_path: Path):
    """The real page reaches past the 1,000 rows the screen used to stop at."""
    build_cache(cache_path)
    add_records(cache_path, {"graph.provisioning": list(failing_users(1010))})
    expected = retry_keys(cache_path)
    assert len(expected) == 1012
    page = TableScreen.PAGE_SIZE
    last = len(expected) // page  # pages before the last
    with Cache.open_writer(cache_path) as cache:
        app = app_on(cache, tmp_path)
        async with app.run_test(size=SIZE) as pilot:
            await press(app, pilot, "3")
            assert table(app).page_size == page
            assert keys(app) == expected[:page]
            for _ in range(last):
                await press(app, pilot, "right_square_bracket")
            assert keys(app) == expected[last * page :]
            assert page_line(app) == f"page {last + 1} · {len(expected) % page} rows · [ previous"
            await press(app, pilot, "ctrl+s")
    rows = read_export(tmp_path, "retries")
    assert len(rows) == 1 + 1012
    assert rows[-2][0] == "Failing User 1009"


@pytest.fixture
def many_groups(cache_path: Path) -> Path:
    """The small tenant's mappings plus nine more assigned groups."""
    build_cache(cache_path)
    assignments, groups = assigned_groups(9)
    add_records(cache_path, {"graph.directory": groups, "graph.assignments": assignments})
    return cache_path


async def test_groups_page_forward_and_back(many_groups: Path, tmp_path: Path):
    expected = mapping_keys(many_groups)
    assert len(expected) == 3 * PAGE  # the tenant's three groups and nine more
    assert sum(key.startswith("g-extra-") for key in expected) == 9
    with Cache.open_writer(many_groups) as cache:
        app = app_on(cache, tmp_path)
        async with app.run_test(size=SIZE) as pilot:
            screen = await open_paged(app, pilot, "4")
            assert isinstance(screen, GroupsScreen)
            assert keys(app) == expected[:4]
            assert page_line(app) == "page 1 · 4 rows · ] next"
            await press(app, pilot, "right_square_bracket")
            assert keys(app) == expected[4:8]
            assert page_line(app) == "page 2 · 4 rows · ] next · [ previous"
            await press(app, pilot, "right_square_bracket")
            assert keys(app) == expected[8:]
            assert page_line(app) == "page 3 · 4 rows · [ previous"
            await press(app, pilot, "right_square_bracket")
            assert "This is the last page" in notes(app)
            await press(app, pilot, "left_square_bracket")
            assert keys(app) == expected[4:8]


async def test_groups_filter_finds_rows_of_later_pages(many_groups: Path, tmp_path: Path):
    expected = mapping_keys(many_groups)
    assert expected.index("g-extra-0008") >= 2 * PAGE  # on the third unfiltered page
    with Cache.open_writer(many_groups) as cache:
        app = app_on(cache, tmp_path)
        async with app.run_test(size=SIZE) as pilot:
            await open_paged(app, pilot, "4")
            assert "g-extra-0008" not in keys(app)
            await press(app, pilot, "slash", *"extra team 0008", "enter")
            assert keys(app) == ["g-extra-0008"]
            assert page_line(app) == "filter 'extra team 0008' · page 1 · 1 rows"


async def test_groups_export_writes_every_page(many_groups: Path, tmp_path: Path):
    expected = mapping_keys(many_groups)
    with Cache.open_writer(many_groups) as cache:
        app = app_on(cache, tmp_path)
        async with app.run_test(size=SIZE) as pilot:
            await open_paged(app, pilot, "4")
            await press(app, pilot, "ctrl+s")
            assert f"Exported {len(expected)} rows to" in " ".join(notes(app))
    rows = read_export(tmp_path, "groups")
    assert rows[0][:2] == ["State", "Entra group"]
    extra = [row[1] for row in rows[1:] if row[1].startswith("Extra Team")]
    assert extra == [f"Extra Team {index:04d}" for index in range(9)]
    assert len(rows) == 1 + len(expected)
