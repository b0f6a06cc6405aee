"""T-V1, T-V3, T-Q1, T-Q3: hostile API data through the Graph parser and into the cache.

- Any JSON value beside good items: parsing never raises, every good item is kept, each bad
  one is counted as skipped (never silently lost, never losing its page).
- A unicode corpus (lone surrogates, BOM, bidi, ZWJ, NUL, 1 MB) is stored and read back.
- Filter text with SQL and LIKE metacharacters matches literally and changes no schema.
- Hostile JSON keys add no column and break nothing.
"""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from collectors import graph
from collectors.wire import parse_items
from store import health
from store.cache import Cache
from store.models import Batch

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "graph"
GOOD = [
    item
    for item in json.loads((FIXTURES / "provisioning_mixed.json").read_text())["value"]
    if parse_items([item], graph._ProvisioningEvent, graph._event_record, "e")[1] == 0
]
NOW = datetime(2024, 5, 4, 12, tzinfo=UTC)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)
FIELDS = [
    "id",
    "activityDateTime",
    "cycleId",
    "jobId",
    "action",
    "provisioningStatusInfo",
    "sourceIdentity",
    "targetIdentity",
    "servicePrincipal",
    "provisioningSteps",
    "modifiedProperties",
    "changeId",
    "durationInMilliseconds",
]


@st.composite
def mutated(draw: st.DrawFn) -> Any:
    """A good item with one field replaced, removed or the whole item replaced."""
    item = copy.deepcopy(draw(st.sampled_from(GOOD)))
    how = draw(st.sampled_from(["replace", "remove", "whole"]))
    if how == "whole":
        return draw(json_values)
    field = draw(st.sampled_from(FIELDS))
    if how == "remove":
        item.pop(field, None)
    else:
        item[field] = draw(json_values)
    return item


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(bad=st.lists(mutated(), min_size=1, max_size=5), position=st.integers(0, 5))
def test_bad_items_never_raise_and_never_cost_a_good_item(bad, position):
    good = copy.deepcopy(GOOD)
    page = [*bad[:position], *good, *bad[position:]]
    records, skipped = parse_items(page, graph._ProvisioningEvent, graph._event_record, "e")
    assert len(records) + skipped == len(page)
    assert {r.id for r in records} >= {item["id"] for item in good}


CORPUS = [
    "\ufeffBOM",
    "admin\u202egnp.exe",
    "ad\u200bmin",
    "👩\u200d👩\u200d👧",
    "\U0001f600" * 50,
    "nul\x00byte",
    "\x1b]2;PWNED\x1b\\",
    "\x9b31m",
    "a\rb",
    "Glob\u0430l Admin",
    "x" * 1_000_000,
    "",
    " ",
    "'; DROP TABLE provisioning_events; --",
    "[/]",
    "%_\\",
]


def save_names(path: Path, names: list[str]) -> dict[str, str]:
    items = []
    for number, text in enumerate(names):
        item = copy.deepcopy(GOOD[0])
        item["id"] = f"corpus-{number}"
        item["sourceIdentity"]["displayName"] = text
        items.append(item)
    records, skipped = parse_items(items, graph._ProvisioningEvent, graph._event_record, "e")
    assert skipped == 0
    with Cache.open_writer(path) as cache:
        cache.save_batch(Batch(source="graph.provisioning", records=records), NOW, NOW)
        with cache.reading() as db:
            return {e.id: e.source_name for e in health.recent_events(db, limit=100)}


def test_a_unicode_corpus_is_stored_and_read_back(tmp_path):
    stored = save_names(tmp_path / "cache.db", CORPUS)
    assert len(stored) == len(CORPUS)
    for number, text in enumerate(CORPUS):
        if text and len(text) < 1000:
            assert stored[f"corpus-{number}"] == text  # stored raw; sanitised only for display


def test_a_lone_surrogate_does_not_fail_the_batch(tmp_path):
    """A lone surrogate (valid JSON, invalid UTF-8) is stored as U+FFFD, not a poison item."""
    stored = save_names(tmp_path / "cache.db", ["\ud800lone", "fine"])
    assert stored == {"corpus-0": "\ufffdlone", "corpus-1": "fine"}


@pytest.mark.parametrize(
    "needle",
    ["a' OR '1'='1", '"; DROP TABLE provisioning_events; --', "%", "_", "\\", "NOT OR NEAR(", "'"],
)
def test_filter_text_is_literal_and_changes_no_schema(tmp_path, needle):
    items = []
    for number, name in enumerate(["alice", "bob", f"has {needle} inside"]):
        item = copy.deepcopy(GOOD[0])
        item["id"] = f"f-{number}"
        item["sourceIdentity"]["displayName"] = name
        items.append(item)
    records, _ = parse_items(items, graph._ProvisioningEvent, graph._event_record, "e")
    with Cache.open_writer(tmp_path / "cache.db") as cache:
        cache.save_batch(Batch(source="graph.provisioning", records=records), NOW, NOW)
        with cache.reading() as db:
            schema = list(db.query("SELECT name, sql FROM sqlite_master"))
            found = [e.id for e in health.recent_events(db, text=needle)]
            assert schema == list(db.query("SELECT name, sql FROM sqlite_master"))
    assert found == ["f-2"]  # only the literal match


def test_hostile_json_keys_add_no_column(tmp_path):
    item = copy.deepcopy(GOOD[0])
    item["id"] = "keys"
    item.update({f'x"]; DROP TABLE t; --{n}': n for n in range(3000)})
    item["sourceIdentity"]["__proto__"] = {"constructor": 1}
    records, skipped = parse_items([item], graph._ProvisioningEvent, graph._event_record, "e")
    assert skipped == 0
    with Cache.open_writer(tmp_path / "cache.db") as cache:
        with cache.reading() as db:
            before = [row["name"] for row in db.query("PRAGMA table_info(provisioning_events)")]
        cache.save_batch(Batch(source="graph.provisioning", records=records), NOW, NOW)
        with cache.reading() as db:
            after = [row["name"] for row in db.query("PRAGMA table_info(provisioning_events)")]
        assert cache.count("provisioning_events") == 1
    assert after == before
