"""The seeded, deterministic, clock-driven scenario engine of the simulated tenant.

A ``Scenario`` owns both sides: the Entra directory (users, groups with nesting, the NextGen and
optionally the FirstGen app with their assignments and provisioning jobs) and the Harness account.
Provisioning cycles run on the job interval (PT40M) of the scenario clock; each cycle produces the
events Entra would log (creates, updates, disables, deletes, skips, failures with the "will be
retried again after this date" text) and changes Harness as its SCIM API would. Failures are
escrowed and retried in later cycles; credential failures put the job in quarantine.

Named scenarios: ``healthy``, ``incident`` (the demo), ``quarantine`` and ``large`` (100,000 users,
1,000,000 events computed lazily). ``Scenario.planted`` is the plain-data ground truth that tests of
the health model compare against.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from collectors.simulator import ids
from collectors.simulator.clock import Clock, ManualClock, ScaledClock
from collectors.simulator.events import (
    CombinedEventLog,
    EventLog,
    EventRecord,
    MemoryEventLog,
    SyntheticEventLog,
    event_ids,
)
from collectors.simulator.harness_state import HarnessState, ScimOutcome
from collectors.simulator.identifiers import HarnessGeneration, group_identifier
from collectors.simulator.model import (
    DEFAULT_ACCESS_ROLE_ID,
    AppIntegration,
    Assignment,
    EntraGroup,
    EntraUser,
    Escrow,
    Execution,
    HarnessGroup,
    HarnessUser,
    JobState,
    LazyTable,
    PrincipalType,
    Quarantine,
    RoleAssignment,
)

ScenarioName = Literal["healthy", "incident", "quarantine", "large"]
SCENARIOS: tuple[ScenarioName, ...] = ("healthy", "incident", "quarantine", "large")
CYCLE_INTERVAL = timedelta(minutes=40)
CYCLE_VISIBLE_AFTER = timedelta(minutes=5)
ESCROW_HORIZON = timedelta(days=28)
GRAPH_PERMISSIONS = frozenset(
    {
        "AuditLog.Read.All",
        "Directory.Read.All",
        "Synchronization.Read.All",
        "Application.Read.All",
        "GroupMember.Read.All",
        "User.Read.All",
    }
)
HARNESS_PERMISSIONS = frozenset(
    {
        "core_user_view",
        "core_usergroup_view",
        "core_authsetting_view",
        "core_organization_view",
        "core_project_view",
    }
)
CREDENTIALS_ERROR = "SystemForCrossDomainIdentityManagementInvalidCredentials"


@dataclass
class ScenarioOptions:
    """Knobs for the shapes the reference notes mark UNCONFIRMED, and tenant sizes."""

    harness_generation: HarnessGeneration = "core-2023-12"
    """Which Harness identifier rule and collision behaviour to simulate (harness-api.md 2.4)."""
    new_scim_standards: bool = False
    """Harness flag PL_NEW_SCIM_STANDARDS: adds meta, name parts and groups to SCIM users."""
    error_code_style: Literal["app", "generic"] = "app"
    """409s logged as ``HarnessEntryConflict`` (app) or ``EntryConflict`` (generic)."""
    skip_error_info: bool = True
    """Skipped events carry errorInformation with EntrySynchronizationSkipped (else null)."""
    default_order: Literal["desc", "asc"] = "desc"
    """Order of provisioning events when the request has no $orderby."""
    accept_ge_le: bool = False
    """Whether activityDateTime accepts ge/le (undocumented) instead of answering 400."""
    invalid_client_status: int = 401
    """HTTP status of the token endpoint's invalid_client answer (400 or 401)."""
    token_lifetime: timedelta = timedelta(seconds=3599)
    quarantine_backoff: tuple[timedelta, ...] = (
        timedelta(hours=6),
        timedelta(hours=12),
        timedelta(hours=24),
    )
    escrow_backoff: tuple[timedelta, ...] = (
        timedelta(minutes=40),
        timedelta(hours=2),
        timedelta(hours=6),
        timedelta(hours=12),
        timedelta(hours=24),
    )
    graph_permissions: set[str] = field(default_factory=lambda: set(GRAPH_PERMISSIONS))
    harness_permissions: set[str] = field(default_factory=lambda: set(HARNESS_PERMISSIONS))
    large_users: int = 100_000
    large_events: int = 1_000_000
    large_groups: int = 1_000


@dataclass(frozen=True)
class Planted:
    """Ground truth of what the scenario planted, as plain data (see ``as_dict``)."""

    scenario: str
    seed: int
    now: str
    nextgen_sp_id: str
    firstgen_sp_id: str | None
    pending_retries: list[dict[str, Any]]
    identifier_collisions: list[dict[str, Any]]
    native_name_clashes: list[dict[str, Any]]
    native_identifier_clashes: list[dict[str, Any]]
    unsyncable_groups: list[dict[str, Any]]
    renamed_groups: list[dict[str, Any]]
    nested_only_members: dict[str, list[str]]
    default_access_assignments: list[dict[str, Any]]
    sso_conflict_users: list[str]
    orphan_harness_groups: list[str]
    groups_without_role_binding: list[str]
    dropped_members: dict[str, list[str]]
    deleted_in_harness_ui: list[str]
    jobs: dict[str, dict[str, Any]]
    event_count: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class _Cycle:
    app: AppIntegration
    start: datetime
    cycle_id: str
    cursor: datetime
    exported: int = 0
    escrowed: int = 0
    imported: int = 0
    events: list[EventRecord] = field(default_factory=list)


@dataclass
class _FailRule:
    status: int
    error_code: str
    detail: str
    remaining: int | None


class Scenario:
    """A tenant that evolves with its clock. Thread-safe: guard reads with ``lock``."""

    def __init__(
        self,
        name: ScenarioName = "incident",
        seed: int = 7,
        clock: Clock | None = None,
        speed: float = 1.0,
        options: ScenarioOptions | None = None,
    ) -> None:
        if name not in SCENARIOS:
            raise ValueError(f"unknown scenario {name!r}; choose from {', '.join(SCENARIOS)}")
        self.name = name
        self.seed = seed
        self.clock: Clock = clock if clock is not None else ScaledClock(speed)
        self.options = options or ScenarioOptions()
        self.lock = threading.RLock()
        self.rng = random.Random(seed)
        self.tenant_id = ids.guid(seed, "tenant")
        self.client_id = ids.guid(seed, "client")
        self.client_secret = "sim~" + ids.hex_token(seed, "secret", length=36)
        self.account_id = ids.harness_uuid(seed, "account", 0)
        self.harness_token = f"pat.{self.account_id}.{ids.hex_token(seed, 'tokid', length=24)}." + (
            ids.hex_token(seed, "toksecret", length=20)
        )
        self.firstgen_api_key = ids.hex_token(seed, "fg-api-key", length=40)
        self.users: LazyTable[str, EntraUser] = LazyTable()
        self.groups: dict[str, EntraGroup] = {}
        self.group_ranges: dict[str, tuple[int, int]] = {}
        self.deleted_users: set[str] = set()
        self.apps: dict[str, AppIntegration] = {}
        self.jobs: dict[str, JobState] = {}
        self.connector: dict[str, dict[str, str]] = {}
        self.escrows: dict[str, dict[str, Escrow]] = {}
        self.dirty: dict[str, set[str]] = {}
        self.fail_rules: dict[tuple[str, str], _FailRule] = {}
        self.scim_token_valid: dict[str, bool] = {}
        self.harness = HarnessState(seed, self.account_id, self.options.harness_generation)
        self.live_log = MemoryEventLog()
        self.events: EventLog = self.live_log
        self.script: dict[int, list[Callable[[], None]]] = {}
        self.notes: dict[str, Any] = {
            "renamed": [],
            "collisions": {},
            "native_ids": [],
            "unsyncable": {},
            "deleted_in_harness": [],
            "dropped": {},
        }
        self.cycles_run = 0
        self._seq = 0
        self._implied_target: Callable[[str, str], str | None] | None = None
        self._churn = True
        self.start = self.clock.now()
        _BUILDERS[name](self)

    # ---------------------------------------------------------------- directory helpers

    @property
    def nextgen(self) -> AppIntegration:
        return next(a for a in self.apps.values() if a.generation == "nextgen")

    @property
    def firstgen(self) -> AppIntegration | None:
        return next((a for a in self.apps.values() if a.generation == "firstgen"), None)

    def add_user(self, key: str, display: str, upn: str) -> EntraUser:
        given, _, surname = display.partition(" ")
        index = len(self.users.extra)
        user = EntraUser(
            ids.indexed_guid(self.seed, "user-extra", index),
            display,
            given,
            surname or given,
            upn,
            created=self.start - timedelta(days=90),
        )
        self.users.put(user.id, user)
        self.notes.setdefault("keys", {})[key] = user.id
        return user

    def uid(self, key: str) -> str:
        return str(self.notes["keys"][key])

    def add_group(
        self, display: str, members: list[str], nested: list[str] | None = None
    ) -> EntraGroup:
        group = EntraGroup(
            ids.guid(self.seed, "group", display),
            display,
            list(members),
            list(nested or []),
            created=self.start - timedelta(days=120),
        )
        self.groups[group.id] = group
        return group

    def direct_user_ids(self, group: EntraGroup) -> list[str]:
        members = list(group.member_user_ids)
        span = self.group_ranges.get(group.id)
        if span is not None:
            members.extend(ids.indexed_guid(self.seed, "user", i) for i in range(*span))
        return [m for m in members if m not in self.deleted_users]

    def transitive_user_ids(self, group: EntraGroup, seen: set[str] | None = None) -> list[str]:
        seen = seen if seen is not None else set()
        seen.add(group.id)
        result = self.direct_user_ids(group)
        for child_id in group.member_group_ids:
            child = self.groups.get(child_id)
            if child is not None and child.id not in seen:
                result.extend(u for u in self.transitive_user_ids(child, seen) if u not in result)
        return result

    def add_app(
        self, generation: Literal["nextgen", "firstgen"], name: str, entity_id: str
    ) -> AppIntegration:
        sp_id = ids.guid(self.seed, "sp", generation)
        app = AppIntegration(
            sp_id=sp_id,
            app_id=ids.guid(self.seed, "app", generation),
            display_name=name,
            generation=generation,
            entity_id=entity_id,
            user_role_id=ids.guid(self.seed, "role", generation),
            job_id=f"Harness.{self.tenant_id.replace('-', '')}."
            + ids.guid(self.seed, "job", generation),
        )
        self.apps[sp_id] = app
        self.jobs[sp_id] = JobState(next_cycle_at=self.start)
        for table in (self.connector, self.escrows):
            table[sp_id] = {}
        self.dirty[sp_id] = set()
        self.scim_token_valid[sp_id] = True
        return app

    def assign(
        self, app: AppIntegration, principal_id: str, kind: PrincipalType, default: bool = False
    ) -> None:
        role = DEFAULT_ACCESS_ROLE_ID if default else app.user_role_id
        assignment_id = ids.digest(self.seed, "ara", app.sp_id, principal_id)[:32]
        app.assignments.append(
            Assignment(
                _b64(assignment_id), principal_id, kind, role, self.start - timedelta(days=60)
            )
        )

    def unassign(self, app: AppIntegration, principal_id: str) -> None:
        app.assignments = [a for a in app.assignments if a.principal_id != principal_id]
        self.dirty[app.sp_id].add(principal_id)
        group = self.groups.get(principal_id)
        if group is not None:
            self.dirty[app.sp_id].update(self.direct_user_ids(group))

    def principal_name(self, principal_id: str) -> str:
        user = self.users.get(principal_id)
        if user is not None:
            return user.display_name
        group = self.groups.get(principal_id)
        return group.display_name if group else ""

    def mark_dirty(self, object_id: str) -> None:
        for pending in self.dirty.values():
            pending.add(object_id)

    # ---------------------------------------------------------------- scope

    def scope(self, app: AppIntegration) -> tuple[dict[str, str], set[str], set[str]]:
        """(users in scope -> how, groups in scope, principals only with Default Access)."""
        users: dict[str, str] = {}
        groups: set[str] = set()
        default_only: set[str] = set()
        for assignment in app.assignments:
            default = assignment.app_role_id == DEFAULT_ACCESS_ROLE_ID
            if assignment.principal_type == "User":
                if default:
                    default_only.add(assignment.principal_id)
                elif assignment.principal_id not in self.deleted_users:
                    users[assignment.principal_id] = "direct"
            elif default:
                default_only.add(assignment.principal_id)
            elif assignment.principal_id in self.groups:
                groups.add(assignment.principal_id)
                for member in self.direct_user_ids(self.groups[assignment.principal_id]):
                    users.setdefault(member, assignment.principal_id)
        users = {u: how for u, how in users.items() if self._enabled(u)}
        return users, groups, default_only - set(users) - groups

    def _enabled(self, user_id: str) -> bool:
        user = self.users.get(user_id)
        return user is not None and user.account_enabled

    # ---------------------------------------------------------------- time

    def sync(self) -> None:
        """Run every cycle that is due at the clock's current time."""
        with self.lock:
            now = self.clock.now()
            while True:
                due = self._next_due(now)
                if due is None:
                    break
                self._run_cycle(*due)

    def _next_due(self, now: datetime) -> tuple[AppIntegration, datetime] | None:
        candidates = [
            (state.next_cycle_at, app)
            for app in self.apps.values()
            if (state := self.jobs[app.sp_id]).next_cycle_at is not None
            and state.schedule_state == "Active"
            and state.next_cycle_at + CYCLE_VISIBLE_AFTER <= now
        ]
        if not candidates:
            return None
        start, app = min(candidates, key=lambda c: (c[0], c[1].generation))
        return app, start

    def next_cycle_visible_at(self) -> datetime | None:
        """When the next cycle's events become visible (its start plus the cycle's duration)."""
        starts = [
            s.next_cycle_at
            for s in self.jobs.values()
            if s.next_cycle_at and s.schedule_state == "Active"
        ]
        return min(starts) + CYCLE_VISIBLE_AFTER if starts else None

    def advance(self, delta: timedelta) -> None:
        """Move a manual or scaled clock forward and run the cycles that became due."""
        advance = getattr(self.clock, "advance", None)
        if advance is None:
            raise TypeError("this clock cannot be advanced")
        advance(delta)
        self.sync()

    def run_cycles(self, count: int = 1) -> None:
        """Advance the clock until ``count`` more cycles (of any app) have run."""
        target = self.cycles_run + count
        while self.cycles_run < target:
            visible = self.next_cycle_visible_at()
            if visible is None:
                raise RuntimeError("no provisioning job is scheduled")
            self.advance(max(visible - self.clock.now(), timedelta(0)))

    # ---------------------------------------------------------------- cycles

    def _run_cycle(self, app: AppIntegration, start: datetime) -> None:
        state = self.jobs[app.sp_id]
        if app.generation == "nextgen":
            for action in self.script.pop(state.cycle_count, []):
                action()
            if self._churn and state.cycle_count >= 1 and not self.script:
                self._random_churn()
        cycle_id = ids.guid(self.seed, "cycle", app.sp_id, state.cycle_count)
        state.cycle_count += 1
        self.cycles_run += 1
        begin = max(start, self._last_event_time() + timedelta(seconds=1))
        cycle = _Cycle(app, begin, cycle_id, begin)
        if not self.scim_token_valid[app.sp_id]:
            self._fail_cycle(app, state, cycle)
            return
        initial = state.last_successful is None
        for object_id, kind in self._work(app, initial, begin):
            self._process(cycle, object_id, kind)
        self._finish_cycle(app, state, cycle, start)

    def _last_event_time(self) -> datetime:
        n = len(self.events)
        return self.events.at_position(n - 1).at if n else self.start - timedelta(days=365)

    def _work(self, app: AppIntegration, initial: bool, at: datetime) -> Iterator[tuple[str, str]]:
        users, groups, default_only = self.scope(app)
        pending = set(self.dirty[app.sp_id])
        self.dirty[app.sp_id].clear()
        pending |= {oid for oid, e in self.escrows[app.sp_id].items() if e.retry_after <= at}
        if initial:
            pending |= set(users) | groups | default_only
        for object_id in sorted(pending, key=lambda o: (o in self.groups, o)):
            yield (
                object_id,
                "Group" if object_id in self.groups or object_id.startswith("grp:") else "User",
            )

    def _process(self, cycle: _Cycle, object_id: str, kind: str) -> None:
        cycle.imported += 1
        if kind == "Group":
            self._process_group(cycle, object_id)
        else:
            self._process_user(cycle, object_id)

    def _target(self, app: AppIntegration, object_id: str) -> str | None:
        target = self.connector[app.sp_id].get(object_id)
        if target is None and self._implied_target is not None:
            target = self._implied_target(app.sp_id, object_id)
        return target

    def _process_user(self, cycle: _Cycle, user_id: str) -> None:
        app = cycle.app
        users, _, default_only = self.scope(app)
        user = self.users.get(user_id)
        target = self._target(app, user_id)
        if user_id in self.deleted_users or user is None:
            if target is not None:
                self._export(cycle, "delete", user_id, "User", self._delete_user(app, target))
            return
        if user_id in users:
            action = "create" if target is None else "update"
            self._export(
                cycle, action, user_id, "User", self._upsert_user(app, user, target, cycle.cursor)
            )
        elif target is not None:
            self._export(cycle, "disable", user_id, "User", self._disable_user(app, target))
        elif user_id in default_only:
            self._skip(cycle, user_id, "User", "NotEffectivelyEntitled")

    def _process_group(self, cycle: _Cycle, group_id: str) -> None:
        app = cycle.app
        _, groups, default_only = self.scope(app)
        group = self.groups.get(group_id)
        target = self._target(app, group_id)
        if group is None:
            return
        if group_id in groups:
            action = "create" if target is None else "update"
            self._export(
                cycle,
                action,
                group_id,
                "Group",
                self._upsert_group(app, group, target, cycle.cursor),
            )
        elif target is not None:
            self._export(cycle, "delete", group_id, "Group", self._delete_group(app, target))
        elif group_id in default_only:
            self._skip(cycle, group_id, "Group", "NotEffectivelyEntitled")

    # ---------------------------------------------------------------- SCIM calls

    def _rule(self, app: AppIntegration, object_id: str) -> ScimOutcome | None:
        rule = self.fail_rules.get((app.sp_id, object_id))
        if rule is None or rule.remaining == 0:
            return None
        if rule.remaining is not None:
            rule.remaining -= 1
        return ScimOutcome(rule.status, detail=rule.detail)

    def _upsert_user(
        self, app: AppIntegration, user: EntraUser, target: str | None, at: datetime
    ) -> ScimOutcome:
        forced = self._rule(app, user.id)
        if forced is not None:
            return forced
        if app.generation == "firstgen":
            return self.harness.fg_create_user(
                user.mail, user.display_name, user.given_name, user.surname, at
            )
        if target is None:
            return self.harness.scim_create_user(
                user.mail, user.display_name, user.given_name, user.surname, user.id, at
            )
        return self.harness.scim_update_user(target, user.display_name, at)

    def _disable_user(self, app: AppIntegration, target: str) -> ScimOutcome:
        if app.generation == "firstgen":
            return ScimOutcome(200, target)
        return self.harness.scim_deactivate_user(target)

    def _delete_user(self, app: AppIntegration, target: str) -> ScimOutcome:
        if app.generation == "firstgen":
            self.harness.fg_users.pop(target, None)
            return ScimOutcome(204, target)
        self.harness.remove_user(target)
        return ScimOutcome(204, target)

    def _member_targets(self, app: AppIntegration, group: EntraGroup) -> list[str]:
        targets = [self._target(app, m) for m in self.direct_user_ids(group)]
        return [t for t in targets if t is not None]

    def _upsert_group(
        self, app: AppIntegration, group: EntraGroup, target: str | None, at: datetime
    ) -> ScimOutcome:
        forced = self._rule(app, group.id)
        if forced is not None:
            return forced
        members = self._member_targets(app, group)
        if app.generation == "firstgen":
            return self.harness.fg_create_group(group.display_name, members)
        if target is None:
            outcome = self.harness.scim_create_group(group.display_name, members, at)
            self._note_group_outcome(group, outcome, members)
            return outcome
        current = self.harness.groups.get(target)
        missing = [m for m in members if current is not None and m not in current.users]
        stale = [m for m in (current.users if current else []) if m not in members]
        return self.harness.scim_patch_group(target, group.display_name, missing, stale, at)

    def _note_group_outcome(
        self, group: EntraGroup, outcome: ScimOutcome, members: list[str]
    ) -> None:
        identifier = group_identifier(group.display_name, self.harness.generation)
        if outcome.status == 409 and identifier and identifier in self.harness.groups:
            existing = self.harness.groups[identifier]
            owner = next(
                (
                    g
                    for g in self.groups.values()
                    if g.id != group.id and self._provisioned_as(g.id, identifier)
                ),
                None,
            )
            if owner is not None:
                self.notes["collisions"][identifier] = [owner.id, group.id]
            elif not existing.externally_managed:
                row = {"identifier": identifier, "entra_group_id": group.id}
                if row not in self.notes["native_ids"]:
                    self.notes["native_ids"].append(row)
        elif outcome.status == 409:
            self.notes["unsyncable"][group.id] = {
                "entra_group_id": group.id,
                "display_name": group.display_name,
                "identifier": identifier,
                "problem": outcome.detail,
            }
        if outcome.ok:
            dropped = [
                u
                for u in self.direct_user_ids(group)
                if self._target(self.nextgen, u) is None and self.scope(self.nextgen)[0].get(u)
            ]
            if dropped:
                self.notes["dropped"][outcome.target_id] = dropped

    def _provisioned_as(self, group_id: str, identifier: str) -> bool:
        return self.connector[self.nextgen.sp_id].get(group_id) == identifier

    def _delete_group(self, app: AppIntegration, target: str) -> ScimOutcome:
        if app.generation == "firstgen":
            self.harness.fg_groups.pop(target, None)
            return ScimOutcome(204, target)
        return self.harness.scim_delete_group(target)

    # ---------------------------------------------------------------- events

    def _next_ids(self) -> tuple[int, str, str]:
        seq = self._seq + (len(self.events) - len(self.live_log))
        self._seq += 1
        event_id, change_id = event_ids(self.seed, seq)
        return seq, event_id, change_id

    def _record(
        self, cycle: _Cycle, action: str, status: str, object_id: str, kind: str, **extra: Any
    ) -> EventRecord:
        app = cycle.app
        seq, event_id, change_id = self._next_ids()
        user = self.users.get(object_id) if kind == "User" else None
        name = user.display_name if user else self.principal_name(object_id)
        cycle.cursor += timedelta(milliseconds=1500 + self.rng.randrange(1500))
        rec = EventRecord(
            seq=seq,
            at=cycle.cursor,
            tenant_id=self.tenant_id,
            sp_id=app.sp_id,
            sp_name=app.display_name,
            app_id=app.app_id,
            job_id=app.job_id,
            cycle_id=cycle.cycle_id,
            change_id=change_id,
            event_id=event_id,
            action=action,
            status=status,
            identity_type=kind,
            source_id=object_id,
            source_name=name,
            upn=user.user_principal_name if user else "",
            duration_ms=400 + self.rng.randrange(3000),
            **extra,
        )
        cycle.events.append(rec)
        return rec

    def _export(
        self, cycle: _Cycle, action: str, object_id: str, kind: str, outcome: ScimOutcome
    ) -> None:
        app = cycle.app
        escrows = self.escrows[app.sp_id]
        if outcome.ok:
            self._apply_success(app, action, object_id, outcome)
            escrows.pop(object_id, None)
            cycle.exported += 1
            target_name = "" if action in ("delete", "disable") else self.principal_name(object_id)
            self._record(
                cycle,
                action,
                "success",
                object_id,
                kind,
                target_id=outcome.target_id,
                target_name=target_name,
                modified=self._modified(action, object_id, kind),
            )
            return
        cycle.escrowed += 1
        previous = escrows.get(object_id)
        attempts = previous.attempts + 1 if previous else 1
        backoff = self.options.escrow_backoff[
            min(attempts - 1, len(self.options.escrow_backoff) - 1)
        ]
        retry_after = cycle.cursor + backoff
        code = self._error_code(outcome.status)
        reason = failure_reason(outcome, attempts - 1, retry_after)
        rec = self._record(
            cycle,
            action,
            "failure",
            object_id,
            kind,
            error_code=code,
            reason=reason,
            modified=self._modified(action, object_id, kind),
        )
        escrows[object_id] = Escrow(
            object_id,
            "Group" if kind == "Group" else "User",
            rec.source_name,
            action,
            code,
            reason,
            previous.first_failure if previous else rec.at,
            rec.at,
            attempts,
            retry_after,
        )

    def _apply_success(
        self, app: AppIntegration, action: str, object_id: str, outcome: ScimOutcome
    ) -> None:
        store = self.connector[app.sp_id]
        if action in ("create", "update"):
            store[object_id] = outcome.target_id
        else:
            store.pop(object_id, None)
            if self._implied_target is not None:
                self.deleted_users.add(object_id) if action == "delete" else None

    def _skip(self, cycle: _Cycle, object_id: str, kind: str, reason: str) -> None:
        self._record(
            cycle,
            "other",
            "skipped",
            object_id,
            kind,
            skip_reason=reason,
            reason="The object is assigned with the Default Access role.",
        )

    def _modified(
        self, action: str, object_id: str, kind: str
    ) -> tuple[tuple[str, str | None, str | None], ...]:
        if action == "disable":
            return (("active", "True", "False"),)
        if action == "delete":
            return ()
        if kind == "Group":
            group = self.groups.get(object_id)
            old = next(
                (r["old_name"] for r in self.notes["renamed"] if r["entra_group_id"] == object_id),
                None,
            )
            name = group.display_name if group else ""
            return (
                ("displayName", old if action == "update" else None, name),
                ("objectId", None, object_id),
            )
        user = self.users.get(object_id)
        if user is None:
            return ()
        old = None if action == "create" else self.notes.get("old_names", {}).get(object_id)
        return (
            ("userName", None, user.user_principal_name),
            ("displayName", old, user.display_name),
            ("active", None, "True"),
            ("externalId", None, user.id),
        )

    def _error_code(self, status: int) -> str:
        if status == 409:
            return (
                "HarnessEntryConflict"
                if self.options.error_code_style == "app"
                else "EntryConflict"
            )
        return {
            500: "InternalServerError",
            504: "Timeout",
            429: "TooManyRequests",
            401: "Unauthorized",
            403: "InsufficientRights",
            404: "InvalidAnchor",
        }.get(status, "UnprocessableEntity")

    def _finish_cycle(
        self, app: AppIntegration, state: JobState, cycle: _Cycle, start: datetime
    ) -> None:
        for rec in sorted(cycle.events, key=lambda r: r.at):
            self.live_log.append(rec)
        end = cycle.cursor + timedelta(seconds=2)
        execution = Execution(
            cycle.cycle_id,
            cycle.start,
            end,
            "EntryLevelErrors" if cycle.escrowed else "Succeeded",
            count_exported=cycle.exported,
            count_escrowed=len(self.escrows[app.sp_id]),
            count_imported=cycle.imported,
            count_entitled=len(self.scope(app)[0]),
        )
        state.last_execution = execution
        if not cycle.escrowed:
            state.last_successful = execution
        elif state.last_successful is None:
            state.last_successful = (
                execution  # the initial cycle completed, with entry-level errors
            )
        if cycle.exported:
            state.last_with_exports = execution
        if not cycle.exported and not cycle.escrowed:
            state.steady_first = state.steady_first or end
            state.steady_last = end
        state.code = "Active"
        state.quarantine = None
        state.successive_failures = 0
        users, groups, _ = self.scope(app)
        state.synced_users = sum(1 for u in users if self._target(app, u))
        state.synced_groups = sum(1 for g in groups if self._target(app, g))
        state.next_cycle_at = start + CYCLE_INTERVAL

    def _fail_cycle(self, app: AppIntegration, state: JobState, cycle: _Cycle) -> None:
        message = "Failed to authenticate to Harness: the secret token is invalid or has expired."
        end = cycle.start + timedelta(seconds=1)
        state.last_execution = Execution(
            cycle.cycle_id,
            cycle.start,
            end,
            "Failed",
            error_code=CREDENTIALS_ERROR,
            error_message=message,
        )
        state.successive_failures += 1
        backoff = self.options.quarantine_backoff
        if state.quarantine is None:
            state.quarantine = Quarantine(
                "EncounteredQuarantineException",
                CREDENTIALS_ERROR,
                message,
                end,
                end,
                end + backoff[0],
            )
        else:
            q = state.quarantine
            q.series_count += 1
            q.current_began = end
            q.next_attempt = end + backoff[min(q.series_count - 1, len(backoff) - 1)]
        state.code = "Quarantine"
        state.next_cycle_at = state.quarantine.next_attempt
        if end - state.quarantine.series_began > ESCROW_HORIZON:
            state.schedule_state = "Disabled"

    def renew_scim_token(self, sp_id: str | None = None) -> None:
        """The admin pastes a fresh Harness token into the app: the next attempt succeeds."""
        with self.lock:
            for key in [sp_id] if sp_id else list(self.scim_token_valid):
                self.scim_token_valid[key] = True

    def expire_scim_token(self, sp_id: str | None = None) -> None:
        """The Harness token Entra uses expires: the next cycle fails and quarantines the job."""
        with self.lock:
            self.scim_token_valid[sp_id or self.nextgen.sp_id] = False

    def _random_churn(self) -> None:
        """Small seeded changes so a live demo keeps producing events."""
        users, _, _ = self.scope(self.nextgen)
        candidates = sorted(u for u in users if self._target(self.nextgen, u))
        for user_id in self.rng.sample(
            candidates, k=min(len(candidates), self.rng.randrange(1, 4))
        ):
            user = self.users.get(user_id)
            if user is None:
                continue
            self.notes.setdefault("old_names", {})[user_id] = user.display_name
            title = self.rng.choice(["", " (Contractor)", " (On-call)", " (Leave)"])
            base = user.display_name.split(" (")[0]
            self.users.put(
                user_id,
                EntraUser(
                    user.id,
                    base + title,
                    user.given_name,
                    user.surname,
                    user.user_principal_name,
                    user.account_enabled,
                    user.created,
                ),
            )
            self.mark_dirty(user_id)

    # ---------------------------------------------------------------- ground truth

    @property
    def planted(self) -> Planted:
        with self.lock:
            return self._planted()

    def _planted(self) -> Planted:
        ng = self.nextgen
        fg = self.firstgen
        return Planted(
            scenario=self.name,
            seed=self.seed,
            now=self.clock.now().isoformat(),
            nextgen_sp_id=ng.sp_id,
            firstgen_sp_id=fg.sp_id if fg else None,
            pending_retries=self._pending(),
            identifier_collisions=[
                {"identifier": k, "entra_group_ids": v, "provisioned_group_id": v[0]}
                for k, v in self.notes["collisions"].items()
            ],
            native_name_clashes=self._native_name_clashes(),
            native_identifier_clashes=list(self.notes["native_ids"]),
            unsyncable_groups=list(self.notes["unsyncable"].values()),
            renamed_groups=list(self.notes["renamed"]),
            nested_only_members=self._nested_only(),
            default_access_assignments=[
                {
                    "sp_id": app.sp_id,
                    "principal_id": a.principal_id,
                    "principal_type": a.principal_type,
                }
                for app in self.apps.values()
                for a in app.assignments
                if a.app_role_id == DEFAULT_ACCESS_ROLE_ID
            ],
            sso_conflict_users=self._sso_conflicts(),
            orphan_harness_groups=self._orphans(),
            groups_without_role_binding=sorted(
                g.identifier
                for g in self.harness.groups.values()
                if g.externally_managed and g.identifier not in self.harness.bound_groups()
            ),
            dropped_members={k: list(v) for k, v in self.notes["dropped"].items()},
            deleted_in_harness_ui=list(self.notes["deleted_in_harness"]),
            jobs={sp: self._job_truth(sp) for sp in self.apps},
            event_count=len(self.events),
        )

    def _pending(self) -> list[dict[str, Any]]:
        rows = []
        for sp_id, escrows in self.escrows.items():
            for e in escrows.values():
                row = asdict(e)
                row.update(
                    sp_id=sp_id,
                    first_failure=e.first_failure.isoformat(),
                    last_failure=e.last_failure.isoformat(),
                    retry_after=e.retry_after.isoformat(),
                )
                rows.append(row)
        return sorted(rows, key=lambda r: (r["sp_id"], r["object_id"]))

    def _native_name_clashes(self) -> list[dict[str, Any]]:
        rows = []
        for g in self.harness.groups.values():
            if g.externally_managed or g.harness_managed:
                continue
            for entra in self.groups.values():
                scim_id = self.connector[self.nextgen.sp_id].get(entra.id)
                if entra.display_name == g.name and scim_id and scim_id != g.identifier:
                    rows.append(
                        {
                            "name": g.name,
                            "native_identifier": g.identifier,
                            "entra_group_id": entra.id,
                            "scim_identifier": scim_id,
                        }
                    )
        return rows

    def _nested_only(self) -> dict[str, list[str]]:
        result: dict[str, list[str]] = {}
        users, groups, _ = self.scope(self.nextgen)
        for group_id in sorted(groups):
            group = self.groups[group_id]
            nested = [
                u for u in self.transitive_user_ids(group) if u not in self.direct_user_ids(group)
            ]
            only = [u for u in nested if u not in users]
            if only:
                result[group_id] = only
        return result

    def _sso_conflicts(self) -> list[str]:
        fg = self.firstgen
        if fg is None:
            return []
        fg_users, _, _ = self.scope(fg)
        fg_emails = {u.mail.lower() for uid in fg_users if (u := self.users.get(uid))}
        provisioned = [
            self.users.get(uid)
            for uid in self.connector[self.nextgen.sp_id]
            if uid not in self.groups
        ]
        return sorted(
            u.mail.lower() for u in provisioned if u is not None and u.mail.lower() not in fg_emails
        )

    def _orphans(self) -> list[str]:
        live = set(self.connector[self.nextgen.sp_id].values())
        return sorted(
            g.identifier
            for g in self.harness.groups.values()
            if g.externally_managed and g.identifier not in live
        )

    def _job_truth(self, sp_id: str) -> dict[str, Any]:
        state = self.jobs[sp_id]
        q = state.quarantine
        return {
            "code": state.code,
            "schedule_state": state.schedule_state,
            "quarantine": None
            if q is None
            else {
                "reason": q.reason,
                "error_code": q.error_code,
                "series_began": q.series_began.isoformat(),
                "next_attempt": q.next_attempt.isoformat(),
                "series_count": q.series_count,
            },
            "next_cycle_at": state.next_cycle_at.isoformat() if state.next_cycle_at else None,
            "escrowed": len(self.escrows[sp_id]),
        }


def failure_reason(outcome: ScimOutcome, retried: int, retry_after: datetime) -> str:
    """Entra's reason text for a failed export, with the retry date (as in Q&A captures)."""
    names = {
        409: "Conflict",
        404: "NotFound",
        500: "InternalServerError",
        401: "Unauthorized",
        403: "Forbidden",
        429: "TooManyRequests",
        504: "GatewayTimeout",
        400: "BadRequest",
    }
    body = (
        '{"id":null,"externalId":null,"meta":null,"detail":"'
        + outcome.detail.replace('"', '\\"')
        + '","status":404,"schemas":["urn:ietf:params:scim:api:messages:2.0:Error"]}'
    )
    when = retry_after.astimezone(UTC)
    return (
        f"StatusCode: {names.get(outcome.status, str(outcome.status))} "
        "Message: Processing of the HTTP "
        "request resulted in an exception. Please see the HTTP response returned by the 'Response' "
        f"property of this exception for details. Web Response: {body}. This operation was retried "
        f"{retried} times. It will be retried again after this date: "
        f"{when:%Y-%m-%dT%H:%M:%S}.{when.microsecond:06d}0Z UTC"
    )


def _b64(raw: bytes) -> str:
    import base64

    return base64.urlsafe_b64encode(raw).decode().rstrip("=")[:43]


# ==================================================================== named scenarios


def _harness_basics(s: Scenario, saml_app: AppIntegration) -> None:
    h = s.harness
    h.groups["_account_all_users"] = HarnessGroup(
        "_account_all_users",
        "All Account Users",
        [],
        harness_managed=True,
        created=s.start - timedelta(days=400),
    )
    h.saml_settings.append(
        {
            "identifier": ids.harness_uuid(s.seed, "saml", 0),
            "displayName": f"Entra ID ({saml_app.display_name})",
            "entityIdentifier": saml_app.entity_id,
            "origin": "login.microsoftonline.com",
        }
    )
    h.projects.append(("default", "payments", "Payments"))
    h.role_assignments.append(
        RoleAssignment(
            "role_assignment_allusersviewer0000",
            "_account_all_users",
            "USER_GROUP",
            "_account_viewer",
            "_all_account_level_resources",
        )
    )


def _bind_after_create(s: Scenario, skip: set[str]) -> Callable[[], None]:
    """The Harness admin binds roles to new SCIM groups, except the planted ones."""

    def bind() -> None:
        bound = s.harness.bound_groups()
        for group in list(s.harness.groups.values()):
            if (
                group.externally_managed
                and group.identifier not in bound
                and group.name not in skip
            ):
                s.harness.role_assignments.append(
                    RoleAssignment(
                        "role_assignment_"
                        + ids.hex_token(s.seed, "ra", group.identifier, length=20),
                        group.identifier,
                        "USER_GROUP",
                        "_project_viewer",
                        "_all_project_level_resources",
                        org_identifier="default",
                        project_identifier="payments",
                    )
                )

    return bind


_PEOPLE = [
    ("alice", "Alice Johnson"),
    ("bob", "Bob Smith"),
    ("carol", "Carol Diaz"),
    ("dave", "Dave Wilson"),
    ("erin", "Erin Brooks"),
    ("frank", "Frank Moore"),
    ("grace", "Grace Lee"),
    ("heidi", "Heidi Park"),
    ("ivan", "Ivan Petrov"),
    ("judy", "Judy Chen"),
    ("mallory", "Mallory Quinn"),
    ("niaj", "Niaj Rao"),
    ("olivia", "Olivia Stone"),
    ("peggy", "Peggy Olson"),
    ("rupert", "Rupert Hale"),
    ("sybil", "Sybil Vance"),
    ("trent", "Trent Ward"),
    ("victor", "Victor Hugo"),
    ("walter", "Walter Kim"),
    ("yara", "Yara Haddad"),
]


def _people(s: Scenario) -> None:
    for key, name in _PEOPLE:
        s.add_user(key, name, f"{key}@example.com")


def _build_healthy(s: Scenario) -> None:
    _people(s)
    ng = s.add_app("nextgen", "Harness", "https://app.harness.io/ng/saml")
    eng = s.add_group("Engineering", [s.uid(k) for k in ("alice", "bob", "carol", "dave")])
    sre = s.add_group("SRE On-Call", [s.uid(k) for k in ("erin", "frank")])
    s.add_group("Data-Science", [s.uid(k) for k in ("grace", "heidi")])
    for group in (eng, sre):
        s.assign(ng, group.id, "Group")
    s.assign(ng, s.uid("ivan"), "User")
    _harness_basics(s, ng)
    s.script[1] = [_bind_after_create(s, set())]
    _warm_up(s, cycles=6)


def _build_incident(s: Scenario) -> None:
    _people(s)
    user1 = s.add_user("user1", "User One", "user1@example.com")
    user2 = s.add_user("user2", "User Two", "user2@example.com")
    user_2 = s.add_user("user_2", "User Underscore", "user_2@example.com")
    ng = s.add_app("nextgen", "Harness NextGen", "https://app.harness.io/ng/saml")
    fg = s.add_app("firstgen", "Harness", "app.harness.io")
    contractors = s.add_group("Contractors", [s.uid("mallory"), s.uid("niaj")])
    eng = s.add_group(
        "Engineering", [s.uid(k) for k in ("alice", "bob", "carol", "erin")], [contractors.id]
    )
    dev_team = s.add_group("Dev Team", [s.uid("dave"), s.uid("frank")])
    dev_dash = s.add_group("Dev-Team", [s.uid("grace"), s.uid("heidi")])
    sre = s.add_group("SRE On-Call", [s.uid("judy"), s.uid("olivia")])
    admins = s.add_group("Platform Admins", [s.uid("peggy")])
    data = s.add_group("Data Science", [s.uid("rupert"), s.uid("sybil"), s.uid("grace")])
    ops_jp = s.add_group("運用チーム", [s.uid("trent")])
    viewers = s.add_group("Release Viewers", [s.uid("victor"), s.uid("walter")])
    for group in (eng, dev_team, dev_dash, sre, admins, data, ops_jp, viewers):
        s.assign(ng, group.id, "Group")
    for user in (user1, user_2):
        s.assign(ng, user.id, "User")
    s.assign(ng, s.uid("yara"), "User", default=True)
    s.assign(ng, s.uid("ivan"), "User")
    for user in (user1, user2):
        s.assign(fg, user.id, "User")
    for group in (eng, dev_team, sre, admins, data, ops_jp, viewers):
        s.assign(fg, group.id, "Group")
    s.assign(fg, s.uid("yara"), "User", default=True)
    h = s.harness
    _harness_basics(s, fg)
    old = s.start - timedelta(days=200)
    h.groups["Platform_Admins"] = HarnessGroup(
        "Platform_Admins", "Platform Admins", [], created=old
    )
    h.groups["sre_oncall"] = HarnessGroup("sre_oncall", "SRE On-Call", [], created=old)
    h.groups["Legacy_Contractors"] = HarnessGroup(
        "Legacy_Contractors", "Legacy Contractors", [], True, created=old
    )
    native = HarnessUser(
        h.new_uuid(), "ops-admin@example.com", "Ops Admin", "Ops", "Admin", None, False, False
    )
    h.add_user(native)
    s.fail_rules[(ng.sp_id, s.uid("erin"))] = _FailRule(
        500, "", "Oops, something went wrong on our end.", 1
    )
    s.fail_rules[(ng.sp_id, s.uid("walter"))] = _FailRule(
        409, "", "User limit reached for account. Cannot add more users.", None
    )
    s.script[1] = [_bind_after_create(s, {"Release Viewers"})]
    s.script[2] = [lambda: _rename(s, data.id, "ML Platform")]
    s.script[3] = [lambda: _delete_in_harness_ui(s, "bob")]
    s.script[4] = [lambda: _unassign_user(s, ng, "ivan")]
    s.script[5] = [lambda: s.expire_scim_token(ng.sp_id)]
    s.script[6] = [lambda: s.renew_scim_token(ng.sp_id)]
    s.script[7] = [lambda: _entra_delete(s, "sybil")]
    s.options.quarantine_backoff = (timedelta(minutes=40), timedelta(hours=2), timedelta(hours=6))
    _warm_up(s, cycles=16)


def _build_quarantine(s: Scenario) -> None:
    _people(s)
    ng = s.add_app("nextgen", "Harness", "https://app.harness.io/ng/saml")
    eng = s.add_group("Engineering", [s.uid(k) for k in ("alice", "bob", "carol", "dave", "erin")])
    s.assign(ng, eng.id, "Group")
    _harness_basics(s, ng)
    s.script[1] = [_bind_after_create(s, set())]
    s.script[3] = [lambda: s.expire_scim_token(ng.sp_id)]
    _warm_up(s, cycles=5)


def _build_large(s: Scenario) -> None:
    opts = s.options
    s._churn = True
    seed = s.seed
    s.users = LazyTable(
        lambda i: _large_user(seed, i, s.start),
        opts.large_users,
        lambda key: ids.index_of_guid(seed, "user", key),
    )
    ng = s.add_app("nextgen", "Harness", "https://app.harness.io/ng/saml")
    per_group = max(1, opts.large_users // opts.large_groups)
    h = s.harness
    h.users = LazyTable(
        lambda i: _large_harness_user(seed, i, s.start),
        opts.large_users,
        lambda key: ids.index_of_harness_uuid(seed, "hu", key),
    )
    for g in range(opts.large_groups):
        group = s.add_group(f"Team {g:04d}", [])
        s.group_ranges[group.id] = (g * per_group, min(opts.large_users, (g + 1) * per_group))
        s.assign(ng, group.id, "Group")
        identifier = group_identifier(group.display_name, h.generation)
        members = [ids.harness_uuid(seed, "hu", i) for i in range(*s.group_ranges[group.id])]
        h.groups[identifier] = HarnessGroup(
            identifier, group.display_name, members, True, created=s.start
        )
        s.connector[ng.sp_id][group.id] = identifier
    _harness_basics(s, ng)
    _bind_after_create(s, set())()

    def implied(sp_id: str, object_id: str) -> str | None:
        index = ids.index_of_guid(seed, "user", object_id)
        if index is None or object_id in s.deleted_users:
            return None
        return ids.harness_uuid(seed, "hu", index)

    s._implied_target = implied
    state = s.jobs[ng.sp_id]
    history = SyntheticEventLog(
        opts.large_events, s.start, timedelta(seconds=2), _large_maker(s, ng)
    )
    s.events = CombinedEventLog(history, s.live_log)
    s._seq = 0
    done = Execution(
        ids.guid(seed, "cycle", "history"),
        s.start - timedelta(minutes=10),
        s.start - timedelta(minutes=6),
        "Succeeded",
        count_imported=opts.large_users,
    )
    state.last_execution = state.last_successful = state.last_with_exports = done
    state.code = "Active"
    state.cycle_count = opts.large_events // 1000
    state.synced_users = opts.large_users
    state.synced_groups = opts.large_groups
    state.next_cycle_at = s.start + timedelta(minutes=30)


_FIRST = ["Ana", "Ben", "Chloe", "Dan", "Eva", "Finn", "Gia", "Hugo", "Iris", "Jon", "Kai", "Lena"]
_LAST = ["Ng", "Olsen", "Patel", "Quinn", "Rossi", "Sato", "Tanaka", "Ueda", "Varga", "Wong"]


def _large_user(seed: int, i: int, start: datetime) -> EntraUser:
    first, last = _FIRST[i % len(_FIRST)], _LAST[(i // len(_FIRST)) % len(_LAST)]
    upn = f"{first.lower()}.{last.lower()}{i}@example.com"
    return EntraUser(
        ids.indexed_guid(seed, "user", i),
        f"{first} {last} {i}",
        first,
        last,
        upn,
        created=start - timedelta(days=100),
    )


def _large_harness_user(seed: int, i: int, start: datetime) -> HarnessUser:
    user = _large_user(seed, i, start)
    return HarnessUser(
        ids.harness_uuid(seed, "hu", i),
        user.mail,
        user.display_name,
        user.given_name,
        user.surname,
        user.id,
        created=start - timedelta(days=99),
    )


def _large_maker(s: Scenario, app: AppIntegration) -> Callable[[int, datetime], EventRecord]:
    seed = s.seed
    n_users = s.options.large_users
    actions = (
        ["update"] * 80
        + ["create"] * 6
        + ["disable"] * 3
        + ["delete"] * 1
        + ["other"] * 4
        + ["fail"] * 6
    )

    def make(i: int, at: datetime) -> EventRecord:
        mix = ids.digest(seed, "le", i)
        user_index = int.from_bytes(mix[:4], "big") % n_users
        kind = actions[mix[4] % len(actions)]
        user = _large_user(seed, user_index, s.start)
        event_id, change_id = event_ids(seed, i)
        status, action = "success", kind
        extra: dict[str, Any] = {}
        if kind == "other":
            status, extra = "skipped", {"skip_reason": "NotEffectivelyEntitled"}
        elif kind == "fail":
            action, status = "create", "failure"
            retry = at + timedelta(minutes=40)
            extra = {
                "error_code": "InternalServerError",
                "reason": failure_reason(ScimOutcome(500, detail="Oops"), 0, retry),
            }
        target = "" if status != "success" else ids.harness_uuid(seed, "hu", user_index)
        return EventRecord(
            seq=i,
            at=at,
            tenant_id=s.tenant_id,
            sp_id=app.sp_id,
            sp_name=app.display_name,
            app_id=app.app_id,
            job_id=app.job_id,
            cycle_id=ids.guid(seed, "cycle", app.sp_id, i // 1000),
            change_id=change_id,
            event_id=event_id,
            action=action,
            status=status,
            identity_type="User",
            source_id=user.id,
            source_name=user.display_name,
            upn=user.user_principal_name,
            target_id=target,
            duration_ms=300 + mix[5] * 10,
            modified=(("displayName", None, user.display_name),),
            **extra,
        )

    return make


def _warm_up(s: Scenario, cycles: int) -> None:
    """Run ``cycles`` NextGen cycles of history that end before the clock's current time."""
    history = CYCLE_INTERVAL * cycles + CYCLE_VISIBLE_AFTER
    saved_clock = s.clock
    s.start = saved_clock.now() - history
    for state in s.jobs.values():
        state.next_cycle_at = s.start
    fg = s.firstgen
    if fg is not None:
        s.jobs[fg.sp_id].next_cycle_at = s.start + timedelta(minutes=7)
    for user in list(s.users.extra.values()):
        user.created = s.start - timedelta(days=90)
    s.clock = ManualClock(s.start)
    try:
        while True:
            visible = s.next_cycle_visible_at()
            if visible is None or visible > saved_clock.now():
                break
            s.clock.set(visible)
            s.sync()
    finally:
        s.clock = saved_clock


def _rename(s: Scenario, group_id: str, new_name: str) -> None:
    group = s.groups[group_id]
    identifier = s.connector[s.nextgen.sp_id].get(group_id, "")
    s.notes["renamed"].append(
        {
            "entra_group_id": group_id,
            "old_name": group.display_name,
            "new_name": new_name,
            "identifier": identifier,
        }
    )
    group.display_name = new_name
    s.mark_dirty(group_id)


def _delete_in_harness_ui(s: Scenario, key: str) -> None:
    user_id = s.uid(key)
    target = s.connector[s.nextgen.sp_id].get(user_id)
    if target is not None:
        s.harness.remove_user(target)
        s.notes["deleted_in_harness"].append(user_id)


def _unassign_user(s: Scenario, app: AppIntegration, key: str) -> None:
    s.unassign(app, s.uid(key))


def _entra_delete(s: Scenario, key: str) -> None:
    user_id = s.uid(key)
    s.deleted_users.add(user_id)
    s.mark_dirty(user_id)
    for group in s.groups.values():
        if user_id in group.member_user_ids:
            group.member_user_ids.remove(user_id)


_BUILDERS: dict[str, Callable[[Scenario], None]] = {
    "healthy": _build_healthy,
    "incident": _build_incident,
    "quarantine": _build_quarantine,
    "large": _build_large,
}
