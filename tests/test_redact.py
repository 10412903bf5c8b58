"""Redaction of personal data (stored text and training exports)."""

from __future__ import annotations

import pytest

from chatbot.redact import redact

CASES = [
    ("mail me at john.doe+x@example.co.uk please", "mail me at [EMAIL] please"),
    ("card 4111 1111 1111 1111 exp 12/27", "card [CARD] exp 12/27"),
    ("card 4111-1111-1111-1111", "card [CARD]"),
    ("call +44 20 7946 0958 now", "call [PHONE] now"),
    ("or (555) 123-4567", "or [PHONE]"),
    ("phone 0612345678", "phone [PHONE]"),
    ("my account number 12345678 at the bank", "my account number [ACCOUNT] at the bank"),
    ("IBAN DE89 3704 0044 0532 0130 00 ok", "IBAN [ACCOUNT] ok"),
    ("refund in 30 days for $19.99, order 12345", "refund in 30 days for $19.99, order 12345"),
    ("on 2024-05-01 at 10:30", "on 2024-05-01 at 10:30"),
]


@pytest.mark.parametrize(("text", "expected"), CASES)
def test_redact(text, expected):
    assert redact(text) == expected
    assert redact(expected) == expected  # idempotent
