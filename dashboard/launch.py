"""Composition of the TUI: settings → cache, collectors and app; and `scimwatch demo`.

`run_tui` opens the cache as its writer and polls, or, when a headless collector already holds
the writer lock, as a reader that follows it. `run_demo` starts the simulated tenant in this
process and runs the very same composition against it, with a throwaway cache and config.

`scimwatch` itself starts through `run_dashboard`: the first frame (the overview, read from the
cache) is drawn before the settings (pydantic-settings), the health model and the cache's
writer (pydantic, sqlite-utils) are imported, from what `dashboard.config_file` reads of the
configuration and `store.cache_file` of the cache. They load right after it (`FastStart`), and
a configuration or cache the full load refuses ends the dashboard with the same error.
"""

from __future__ import annotations

import gc
import os
import tempfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime, timedelta
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from dashboard.config_file import (
    FirstPaintSettings,
    data_dir,
    first_paint_settings,
    polling_intervals,
)
from store.cache_file import (
    CacheError,
    CacheLocked,
    ensure_private_dir,
    prepared_by_this_version,
    take_writer_lock,
    writer_holder,
)

if TYPE_CHECKING:
    from concurrent.futures import Future

    from collectors.config import (
        CollectorSet,
        GraphConnection,
        HarnessConnection,
        PollingConfig,
    )
    from dashboard.app import ScimwatchApp
    from dashboard.settings import Settings
    from store.cache import Cache
    from store.overview import FirstRead

NOT_CONFIGURED = """\
scimwatch is not configured yet, and there is no cache to show.

  scimwatch config init     write a commented config file, then fill in [graph] and [harness]
  scimwatch config path     where that file lives
  scimwatch doctor          test both connections and every permission

Secrets go in the environment (SCIMWATCH_GRAPH__CLIENT_SECRET, SCIMWATCH_HARNESS__TOKEN) or the
OS keyring, not in the file. To see scimwatch working first, try:

  scimwatch demo            the full dashboard on a simulated tenant, no credentials needed
"""

DEMO_POLLING = {
    "SCIMWATCH_POLLING__PROVISIONING_SECONDS": "5",
    "SCIMWATCH_POLLING__JOBS_SECONDS": "5",
    "SCIMWATCH_POLLING__ASSIGNMENTS_SECONDS": "10",
    "SCIMWATCH_POLLING__DIRECTORY_SECONDS": "10",
    "SCIMWATCH_POLLING__HARNESS_SECONDS": "10",
}
"""The demo polls every few seconds: its simulated clock runs fast."""


class LaunchError(click.ClickException):
    """The TUI cannot start; the message says what to do."""


def graph_identified(settings: Settings) -> bool:
    """Whether the settings say who scimwatch signs in to Entra as.

    A client secret or certificate needs the app's tenant and client id. A managed identity
    needs the tenant; its client id only picks a user-assigned identity (empty: the host's
    system-assigned one). The Azure CLI signs in as whoever ran `az login`.
    """
    graph = settings.graph
    if graph.auth_kind == "azure_cli":
        return True
    if graph.auth_kind == "managed_identity":
        return bool(graph.tenant_id)
    return bool(graph.tenant_id and graph.client_id)


def graph_connection(settings: Settings) -> GraphConnection | None:
    """The Graph connection the settings describe, or None when Entra is not configured."""
    from collectors.config import GraphConnection

    graph = settings.graph
    if not (graph_identified(settings) and graph.nextgen_sp_id):
        return None
    login_url, graph_url = graph.hosts()
    return GraphConnection(
        tenant_id=graph.tenant_id,
        client_id=graph.client_id,
        auth_kind=graph.auth_kind,
        client_secret=settings.secret("graph", "client_secret"),
        certificate_path=graph.certificate_path,
        certificate_password=settings.secret("graph", "certificate_password"),
        login_url=login_url,
        graph_url=graph_url,
        nextgen_sp_id=graph.nextgen_sp_id,
        firstgen_sp_id=graph.firstgen_sp_id or None,
        ca_bundle=settings.ca_bundle,
    )


def harness_connection(settings: Settings) -> HarnessConnection | None:
    """The Harness connection the settings describe, or None when Harness is not configured."""
    from collectors.config import HarnessConnection

    token = settings.secret("harness", "token")
    if not settings.harness.account_id or token is None:
        return None
    return HarnessConnection(
        account_id=settings.harness.account_id,
        base_url=settings.harness.base_url,
        token=token,
        ca_bundle=settings.ca_bundle,
    )


def open_cache(path: Path) -> tuple[Cache, str]:
    """The cache as its writer, or as a reader when another process writes it (and who).

    The writer's integrity check runs after the first paint (ScimwatchApp.check_cache).
    """
    from store.cache import Cache

    holder = writer_holder(path)
    if holder is None:
        try:
            return Cache.open_writer(path, quick_check=False), ""
        except CacheLocked as locked:
            holder = locked.holder
        except CacheError as error:
            raise LaunchError(str(error)) from error
    try:
        return Cache.open_reader(path), holder
    except CacheError as error:
        raise LaunchError(str(error)) from error


def polling_config(settings: Settings) -> PollingConfig:
    """The collectors' polling configuration from the settings."""
    from collectors.config import PollingConfig
    from dashboard.settings import source_intervals

    return PollingConfig(
        intervals=source_intervals(settings.polling),
        overlap=timedelta(minutes=settings.polling.overlap_minutes),
        retention=timedelta(days=settings.polling.backfill_days),
    )


def build_collector_set(
    settings: Settings, clock: Callable[[], datetime] | None = None
) -> CollectorSet:
    """The collectors of every configured service, with the polling settings applied."""
    from collectors.config import build_collectors

    return build_collectors(
        graph_connection(settings),
        harness_connection(settings),
        polling_config(settings),
        clock=clock,
    )


def export_directory() -> Path:
    """Where ctrl+s writes: the current directory, else (read-only there) the data dir."""
    here = Path.cwd()
    if os.access(here, os.W_OK):
        return here
    exports = data_dir() / "exports"
    ensure_private_dir(exports)
    return exports


def run_app(
    settings: Settings,
    *,
    clock: Callable[[], datetime] | None = None,
    freshness_scale: float = 1.0,
) -> None:
    """Open the cache, build the collectors (unless only reading) and run the app.

    The first read of the cache starts in a thread before Textual is imported
    (`dashboard.first_read`): the overview shows it in its first frame.
    """
    from dashboard.first_read import start_first_read
    from dashboard.settings import source_intervals
    from dashboard.timefmt import utc_now

    cache, writer = open_cache(settings.resolved_cache_path())
    clock = clock or utc_now
    intervals = source_intervals(settings.polling)
    freshness_intervals = {s: i * freshness_scale for s, i in intervals.items()}
    first_read = start_first_read(cache.path, clock(), freshness_intervals)
    from dashboard.app import make_app

    app = make_app(
        cache,
        [],
        intervals,
        clock=clock,
        read_only=bool(writer),
        writer=writer,
        freshness_intervals=freshness_intervals,
        # Built in a thread once the app shows the cache (a reader never builds them).
        collector_factory=partial(build_collector_set, settings, clock),
        check_cache=not writer,
        export_dir=export_directory(),
        first_read=first_read,
    )
    try:
        app.run()
    finally:
        cache.close()


def is_configured(settings: Settings) -> bool:
    """Whether at least one service is configured enough to poll."""
    graph = settings.graph
    return bool((graph_identified(settings) and graph.nextgen_sp_id) or settings.harness.account_id)


def run_tui(settings: Settings) -> None:
    """`scimwatch`: the dashboard on the profile's cache, polling when this process may write.

    Raises:
        LaunchError: nothing is configured and there is no cache to show.
    """
    if not is_configured(settings) and not settings.resolved_cache_path().exists():
        raise LaunchError(NOT_CONFIGURED)
    run_app(settings)


def run_dashboard(profile: str | None) -> None:
    """`scimwatch`: `run_tui`, with the first frame drawn before the full settings load.

    Garbage collection is off until the first paint (the app turns it back on): start-up
    makes objects that live as long as the app, and every pass over them was wasted time.

    Raises:
        ConfigError: the configuration is wrong (found before or after the first frame).
        LaunchError: nothing is configured and there is no cache to show, or the cache
            cannot be opened.
    """
    gc.disable()
    try:
        fast = FastStart.begin(profile)
        if fast is None:
            from dashboard.settings import load_settings

            run_tui(load_settings(profile))
            return
        app = fast.build_app()
        try:
            app.run()
        finally:
            fast.close()
        if app.start_error is not None:
            raise app.start_error
    finally:
        gc.enable()


class FastStart:
    """The TUI started from `first_paint_settings`, completed after its first frame.

    The full settings load then, the cache opens (its writer lock was taken before the first
    frame) and the collectors are built from those settings.
    """

    def __init__(
        self, profile: str | None, quick: FirstPaintSettings, lock: int | None, writer: str
    ) -> None:
        """Use `FastStart.begin`."""
        self.profile = profile
        self.quick = quick
        self.intervals = polling_intervals(quick.polling_seconds)
        self.lock = lock
        """The writer lock, until the cache takes it over (None when another process writes)."""
        self.writer = writer
        """Who writes the cache when this process only reads it."""
        self.settings: Settings | None = None
        self.cache: Cache | None = None

    @classmethod
    def begin(cls, profile: str | None) -> FastStart | None:
        """Take the writer lock (or note who holds it); None when the full load must run first.

        That is for settings `first_paint_settings` cannot tell, and for a cache to create or
        migrate (none yet, another version's, one found damaged).

        Raises:
            LaunchError: the writer lock cannot be taken (a symlink, no permission).
        """
        quick = first_paint_settings(profile)
        if quick is None or not quick.cache_path.is_file():
            return None
        holder = writer_holder(quick.cache_path)
        if holder is not None:
            return cls(profile, quick, None, holder)
        if not prepared_by_this_version(quick.cache_path):
            return None
        try:
            lock = take_writer_lock(quick.cache_path)
        except CacheLocked as locked:
            return cls(profile, quick, None, locked.holder)
        except CacheError as error:
            raise LaunchError(str(error)) from error
        return cls(profile, quick, lock, "")

    def start_first_read(self, clock: Callable[[], datetime]) -> Future[FirstRead]:
        """The overview's first read of the cache, in a thread (see `dashboard.first_read`)."""
        from dashboard.first_read import start_first_read

        return start_first_read(self.quick.cache_path, clock(), self.intervals)

    def build_app(self, **options: Any) -> ScimwatchApp:
        """The app on the first read, opening the cache after its first paint.

        `options` are `ScimwatchApp`'s keyword arguments, over those `run_app` gives.
        """
        from dashboard.timefmt import utc_now

        clock = options.pop("clock", utc_now)
        first_read = self.start_first_read(clock)
        from dashboard.app import make_app

        return make_app(
            self.open_cache,
            [],
            self.intervals,
            **{
                "clock": clock,
                "read_only": bool(self.writer),
                "writer": self.writer,
                "collector_factory": self.build_collectors,
                "check_cache": not self.writer,
                "export_dir": export_directory(),
                "first_read": first_read,
                **options,
            },
        )

    def open_cache(self) -> Cache:
        """Load the full settings (they must agree with the first frame's), open the cache.

        Raises:
            ConfigError: the full load refuses the configuration.
            LaunchError: it disagrees with what the first frame was drawn from (the file
                changed meanwhile), or the cache cannot be opened.
        """
        from dashboard.settings import load_settings, source_intervals
        from store.cache import Cache

        settings = load_settings(self.profile)
        if (
            settings.resolved_cache_path() != self.quick.cache_path
            or source_intervals(settings.polling) != self.intervals
            or is_configured(settings) != self.quick.configured
        ):
            raise LaunchError("the configuration changed while scimwatch started: start it again")
        self.settings = settings
        lock, self.lock = self.lock, None
        try:
            if lock is None:
                self.cache = Cache.open_reader(self.quick.cache_path)
            else:  # the cache closes the lock, even when it cannot open
                self.cache = Cache.open_writer(self.quick.cache_path, quick_check=False, lock=lock)
        except CacheError as error:
            raise LaunchError(str(error)) from error
        return self.cache

    def build_collectors(self) -> CollectorSet:
        """The collectors of the full settings (`open_cache` loaded them)."""
        assert self.settings is not None, "the collectors are built once the cache is open"
        return build_collector_set(self.settings)

    def close(self) -> None:
        """Close the cache, or release the writer lock if it was never opened."""
        if self.cache is not None:
            self.cache.close()
        elif self.lock is not None:
            os.close(self.lock)
            self.lock = None


@contextmanager
def _environment(values: Mapping[str, str]) -> Iterator[None]:
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def demo_settings(env: Mapping[str, str], cache_dir: Path) -> Settings:
    """Settings that point at a simulated tenant, ignoring the user's config file and keyring."""
    from dashboard.settings import Settings

    values = {
        **env,
        **DEMO_POLLING,
        "SCIMWATCH_CACHE_PATH": str(cache_dir / "cache.db"),
        "SCIMWATCH_USE_KEYRING": "false",
    }
    with _environment(values):
        return Settings()


def run_demo(scenario: str, speed: float, seed: int) -> None:
    """`scimwatch demo`: the simulated tenant in-process, real collectors, a throwaway cache."""
    from collectors.simulator import SCENARIOS, SimulatedTenant

    if scenario not in SCENARIOS:
        raise LaunchError(f"no scenario {scenario!r}; try one of: {', '.join(sorted(SCENARIOS))}")
    click.echo(f"Starting the simulated tenant ({scenario}, seed {seed}, {speed:g}x)…")
    with (
        tempfile.TemporaryDirectory(prefix="scimwatch-demo-") as cache_dir,
        SimulatedTenant(scenario=scenario, seed=seed, speed=speed) as tenant,
    ):
        settings = demo_settings(tenant.env(), Path(cache_dir))
        run_app(settings, clock=tenant.scenario.clock.now, freshness_scale=max(speed, 1.0))
