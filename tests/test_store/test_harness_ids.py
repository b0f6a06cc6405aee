"""Harness's group-identifier rule against every example in reference/harness-api.md §2."""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, date, datetime
from typing import get_args

import pytest
from hypothesis import given
from hypothesis import strategies as st

from store.harness_ids import (
    CURRENT_RULE,
    HARNESS_BUILTIN_GROUP_IDENTIFIERS,
    IDENTIFIER_MAX_LENGTH,
    NOT_ALLOWED_WORDS,
    RULE_HISTORY,
    RuleName,
    candidate_identifiers,
    check_syncable,
    derive_identifier,
    harness_identifier,
    identifier_problem,
    is_syncable,
    rules_possible_at,
)

ALL_RULES: tuple[RuleName, ...] = get_args(RuleName)
UI_FORMAT_RULES: tuple[RuleName, ...] = (
    "hash_suffix",
    "ui_format",
    "ui_format_dot",
    "ui_format_bare",
)
VALID_IDENTIFIER = re.compile(r"[a-zA-Z_][0-9a-zA-Z_$]{0,127}")

# Every code point, lone surrogates included (JSON "\ud800" escapes decode to them).
any_text = st.text(st.characters(codec=None, exclude_categories=()), max_size=300)


# §2.2: UuidValidatorTest.java, verbatim assertions on generateHarnessUIFormatIdentifier.
JAVA_UNIT_TEST_CASES = [
    ("$%^abc.ksxjx_+$++&UII J", "abc_ksxjx_$UII_J"),
    ("example Name", "example_Name"),
    (".test", "_test"),
    ("abc.test", "abc_test"),
    ("-test", "_test"),
    ("abc-test", "abc_test"),
    (" test", "test"),
    ("abc test", "abc_test"),
    ("$test", "test"),
    ("test$", "test$"),
    ("%test", "test"),
    ("test%", "test"),
    ("5test", "test"),
    ("test5g", "test5g"),
]


@pytest.mark.parametrize(("display_name", "expected"), JAVA_UNIT_TEST_CASES)
def test_ui_format_rule_passes_harness_java_unit_tests(display_name, expected):
    assert harness_identifier(display_name, "ui_format") == expected


@pytest.mark.parametrize(
    ("display_name", "expected"),
    [(name, ident) for name, ident in JAVA_UNIT_TEST_CASES if not name[0].isdigit()],
)
def test_current_rule_agrees_with_java_unit_tests_for_names_not_starting_with_a_digit(
    display_name, expected
):
    assert harness_identifier(display_name) == expected


# §2.6 "Computed examples" table: (displayName, core@2023-12, core-new).
COMPUTED_EXAMPLES = [
    ("example-group", "example_group", "example_group"),
    ("Dev Team", "Dev_Team", "Dev_Team"),
    ("Dev-Team", "Dev_Team", "Dev_Team"),
    ("dev.team", "dev_team", "dev_team"),
    ("Team (Prod)", "Team_Prod", "Team_Prod"),
    ("Ops/SRE", "OpsSRE", "OpsSRE"),
    ("grp@corp", "grpcorp", "grpcorp"),
    ("Équipe Été", "Equipe_Ete", "Equipe_Ete"),
    ("-test", "_test", "_test"),
    (".test", "_test", "_test"),
    ("5test", "test", "test_870ce581"),
    ("123 Team", "_Team", "_Team_30fe2bf3"),
    ("456 Team", "_Team", "_Team_0003c561"),
    ("1-abc", "_abc", "_abc_5ebbff0d"),
    ("org", "org", "org"),
    ("日本語", "", ""),
]


@pytest.mark.parametrize(("display_name", "core_2023_12", "core_new"), COMPUTED_EXAMPLES)
def test_reference_computed_examples(display_name, core_2023_12, core_new):
    assert harness_identifier(display_name, "ui_format") == core_2023_12
    assert harness_identifier(display_name, "hash_suffix") == core_new
    assert harness_identifier(display_name) == core_new


def test_current_rule_is_the_newest_in_the_history():
    assert CURRENT_RULE == RULE_HISTORY[0].name == "hash_suffix"
    assert [version.name for version in RULE_HISTORY] == list(ALL_RULES)
    dates = [version.since for version in RULE_HISTORY]
    assert dates == sorted(dates, reverse=True)


def test_docs_example_group_becomes_example_group():
    """§2.1: "if a group's name is example-group ..., the group's Harness ID is example_group"."""
    assert derive_identifier("example-group") == "example_group"


def test_same_name_and_hyphen_variant_collide_but_case_does_not():
    """§2.4: Dev-Team and Dev Team share Dev_Team; dev.team differs because case is kept."""
    assert harness_identifier("Dev Team") == harness_identifier("Dev-Team") == "Dev_Team"
    assert harness_identifier("dev.team") == "dev_team"


def test_hash_suffix_separates_names_differing_only_in_leading_digits():
    """§2.4: 123 Team and 456 Team both became _Team before the hash suffix."""
    assert harness_identifier("123 Team", "ui_format") == harness_identifier(
        "456 Team", "ui_format"
    )
    assert harness_identifier("123 Team") != harness_identifier("456 Team")


def test_hash_is_the_first_8_hex_of_sha256_of_the_untrimmed_name():
    """§2.4: the hash is of the untrimmed displayName, the prefix the trimmed one's identifier."""
    name = "  7 Team "
    expected_hash = hashlib.sha256(name.encode()).hexdigest()[:8]
    assert harness_identifier(name) == f"_Team_{expected_hash}"


# §2.3: the rule in force when a group was created, for the docs' example-group and the FAQ's
# hyphen case ("provisioned via SCIM before October 2022 ... contained a hyphen").
HISTORY_EXAMPLES = [
    ("verbatim", "example-group"),
    ("underscore_dot", "example-group"),
    ("underscore_dot_dash", "example_group"),
    ("underscore_dot_dash_space", "example_group"),
    ("ui_format_bare", "examplegroup"),
    ("ui_format_dot", "examplegroup"),
    ("ui_format", "example_group"),
    ("hash_suffix", "example_group"),
]


@pytest.mark.parametrize(("rule", "expected"), HISTORY_EXAMPLES)
def test_history_of_example_group(rule, expected):
    assert harness_identifier("example-group", rule) == expected


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        ("verbatim", "My Team.v2"),
        ("underscore_dot", "My Team_v2"),
        ("underscore_dot_dash", "My Team_v2"),
        ("underscore_dot_dash_space", "My_Team_v2"),
        ("ui_format_bare", "My_Teamv2"),
        ("ui_format_dot", "My_Team_v2"),
        ("ui_format", "My_Team_v2"),
    ],
)
def test_history_of_dots_and_spaces(rule, expected):
    """§2.3: . became _ on 2022-05-10, space on 2022-08-30, . was deleted from 2023-11-17."""
    assert harness_identifier("My Team.v2", rule) == expected


def test_candidates_of_example_group_newest_first_with_every_rule_tagged():
    assert [(c.identifier, c.rules) for c in candidate_identifiers("example-group")] == [
        (
            "example_group",
            ("hash_suffix", "ui_format", "underscore_dot_dash_space", "underscore_dot_dash"),
        ),
        ("examplegroup", ("ui_format_dot", "ui_format_bare")),
        ("example-group", ("underscore_dot", "verbatim")),
    ]
    assert candidate_identifiers("example-group")[1].newest_rule == "ui_format_dot"


def test_candidates_drop_rules_committed_after_the_group_was_created():
    candidates = candidate_identifiers("example-group", created_at=date(2022, 6, 1))
    assert [(c.identifier, c.rules) for c in candidates] == [
        ("example-group", ("underscore_dot", "verbatim"))
    ]


def test_candidates_of_an_unsyncable_name_are_only_the_old_verbatim_ones():
    assert [c.identifier for c in candidate_identifiers("日本語")] == ["日本語"]
    assert candidate_identifiers("") == []
    assert candidate_identifiers(None) == []


@pytest.mark.parametrize(
    ("created_at", "expected_newest"),
    [
        (date(2021, 1, 1), "verbatim"),
        (date(2022, 5, 10), "underscore_dot"),
        (datetime(2022, 9, 1, tzinfo=UTC), "underscore_dot_dash_space"),
        (date(2023, 11, 20), "ui_format_bare"),
        (date(2023, 12, 18), "ui_format_dot"),
        (date(2023, 12, 22), "ui_format"),
        (date(2025, 1, 1), "hash_suffix"),
    ],
)
def test_rules_possible_at(created_at, expected_newest):
    possible = rules_possible_at(created_at)
    assert possible[0] == expected_newest
    assert possible[-1] == "verbatim"


# §2.5 validation: empty, reserved words (case-sensitive), length, pattern.
@pytest.mark.parametrize(
    ("display_name", "problem"),
    [
        ("日本語", "empty"),
        ("12345", "empty"),
        ("", "empty"),
        ("   ", "empty"),
        ("!!!", "empty"),
        ("org", "reserved_word"),
        ("account", "reserved_word"),
        ("true", "reserved_word"),
        ("stepGroup", "reserved_word"),
        ("_account_all_users", "builtin_group"),
        ("_organization_all_users", "builtin_group"),
        ("_project_all_users", "builtin_group"),
        ("a" * 129, "too_long"),
        # A non-Latin first character stops the leading-digit strip; the digit survives.
        ("%1abc", "invalid"),
        ("日1abc", "invalid"),
        ("日$abc", "invalid"),
    ],
)
def test_unsyncable_names(display_name, problem):
    syncability = check_syncable(display_name)
    assert syncability.problem == problem
    assert not syncability.ok
    assert not is_syncable(display_name)
    assert derive_identifier(display_name) is None
    assert syncability.explanation


@pytest.mark.parametrize("display_name", ["Org", "ACCOUNT", "org_team", "a" * 128, "Dev Team"])
def test_syncable_names(display_name):
    syncability = check_syncable(display_name)
    assert syncability.ok
    assert is_syncable(display_name)
    assert derive_identifier(display_name) == syncability.identifier
    assert syncability.identifier in syncability.explanation


def test_every_reserved_word_from_the_validator_is_refused():
    assert len(NOT_ALLOWED_WORDS) == 24
    for word in NOT_ALLOWED_WORDS:
        assert identifier_problem(word) == "reserved_word"


def test_builtin_groups():
    assert "_account_all_users" in HARNESS_BUILTIN_GROUP_IDENTIFIERS


def test_long_digit_leading_name_is_truncated_to_128_with_its_hash():
    """§2.4: the prefix is cut to 119 characters only when the hash suffix is added."""
    name = "1" + "x" * 200
    identifier = harness_identifier(name)
    assert len(identifier) == IDENTIFIER_MAX_LENGTH
    assert identifier == "x" * 119 + "_" + hashlib.sha256(name.encode()).hexdigest()[:8]
    assert is_syncable(name)
    assert check_syncable("x" * 200).problem == "too_long"


def test_l_with_stroke_is_mapped_like_commons_lang():
    """§2.6 caveat: stripAccents also maps Ł/ł to L/l."""
    assert harness_identifier("Łódź Team") == "Lodz_Team"


def test_java_trim_keeps_a_leading_no_break_space():
    """String.trim() stops at U+00A0, so the digit behind it is neither stripped nor hashed."""
    assert harness_identifier("\u00a01abc") == "1abc"
    assert check_syncable("\u00a01abc").problem == "invalid"


def test_only_decimal_digits_trigger_the_hash_suffix():
    """Java Character.isDigit is category Nd: a superscript two is not a digit, Arabic-Indic is."""
    assert harness_identifier("²Team") == "Team"
    arabic = "١٢ Team"
    assert harness_identifier(arabic) == "_Team_" + hashlib.sha256(arabic.encode()).hexdigest()[:8]


def test_strip_accents_removes_only_the_combining_diacritical_marks_block():
    """commons-lang3 removes U+0300-036F; a Hebrew point (Mn, another block) blocks the strip."""
    assert harness_identifier("\u05b01abc") == "1abc"
    assert harness_identifier("e\u0301quipe") == "equipe"


def test_tabs_and_other_whitespace_are_deleted_not_underscored():
    assert harness_identifier("Dev\tTeam") == "DevTeam"
    assert harness_identifier("Dev\u2003Team") == "DevTeam"
    assert harness_identifier("\u2003") == ""


def test_lone_surrogate_is_hashed_as_a_question_mark_like_java():
    name = "1\ud800x"
    assert harness_identifier(name) == "x_" + hashlib.sha256(b"1?x").hexdigest()[:8]


def test_surrogate_pair_is_hashed_as_one_character():
    name = "1\ud83d\ude00x"
    assert harness_identifier(name) == harness_identifier("1\U0001f600x")


def test_none_and_empty_names_give_an_empty_identifier():
    for rule in ALL_RULES:
        assert harness_identifier(None, rule) == ""
        assert harness_identifier("", rule) == ""


def test_unknown_rule_is_refused():
    with pytest.raises(ValueError, match="unknown identifier rule"):
        harness_identifier("x", "nope")  # type: ignore[arg-type]


# Properties that hold per the reference.


@given(any_text)
def test_no_rule_ever_raises(display_name):
    for rule in ALL_RULES:
        harness_identifier(display_name, rule)
    check_syncable(display_name)
    candidate_identifiers(display_name)


@given(any_text, st.sampled_from(UI_FORMAT_RULES))
def test_ui_format_identifiers_contain_only_allowed_characters(display_name, rule):
    assert re.fullmatch(r"[0-9a-zA-Z_$]*", harness_identifier(display_name, rule))


@given(any_text)
def test_derived_identifier_always_passes_harness_validation(display_name):
    identifier = derive_identifier(display_name)
    if identifier is not None:
        assert VALID_IDENTIFIER.fullmatch(identifier)
        assert identifier not in NOT_ALLOWED_WORDS
        assert identifier not in HARNESS_BUILTIN_GROUP_IDENTIFIERS


@given(any_text, st.sampled_from(["hash_suffix", "ui_format"]))
def test_rule_is_idempotent_on_identifiers_starting_with_a_letter_or_underscore(display_name, rule):
    identifier = harness_identifier(display_name, rule)
    if VALID_IDENTIFIER.fullmatch(identifier):
        assert harness_identifier(identifier, rule) == identifier


@given(st.text(st.sampled_from("abcXYZ_"), min_size=1, max_size=50))
def test_case_and_plain_names_are_kept(display_name):
    for rule in ALL_RULES:
        assert harness_identifier(display_name, rule) == display_name


@given(any_text)
def test_hash_suffix_only_extends_the_core_2023_12_identifier(display_name):
    legacy = harness_identifier(display_name, "ui_format")
    current = harness_identifier(display_name, "hash_suffix")
    if current != legacy:
        prefix, _, suffix = current.rpartition("_")
        assert re.fullmatch(r"[0-9a-f]{8}", suffix)
        assert prefix == legacy[:119]
        assert len(current) <= IDENTIFIER_MAX_LENGTH


@given(
    any_text,
    st.sampled_from(
        ["verbatim", "underscore_dot", "underscore_dot_dash", "underscore_dot_dash_space"]
    ),
)
def test_pre_2023_rules_replace_characters_one_for_one(display_name, rule):
    assert len(harness_identifier(display_name, rule)) == len(display_name)


@given(any_text)
def test_candidates_are_distinct_non_empty_and_include_the_current_identifier(display_name):
    candidates = candidate_identifiers(display_name)
    identifiers = [c.identifier for c in candidates]
    assert len(identifiers) == len(set(identifiers))
    assert all(identifiers)
    current = harness_identifier(display_name)
    if current:
        assert identifiers[0] == current
    tagged = [rule for c in candidates for rule in c.rules]
    assert len(tagged) == len(set(tagged))
    assert all(
        harness_identifier(display_name, rule) == c.identifier
        for c in candidates
        for rule in c.rules
    )


def test_old_rules_can_produce_identifiers_harness_now_rejects():
    """Before 2023-11 the name was only substituted, so spaces or slashes could remain (§2.3)."""
    assert check_syncable("Dev Team", "verbatim").problem == "invalid"
    assert "contains characters" in check_syncable("Ops/SRE", "underscore_dot").explanation
    assert check_syncable("Dev Team", "underscore_dot_dash_space").ok


def test_candidates_restricted_to_given_rules():
    candidates = candidate_identifiers("example-group", rules=["ui_format_bare", "verbatim"])
    assert [(c.identifier, c.rules) for c in candidates] == [
        ("examplegroup", ("ui_format_bare",)),
        ("example-group", ("verbatim",)),
    ]
