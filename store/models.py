"""Records the cache stores and the readers get, shared by every layer.

These are strict: collectors map their lenient wire models onto them, so anything that reaches
SQLite has already been checked. Each record class names its table and primary key, which is
all `Cache.save_batch` needs to upsert it.

The names (`SourceName`, ...) and the overview's answers (`SourceFreshness`, `JobHealth`,
`CycleSummary`, `Overview`) are plain, in `store.names` and `store.overview`: the TUI's first
frame reads them before pydantic is imported. They are named here too.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar, Literal, TypeVar

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from store.names import SOURCES as SOURCES
from store.names import AppName as AppName
from store.names import ServiceName as ServiceName
from store.names import SourceName as SourceName
from store.names import service_of as service_of
from store.overview import CycleSummary as CycleSummary
from store.overview import JobHealth as JobHealth
from store.overview import JobState as JobState
from store.overview import Overview as Overview
from store.overview import SourceFreshness as SourceFreshness


class Record(BaseModel):
    """A row of one cache table; subclasses set the table name and primary key."""

    # defer_build: schemas are built on first use, not at import (~0.15 s off start-up).
    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)

    table: ClassVar[str]
    primary_key: ClassVar[tuple[str, ...]]
    presence_flags: ClassVar[tuple[str, ...]] = ()
    """For rows several sources describe: one 0/1 column per source saying it lists the row.
    Such rows are merged (a source updates only the fields it set) and removed only when no
    source lists them any more."""

    def to_row(self) -> dict[str, Any]:
        """The SQLite row: datetimes as ISO 8601 UTC text, booleans as 0/1."""
        return dict(zip(type(self).model_fields, self.to_values(), strict=True))

    def to_values(self) -> tuple[Any, ...]:
        """The row's values in field order (the ingest hot path: no dict per row)."""
        return tuple(_to_sql(value) for value in self.__dict__.values())

    def key_values(self) -> tuple[Any, ...]:
        """The row's primary key as stored (`to_values` of the key fields alone)."""
        return tuple(_to_sql(self.__dict__[key]) for key in self.primary_key)


def _to_sql(value: object) -> object:
    if value.__class__ is str or value is None:
        return value
    if isinstance(value, datetime):
        return iso_utc(value)
    if isinstance(value, bool):
        return int(value)
    return value


def iso_utc(moment: datetime) -> str:
    """ISO 8601 text that sorts correctly as a string: UTC, microseconds, a `Z`."""
    offset = moment.utcoffset()
    if offset:
        moment = moment.astimezone(UTC)
    # With a fraction, `isoformat()` already writes microseconds, in half the time of asking
    # for them (`timespec`): a fifth of the Python work of saving a day's events.
    text = moment.isoformat() if moment.microsecond else moment.isoformat(timespec="microseconds")
    # An aware moment ends in "+00:00" now; cutting it is cheaper than replace(tzinfo=None).
    return (text if offset is None else text[:-6]) + "Z"


_Model = TypeVar("_Model", bound=BaseModel)


def construct_trusted(model_type: type[_Model], values: dict[str, Any]) -> _Model:
    """`model_type.model_construct(**values)` for values that name every field, ~5x faster.

    Only for answers the store builds from its own typed columns, of models without aliases,
    private attributes or post-init hooks: model_construct's per-field loop was most of a
    thousand-row read.
    """
    model = model_type.__new__(model_type)
    object.__setattr__(model, "__dict__", values)
    object.__setattr__(model, "__pydantic_fields_set__", set(values))
    object.__setattr__(model, "__pydantic_extra__", None)
    object.__setattr__(model, "__pydantic_private__", None)
    return model


class ProvisioningEvent(Record):
    """One provisioningObjectSummary from Entra's provisioning logs."""

    table: ClassVar[str] = "provisioning_events"
    primary_key: ClassVar[tuple[str, ...]] = ("id",)

    id: str
    """Graph's unique id of the activity (not necessarily a GUID)."""
    activity_at: AwareDatetime
    """When the action happened (UTC)."""
    job_id: str
    cycle_id: str
    change_id: str = ""
    service_principal_id: str = ""
    """Object id of the enterprise app's service principal that ran the job."""
    action: str
    """provisioningAction as on the wire: create, update, delete, disable, stagedDelete, other..."""
    status: str
    """provisioningStatusInfo.status: success, failure, skipped, warning..."""
    source_id: str = ""
    """Entra object id of the identity being provisioned."""
    source_type: str = ""
    """User or Group (as Graph spells it)."""
    source_name: str = ""
    target_id: str = ""
    """The object's id in Harness, empty when it was never created."""
    target_name: str = ""
    error_code: str = ""
    error_category: str = ""
    reason: str = ""
    recommended_action: str = ""
    duration_ms: int | None = None
    initiated_by: str = ""
    detail: bytes | None = None
    """Steps, modified properties and additional details, compressed (see store.detail)."""


class SyncJob(Record):
    """The state of one provisioning (synchronization) job, as last observed."""

    table: ClassVar[str] = "sync_jobs"
    primary_key: ClassVar[tuple[str, ...]] = ("service_principal_id", "job_id")

    service_principal_id: str
    job_id: str
    app: AppName = "nextgen"
    template_id: str = ""
    schedule_state: str = ""
    """Active, Disabled or Paused."""
    interval_seconds: int | None = None
    """The schedule interval (PT40M = 2400); None when the job is never scheduled."""
    status_code: str = ""
    """NotConfigured, NotRun, Active, Paused or Quarantine."""
    successive_failures: int = 0
    escrows_pruned: bool = False
    last_began: AwareDatetime | None = None
    last_ended: AwareDatetime | None = None
    last_state: str = ""
    """Succeeded, Failed or EntryLevelErrors."""
    last_activity_id: str = ""
    last_error_code: str = ""
    last_error_message: str = ""
    last_escrowed: int | None = None
    last_exported: int | None = None
    last_success_began: AwareDatetime | None = None
    last_success_ended: AwareDatetime | None = None
    steady_state_last: AwareDatetime | None = None
    quarantine_reason: str = ""
    quarantine_series_began: AwareDatetime | None = None
    quarantine_current_began: AwareDatetime | None = None
    quarantine_next_attempt: AwareDatetime | None = None
    quarantine_series_count: int | None = None
    quarantine_error: str = ""
    troubleshooting_url: str = ""
    observed_at: AwareDatetime
    """When scimwatch read this state."""


class JobExecution(Record):
    """One job execution (a sync cycle) seen as the job's lastExecution."""

    table: ClassVar[str] = "job_executions"
    primary_key: ClassVar[tuple[str, ...]] = ("job_id", "began")

    job_id: str
    began: AwareDatetime
    ended: AwareDatetime | None = None
    state: str = ""
    activity_id: str = ""
    escrowed: int | None = None
    exported: int | None = None
    imported: int | None = None
    error_code: str = ""
    error_message: str = ""


class AppRoleAssignment(Record):
    """A user or group assigned to one of the Harness enterprise apps."""

    table: ClassVar[str] = "app_role_assignments"
    primary_key: ClassVar[tuple[str, ...]] = ("id",)

    id: str
    app: AppName
    resource_id: str
    """Object id of the app's service principal."""
    principal_id: str
    principal_type: str
    """User, Group or ServicePrincipal."""
    principal_name: str = ""
    app_role_id: str
    """The all-zero GUID is Default Access, which Entra never provisions."""
    created_at: AwareDatetime | None = None


class EntraUser(Record):
    """An Entra user relevant to the Harness apps."""

    table: ClassVar[str] = "entra_users"
    primary_key: ClassVar[tuple[str, ...]] = ("id",)

    id: str
    user_principal_name: str = ""
    mail: str = ""
    display_name: str = ""
    account_enabled: bool | None = None


class EntraGroup(Record):
    """An Entra group assigned to a Harness app (or nested in one)."""

    table: ClassVar[str] = "entra_groups"
    primary_key: ClassVar[tuple[str, ...]] = ("id",)

    id: str
    display_name: str = ""
    security_enabled: bool | None = None


class EntraMembership(Record):
    """A member of an Entra group, direct (provisioned) or only transitive (never provisioned)."""

    table: ClassVar[str] = "entra_memberships"
    primary_key: ClassVar[tuple[str, ...]] = ("group_id", "member_id")

    group_id: str
    member_id: str
    member_type: str = "user"
    """user or group (the @odata.type without its namespace)."""
    direct: bool
    """True for /members; False when the member is only found through /transitiveMembers."""


class HarnessUser(Record):
    """A user in the Harness account, from SCIM and/or the NextGen users API."""

    table: ClassVar[str] = "harness_users"
    primary_key: ClassVar[tuple[str, ...]] = ("id",)
    presence_flags: ClassVar[tuple[str, ...]] = ("in_scim", "in_ng")

    id: str
    email: str = ""
    name: str = ""
    external_id: str = ""
    active: bool | None = None
    in_scim: bool = False
    """Listed by SCIM /Users, i.e. provisioned by SCIM."""
    in_ng: bool = False
    """Listed by the NextGen users API."""


class HarnessGroup(Record):
    """A Harness user group, SCIM-managed or native."""

    table: ClassVar[str] = "harness_groups"
    primary_key: ClassVar[tuple[str, ...]] = ("scope", "identifier")
    presence_flags: ClassVar[tuple[str, ...]] = ("in_scim", "in_ng")

    scope: str = "account"
    """account, org/ORG or org/ORG/project/PROJECT."""
    identifier: str
    name: str = ""
    externally_managed: bool = False
    sso_linked: bool = False
    harness_managed: bool = False
    in_scim: bool = False
    """Listed by SCIM /Groups (the SCIM id is the identifier)."""
    in_ng: bool = False


class HarnessGroupMember(Record):
    """A Harness user in a Harness group."""

    table: ClassVar[str] = "harness_group_members"
    primary_key: ClassVar[tuple[str, ...]] = ("scope", "group_identifier", "user_id")

    scope: str = "account"
    group_identifier: str
    user_id: str


class SsoSetting(Record):
    """One of the Harness account's authentication (SSO) settings."""

    table: ClassVar[str] = "harness_sso_settings"
    primary_key: ClassVar[tuple[str, ...]] = ("id",)

    id: str
    sso_type: str = ""
    """SAML, LDAP, OAUTH..."""
    display_name: str = ""
    origin: str = ""
    """The IdP's entity/issuer, when known."""
    client_id: str = ""
    """For SAML over Entra: the application (client) id the SAML app uses, when given."""
    authentication_enabled: bool = False
    """Whether this setting is the account's active sign-in mechanism."""


class RoleAssignment(Record):
    """A Harness role binding whose principal is a user group."""

    table: ClassVar[str] = "harness_role_assignments"
    primary_key: ClassVar[tuple[str, ...]] = ("identifier", "scope")

    identifier: str
    scope: str = "account"
    principal_identifier: str
    principal_scope: str = "account"
    principal_type: str = "USER_GROUP"
    role_identifier: str = ""
    resource_group_identifier: str = ""
    disabled: bool = False


class CoverageGapRecord(Record):
    """A span of the provisioning log lost to downtime past Entra's retention.

    reliability.md 1.6 point 6. Saved with the poll that found it; read back by
    `store.health.coverage_gaps`.
    """

    table: ClassVar[str] = "coverage_gaps"
    primary_key: ClassVar[tuple[str, ...]] = ("source", "gap_from")

    source: SourceName
    gap_from: AwareDatetime
    """The newest event saved before the downtime: nothing after it could be fetched..."""
    gap_to: AwareDatetime
    """...until this time, the oldest Entra still kept when the gap was found."""
    detected_at: AwareDatetime


RECORD_TYPES: tuple[type[Record], ...] = (
    ProvisioningEvent,
    SyncJob,
    JobExecution,
    AppRoleAssignment,
    EntraUser,
    EntraGroup,
    EntraMembership,
    HarnessUser,
    HarnessGroup,
    HarnessGroupMember,
    SsoSetting,
    RoleAssignment,
    CoverageGapRecord,
)


class Snapshot(BaseModel):
    """Rows of `table` matching `where` that a batch did not upsert are deleted with it.

    Snapshot sources (jobs, assignments, groups, Harness users) return the whole set each poll;
    this is how a row that vanished upstream vanishes from the cache, atomically with the rest.
    """

    model_config = ConfigDict(frozen=True, defer_build=True)

    table: str
    where: dict[str, str | int] = Field(default_factory=dict)
    """Column = value pairs that bound the snapshot (e.g. {"app": "firstgen"})."""
    clear: str | None = None
    """For rows several sources describe: instead of deleting a row this batch did not bring
    back, set this presence flag to 0; the row goes once no source lists it."""


class Batch(BaseModel):
    """What one poll of one source returns: records, snapshots, and the new watermark."""

    model_config = ConfigDict(frozen=True, defer_build=True)

    source: SourceName
    records: list[Record] = Field(default_factory=list)
    snapshots: list[Snapshot] = Field(default_factory=list)
    watermark: str | None = None
    """The source's new watermark (e.g. the newest activityDateTime seen); None keeps the old."""
    skipped: int = 0
    """Items set aside as malformed (with a logged reason) rather than losing the page."""
    complete: bool = True
    """False when the poll saved a partial backfill and should continue next time."""


class PollRun(BaseModel):
    """One poll of one source, successful or not."""

    model_config = ConfigDict(frozen=True, defer_build=True)

    id: int | None = None
    source: SourceName
    started_at: AwareDatetime
    finished_at: AwareDatetime
    ok: bool
    error: str = ""
    error_kind: str = ""
    """The class of failure (auth, throttled, unavailable, payload...), empty when ok."""
    records: int = 0
    skipped: int = 0


# --- The health model's answers (computed in store.health) -------------------------------


class _Answer(BaseModel):
    model_config = ConfigDict(frozen=True, defer_build=True)


class Hint(_Answer):
    """What to do about a failure, in Harness terms, beside Microsoft's recommendation."""

    title: str
    what_to_do: str
    severity: str
    retried_automatically: bool


class PendingRetry(_Answer):
    """An object whose latest provisioning event failed: Entra will retry it."""

    job_id: str
    source_id: str
    source_type: str
    source_name: str
    target_id: str
    action: str
    attempts: int
    """Consecutive failed cycles."""
    first_failure_at: datetime
    last_failure_at: datetime
    error_code: str
    error_category: str
    reason: str
    recommended_action: str
    retry_at: datetime | None
    retry_at_from: Literal["reason", "next_cycle", "unknown"]
    escalated: bool
    """Failed twice or more: retrying alone will not fix it, the admin must act."""
    escrow_expires_at: datetime
    """28 days after the first failure Entra stops retrying (the escrow horizon)."""
    hint: Hint


GroupState = Literal[
    "ok",
    "not_provisioned",
    "collision",
    "native_same_identifier",
    "native_same_name",
    "renamed",
    "unsyncable",
    "drift",
    "nested_members",
    "no_role_binding",
    "orphan",
]


class GroupMapping(_Answer):
    """An Entra group in scope (or an orphan Harness group) and what Harness made of it."""

    entra_group_id: str
    """Empty for an orphan Harness group."""
    entra_name: str
    predicted_identifier: str
    harness_identifier: str
    """The Harness group actually found, empty when none."""
    harness_name: str
    state: GroupState
    """The most serious of `problems` (ok when there are none)."""
    problems: tuple[GroupState, ...]
    detail: str
    entra_members: tuple[str, ...] = ()
    """Direct members (what Entra provisions), as emails or names."""
    harness_members: tuple[str, ...] = ()
    missing_in_harness: tuple[str, ...] = ()
    extra_in_harness: tuple[str, ...] = ()
    nested_only: tuple[str, ...] = ()
    """Members reached only through nested groups: Entra never provisions them."""
    pending_error: str = ""


SsoConflictKind = Literal["firstgen_unassigned", "unmatched_harness_user", "default_access"]


class SsoConflict(_Answer):
    """A user who cannot sign in, or an assignment that does nothing."""

    kind: SsoConflictKind
    principal_id: str
    email: str
    display_name: str
    detail: str
    what_to_do: str
    app: AppName
    """The Entra app to fix: FirstGen for a user who cannot sign in (not assigned to it),
    NextGen for a Harness user Entra does not know, the assignment's app for Default Access
    (a user can hold it on both apps: two conflicts)."""


def how_assigned(group: str) -> str:
    """How a user is assigned, as the SSO conflicts and the user lookup word it.

    Args:
        group: the assigned group the user is a direct member of (its name, else its id);
            "" for a direct assignment.
    """
    return f"via group {group}" if group else "directly"


class UserAssignment(_Answer):
    """One way a user is assigned to a Harness app in Entra: directly or through a group."""

    app: AppName
    group: str = ""
    """The assigned group the user is a direct member of (its name, else its id); "" when
    the user is assigned directly."""
    default_access: bool = False
    """Assigned with Default Access (the all-zero role), which Entra never provisions."""
    redundant: bool = False
    """Default Access while another of the user's assignments to the app has a role: it adds
    nothing for this user."""

    @property
    def how(self) -> str:
        """How, as the SSO conflicts say it: "directly" or "via group NAME"."""
        return how_assigned(self.group)

    @property
    def role_note(self) -> str:
        """What the role means, for a Default Access assignment ("" otherwise)."""
        if not self.default_access:
            return ""
        meaning = "adds nothing" if self.redundant else "never provisioned"
        return f"with Default Access ({meaning})"

    def describe(self) -> str:
        """One line: the app, how, and what a Default Access role means."""
        note = f", {self.role_note}" if self.role_note else ""
        return f"{self.app}: {self.how}{note}"


class UserMatch(_Answer):
    """A user whose name, UPN or email holds a looked-up text, on one side or both."""

    name: str
    email: str
    """The Entra user's mail (else UPN), or the Harness user's email."""
    entra_id: str = ""
    """Empty when only Harness has the user."""
    harness_id: str = ""
    """Empty when only Entra has the user."""

    @property
    def key(self) -> str:
        """What `store.health.lookup_user` finds exactly this user by."""
        return self.entra_id or self.email or self.harness_id


class UserLookup(_Answer):
    """Both sides of one user, and the verdict.

    For a text that is no user's own id, UPN or email, the users whose names or emails hold
    it instead (`matches`), when there are several: none of them is looked up.
    """

    query: str
    entra_user: EntraUser | None
    assignments: tuple[UserAssignment, ...]
    """Every way the user is assigned to each app, NextGen first; per app direct assignments
    first, then groups, in the order the assignments are listed (the first without Default
    Access is how Entra provisions the user)."""
    nested_only_groups: tuple[str, ...]
    latest_events: tuple[ProvisioningEvent, ...]
    event_apps: dict[str, str] = Field(default_factory=dict)
    """The app ("nextgen", "firstgen") of each latest event's job, by job id (a job not in the
    cache has none)."""
    pending: PendingRetry | None
    harness_user: HarnessUser | None
    harness_groups: tuple[str, ...]
    sso_conflicts: tuple[SsoConflict, ...]
    verdict: str
    """One line: what is wrong and what to do, or that all is well."""
    matches: tuple[UserMatch, ...] = ()
    """Users to pick from, when the text matched several by name, UPN or email."""
