"""Redaction: every token, key and assertion in a text is masked, its label kept."""

from __future__ import annotations

import pytest

from collectors.base import redact

JWT = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln"


@pytest.mark.parametrize(
    ("text", "redacted"),
    [
        (f"token {JWT} refused", "token *** refused"),
        (f"Authorization: Bearer {JWT}", "Authorization: Bearer ***"),
        ("key pat.acct.id.s3cret used", "key pat.*** used"),
        ("client_secret=abc&scope=x", "client_secret=***&scope=x"),
        (
            "client_assertion=not-a-jwt then client_assertion=also-not",
            "client_assertion=*** then client_assertion=***",
        ),
    ],
    ids=["bare jwt", "bearer", "harness token", "form secret", "every assertion"],
)
def test_redact_masks_every_secret_and_keeps_its_label(text, redacted):
    assert redact(text) == redacted
