"""Harness's rule for deriving a user-group identifier from a SCIM displayName.

A port of ``UuidAndIdentifierUtils.generateHarnessUIFormatIdentifier`` (core@2023-12) and of the
hash-suffix variant of the newer core (reference/harness-api.md sections 2.2, 2.4 and 2.6), plus the
``EntityIdentifierValidator`` checks that make a SCIM group create fail (section 2.5).
This module is the simulator's own copy: it must never be shared with the collectors' port.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from typing import Literal

HarnessGeneration = Literal["core-2023-12", "core-new"]

IDENTIFIER_PATTERN = re.compile(r"^[a-zA-Z_][0-9a-zA-Z_$]{0,127}$")
NOT_ALLOWED_WORDS = frozenset(
    {
        "or",
        "and",
        "eq",
        "ne",
        "lt",
        "gt",
        "le",
        "ge",
        "div",
        "mod",
        "not",
        "null",
        "true",
        "false",
        "new",
        "var",
        "return",
        "step",
        "parallel",
        "stepGroup",
        "org",
        "account",
        "class",
        "shellScriptProvisioner",
    }
)
_MAX_LENGTH = 128
_HASH_LENGTH = 8


def _java_trim(text: str) -> str:
    """Strip characters <= U+0020 from both ends, as Java's String.trim() does."""
    start, end = 0, len(text)
    while start < end and ord(text[start]) <= 32:
        start += 1
    while end > start and ord(text[end - 1]) <= 32:
        end -= 1
    return text[start:end]


def _strip_accents(text: str) -> str:
    decomposed = unicodedata.normalize("NFD", text)
    return "".join(c for c in decomposed if unicodedata.category(c) != "Mn")


def legacy_identifier(display_name: str) -> str:
    """The core@2023-12 identifier for a SCIM group named ``display_name``."""
    if display_name.strip() == "":
        return ""
    text = _java_trim(display_name).replace(".", "_").replace("-", "_")
    text = _java_trim(_strip_accents(text))
    text = re.sub(r"^[0-9\-$]*", "", text, count=1)
    text = re.sub(r"[^0-9a-zA-Z_$ ]", "", text)
    return re.sub(r"\s", "_", text, flags=re.ASCII)


def hashed_identifier(display_name: str) -> str:
    """The newer core's identifier: the legacy one plus a hash suffix for digit-leading names."""
    legacy = legacy_identifier(display_name)
    if not display_name or not legacy:
        return legacy
    trimmed = display_name.strip()
    if not trimmed or not trimmed[0].isdigit() or display_name == legacy:
        return legacy
    digest = hashlib.sha256(display_name.encode("utf-8")).hexdigest()[:_HASH_LENGTH]
    return legacy[: _MAX_LENGTH - _HASH_LENGTH - 1] + "_" + digest


def group_identifier(display_name: str, generation: HarnessGeneration = "core-2023-12") -> str:
    """The identifier Harness of ``generation`` derives from ``display_name``."""
    if generation == "core-new":
        return hashed_identifier(display_name)
    return legacy_identifier(display_name)


def identifier_problem(identifier: str) -> str | None:
    """Why Harness rejects ``identifier`` (the validator's message), or None when it is valid."""
    if identifier == "":
        return "cannot be empty"
    if identifier in NOT_ALLOWED_WORDS:
        return f"{identifier} is a keyword, so cannot be used"
    if not IDENTIFIER_PATTERN.match(identifier):
        return (
            "can be 128 characters long and can only contain alphanumeric, underscore and $ "
            "characters, and not start with a number or $"
        )
    return None
