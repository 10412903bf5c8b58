"""Redaction of personal data in stored and exported text: e-mail addresses, card, account and phone numbers.

Serving redacts what it stores (config `store.redact`); training redacts every exported example with the same
function. Placeholders are bracketed upper-case words, so the model learns a stable token for each kind.
"""

from __future__ import annotations

import re

EMAIL = re.compile(r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b")
# IBAN: two letters, two check digits, up to 30 alphanumerics (spaces allowed in groups of four).
IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?\b")
# Card numbers: 13-19 digits, optionally grouped by spaces or dashes; checked with Luhn.
CARD = re.compile(r"\b\d(?:[ -]?\d){12,18}\b")
# Phone numbers: an optional +country code, then 7-15 digits with spaces, dots, dashes or brackets.
PHONE = re.compile(r"(?<![\w+(])(?:(?:\+|00)\d{1,3}[ .-]?)?(?:\(\d{1,4}\)[ .-]?)?\d{2,4}(?:[ .-]?\d{2,4}){1,4}(?!\w)")
DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$|^\d{1,2}[./-]\d{1,2}[./-]\d{2,4}$")
# Account numbers: a keyword followed by a long digit run.
ACCOUNT = re.compile(
    r"(?i)\b(account|acct|a/c|konto|compte|cuenta|conto|rekening|iban)(\s*(?:no\.?|number|nr\.?|#|:)?\s*)"
    r"([A-Z0-9][A-Z0-9 -]{5,32}\d)"
)

PLACEHOLDERS = ("[EMAIL]", "[CARD]", "[ACCOUNT]", "[PHONE]")


def _luhn(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _card(match: re.Match[str]) -> str:
    digits = re.sub(r"\D", "", match.group())
    return "[CARD]" if _luhn(digits) else "[ACCOUNT]"


def _phone(match: re.Match[str]) -> str:
    text = match.group()
    digits = re.sub(r"\D", "", text)
    # A bare short number (an order count, a year, a price) is not a phone number.
    if DATE.match(text) or len(digits) < 7 or (len(digits) < 9 and not re.search(r"[ .()-]|^\+|^00", text)):
        return text
    return "[PHONE]"


def redact(text: str) -> str:
    """`text` with e-mail addresses, card numbers, account numbers (IBAN or after "account") and phone numbers
    replaced by `[EMAIL]`, `[CARD]`, `[ACCOUNT]` and `[PHONE]`. Idempotent."""
    text = EMAIL.sub("[EMAIL]", text)
    text = IBAN.sub("[ACCOUNT]", text)
    text = ACCOUNT.sub(lambda m: f"{m.group(1)}{m.group(2)}[ACCOUNT]", text)
    text = CARD.sub(_card, text)
    text = PHONE.sub(_phone, text)
    return text
