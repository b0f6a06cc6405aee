"""Rate-limit use: a backfill against the simulator enforcing Graph's reporting limit.

Run: .venv/bin/python -m bench.bench_ratelimit [--days 0.35] [--rounds 1]

The simulator (`large`, own process) refuses more than 5 requests per 10 s per app with 429 +
Retry-After, as Graph does; scimwatch's provisioning collector (bench.e2e_scimwatch, default
pacing 5/10 s, $top=500) backfills `--days` of events (0.35 days = 15,120 events = 31 pages).
The most the limit allows is 5 pages of 500 per 10 s = 250 events/s (plus the first burst of 5).
Figures: events/s over the whole backfill as a share of 250/s, and requests the simulator
refused (throttled).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

from bench.bench_ingest import client, write_info
from bench.simproc import SimulatorProcess

ALLOWED_PER_SECOND = 5 / 10 * 500


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--days", type=float, default=0.35)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument(
        "--client-rate", default="5/10", help="the collector's pacing (what-if runs)"
    )
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="scimwatch-bench-"))
    shares, throttled = [], []
    with SimulatorProcess("large", rate_limits=True) as sim:
        info = write_info(sim, work)
        for index in range(args.rounds):
            before = sim.throttled()
            result = client(
                "bench.e2e_scimwatch",
                info,
                work / f"r{index}.db",
                args.days,
                "--rate",
                args.client_rate,
            )
            refused = sim.throttled() - before
            rate = result["events"] / result["wall"]
            shares.append(rate / ALLOWED_PER_SECOND)
            throttled.append(refused)
            print(
                f"  round {index + 1}: {result['events']:,} events in {result['wall']:.1f} s = {rate:.0f}/s ({shares[-1]:.0%} of 250/s), throttled {refused}",
                flush=True,
            )
            # let the simulator's 10 s window drain so rounds do not throttle each other
            import time

            time.sleep(10)
    print(
        f"| rate-limit use, 5 req/10 s | {statistics.median(shares):.0%} of the allowed 250 events/s ({min(shares):.0%}-{max(shares):.0%}); throttled requests: {max(throttled)} |"
    )


if __name__ == "__main__":
    main()
