"""safe_text: API strings cannot style the UI, trigger actions or reach the terminal raw."""

from __future__ import annotations

import pytest
from rich.text import Text

from dashboard.csv_export import csv_cell
from dashboard.widgets.safe_text import NEWLINE_MARK, REPLACEMENT, clean, safe_block, safe_text


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("Alice", "Alice"),
        ("[bold red]x[/]", "[bold red]x[/]"),
        ("[@click=app.quit]x[/]", "[@click=app.quit]x[/]"),
        ("\x1b]0;pwned\x07title", f"{REPLACEMENT}title"),
        ("\x1b]52;c;aGVsbG8=\x1b\\after", f"{REPLACEMENT}after"),
        ("\x1b[2Jclear", f"{REPLACEMENT}clear"),
        ("\x9b31mred", f"{REPLACEMENT}red"),
        ("a\x1bb", f"a{REPLACEMENT}"),
        ("bell\x07", f"bell{REPLACEMENT}"),
        ("back\x08space", f"back{REPLACEMENT}space"),
        ("over\rwrite", f"over{REPLACEMENT}write"),
        ("admin\u202egnp.exe", f"admin{REPLACEMENT}gnp.exe"),
        ("x\u2066y\u2069", f"x{REPLACEMENT}y{REPLACEMENT}"),
        ("two\nlines", f"two{NEWLINE_MARK}lines"),
        ("tab\there", "tab here"),
        ("運用チーム", "運用チーム"),
        (None, ""),
        (42, "42"),
    ],
)
def test_clean_removes_escapes_and_controls(raw, shown):
    assert clean(raw) == shown


def test_nothing_dangerous_survives_any_payload():
    payload = "".join(chr(code) for code in range(0, 0x200)) + "\u202a\u202b\u202c\u202d\u202e"
    cleaned = clean(payload, 10_000)
    assert not any(ord(char) < 0x20 or 0x7F <= ord(char) <= 0x9F for char in cleaned)
    assert not set("\u202a\u202b\u202c\u202d\u202e") & set(cleaned)


def test_huge_values_are_cut_quickly():
    assert len(clean("A" * 1_000_000, 200)) == 200
    assert clean("A" * 1_000_000, 200).endswith("…")
    assert len(clean("\x1b[" * 500_000, 100)) <= 100


def test_block_keeps_newlines_but_not_escapes():
    assert safe_block("one\ntwo\x1b[2J").plain == f"one\ntwo{REPLACEMENT}"


def test_safe_text_is_never_markup():
    text = safe_text("[link=https://evil.example]verify[/link]")
    assert isinstance(text, Text)
    assert text.plain == "[link=https://evil.example]verify[/link]"
    assert text.spans == []


@pytest.mark.parametrize(
    ("value", "cell"),
    [("=HYPERLINK(1)", "'=HYPERLINK(1)"), ("+1", "'+1"), ("@x", "'@x"), (-3, "-3"), ("ok", "ok")],
)
def test_csv_cells_defuse_formulas(value, cell):
    assert csv_cell(value) == cell


def test_the_fast_path_cleans_exactly_as_the_full_one(monkeypatch):
    """Text without a character to change skips the work; random text from an alphabet of
    safe and hostile characters comes out the same with the fast path as without it."""
    import random
    import re

    import dashboard.widgets.safe_text as safe_text_module

    alphabet = [
        *"abcXYZ019 @._-[]/",
        "é", "日", "😀", "\t", "\n", "\r", "\x1b", "[", "3", "1", "m", "]", "\x07",
        "\x00", "\x7f", "\x85", "\x9b", "\x9d", "\u202e", "\u2066", "\u200f", "ß",
    ]  # fmt: skip
    rng = random.Random(8)
    texts = ["".join(rng.choices(alphabet, k=rng.randint(0, 60))) for _ in range(3000)]
    texts += ["x" * 250, "safe name", ""]
    fast = [clean(text) for text in texts] + [clean(text, 20) for text in texts]
    monkeypatch.setattr(safe_text_module, "_UNSAFE", re.compile(".", re.DOTALL))
    full = [clean(text) for text in texts] + [clean(text, 20) for text in texts]
    assert fast == full
