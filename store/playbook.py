"""What a failed provisioning event means for the admin: retry time, Harness playbook, escalation.

Pure functions over the text Entra writes into a provisioning event (reference/graph-api.md
§1.9-1.10, §3.2-3.4) and what Harness does on its side (reference/harness-api.md §1.2, §1.9,
§2, §4, §5). Nothing here raises on hostile input: a reason is text from the network.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta, timezone
from types import MappingProxyType
from typing import Final, Literal

__all__ = [
    "ENTRA_CYCLE_INTERVAL",
    "ESCALATE_AFTER_FAILURES",
    "ESCROW_HORIZON",
    "PLAYBOOK",
    "QUARANTINE_RETRY_OFFSETS",
    "QUARANTINE_RETRY_OFFSETS_LEGACY",
    "RULES_VERSION",
    "PlaybookEntry",
    "Severity",
    "escrow_expires_at",
    "escrow_remaining",
    "is_escalated",
    "normalise_error_code",
    "parse_conflicting_identifier",
    "parse_entra_timestamp",
    "parse_http_status",
    "parse_retry_count",
    "parse_retry_time",
    "parse_service_message",
    "playbook_entry",
    "playbook_for",
    "playbook_key",
    "quarantine_disabled_at",
    "quarantine_next_attempt",
    "would_quarantine",
]

Severity = Literal["info", "warning", "critical"]
"""info: wait, Entra retries; warning: an object needs the admin; critical: sync is broken."""

ESCROW_HORIZON: Final = timedelta(days=28)
"""Retries "go on for 28 days after the first failure after which the escrow entry is
removed" (graph-api.md §3.4)."""

ESCALATE_AFTER_FAILURES: Final = 2
"""A second failed cycle means the retry did not help: the admin must act (DESIGN.md)."""

ENTRA_CYCLE_INTERVAL: Final = timedelta(minutes=40)
"""Harness syncs "approximately every 40 minutes" (graph-api.md §3.1, schedule ``PT40M``)."""

QUARANTINE_RETRY_OFFSETS: Final[tuple[timedelta, ...]] = (
    # graph-api.md §3.4 [DOC QUAR]: 6 h, 12 h, 24 h after the first failure, then every
    # 24 h, for 28 days.
    timedelta(hours=6),
    timedelta(hours=12),
    *(timedelta(days=day) for day in range(1, 29)),
)
"""Documented re-evaluation times of a quarantined job, measured from the series start."""

QUARANTINE_RETRY_OFFSETS_LEGACY: Final[tuple[timedelta, ...]] = tuple(
    # peers.md A-3: the older azure-docs schedule, after which the entry was no longer retried.
    timedelta(hours=hours)
    for hours in (2, 6, 12, 24, 48, 96, 168)
)

RULES_VERSION: Final = 1
"""Version of the answers `parse_retry_time` and `playbook_key` give for an event's text.

The store keeps both answers with each failing object, marked with this number, and readers
compute again any answer kept under another number: bump it with any change that makes either
function answer differently for the same input.
"""

_SENTINEL_YEAR: Final = 1  # Graph's "0001-01-01T00:00:00Z" means "never" (graph-api.md §2.11).


@dataclass(frozen=True, slots=True)
class PlaybookEntry:
    """What a failure means and what the admin must do about it, in Harness or in Entra."""

    key: str
    """Stable name of the entry (``PLAYBOOK`` key)."""
    title: str
    what_to_do: str
    severity: Severity
    retried_automatically: bool
    """True when waiting is the answer: Microsoft documents the failure as transient
    ("There's nothing to do. This attempt is automatically retried"). Entra still retries
    every other escrowed failure too (§3.2), but those keep failing until someone fixes them."""
    microsoft_says: str = ""
    """Microsoft's own recommended action: the event's ``recommendedAction`` when it has one,
    else the error-code table of the provisioning-logs docs (graph-api.md §1.10)."""


def _entry(
    key: str,
    title: str,
    what_to_do: str,
    severity: Severity,
    retried: bool = False,
    microsoft_says: str = "",
) -> tuple[str, PlaybookEntry]:
    return key, PlaybookEntry(key, title, what_to_do, severity, retried, microsoft_says)


_TOKEN_FIX = (
    "In Harness, create a new token for the SCIM service account (tokens expire) with all "
    "Users and User Groups permissions; in Entra, paste it as the Secret Token under "
    "Provisioning > Admin Credentials, Test Connection, and save."
)

PLAYBOOK: Final[Mapping[str, PlaybookEntry]] = MappingProxyType(
    dict(
        [
            _entry(
                "group_identifier_conflict",
                "Group identifier already taken in Harness",
                "Harness derives the group identifier from the Entra name ('.', '-' and spaces "
                "become '_', other characters are dropped) and a group with that identifier "
                "already exists: another Entra group whose name gives the same identifier, or "
                "a native Harness group. See the Groups screen. Rename one of the Entra groups, "
                "or delete or rename the native group in Harness (Access Control > User Groups); "
                "newer Harness adopts a native group with the same identifier and replaces its "
                "members.",
                "warning",
                microsoft_says="Correct the conflicting attribute values in Entra or the app, or "
                "review the matching attribute configuration.",
            ),
            _entry(
                "group_identifier_invalid",
                "Group name gives no valid Harness identifier",
                "Harness refused the identifier it derived from the group's name: empty (no "
                "Latin letters), a reserved word such as 'org' or 'account', longer than 128 "
                "characters, or starting with a digit or '$'. Rename the group in Entra; the "
                "Groups screen shows the identifier each name gives.",
                "warning",
            ),
            _entry(
                "user_conflict",
                "User could not be created in Harness",
                "Harness refused to create the user. Check in Harness whether the user already "
                "exists (deleted in the UI but still present in another account, or created by "
                "just-in-time SAML sign-in): remove it and let Entra provision it again. Check "
                "the account's user licence limit too.",
                "warning",
                microsoft_says="Correct the conflicting attribute values in Entra or the app, or "
                "review the matching attribute configuration.",
            ),
            _entry(
                "conflict",
                "Conflict in Harness",
                "Harness reports a conflict with an existing object. Find the existing user or "
                "group in Harness and remove it, or exclude this object from provisioning.",
                "warning",
                microsoft_says="Correct the conflicting attribute values in Entra or the app, or "
                "review the matching attribute configuration.",
            ),
            _entry(
                "token_invalid",
                "Harness token expired or invalid",
                _TOKEN_FIX + " Check the Tenant URL names this account on the right cluster.",
                "critical",
                microsoft_says="Entra authenticated, or tried to, but was not authorized: "
                "review the credentials in the app's provisioning settings.",
            ),
            _entry(
                "permission_missing",
                "Harness token lacks Users / User Groups permission",
                "The token authenticates but its service account may not manage users or user "
                "groups (core_user_manage, core_usergroup_manage). In Harness, bind a role with "
                "all Users and User Groups permissions to the service account at account scope, "
                "or issue a token for one that has them.",
                "critical",
                microsoft_says="Entra authenticated with the target application but wasn't "
                "authorized to perform the update. Review the application's instructions.",
            ),
            _entry(
                "license_limit",
                "Harness user limit reached",
                "The Harness account has no licence left for another user. Free seats (remove "
                "users who left) or raise the licence in Harness, or narrow the assignments in "
                "Entra; Entra retries the create in a later cycle.",
                "critical",
                microsoft_says="Procure more licenses for the target application, or review "
                "user assignments and attribute mappings.",
            ),
            _entry(
                "last_admin",
                "Cannot remove the account's last administrator",
                "Harness keeps the last account administrator. Make another user an account "
                "administrator in Harness, then let Entra retry the removal.",
                "warning",
            ),
            _entry(
                "group_not_found",
                "Group missing or not managed by SCIM in Harness",
                "Harness has no externally managed group with this id: it was deleted in "
                "Harness, converted to a native group, or is linked to an SSO group (SAML "
                "group authorization makes it unmanageable via SCIM). Unlink or delete it in "
                "Harness and restart provisioning so Entra creates it again.",
                "warning",
            ),
            _entry(
                "group_gone_on_delete",
                "Group already gone in Harness",
                "Harness answers 'Group does not exist' when Entra deletes a group that was "
                "deleted in Harness or is not externally managed. Nothing is lost; if the group "
                "still exists as a native group, delete it in Harness yourself.",
                "info",
            ),
            _entry(
                "user_not_found",
                "User missing in Harness",
                "The user Entra provisioned earlier is gone from Harness (deleted in the UI, or "
                "removed by a disable). Restart provisioning in Entra to match it again, or "
                "unassign and reassign the user.",
                "warning",
            ),
            _entry(
                "invalid_anchor",
                "Previously provisioned object no longer exists",
                "The object Entra created or matched earlier was deleted in Harness. Restart "
                "the provisioning job (a new initial cycle) so Entra matches or re-creates it.",
                "warning",
                microsoft_says="Ensure that the user exists. To force a new matching of all "
                "users, restart the job (an initial cycle follows).",
            ),
            _entry(
                "group_update_failed",
                "Harness rejected a group update",
                "Harness could not apply the change to the group (PUT). Check the group in "
                "Harness is still externally managed and not SSO-linked; Entra retries.",
                "warning",
            ),
            _entry(
                "bad_request",
                "Harness rejected the request",
                "Check the Tenant URL: NextGen is https://app.harness.io/gateway/ng/api/scim/"
                "account/<accountId> (Microsoft's tutorial shows the FirstGen URL, which rejects "
                "NextGen tokens), on your account's cluster. Then check the attribute mappings.",
                "warning",
            ),
            _entry(
                "method_not_allowed",
                "Harness does not support this operation",
                "Check the Tenant URL points at Harness NextGen SCIM and that the attribute "
                "mappings only use attributes Harness supports.",
                "warning",
                microsoft_says="Entra wasn't authorized to perform the update. Review the "
                "application's instructions.",
            ),
            _entry(
                "throttled",
                "Harness rate limit",
                "Nothing to do: Harness throttles at about 1000 requests per minute per token "
                "(429 without Retry-After) and Entra retries. If it persists, check nothing else "
                "uses the same token.",
                "info",
                retried=True,
                microsoft_says="There's nothing to do. This attempt is automatically retried "
                "and Microsoft was notified of this issue.",
            ),
            _entry(
                "harness_internal_error",
                "Harness failed with an internal error",
                "Check the Secret Token in Entra is set (Harness answers 500 when the "
                "Authorization header is missing). Otherwise Harness itself failed: Entra "
                "retries in the next cycle; contact Harness support if it persists.",
                "warning",
                retried=True,
                microsoft_says="The target app returned an unexpected error. This attempt is "
                "automatically retried in 40 minutes.",
            ),
            _entry(
                "target_unavailable",
                "Harness unavailable or slow",
                "Nothing to do: Entra retries in the next cycle (about 40 minutes). If it "
                "persists, check Harness status and that the Tenant URL is reachable.",
                "info",
                retried=True,
                microsoft_says="There's nothing to do. This attempt is automatically retried "
                "in 40 minutes.",
            ),
            _entry(
                "entra_internal_error",
                "Entra provisioning service error",
                "Nothing to do in Harness: an internal error in Microsoft's provisioning "
                "service. Entra retries in 40 minutes.",
                "info",
                retried=True,
                microsoft_says="An internal service error occurred within the Microsoft Entra "
                "provisioning service. There's nothing to do. This attempt is automatically "
                "retried in 40 minutes.",
            ),
            _entry(
                "scim_incompatible",
                "Harness response not understood by Entra",
                "Entra could not parse Harness's SCIM response (a SCIM compliance problem; it "
                "can quarantine the job). Check the Tenant URL is the NextGen SCIM URL; if it "
                "is, report the event to Harness support with its change id.",
                "critical",
                microsoft_says="Work with the application developer to ensure that the SCIM "
                "server is compatible with the Microsoft Entra SCIM client.",
            ),
            _entry(
                "multiple_entries",
                "Harness returned several matches",
                "A SCIM lookup by name or email returned more than one object. Remove the "
                "duplicate user or group in Harness (emails compare case-insensitively, group "
                "names case-sensitively).",
                "warning",
                microsoft_says="A GET returned multiple users or groups; the system expects "
                "only one.",
            ),
            _entry(
                "duplicate_target",
                "Several Harness users match",
                "More than one Harness user matches the Entra user. Remove the duplicate in "
                "Harness; duplicates usually mean the email in Entra differs from the one in "
                'Harness (map emails[type eq "work"].value).',
                "warning",
                microsoft_says="Remove the duplicate user from the target application, or "
                "reconfigure your attribute mappings.",
            ),
            _entry(
                "duplicate_source",
                "Several Entra users match",
                "More than one Entra user has the same matching attribute (email/userName). "
                "Fix the duplicate in Entra or change the matching attribute.",
                "warning",
                microsoft_says="Remove the duplicate user, or reconfigure your attribute mappings.",
            ),
            _entry(
                "missing_values",
                "Required attribute missing in Entra",
                "The Entra object lacks a value Harness needs (usually the email). Fill it in "
                "Entra or change the mapping (e.g. Coalesce([mail],[userPrincipalName])).",
                "warning",
                microsoft_says="Correct the missing attribute values in the source record, or "
                "review your attribute mappings.",
            ),
            _entry(
                "mapping_error",
                "Attribute mapping does not fit Harness",
                "An attribute mapping sends something Harness does not accept. Reset the "
                "Harness app's mappings to the gallery defaults or remove the custom mapping.",
                "warning",
                microsoft_says="Ensure that your attribute mapping configuration is correct.",
            ),
            _entry(
                "invalid_domain",
                "Invalid domain in an attribute",
                "An attribute (usually the email) has a domain Harness refuses. Fix the user's "
                "email domain in Entra.",
                "warning",
                microsoft_says="Update the domain name on the user or add it to the permitted "
                "list in the target application.",
            ),
            _entry(
                "unexpected_response",
                "Harness returned an unexpected response",
                "Check the Tenant URL and token, and whether Harness reports an incident; if "
                "it persists, contact Harness support with the event's change id.",
                "warning",
                microsoft_says="The configuration of the target application might not be "
                "correct, or a service issue might be preventing it from working.",
            ),
            _entry(
                "import_skipped",
                "Skipped: object could not be read from Entra",
                "Usually the Entra object lacks the matching attribute (userName/email, or the "
                "group's displayName). Fill it in Entra.",
                "info",
                microsoft_says="The user being imported is missing the matching property "
                "defined in your attribute mappings.",
            ),
            _entry(
                "skipped",
                "Skipped: out of scope or already in sync",
                "Nothing to do unless the object should be in Harness: then check it is "
                "assigned to the Harness app with a role other than Default Access (directly "
                "or through a directly assigned group: nested groups are not provisioned).",
                "info",
                microsoft_says="The user might have been out of scope or already existed in "
                "the target system with no further changes required.",
            ),
            _entry(
                "unknown",
                "Unrecognised failure",
                "Open the event's steps and reason; Entra retries it each cycle until it "
                "succeeds or 28 days pass.",
                "warning",
            ),
        ]
    )
)
"""Every entry, by key."""

_SCIM_CODE_PREFIX: Final = "SystemForCrossDomainIdentityManagement"

# graph-api.md §1.10 codes (and SCIM-prefixed ones seen in events), by playbook key.
_CODE_KEYS: Final[Mapping[str, str]] = MappingProxyType(
    {
        "LicenseLimitExceeded": "license_limit",
        "InvalidAnchor": "invalid_anchor",
        "ImportSkipped": "import_skipped",
        "EntrySynchronizationSkipped": "skipped",
        "DuplicateTargetEntries": "duplicate_target",
        "DuplicateSourceEntries": "duplicate_source",
        "MandatoryFieldsMissing": "missing_values",
        "MissingValues": "missing_values",
        "SchemaAttributeNotFound": "mapping_error",
        "SchemaPropertyCanOnlyAcceptValue": "mapping_error",
        "InvalidDomain": "invalid_domain",
        "MultipleEntriesInResponse": "multiple_entries",
        "InvalidCredentials": "token_invalid",
        "TooManyRequests": "throttled",
        "InternalServerError": "harness_internal_error",
        "WebExceptionProtocolError": "target_unavailable",
        "Timeout": "target_unavailable",
        "InternalError": "entra_internal_error",
        "InsufficientRights": "permission_missing",
        "NotPermitted": "permission_missing",
        "Unauthorized": "permission_missing",
        "MethodNotAllowed": "method_not_allowed",
        "UnprocessableEntity": "unexpected_response",
        "NotImplemented": "unexpected_response",
        "ServiceIncompatible": "scim_incompatible",
        "ServiceIncompatibleFiltering": "scim_incompatible",
        "BadRequest": "bad_request",
        "Conflict": "conflict",
        "EntryConflict": "conflict",
    }
)
# App-specific codes are <AppName><Condition> (ContosoEntryConflict, §1.10): longest suffix wins.
_CODES_BY_LENGTH: Final = tuple(sorted(_CODE_KEYS, key=len, reverse=True))

_HTTP_STATUS_NAMES: Final[Mapping[str, int]] = MappingProxyType(
    # .NET HttpStatusCode names, as in Entra's "StatusCode: Conflict" lines.
    {
        "badrequest": 400,
        "unauthorized": 401,
        "paymentrequired": 402,
        "forbidden": 403,
        "notfound": 404,
        "methodnotallowed": 405,
        "conflict": 409,
        "preconditionfailed": 412,
        "unprocessableentity": 422,
        "toomanyrequests": 429,
        "internalservererror": 500,
        "notimplemented": 501,
        "badgateway": 502,
        "serviceunavailable": 503,
        "gatewaytimeout": 504,
    }
)

# Harness bodies quoted in the reason (harness-api.md §1.2, §1.9, §3.6), strongest first.
_HARNESS_MARKERS: Final[tuple[tuple[re.Pattern[str], int], ...]] = (
    (re.compile(r"Invalid token or token expired|Bearer prefix not found|INVALID_TOKEN"), 401),
    (re.compile(r"NG_ACCESS_DENIED|Token needs to have \w+ permission"), 403),
    (re.compile(r"Try using different user group identifier"), 409),
    (re.compile(r"Too Many requests\. Throttled"), 429),
    (re.compile(r"UNKNOWN_ERROR"), 500),
)
_HTTP_STATUS_CODE: Final = re.compile(r"HTTP status code (\d{3})\b", re.IGNORECASE)
_STATUS_CODE_LINE: Final = re.compile(r"StatusCode:\s*([A-Za-z]{2,30}|\d{3})\b")
# Last resort only: Harness's SCIM error body always says 404, whatever the HTTP status (§1.9).
_BODY_STATUS: Final = re.compile(r"\"status\\?\"\s*:\s*\\?\"?(\d{3})\b")
_CONFLICTING_IDENTIFIER: Final = re.compile(
    r"Try using different user group identifier, \[([^\]\r\n]{0,300})\] cannot be used"
)
_LICENCE_TEXT: Final = re.compile(r"licen[cs]e|user limit", re.IGNORECASE)
_LAST_ADMIN_TEXT: Final = re.compile(r"last[ _]admin", re.IGNORECASE)
_GROUP_GONE_TEXT: Final = re.compile(r"Group does not exist")
# EntityIdentifierValidator messages (harness-api.md §2.5).
_INVALID_IDENTIFIER_TEXT: Final = re.compile(
    r"is a keyword, so cannot be used|can only contain alphanumeric, underscore and \$"
)
# Lower-case text every match of the four above contains, ASCII only (re's IGNORECASE also
# folds a few non-ASCII letters): one cheap scan rules them out for the usual reason.
_KEY_TEXT_MARKERS: Final = (
    "licence", "license", "user limit", "last admin", "last_admin", "group does not exist",
    "is a keyword, so cannot be used", "can only contain alphanumeric, underscore and $",
)  # fmt: skip

_TIMESTAMP: Final = (
    r"(?P<date>\d{4}-\d{2}-\d{2}[T ]\d{1,2}:\d{2}(?::\d{2}(?:[.,]\d{1,9})?)?"
    r"(?:\s*(?:Z|[+-]\d{2}:?\d{2}))?"
    r"|\d{1,2}/\d{1,2}/\d{4}\s+\d{1,2}:\d{2}(?::\d{2})?(?:\s*[AP]M)?)"
)
# "This operation was retried 0 times. It will be retried again after this date:
# 2019-10-30T15:13:17.6715300Z UTC" (peers.md A-3 [P-1PW]; .NET round-trip "o" format).
_RETRY_AFTER_DATE: Final = re.compile(
    r"retried\s+(?:again\s+)?after(?:\s+this\s+date)?\s*[:=]?\s*'?" + _TIMESTAMP, re.IGNORECASE
)
# "This attempt is automatically retried in 40 minutes." (graph-api.md §1.10 [DOC ANALYZE-LOGS]).
_RETRY_IN: Final = re.compile(r"retried\s+in\s+(\d{1,5})\s+(minute|hour)s?\b", re.IGNORECASE)
_RETRY_COUNT: Final = re.compile(r"retried\s+(\d{1,6}|zero|one|once|two|three)\s+times?\b", re.I)
_COUNT_WORDS: Final = MappingProxyType({"zero": 0, "one": 1, "once": 1, "two": 2, "three": 3})
_ISO_PARTS: Final = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[T ](\d{1,2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,9}))?)?"
    r"\s*(Z|[+-]\d{2}:?\d{2})?$"
)
_US_PARTS: Final = re.compile(
    r"(\d{1,2})/(\d{1,2})/(\d{4})\s+(\d{1,2}):(\d{2})(?::(\d{2}))?\s*([AP]M)?$", re.IGNORECASE
)


def _as_utc(moment: datetime) -> datetime:
    """An aware UTC datetime; a naive one is taken to be UTC already (the cache stores UTC)."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def _iso_to_utc(match: re.Match[str]) -> datetime:
    year, month, day, hour, minute, second, fraction, offset = match.groups()
    # .NET writes 7 fractional digits (ticks); datetime keeps 6.
    micro = int((fraction or "0")[:6].ljust(6, "0"))
    zone = UTC
    if offset and offset != "Z":
        digits = offset[1:].replace(":", "")
        delta = timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
        zone = timezone(-delta if offset[0] == "-" else delta)
    moment = datetime(
        int(year), int(month), int(day), int(hour), int(minute), int(second or 0), micro, zone
    )
    return moment.astimezone(UTC)


def _us_to_utc(match: re.Match[str]) -> datetime:
    month, day, year, hour, minute, second, meridiem = match.groups()
    hour_24 = int(hour)
    if meridiem is not None:
        if not 1 <= hour_24 <= 12:
            raise ValueError("hour out of range for AM/PM")
        hour_24 = hour_24 % 12 + (12 if meridiem.upper() == "PM" else 0)
    return datetime(
        int(year), int(month), int(day), hour_24, int(minute), int(second or 0), tzinfo=UTC
    )


def parse_entra_timestamp(text: str | None) -> datetime | None:
    """Parse a timestamp as Entra writes them, as an aware UTC datetime, or ``None``.

    Accepts ISO 8601 with up to 9 fractional digits and ``Z``, an offset or nothing (then UTC),
    optionally followed by ``UTC``, and the US form of step details (``3/24/2026 7:17:42 AM``,
    taken as UTC). Graph's ``0001-01-01T00:00:00Z`` "never" sentinel gives ``None``.
    """
    if not text:
        return None
    candidate = text.strip()
    if candidate[-3:].upper() in ("UTC", "GMT"):
        candidate = candidate[:-3].rstrip()
    if len(candidate) > 40:
        return None
    try:
        if iso := _ISO_PARTS.match(candidate):
            moment = _iso_to_utc(iso)
        elif us := _US_PARTS.match(candidate):
            moment = _us_to_utc(us)
        else:
            return None
    except (ValueError, OverflowError):
        return None
    return None if moment.year <= _SENTINEL_YEAR else moment


def parse_retry_time(reason: str | None, event_time: datetime | None = None) -> datetime | None:
    """When Entra says it will retry the failed operation, from the event's reason text.

    Reads "It will be retried again after this date: <timestamp> UTC" (the last one, if the
    text repeats), else, given the event's time, "automatically retried in 40 minutes".

    Args:
        reason: ``errorInformation.reason`` of the event; any text.
        event_time: ``activityDateTime`` of the event, for the relative phrasing.

    Returns:
        An aware UTC datetime, or ``None`` when the text names no retry time (then the next
        expected cycle is the best guess).
    """
    if not reason:
        return None
    # Both patterns start with "retried": for ASCII text no match begins before its first
    # occurrence, so the scans may start there.
    start = reason.lower().find("retried") if reason.isascii() else 0
    if start < 0:
        return None
    last_date: datetime | None = None
    for match in _RETRY_AFTER_DATE.finditer(reason, start):
        last_date = parse_entra_timestamp(match.group("date")) or last_date
    if last_date is not None:
        return last_date
    relative = _RETRY_IN.search(reason, start)
    if relative is None or event_time is None:
        return None
    amount = int(relative.group(1))
    unit = timedelta(hours=1) if relative.group(2).lower() == "hour" else timedelta(minutes=1)
    try:
        return _as_utc(event_time) + amount * unit
    except OverflowError:
        return None


def parse_retry_count(reason: str | None) -> int | None:
    """How many times Entra says it already retried ("This operation was retried 0 times")."""
    if not reason:
        return None
    match = _RETRY_COUNT.search(reason)
    if match is None:
        return None
    count = match.group(1).lower()
    return _COUNT_WORDS[count] if count in _COUNT_WORDS else int(count)


def parse_http_status(reason: str | None) -> int | None:
    """The HTTP status Harness answered, as far as the reason text tells.

    Precedence: Entra's own statement ("HTTP status code 409", "StatusCode: Conflict"), then
    Harness error bodies it quotes (``INVALID_TOKEN``, ``NG_ACCESS_DENIED``, ...), then a
    ``"status"`` in a quoted body, last because Harness's SCIM errors always say 404 (§1.9).
    """
    if not reason:
        return None
    # Ignoring case, ASCII text can only match where it says "http status code".
    if (not reason.isascii() or "http status code" in reason.lower()) and (
        match := _HTTP_STATUS_CODE.search(reason)
    ):
        return int(match.group(1))
    if match := _STATUS_CODE_LINE.search(reason):
        value = match.group(1)
        status = int(value) if value.isdigit() else _HTTP_STATUS_NAMES.get(value.lower())
        if status is not None:
            return status
    for pattern, marker_status in _HARNESS_MARKERS:
        if pattern.search(reason):
            return marker_status
    if match := _BODY_STATUS.search(reason):
        return int(match.group(1))
    return None


def parse_conflicting_identifier(reason: str | None) -> str | None:
    """The identifier Harness refused ("Try using different user group identifier, [X] ...")."""
    if not reason:
        return None
    match = _CONFLICTING_IDENTIFIER.search(reason)
    return match.group(1) if match else None


_SERVICE_BODY = "Web Response:"
"""Where Entra quotes the body the app's SCIM endpoint answered (graph-api.md §1.9)."""


def parse_service_message(reason: str | None) -> str:
    """What Harness itself said, from the error body Entra quotes in a reason; "" if none.

    A SCIM error's ``detail`` or a Harness ``ErrorDTO``'s ``message`` (harness-api.md §1.9):
    "User limit reached for account. Cannot add more users." instead of Microsoft's paragraph
    around it. A body cut short, or not JSON, gives "".
    """
    if not reason or (start := reason.find(_SERVICE_BODY)) < 0:
        return ""
    body = reason[start + len(_SERVICE_BODY) :].lstrip()
    try:
        document, _end = json.JSONDecoder().raw_decode(body)
    except (ValueError, RecursionError):
        return ""
    if not isinstance(document, dict):
        return ""
    for field in ("detail", "message"):
        value = document.get(field)
        if isinstance(value, str) and value.strip():
            return value.strip()
    return ""


def normalise_error_code(error_code: str | None) -> str | None:
    """The documented code inside an event's ``errorCode``, or ``None`` if none is known.

    Strips the SCIM prefix (``SystemForCrossDomainIdentityManagementInvalidCredentials``) and
    app names (``ContosoEntryConflict``, ``HarnessEntryConflict``), §1.10.
    """
    if not error_code:
        return None
    code = error_code.strip()
    code = code.removeprefix(_SCIM_CODE_PREFIX)
    if code in _CODE_KEYS:
        return code
    return next((known for known in _CODES_BY_LENGTH if code.endswith(known)), None)


def _identity(identity_type: str | None) -> str:
    return (identity_type or "").strip().lower()


def _key_from_text(reason: str) -> str | None:
    """Harness facts the reason states outright, whatever the code says."""
    if reason.isascii():
        lowered = reason.lower()
        if not any(marker in lowered for marker in _KEY_TEXT_MARKERS):
            return None
    if _LICENCE_TEXT.search(reason):
        return "license_limit"
    if _LAST_ADMIN_TEXT.search(reason):
        return "last_admin"
    if _GROUP_GONE_TEXT.search(reason):
        return "group_gone_on_delete"
    if _INVALID_IDENTIFIER_TEXT.search(reason):
        return "group_identifier_invalid"
    return None


def _key_from_status(status: int | None, identity: str) -> str | None:
    """harness-api.md §1.9 status-code map."""
    match status:
        case 401:
            return "token_invalid"
        case 402:
            return "license_limit"
        case 403:
            return "permission_missing"
        case 404:
            return {"group": "group_not_found", "user": "user_not_found"}.get(identity)
        case 405:
            return "method_not_allowed"
        case 409:
            return {"group": "group_identifier_conflict", "user": "user_conflict"}.get(
                identity, "conflict"
            )
        case 412:
            return "group_update_failed"
        case 429:
            return "throttled"
        case 400:
            return "bad_request"
        case 500:
            return "harness_internal_error"
        case int() if 500 < status < 600:
            return "target_unavailable"
    return None


def _key_from_code(code: str | None, identity: str) -> str | None:
    if code is None:
        return None
    key = _CODE_KEYS[code]
    if key == "conflict":
        return {"group": "group_identifier_conflict", "user": "user_conflict"}.get(identity, key)
    return key


# Codes that name the failure more precisely than any HTTP status could.
_DEFINITIVE_CODES: Final = frozenset(
    {
        "LicenseLimitExceeded", "InvalidAnchor", "ImportSkipped", "EntrySynchronizationSkipped",
        "DuplicateTargetEntries", "DuplicateSourceEntries", "MandatoryFieldsMissing",
        "MissingValues", "SchemaAttributeNotFound", "SchemaPropertyCanOnlyAcceptValue",
        "InvalidDomain", "MultipleEntriesInResponse", "InvalidCredentials", "TooManyRequests",
        "Timeout", "InternalError", "WebExceptionProtocolError",
    }
)  # fmt: skip


def playbook_for(
    error_code: str | None,
    error_category: str | None = None,
    identity_type: str | None = None,
    reason: str | None = None,
    recommended_action: str | None = None,
) -> PlaybookEntry:
    """What the admin must do about a failed (or skipped) provisioning event.

    Args:
        error_code: ``errorInformation.errorCode`` (``EntryConflict``, ``HarnessEntryConflict``,
            ``SystemForCrossDomainIdentityManagementInvalidCredentials``...).
        error_category: ``errorInformation.errorCategory`` (``failure``, ``nonServiceFailure``).
        identity_type: ``sourceIdentity.identityType`` (``User``, ``Group``).
        reason: ``errorInformation.reason``; HTTP status hints in it refine the code.
        recommended_action: ``errorInformation.recommendedAction``, shown as Microsoft's advice.
    """
    key = playbook_key(error_code, identity_type, reason)
    return playbook_entry(key, error_category, recommended_action)


def playbook_key(
    error_code: str | None, identity_type: str | None = None, reason: str | None = None
) -> str:
    """The `PLAYBOOK` key of a failure: the costly part of `playbook_for` (text patterns).

    The store keeps it with each failing object (see `RULES_VERSION`).
    """
    text = reason or ""
    code = normalise_error_code(error_code)
    identity = _identity(identity_type)
    key = _key_from_text(text)
    if key is None and code in _DEFINITIVE_CODES:
        key = _key_from_code(code, identity)
    if key is None:
        key = _key_from_status(parse_http_status(text), identity)
    if key is None:
        key = _key_from_code(code, identity) or "unknown"
    return key


def playbook_entry(
    key: str, error_category: str | None = None, recommended_action: str | None = None
) -> PlaybookEntry:
    """`PLAYBOOK[key]` for one failure: retried by Entra when it is the service's own side."""
    # "failure" is the provisioning service's own side (§1.7); Entra retries it.
    service_side = key == "unknown" and (error_category or "").lower() == "failure"
    return _adjusted_entry(key, service_side, (recommended_action or "").strip())


@functools.lru_cache(maxsize=512)
def _adjusted_entry(key: str, service_side: bool, microsoft_says: str) -> PlaybookEntry:
    """`PLAYBOOK[key]`, retried by Entra when `service_side`, with Microsoft's advice if any.

    Cached: a list of a thousand failures repeats a handful of these (entries are frozen).
    """
    entry = PLAYBOOK[key]
    if service_side:
        entry = replace(entry, retried_automatically=True, severity="info")
    if microsoft_says:
        entry = replace(entry, microsoft_says=microsoft_says)
    return entry


def is_escalated(consecutive_failures: int) -> bool:
    """True once an object failed in a second cycle: retrying did not help, the admin must act."""
    return consecutive_failures >= ESCALATE_AFTER_FAILURES


def escrow_expires_at(first_failure: datetime) -> datetime:
    """When Entra drops the failed operation for good, 28 days after its first failure (§3.4)."""
    return _as_utc(first_failure) + ESCROW_HORIZON


def escrow_remaining(first_failure: datetime, now: datetime) -> timedelta:
    """Time left before the escrow horizon; zero once it has passed."""
    return max(escrow_expires_at(first_failure) - _as_utc(now), timedelta(0))


def quarantine_disabled_at(series_began: datetime) -> datetime:
    """When a job still in quarantine is disabled: 28 days after the series began (§3.3-3.4)."""
    return _as_utc(series_began) + ESCROW_HORIZON


def quarantine_next_attempt(
    series_began: datetime,
    now: datetime,
    reported_next_attempt: datetime | None = None,
    offsets: tuple[timedelta, ...] = QUARANTINE_RETRY_OFFSETS,
) -> datetime | None:
    """The next re-evaluation of a quarantined job.

    Graph's own ``quarantine.nextAttempt`` wins when it is real and still ahead: the one real
    example has it 5 minutes after the series began, not the documented 6 hours (§3.4
    DISCREPANCY). Otherwise the documented schedule is used.

    Args:
        series_began: ``quarantine.seriesBegan``.
        now: The current time.
        reported_next_attempt: ``quarantine.nextAttempt``, if Graph gave one.
        offsets: The retry schedule, from the series start.

    Returns:
        An aware UTC datetime, or ``None`` once the schedule is exhausted (the job is disabled).
    """
    now_utc = _as_utc(now)
    if reported_next_attempt is not None:
        reported = _as_utc(reported_next_attempt)
        if reported.year > _SENTINEL_YEAR and reported >= now_utc:
            return reported
    began = _as_utc(series_began)
    return next((began + offset for offset in offsets if began + offset > now_utc), None)


def would_quarantine(failed: int, succeeded: int, reference_failed: int = 0) -> bool:
    """Whether the documented escrow thresholds put the job in quarantine (§3.3).

    "5,000 failures are the minimum to start evaluating"; then more than 40% of events failed
    or more than 40,000 failures (reference failures excluded from both), or more than 60,000
    failures counting reference failures. Credential and SCIM compliance failures quarantine
    regardless of counts; Microsoft says the logic "is subject to change".
    """
    if failed + reference_failed > 60_000:
        return True
    if failed < 5_000:
        return False
    return failed > 40_000 or failed > 0.4 * (failed + succeeded)
