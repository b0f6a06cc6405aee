"""Retry times, the Harness playbook and escalation, against the reference notes' own text."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from itertools import pairwise

import pytest
from hypothesis import given
from hypothesis import strategies as st

from store.playbook import (
    ESCROW_HORIZON,
    PLAYBOOK,
    QUARANTINE_RETRY_OFFSETS,
    QUARANTINE_RETRY_OFFSETS_LEGACY,
    escrow_expires_at,
    escrow_remaining,
    is_escalated,
    normalise_error_code,
    parse_conflicting_identifier,
    parse_entra_timestamp,
    parse_http_status,
    parse_retry_count,
    parse_retry_time,
    parse_service_message,
    playbook_for,
    quarantine_disabled_at,
    quarantine_next_attempt,
    would_quarantine,
)
from tests.test_store.reasons import (
    BOX_409,
    CONTOSO_409,
    DOCUMENTED_CODES,
    HARNESS_401_EXPIRED,
    HARNESS_401_NO_BEARER,
    HARNESS_403_BODY,
    HARNESS_429_BODY,
    HARNESS_500_BODY,
    HARNESS_DUP_IDENTIFIER_BODY,
    NEXT_SYNC_CYCLE,
    RETRIED_0_TIMES_ELIDED,
    RETRIED_AND_NOTIFIED,
    RETRIED_IN_40,
    entra_reason,
)

EVENT_TIME = datetime(2024, 3, 24, 7, 23, 47, tzinfo=UTC)

# (a) Retry time


@pytest.mark.parametrize(
    ("reason", "expected"),
    [
        (
            entra_reason("BadRequest", "Bad Request ", 0, "2024-03-24T13:23:44.9198514Z UTC"),
            datetime(2024, 3, 24, 13, 23, 44, 919851, tzinfo=UTC),
        ),
        (
            entra_reason("Conflict", HARNESS_DUP_IDENTIFIER_BODY, 1, "2024-03-25T07:23:47Z UTC"),
            datetime(2024, 3, 25, 7, 23, 47, tzinfo=UTC),
        ),
        (
            "retried 2 times. It will be retried again after this date: 2024-03-25T09:00:00+02:00",
            datetime(2024, 3, 25, 7, 0, tzinfo=UTC),
        ),
        (
            "It will be retried again after this date: 2024-03-25T07:23:47",
            datetime(2024, 3, 25, 7, 23, 47, tzinfo=UTC),
        ),
        (
            "It will be retried again after this date: 3/24/2026 7:17:42 PM",
            datetime(2026, 3, 24, 19, 17, 42, tzinfo=UTC),
        ),
        (
            "It will be retried again after this date: 3/24/2026 12:05:00 AM",
            datetime(2026, 3, 24, 0, 5, tzinfo=UTC),
        ),
        (
            "It will be retried again after this date: 2024-01-01T00:00:00Z UTC. Later: It will be "
            "retried again after this date: 2024-01-02T00:00:00Z UTC",
            datetime(2024, 1, 2, tzinfo=UTC),
        ),
    ],
)
def test_retry_date_is_parsed_from_the_reason(reason, expected):
    parsed = parse_retry_time(reason)
    assert parsed == expected
    assert parsed is not None
    assert parsed.tzinfo is UTC


@pytest.mark.parametrize(
    "reason",
    [
        CONTOSO_409,
        BOX_409,
        RETRIED_AND_NOTIFIED,
        NEXT_SYNC_CYCLE,
        RETRIED_0_TIMES_ELIDED,
        # Microsoft docs paraphrase the message without a date.
        "This operation was retried zero times. It will be retried again after this date'.",
        "This operation was retried zero times. The operation is retried again after this date.",
        "It will be retried again after this date: 0001-01-01T00:00:00Z UTC",
        "It will be retried again after this date: 2024-13-45T25:61:00Z UTC",
        "It will be retried again after this date: 13/45/2024 13:00:00 PM",
        "",
        None,
    ],
)
def test_reason_without_a_usable_date_gives_none(reason):
    assert parse_retry_time(reason) is None


def test_retried_in_40_minutes_is_relative_to_the_event():
    assert parse_retry_time(RETRIED_IN_40, EVENT_TIME) == EVENT_TIME + timedelta(minutes=40)
    assert parse_retry_time(RETRIED_IN_40) is None
    naive = EVENT_TIME.replace(tzinfo=None)
    assert parse_retry_time(RETRIED_IN_40, naive) == EVENT_TIME + timedelta(minutes=40)
    assert parse_retry_time("retried in 2 hours", EVENT_TIME) == EVENT_TIME + timedelta(hours=2)


def test_an_explicit_date_wins_over_the_relative_phrase():
    reason = RETRIED_IN_40 + " It will be retried again after this date: 2024-03-25T00:00:00Z UTC"
    assert parse_retry_time(reason, EVENT_TIME) == datetime(2024, 3, 25, tzinfo=UTC)


def test_relative_retry_past_the_end_of_time_gives_none():
    assert parse_retry_time(RETRIED_IN_40, datetime.max.replace(tzinfo=UTC)) is None


@pytest.mark.parametrize(
    ("reason", "count"),
    [
        (RETRIED_0_TIMES_ELIDED, 0),
        (entra_reason("Conflict", "{}", 1, "2024-03-25T07:23:47Z UTC"), 1),
        ("This operation was retried zero times. It will be retried again after this date'.", 0),
        ("This operation was retried 12 times.", 12),
        (CONTOSO_409, None),
        (None, None),
    ],
)
def test_retry_count(reason, count):
    assert parse_retry_count(reason) == count


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # graph-api.md §2.10.3: 7 fractional digits (.NET ticks) and Z.
        ("2021-05-24T21:45:54.4981365Z", datetime(2021, 5, 24, 21, 45, 54, 498136, tzinfo=UTC)),
        ("2019-06-24T20:53:08Z", datetime(2019, 6, 24, 20, 53, 8, tzinfo=UTC)),
        ("2024-03-25T07:23:47.9Z UTC", datetime(2024, 3, 25, 7, 23, 47, 900000, tzinfo=UTC)),
        ("2024-03-25T07:23:47-0130", datetime(2024, 3, 25, 8, 53, 47, tzinfo=UTC)),
        ("3/24/2026 7:17:42 AM", datetime(2026, 3, 24, 7, 17, 42, tzinfo=UTC)),
        ("3/24/2026 19:17:42", datetime(2026, 3, 24, 19, 17, 42, tzinfo=UTC)),
        ("0001-01-01T00:00:00Z", None),
        ("2024-03-25T07:23:47Z" + " " * 30 + "trailing text", None),
        ("not a date", None),
        ("2024-02-30T00:00:00Z", None),
        ("", None),
        (None, None),
    ],
)
def test_parse_entra_timestamp(text, expected):
    assert parse_entra_timestamp(text) == expected


# (b) Playbook


@pytest.mark.parametrize(
    ("code", "category", "identity", "reason", "key"),
    [
        # graph-api.md §1.9.2 and §1.9.4: a group 409 is an identifier collision or native group.
        (
            "ContosoEntryConflict",
            "nonServiceFailure",
            "Group",
            CONTOSO_409,
            "group_identifier_conflict",
        ),
        ("BoxEntryConflict", "NonServiceFailure", "Group", BOX_409, "group_identifier_conflict"),
        ("HarnessEntryConflict", "nonServiceFailure", "User", CONTOSO_409, "user_conflict"),
        (
            "SystemForCrossDomainIdentityManagementBadRequest",
            "nonServiceFailure",
            "Group",
            entra_reason("Conflict", HARNESS_DUP_IDENTIFIER_BODY, 0, "2024-03-25T07:23:47Z UTC"),
            "group_identifier_conflict",
        ),
        (None, None, "Group", HARNESS_DUP_IDENTIFIER_BODY, "group_identifier_conflict"),
        # peers.md: ...ServiceIncompatibleFiltering wrapping a 409 "User must be Active".
        (
            "SystemForCrossDomainIdentityManagementServiceIncompatibleFiltering",
            "nonServiceFailure",
            "User",
            entra_reason("Conflict", '{"detail":"User must be Active"}', 0, "…"),
            "user_conflict",
        ),
        # harness-api.md §1.2, §1.9: 401 and 403 bodies.
        (
            "SystemForCrossDomainIdentityManagementUnauthorized",
            None,
            "User",
            HARNESS_401_EXPIRED,
            "token_invalid",
        ),
        (None, None, "Group", HARNESS_401_NO_BEARER, "token_invalid"),
        (
            "SystemForCrossDomainIdentityManagementInvalidCredentials",
            None,
            None,
            "",
            "token_invalid",
        ),
        (
            "InsufficientRights",
            "nonServiceFailure",
            "Group",
            HARNESS_403_BODY,
            "permission_missing",
        ),
        (None, None, "Group", HARNESS_403_BODY, "permission_missing"),
        (None, None, "Group", entra_reason("Forbidden", "{}", 0, "…"), "permission_missing"),
        # harness-api.md §1.9: DELETE of a group Harness lacks: 401 "Group does not exist".
        (
            "SystemForCrossDomainIdentityManagementUnauthorized",
            None,
            "Group",
            entra_reason(
                "Unauthorized", '{"code":"INVALID_TOKEN","message":"Group does not exist"}', 0, "…"
            ),
            "group_gone_on_delete",
        ),
        # harness-api.md §1.9 and §5 items 11, 18: licence limit and last admin on user changes.
        ("LicenseLimitExceeded", "nonServiceFailure", "User", "", "license_limit"),
        (
            None,
            None,
            "User",
            entra_reason("Conflict", '{"detail":"User limit reached"}', 0, "…"),
            "license_limit",
        ),
        (None, None, "User", entra_reason("PaymentRequired", "{}", 0, "…"), "license_limit"),
        (None, None, "User", "ACCOUNT_LAST_ADMIN_CHECK failed", "last_admin"),
        # harness-api.md §2.5 validation messages on group create.
        (
            None,
            None,
            "Group",
            '{"detail":"org is a keyword, so cannot be used","status":404}',
            "group_identifier_invalid",
        ),
        (
            None,
            None,
            "Group",
            "identifier can be 128 characters long and can only contain alphanumeric, underscore "
            "and $ characters, and not start with a number or $",
            "group_identifier_invalid",
        ),
        # harness-api.md §1.9 404 / 412 / 400 / 429 / 500.
        (None, None, "Group", entra_reason("NotFound", "", 0, "…"), "group_not_found"),
        (None, None, "User", entra_reason("NotFound", "", 0, "…"), "user_not_found"),
        (
            None,
            None,
            "Group",
            entra_reason("PreconditionFailed", "{}", 0, "…"),
            "group_update_failed",
        ),
        (None, None, "User", entra_reason("BadRequest", "Bad Request ", 0, "…"), "bad_request"),
        ("SystemForCrossDomainIdentityManagementBadRequest", None, "User", "", "bad_request"),
        (None, None, "User", HARNESS_429_BODY, "throttled"),
        (None, None, "User", entra_reason("TooManyRequests", "", 0, "…"), "throttled"),
        (None, None, "User", HARNESS_500_BODY, "harness_internal_error"),
        (None, None, "User", entra_reason("ServiceUnavailable", "", 0, "…"), "target_unavailable"),
        (None, None, "User", entra_reason("MethodNotAllowed", "", 0, "…"), "method_not_allowed"),
        ("NotPermitted", "nonServiceFailure", "User", "", "permission_missing"),
    ],
)
def test_playbook_for_events(code, category, identity, reason, key):
    entry = playbook_for(code, category, identity, reason)
    assert entry.key == key
    assert entry == PLAYBOOK[key]


@pytest.mark.parametrize(("code", "key"), DOCUMENTED_CODES)
def test_every_documented_code_has_an_entry(code, key):
    assert playbook_for(code).key == key
    assert playbook_for(f"Harness{code}").key == key


@pytest.mark.parametrize(
    ("code", "identity", "key"),
    [
        ("EntryConflict", "Group", "group_identifier_conflict"),
        ("Conflict", "user", "user_conflict"),
        ("HarnessEntryConflict", "RolesCompound", "conflict"),
    ],
)
def test_conflict_codes_depend_on_the_identity(code, identity, key):
    assert playbook_for(code, identity_type=identity).key == key


def test_only_codes_microsoft_calls_transient_are_retried_automatically():
    """graph-api.md §1.10: the codes documented as "automatically retried"."""
    retried = {code for code, _ in DOCUMENTED_CODES if playbook_for(code).retried_automatically}
    assert retried == {
        "TooManyRequests",
        "InternalServerError",
        "WebExceptionProtocolError",
        "InternalError",
        "Timeout",
    }


def test_auth_failures_are_critical():
    assert playbook_for(None, reason=HARNESS_401_EXPIRED).severity == "critical"
    assert playbook_for(None, reason=HARNESS_403_BODY).severity == "critical"
    assert playbook_for("LicenseLimitExceeded").severity == "critical"
    assert playbook_for("Timeout").severity == "info"


def test_harness_hints_name_what_to_do_in_harness():
    assert "native" in playbook_for("EntryConflict", identity_type="Group").what_to_do
    assert "Users and User Groups" in playbook_for(None, reason=HARNESS_401_EXPIRED).what_to_do
    assert "Users and User Groups" in playbook_for(None, reason=HARNESS_403_BODY).what_to_do


def test_event_recommended_action_is_shown_as_microsofts_advice():
    entry = playbook_for("EntryConflict", recommended_action="  Rename the group.  ")
    assert entry.microsoft_says == "Rename the group."
    assert playbook_for("EntryConflict", recommended_action=None).microsoft_says


def test_unknown_code_falls_back_and_service_failures_are_retried():
    assert playbook_for("SomethingNew").key == "unknown"
    assert not playbook_for("SomethingNew", "nonServiceFailure").retried_automatically
    assert playbook_for("SomethingNew", "failure").retried_automatically
    assert playbook_for(None).key == "unknown"


def test_playbook_entries_are_complete_and_frozen():
    for key, entry in PLAYBOOK.items():
        assert entry.key == key
        assert entry.title
        assert entry.what_to_do
        assert entry.severity in ("info", "warning", "critical")
    with pytest.raises(AttributeError):
        PLAYBOOK["unknown"].title = "x"  # type: ignore[misc]
    with pytest.raises(TypeError):
        PLAYBOOK["x"] = PLAYBOOK["unknown"]  # type: ignore[index]


@pytest.mark.parametrize(
    ("reason", "status"),
    [
        (CONTOSO_409, 409),
        (entra_reason("Conflict", HARNESS_DUP_IDENTIFIER_BODY, 0, "…"), 409),
        # Harness's SCIM body says 404 whatever the HTTP status; its message still tells 409.
        (HARNESS_DUP_IDENTIFIER_BODY, 409),
        (HARNESS_403_BODY, 403),
        (HARNESS_401_EXPIRED, 401),
        (HARNESS_401_NO_BEARER, 401),
        (HARNESS_429_BODY, 429),
        (HARNESS_500_BODY, 500),
        ("StatusCode: 503", 503),
        ('{"detail":"not found","status":"404"}', 404),
        ("StatusCode: Teapot", None),
        (RETRIED_IN_40, None),
        (None, None),
    ],
)
def test_parse_http_status(reason, status):
    assert parse_http_status(reason) == status


def test_parse_conflicting_identifier():
    assert parse_conflicting_identifier(HARNESS_DUP_IDENTIFIER_BODY) == "Dev_Team"
    assert parse_conflicting_identifier(CONTOSO_409) is None
    assert parse_conflicting_identifier(None) is None


def quoting(body: str) -> str:
    """A reason in which Entra quotes `body` as Harness answered it."""
    return entra_reason("Conflict", body, 3, "2026-11-29T14:51:06.9377260Z UTC")


@pytest.mark.parametrize(
    ("reason", "said"),
    [
        (
            quoting(HARNESS_DUP_IDENTIFIER_BODY),
            "Try using different user group identifier, [Dev_Team] cannot be used",
        ),
        (quoting(HARNESS_403_BODY), json.loads(HARNESS_403_BODY)["message"]),
        (quoting('{"detail":"  "}'), ""),  # nothing said
        (quoting('{"detail":"User limit reached'), ""),  # a body cut short
        (quoting("<html>Bad Gateway</html>"), ""),
        (quoting('["detail"]'), ""),
        (quoting('{"detail": {"nested": 1}}'), ""),
        (
            "Web Response:" + HARNESS_DUP_IDENTIFIER_BODY,
            "Try using different user group identifier, [Dev_Team] cannot be used",
        ),
        (CONTOSO_409, ""),
        (None, ""),
    ],
)
def test_parse_service_message(reason, said):
    assert parse_service_message(reason) == said


@pytest.mark.parametrize(
    ("code", "normalised"),
    [
        ("ContosoEntryConflict", "EntryConflict"),
        ("SystemForCrossDomainIdentityManagementInvalidCredentials", "InvalidCredentials"),
        (
            "SystemForCrossDomainIdentityManagementServiceIncompatibleFiltering",
            "ServiceIncompatibleFiltering",
        ),
        ("Timeout", "Timeout"),
        ("None", None),
        ("", None),
        (None, None),
    ],
)
def test_normalise_error_code(code, normalised):
    assert normalise_error_code(code) == normalised


# Hostile input never raises.

any_text = st.text(st.characters(codec=None, exclude_categories=()), max_size=500)


@given(any_text, st.one_of(st.none(), st.datetimes(timezones=st.just(UTC))))
def test_parsers_never_raise_and_return_utc(reason, event_time):
    retry_time = parse_retry_time(reason, event_time)
    assert retry_time is None or retry_time.tzinfo is UTC
    parse_retry_count(reason)
    parse_http_status(reason)
    parse_conflicting_identifier(reason)
    parse_entra_timestamp(reason)
    assert isinstance(parse_service_message(reason), str)
    assert isinstance(parse_service_message("Web Response: " + reason), str)


@given(st.one_of(st.none(), any_text), st.one_of(st.none(), any_text), any_text, any_text)
def test_playbook_never_raises(code, category, identity, reason):
    assert playbook_for(code, category, identity, reason).key in PLAYBOOK


@given(
    st.from_regex(
        r"It will be retried again after this date: "
        r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?Z UTC",
        fullmatch=True,
    )
)
def test_any_shaped_retry_date_parses_or_gives_none(reason):
    retry_time = parse_retry_time(reason)
    assert retry_time is None or retry_time.tzinfo is UTC


@pytest.mark.parametrize(
    "reason",
    [
        "[bold red]It will be retried again after this date:[/] [link=http://x]2024[/link]",
        "<script>alert(1)</script> retried again after this date: <b>2024-01-01T00:00:00Z</b>",
        "\x1b[31mIt will be retried again after this date: \x1b[0m\x00\x07\r\n\t",
        "It will be retried again after this date: 2024-01-01T00:00:00Z\x00UTC",
        "retried again after " * 50_000,
        "It will be retried again after this date: " + "9" * 1_000_000,
        "StatusCode: " + "A" * 1_000_000,
        '"status":' + " " * 1_000_000,
        "\ud800\udfff\ufffe" * 10_000,
    ],
)
def test_hostile_reasons_never_raise(reason):
    parse_retry_time(reason, EVENT_TIME)
    parse_retry_count(reason)
    parse_http_status(reason)
    assert playbook_for("EntryConflict", "nonServiceFailure", "Group", reason).key in PLAYBOOK


def test_escape_sequences_around_a_real_date_still_parse():
    reason = "\x1b[31mIt will be retried again after this date: 2024-01-01T00:00:00Z UTC\x1b[0m"
    assert parse_retry_time(reason) == datetime(2024, 1, 1, tzinfo=UTC)


def test_a_date_at_the_end_of_a_huge_reason_is_found():
    reason = "x" * 5_000_000 + " It will be retried again after this date: 2024-01-01T00:00:00Z UTC"
    assert parse_retry_time(reason) == datetime(2024, 1, 1, tzinfo=UTC)


# (c) Escalation, escrow and quarantine


def test_escalation_after_the_second_failure():
    assert not is_escalated(0)
    assert not is_escalated(1)
    assert is_escalated(2)
    assert is_escalated(7)


def test_escrow_horizon_is_28_days():
    first = datetime(2024, 1, 1, tzinfo=UTC)
    assert timedelta(days=28) == ESCROW_HORIZON
    assert escrow_expires_at(first) == datetime(2024, 1, 29, tzinfo=UTC)
    assert escrow_remaining(first, datetime(2024, 1, 28, tzinfo=UTC)) == timedelta(days=1)
    assert escrow_remaining(first, datetime(2024, 3, 1, tzinfo=UTC)) == timedelta(0)
    assert escrow_expires_at(first.replace(tzinfo=None)) == datetime(2024, 1, 29, tzinfo=UTC)
    plus_two = timezone(timedelta(hours=2))
    assert escrow_expires_at(datetime(2024, 1, 1, 2, tzinfo=plus_two)).tzinfo is UTC


def test_quarantine_schedule_is_6h_12h_24h_then_daily_for_28_days():
    """graph-api.md §3.4."""
    assert QUARANTINE_RETRY_OFFSETS[:4] == (
        timedelta(hours=6),
        timedelta(hours=12),
        timedelta(hours=24),
        timedelta(hours=48),
    )
    assert QUARANTINE_RETRY_OFFSETS[-1] == timedelta(days=28)
    steps = [b - a for a, b in pairwise(QUARANTINE_RETRY_OFFSETS[2:])]
    assert set(steps) == {timedelta(hours=24)}
    assert QUARANTINE_RETRY_OFFSETS_LEGACY[-1] == timedelta(hours=168)


@pytest.mark.parametrize(
    ("elapsed", "next_offset"),
    [
        (timedelta(0), timedelta(hours=6)),
        (timedelta(hours=6), timedelta(hours=12)),
        (timedelta(hours=13), timedelta(hours=24)),
        (timedelta(days=3, minutes=1), timedelta(days=4)),
        (timedelta(days=27, hours=23), timedelta(days=28)),
        (timedelta(days=28), None),
    ],
)
def test_quarantine_next_attempt_from_the_documented_schedule(elapsed, next_offset):
    began = datetime(2024, 1, 1, tzinfo=UTC)
    expected = None if next_offset is None else began + next_offset
    assert quarantine_next_attempt(began, began + elapsed) == expected


def test_graphs_own_next_attempt_wins_when_ahead():
    """graph-api.md §2.10.3: nextAttempt 5 minutes after seriesBegan at seriesCount 1."""
    began = parse_entra_timestamp("2021-05-24T21:45:54.4981365Z")
    reported = parse_entra_timestamp("2021-05-24T21:50:54.4981365Z")
    assert began is not None
    assert reported is not None
    assert quarantine_next_attempt(began, began, reported) == reported
    # Stale (already past) or the 0001-01-01 sentinel: fall back to the schedule.
    later = began + timedelta(hours=1)
    assert quarantine_next_attempt(began, later, reported) == began + timedelta(hours=6)
    sentinel = datetime(1, 1, 1, tzinfo=UTC)
    assert quarantine_next_attempt(began, began, sentinel) == began + timedelta(hours=6)


def test_quarantine_disabled_after_four_weeks():
    began = datetime(2024, 1, 1, tzinfo=UTC)
    assert quarantine_disabled_at(began) == datetime(2024, 1, 29, tzinfo=UTC)


@pytest.mark.parametrize(
    ("failed", "succeeded", "reference_failed", "quarantined"),
    [
        # graph-api.md §3.3 worked examples.
        (4_000, 0, 0, False),
        (45_000, 0, 0, True),
        (30_000, 5_000, 0, True),
        (20_000, 100_000, 0, False),
        (40_000, 0, 21_000, True),
        # Boundaries: "more than" 40% / 40,000 / 60,000; 5,000 minimum.
        (4_999, 0, 0, False),
        (5_000, 0, 0, True),
        (40_000, 60_000, 0, False),
        (40_001, 1_000_000, 0, True),
        (10_000, 1_000_000, 50_000, False),
        (10_000, 1_000_000, 50_001, True),
    ],
)
def test_would_quarantine(failed, succeeded, reference_failed, quarantined):
    assert would_quarantine(failed, succeeded, reference_failed) is quarantined


def _key_from_text_reference(reason: str) -> str | None:
    from store import playbook

    for pattern, key in (
        (playbook._LICENCE_TEXT, "license_limit"),
        (playbook._LAST_ADMIN_TEXT, "last_admin"),
        (playbook._GROUP_GONE_TEXT, "group_gone_on_delete"),
        (playbook._INVALID_IDENTIFIER_TEXT, "group_identifier_invalid"),
    ):
        if pattern.search(reason):
            return key
    return None


_FACT_WORDS = st.sampled_from(
    [
        "LICENSE", "licence", "User Limit", "last admin", "LAST_ADMIN", "Group does not exist",
        "group does not exist", "l\u0131cense", "\u017f", "is a keyword, so cannot be used",
        "can only contain alphanumeric, underscore and $", "retried", "Retried again after",
        "RETRIED IN 40 MINUTES", "retr\u0131ed in 5 hours", " 2026-10-31T17:24:45Z UTC", " ",
        "HTTP Status Code 409", "http status code ", "409", "\u0661\u0662\u0663",
    ]
)  # fmt: skip


@given(st.lists(st.one_of(_FACT_WORDS, st.text(max_size=8)), max_size=8).map("".join))
def test_reason_prefilters_agree_with_the_patterns(reason):
    """The cheap substring checks before the regexes never change an answer."""
    from store import playbook

    assert playbook._key_from_text(reason) == _key_from_text_reference(reason)
    expected_date = None
    for match in playbook._RETRY_AFTER_DATE.finditer(reason):
        expected_date = parse_entra_timestamp(match.group("date")) or expected_date
    if expected_date is None and (relative := playbook._RETRY_IN.search(reason)):
        unit = timedelta(hours=1) if relative.group(2).lower() == "hour" else timedelta(minutes=1)
        expected_date = EVENT_TIME + int(relative.group(1)) * unit
    assert parse_retry_time(reason, EVENT_TIME) == expected_date
    if status := playbook._HTTP_STATUS_CODE.search(reason):
        assert parse_http_status(reason) == int(status.group(1))


def test_cached_playbook_entries_are_the_adjusted_ones():
    first = playbook_for("Bogus", "failure", "User", "", " Ask the admin ")
    assert first is playbook_for("Bogus", "failure", "User", "", "Ask the admin")
    assert first.retried_automatically
    assert first.microsoft_says == "Ask the admin"
    assert PLAYBOOK["unknown"].microsoft_says != "Ask the admin"
