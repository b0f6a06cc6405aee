"""FastTable draws one-line text cells and headers exactly as Textual's DataTable does."""

from __future__ import annotations

import itertools

import pytest
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual.app import App, ComposeResult
from textual.geometry import Region
from textual.strip import Strip
from textual.widgets import DataTable
from textual.widgets.data_table import DuplicateKey

from dashboard.widgets.fast_table import FastTable
from dashboard.widgets.safe_text import safe_text

WIDTHS = (None, 1, 3, 8, 12)
"""Column widths: auto, and fixed ones narrower and wider than the cells."""

LABELS = ("Name", "when (UTC)", "名前", "a very long column label", "#")


def styled() -> Text:
    text = Text("error: SystemForHarness", style="bold")
    text.stylize("red", 0, 5)
    text.stylize("underline", 3, 12)
    return text


CELLS: tuple[Text, ...] = (
    Text(""),
    Text("a"),
    Text("plain ascii value"),
    Text("12345", justify="right"),
    Text("7", justify="right"),
    Text("centred", justify="center"),
    Text("trailing   ", justify="right"),
    Text("ellipsis for a long value", overflow="ellipsis"),
    Text("ends with space "),
    Text("styled base", style="italic green"),
    styled(),
    Text("名前グループ名前", style="cyan"),  # wide: a cut can fall inside a character
    Text("e\u0301mile 👩\u200d💻 team"),
    Text("x" * 40, justify="right", overflow="ellipsis"),
    safe_text("[@click=app.quit]\x1b]0;title\x07[/]\u202eevil"),
    Text("ok", style="reverse"),
    Text("left", justify="left"),
    Text("left and long, styled", justify="left", style="bold"),
    Text("cropped at the edge", overflow="crop"),
    Text("centred and long too", justify="center", style="red"),
    Text("名前グ", justify="right", style="underline"),
)


def cell_pixels(lines: list[list[Segment]]) -> list[list[tuple[str, Style | None]]]:
    """Each line as (character, style) pairs: what the terminal gets, whatever the split."""
    return [[(char, segment.style) for segment in line for char in segment.text] for line in lines]


class TablesApp(App[None]):
    def compose(self) -> ComposeResult:
        yield FastTable(id="fast", zebra_stripes=True, cursor_type="row")


async def test_every_cell_matches_textual_rendering(monkeypatch: pytest.MonkeyPatch) -> None:
    textual_render_cell = DataTable._render_cell
    fallbacks: list[int] = []

    def counted(table: DataTable[object], row: int, *args: object) -> object:
        fallbacks.append(row)
        return textual_render_cell(table, row, *args)  # type: ignore[arg-type]

    app = TablesApp()
    async with app.run_test(size=(150, 30)) as pilot:
        table = app.query_one(FastTable)
        for index, width in enumerate(WIDTHS):
            table.add_column(LABELS[index], width=width, key=f"c{index}")
        for row, cell in enumerate(CELLS):
            table.add_row(*([cell] * len(WIDTHS)), key=f"r{row}")
        await pilot.pause()
        checked = 0
        base_styles = (Style(), Style(color="white", bgcolor="blue"), Style(bold=True))
        for row, column, base, cursor, hover in itertools.product(
            range(-1, len(CELLS)), range(len(WIDTHS)), base_styles, (False, True), (False, True)
        ):
            width = table.ordered_columns[column].get_render_width(table)
            table._cell_render_cache.clear()
            with monkeypatch.context() as patch:
                patch.setattr(DataTable, "_render_cell", counted)
                fast = table._render_cell(row, column, base, width, cursor, hover)
            table._cell_render_cache.clear()
            textual = textual_render_cell(table, row, column, base, width, cursor, hover)
            assert cell_pixels(fast) == cell_pixels(textual), (row, column, width, cursor, hover)
            assert sum(segment.cell_length for segment in fast[0]) == width
            checked += 1
        assert checked == (len(CELLS) + 1) * len(WIDTHS) * 12
        assert fallbacks == [], "one-line text cells and headers take the fast path"


async def test_cells_rich_cannot_skip_fall_back() -> None:
    """Multi-line, tabbed or overflowing text and non-Text renderables are drawn by Textual."""
    app = TablesApp()
    async with app.run_test(size=(80, 10)) as pilot:
        table = app.query_one(FastTable)
        table.add_column("a", key="a", width=10)
        table.add_row(Text("tab\there"), key="tab")
        table.add_row(Text("two\nlines"), key="lines")
        table.add_row(Text("overflowing the cell", overflow="ignore"), key="ignore")
        await pilot.pause()
        for row in range(3):
            table._cell_render_cache.clear()
            fast = table._render_cell(row, 0, Style(), 12)
            table._cell_render_cache.clear()
            textual = DataTable._render_cell(table, row, 0, Style(), 12)
            assert cell_pixels(fast) == cell_pixels(textual)


async def test_a_click_on_a_fast_cell_selects_its_row() -> None:
    """The row/column meta that mouse clicks read is on the fast path's segments."""
    app = TablesApp()
    async with app.run_test(size=(80, 10)) as pilot:
        table = app.query_one(FastTable)
        table.add_column("name", key="name", width=20)
        for row in range(5):
            table.add_row(Text(f"user {row}"), key=f"r{row}")
        await pilot.pause()
        await pilot.click(FastTable, offset=(3, 4))  # header is line 0: line 4 is row 3
        await pilot.pause()
        assert table.cursor_row == 3


class BothTablesApp(App[None]):
    def compose(self) -> ComposeResult:
        yield FastTable(id="fast")
        yield DataTable(id="textual")


async def test_column_widths_match_textual_measuring() -> None:
    app = BothTablesApp()
    async with app.run_test(size=(150, 30)) as pilot:
        tables = (app.query_one("#fast", DataTable), app.query_one("#textual", DataTable))
        for table in tables:
            for index, width in enumerate(WIDTHS):
                table.add_column(LABELS[index], width=width, key=f"c{index}")
            for row, cell in enumerate((*CELLS, Text("tab\tstop"), Text("two\nlines"))):
                table.add_row(*([cell] * len(WIDTHS)), key=f"r{row}")
        await pilot.pause()
        fast, textual = tables
        # A fixed-width column is drawn at its width: only the automatic ones are measured.
        assert [c.content_width for c in fast.ordered_columns if c.auto_width] == [
            c.content_width for c in textual.ordered_columns if c.auto_width
        ]
        assert [c.get_render_width(fast) for c in fast.ordered_columns] == [
            c.get_render_width(textual) for c in textual.ordered_columns
        ]
        assert fast.virtual_size == textual.virtual_size
        assert fast.ordered_columns[0].content_width == 40  # the widest cell, "x" * 40


class SameSizeTablesApp(App[None]):
    CSS = "DataTable { height: 9; width: 70; }"

    def compose(self) -> ComposeResult:
        yield FastTable(id="fast", zebra_stripes=True, cursor_type="row")
        yield DataTable(id="textual", zebra_stripes=True, cursor_type="row")


def strip_pixels(strips: list[Strip]) -> list[list[tuple[str, Style | None]]]:
    return cell_pixels([list(strip) for strip in strips])


@pytest.mark.parametrize("fixed_rows", [0, 1])
async def test_whole_lines_match_textual_rendering(fixed_rows: int) -> None:
    """Header, zebra stripes, fixed rows and the cursor row: the same lines as Textual draws
    (FastTable looks the widget and row styles up once per draw)."""
    app = SameSizeTablesApp()
    async with app.run_test(size=(80, 20)) as pilot:
        tables = (app.query_one("#fast", DataTable), app.query_one("#textual", DataTable))
        for table in tables:
            table.fixed_rows = fixed_rows
            for index, width in enumerate(WIDTHS):
                table.add_column(LABELS[index], width=width, key=f"c{index}")
            for row, cell in enumerate(CELLS):
                table.add_row(*([cell] * len(WIDTHS)), key=f"r{row}")
            table.move_cursor(row=3)
        await pilot.pause()
        drawn = []
        for table in tables:
            table.focus()
            await pilot.pause()
            drawn.append(strip_pixels(table.render_lines(Region(0, 0, 70, 9))))
        fast, textual = drawn
        assert fast == textual
        assert len({tuple(line) for line in fast}) == 9, "every line differs: rows were drawn"


class TwoTablesApp(App[None]):
    def __init__(self) -> None:
        super().__init__()
        self.highlighted: list[tuple[str, int, object]] = []

    def compose(self) -> ComposeResult:
        yield FastTable(id="bulk", cursor_type="row")
        yield FastTable(id="each", cursor_type="row")

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self.highlighted.append((str(event.data_table.id), event.cursor_row, event.row_key.value))


@pytest.mark.parametrize("start_empty", [True, False])
async def test_rows_added_at_once_are_the_rows_added_one_by_one(start_empty: bool) -> None:
    """`add_keyed_rows` leaves the table as `add_row` row after row does: cells, order, keys,
    heights, cursor, measured widths and the highlight of the first row."""
    app = TwoTablesApp()
    async with app.run_test(size=(100, 30)) as pilot:
        bulk, each = app.query_one("#bulk", FastTable), app.query_one("#each", FastTable)
        rows = [(f"r{index}", (cell, Text(str(index)))) for index, cell in enumerate(CELLS)]
        for table in (bulk, each):
            table.add_column("cell", key="cell")
            table.add_column("n", key="n", width=4)
            if not start_empty:
                table.add_row(Text("first"), key="first")
        await pilot.pause()
        app.highlighted.clear()
        bulk.add_keyed_rows(rows)
        for key, cells in rows:
            each.add_row(*cells, key=key)
        await pilot.pause()
        assert [row.key for row in bulk.ordered_rows] == [row.key for row in each.ordered_rows]
        assert bulk.rows == each.rows
        assert bulk._data == each._data
        assert bulk.cursor_coordinate == each.cursor_coordinate
        assert [c.content_width for c in bulk.ordered_columns] == [
            c.content_width for c in each.ordered_columns
        ]
        assert bulk.virtual_size == each.virtual_size
        expected = [("bulk", 0, "r0"), ("each", 0, "r0")] if start_empty else []
        assert app.highlighted == expected
        with pytest.raises(DuplicateKey):
            bulk.add_keyed_rows([("r1", (Text("again"),))])
