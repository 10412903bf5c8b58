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

# Issue 17 item 6: what the attack run stored as typed.
GAPS = [
    ("card 4111111111111111exp12/26", "card [CARD]exp12/26"),
    ("num4111-1111-1111-1111!", "num[CARD]!"),
    ("iban de89 3704 0044 0532 0130 00 please", "iban [ACCOUNT] please"),
    ("pay to gb82west12345698765432 then", "pay to [ACCOUNT] then"),
    ("Gb82 West 1234 5698 7654 32 thanks", "[ACCOUNT] thanks"),
    ("write jane dot doe at mail dot example dot org", "write [EMAIL]"),
    ("JANE DOT DOE AT MAIL DOT EXAMPLE DOT ORG!", "[EMAIL]!"),
    ("jane(at)example(dot)com or jane.doe [at] example.co.uk", "[EMAIL] or [EMAIL]"),
    ("mail me at jane at example dot com", "mail me at [EMAIL]"),
]

# Texts that must stay as they are: a run of digits that fails Luhn inside a word, a lower-case look-alike of an
# IBAN that fails mod-97, and the shop's own phrasing of web sites.
KEPT = [
    "tracking 1Z999AA10123456784 parcel",
    "model xy12abcd3456efgh is sold out",
    "visit the TPD Discharge website at disabilitydischarge.com and select Forms",
    "write to us at support dot example dot com",
    "look at this dot com",
    "log in at example dot com",
    "meet at noon, dot the i's",
]


@pytest.mark.parametrize(("text", "expected"), GAPS)
def test_masking_gaps_of_the_attack_run(text, expected):
    assert redact(text) == expected
    assert redact(expected) == expected


@pytest.mark.parametrize("text", KEPT)
def test_shop_texts_are_not_masked(text):
    assert redact(text) == text


@pytest.mark.parametrize(("text", "expected"), CASES)
def test_redact(text, expected):
    assert redact(text) == expected
    assert redact(expected) == expected  # idempotent


def test_keep_leaves_the_shop_s_own_values_and_masks_the_rest():
    from chatbot.redact import redact, shop_values

    faq = "Write to support@example-store.com or call +1 555 0100."
    keep = shop_values([faq])
    assert set(keep) >= {"support@example-store.com", "+1 555 0100"}
    text = "Write to support@example-store.com or call +1 555 0100; we reply to jane@mail.example.org."
    assert redact(text, keep) == "Write to support@example-store.com or call +1 555 0100; we reply to [EMAIL]."
    assert redact(text) == "Write to [EMAIL] or call [PHONE]; we reply to [EMAIL]."
