"""Harness's rule deriving a user-group identifier from a SCIM ``displayName``, with its history.

Harness NextGen turns the ``displayName`` Entra sends on ``POST /Groups`` into the group's
``identifier`` (which is also its SCIM ``id``) and never changes it afterwards, not even on a
rename (reference/harness-api.md §2, §5 item 19). The rule changed several times (§2.3), so a
group created in 2022 or late 2023 may carry an identifier that today's rule would not produce.

This module ports every version exactly (Java ``String.trim``, ``Character.isWhitespace``,
``Character.isDigit``, commons-lang3 ``stripAccents`` and ASCII-only regex classes), plus
Harness's validation (§2.5), so the health model can predict the identifier of every Entra
group, recognise an older identifier, and say when a name can never be synced.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Final, Literal, get_args

__all__ = [
    "CURRENT_RULE",
    "HARNESS_BUILTIN_GROUP_IDENTIFIERS",
    "IDENTIFIER_MAX_LENGTH",
    "NOT_ALLOWED_WORDS",
    "RULE_HISTORY",
    "IdentifierCandidate",
    "RuleName",
    "RuleVersion",
    "Syncability",
    "UnsyncableReason",
    "candidate_identifiers",
    "check_syncable",
    "derive_identifier",
    "harness_identifier",
    "identifier_problem",
    "is_syncable",
    "rules_possible_at",
]

RuleName = Literal[
    "hash_suffix",
    "ui_format",
    "ui_format_dot",
    "ui_format_bare",
    "underscore_dot_dash_space",
    "underscore_dot_dash",
    "underscore_dot",
    "verbatim",
]
"""Every version of the rule, newest first (reference/harness-api.md §2.3, §2.4)."""

CURRENT_RULE: Final[RuleName] = "hash_suffix"
"""The newest rule seen in Harness's code (core-new, §2.4); ``rule="current"`` means this."""

UnsyncableReason = Literal["empty", "reserved_word", "builtin_group", "too_long", "invalid"]
"""Why Harness refuses (or must not be given) a derived identifier (§2.5, §3.3)."""

IDENTIFIER_MAX_LENGTH: Final = 128
"""``EntityIdentifierValidator``: 1 + up to 127 characters (§2.5)."""

_HASH_LENGTH: Final = 8
_HASH_PREFIX_MAX_LENGTH: Final = IDENTIFIER_MAX_LENGTH - _HASH_LENGTH - 1

NOT_ALLOWED_WORDS: Final = frozenset(
    # EntityIdentifierValidator.NOT_ALLOWED_WORDS, compared case-sensitively (§2.5).
    {
        "or", "and", "eq", "ne", "lt", "gt", "le", "ge", "div", "mod", "not", "null", "true",
        "false", "new", "var", "return", "step", "parallel", "stepGroup", "org", "account",
        "class", "shellScriptProvisioner",
    }
)  # fmt: skip

HARNESS_BUILTIN_GROUP_IDENTIFIERS: Final = frozenset(
    # NGConstants: the built-in "All Account/Organization/Project Users" groups (§3.3).
    {"_account_all_users", "_organization_all_users", "_project_all_users"}
)

# EntityIdentifierValidator.IDENTIFIER_PATTERN; Java's [a-z] classes are ASCII-only (§2.5).
_IDENTIFIER_PATTERN: Final = re.compile(r"[a-zA-Z_][0-9a-zA-Z_$]{0,127}")
# generateHarnessUIFormatIdentifier's three regexes; Python's literal ranges are ASCII too (§2.2).
_LEADING_DIGITS_DASHES_DOLLARS: Final = re.compile(r"^[0-9\-$]*")
_NOT_IDENTIFIER_CHAR: Final = re.compile(r"[^0-9a-zA-Z_$ ]")
# Java's \s without UNICODE_CHARACTER_CLASS is [ \t\n\x0B\f\r].
_JAVA_REGEX_WHITESPACE: Final = re.compile(r"[ \t\n\x0b\f\r]")
# commons-lang3 STRIP_ACCENTS_PATTERN is \p{InCombiningDiacriticalMarks}+: the block, not
# the Mn category, so a Hebrew point or Devanagari sign survives it.
_COMBINING_DIACRITICAL_MARKS: Final = re.compile("[\u0300-\u036f]+")
_REMAINING_ACCENTS: Final = str.maketrans({"\u0141": "L", "\u0142": "l"})
_DIGITS_AND_DOLLAR: Final = frozenset("0123456789$")
_JAVA_NON_BREAKING_SPACES: Final = frozenset("\u00a0\u2007\u202f")
_JAVA_WHITESPACE_CONTROLS: Final = frozenset("\t\n\u000b\f\r\u001c\u001d\u001e\u001f")


@dataclass(frozen=True, slots=True)
class RuleVersion:
    """One version of Harness's identifier rule, as committed to harness-core (§2.3)."""

    name: RuleName
    since: date
    """Commit date; production deployed later (the FAQ's "before October 2022" for a
    2022-07-25 commit), so a group created shortly after may still carry the previous rule."""
    source: str
    """Commit / PR the rule comes from."""
    summary: str


RULE_HISTORY: Final[tuple[RuleVersion, ...]] = (
    RuleVersion(
        "hash_suffix",
        # Absent from the core@2023-12 mirror (HEAD 2023-12-26); exact date unknown (§2.4).
        date(2023, 12, 27),
        "core-new NGScimGroupServiceImpl.generateUserGroupIdentifier",
        "ui_format, plus _<8 hex of sha256(displayName)> when the name starts with a digit",
    ),
    RuleVersion(
        "ui_format",
        date(2023, 12, 22),
        "d77c53076d4 (#56881, PL-43576)",
        "trim, . and - to _, strip accents, drop leading [0-9-$], drop other specials, space to _",
    ),
    RuleVersion(
        "ui_format_dot",
        date(2023, 12, 17),
        "22d6144b833 (#56859, PL-43576)",
        "as ui_format but only . to _ (hyphens deleted)",
    ),
    RuleVersion(
        "ui_format_bare",
        date(2023, 11, 17),
        "e9f5a3d5735 (#55568, PL-42535)",
        "as ui_format without the . and - pre-replacement (both deleted)",
    ),
    RuleVersion(
        "underscore_dot_dash_space",
        date(2022, 8, 30),
        "014e1763c55 (#36931, PL-27552)",
        "displayName with . - and space replaced by _",
    ),
    RuleVersion(
        "underscore_dot_dash",
        date(2022, 7, 25),
        "597ac5811b1 (#35519, PL-26457)",
        "displayName with . and - replaced by _",
    ),
    RuleVersion(
        "underscore_dot",
        date(2022, 5, 10),
        "9bded0ef7e5 (#32853, PL-24987)",
        "displayName with . replaced by _",
    ),
    RuleVersion(
        "verbatim",
        date(2021, 12, 18),
        "7c8a549b8b0 (#29211, PL-21224)",
        "displayName verbatim",
    ),
)
"""Every version of the rule, newest first."""


@dataclass(frozen=True, slots=True)
class IdentifierCandidate:
    """An identifier some version of the rule produces for a name, with every such version."""

    identifier: str
    rules: tuple[RuleName, ...]
    """The rule versions producing it, newest first."""

    @property
    def newest_rule(self) -> RuleName:
        """The newest rule version producing this identifier."""
        return self.rules[0]


@dataclass(frozen=True, slots=True)
class Syncability:
    """Whether Harness can create a SCIM group for a name, and why not."""

    display_name: str | None
    identifier: str
    """What the rule computes, ``""`` when nothing is left of the name."""
    problem: UnsyncableReason | None
    explanation: str

    @property
    def ok(self) -> bool:
        """True when Harness accepts the identifier."""
        return self.problem is None


def _java_trim(text: str) -> str:
    """Java ``String.trim()``: strip every char <= U+0020 from both ends."""
    start, end = 0, len(text)
    while start < end and text[start] <= " ":
        start += 1
    while end > start and text[end - 1] <= " ":
        end -= 1
    return text[start:end]


def _java_is_whitespace(char: str) -> bool:
    """Java ``Character.isWhitespace``: separators except no-break spaces, and some controls."""
    if char in _JAVA_WHITESPACE_CONTROLS:
        return True
    is_separator = unicodedata.category(char) in ("Zs", "Zl", "Zp")
    return is_separator and char not in _JAVA_NON_BREAKING_SPACES


def _is_blank(text: str | None) -> bool:
    """commons-lang3 ``StringUtils.isBlank``."""
    return text is None or all(_java_is_whitespace(char) for char in text)


def _java_is_digit(char: str) -> bool:
    """Java ``Character.isDigit(char)`` on one UTF-16 unit: category Nd, BMP only."""
    return ord(char) <= 0xFFFF and unicodedata.category(char) == "Nd"


def _strip_accents(text: str) -> str:
    """commons-lang3 ``StringUtils.stripAccents`` (3.x before NFKD): NFD, Ł/ł, drop U+0300-036F."""
    decomposed = unicodedata.normalize("NFD", text).translate(_REMAINING_ACCENTS)
    return _COMBINING_DIACRITICAL_MARKS.sub("", decomposed)


def _java_utf8(text: str) -> bytes:
    """Java ``String.getBytes(UTF_8)``: surrogate pairs joined, a lone surrogate becomes ``?``."""
    joined = text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "surrogatepass")
    return joined.encode("utf-8", "replace")


def _ui_format_identifier(name: str, pre_replaced: str) -> str:
    """``UuidAndIdentifierUtils.generateHarnessUIFormatIdentifier`` (§2.2).

    Args:
        name: The SCIM displayName, not blank.
        pre_replaced: The characters ``generateFormattedIdentifier`` turned into ``_`` first:
            ``".-"`` since 2023-12-22, ``"."`` from 2023-12-17, ``""`` from 2023-11-17 (§2.3).
    """
    if pre_replaced and not _is_blank(name):
        name = _java_trim(name)
        for char in pre_replaced:
            name = name.replace(char, "_")
    if _is_blank(name):
        return ""
    name = _java_trim(_strip_accents(name))
    name = _LEADING_DIGITS_DASHES_DOLLARS.sub("", name, count=1)
    name = _NOT_IDENTIFIER_CHAR.sub("", name)
    return _JAVA_REGEX_WHITESPACE.sub("_", name)


def _hash_suffixed_identifier(display_name: str, legacy_identifier: str) -> str:
    """core-new ``generateUserGroupIdentifier``: names differing in leading digits differ (§2.4)."""
    if not display_name or not legacy_identifier:
        return legacy_identifier
    trimmed = _java_trim(display_name)
    if not trimmed or not _java_is_digit(trimmed[0]):
        return legacy_identifier
    if display_name == legacy_identifier:  # pragma: no cover - unreachable, kept as in the Java
        return legacy_identifier
    short_hash = hashlib.sha256(_java_utf8(display_name)).hexdigest()[:_HASH_LENGTH]
    return f"{legacy_identifier[:_HASH_PREFIX_MAX_LENGTH]}_{short_hash}"


def harness_identifier(
    display_name: str | None, rule: RuleName | Literal["current"] = "current"
) -> str:
    """The identifier a version of Harness's rule computes for a SCIM ``displayName``, exactly.

    Returns ``""`` when nothing is left (``createGroup`` passes an empty name through, §2.2);
    no validation is applied: see `check_syncable` for whether Harness accepts it.

    Args:
        display_name: The group's ``displayName`` as Entra sends it; ``None`` is treated as empty.
        rule: A version from `RULE_HISTORY`, or ``"current"`` for `CURRENT_RULE`.
    """
    if not display_name:
        return ""
    if rule == "current":
        rule = CURRENT_RULE
    match rule:
        case "hash_suffix":
            legacy = _ui_format_identifier(display_name, ".-")
            return _hash_suffixed_identifier(display_name, legacy)
        case "ui_format":
            return _ui_format_identifier(display_name, ".-")
        case "ui_format_dot":
            return _ui_format_identifier(display_name, ".")
        case "ui_format_bare":
            return _ui_format_identifier(display_name, "")
        case "underscore_dot_dash_space":
            # Java replaceAll(" ", "_") replaces only U+0020; no trim in this era (§2.3).
            return display_name.replace(".", "_").replace("-", "_").replace(" ", "_")
        case "underscore_dot_dash":
            return display_name.replace(".", "_").replace("-", "_")
        case "underscore_dot":
            return display_name.replace(".", "_")
        case "verbatim":
            return display_name
    raise ValueError(f"unknown identifier rule: {rule!r}")


def identifier_problem(identifier: str) -> UnsyncableReason | None:
    """Why Harness would refuse a SCIM group with this identifier, or ``None`` if it accepts it."""
    if not identifier:
        return "empty"
    if identifier in HARNESS_BUILTIN_GROUP_IDENTIFIERS:
        return "builtin_group"
    if len(identifier) > IDENTIFIER_MAX_LENGTH:
        return "too_long"
    if _IDENTIFIER_PATTERN.fullmatch(identifier) is None:
        return "invalid"
    if identifier in NOT_ALLOWED_WORDS:
        return "reserved_word"
    return None


def _explain(identifier: str, problem: UnsyncableReason | None) -> str:
    """One sentence for the admin on the identifier's fate."""
    match problem:
        case None:
            return f"Harness will use the identifier {identifier!r}."
        case "empty":
            return (
                "Nothing is left of the name once Harness drops every character other than "
                "Latin letters, digits, '_', '$' and spaces (and any leading digits), so Harness "
                "rejects the group: rename it in Entra to include Latin letters."
            )
        case "builtin_group":
            return (
                f"The identifier {identifier!r} is Harness's built-in all-users group: "
                "creating the group fails or takes that group over. Rename it in Entra."
            )
        case "too_long":
            return (
                f"The identifier is {len(identifier)} characters long; Harness allows "
                f"{IDENTIFIER_MAX_LENGTH}, so it rejects the group. Shorten the name in Entra."
            )
        case "invalid" if identifier[0] in _DIGITS_AND_DOLLAR:
            return (
                f"The identifier {identifier!r} starts with a digit or '$', which Harness "
                "rejects. Rename the group in Entra so that it starts with a Latin letter."
            )
        case "invalid":
            return (
                f"The identifier {identifier!r} contains characters other than Latin letters, "
                "digits, '_' and '$', which Harness rejects. Rename the group in Entra."
            )
        case "reserved_word":
            return (
                f"The identifier {identifier!r} is a keyword Harness reserves, so it rejects "
                "the group. Rename it in Entra."
            )


def check_syncable(
    display_name: str | None, rule: RuleName | Literal["current"] = "current"
) -> Syncability:
    """Whether Harness can create a SCIM group from this name, and an explanation either way."""
    identifier = harness_identifier(display_name, rule)
    problem = identifier_problem(identifier)
    return Syncability(display_name, identifier, problem, _explain(identifier, problem))


def is_syncable(display_name: str | None, rule: RuleName | Literal["current"] = "current") -> bool:
    """True when Harness accepts the identifier it derives from this name."""
    return check_syncable(display_name, rule).ok


def derive_identifier(
    display_name: str | None, rule: RuleName | Literal["current"] = "current"
) -> str | None:
    """The identifier Harness gives a SCIM group with this name, or ``None`` if it can't create it.

    Args:
        display_name: The Entra group's ``displayName``.
        rule: A version from `RULE_HISTORY`, or ``"current"`` for `CURRENT_RULE`.

    Returns:
        The identifier, or ``None`` when it is empty, reserved, a built-in group's, too long
        or invalid (`check_syncable` says which).
    """
    syncability = check_syncable(display_name, rule)
    return syncability.identifier if syncability.ok else None


def rules_possible_at(created_at: date | datetime) -> tuple[RuleName, ...]:
    """The rule versions that can have named a group created at this time, newest first.

    A rule committed later is excluded; every older rule is kept, because production was
    deployed some time after each commit (§2.3 FAQ: "before October 2022").
    """
    day = created_at.date() if isinstance(created_at, datetime) else created_at
    possible = tuple(version.name for version in RULE_HISTORY if version.since <= day)
    # Before the first SCIM group support the verbatim rule is the only one that existed.
    return possible or ("verbatim",)


def candidate_identifiers(
    display_name: str | None,
    created_at: date | datetime | None = None,
    rules: Iterable[RuleName] | None = None,
) -> list[IdentifierCandidate]:
    """Every non-empty identifier any version of the rule gives this name, newest first.

    Identifiers of existing groups reflect the rule in force when each was *created* (§2.3),
    so look a Harness group up by all of these, not only by today's.

    Args:
        display_name: The group's ``displayName`` when it was created (a rename in Entra
            never changes the identifier, §5 item 19).
        created_at: When the group was created, if known: drops rules committed later.
        rules: Restrict to these rule versions (default: all, or those possible at created_at).
    """
    if rules is None:
        rules = rules_possible_at(created_at) if created_at is not None else get_args(RuleName)
    wanted = set(rules)
    by_identifier: dict[str, list[RuleName]] = {}
    for version in RULE_HISTORY:
        if version.name in wanted:
            identifier = harness_identifier(display_name, version.name)
            if identifier:
                by_identifier.setdefault(identifier, []).append(version.name)
    return [IdentifierCandidate(ident, tuple(names)) for ident, names in by_identifier.items()]
