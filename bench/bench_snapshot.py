"""A Harness SCIM save at tenant scale: users, groups and one membership snapshot per group.

Run: .venv/bin/python -m bench.bench_snapshot [--users 100000] [--groups 1000]

The collector sends one `Snapshot` per group (members not listed again are deleted); the save
is timed twice on one cache (first fill, then the same listing again), as `collect` does it.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from store.cache import Cache
from store.models import Batch, HarnessGroup, HarnessGroupMember, HarnessUser, Record, Snapshot


def listing(users: int, groups: int) -> tuple[list[Record], list[Snapshot]]:
    records: list[Record] = [
        HarnessUser(id=f"u{i}", email=f"u{i}@example.com", in_scim=True) for i in range(users)
    ]
    records += [
        HarnessGroup(identifier=f"g{g}", in_scim=True, externally_managed=True)
        for g in range(groups)
    ]
    records += [
        HarnessGroupMember(group_identifier=f"g{i % groups}", user_id=f"u{i}") for i in range(users)
    ]
    snapshots = [
        Snapshot(table="harness_users", where={"in_scim": 1}, clear="in_scim"),
        Snapshot(table="harness_groups", where={"in_scim": 1}, clear="in_scim"),
    ]
    snapshots += [
        Snapshot(
            table="harness_group_members", where={"scope": "account", "group_identifier": f"g{g}"}
        )
        for g in range(groups)
    ]
    return records, snapshots


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--groups", type=int, default=1_000)
    args = parser.parse_args()
    now = datetime(2026, 11, 28, tzinfo=UTC)
    records, snapshots = listing(args.users, args.groups)
    with tempfile.TemporaryDirectory() as work, Cache.open_writer(Path(work) / "c.db") as cache:
        seconds = []
        for _ in range(2):
            start = time.perf_counter()
            cache.save_batch(
                Batch(source="harness.scim", records=records, snapshots=snapshots), now, now
            )
            seconds.append(time.perf_counter() - start)
        assert cache.count("harness_group_members") == args.users
    print(
        f"| harness.scim save, {args.users:,} users, {args.groups:,} groups (one snapshot per "
        f"group) | first {seconds[0]:.1f} s, again {seconds[1]:.1f} s |"
    )


if __name__ == "__main__":
    main()
