"""The Events text filter gives exactly the events whose own columns contain the text.

`recent_events(text=...)` keeps an event when its own name, source id, target id, error code
or cycle id contains the text (ASCII case folded, as LIKE), whichever way it finds them: among
the newest events, or through the objects and cycles that carried the text, a few sources
at a time. `expected` applies that rule to every event in Python; the tests compare the
filter with it on a tenant built to reach each path and edge: renamed objects, error codes
that changed, an object in two jobs, events without a source, ties in time, events saved
out of order, many matching objects, hostile texts, the status filter and keyset paging.
"""

from __future__ import annotations

import random
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from store import health
from store.cache import Cache
from store.derived import rebuild_derived_state, spaced
from store.models import Batch, ProvisioningEvent, iso_utc

T0 = datetime(2026, 11, 1, tzinfo=UTC)
JOBS = ("job-nextgen", "job-firstgen")
HOSTILE_NAMES = (
    "100% legit",
    "under_score",
    "O'Brien",
    'quo"ted',
    "back\\slash",
    "Émile",
    "日本語ユーザー",
    "smile 🙂",
    "'; DROP TABLE provisioning_events; --",
    'NEAR("a" "b") AND c*',
    "tab\tname",
    "ESCAPE '\\'",
)
TEXTS = (
    *("user12348"[:end] for end in range(1, 10)),
    "USER1",
    "@contoso",
    "rename",
    "before-rename",
    "after-rename1",
    "E_OLD",
    "E_NEW",
    "e_",
    "cyc-0",
    "cyc-07",
    "obj-0",
    "obj-1",
    "tgt-",
    "tgt-3",
    "tgt-old",
    "%",
    "_",
    "\\",
    "'",
    '"',
    '""',
    "100%",
    "r_s",
    "É",
    "émile",
    "日本",
    "🙂",
    "\t",
    "ESCAPE '",
    "NEAR",
    '"a" "b"',
    "AND",
    "c*",
    "*",
    "a OR b",
    "nobody",
    "nothing-matches-this",
    "zz",
    "z",
)


def _ascii_lower(value: str) -> str:
    """Case folding as SQLite's LIKE does it: ASCII letters only."""
    return "".join(chr(ord(char) + 32) if "A" <= char <= "Z" else char for char in value)


def _own(event: ProvisioningEvent, text: str) -> bool:
    values = (event.source_name, event.source_id, event.target_id, event.error_code)
    return any(_ascii_lower(text) in _ascii_lower(value) for value in (*values, event.cycle_id))


def _key(event: ProvisioningEvent) -> tuple[str, str]:
    return iso_utc(event.activity_at), event.id


def expected(
    events: list[ProvisioningEvent],
    text: str,
    before: tuple[str, str] | None = None,
    status: str | None = None,
) -> list[str]:
    """Every event matching `text` (and `status`, older than `before`), newest first."""
    return [
        event.id
        for event in sorted(events, key=_key, reverse=True)
        if _own(event, text)
        and (before is None or _key(event) < before)
        and (status is None or event.status == status)
    ]


def _tenant_events(seed: int, count: int, objects: int) -> list[ProvisioningEvent]:
    """Objects (some in two jobs), renamed halfway, error and target ids that change."""
    rng = random.Random(seed)
    events = []
    for index in range(count):
        number = rng.randrange(objects)
        late = index > count // 2
        if number < len(HOSTILE_NAMES):
            name = HOSTILE_NAMES[number]
        elif number % 5 == 0:
            name = f"{'after' if late else 'before'}-rename{number}@contoso.example"
        else:
            name = f"user{number * 617}@contoso.example"
        failed = rng.random() < 0.25
        anonymous = number % 37 == 36  # events Graph gives without a source id
        events.append(
            ProvisioningEvent(
                id=f"evt-{index:04d}-{rng.randrange(10**6):06d}",
                # Events share a time: the filter orders by (time, id) as the log does.
                activity_at=T0 + timedelta(minutes=index // 3 * 2),
                job_id=JOBS[1 if number % 3 == 0 and index % 2 else 0],
                cycle_id=f"cyc-{index // 30:02d}",
                action="update",
                status="failure" if failed else "success",
                source_id="" if anonymous else f"obj-{number:03d}",
                source_type="User",
                source_name=name,
                target_id="" if failed else f"tgt-{'old' if not late else ''}{number * 7}",
                error_code=("E_OLD" if not late else "E_NEW") if failed else "",
            )
        )
    return events


def _save(path: Path, events: list[ProvisioningEvent]) -> None:
    """Saved in three batches, the oldest last: objects are folded again from all events."""
    third = len(events) // 3
    with Cache.open_writer(path) as cache:
        for batch in (events[third : 2 * third], events[2 * third :], events[:third]):
            cache.save_batch(Batch(source="graph.provisioning", records=batch), T0, T0)


@pytest.fixture(scope="module", params=[(40, 420), (300, 900)], ids=["few", "many"])
def tenant(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> tuple[Path, list[ProvisioningEvent]]:
    """Few objects, or many (each text then matches more objects than a round reads)."""
    objects, count = request.param
    path = tmp_path_factory.mktemp("filter") / "cache.db"
    events = _tenant_events(seed=objects, count=count, objects=objects)
    _save(path, events)
    return path, events


def _filter(
    path: Path,
    text: str,
    limit: int,
    before: tuple[str, str] | None = None,
    status: str | None = None,
) -> list[str]:
    with Cache.open_reader(path).reading() as db:
        return [event.id for event in health.recent_events(db, limit, before, status, text)]


# (window, first sources): the newest events' path, then the lookup from one source on
# (every page needs rounds that double), and from the default number.
PATHS = [(2000, health._FIRST_SOURCES), (0, 1), (0, 3), (0, health._FIRST_SOURCES)]


@pytest.mark.parametrize(("window", "first"), PATHS, ids=["window", "1", "3", "default"])
def test_every_text_gives_its_newest_matches(tenant, monkeypatch, window, first):
    path, events = tenant
    monkeypatch.setattr(health, "_TEXT_WINDOW", window)
    monkeypatch.setattr(health, "_FIRST_SOURCES", first)
    for text in TEXTS:
        for limit in (1, 7, 40):
            assert _filter(path, text, limit) == expected(events, text)[:limit], (text, limit)


@pytest.mark.parametrize(("window", "first"), PATHS, ids=["window", "1", "3", "default"])
def test_keyset_pages_with_a_status_give_every_match_once(tenant, monkeypatch, window, first):
    path, events = tenant
    monkeypatch.setattr(health, "_TEXT_WINDOW", window)
    monkeypatch.setattr(health, "_FIRST_SOURCES", first)
    by_id = {event.id: event for event in events}
    for text in ("user", "E_", "rename", "cyc-1", "obj-00", "tgt-old2"):
        for status in (None, "failure", "success"):
            seen: list[str] = []
            before = None
            while page := _filter(path, text, 9, before, status):
                seen += page
                before = _key(by_id[page[-1]])
            assert seen == expected(events, text, None, status), (text, status)


def test_a_former_name_target_id_and_error_code_still_find_their_events(tenant):
    """Events are matched on their own columns: an object's later values hide none of them."""
    path, events = tenant
    for text in ("before-rename", "E_OLD", "tgt-old"):
        wanted = expected(events, text)
        assert wanted
        assert _filter(path, text, len(events)) == wanted


def test_terms_kept_on_ingest_are_those_of_every_event(tenant):
    """The triggers' terms after out-of-order saves equal the terms computed from the events."""
    path, _events = tenant
    with sqlite3.connect(path) as conn:
        kept = _object_terms(conn)
        conn.execute("DELETE FROM object_terms")
        rebuild_derived_state(conn)
        assert _object_terms(conn) == kept
        conn.rollback()


def test_every_term_is_found_by_its_trigrams_after_saves_and_a_rebuild(tenant):
    """Each save indexes the terms it added (m016: once a save), and so does the rebuild."""
    path, _events = tenant
    with sqlite3.connect(path) as conn:
        assert not conn.execute(
            "SELECT 1 FROM sqlite_master WHERE name = 'search_terms_text_insert'"
        ).fetchone()
        _assert_indexed(conn)
        conn.execute("INSERT INTO search_terms_text (search_terms_text) VALUES ('delete-all')")
        conn.execute("DELETE FROM object_terms")
        conn.execute("DELETE FROM search_terms")
        rebuild_derived_state(conn)
        _assert_indexed(conn)
        conn.rollback()


def _assert_indexed(conn: sqlite3.Connection) -> None:
    terms = conn.execute("SELECT id, term FROM search_terms").fetchall()
    assert len(terms) > 100
    for term_id, term in terms:
        for text in {term, term[:1], term[-2:]}:
            query = health._trigram_query(text if len(text) >= health._TRIGRAM else spaced(text))
            found = conn.execute(
                "SELECT rowid FROM search_terms_text WHERE search_terms_text MATCH ? AND rowid = ?",
                [query, term_id],
            ).fetchall()
            assert found, (term, text)


def _object_terms(conn: sqlite3.Connection) -> set[tuple[str, str]]:
    return set(
        conn.execute(
            "SELECT s.term, o.term FROM object_terms AS t"
            " JOIN search_terms AS s ON s.id = t.term_id"
            " JOIN search_terms AS o ON o.id = t.object_id"
        ).fetchall()
    )


def test_an_object_renamed_one_event_at_a_time_is_found_by_every_name(tmp_path):
    """Each saved event passes through its object's row: no name is skipped within a batch."""
    events = [
        ProvisioningEvent(
            id=f"e{index}",
            activity_at=T0 + timedelta(minutes=index),
            job_id=JOBS[0],
            cycle_id="c1",
            action="update",
            status="success",
            source_id="obj",
            source_name=f"name-{index}",
        )
        for index in range(5)
    ]
    path = tmp_path / "cache.db"
    with Cache.open_writer(path) as cache:
        cache.save_batch(Batch(source="graph.provisioning", records=events), T0, T0)
    for index in range(5):
        with Cache.open_reader(path).reading() as db:
            assert list(health._matching_objects(db, f"name-{index}"))
        assert _filter(path, f"name-{index}", 10) == [f"e{index}"]


@pytest.mark.parametrize(
    ("text", "query"),
    [
        ("abc", '"abc"'),
        ("abcd", '"abc" AND "bcd"'),
        ('a"b"', '"""b""" AND "a""b"'),
        ("NEAR(x", '"AR(" AND "EAR" AND "NEA" AND "R(x"'),
    ],
)
def test_a_text_is_quoted_into_trigrams_never_fts_syntax(text, query):
    assert health._trigram_query(text) == query


@pytest.mark.parametrize(
    ("text", "query"), [("a", '" a "'), ("ab", '" a " AND " b " AND "a b"'), ('"', '" "" "')]
)
def test_a_short_text_is_looked_up_as_its_spaced_out_characters(text, query):
    assert health._trigram_query(spaced(text)) == query


def test_an_objects_time_bounds_its_events_carrying_the_text(tenant):
    """The lookup may stop at a source's time: no event of it carrying the text is newer.

    Also after the object stopped carrying the text (a rename, a changed error code or target
    id) and in another job's row, where the time is when it stopped, not its newest event.
    """
    path, events = tenant
    for text in TEXTS:
        sources = _object_times(path, text)
        carried: dict[str, str] = {}
        for event in events:
            values = (event.source_id, event.source_name, event.target_id, event.error_code)
            if event.source_id and any(_ascii_lower(text) in _ascii_lower(v) for v in values):
                carried[event.source_id] = max(carried.get(event.source_id, ""), _key(event)[0])
        assert set(sources) == set(carried), text
        assert all(sources[key] >= at for key, at in carried.items()), text
    newest = {event.source_id: _key(event)[0] for event in sorted(events, key=_key)}
    renamed = _object_times(path, "before-")
    assert any(at < newest[key] for key, at in renamed.items()), "renamed objects stop earlier"


def _object_times(path: Path, text: str) -> dict[str, str]:
    """The lookup's objects for `text` by source id, with their times (the newest of an
    object that comes more than once)."""
    times: dict[str, str] = {}
    with Cache.open_reader(path).reading() as db:
        for source in list(health._matching_objects(db, text)):
            (source_id,) = db.execute(
                "SELECT term FROM search_terms WHERE id = ?", [source.key]
            ).fetchone()
            times[source_id] = max(times.get(source_id, ""), source.newest_at)
    return times


def test_holders_count_the_values_object_state_holds(tenant):
    """Each (term, object) is held by as many object_state values as hold it now."""
    path, _events = tenant
    with sqlite3.connect(path) as conn:
        kept = set(
            conn.execute(
                "SELECT s.term, o.term, t.holders FROM object_terms AS t"
                " JOIN search_terms AS s ON s.id = t.term_id"
                " JOIN search_terms AS o ON o.id = t.object_id WHERE t.holders != 0"
            ).fetchall()
        )
        held: dict[tuple[str, str], int] = {}
        for row in conn.execute(
            "SELECT source_id, source_id, source_name, target_id, error_code FROM object_state"
        ):
            for value in row[1:]:
                if value:
                    held[(value, row[0])] = held.get((value, row[0]), 0) + 1
    assert kept == {(term, source, count) for (term, source), count in held.items()}
