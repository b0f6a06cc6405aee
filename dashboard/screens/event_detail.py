"""EventDetailModal: one provisioning event in full, over the screen it was opened from."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, cast

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static
from textual.worker import get_current_worker

from dashboard.widgets.event_text import event_text
from dashboard.widgets.key_bar import KeyBar
from dashboard.widgets.safe_text import clean
from store.detail import unpack_detail
from store.health import event_by_id

if TYPE_CHECKING:
    from dashboard.app import ScimwatchApp


class EventDetailModal(ModalScreen[None]):
    """Steps, modified properties, error and recommendation of one event."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "dismiss", "Close"),
        Binding("y", "copy_id", "Copy id"),
    ]

    def __init__(self, event_id: str) -> None:
        """Show the event with id `event_id` (read from the cache)."""
        super().__init__()
        self.event_id = event_id

    def compose(self) -> ComposeResult:
        """A framed, scrollable pane."""
        with Vertical(id="event-detail-frame"):
            with VerticalScroll(id="event-detail-scroll"):
                yield Static(Text("Loading…"), id="event-detail")
            yield KeyBar()

    def on_mount(self) -> None:
        """Read the event."""
        frame = self.query_one("#event-detail-frame")
        frame.border_title = "Provisioning event"
        self._read()

    @work(thread=True, exit_on_error=False, group="event-detail")
    def _read(self) -> None:
        app = cast("ScimwatchApp", self.app)
        with app.cache.reading() as db:
            event = event_by_id(db, self.event_id)
        if event is None:
            text = Text(f"Event {clean(self.event_id, 100)} is no longer in the cache.")
        else:
            text = event_text(event, unpack_detail(event.detail))
        if not get_current_worker().is_cancelled:
            app.call_from_thread(self.query_one("#event-detail", Static).update, text)

    def action_copy_id(self) -> None:
        """Copy the event id."""
        self.app.copy_to_clipboard(clean(self.event_id, 1000))
        self.app.notify(f"Copied {clean(self.event_id, 200)}", markup=False)
