"""The directory answers computed in SQL equal the Python oracle's, on varied directories.

Random directories (seeded) mix the edge cases the answers have rules for: a native Harness
group named like the SCIM one, names differing only by '.', '-' or ' ', names full of markup,
escapes, quotes and unicode, names that leave no identifier, empty groups, members unknown to
either side, users in FirstGen, NextGen or both, duplicate and differently cased emails,
groups provisioned by several jobs, renamed and colliding groups.
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import get_args

import pytest

from store import directory, harness_ids, health
from store.cache import Cache
from store.models import (
    AppRoleAssignment,
    Batch,
    EntraGroup,
    EntraMembership,
    EntraUser,
    GroupMapping,
    HarnessGroup,
    HarnessGroupMember,
    HarnessUser,
    ProvisioningEvent,
    Record,
    RoleAssignment,
    SourceName,
    SsoConflict,
    SyncJob,
)
from tests.builders import DEFAULT_ACCESS, NOW, USER_ROLE
from tests.test_store import directory_oracle

GROUP_NAMES = (
    "Dev Team", "Dev-Team", "Dev.Team", "Dev_Team", " Dev Team ", "dev team", "DEV TEAM",
    "Ops", "Ops ", "123 Ops", "9lives", "Sales EMEA", "Sales.EMEA", "[bold]red[/bold]",
    "<script>alert(1)</script>", "a\\b", "quote's", 'dq"x', "\x1b[31mred", "tab\tname",
    "Ünïcödé Grüppe", "İstanbul", "ß-team", "日本語", "emoji 😀 team", "Łódź", "", "   ",
    "and", "account", "_account_all_users", "x" * 130, "Ops$", "$money", "-lead", "ops",
    "null\x00byte", "Ωmega", "ǅungla",
)  # fmt: skip
EMAILS = (
    "alice@example.com", "Alice@Example.com", "ALICE@EXAMPLE.COM", "bob@example.com",
    "carol@example.com", "dave@example.com", "ÄLICE@exämple.com", "älice@exämple.com",
    "İlker@example.com", "straße@example.com", "[red]x[/red]@example.com", "", "erin@example.com",
    "frank@example.com", "gina@example.com",
)  # fmt: skip
JOBS = {"ng1": "nextgen", "ng2": "nextgen", "fg1": "firstgen"}


def _user_id(rng: random.Random, users: int) -> str:
    """A known user mostly; sometimes one neither side knows."""
    return f"u{rng.randrange(users)}" if rng.random() < 0.9 else f"ghost-{rng.randrange(5)}"


def random_directory(seed: int) -> dict[SourceName, list[Record]]:
    """Every source's records of one random tenant (record order decides table order)."""
    rng = random.Random(seed)
    users = rng.randint(8, 40)
    records: dict[SourceName, list[Record]] = {
        "graph.directory": [],
        "graph.assignments": [],
        "harness.scim": [],
        "harness.ng": [],
        "graph.provisioning": [],
        "graph.jobs": [],
    }
    directory, assignments = records["graph.directory"], records["graph.assignments"]
    for index in range(users):
        mail = rng.choice(EMAILS)
        directory.append(
            EntraUser(
                id=f"u{index}",
                mail=mail if rng.random() < 0.8 else "",
                user_principal_name=rng.choice(EMAILS),
                display_name=rng.choice(GROUP_NAMES),
                account_enabled=rng.choice((True, True, True, None, False)),
            )
        )
    groups = [f"g{index}" for index in range(rng.randint(1, 16))]
    names = {group: rng.choice(GROUP_NAMES) for group in groups}
    for group in groups:
        if rng.random() < 0.9:  # some assigned groups are unknown to the directory poll
            directory.append(EntraGroup(id=group, display_name=names[group]))
        for _ in range(rng.choice((0, 0, 1, 1, 2))):  # unassigned, once, or twice
            role = DEFAULT_ACCESS if rng.random() < 0.1 else USER_ROLE
            app = "nextgen" if rng.random() < 0.8 else "firstgen"
            assignments.append(_assignment(rng, app, group, "Group", names[group], role))
        for _ in range(rng.choice((0, 1, 3, 8))):  # empty groups too
            directory.append(
                EntraMembership(
                    group_id=group,
                    member_id=_user_id(rng, users) if rng.random() < 0.9 else rng.choice(groups),
                    member_type="user" if rng.random() < 0.9 else "group",
                    direct=rng.random() < 0.75,
                )
            )
    for _ in range(rng.randint(0, users)):
        user = _user_id(rng, users)
        role = DEFAULT_ACCESS if rng.random() < 0.1 else USER_ROLE
        app = rng.choice(("nextgen", "nextgen", "firstgen"))
        assignments.append(_assignment(rng, app, user, "User", rng.choice(GROUP_NAMES), role))
    targets = _harness_side(rng, records, users, names)
    _provisioning(rng, records, groups, targets)
    return records


def _assignment(
    rng: random.Random, app: str, principal: str, kind: str, name: str, role: str
) -> AppRoleAssignment:
    return AppRoleAssignment(
        id=f"asg-{rng.getrandbits(48):012x}",
        app=app,
        resource_id=f"sp-{app}",
        principal_id=principal,
        principal_type=kind,
        principal_name=name if rng.random() < 0.9 else "",
        app_role_id=role,
    )


def _harness_side(
    rng: random.Random, records: dict[SourceName, list[Record]], users: int, names: dict[str, str]
) -> list[str]:
    """Harness users, groups (SCIM, native, built-in, other scopes), members, role bindings."""
    scim, ng = records["harness.scim"], records["harness.ng"]
    for index in range(users + rng.randint(0, 5)):
        if rng.random() < 0.8:
            scim.append(
                HarnessUser(
                    id=f"h{index}",
                    email=rng.choice(EMAILS),
                    name=f"user {index}",
                    in_scim=rng.random() < 0.9,
                    in_ng=True,
                )
            )
    identifiers: list[str] = []
    for name in [*names.values(), *rng.sample(GROUP_NAMES, 5)]:
        rule = rng.choice([*get_args(harness_ids.RuleName), "current", "current"])
        identifier = harness_ids.harness_identifier(name, rule) or f"id{len(identifiers)}"
        identifiers.append(identifier)
        ng.append(
            HarnessGroup(
                scope="account" if rng.random() < 0.9 else "org/x",
                identifier=identifier,
                name=rng.choice((name, name, rng.choice(GROUP_NAMES))),
                externally_managed=rng.random() < 0.7,
                harness_managed=rng.random() < 0.05,
                in_scim=True,
            )
        )
        for _ in range(rng.choice((0, 1, 3, 6))):
            ng.append(
                HarnessGroupMember(group_identifier=identifier, user_id=f"h{rng.randrange(users)}")
            )
        if rng.random() < 0.6:
            ng.append(
                RoleAssignment(
                    identifier=f"ra-{rng.getrandbits(32):08x}",
                    principal_identifier=identifier,
                    principal_type=rng.choice(("USER_GROUP", "USER_GROUP", "USER")),
                    disabled=rng.random() < 0.2,
                )
            )
    return identifiers


def _provisioning(
    rng: random.Random,
    records: dict[SourceName, list[Record]],
    groups: list[str],
    targets: list[str],
) -> None:
    """Groups provisioned by one to three jobs (two NextGen), some failing."""
    records["graph.jobs"] = [
        SyncJob(service_principal_id=f"sp-{job}", job_id=job, app=app, observed_at=NOW)
        for job, app in JOBS.items()
    ]
    for number, group in enumerate(rng.sample(groups, rng.randint(0, len(groups)))):
        for job in rng.sample(sorted(JOBS), rng.randint(1, 3)):
            failed = rng.random() < 0.3
            records["graph.provisioning"].append(
                ProvisioningEvent(
                    id=f"evt-{group}-{job}-{number}",
                    activity_at=NOW - timedelta(minutes=rng.randint(1, 500)),
                    job_id=job,
                    cycle_id=f"c{rng.randrange(3)}",
                    action="create",
                    status="failure" if failed else "success",
                    source_id=group,
                    source_type="Group",
                    source_name=group,
                    target_id=rng.choice(["", *targets, "no-such-group"]),
                    error_code=rng.choice(("", "SystemForCrossDomainIdentityManagementBadRequest")),
                    reason=rng.choice(("", "Harness said no", "[b]x[/b] " * 60)) if failed else "",
                )
            )


def save_in_random_batches(
    cache: Cache, rng: random.Random, records: dict[SourceName, list[Record]]
) -> None:
    sources = list(records)
    rng.shuffle(sources)
    for source in sources:
        batch = records[source]
        cut = rng.randint(0, len(batch))
        for part in (batch[:cut], batch[cut:]):
            cache.save_batch(Batch(source=source, records=part), NOW, NOW)


def oracle(cache: Cache):
    with cache.reading() as db:
        return directory_oracle.compute_group_mappings(db), directory_oracle.compute_sso_conflicts(
            db
        )


def stored(cache: Cache):
    with cache.reading() as db:
        assert db.execute("SELECT fresh FROM directory_answers_state").fetchone()[0] == 1
        return directory.group_mappings(db), directory.sso_conflicts(db)


def provisioning_only(seed: int) -> dict[SourceName, list[Record]]:
    """Group events of a later poll (new SCIM ids, failures, recoveries) and a job changed."""
    rng = random.Random(seed)
    later = random_directory(seed)
    targets = [
        record.identifier for record in later["harness.ng"] if isinstance(record, HarnessGroup)
    ]
    groups = sorted(
        {
            record.principal_id
            for record in later["graph.assignments"]
            if isinstance(record, AppRoleAssignment)
        }
    )
    records: dict[SourceName, list[Record]] = {"graph.provisioning": []}
    _provisioning(rng, records, [group for group in groups if group.startswith("g")], targets)
    records["graph.provisioning"] = [
        event.model_copy(
            update={
                "id": f"later-{event.id}",
                "activity_at": event.activity_at + timedelta(minutes=rng.choice((-600, 600))),
            }
        )
        for event in records["graph.provisioning"]
        if isinstance(event, ProvisioningEvent)
    ]
    records["graph.jobs"] = [
        SyncJob(
            service_principal_id="sp-ng2",
            job_id="ng2",
            app=rng.choice(("nextgen", "firstgen")),
            observed_at=NOW,
        )
    ]
    return records


def members_fresh(cache: Cache) -> bool:
    with cache.reading() as db:
        return bool(db.execute("SELECT members_fresh FROM directory_answers_state").fetchone()[0])


SEEDS = range(40)


@dataclass(frozen=True)
class FirstFill:
    """A seed's random directory saved to a cache whose writer stays open for later polls."""

    cache: Cache
    rng: random.Random
    """The generator the save drew from; the later polls of the seed carry on drawing from it."""
    answers: tuple[list[GroupMapping], list[SsoConflict]]
    """The stored answers right after the save, before any later poll changed them."""
    disabled_outside_firstgen: list[str]
    """Disabled accounts the answers leave out of those who cannot sign in, as saved."""


@pytest.fixture(scope="module")
def first_fill(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[[int], FirstFill]]:
    """Each seed's first fill, made once on first use and shared by the tests below."""
    folder = tmp_path_factory.mktemp("directories")
    fills: dict[int, FirstFill] = {}
    with contextlib.ExitStack() as writers:

        def fill(seed: int) -> FirstFill:
            if seed not in fills:
                cache = writers.enter_context(Cache.open_writer(folder / f"{seed}.db"))
                rng = random.Random(seed)
                save_in_random_batches(cache, rng, random_directory(seed))
                with cache.reading() as db:
                    disabled = directory_oracle.disabled_outside_firstgen(db)
                fills[seed] = FirstFill(cache, rng, stored(cache), disabled)
            return fills[seed]

        yield fill


@pytest.mark.parametrize("seed", SEEDS)
def test_sql_answers_equal_the_python_oracle(first_fill: Callable[[int], FirstFill], seed: int):
    fill = first_fill(seed)
    cache, rng = fill.cache, fill.rng
    assert stored(cache) == oracle(cache)
    # A provisioning poll: member lists kept where the Harness group matched is the same.
    for source, batch in provisioning_only(seed + 500).items():
        cache.save_batch(Batch(source=source, records=batch), NOW, NOW)
        assert members_fresh(cache)
        assert stored(cache) == oracle(cache)
    # Changes after the first fill: renames, lost members, a group moved between apps.
    changed = random_directory(seed + 1000)
    save_in_random_batches(cache, rng, changed)
    assert stored(cache) == oracle(cache)


def test_the_random_directories_reach_every_answer(first_fill: Callable[[int], FirstFill]):
    states: set[str] = set()
    kinds: set[str] = set()
    for seed in SEEDS:
        mappings, conflicts = first_fill(seed).answers
        states |= {problem for mapping in mappings for problem in mapping.problems}
        kinds |= {conflict.kind for conflict in conflicts}
    assert states == set(directory._STATE_ORDER)
    assert kinds == {"firstgen_unassigned", "unmatched_harness_user", "default_access"}
    assert any(first_fill(seed).disabled_outside_firstgen for seed in SEEDS)


def test_a_name_holding_the_list_separator_leaves_the_answers_to_readers(tmp_path: Path):
    records = random_directory(3)
    records["graph.directory"].append(EntraUser(id="u0", mail="sep\x1f@example.com"))
    records["graph.directory"].append(EntraMembership(group_id="g0", member_id="u0", direct=True))
    records["graph.assignments"].append(
        _assignment(random.Random(0), "nextgen", "g0", "Group", "G zero", USER_ROLE)
    )
    with Cache.open_writer(tmp_path / "cache.db") as cache:
        save_in_random_batches(cache, random.Random(3), records)
        with cache.reading() as db:
            assert db.execute("SELECT fresh FROM directory_answers_state").fetchone()[0] == 0
            live = directory.group_mappings(db), directory.sso_conflicts(db)
        assert live == oracle(cache)
        assert any("sep\x1f@example.com" in mapping.entra_members for mapping in live[0])
        reader = Cache.open_reader(cache.path)
        with reader.reading() as db:
            assert (directory.group_mappings(db), directory.sso_conflicts(db)) == live
            assert health.overview(db, NOW, ()).group_problems == sum(
                1 for mapping in live[0] if mapping.state != "ok"
            )


def test_answers_stored_by_other_rules_are_computed_again(tmp_path: Path):
    """A release changing the rules bumps DIRECTORY_RULES_VERSION: answers a cache stored
    under another version are read live, and the next save stores them by the new rules."""
    with Cache.open_writer(tmp_path / "cache.db") as cache:
        save_in_random_batches(cache, random.Random(5), random_directory(5))
        truth = stored(cache)
        assert truth[1], "the directory has SSO conflicts"
        with cache._writing() as conn:  # as an older release left it: other advice, version 0
            conn.execute("UPDATE sso_conflicts SET what_to_do = 'older advice'")
            conn.execute("UPDATE directory_answers_state SET rules_version = 0")
        with cache.reading() as db:
            assert directory.sso_conflicts(db) == truth[1]
        cache.save_batch(Batch(source="harness.roles", records=[]), NOW, NOW)
        with cache.reading() as db:
            older = db.execute(
                "SELECT count(*) FROM sso_conflicts WHERE what_to_do = 'older advice'"
            )
            assert older.fetchone()[0] == 0
            version = db.execute("SELECT rules_version FROM directory_answers_state").fetchone()
            assert version[0] == directory.DIRECTORY_RULES_VERSION
        assert stored(cache) == truth


def test_the_writer_stores_answers_of_other_rules_again_when_it_opens(tmp_path: Path):
    """Readers would compute them on every read until the next save; the writer's open does
    it once (a TUI whose polls fail would otherwise read for seconds, forever)."""
    path = tmp_path / "cache.db"
    with Cache.open_writer(path) as cache:
        save_in_random_batches(cache, random.Random(5), random_directory(5))
        truth = stored(cache)
        with cache._writing() as conn:
            conn.execute("UPDATE sso_conflicts SET what_to_do = 'older advice'")
            conn.execute("UPDATE directory_answers_state SET rules_version = 0")
    with Cache.open_writer(path) as cache:
        assert stored(cache) == truth
