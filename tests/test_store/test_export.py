"""`export`: a consistent private SQLite snapshot with the health answers, and one view."""

from __future__ import annotations

import csv
import json
import sqlite3
import stat
import threading
from pathlib import Path

import pytest
from click.testing import CliRunner

from dashboard.cli import main
from store.cache import Cache
from store.export import ExportError, export_sqlite, view_rows, write_rows
from tests.builders import NOW, Tenant


@pytest.fixture
def tenant(tmp_path: Path):
    with Cache.open_writer(tmp_path / "cache.db") as cache:
        built = Tenant(cache)
        built.job()
        built.user("user1", "user1@example.com")
        built.user("user2", "user_2@example.com")
        built.assign("user1")
        built.assign("user2")
        built.assign("user1", app="firstgen")
        built.event("bob", cycle="c1", minutes_ago=30, status="failure", error_code="X")
        built.event("=cmd|' /C calc'!A0", cycle="c1", minutes_ago=20, name='=HYPERLINK("x")')
        yield built


def test_sqlite_export_holds_tables_and_health_answers(tenant, tmp_path):
    out = export_sqlite(tenant.cache, tmp_path / "out.db", NOW)
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    conn = sqlite3.connect(out)
    assert conn.execute("SELECT count(*) FROM provisioning_events").fetchone() == (2,)
    assert conn.execute("SELECT source_id FROM health_pending_retries").fetchall() == [("bob",)]
    assert conn.execute("SELECT email FROM health_sso_conflicts").fetchall() == [
        ("user_2@example.com",)
    ]
    assert conn.execute("SELECT state FROM health_jobs").fetchall() == [("healthy",)]
    assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    conn.close()
    assert not list(tmp_path.glob(".out.db.*"))


def test_export_refuses_to_overwrite_or_follow_a_symlink(tenant, tmp_path):
    existing = tmp_path / "exists.db"
    existing.write_text("precious")
    with pytest.raises(ExportError, match="--force"):
        export_sqlite(tenant.cache, existing, NOW)
    assert existing.read_text() == "precious"
    target = tmp_path / "target"
    link = tmp_path / "link.db"
    link.symlink_to(target)
    with pytest.raises(ExportError, match="symbolic link"):
        export_sqlite(tenant.cache, link, NOW, overwrite=True)
    assert not target.exists()
    export_sqlite(tenant.cache, existing, NOW, overwrite=True)
    assert sqlite3.connect(existing).execute("SELECT count(*) FROM cycles").fetchone() == (1,)


def test_export_is_consistent_while_a_writer_keeps_writing(tenant, tmp_path):
    """Every export holds whole batches only: cycle counts always equal event counts."""
    stop = threading.Event()

    def keep_writing() -> None:
        index = 0
        while not stop.is_set():
            index += 1
            tenant.event(f"w{index}", cycle="busy", minutes_ago=1)

    writer = threading.Thread(target=keep_writing)
    writer.start()
    try:
        for attempt in range(5):
            out = export_sqlite(tenant.cache, tmp_path / f"snap{attempt}.db", NOW)
            conn = sqlite3.connect(out)
            events = conn.execute(
                "SELECT count(*) FROM provisioning_events WHERE cycle_id = 'busy'"
            ).fetchone()[0]
            counted = conn.execute(
                "SELECT coalesce(sum(events), 0) FROM cycles WHERE cycle_id = 'busy'"
            ).fetchone()[0]
            conn.close()
            assert events == counted
    finally:
        stop.set()
        writer.join()


def test_csv_export_of_a_view_defuses_formulas(tenant, tmp_path):
    rows = view_rows(tenant.cache, "provisioning_events", NOW)
    out = write_rows(rows, tmp_path / "events.csv", "csv")
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    with out.open(newline="") as handle:
        read = list(csv.DictReader(handle))
    names = {row["source_name"] for row in read}
    assert '\'=HYPERLINK("x")' in names
    assert "detail" not in read[0]


def test_json_and_ndjson_exports_of_health_views(tenant, tmp_path):
    rows = view_rows(tenant.cache, "sso_conflicts", NOW)
    as_json = json.loads(write_rows(rows, tmp_path / "s.json", "json").read_text())
    assert [item["kind"] for item in as_json] == ["firstgen_unassigned"]
    ndjson = write_rows(rows, tmp_path / "s.ndjson", "ndjson").read_text().splitlines()
    assert [json.loads(line)["email"] for line in ndjson] == ["user_2@example.com"]


def test_since_filters_by_the_view_time_column(tenant):
    from datetime import timedelta

    rows = view_rows(tenant.cache, "provisioning_events", NOW, NOW - timedelta(minutes=25))
    assert len(rows) == 1


def test_unknown_view_names_the_known_ones(tenant):
    with pytest.raises(ExportError, match="pending_retries"):
        view_rows(tenant.cache, "sqlite_master", NOW)


def test_export_command(tenant, tmp_path):
    env = {"SCIMWATCH_CACHE_PATH": str(tmp_path / "cache.db")}
    runner = CliRunner()
    result = runner.invoke(main, ["export", str(tmp_path / "snap.db")], env=env)
    assert result.exit_code == 0, result.output
    assert (tmp_path / "snap.db").exists()
    again = runner.invoke(main, ["export", str(tmp_path / "snap.db")], env=env)
    assert again.exit_code == 2
    assert "--force" in again.output
    csv_out = runner.invoke(
        main,
        ["export", str(tmp_path / "r.csv"), "--format", "csv", "--view", "pending_retries"],
        env=env,
    )
    assert csv_out.exit_code == 0, csv_out.output
    assert "bob" in (tmp_path / "r.csv").read_text()
    missing_view = runner.invoke(
        main, ["export", str(tmp_path / "x.csv"), "--format", "csv"], env=env
    )
    assert missing_view.exit_code == 2


def test_an_export_removes_what_a_killed_export_left(tenant, tmp_path):
    dead = tmp_path / ".snap.db.99999999.partial"
    dead.write_text("half")
    export_sqlite(tenant.cache, tmp_path / "snap.db", NOW)
    assert not dead.exists()
    assert (tmp_path / "snap.db").exists()
