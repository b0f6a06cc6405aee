"""FastTable: Textual's DataTable, drawing one-line text cells without Rich's layout pipeline.

Textual's DataTable draws every cell through Rich's general renderer (`Styled(Padding(cell))`
rendered by `Console.render_lines`: wrapping, measuring and cropping machinery for any
renderable), ~0.3 ms a cell here. A screen shows 300-500 cells, and the cell cache is keyed by
the table's update count and focus state, so every switch back to a screen draws them all
again: this was most of a screen switch on a large cache (bench/README.md, figure 6).

Our cells are one line of Rich `Text` in rows of height 1, so `FastTable` draws them directly:
the text cropped or padded to the column (`Text.truncate`, `pad_left`/`pad_right`, wide
characters included), the cell padding around it, and the same styles Textual would apply
(base, component and post styles, and the row/column meta that mouse clicks read). The
header row is drawn the same way. Anything else (row labels, other renderables, multi-line or
tabbed text, rows taller than one line) goes through Textual's own `_render_cell`. New rows
are measured the same way: a one-line Text is as wide as its cell length.
`tests/test_dashboard/test_fast_table.py` compares both paths cell by cell and width by
width, so a Textual or Rich change that makes them differ fails there. Relies on DataTable
internals of Textual 8.2 (pinned in pyproject.toml).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from itertools import zip_longest
from typing import Any, TypeGuard

from rich.cells import cell_len, set_cell_size
from rich.console import Console
from rich.segment import Segment
from rich.style import Style
from rich.text import Span, Text
from textual.css.styles import RenderStyles
from textual.geometry import Region
from textual.render import measure
from textual.strip import Strip
from textual.widgets import DataTable
from textual.widgets.data_table import DuplicateKey, Row, RowKey


def is_one_line(cell: object) -> TypeGuard[Text]:
    """Whether `cell` is Rich Text of one line, without tabs (what FastTable draws itself)."""
    return isinstance(cell, Text) and "\n" not in cell.plain and "\t" not in cell.plain


def text_line(
    console: Console,
    text: Text,
    width: int,
    padding: int,
    pre_style: Style,
    post_style: Style | None,
) -> list[Segment] | None:
    """One-line `text` drawn in a cell `width` wide, or None when only Rich can draw it."""
    inner = width - 2 * padding
    if inner <= 0 or not is_one_line(text):
        return None
    overflow = text.overflow or "fold"
    justify = text.justify or "default"
    if justify == "full" or overflow == "ignore":
        return None
    if not text.spans:
        return plain_line(console, text, inner, padding, pre_style, post_style)
    line = text.copy()
    line.end = ""
    if justify == "left":
        line.truncate(inner, overflow=overflow, pad=True)
    elif justify in ("right", "center"):
        line.rstrip()
        line.truncate(inner, overflow=overflow)
        gap = inner - line.cell_len
        line.pad_left(gap if justify == "right" else gap // 2)
        line.pad_right(inner - line.cell_len)
    else:  # "default": Rich pads the line afterwards, unstyled
        line.truncate(inner, overflow=overflow)
    tail = inner - line.cell_len
    if line.style:  # as Rich's `Text.join` does: the base style is the lowest span
        line.spans.insert(0, Span(0, len(line), line.style))
        line.style = ""
    segments: list[Segment] = []
    if padding:
        segments.append(Segment(" " * padding, Style()))
    segments.extend(line.render(console, ""))
    if padding + tail:
        segments.append(Segment(" " * (padding + tail), Style()))
    return list(Segment.apply_style(segments, pre_style, post_style))


def plain_line(
    console: Console,
    text: Text,
    inner: int,
    padding: int,
    pre_style: Style,
    post_style: Style | None,
) -> list[Segment]:
    """`text_line` for Text without spans, cut rather than overflowing: the same cells.

    Most cells are a plain string with at most a base style. Rich would copy the Text, render
    it span by span and restyle every segment; here the line is cut and padded as
    `Text.truncate`/`pad_left`/`pad_right` would, and each run of one style (the padding
    around the text, the text in its base style) is one segment.
    """
    overflow = text.overflow or "fold"
    justify = text.justify or "default"
    plain = text.plain
    if justify in ("right", "center"):
        plain = plain.rstrip()
    length = cell_len(plain)
    if length > inner:
        plain = (
            set_cell_size(plain, inner - 1) + "…"
            if overflow == "ellipsis"
            else set_cell_size(plain, inner)
        )
        length = cell_len(plain)
    gap = inner - length
    if justify == "right":
        plain = " " * gap + plain
    elif justify == "center":
        plain = " " * (gap // 2) + plain + " " * (gap - gap // 2)
    elif justify == "left":
        plain += " " * gap
    base = console.get_style(text.style, default=Style.null()) if text.style else Style.null()
    around = pre_style + post_style if post_style else pre_style
    if not base:  # one style across the cell
        tail = inner - cell_len(plain)
        return [Segment(" " * padding + plain + " " * (tail + padding), around)]
    styled = pre_style + base
    if post_style:
        styled += post_style
    segments = [Segment(" " * padding, around)] if padding else []
    segments.append(Segment(plain, styled))
    tail = padding + inner - cell_len(plain)
    if tail:
        segments.append(Segment(" " * tail, around))
    return segments


class DrawnStyles(RenderStyles):
    """Component styles for one draw: their Rich style (an ancestor walk) is worked out once."""

    def __init__(self, styles: RenderStyles) -> None:
        """The same styles as `styles`."""
        assert styles.node is not None
        super().__init__(styles.node, styles.base, styles.inline)
        self._drawn_style: Style | None = None

    @property
    def rich_style(self) -> Style:
        """The component's Rich style, as of this draw."""
        if self._drawn_style is None:
            self._drawn_style = super().rich_style
        return self._drawn_style


class FastTable(DataTable[Any]):
    """A DataTable whose one-line text cells skip Rich's general renderer (see module doc)."""

    _drawing_components: dict[tuple[str, ...], DrawnStyles] | None = None
    """While lines are drawn: the component styles asked for (see `get_component_styles`)."""
    _drawing_style: Style | None = None
    """While lines are drawn: the widget's Rich style, once worked out."""

    def render_lines(self, crop: Region) -> list[Strip]:
        """Draw the lines in `crop`, each style looked up once for them all.

        Textual works out the widget's style, the row's and the header's on every line (each
        walks the widget's ancestors to blend backgrounds, ~0.1 ms): nothing changes them while
        one frame's lines are drawn.
        """
        self._drawing_components = {}
        try:
            return super().render_lines(crop)
        finally:
            self._drawing_components = self._drawing_style = None

    @property
    def rich_style(self) -> Style:
        """The widget's Rich style (once per draw while drawing)."""
        if self._drawing_components is None:
            return super().rich_style
        if self._drawing_style is None:
            self._drawing_style = super().rich_style
        return self._drawing_style

    def get_component_styles(self, *names: str) -> RenderStyles:
        """A component's styles: while drawing, one object a draw.

        Textual asks for the header's Rich style on every line it draws.
        """
        memo = self._drawing_components
        if memo is None:
            return super().get_component_styles(*names)
        styles = memo.get(names)
        if styles is None:
            styles = memo[names] = DrawnStyles(super().get_component_styles(*names))
        return styles

    def add_keyed_rows(self, rows: Iterable[tuple[str, Sequence[object]]]) -> None:
        """Add rows of height 1 without labels, each (key, cells), at the bottom.

        What `add_row` does for each row, done once for them all where it can be (~60 us a
        row less): the columns are ordered once, and the cursor is checked, the first row
        highlighted and the table marked for measuring once at the end.
        """
        columns = self.ordered_columns
        was_empty = self.row_count == 0
        for key, cells in rows:
            row_key = RowKey(key)
            if row_key in self._row_locations:
                raise DuplicateKey(f"The row key {row_key!r} already exists.")
            if len(cells) > len(columns):
                raise ValueError("More values provided than there are columns.")
            self._row_locations[row_key] = len(self.rows)
            self._data[row_key] = {column.key: cell for column, cell in zip_longest(columns, cells)}
            self.rows[row_key] = Row(row_key, 1)
            self._new_rows.add(row_key)
        self._require_update_dimensions = True
        self.cursor_coordinate = self.cursor_coordinate
        cell_now_available = was_empty and self.row_count > 0 and len(self.columns) > 0
        if cell_now_available and self.show_cursor and self.cursor_type != "none":
            self._highlight_cursor()
        self._update_count += 1
        self.check_idle()

    def _update_dimensions(self, new_rows: Iterable[RowKey]) -> None:
        """Widen the columns for `new_rows`, measuring one-line text by its cell length.

        Textual measures every cell of every new row with Rich's `measure` (splitting the
        text into lines and words), ~20-50 ms for a page of 200 rows. A one-line Text's width
        is its cell length, which is what that measurement returns for it. Columns of a fixed
        width are drawn at that width whatever their cells hold, so they are not measured (when
        every column is fixed, no cell is). Rows with labels or automatic heights go to
        Textual's own method.
        """
        new_rows = list(new_rows)
        found: list[int] = []
        for row_key in new_rows:
            row_index = self._row_locations.get(row_key)
            row = self.rows.get(row_key)
            if row_index is None or row is None:
                continue  # removed before the table was idle
            if row.label is not None or row.auto_height:
                super()._update_dimensions(new_rows)
                return
            found.append(row_index)
        columns = self.ordered_columns
        widths = [column.content_width for column in columns]
        measured = [index for index, column in enumerate(columns) if column.auto_width]
        console = self.app.console
        for row_index in found if measured else ():
            cells = self._get_row_renderables(row_index).cells
            for index in measured:
                if index >= len(cells):
                    break
                cell = cells[index]
                width = cell.cell_len if is_one_line(cell) else measure(console, cell, 1)
                if width > widths[index]:
                    widths[index] = width
        for column, width in zip(columns, widths, strict=True):
            column.content_width = width
        super()._update_dimensions([])  # the virtual size, from the widths

    def _render_cell(
        self,
        row_index: int,
        column_index: int,
        base_style: Style,
        width: int,
        cursor: bool = False,
        hover: bool = False,
    ) -> list[list[Segment]]:
        lines = self._one_line_cell(row_index, column_index, base_style, width, cursor, hover)
        if lines is None:
            return super()._render_cell(row_index, column_index, base_style, width, cursor, hover)
        return lines

    def _one_line_cell(
        self,
        row_index: int,
        column_index: int,
        base_style: Style,
        width: int,
        cursor: bool,
        hover: bool,
    ) -> list[list[Segment]] | None:
        """A one-line text cell or header, drawn and cached as Textual caches its own; else None."""
        is_header = row_index == -1
        if column_index < 0 or row_index < -1:
            return None
        row_key = self._header_row_key if is_header else self._row_locations.get_key(row_index)
        column_key = self._column_locations.get_key(column_index)
        if row_key is None or column_key is None:
            return None
        cache_key = (
            row_key,
            column_key,
            base_style,
            cursor,
            hover,
            self._show_hover_cursor,
            self._update_count,
            self._pseudo_class_state,
        )
        cached = self._cell_render_cache.get(cache_key)
        if cached is not None:
            return cached
        height = self.header_height if is_header else self.rows[row_key].height
        cell = self._get_row_renderables(row_index).cells[column_index]
        if height != 1 or not is_one_line(cell):
            return None
        component_style, post_style = self._get_styles_to_render_cell(
            is_header,
            False,
            not is_header and (row_index < self.fixed_rows or column_index < self.fixed_columns),
            hover,
            cursor,
            self.show_cursor,
            self._show_hover_cursor,
            self.cursor_foreground_priority == "css",
            self.cursor_background_priority == "css",
        )
        pre_style = base_style + Style.from_meta({"row": row_index, "column": column_index})
        line = text_line(
            self.app.console,
            cell,
            width,
            self.cell_padding,
            pre_style + component_style,
            post_style,
        )
        if line is None:
            return None
        self._cell_render_cache[cache_key] = [line]
        return [line]
