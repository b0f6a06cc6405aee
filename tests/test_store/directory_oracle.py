"""The directory answers as the store first computed them, in Python: the SQL's test oracle.

`store.health` computed group mappings and SSO conflicts this way (loading the whole directory
as dicts) until it moved to SQL; the tests assert the SQL gives exactly these answers.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Mapping
from typing import Any

from sqlite_utils import Database

from store import harness_ids
from store.directory import (  # which problem wins is a rule, not a computation
    DEFAULT_ACCESS_ROLE,
    _worst,
)
from store.health import _rows
from store.models import GroupMapping, GroupState, SsoConflict
from store.playbook import parse_service_message

# --- Who is assigned ---------------------------------------------------------------------


class Directory:
    """The Entra and Harness sides loaded once for the mapping and SSO answers."""

    def __init__(self, db: Database) -> None:
        self.users = {row["id"]: row for row in _rows(db, "SELECT * FROM entra_users")}
        self.groups = {row["id"]: row for row in _rows(db, "SELECT * FROM entra_groups")}
        self.assignments = _rows(db, "SELECT * FROM app_role_assignments")
        self.members: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for row in _rows(db, "SELECT * FROM entra_memberships"):
            self.members[row["group_id"]].append(row)
        self.harness_users = {row["id"]: row for row in _rows(db, "SELECT * FROM harness_users")}
        self.harness_by_email = {
            row["email"].lower(): row for row in self.harness_users.values() if row["email"]
        }
        self.harness_groups = _rows(
            db, "SELECT * FROM harness_groups WHERE scope = 'account' AND harness_managed = 0"
        )
        self.harness_members: dict[str, set[str]] = defaultdict(set)
        for row in _rows(db, "SELECT * FROM harness_group_members WHERE scope = 'account'"):
            self.harness_members[row["group_identifier"]].add(row["user_id"])
        self.bound = {
            row["principal_identifier"]
            for row in _rows(
                db,
                "SELECT principal_identifier FROM harness_role_assignments"
                " WHERE principal_type = 'USER_GROUP' AND disabled = 0",
            )
        }
        # A group provisioned by both apps has a state per job: the NextGen job's wins
        # (ordered last), whatever order the rows were written in.
        self.group_targets = {
            row["source_id"]: row
            for row in _rows(
                db,
                "SELECT * FROM object_state WHERE source_type = 'Group' ORDER BY job_id IN"
                " (SELECT job_id FROM sync_jobs WHERE app = 'nextgen'), job_id",
            )
        }
        self.owners = {
            row["target_id"]: group_id
            for group_id, row in self.group_targets.items()
            if row["target_id"]
        }
        """Harness identifier (SCIM id) -> the Entra group the logs show provisioned it."""
        self._emails: dict[str, str] = {}

    def email_of(self, user_id: str) -> str:
        email = self._emails.get(user_id)
        if email is None:
            user = self.users.get(user_id)
            email = str(user["mail"] or user["user_principal_name"]).lower() if user else ""
            self._emails[user_id] = email
        return email

    def label_of(self, user_id: str) -> str:
        return self.email_of(user_id) or user_id

    def assigned(self, app: str, principal_type: str, *, provisioned: bool) -> list[dict[str, Any]]:
        return [
            row
            for row in self.assignments
            if row["app"] == app
            and row["principal_type"] == principal_type
            and (not provisioned or row["app_role_id"] != DEFAULT_ACCESS_ROLE)
        ]

    def direct_users(self, group_id: str) -> list[str]:
        return [
            row["member_id"]
            for row in self.members.get(group_id, [])
            if row["direct"] and row["member_type"] == "user"
        ]

    def nested_users(self, group_id: str) -> list[str]:
        return [
            row["member_id"]
            for row in self.members.get(group_id, [])
            if not row["direct"] and row["member_type"] == "user"
        ]

    def users_in_scope(self, app: str) -> dict[str, str]:
        """Users Entra provisions for an app: user id -> how (directly or via a group)."""
        scope: dict[str, str] = {}
        for row in self.assigned(app, "User", provisioned=True):
            scope[row["principal_id"]] = "directly"
        for row in self.assigned(app, "Group", provisioned=True):
            name = row["principal_name"] or row["principal_id"]
            for user_id in self.direct_users(row["principal_id"]):
                scope.setdefault(user_id, f"via group {name}")
        return scope

    def disabled(self, user_id: str) -> bool:
        """Whether Entra says the account is disabled (not when it does not say)."""
        return self.users.get(user_id, {}).get("account_enabled") == 0

    def firstgen_present(self) -> bool:
        return any(row["app"] == "firstgen" for row in self.assignments)


# --- Group / ID mappings -----------------------------------------------------------------


def compute_group_mappings(db: Database, directory: Directory | None = None) -> list[GroupMapping]:
    directory = directory or Directory(db)
    assigned = directory.assigned("nextgen", "Group", provisioned=True)
    names = {
        row["principal_id"]: (
            directory.groups.get(row["principal_id"], {}).get("display_name")
            or row["principal_name"]
        )
        for row in assigned
    }
    predicted = {group_id: harness_ids.harness_identifier(name) for group_id, name in names.items()}
    claims: dict[str, list[str]] = defaultdict(list)
    for group_id, identifier in predicted.items():
        if identifier:
            claims[identifier].append(group_id)
    by_identifier = {row["identifier"]: row for row in directory.harness_groups}
    matched: set[str] = set()
    mappings = []
    for group_id, name in sorted(names.items(), key=lambda item: str(item[1]).lower()):
        mapping = _map_group(
            directory, group_id, str(name), predicted[group_id], claims, by_identifier
        )
        matched.add(mapping.harness_identifier)
        mappings.append(mapping)
    mappings += [
        _orphan(row)
        for row in directory.harness_groups
        if row["externally_managed"] and row["identifier"] not in matched
    ]
    return mappings


def _map_group(
    directory: Directory,
    group_id: str,
    name: str,
    identifier: str,
    claims: Mapping[str, list[str]],
    by_identifier: Mapping[str, dict[str, Any]],
) -> GroupMapping:
    problems: list[GroupState] = []
    details: list[str] = []
    state = directory.group_targets.get(group_id)
    target = state["target_id"] if state else ""
    harness = by_identifier.get(target) if target else None
    if harness is None:
        # No SCIM id from the logs: match a SCIM group by the identifiers the rule gives this
        # name, unless the logs show another Entra group owns it (the loser of a collision).
        harness = _by_historical_identifier(name, by_identifier, directory.owners, group_id)
    syncable = harness_ids.check_syncable(name)
    if not syncable.ok:
        problems.append("unsyncable")
        details.append(syncable.explanation)
    if identifier and len(claims.get(identifier, [])) > 1:
        problems.append("collision")
        others = [other for other in claims[identifier] if other != group_id]
        details.append(f"{len(others) + 1} Entra groups derive the identifier {identifier!r}")
    native = by_identifier.get(identifier)
    if native is not None and not native["externally_managed"] and harness is not native:
        problems.append("native_same_identifier")
        details.append(
            f"a native Harness group already has the identifier {identifier!r}: creating the "
            "SCIM group fails (409) or, on newer Harness, takes the native group over"
        )
    same_name = [
        row
        for row in directory.harness_groups
        if row["name"] == name and not row["externally_managed"] and row is not native
    ]
    if same_name:
        problems.append("native_same_name")
        details.append(
            f"a native Harness group is also named {name!r} ({same_name[0]['identifier']}): "
            "Harness keeps both, which confuses people assigning roles"
        )
    pending = failing = ""
    if state and state["latest_status"] == "failure":
        failing = state["error_code"] or "failure"
        said = parse_service_message(state["reason"]) or state["reason"]
        pending = f"{failing}: {said}"[:300]
    if harness is None:
        problems.append("not_provisioned")
        details.append(
            "no Harness group found" + (f"; Entra's create fails ({failing})" if failing else "")
        )
    entra_members = sorted(directory.label_of(user) for user in directory.direct_users(group_id))
    nested = sorted(directory.label_of(user) for user in directory.nested_users(group_id))
    harness_members: list[str] = []
    missing: list[str] = []
    extra: list[str] = []
    if harness is not None:
        if harness["identifier"] not in {
            c.identifier for c in harness_ids.candidate_identifiers(name)
        }:
            # Harness never changes an identifier: after a rename in Entra (and the name
            # update SCIM sends) the group keeps the identifier of its first name.
            problems.append("renamed")
            details.append(
                f"renamed in Entra: Harness keeps the identifier {harness['identifier']!r} "
                f"(from its old name) and shows {harness['name']!r}"
            )
        if harness["identifier"] not in directory.bound:
            problems.append("no_role_binding")
            details.append(
                "no role is bound to this Harness group: its members get no permissions "
                "(roles are never managed from Entra)"
            )
        harness_members = sorted(
            str(directory.harness_users.get(user, {}).get("email") or user).lower()
            for user in directory.harness_members.get(harness["identifier"], set())
        )
        provisioned = {  # Entra does not create a disabled account Harness has no user for
            directory.label_of(user)
            for user in directory.direct_users(group_id)
            if not directory.disabled(user)
            or directory.label_of(user) in directory.harness_by_email
        }
        missing = sorted(provisioned - set(harness_members))
        extra = sorted(set(harness_members) - set(entra_members))
        if missing or extra:
            problems.append("drift")
            details.append(
                f"{len(missing)} Entra member(s) missing in Harness, {len(extra)} extra in Harness"
            )
    if nested:
        problems.append("nested_members")
        details.append(f"{len(nested)} member(s) only through nested groups: never provisioned")
    return GroupMapping(
        entra_group_id=group_id,
        entra_name=name,
        predicted_identifier=identifier,
        harness_identifier=harness["identifier"] if harness else "",
        harness_name=harness["name"] if harness else "",
        state=_worst(problems),
        problems=tuple(problems),
        detail="; ".join(details) or "in sync",
        entra_members=tuple(entra_members),
        harness_members=tuple(harness_members),
        missing_in_harness=tuple(missing),
        extra_in_harness=tuple(extra),
        nested_only=tuple(nested),
        pending_error=pending,
    )


def _by_historical_identifier(
    name: str,
    by_identifier: Mapping[str, dict[str, Any]],
    owners: Mapping[str, str],
    group_id: str,
) -> dict[str, Any] | None:
    for candidate in harness_ids.candidate_identifiers(name):
        row = by_identifier.get(candidate.identifier)
        owner = owners.get(candidate.identifier, group_id)
        if row is not None and row["externally_managed"] and owner == group_id:
            return row
    return None


def _orphan(row: Mapping[str, Any]) -> GroupMapping:
    return GroupMapping(
        entra_group_id="",
        entra_name="",
        predicted_identifier="",
        harness_identifier=row["identifier"],
        harness_name=row["name"],
        state="orphan",
        problems=("orphan",),
        detail="a SCIM-managed Harness group that matches no Entra group assigned to the app "
        "(unassigned, deleted, or provisioned by another app)",
    )


# --- SSO conflicts -----------------------------------------------------------------------


def _outside_firstgen(directory: Directory) -> Iterator[tuple[str, str]]:
    """(user id, how) of NextGen's users in Harness (or of no email) FirstGen does not assign."""
    if not directory.firstgen_present():
        return
    firstgen_scope = directory.users_in_scope("firstgen")
    nextgen_scope = directory.users_in_scope("nextgen")
    for user_id, how in sorted(nextgen_scope.items(), key=lambda item: directory.label_of(item[0])):
        if user_id in firstgen_scope:
            continue
        email = directory.email_of(user_id)
        if email and email not in directory.harness_by_email:
            continue  # not in Harness yet: nothing to sign in to
        yield user_id, how


def disabled_outside_firstgen(db: Database) -> list[str]:
    """The disabled accounts `compute_sso_conflicts` leaves out of those who cannot sign in."""
    directory = Directory(db)
    return [user_id for user_id, _ in _outside_firstgen(directory) if directory.disabled(user_id)]


def compute_sso_conflicts(db: Database, directory: Directory | None = None) -> list[SsoConflict]:
    directory = directory or Directory(db)
    conflicts: list[SsoConflict] = []
    nextgen_scope = directory.users_in_scope("nextgen")
    for user_id, how in _outside_firstgen(directory):
        if directory.disabled(user_id):
            continue  # a disabled account signs in nowhere, and Entra does not provision it
        conflicts.append(
            SsoConflict(
                kind="firstgen_unassigned",
                principal_id=user_id,
                email=directory.email_of(user_id),
                display_name=str(directory.users.get(user_id, {}).get("display_name", "")),
                detail=f"provisioned through the NextGen app ({how}) but not assigned to "
                "the FirstGen app, which Harness signs users in through: sign-in fails",
                what_to_do="Assign the user (or a group they are a direct member of) to "
                "the FirstGen Harness app in Entra, or move Harness SAML sign-in to the "
                "NextGen app and retire the FirstGen one.",
                app="firstgen",
            )
        )
    known_emails = {directory.email_of(user_id) for user_id in nextgen_scope}
    for user in sorted(directory.harness_users.values(), key=lambda row: str(row["email"])):
        email = str(user["email"]).lower()
        if user["in_scim"] and email and email not in known_emails:
            conflicts.append(
                SsoConflict(
                    kind="unmatched_harness_user",
                    principal_id=user["id"],
                    email=email,
                    display_name=user["name"],
                    detail="a SCIM user in Harness whose email matches no user assigned to the "
                    "NextGen app in Entra",
                    what_to_do="If they should have access, assign them in Entra; otherwise "
                    "remove them in Harness (Entra no longer manages them).",
                    app="nextgen",
                )
            )
    provisioned = {
        "nextgen": set(nextgen_scope),
        "firstgen": set(directory.users_in_scope("firstgen")),
    }
    for row in directory.assignments:
        if row["app_role_id"] != DEFAULT_ACCESS_ROLE:
            continue
        app, principal = row["app"], row["principal_id"]
        redundant = any(
            other["principal_id"] == principal
            and other["app"] == app
            and other["app_role_id"] != DEFAULT_ACCESS_ROLE
            for other in directory.assignments
        ) or (row["principal_type"] == "User" and principal in provisioned[app])
        if redundant:
            detail = (
                f"assigned to the {app} app with Default Access besides a role that Entra "
                "provisions: the Default Access assignment adds nothing"
            )
            what_to_do = (
                "Remove this Default Access assignment in Entra: a role already gives access "
                "(editing it to the User role would duplicate that)."
            )
        else:
            detail = (
                f"assigned to the {app} app with Default Access: Entra never provisions such "
                "assignments"
            )
            what_to_do = "Edit the assignment in Entra and pick the app's User role."
        conflicts.append(
            SsoConflict(
                kind="default_access",
                principal_id=principal,
                email=directory.email_of(principal),
                display_name=row["principal_name"],
                detail=detail,
                what_to_do=what_to_do,
                app=app,
            )
        )
    return conflicts
