"""Render every screen of the dashboard from the demo scenario into screenshots/ (SVG and PNG).

Starts the simulated tenant (the `incident` scenario, as `scimwatch demo` does), polls every
source with the real collectors into a throwaway cache until each backfill is complete, then
renders each screen headless at a fixed size with the clock frozen at the end of the fill.

Run from the repository root:  .venv/bin/python scripts/screenshots.py
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from dashboard.app import ScimwatchApp, make_app  # noqa: E402
from dashboard.launch import build_collector_set, demo_settings  # noqa: E402
from dashboard.settings import source_intervals  # noqa: E402
from store.cache import Cache  # noqa: E402

SIZE = (140, 40)
OUTPUT = ROOT / "screenshots"

SHOTS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("overview", ()),
    ("cycles", ("2",)),
    ("cycle_events", ("2", "enter")),
    ("retries", ("3",)),
    ("groups", ("4",)),
    ("sso", ("5",)),
    ("events", ("6",)),
    ("event_detail", ("6", "f", "enter")),
    ("user_lookup", ("5", "enter")),
    ("user_lookup_matches", ("7", *"leave", "enter")),
    ("help", ("3", "question_mark")),
)
"""(file name, keys pressed from the overview)."""


async def fill_cache(
    cache: Cache, settings_env: dict[str, str], clock: Callable[[], datetime]
) -> None:
    """Poll every source until its backfill is complete."""
    from collectors.runner import poll_source

    with tempfile.TemporaryDirectory() as scratch:
        settings = demo_settings(settings_env, Path(scratch))
    collector_set = build_collector_set(settings, clock)
    try:
        for collector in collector_set.collectors:
            for _ in range(200):
                outcome = await poll_source(collector, cache, clock)
                if outcome.complete:
                    break
            print(f"  {collector.source}: done", flush=True)
    finally:
        await collector_set.aclose()


async def settle(app: ScimwatchApp, pilot: object) -> None:
    """Wait for the reads to land (the same loop as the tests)."""
    from tests.test_dashboard.helpers import settle as settle_app

    await settle_app(app, pilot)  # type: ignore[arg-type]


async def shoot(cache: Cache, now: datetime, intervals_scale: float) -> list[Path]:
    """One SVG per screen."""
    intervals = source_intervals(demo_settings({}, OUTPUT).polling)
    written: list[Path] = []
    for name, keys in SHOTS:
        app = make_app(
            cache,
            [],
            intervals,
            clock=lambda: now,
            freshness_intervals={s: i * intervals_scale for s, i in intervals.items()},
        )
        async with app.run_test(size=SIZE) as pilot:
            await settle(app, pilot)
            for key in keys:
                await pilot.press(key)
                await settle(app, pilot)
            path = Path(app.save_screenshot(f"{name}.svg", str(OUTPUT)))
        written.append(path)
        print(f"  {path.relative_to(ROOT)}", flush=True)
    return written


def to_png(svg: Path) -> Path:
    """The PNG beside an SVG."""
    import cairosvg

    png = svg.with_suffix(".png")
    cairosvg.svg2png(url=str(svg), write_to=str(png))
    return png


def main() -> None:
    """Fill a cache from the simulated tenant and render every screen."""
    from collectors.simulator import SimulatedTenant

    speed = 120.0
    OUTPUT.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="scimwatch-shots-") as directory:
        with SimulatedTenant(scenario="incident", seed=7, speed=speed) as tenant:
            clock = tenant.scenario.clock.now
            with Cache.open_writer(Path(directory) / "cache.db") as cache:
                print("Filling the cache from the simulated tenant…", flush=True)
                asyncio.run(fill_cache(cache, tenant.env(), clock))
                now = clock()
        with Cache.open_writer(Path(directory) / "cache.db") as cache:
            print("Rendering…", flush=True)
            svgs = asyncio.run(shoot(cache, now, speed))
    for svg in svgs:
        to_png(svg)
    print(f"{len(svgs)} screens written to {OUTPUT.relative_to(ROOT)}/")


if __name__ == "__main__":
    main()
