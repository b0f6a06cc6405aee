"""Plain-text rendering of strings that came from an API (reference/reliability.md 3.5).

Anyone who can name a user or group in Entra or Harness writes into the admin's terminal. So
every such string goes through `clean` before it reaches a widget: escape sequences and control
characters (C0, DEL, C1) become a visible U+FFFD, bidi overrides and isolates (Trojan Source)
too, newlines become a visible mark in single-line cells, and absurdly long values are cut.
`safe_text` then wraps the result in a Rich `Text`, which Textual never parses as markup, so
`[@click=app.quit]` or `[link=...]` stays literal.
"""

from __future__ import annotations

import re
import unicodedata

from rich.text import Text

REPLACEMENT = "\N{REPLACEMENT CHARACTER}"
"""What a removed escape sequence or control character shows as."""

NEWLINE_MARK = "\N{RETURN SYMBOL}"
"""What a newline shows as in a single-line cell."""

CELL_LIMIT = 200
"""Longest value a table cell shows."""

TEXT_LIMIT = 4000
"""Longest value a detail pane shows."""

# ESC-introduced sequences: CSI (ESC [ ... final), OSC/DCS/APC/PM/SOS (terminated by BEL or
# ST), and two-character escapes. The 8-bit forms (\x9b CSI, \x9d OSC) are C1 controls.
_ESCAPE_SEQUENCE = re.compile(
    r"""
    (?:\x1b\[|\x9b)[0-?]*[ -/]*[@-~]?                 # CSI
    | (?:\x1b[\]PX^_]|[\x90\x98\x9d\x9e\x9f]).*?(?:\x07|\x1b\\|\x9c|$)  # OSC, DCS, SOS, PM, APC
    | \x1b[ -/]*[0-~]?                                 # other escapes (and a lone ESC)
    """,
    re.VERBOSE | re.DOTALL,
)

_BIDI_CONTROLS = frozenset(
    "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
)
"""Bidi embeddings, overrides, isolates and marks: they reorder what the admin reads."""


_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f" + "".join(sorted(_BIDI_CONTROLS)) + "]")
"""Any character `clean` changes: controls (Unicode category Cc: C0, DEL, C1; escape sequences
start with one, tabs and newlines are some) and bidi controls. Most API text has none."""


def _replace_char(char: str, single_line: bool) -> str:
    if char == "\t":
        return " "
    if char == "\n":
        return NEWLINE_MARK if single_line else "\n"
    if char in _BIDI_CONTROLS or unicodedata.category(char) == "Cc":
        return REPLACEMENT
    return char


def _needs_replacing(char: str) -> bool:
    return char in _BIDI_CONTROLS or unicodedata.category(char) == "Cc"


def clean(value: object, limit: int = CELL_LIMIT, *, single_line: bool = True) -> str:
    """API text made safe to display: no escapes, no controls, no bidi tricks, bounded length.

    Args:
        value: the API value; None shows as empty, anything else through `str`.
        limit: the longest result, in characters, an ellipsis included.
        single_line: show newlines as a visible mark instead of breaking the line.

    Returns:
        Text that cannot move the cursor, change the terminal, or reorder what is shown.
    """
    if value is None:
        return ""
    text = str(value)
    if len(text) <= limit and _UNSAFE.search(text) is None:
        return text  # nothing to change: the common case, at C speed (a table has ~1,600 cells)
    # Cut first so a 1 MB name costs no more than a short one; keep a margin for escapes.
    clipped = len(text) > limit * 4
    text = text[: limit * 4]
    text = text.replace("\r\n", "\n")
    text = _ESCAPE_SEQUENCE.sub(REPLACEMENT, text)
    if any(_needs_replacing(char) or char == "\t" for char in text):
        text = "".join(_replace_char(char, single_line) for char in text)
    elif single_line and "\n" in text:
        text = text.replace("\n", NEWLINE_MARK)
    if clipped or len(text) > limit:
        text = text[: max(limit - 1, 0)] + "…"
    return text


def safe_text(value: object, limit: int = CELL_LIMIT, *, style: str = "") -> Text:
    """A Rich `Text` of cleaned API text: never parsed as markup."""
    return Text(clean(value, limit), style=style, no_wrap=True, end="")


def safe_block(value: object, limit: int = TEXT_LIMIT, *, style: str = "") -> Text:
    """Like `safe_text` but keeps line breaks, for detail panes."""
    return Text(clean(value, limit, single_line=False), style=style, end="")
