"""The `scimwatch` command line: the composition root, the only place that reads settings.

Heavy libraries (textual, httpx, azure-identity, pydantic) are imported inside the commands
that need them, so `scimwatch --help` stays fast.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import click

if TYPE_CHECKING:
    from datetime import datetime

    from dashboard.settings import Settings

EXIT_NOT_READY = 2
"""Exit code of a command whose capability is not built yet, and of usage/config errors."""


def _fail(message: str, code: int = EXIT_NOT_READY) -> NoReturn:
    click.echo(f"scimwatch: {message}", err=True)
    sys.exit(code)


def _settings(ctx: click.Context, exit_code: int = EXIT_NOT_READY) -> Settings:
    from dashboard.settings import ConfigError, load_settings

    profile = ctx.find_root().params.get("profile")
    try:
        return load_settings(profile)
    except ConfigError as error:
        _fail(str(error), exit_code)


@click.group(invoke_without_command=True, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--profile",
    metavar="NAME",
    help="Tenant profile from the config file ([profiles.NAME]); default: $SCIMWATCH_PROFILE.",
)
@click.version_option(package_name="scimwatch")
@click.pass_context
def main(ctx: click.Context, profile: str | None) -> None:
    """Watch SCIM provisioning from Microsoft Entra ID into Harness.

    Without a command, opens the dashboard on the cache of the selected profile.
    """
    if ctx.invoked_subcommand is None:
        from dashboard.config_file import ConfigError
        from dashboard.launch import run_dashboard

        try:
            run_dashboard(profile)
        except ConfigError as error:
            _fail(str(error))


@main.command()
@click.option("--scenario", default="incident", show_default=True, help="Simulated tenant.")
@click.option("--speed", default=120.0, show_default=True, help="Simulated minutes per minute.")
@click.option("--seed", default=7, show_default=True, help="Seed of the simulated tenant.")
def demo(scenario: str, speed: float, seed: int) -> None:
    """Run the full dashboard on a built-in simulated tenant (no credentials needed)."""
    from dashboard.launch import run_demo

    run_demo(scenario, speed, seed)


@main.command()
@click.option("--once", is_flag=True, help="Poll every source once and exit (for cron).")
@click.option("--log-format", type=click.Choice(["text", "json"]), default="text")
@click.option("--metrics-port", type=int, help="Serve Prometheus metrics on this port.")
@click.option(
    "--metrics-host", default="127.0.0.1", show_default=True, help="Address to serve metrics on."
)
@click.option(
    "--metrics-file",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Write node-exporter textfile metrics here (refreshed every 30 s).",
)
@click.pass_context
def collect(
    ctx: click.Context,
    once: bool,
    log_format: str,
    metrics_port: int | None,
    metrics_host: str,
    metrics_file: Path | None,
) -> None:
    """Keep the cache fresh without a UI (a daemon, or --once from cron).

    Takes the cache's writer lock; logs structured lines to stderr without secrets; stops
    cleanly on SIGTERM/SIGINT. With webhooks configured, announces each state change.
    """
    from dashboard.headless import run_collect_command

    status = run_collect_command(
        _settings(ctx),
        once=once,
        log_format=log_format,  # type: ignore[arg-type]
        metrics_port=metrics_port,
        metrics_host=metrics_host,
        metrics_file=metrics_file,
    )
    sys.exit(status)


@main.command()
@click.option(
    "--json", "as_json", is_flag=True, help="One JSON document instead of the plugin line."
)
@click.option(
    "--failing-critical-minutes",
    default=60,
    show_default=True,
    help="A source failing this long is CRITICAL (shorter: WARNING).",
)
@click.option(
    "--escalated-critical",
    default=25,
    show_default=True,
    help="Escalated failures (2+ failed cycles) that make it CRITICAL (1+: WARNING).",
)
@click.pass_context
def check(
    ctx: click.Context, as_json: bool, failing_critical_minutes: int, escalated_critical: int
) -> None:
    """Health check for monitoring: exit 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.

    Prints one Nagios plugin line with performance data; see the README for the rules.
    """
    import json
    from datetime import UTC, datetime, timedelta

    from dashboard.settings import source_intervals
    from store.cache import Cache, CacheError
    from store.check import Status, Thresholds, evaluate

    settings = _settings(ctx, exit_code=Status.UNKNOWN)
    try:
        cache = Cache.open_reader(settings.resolved_cache_path())
    except CacheError as error:
        click.echo(f"SCIMWATCH UNKNOWN - {error}")
        sys.exit(Status.UNKNOWN)
    now = datetime.now(UTC)
    thresholds = Thresholds(
        source_failing_critical=timedelta(minutes=failing_critical_minutes),
        escalated_critical=escalated_critical,
    )
    try:
        freshness = cache.freshness(now, source_intervals(settings.polling))
        with cache.reading() as db:
            result = evaluate(db, now, freshness, thresholds)
    except Exception as error:  # a monitoring check must answer UNKNOWN, never crash
        click.echo(f"SCIMWATCH UNKNOWN - cannot read the cache: {type(error).__name__}: {error}")
        sys.exit(Status.UNKNOWN)
    if as_json:
        click.echo(json.dumps(result.model_dump(mode="json"), indent=2))
    else:
        click.echo(result.summary_line())
        for finding in result.findings:
            click.echo(f"{finding.status.name}: {finding.message}")
    sys.exit(result.status)


@main.command()
@click.argument("path", type=click.Path(path_type=Path))
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["sqlite", "csv", "json", "ndjson"]),
    default="sqlite",
    show_default=True,
)
@click.option("--view", help="With csv/json/ndjson: the view or table to export.")
@click.option("--since", help="Only rows at or after this ISO 8601 time (events, cycles, polls).")
@click.option("--force", is_flag=True, help="Replace PATH if it exists (never a symlink).")
@click.pass_context
def export(
    ctx: click.Context, path: Path, fmt: str, view: str | None, since: str | None, force: bool
) -> None:
    """Write a consistent snapshot of the cache to PATH for ad-hoc SQL.

    The SQLite snapshot holds every cache table plus the health answers as health_* tables.
    """
    from datetime import UTC, datetime

    from store.export import (
        ExportError,
        ensure_readable_cache,
        export_sqlite,
        view_rows,
        write_rows,
    )

    settings = _settings(ctx)
    now = datetime.now(UTC)
    try:
        cache = ensure_readable_cache(settings.resolved_cache_path())
        if fmt == "sqlite":
            if view or since:
                _fail("--view and --since go with --format csv, json or ndjson")
            written = export_sqlite(cache, path, now, overwrite=force)
        else:
            if not view:
                _fail("--format csv/json/ndjson needs --view NAME")
            rows = view_rows(cache, view, now, _parse_since(since))
            written = write_rows(rows, path, fmt, overwrite=force)  # type: ignore[arg-type]
    except ExportError as error:
        _fail(str(error))
    click.echo(f"wrote {written}")


def _parse_since(since: str | None) -> datetime | None:
    from datetime import UTC, datetime

    if since is None:
        return None
    try:
        moment = datetime.fromisoformat(since.replace("Z", "+00:00"))
    except ValueError:
        _fail(f"--since {since!r} is not an ISO 8601 time")
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@main.command()
@click.pass_context
def doctor(ctx: click.Context) -> None:
    """Test both connections and every permission; say exactly what to fix.

    Exit 0 when every check passes, 1 otherwise.
    """
    from dashboard.headless import run_doctor_command

    sys.exit(run_doctor_command(_settings(ctx)))


SCENARIO_NAMES = ("healthy", "incident", "quarantine", "large")
"""The simulated tenant's scenarios (kept here so --help does not import the simulator)."""


@main.command()
@click.option(
    "--scenario", type=click.Choice(SCENARIO_NAMES), default="incident", show_default=True
)
@click.option("--port", default=0, show_default=True, help="Graph port (Harness: port + 1).")
@click.option("--speed", default=120.0, show_default=True, help="Simulated minutes per minute.")
@click.option("--seed", default=7, show_default=True)
def simulate(scenario: str, port: int, speed: float, seed: int) -> None:
    """Serve the simulated Entra + Harness tenant on 127.0.0.1 over HTTPS.

    Prints the environment that points scimwatch at it (CA bundle included); Ctrl+C stops it.
    """
    import signal

    from collectors.simulator import run_simulator

    def stop(signum: int, frame: object) -> None:
        raise KeyboardInterrupt  # SIGTERM stops it as cleanly as Ctrl+C (temp CA removed)

    signal.signal(signal.SIGTERM, stop)
    try:
        run_simulator(scenario, port, speed, seed, click.echo)  # type: ignore[arg-type]
    except KeyboardInterrupt:
        click.echo("# simulator stopped")


@main.command()
@click.pass_context
def paths(ctx: click.Context) -> None:
    """Print where the config, the cache and the logs live."""
    from dashboard.settings import config_file_path, data_dir, log_dir

    settings = _settings(ctx)
    click.echo(f"config  {config_file_path()}")
    click.echo(f"cache   {settings.resolved_cache_path()}")
    click.echo(f"data    {data_dir()}")
    click.echo(f"logs    {log_dir()}")


@main.group()
def config() -> None:
    """Show, locate or create the configuration file."""


@config.command("path")
def config_path() -> None:
    """Print the config file's path."""
    from dashboard.settings import config_file_path

    click.echo(str(config_file_path()))


@config.command("show")
@click.pass_context
def config_show(ctx: click.Context) -> None:
    """Print the effective settings of the profile, secrets masked."""
    import json

    from dashboard.settings import masked

    settings = _settings(ctx)
    click.echo(json.dumps(masked(settings), indent=2, default=str))


@config.command("init")
@click.option("--force", is_flag=True, help="Overwrite an existing file.")
def config_init(force: bool) -> None:
    """Write a commented template config file (mode 0600)."""
    from dashboard.settings import CONFIG_TEMPLATE, config_file_path

    path = config_file_path()
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    flags = os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | (os.O_TRUNC if force else os.O_EXCL)
    try:
        fd = os.open(path, flags, 0o600)
    except FileExistsError:
        _fail(f"{path} already exists; use --force to overwrite it")
    except OSError as error:
        _fail(f"cannot write {path}: {error.strerror}")
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        os.fchmod(handle.fileno(), 0o600)
        handle.write(CONFIG_TEMPLATE)
    click.echo(f"wrote {path}")
