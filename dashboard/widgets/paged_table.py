"""PagedTable: a DataTable that shows one page of a keyset query, read in a thread worker.

A table measures and draws every row it holds (FastTable makes both cheap for one-line text,
but not free), so it never holds the cache: it holds one page (200 rows by default, never more
than 1000), fetched with LIMIT and a keyset position, and `]`/`[` move between pages. A
refresh updates rows by key: when the same rows come back only changed cells are rewritten,
otherwise the table is rebuilt and the cursor returns to the row it was on, with the scroll
offset kept.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeAlias

from rich.text import Text
from textual import work
from textual.message import Message
from textual.widgets.data_table import ColumnKey
from textual.worker import get_current_worker

from dashboard.widgets.fast_table import FastTable
from dashboard.widgets.safe_text import safe_text

if TYPE_CHECKING:
    from sqlite_utils import Database

    from store.cache import Cache

Position = tuple[str, str]
"""Where a row sits in its keyset order, e.g. (activity_at, id); the next page starts below."""

MAX_PAGE_SIZE = 1000
"""The most rows a page may hold (a DataTable paints 1k rows in about 0.2 s)."""


@dataclass(frozen=True)
class TableRow:
    """One row: its key (an id the admin can copy), its cells, and its keyset position."""

    key: str
    cells: tuple[object, ...]
    """str cells are API text and are cleaned; numbers are right-aligned; Text is kept."""
    position: Position | None = None
    payload: Any = None
    """The record behind the row, for detail panes and drill-in."""
    ident: str = ""
    """The id `y` copies, when it is not the key itself."""

    @property
    def copy_id(self) -> str:
        """The id the admin copies."""
        return self.ident or self.key


@dataclass(frozen=True)
class Column:
    """A column's key, its label and, optionally, a fixed width."""

    key: str
    label: str
    width: int | None = None
    fill: bool = False
    """The column also takes the width the others leave (`width` is then its least)."""


Fetch: TypeAlias = "Callable[[Database, Position | None, int], list[TableRow]]"
"""Read up to `limit` rows after `position` (None: from the top)."""


def render_cell(value: object) -> Text:
    """A cell value as a Rich Text: cleaned if it is text, right-aligned if it is a number."""
    if isinstance(value, Text):
        return value
    if value is None:
        return Text("")
    if isinstance(value, bool):
        return Text("yes" if value else "no")
    if isinstance(value, int | float):
        return Text(str(value), justify="right")
    return safe_text(value)


def sort_key(value: object) -> tuple[int, Any]:
    """Numbers before text, text case-insensitively, empty values last."""
    if value is None or value == "":
        return (2, "")
    if isinstance(value, int | float):
        return (0, value)
    plain = value.plain if isinstance(value, Text) else str(value)
    return (1, plain.lower())


@dataclass
class PageState:
    """Which page is shown, and what the last read said about the next one."""

    starts: list[Position | None] = field(default_factory=lambda: [None])
    has_more: bool = False
    last_position: Position | None = None


class PagedTable(FastTable):
    """A page of a keyset-paged query, refreshed by key."""

    class Loaded(Message):
        """A page was read and shown."""

        def __init__(self, table: PagedTable) -> None:
            super().__init__()
            self.table = table

        @property
        def control(self) -> PagedTable:
            """The table that loaded."""
            return self.table

    class PageRead(Message):
        """Rows read by the worker (internal)."""

        def __init__(self, rows: list[TableRow], generation: int) -> None:
            super().__init__()
            self.rows = rows
            self.generation = generation

    def __init__(
        self,
        columns: Sequence[Column],
        *,
        page_size: int = 200,
        id: str | None = None,  # noqa: A002 - Textual's name
        classes: str | None = None,
    ) -> None:
        """Create the table; call `show_query` to give it something to read."""
        super().__init__(id=id, classes=classes, cursor_type="row", zebra_stripes=True)
        self.table_columns = tuple(columns)
        self.page_size = min(page_size, MAX_PAGE_SIZE)
        self.page = PageState()
        self.rows_by_key: dict[str, TableRow] = {}
        self.sort_column: int | None = None
        self.loaded = False
        self._cache: Cache | None = None
        self._fetch: Fetch | None = None
        self._generation = 0

    def on_mount(self) -> None:
        """Add the columns."""
        for column in self.table_columns:
            self.add_column(column.label, key=column.key, width=column.width)
        self.fit_fill_columns()

    def on_resize(self) -> None:
        """Give the fill columns the width the others leave."""
        self.fit_fill_columns()

    def fit_fill_columns(self) -> None:
        """Widen (or narrow back) the fill columns to the table's width.

        The vertical scrollbar's width is always left out: it comes and goes with the number of
        rows, and a table that fits only without it would scroll sideways whenever it is shown.
        """
        fills = [column for column in self.table_columns if column.fill]
        if not fills or not self.columns:
            return
        padding = 2 * self.cell_padding
        least = sum(padding + (column.width or 0) for column in self.table_columns)
        room = self.content_size.width - self.styles.scrollbar_size_vertical
        share, rest = divmod(max(0, room - least), len(fills))
        changed = False
        for index, fill in enumerate(fills):
            width = (fill.width or 0) + share + (index < rest)
            column = self.columns[ColumnKey(fill.key)]
            if column.width != width:
                column.width, changed = width, True
        if changed:  # Textual has no public way to resize a column: its own add_column does this
            self._require_update_dimensions = True
            self._clear_caches()
            self.refresh()

    def show_query(self, cache: Cache, fetch: Fetch) -> None:
        """Show the first page of a (new) query, e.g. after the filter changed."""
        self._cache, self._fetch = cache, fetch
        self.page = PageState()
        self.reload()

    def reload(self) -> None:
        """Read the current page again (the cache changed)."""
        if self._cache is None or self._fetch is None:
            return
        self._generation += 1
        self._read_page(self._cache, self._fetch, self.page.starts[-1], self._generation)

    @work(thread=True, exclusive=True, exit_on_error=False, group="paged-table-read")
    def _read_page(
        self, cache: Cache, fetch: Fetch, start: Position | None, generation: int
    ) -> None:
        with cache.reading() as db:
            rows = fetch(db, start, self.page_size + 1)
        if not get_current_worker().is_cancelled:
            self.post_message(self.PageRead(rows, generation))

    def on_paged_table_page_read(self, message: PageRead) -> None:
        """Show a page that was read, unless a newer read is on its way."""
        message.stop()
        if message.generation != self._generation:
            return
        rows = message.rows[: self.page_size]
        self.page.has_more = len(message.rows) > self.page_size
        self.page.last_position = rows[-1].position if rows else None
        self.show_rows(rows)
        self.loaded = True
        self.post_message(self.Loaded(self))

    def show_rows(self, rows: Sequence[TableRow]) -> None:
        """Put `rows` on screen, updating in place when the same rows came back."""
        unique = list({row.key: row for row in reversed(rows)}.values())[::-1]
        ordered = self._in_display_order(unique)
        shown = [row_key.value for row_key in self._ordered_keys()]
        self.rows_by_key = {row.key: row for row in ordered}
        with self.app.batch_update():
            if shown == [row.key for row in ordered]:
                self._update_cells(ordered)
            else:
                self._rebuild(ordered)

    def _ordered_keys(self) -> list[Any]:
        return [row.key for row in self.ordered_rows]

    def _in_display_order(self, rows: Sequence[TableRow]) -> list[TableRow]:
        if self.sort_column is None:
            return list(rows)
        index = self.sort_column
        return sorted(rows, key=lambda row: sort_key(row.cells[index]))

    def _update_cells(self, rows: Sequence[TableRow]) -> None:
        for row in rows:
            current = self.get_row(row.key)
            for column, old, value in zip(self.table_columns, current, row.cells, strict=False):
                new = render_cell(value)
                if old.plain != new.plain or old.style != new.style:
                    self.update_cell(row.key, column.key, new)

    def _rebuild(self, rows: Sequence[TableRow]) -> None:
        selected = self.selected_key
        scroll_x, scroll_y = self.scroll_x, self.scroll_y
        self.clear()
        self.add_keyed_rows((row.key, [render_cell(value) for value in row.cells]) for row in rows)
        if selected is not None and selected in self.rows_by_key:
            self.move_cursor(row=self.get_row_index(selected), scroll=False)
        self.scroll_to(scroll_x, scroll_y, animate=False, immediate=True)

    @property
    def selected_key(self) -> str | None:
        """The key of the row under the cursor."""
        if not self.row_count or not self.is_valid_row_index(self.cursor_row):
            return None
        return str(self.coordinate_to_cell_key(self.cursor_coordinate).row_key.value)

    @property
    def selected(self) -> TableRow | None:
        """The row under the cursor."""
        key = self.selected_key
        return self.rows_by_key.get(key) if key is not None else None

    def next_page(self) -> bool:
        """Show the page after this one; False when this is the last."""
        if not self.page.has_more or self.page.last_position is None:
            return False
        self.page.starts.append(self.page.last_position)
        self.move_cursor(row=0)
        self.reload()
        return True

    def previous_page(self) -> bool:
        """Show the page before this one; False on the first page."""
        if len(self.page.starts) == 1:
            return False
        self.page.starts.pop()
        self.move_cursor(row=0)
        self.reload()
        return True

    def cycle_sort(self) -> str:
        """Sort this page by the next column (then back to the query's order); the label."""
        if self.sort_column is None:
            self.sort_column = 0
        elif self.sort_column + 1 < len(self.table_columns):
            self.sort_column += 1
        else:
            self.sort_column = None
        if self.sort_column is None:
            self.reload()
        else:
            self.show_rows(list(self.rows_by_key.values()))
        if self.sort_column is None:
            return "newest first"
        return self.table_columns[self.sort_column].label

    @property
    def page_label(self) -> str:
        """Where the admin is: "page 2 · 200 rows · ] next"."""
        parts = [f"page {len(self.page.starts)}", f"{self.row_count} rows"]
        if self.page.has_more:
            parts.append("] next")
        if len(self.page.starts) > 1:
            parts.append("[ previous")
        return " · ".join(parts)

    def iter_all(self, db: Database, batch: int = MAX_PAGE_SIZE) -> Iterator[TableRow]:
        """Every row of the query, page after page (for export), in a reading thread."""
        if self._fetch is None:
            return
        position: Position | None = None
        while True:
            rows = self._fetch(db, position, batch)
            yield from rows
            if len(rows) < batch or rows[-1].position is None:
                return
            position = rows[-1].position
