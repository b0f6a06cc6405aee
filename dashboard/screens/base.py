"""What every screen shares: the nav bar, the status bar, reloading when the cache changes.

`ScimwatchScreen` re-reads when the app's `cache_changed_at` moves, but only while it is the
screen on top; a hidden screen remembers to re-read when it comes back. `TableScreen` adds a
paged table with a `/` filter, sort, copy of the selected id, CSV export and a detail pane.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar, cast

from rich.text import Text
from textual import on, work
from textual._context import active_app
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.events import ScreenResume
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import DataTable, Input, Static

from dashboard.csv_export import ExportError, export_path, write_csv
from dashboard.widgets.filter_input import FilterInput
from dashboard.widgets.key_bar import KeyBar
from dashboard.widgets.nav_bar import NavBar
from dashboard.widgets.paged_table import Column, PagedTable, Position, TableRow
from dashboard.widgets.safe_text import clean
from dashboard.widgets.source_status import SourceStatusBar

if TYPE_CHECKING:
    from sqlite_utils import Database

    from dashboard.app import ScimwatchApp
    from store.cache import Cache


APP_LABELS = {"nextgen": "NextGen", "firstgen": "FirstGen"}
"""How screens name the two Harness enterprise apps in Entra."""

CYCLE_ID_WIDTH = 8
"""Width of a table's cycle id column: the first group of the GUID, like a short commit hash.
The cell holds the whole id, which the filter, copy and CSV export use."""


def job_labels(db: Database) -> dict[str, str]:
    """How screens name the app each provisioning job syncs, by job id ("NextGen")."""
    from store.health import job_apps  # after the first paint: the health model is pydantic

    return {job: APP_LABELS.get(app, app) for job, app in job_apps(db).items()}


def set_focus_now(screen: Screen[Any], widget: Widget) -> None:
    """Give `widget` the keyboard before the next key is handled.

    For a box opened by a priority binding ("/"): a terminal delivers a fast typist's keys, or
    a paste, in one burst, and the app hands each key to whatever has focus as it takes it.
    `Widget.focus()` waits behind those keys, which then run the screen's bindings instead of
    being typed ("p" pauses polling, "q" quits).
    """
    screen.set_focus(widget)


def type_slash(screen: Screen[Any], box: Input) -> bool:
    """Type "/" into `box` if it has focus (the priority binding took the key); else False."""
    if screen.focused is not box:
        return False
    box.insert_text_at_cursor("/")
    return True


def matches(needle: str, *values: object) -> bool:
    """Whether any value contains `needle`, case-insensitively (an empty needle matches)."""
    if not needle:
        return True
    folded = needle.casefold()
    return any(folded in str(value).casefold() for value in values if value is not None)


def adopt_current_css(screen: Screen[Any]) -> None:
    """Mark a new screen as styled by the app's current stylesheet.

    Textual 8 re-parses every CSS source and restyles the DOM when a screen whose CSS
    generation differs from the app's becomes active, and a new screen starts at -1: each first
    visit of a screen cost ~150 ms of CPU here for nothing, since a screen is styled from the
    current stylesheet when it mounts. Screens created before a theme change still differ (the
    app's count moves on) and are restyled when shown, as Textual intends. Our screens add no
    CSS of their own (it is all in app.tcss); a screen with `CSS` or `CSS_PATH` keeps the
    re-parse. `tests/test_dashboard/test_screen_css.py` guards this against Textual changes.
    """
    if screen.CSS or screen.CSS_PATH:
        return
    try:
        app = active_app.get()
    except LookupError:
        return
    screen._css_update_count = app._css_update_count


EVERY_ROW = -1
"""A `limit` that reads every row (SQLite's LIMIT -1)."""


def list_start(position: Position | None) -> int:
    """The index a page of a whole-read list starts at (see `list_page`)."""
    return int(position[0]) + 1 if position is not None else 0


def list_page(rows: Sequence[TableRow], position: Position | None, limit: int) -> list[TableRow]:
    """One page of an answer read whole (groups, SSO conflicts, retries), keyed by index.

    The answer is small enough to read at once but not to show at once: a DataTable takes
    ~0.2 ms a row. The position of a row is its index in `rows`, so `]` continues after it.
    """
    start = list_start(position)
    return [
        replace(row, position=(f"{index:09d}", row.key))
        for index, row in enumerate(rows[start : start + limit], start)
    ]


class ScimwatchScreen(Screen[None]):
    """A screen of the dashboard: nav bar, body, status bar, footer."""

    MODE: ClassVar[str] = ""
    """The nav bar entry this screen belongs to."""
    SUBJECT: ClassVar[str] = ""
    """What the screen shows, in a few words."""
    HELP: ClassVar[str] = ""
    """Contextual help: what the screen answers and how to read it."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "Back"),
    ]

    def __init__(self) -> None:
        """A screen that reads the cache when it mounts and whenever the cache changes."""
        super().__init__()
        self.dirty = False
        self.subject = self.SUBJECT
        adopt_current_css(self)

    @property
    def scim_app(self) -> ScimwatchApp:
        """The app, typed."""
        return cast("ScimwatchApp", self.app)

    @property
    def cache(self) -> Cache:
        """The cache the app reads."""
        return self.scim_app.cache

    def now(self) -> datetime:
        """The app's (injectable) clock."""
        return self.scim_app.clock()

    def compose(self) -> ComposeResult:
        """Nav bar, the screen's own body, status bar, footer."""
        yield NavBar(self.MODE, self.subject)
        with Vertical(id="body"):
            yield from self.compose_body()
        yield SourceStatusBar()
        yield KeyBar()

    def compose_body(self) -> ComposeResult:
        """The screen's own widgets."""
        yield from ()

    def on_mount(self) -> None:
        """Read now, and again whenever the cache changes."""
        self.watch(self.app, "cache_changed_at", self._cache_changed, init=False)
        self.reload()

    def _cache_changed(self, _changed_at: datetime | None) -> None:
        if self.app.screen is self:
            self.reload()
        else:
            self.dirty = True  # hidden screens re-read when they come back

    def on_screen_resume(self, event: ScreenResume) -> None:
        """Catch up with changes made while hidden; skip Textual's restyle when it is moot.

        Textual restyles every widget of a screen each time it is shown (~10 ms for a table
        screen here), also right after the screen was built and styled. A screen's styles
        only go stale while hidden when the stylesheet changes (a theme, say), and that moves
        the app's CSS generation past the screen's; then the restyle happens as before.
        Classes and pseudo-classes restyle their own widgets when they change.
        """
        if self._css_update_count == self.app._css_update_count:
            event.refresh_styles = False
        if self.dirty:
            self.dirty = False
            self.reload()

    def reload(self) -> None:
        """Re-read what the screen shows (in a thread worker)."""

    def action_back(self) -> None:
        """Close a drilled-in screen, or go back to the overview."""
        if len(self.app.screen_stack) > 1:
            self.app.pop_screen()
        elif self.MODE != "overview":
            self.app.switch_mode("overview")

    def notify_plain(self, message: str, *, severity: str = "information") -> None:
        """A notification whose text is never parsed as markup."""
        self.app.notify(clean(message, 500), markup=False, severity=severity)  # type: ignore[arg-type]


class TableScreen(ScimwatchScreen):
    """A screen built around one paged table, with filter, sort, copy, export and detail."""

    COLUMNS: ClassVar[tuple[Column, ...]] = ()
    EXPORT_NAME: ClassVar[str] = "table"
    PAGE_SIZE: ClassVar[int] = 100
    """Rows a page holds: about three screens' worth. Each page shown is built and measured
    whole, so a filter keystroke that changes every row costs about twice as much at 200."""
    FILTER_PLACEHOLDER: ClassVar[str] = "filter: type to match any column"

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "Back"),
        # A priority binding runs as the app takes the key, before it hands the keys typed
        # after it to whatever has focus: see `action_filter`.
        Binding("slash", "filter", "Filter", priority=True),
        Binding("s", "sort", "Sort"),
        Binding("y", "copy_id", "Copy id"),
        Binding("ctrl+s", "export", "Export CSV"),
        Binding("right_square_bracket", "next_page", "Next page", show=False),
        Binding("left_square_bracket", "previous_page", "Previous page", show=False),
    ]

    def __init__(self, filter_text: str = "") -> None:
        """A table screen, optionally opened with a filter already applied."""
        super().__init__()
        self.filter_text = filter_text
        self._detail_shown: Text | None = None

    @property
    def table(self) -> PagedTable:
        """The screen's table."""
        return self.query_one(PagedTable)

    def compose_body(self) -> ComposeResult:
        """Filter (hidden until `/`), table, page line, detail pane."""
        filter_input = FilterInput(
            value=self.filter_text, placeholder=self.FILTER_PLACEHOLDER, id="filter"
        )
        filter_input.display = bool(self.filter_text)
        yield filter_input
        yield PagedTable(self.COLUMNS, page_size=self.PAGE_SIZE, id="table")
        yield Static("", id="page-line")
        # Shown from the start on screens that have details, hidden on those that never do:
        # toggling it after the first page would lay out and draw the table a second time.
        pane = VerticalScroll(id="detail-pane")
        pane.display = type(self).detail is not TableScreen.detail
        with pane:
            yield Static("", id="detail")

    def on_mount(self) -> None:
        """Put the keyboard on the table (ScimwatchScreen.on_mount runs too: it reads)."""
        self.table.focus()

    def reload(self) -> None:
        """Re-read the current page."""
        table = self.table
        if not table.loaded and table.page.starts == [None]:
            table.show_query(self.cache, self.fetch)
        else:
            table.reload()

    def fetch(self, db: Database, position: Position | None, limit: int) -> list[TableRow]:
        """Rows of the screen's query after `position`, filtered by `self.filter_text`."""
        raise NotImplementedError

    def detail(self, row: TableRow) -> Text | None:
        """The detail pane for a row (None keeps the pane hidden)."""
        return None

    def drill_in(self, row: TableRow) -> None:
        """What enter on a row opens."""

    @on(PagedTable.Loaded)
    def _table_loaded(self, event: PagedTable.Loaded) -> None:
        line = event.table.page_label
        if self.filter_text:
            line = f"filter {clean(self.filter_text, 60)!r} · {line}"
        # One line high, as wide as the screen: its text never changes the layout.
        self.query_one("#page-line", Static).update(Text(line), layout=False)
        self._show_detail(event.table.selected)

    @on(DataTable.RowHighlighted)
    def _row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self._show_detail(self.table.selected)

    @on(DataTable.RowSelected)
    def _row_selected(self, event: DataTable.RowSelected) -> None:
        row = self.table.selected
        if row is not None:
            self.drill_in(row)

    def _show_detail(self, row: TableRow | None) -> None:
        detail = self.detail(row) if row is not None else None
        pane = self.query_one("#detail-pane")
        pane.display = detail is not None
        shown = self._detail_shown
        if detail == shown and (detail is None or shown is None or detail.style == shown.style):
            return  # the same text: updating would lay the screen out again for nothing
        self._detail_shown = detail
        self.query_one("#detail", Static).update(detail or "")

    def action_filter(self) -> None:
        """Show the filter box and type into it; in the box, "/" is only a character."""
        filter_input = self.query_one("#filter", Input)
        if type_slash(self, filter_input):
            return
        filter_input.display = True
        set_focus_now(self, filter_input)

    @on(Input.Changed, "#filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        self.filter_text = event.value
        self.table.show_query(self.cache, self.fetch)

    @on(Input.Submitted, "#filter")
    def _filter_submitted(self) -> None:
        self.set_focus(self.table)

    def action_back(self) -> None:
        """Clear an open filter first; then go back."""
        filter_input = self.query_one("#filter", Input)
        if filter_input.display:
            filter_input.value = ""
            filter_input.display = False
            self.set_focus(self.table)
            return
        super().action_back()

    def action_sort(self) -> None:
        """Sort the rows shown by the next column."""
        label = self.table.cycle_sort()
        self.notify_plain(f"Sorted by {label}")

    def action_next_page(self) -> None:
        """Older rows."""
        if not self.table.next_page():
            self.notify_plain("This is the last page")

    def action_previous_page(self) -> None:
        """Newer rows."""
        if not self.table.previous_page():
            self.notify_plain("This is the first page")

    def action_copy_id(self) -> None:
        """Copy the selected row's id to the clipboard."""
        row = self.table.selected
        if row is None:
            self.notify_plain("Nothing selected", severity="warning")
            return
        self.app.copy_to_clipboard(clean(row.copy_id, 1000))
        self.notify_plain(f"Copied {row.copy_id}")

    def action_export(self) -> None:
        """Export every row matching the filter (not just this page) to CSV."""
        self._export(self.scim_app.export_dir, self.now())

    @work(thread=True, exit_on_error=False, group="export")
    def _export(self, directory: object, now: datetime) -> None:
        from pathlib import Path

        header = [column.label for column in self.COLUMNS]
        target = export_path(Path(str(directory)), self.EXPORT_NAME, now)
        try:
            with self.cache.reading() as db:
                path, count = write_csv(target, header, (r.cells for r in self.table.iter_all(db)))
        except ExportError as error:
            self.app.call_from_thread(self.notify_plain, str(error), severity="error")
            return
        self.app.call_from_thread(self.notify_plain, f"Exported {count} rows to {path}")
