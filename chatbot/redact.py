"""Redaction of personal data in stored and exported text: e-mail addresses, card, account and phone numbers.

Serving redacts what it stores (config `store.redact`); training redacts every exported example with the same
function. Placeholders are bracketed upper-case words, so the model learns a stable token for each kind.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

EMAIL = re.compile(r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b")
# Spelled-out addresses: "jane dot doe at mail dot example dot org", "jane(at)example(dot)com". A bare " at " needs
# a spelled "dot" before the top-level domain and no pronoun or verb as the name, so the shop's "visit us at
# example.com", "write to us at shop dot com" or "look at this dot com" are left alone.
_NOT_A_NAME = r"(?!(?:us|me|you|him|her|them|it|this|that|we|they|look|is|are|was|be|in|on|here|there|home)\b)"
_SPELLED_AT = r"\s*[(\[{<]\s*at\s*[)\]}>]\s*"  # (at), [at], {at}, <at>
_SPELLED_DOT = r"(?:\s*[(\[{<]\s*dot\s*[)\]}>]\s*|\s+dot\s+)"
_DOT = rf"(?:{_SPELLED_DOT}|\.)"
_TLD = r"(?:[a-z]{2}|com|org|net|edu|gov|info|biz|shop|online|store|mail)(?![\w@])"
SPELLED_EMAIL = re.compile(
    rf"(?i)(?<![\w.@]){_NOT_A_NAME}[\w+-]++(?:{_DOT}[\w+-]++)*+"
    rf"(?:{_SPELLED_AT}(?:[\w-]++{_DOT})+{_TLD}|\s+at\s+(?:[\w-]++{_DOT})*?[\w-]++{_SPELLED_DOT}{_TLD})"
)
_SPELLED_HINT = re.compile(rf"(?i){_SPELLED_AT}|\bdot\b")  # cheap: most texts have neither, and skip the above
# IBAN: two letters, two check digits, up to 30 alphanumerics (spaces allowed in groups of four). Upper case as
# typed on a form is masked as it is; in any other case only with a valid mod-97 check (ISO 13616).
IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?\b")
IBAN_ANY_CASE = re.compile(r"(?i)\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?\b")
# Card numbers: 13-19 digits, optionally grouped by spaces or dashes, also run into letters ("...1111exp12/26");
# checked with Luhn. A Luhn-failing run is an account number only when it stands alone as a word.
CARD = re.compile(r"(?<!\d)\d(?:[ -]?\d){12,18}(?!\d)")
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
    if _luhn(digits):
        return "[CARD]"
    text, start, end = match.string, match.start(), match.end()
    alone = (start == 0 or not text[start - 1].isalnum()) and (end == len(text) or not text[end].isalnum())
    return "[ACCOUNT]" if alone else match.group()


def _mod97(candidate: str) -> bool:
    compact = candidate.replace(" ", "").upper()
    if not 15 <= len(compact) <= 34:
        return False
    return int("".join(str(int(ch, 36)) for ch in compact[4:] + compact[:4])) % 97 == 1


def _iban(match: re.Match[str]) -> str:
    text = match.group()
    # the pattern may take a following word of four letters into the last group: try shorter ends too
    while text:
        if _mod97(text):
            return "[ACCOUNT]" + match.group()[len(text) :]
        text = text.rpartition(" ")[0]
    return match.group()


def _phone(match: re.Match[str]) -> str:
    text = match.group()
    digits = re.sub(r"\D", "", text)
    # A bare short number (an order count, a year, a price) is not a phone number.
    if DATE.match(text) or len(digits) < 7 or (len(digits) < 9 and not re.search(r"[ .()-]|^\+|^00", text)):
        return text
    return "[PHONE]"


def shop_values(texts: Iterable[str]) -> tuple[str, ...]:
    """The e-mail addresses and phone numbers written in the shop's own texts (FAQ answers): `redact(..., keep=)`
    leaves them in a reply that quotes them."""
    found = {m.group() for text in texts for pattern in (EMAIL, PHONE) for m in pattern.finditer(text)}
    return tuple(sorted(found))


def redact(text: str, keep: Iterable[str] = ()) -> str:
    """`text` with e-mail addresses (spelled-out ones too), card numbers, account numbers (IBAN or after
    "account") and phone numbers replaced by `[EMAIL]`, `[CARD]`, `[ACCOUNT]` and `[PHONE]`. Idempotent.

    `keep`: exact strings left as written (the shop's own address and phone number in a reply quoting its FAQ)."""
    held: dict[str, str] = {}
    for value in sorted({v for v in keep if v and v in text}, key=len, reverse=True):
        token = f"\x00{len(held)}\x00"
        held[token] = value
        text = text.replace(value, token)
    text = _redact(text)
    for token, value in held.items():
        text = text.replace(token, value)
    return text


def _redact(text: str) -> str:
    text = EMAIL.sub("[EMAIL]", text)
    if _SPELLED_HINT.search(text):
        text = SPELLED_EMAIL.sub("[EMAIL]", text)
    text = IBAN.sub("[ACCOUNT]", text)
    text = IBAN_ANY_CASE.sub(_iban, text)
    text = ACCOUNT.sub(lambda m: f"{m.group(1)}{m.group(2)}[ACCOUNT]", text)
    text = CARD.sub(_card, text)
    text = PHONE.sub(_phone, text)
    return text
