"""The table screens: rows match the health model; drill-in, filter, sort, copy, export, paging."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from textual.widgets import Static
from textual.widgets.data_table import ColumnKey

from dashboard.screens.event_detail import EventDetailModal
from dashboard.screens.events import EventsScreen
from dashboard.screens.user_lookup import UserLookupScreen
from dashboard.widgets.paged_table import PagedTable
from store.cache import Cache
from store.directory import group_mappings, sso_conflicts
from store.health import pending_retries, recent_cycles
from tests.test_dashboard.builders import DEFAULT_ACCESS, NOW, add_records, assignment
from tests.test_dashboard.helpers import app_on, settle

SIZE = (120, 36)


def table(app) -> PagedTable:
    return app.screen.query_one(PagedTable)


def keys(app) -> list[str]:
    return [str(row.key.value) for row in table(app).ordered_rows]


def detail(app) -> str:
    return str(app.screen.query_one("#detail", Static).render())


def exists(path: Path) -> bool:
    return path.exists()


def read_export(directory: Path) -> tuple[Path, int, list[list[str]]]:
    [path] = directory.glob("scimwatch-events-*.csv")
    with path.open(encoding="utf-8", newline="") as handle:
        return path, path.stat().st_mode & 0o777, list(csv.reader(handle))


async def open_screen(app, pilot, key: str) -> None:
    await pilot.press(key)
    await settle(app, pilot)


async def test_events_show_the_log_newest_first(writer: Cache, tmp_path: Path):
    app = app_on(writer, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await open_screen(app, pilot, "6")
        assert keys(app) == [f"evt-{n:04d}" for n in range(10, 0, -1)]
        assert "HarnessConflict" in detail(app)
        assert "Steps" in detail(app)
        assert "Modified properties" in detail(app)


async def test_events_filter_status_and_text(writer: Cache, tmp_path: Path):
    app = app_on(writer, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await open_screen(app, pilot, "6")
        await pilot.press("f")  # failures only
        await settle(app, pilot)
        assert keys(app) == ["evt-0010", "evt-0008", "evt-0005"]
        await pilot.press("f", "f", "f", "f")  # round to every status
        await settle(app, pilot)
        await pilot.press("slash", *"bob")
        await settle(app, pilot)
        assert keys(app) == ["evt-0008", "evt-0005", "evt-0002"]
        assert "filter 'bob'" in str(app.screen.query_one("#page-line", Static).render())
        await pilot.press("escape")  # clears the filter
        await settle(app, pilot)
        assert len(keys(app)) == 10


async def test_events_detail_follows_the_row_and_hides_with_no_rows(writer: Cache, tmp_path: Path):
    """The detail pane shows the selected row, and again after no row (it skips updates that
    would show the same text)."""
    app = app_on(writer, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await open_screen(app, pilot, "6")
        pane = app.screen.query_one("#detail-pane")
        first = detail(app)
        assert "evt-0010" in first
        await pilot.press("down")
        await settle(app, pilot)
        assert "evt-0009" in detail(app)
        await pilot.press("up")
        await settle(app, pilot)
        assert detail(app) == first
        table(app).reload()  # the same rows again: the same detail
        await settle(app, pilot)
        assert detail(app) == first
        await pilot.press("slash", *"no-such-identity")
        await settle(app, pilot)
        assert keys(app) == []
        assert not pane.display
        await pilot.press("escape")
        await settle(app, pilot)
        assert pane.display
        assert detail(app) == first
        assert "page 1 · 10 rows" in str(app.screen.query_one("#page-line", Static).render())


async def test_events_page_with_keyset(writer: Cache, tmp_path: Path):
    app = app_on(writer, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await open_screen(app, pilot, "6")
        events = app.screen
        assert isinstance(events, EventsScreen)
        table(app).page_size = 4
        table(app).show_query(writer, events.fetch)
        await settle(app, pilot)
        assert keys(app) == ["evt-0010", "evt-0009", "evt-0008", "evt-0007"]
        await pilot.press("right_square_bracket")
        await settle(app, pilot)
        assert keys(app) == ["evt-0006", "evt-0005", "evt-0004", "evt-0003"]
        await pilot.press("right_square_bracket")
        await settle(app, pilot)
        assert keys(app) == ["evt-0002", "evt-0001"]
        await pilot.press("left_square_bracket", "left_square_bracket")
        await settle(app, pilot)
        assert keys(app) == ["evt-0010", "evt-0009", "evt-0008", "evt-0007"]


async def test_refresh_keeps_the_cursor_on_its_row(writer: Cache, tmp_path: Path):
    app = app_on(writer, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await open_screen(app, pilot, "6")
        await pilot.press("down", "down", "down")
        assert table(app).selected_key == "evt-0007"
        from store.models import Batch
        from tests.test_dashboard.builders import _event

        newer = _event(11, 1, "cycle-4", "u-dave", "Dave")
        writer.save_batch(Batch(source="graph.provisioning", records=[newer]), NOW, NOW)
        await pilot.press("r")
        await settle(app, pilot)
        assert keys(app)[0] == "evt-0011"
        assert table(app).selected_key == "evt-0007"


async def test_enter_opens_the_event_and_esc_closes_it(writer: Cache, tmp_path: Path):
    app = app_on(writer, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await open_screen(app, pilot, "6")
        await pilot.press("enter")
        await settle(app, pilot)
        assert isinstance(app.screen, EventDetailModal)
        text = str(app.screen.query_one("#event-detail", Static).render())
        assert "evt-0010" in text
        assert "409 Conflict" in text
        await pilot.press("y")
        assert app.clipboard == "evt-0010"
        await pilot.press("escape")
        assert isinstance(app.screen, EventsScreen)


async def test_copy_and_sort(writer: Cache, tmp_path: Path):
    app = app_on(writer, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await open_screen(app, pilot, "6")
        await pilot.press("down", "y")
        assert app.clipboard == "evt-0009"
        await pilot.press("s")  # by time, oldest first
        assert keys(app)[0] == "evt-0001"
        await pilot.press("s")  # by status: failures first (stable: oldest first within)
        assert keys(app)[:3] == ["evt-0005", "evt-0008", "evt-0010"]


async def test_export_writes_the_filtered_rows(writer: Cache, tmp_path: Path):
    app = app_on(writer, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await open_screen(app, pilot, "6")
        await pilot.press("f")  # failures
        await settle(app, pilot)
        await pilot.press("ctrl+s")
        await settle(app, pilot)
    path, mode, rows = read_export(tmp_path)
    assert path.name == "scimwatch-events-20261128-100000.csv"
    assert oct(mode) == "0o600"
    assert rows[0] == [
        "Time (UTC)",
        "Status",
        "Action",
        "Type",
        "App",
        "Identity",
        "Error code",
        "Cycle",
    ]
    assert [row[5] for row in rows[1:]] == ["Platform Team", "Bob Brown", "Bob Brown"]
    assert {row[1] for row in rows[1:]} == {"failure"}
    assert {row[4] for row in rows[1:]} == {"NextGen"}


async def test_export_refuses_a_symlink(writer: Cache, tmp_path: Path):
    target = tmp_path / "elsewhere.csv"
    (tmp_path / "scimwatch-events-20261128-100000.csv").symlink_to(target)
    app = app_on(writer, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await open_screen(app, pilot, "6")
        await pilot.press("ctrl+s")
        await settle(app, pilot)
        assert any("symbolic link" in str(n.message) for n in app._notifications)
    assert not exists(target)


async def test_retries_match_the_health_model(writer: Cache, tmp_path: Path):
    with writer.reading() as db:
        expected = pending_retries(db, NOW)
    app = app_on(writer, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await open_screen(app, pilot, "3")
        assert keys(app) == [f"{r.job_id}:{r.source_id}" for r in expected]
        assert "ESCALATED" in str(table(app).get_row_at(0)[3])
        assert expected[0].hint.title in detail(app)
        await pilot.press("y")
        assert app.clipboard == "u-bob"
        await pilot.press("enter")  # the object's events
        await settle(app, pilot)
        assert isinstance(app.screen, EventsScreen)
        assert keys(app) == ["evt-0008", "evt-0005", "evt-0002"]
        await pilot.press("escape", "escape")  # the filter, then back
        assert type(app.screen).__name__ == "RetriesScreen"


async def test_cycles_drill_into_a_cycle(writer: Cache, tmp_path: Path):
    with writer.reading() as db:
        expected = recent_cycles(db)
    app = app_on(writer, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await open_screen(app, pilot, "2")
        assert keys(app) == [f"{c.job_id}:{c.cycle_id}" for c in expected]
        await pilot.press("enter")
        await settle(app, pilot)
        assert isinstance(app.screen, EventsScreen)
        assert app.screen.cycle == ("Harness.nextgen", "cycle-3")
        assert keys(app)[:2] == ["evt-0010", "evt-0008"]  # failures first
        assert len(keys(app)) == 4
        await pilot.press("escape")
        assert type(app.screen).__name__ == "CyclesScreen"


async def test_cycles_fit_140_columns_and_name_their_app(writer: Cache, tmp_path: Path):
    """The app, not a 60-character job id; the cycle id's first group shown, all of it kept."""
    with writer.reading() as db:
        expected = recent_cycles(db)
    app = app_on(writer, tmp_path)
    async with app.run_test(size=(140, 40)) as pilot:
        await open_screen(app, pilot, "2")
        assert table(app).max_scroll_x == 0  # every column in view
        rows = [
            [str(cell) for cell in table(app).get_row(row.key)] for row in table(app).ordered_rows
        ]
        assert [row[-2:] for row in rows] == [
            [{"Harness.nextgen": "NextGen", "Harness.firstgen": "FirstGen"}[c.job_id], c.cycle_id]
            for c in expected
        ]
        await pilot.press("slash", *"firstgen")  # the fixture's cycles are all NextGen's
        await settle(app, pilot)
        assert keys(app) == []
        await pilot.press(*["backspace"] * 8, *"nextgen")
        await settle(app, pilot)
        assert len(keys(app)) == len(expected)


@pytest.mark.parametrize("key", ["2", "3", "4", "5", "6"])
async def test_every_table_fits_140_columns(writer: Cache, tmp_path: Path, key: str):
    """An admin's usual terminal shows every column: none hides past the right edge."""
    app = app_on(writer, tmp_path)
    async with app.run_test(size=(140, 40)) as pilot:
        await open_screen(app, pilot, key)
        assert keys(app)
        assert table(app).max_scroll_x == 0


@pytest.mark.parametrize(
    ("key", "fill", "least", "narrow_terminal"), [("3", "hint", 22, 120), ("4", "also", 20, 140)]
)
async def test_a_fill_column_takes_the_width_the_others_leave(
    writer: Cache, tmp_path: Path, key: str, fill: str, least: int, narrow_terminal: int
):
    """Retries' hint and Groups' Also show more of themselves in a wide terminal, and give the
    width back in a narrower one, without the table scrolling sideways in either."""

    def left_over(shown: PagedTable) -> int:
        others = sum(
            column.get_render_width(shown)
            for column_key, column in shown.columns.items()
            if column_key != ColumnKey(fill)
        )
        room = shown.content_size.width - shown.styles.scrollbar_size_vertical
        return room - others - 2 * shown.cell_padding

    app = app_on(writer, tmp_path)
    async with app.run_test(size=(180, 40)) as pilot:
        await open_screen(app, pilot, key)
        shown = table(app)
        wide = shown.columns[ColumnKey(fill)].width
        assert wide == left_over(shown) > least + 20
        assert shown.max_scroll_x == 0
        await pilot.resize_terminal(narrow_terminal, 40)
        await settle(app, pilot)
        narrow = shown.columns[ColumnKey(fill)].width
        assert narrow == max(least, left_over(shown)) < wide - 20
        assert shown.max_scroll_x == 0


async def test_groups_show_both_member_lists(writer: Cache, tmp_path: Path):
    with writer.reading() as db:
        expected = group_mappings(db)
    app = app_on(writer, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await open_screen(app, pilot, "4")
        assert len(keys(app)) == len(expected)
        ops_row = next(i for i, key in enumerate(keys(app)) if key == "g-ops")
        table(app).move_cursor(row=ops_row)
        await pilot.pause()
        text = detail(app)
        assert "Entra direct members (2): alice@example.com, carol@example.com" in text
        assert "Harness members (1): alice@example.com" in text
        assert "Missing in Harness (1): carol@example.com" in text


async def test_sso_conflicts_lead_to_user_lookup(writer: Cache, tmp_path: Path):
    with writer.reading() as db:
        expected = sso_conflicts(db)
    app = app_on(writer, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await open_screen(app, pilot, "5")
        assert len(keys(app)) == len(expected)
        first = expected[0]
        assert first.what_to_do[:40] in detail(app)
        await pilot.press("enter")
        await settle(app, pilot)
        assert isinstance(app.screen, UserLookupScreen)
        verdict = str(app.screen.query_one("#verdict", Static).render())
        assert verdict.startswith("Verdict: ")


async def test_sso_conflicts_of_one_user_on_both_apps_differ_on_screen(
    seeded: Path, tmp_path: Path
):
    """Default Access on both apps is two rows, told apart by the app at 140 columns."""
    firstgen_default = assignment(
        "a7", "firstgen", "User", "u-erin", "Erin Nested", role=DEFAULT_ACCESS
    )
    add_records(seeded, {"graph.assignments": [firstgen_default]})
    with Cache.open_writer(seeded) as cache:
        app = app_on(cache, tmp_path)
        async with app.run_test(size=(140, 40)) as pilot:
            await open_screen(app, pilot, "5")
            rows = [
                tuple(str(cell) for cell in table(app).get_row(row.key))
                for row in table(app).ordered_rows
            ]
            assert len(set(rows)) == len(rows)
            assert [row[:2] for row in rows if row[4] == "u-erin"] == [
                ("Default Access", "NextGen"),
                ("Default Access", "FirstGen"),
            ]
            assert table(app).max_scroll_x == 0  # every column in view
            await pilot.press("slash", *"firstgen")
            await settle(app, pilot)
            shown = keys(app)
            assert "default_access:firstgen:u-erin" in shown
            assert "default_access:nextgen:u-erin" not in shown
            assert {str(table(app).get_row(key)[1]) for key in shown} == {"FirstGen"}


async def test_user_lookup_error_codes_are_whole_lines_at_140_columns(
    writer: Cache, tmp_path: Path
):
    """A failed event's error code (and the pending failure's) is a line of its own under
    the event, not the tail of the event's line folded into the next one."""
    app = app_on(writer, tmp_path)
    async with app.run_test(size=(140, 40)) as pilot:
        await pilot.press("7", *"bob@example.com", "enter")
        await settle(app, pilot)
        entra = app.screen.query_one("#entra", Static)
        lines = [
            "".join(segment.text for segment in strip).rstrip()
            for strip in entra.render_lines(entra.content_region.reset_offset)
        ]
        code = "SystemForCrossDomainIdentityManagementServiceIncompatible"
        failed = [index for index, line in enumerate(lines) if line.endswith("update  failure")]
        assert len(failed) == 2
        for index in failed:
            assert lines[index + 1] == f"    {code}"
        pending = lines.index("Pending failure")
        assert lines[pending + 1] == f"  {code}"
        assert lines[pending + 2].startswith("  The SCIM endpoint is not fully compatible")
