"""ScimwatchApp: the screens, the bindings and the poll schedule; nothing else.

Each source is polled by an async worker in group `poll:<source>`; a source still being polled
is skipped, never polled twice at once. Polls go through `poll_source` (network → cache). The app
then re-reads each source's freshness and the newest poll id in a thread; when the id grows
(a poll here, or a headless collector writing the cache while this app only reads it),
`cache_changed_at` moves and the screen on top re-reads.
"""

from __future__ import annotations

import asyncio
import gc
import threading
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future
from datetime import datetime, timedelta
from functools import partial
from importlib import import_module
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, TypeAlias, cast

from textual import on, work
from textual.app import App, SystemCommand
from textual.binding import Binding, BindingType
from textual.message import Message
from textual.reactive import reactive
from textual.screen import Screen
from textual.widget import AwaitMount
from textual.worker import Worker, WorkerState, get_current_worker

from dashboard.commands import palette_commands
from dashboard.first_read import FirstRead
from dashboard.messages import PollFailed, PollStarted, PollSucceeded
from dashboard.screens.overview import OverviewScreen
from dashboard.timefmt import utc_now
from dashboard.widgets.nav_bar import SCREENS
from dashboard.widgets.safe_text import clean
from dashboard.widgets.source_status import SourceState, no_data, source_state

if TYPE_CHECKING:
    from collectors.base import Collector
    from store.cache import Cache
    from store.models import PollRun
    from store.names import SourceName
    from store.overview import SourceFreshness


class PollOutcome(Protocol):
    """A saved poll, and whether the source has more to fetch at once (a backfill step)."""

    @property
    def poll_run(self) -> PollRun:
        """The poll run saved with the batch."""
        ...

    @property
    def complete(self) -> bool:
        """False when the source should be polled again right away."""
        ...


class CollectorSet(Protocol):
    """Collectors built after the first paint, and how to close what they hold open."""

    @property
    def collectors(self) -> Sequence[Collector]:
        """One collector per source."""
        ...

    async def aclose(self) -> None:
        """Close their HTTP clients and credentials."""
        ...


PollSource: TypeAlias = "Callable[[Collector, Cache], Awaitable[PollOutcome]]"
"""Poll one source and save what it returned (collectors.runner.poll_source)."""

MAX_BACKOFF = 1800.0
"""Longest wait, in seconds, before polling a source that keeps failing again."""

PREBUILD_PAUSE = 0.05
"""Seconds the event loop is left to keys and frames between two screens built ahead."""

STATUS_SECONDS = 2.0
"""How often the status bar and the read-only follower look at the cache."""


def lazy_screen(module: str, name: str) -> Callable[[], Screen[Any]]:
    """A screen of `dashboard.screens.<module>`, imported on its first visit, not at start-up."""

    def build() -> Screen[Any]:
        screen_class = getattr(import_module(f"dashboard.screens.{module}"), name)
        return cast("Screen[Any]", screen_class())

    return build


def freeze_start_up_heap() -> None:
    """Leave what start-up built (modules, widgets, the first screen) out of full GC passes.

    Also turns collection back on: `dashboard.launch` turns it off until the first paint, as
    start-up makes objects that live as long as the app, and every collection pass over them
    before the first frame (~50 ms of them) was wasted.

    Python's full collection walks every tracked object: on a loaded screen that is ~170k
    objects and 60-160 ms with the event loop stopped, at a moment chosen by allocation counts,
    often in the middle of drawing a screen. Objects alive at start-up live as long as the app,
    so `gc.freeze` moves them to the permanent generation and the full passes that remain walk
    only what came later. Called again once the other screens are built and once the
    collectors are (httpx, azure-identity).
    """
    gc.freeze()
    gc.enable()


class ScimwatchApp(App[None]):
    """The on-call dashboard."""

    CSS_PATH = "app.tcss"
    TITLE = "scimwatch"
    MODES: ClassVar[dict[str, str | Callable[[], Screen[Any]]]] = {
        "overview": OverviewScreen,
        "cycles": lazy_screen("cycles", "CyclesScreen"),
        "retries": lazy_screen("retries", "RetriesScreen"),
        "groups": lazy_screen("groups", "GroupsScreen"),
        "sso": lazy_screen("sso", "SsoScreen"),
        "events": lazy_screen("events", "EventsScreen"),
        "user": lazy_screen("user_lookup", "UserLookupScreen"),
    }
    DEFAULT_MODE: ClassVar[str] = "overview"
    BINDINGS: ClassVar[list[BindingType]] = [
        *(
            Binding(str(number), f"show('{mode}')", title, show=False)
            for number, (mode, title) in enumerate(SCREENS, start=1)
        ),
        Binding("r", "refresh", "Refresh"),
        Binding("p", "toggle_pause", "Pause"),
        Binding("question_mark", "help", "Help"),
        Binding("q", "quit", "Quit"),
    ]

    cache_changed_at: reactive[datetime | None] = reactive(None, always_update=True, init=False)
    """When the cache last got new polls; screens watch this and re-read. Not `init`: the
    app's reactives are initialised after the first screen mounted, and that screen would
    read the cache a second time for nothing."""
    source_states: reactive[tuple[SourceState, ...]] = reactive(())
    """Each source's state for the status bar."""
    mode_note: reactive[str] = reactive("")
    """Live, paused, or read-only (and who writes): the right end of the status bar."""
    paused: reactive[bool] = reactive(False)
    """Polling is paused (`p`); the cache is still shown."""

    class StatusRead(Message):
        """Freshness and the newest poll id, read in a thread."""

        def __init__(self, freshness: list[SourceFreshness], last_poll_id: int) -> None:
            super().__init__()
            self.freshness = freshness
            self.last_poll_id = last_poll_id

    class CacheOpened(Message):
        """The cache was opened (in a thread, after the first paint)."""

    class CacheFailed(Message):
        """The cache could not be opened, or the full settings not loaded."""

        def __init__(self, error: Exception) -> None:
            super().__init__()
            self.error = error

    class CollectorsReady(Message):
        """The collectors were built (in a thread, after the first paint)."""

        def __init__(self, collector_set: CollectorSet) -> None:
            super().__init__()
            self.collector_set = collector_set

    def __init__(
        self,
        cache: Cache | Callable[[], Cache],
        collectors: Sequence[Collector],
        polling_intervals: Mapping[SourceName, timedelta],
        *,
        clock: Callable[[], datetime] = utc_now,
        read_only: bool = False,
        writer: str = "",
        poll_source: PollSource | None = None,
        export_dir: Path | None = None,
        freshness_intervals: Mapping[SourceName, timedelta] | None = None,
        on_exit: Callable[[], Awaitable[object]] | None = None,
        collector_factory: Callable[[], CollectorSet] | None = None,
        check_cache: bool = False,
        prebuild_screens: bool = True,
        first_read: Future[FirstRead] | None = None,
    ) -> None:
        """Show `cache`; poll `collectors` every `polling_intervals[source]` unless read-only.

        Args:
            cache: the cache to show (and write, unless `read_only`), or how to open it: then
                it is opened in a thread right after the first paint (`dashboard.launch`
                paints the first read before importing what opening the cache imports); if
                that fails, the app exits and `start_error` says why.
            collectors: one per source; none in read-only mode.
            polling_intervals: each source's poll interval (freshness is judged by it too).
            clock: the UTC clock; tests freeze it so relative times are stable.
            read_only: another process writes the cache: follow it, never poll.
            writer: who writes the cache when read-only (e.g. "pid 1234").
            poll_source: network → cache for one source; `collectors.runner.poll_source`.
            export_dir: where ctrl+s writes CSV files (the current directory by default).
            freshness_intervals: the intervals in `clock` time, when that clock is not the
                wall clock (the demo's simulated one runs fast); `polling_intervals` otherwise.
            on_exit: awaited as the app closes, in its event loop (closes HTTP clients).
            collector_factory: builds the collectors, in a thread once the app runs: importing
                httpx and azure-identity costs ~0.4 s, which the first paint does not wait for.
            check_cache: run the cache's integrity check after the first paint (the writer
                was opened without it, `Cache.open_writer(quick_check=False)`); a damaged
                cache is reported, and polling stops.
            prebuild_screens: after the first paint, build the other screens in the
                background, one at a time, so that switching to one only shows it.
            first_read: the status and the overview, read in a thread before the app was
                built (`dashboard.first_read`); shown in the first frame when it is done by
                then, read again otherwise.
        """
        super().__init__()
        self._cache: Cache | None = None if callable(cache) else cache
        self._open_cache = cache if callable(cache) else None
        self._cache_lock = threading.Lock()
        self.start_error: Exception | None = None
        """Why the cache could not be opened after the first paint (the app exited)."""
        self.collectors = list(collectors)
        self.polling_intervals = dict(polling_intervals)
        self.freshness_intervals = dict(freshness_intervals or polling_intervals)
        self.clock = clock
        self.read_only = read_only
        self.writer = writer
        self.poll_source = poll_source
        self.export_dir = export_dir or Path.cwd()
        self.on_exit = on_exit
        self.collector_factory = collector_factory
        self._collector_set: CollectorSet | None = None
        self._building = False
        self._heap_frozen = False
        self._opening = False
        self.prebuild_screens = prebuild_screens
        self._first_read = first_read
        self._status_read = asyncio.Event()
        self.check_cache = check_cache
        self.damaged = ""
        """What the integrity check found wrong with the cache (polling stops)."""
        self._next_due: dict[str, float] = {}
        self._polling: set[SourceName] = set()
        self._throttled_until: dict[SourceName, datetime] = {}
        self._failing: set[SourceName] = set()
        self._failures: dict[SourceName, int] = {}
        self._last_poll_id = -1
        self._freshness: list[SourceFreshness] = []
        self.set_reactive(
            ScimwatchApp.source_states,
            tuple(source_state(no_data(source), clock()) for source in self.polling_intervals),
        )
        self.set_reactive(ScimwatchApp.mode_note, self._describe_mode())

    @property
    def cache(self) -> Cache:
        """The cache shown, opened on first use when the app was given how to open it."""
        with self._cache_lock:
            if self._cache is None:
                assert self._open_cache is not None
                self._cache = self._open_cache()
            return self._cache

    def on_mount(self) -> None:
        """Read the status, start polling, and keep both going."""
        first = self.first_read()
        if first is None:
            self.refresh_status()
        else:  # the overview shows the same read: nothing to announce
            self._last_poll_id = first.last_poll_id
            self.on_scimwatch_app_status_read(
                self.StatusRead(list(first.overview.freshness), first.last_poll_id)
            )
            self.call_after_refresh(self.after_first_paint)  # the overview drew it in frame 1
        self.poll_due_sources()
        self.set_interval(STATUS_SECONDS, self._tick)

    async def on_unmount(self) -> None:
        """Close what the collectors hold open, in the loop that opened it."""
        if self._collector_set is not None:
            await self._collector_set.aclose()
        if self.on_exit is not None:
            await self.on_exit()

    def first_read(self, *, wait: bool = False) -> FirstRead | None:
        """The read started before the app, if it is done (or `wait`) and did not fail."""
        future = self._first_read
        if future is None or not (wait or future.done()):
            return None
        try:
            return future.result()
        except Exception:  # the screens read again, and report what fails
            return None

    @on(OverviewScreen.Read)
    def _overview_read(self) -> None:
        # The overview draws what it read at the next refresh: start after that.
        self.call_after_refresh(self.after_first_paint)

    def after_first_paint(self) -> None:
        """Start, once, what the first paint does not wait for.

        That is freezing the start-up heap, building the other screens (`_prebuild`), the
        cache's integrity check (~0.5 s on a 1 GB cache) and building the collectors
        (importing httpx and azure-identity, ~0.4 s of CPU). Started with the app,
        their threads would hold the GIL while the first screen is drawn. The status tick
        starts them too, should the first screen not be the overview. When the cache is not
        open yet, it is opened first (in a thread) and all of that follows.
        """
        if self._cache is None:
            if not self._opening:
                self._opening = True
                self._open_after_first_paint()
            return
        if not self._heap_frozen:
            self._heap_frozen = True
            freeze_start_up_heap()
            if self.prebuild_screens:
                self.run_worker(self._prebuild(), group="prebuild", exit_on_error=False)
        if self.check_cache:
            self.check_cache = False
            self._check_cache()
        if self.collector_factory is None or self.read_only or self._building:
            return
        self._building = True
        self._build_collectors(self.collector_factory)

    async def _prebuild(self) -> None:
        """Build and mount every screen not shown yet, hidden, one after the other.

        A screen's first visit used to compose, style and mount its widgets and read its first
        page while the admin waited (~250 ms on a large cache); built here, a first visit costs
        what a return visit does. Each hidden screen reads the cache as it mounts and again
        when shown if the cache changed meanwhile. Between screens the loop yields, so keys
        pressed meanwhile are handled; a screen the admin opens before its turn is built then
        (`switch_mode`). It starts after the first status read, which tells every
        screen that the cache changed (screens built earlier would read twice).
        """
        await self._status_read.wait()
        for mode in self.MODES:
            mounted = self._build_mode(mode)
            if mounted is not None:
                await mounted
                await asyncio.sleep(PREBUILD_PAUSE)  # keys and frames go first
        if self.is_running:
            freeze_start_up_heap()

    def _build_mode(self, mode: str) -> AwaitMount | None:
        """Create and mount `mode`'s screen, hidden, unless it exists (None then).

        Nothing is built once the app is closing: Textual closes the screens one stack at a
        time, and a stack added meanwhile failed the quit ("dictionary changed size").
        """
        screen_type = self.MODES.get(mode)
        if mode in self._screen_stacks or not callable(screen_type) or not self.is_running:
            return None
        screen, mounted = self._get_screen(screen_type())
        self._screen_stacks[mode] = [screen]
        return mounted

    def switch_mode(self, mode: str) -> AwaitMount:
        """Show `mode`'s screen, building it first if the background has not yet.

        Built here rather than by Textual's `switch_mode`, a new screen is resumed (restyled
        and laid out) once instead of twice (~30 ms of a first visit).
        """
        self._build_mode(mode)
        return super().switch_mode(mode)

    @work(thread=True, exit_on_error=False, group="cache-open")
    def _open_after_first_paint(self) -> None:
        try:
            self.cache  # noqa: B018 - opens it
        except Exception as error:  # a cache that cannot be opened leaves nothing to show
            self.post_message(self.CacheFailed(error))
            return
        self.post_message(self.CacheOpened())

    def on_scimwatch_app_cache_opened(self) -> None:
        """Start what waited for the cache (`after_first_paint`)."""
        self.after_first_paint()

    def on_scimwatch_app_cache_failed(self, message: CacheFailed) -> None:
        """Nothing to show: exit, `start_error` saying why."""
        self.start_error = message.error
        self.exit(return_code=2)

    @work(thread=True, exit_on_error=False, group="cache-check")
    def _check_cache(self) -> None:
        damage = self.cache.damage()
        if damage:
            self.call_from_thread(self._cache_damaged, damage)

    def _cache_damaged(self, damage: str) -> None:
        self.damaged = damage
        self.mode_note = self._describe_mode()
        self.notify(
            f"{clean(damage, 300)}. Quit (q) and start scimwatch again: it moves the damaged "
            "cache aside and fetches everything again.",
            title="The cache is damaged",
            severity="error",
            markup=False,
            timeout=60,
        )

    @work(thread=True, exit_on_error=False, group="collectors")
    def _build_collectors(self, factory: Callable[[], CollectorSet]) -> None:
        self.post_message(self.CollectorsReady(factory()))

    def on_scimwatch_app_collectors_ready(self, message: CollectorsReady) -> None:
        """Start polling with the collectors just built."""
        self._collector_set = message.collector_set
        self.collector_factory = None
        self.collectors = list(message.collector_set.collectors)
        self.mode_note = self._describe_mode()
        freeze_start_up_heap()
        self.poll_due_sources()

    def _tick(self) -> None:
        self.after_first_paint()
        self.poll_due_sources()
        self.refresh_status()

    # --- polling ---------------------------------------------------------------------

    def poll_due_sources(self, *, force: bool = False) -> None:
        """Start a poll of every source that is due and not being polled already."""
        if self.read_only or self.damaged or (self.paused and not force):
            return
        now = time.monotonic()
        for collector in self.collectors:
            group = f"poll:{collector.source}"
            if not force and now < self._next_due.get(collector.source, 0.0):
                continue
            if any(worker.group == group and not worker.is_finished for worker in self.workers):
                continue  # never overlap polls of one source
            self._next_due[collector.source] = now + self._interval_seconds(collector.source)
            self.run_worker(self._poll(collector), group=group, exit_on_error=False)

    def _interval_seconds(self, source: SourceName) -> float:
        return self.polling_intervals.get(source, timedelta(minutes=5)).total_seconds()

    async def _poll(self, collector: Collector) -> None:
        from collectors.base import CollectorError, Throttled

        self.post_message(PollStarted(collector.source))
        try:
            outcome = await self._poll_function()(collector, self.cache)
        except CollectorError as error:
            retry_after = error.retry_after if isinstance(error, Throttled) else None
            until = self.clock() + timedelta(seconds=retry_after) if retry_after else None
            self.post_message(PollFailed(collector.source, str(error), error.kind, until))
            return
        if not outcome.complete:
            self._next_due[collector.source] = 0.0  # a backfill continues at the next tick
        self.post_message(PollSucceeded(outcome.poll_run))

    def _poll_function(self) -> PollSource:
        if self.poll_source is None:
            from collectors.runner import poll_source

            self.poll_source = partial(poll_source, clock=self.clock)
        return self.poll_source

    def on_poll_started(self, message: PollStarted) -> None:
        """Show the source as being polled."""
        self._polling.add(message.source)
        self._show_states()

    def on_poll_succeeded(self, message: PollSucceeded) -> None:
        """Say so if the source recovered; re-read the status (which moves cache_changed_at)."""
        source = message.poll_run.source
        self._polling.discard(source)
        self._throttled_until.pop(source, None)
        self._failures.pop(source, None)
        if source in self._failing:
            self._failing.discard(source)
            self.notify(f"{source} is reachable again", title="Recovered", markup=False)
        self.refresh_status()

    def on_poll_failed(self, message: PollFailed) -> None:
        """Tell the admin once per failure run; the status bar shows it until it recovers."""
        self._polling.discard(message.source)
        failures = self._failures[message.source] = self._failures.get(message.source, 0) + 1
        backoff = min(self._interval_seconds(message.source) * 2 ** (failures - 1), MAX_BACKOFF)
        self._next_due[message.source] = time.monotonic() + backoff
        if message.retry_after is not None:
            self._throttled_until[message.source] = message.retry_after
            due = (message.retry_after - self.clock()).total_seconds()
            self._next_due[message.source] = time.monotonic() + max(due, backoff)
        if message.source not in self._failing:
            self._failing.add(message.source)
            self.notify(
                clean(message.reason, 300),
                title=f"{message.source} failed ({clean(message.kind, 30)})",
                severity="error",
                markup=False,
                timeout=10,
            )
        self.refresh_status()

    @on(Worker.StateChanged)
    def _worker_changed(self, event: Worker.StateChanged) -> None:
        """A bug or a SQLite error in a poll is shown, never fatal, never silent."""
        group = event.worker.group
        if event.state != WorkerState.ERROR:
            return
        if group == "collectors":
            # e.g. a credential the keyring cannot give: keep showing the cache, say why.
            self.collector_factory = None
            self.mode_note = self._describe_mode()
            self.notify(
                clean(str(event.worker.error), 300),
                title="Cannot start the collectors",
                severity="error",
                markup=False,
                timeout=30,
            )
            return
        if not group.startswith("poll:"):
            return
        source: Any = group.removeprefix("poll:")
        self.post_message(PollFailed(source, f"unexpected error: {event.worker.error!r}"))

    # --- status ----------------------------------------------------------------------

    def refresh_status(self) -> None:
        """Re-read every source's freshness and the newest poll id."""
        self._read_status(self.clock())

    @work(thread=True, exclusive=True, exit_on_error=False, group="status")
    def _read_status(self, now: datetime) -> None:
        freshness = self.cache.freshness(now, self.freshness_intervals)
        last_poll_id = self.cache.last_poll_id()
        if not get_current_worker().is_cancelled:
            self.post_message(self.StatusRead(freshness, last_poll_id))

    def on_scimwatch_app_status_read(self, message: StatusRead) -> None:
        """Update the status bar; announce new data to the screens."""
        self._freshness = message.freshness
        self._show_states()
        self._status_read.set()
        if message.last_poll_id != self._last_poll_id:
            # Also on the first read: an earlier status read may have been cancelled (the
            # reads are exclusive) after a screen had read the cache, and a poll since.
            self._last_poll_id = message.last_poll_id
            self.cache_changed_at = self.clock()

    def _show_states(self) -> None:
        now = self.clock()
        self.source_states = tuple(
            source_state(
                item,
                now,
                polling=item.source in self._polling,
                throttled_until=self._throttled_until.get(item.source),
            )
            for item in self._freshness or [no_data(s) for s in self.polling_intervals]
        )
        self.mode_note = self._describe_mode()

    def _describe_mode(self) -> str:
        if self.damaged:
            return "cache damaged: polling stopped (restart to rebuild)"
        if self.read_only:
            return f"read-only: {self.writer or 'a collector'} writes this cache"
        if not self.collectors:
            if self.collector_factory is not None:
                return "starting the collectors…"
            return "cache only: no sources configured"
        if self.paused:
            return "PAUSED (p resumes)"
        failing = [state for state in self.source_states if state.condition == "failing"]
        if failing and len(failing) == len(self.source_states):
            return "offline: showing the cache"
        return "live"

    # --- actions ---------------------------------------------------------------------

    def action_show(self, mode: str) -> None:
        """Switch to one of the seven screens."""
        self.switch_mode(mode)

    def action_refresh(self) -> None:
        """Poll every source now (unless read-only) and re-read the cache."""
        self.poll_due_sources(force=True)
        self.refresh_status()
        self.cache_changed_at = self.clock()

    def action_toggle_pause(self) -> None:
        """Pause or resume polling."""
        self.paused = not self.paused
        self.mode_note = self._describe_mode()
        self.notify("Polling paused" if self.paused else "Polling resumed", markup=False)

    def action_help(self) -> None:
        """Help for the screen on top."""
        from dashboard.screens.help import HelpModal

        if not isinstance(self.screen, HelpModal):
            self.push_screen(HelpModal(self.screen))

    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        """Textual's commands (themes, keys, screenshot), then every screen and action."""
        yield from super().get_system_commands(screen)
        yield from palette_commands(self, screen)


def make_app(
    cache: Cache | Callable[[], Cache],
    collectors: Sequence[Collector],
    polling_intervals: Mapping[SourceName, timedelta],
    **options: Any,
) -> ScimwatchApp:
    """The app, as the CLI, the tests and the screenshot script build it.

    `options` are ScimwatchApp's keyword arguments: clock, read_only, writer, poll_source,
    export_dir, freshness_intervals, on_exit.
    """
    return ScimwatchApp(cache, collectors, polling_intervals, **options)
