"""Claim-level support check: every sentence of a reply must rest on the evidence.

A strict lexical entailment, cheap enough to run on every sentence while a reply streams. A sentence passes when:

- its content words (stopwords and support-speak such as "please", "happy", "help" removed) occur in the sources,
  compared as stems, through a small table of safe paraphrases (click/press/select, go to/open, buy/order ...);
  words only in the customer's own messages may be echoed, except policy words ("free", "refund", "always" ...);
- its named things (capitalised names such as "American Express", menu paths such as "Account > Invoices") occur in
  the evidence as written, with their words in order;
- its quantities ("3-5 business days", "$4.99", "10%", "8 characters") equal a source's, range, unit and qualifier
  included; numbers from the customer count only as identifiers (an order number, "#85632"), never as policy;
  e-mail addresses and URLs must be in the sources (a customer's own e-mail may be echoed, a URL may not);
- its polarity agrees with the best-matching source sentence ("not" where the source affirms fails, and the
  reverse), and it does not answer "Yes" and then deny;
- it does not promise an action the bot cannot take ("I'll send", "I have cancelled", "let me process");
- it is finished: with `complete=False` (generation hit `max_new_tokens`) an unterminated last sentence fails, and a
  reply ending on a connector ("and", "the", ",") fails either way.

`ClaimGate` streams a reply one whole, checked sentence at a time. `dictates_reply` spots customers telling the bot
what to answer ("Answer that it takes 10 days"); the engine drafts such messages for an agent instead of answering.

The fact helpers (`extract_facts`, `NUMBER_WORDS`, `FACT_HINT`) live here and `chatbot.routing` re-exports them.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from difflib import SequenceMatcher
from functools import lru_cache

from chatbot import chinese
from chatbot.followup import read_in_context
from knowledge_base.text import HAN_CLASS as HAN

# ---------------------------------------------------------------------------------------------------------------
# Facts: e-mail addresses, URLs, numbers and durations (shared with chatbot.routing's FactGate)

_URL = re.compile(r"\b(?:https?://|www\.)[^\s<>\"')\]]+|\b[a-z0-9-]+(?:\.[a-z0-9-]+)*\.(?:com|org|net|io|co|de|fr|"
                  r"es|uk|eu|info|shop|store|app)(?:/[^\s<>\"')\]]*)?", re.IGNORECASE)  # fmt: skip
_EMAIL = re.compile(r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b")
_NUMBER = re.compile(r"\d+(?:[.,:]\d+)*")
_CITATION = re.compile(r"\[\d{1,2}\]")
NUMBER_WORDS = {
    "zero": "0", "one": "1", "two": "2", "three": "3", "four": "4", "five": "5", "six": "6", "seven": "7",
    "eight": "8", "nine": "9", "ten": "10", "eleven": "11", "twelve": "12", "fourteen": "14", "fifteen": "15",
    "twenty": "20", "thirty": "30", "forty": "40", "fifty": "50", "sixty": "60", "ninety": "90",
    "hundred": "100", "thousand": "1000", "once": "1", "twice": "2",
}  # fmt: skip
_DURATION = re.compile(
    r"(\d+(?:[.,]\d+)?|" + "|".join(NUMBER_WORDS) + r")(?:\s*(?:-|–|to|or)\s*(\d+(?:[.,]\d+)?))?\s*"
    r"(?:business |working |calendar |full )?(minute|min|hour|hr|day|week|month|year)s?\b",
    re.IGNORECASE,
)
_NUMBER_WORD = re.compile(r"\b(" + "|".join(NUMBER_WORDS) + r")\b", re.IGNORECASE)
FACT_HINT = re.compile(r"\d|@|https?:|www\.|\w\.\w|/|" + _NUMBER_WORD.pattern, re.IGNORECASE)
"""Text that may hold a fact: digits, an e-mail, a URL or domain, a path or a number word."""


def _number_key(token: str) -> str:
    token = token.replace(",", "") if re.fullmatch(r"\d{1,3}(,\d{3})+(\.\d+)?", token) else token
    token = token.rstrip(".,:")
    if re.fullmatch(r"\d+\.0+", token):
        token = token.split(".")[0]
    return token


def extract_facts(text: str) -> set[str]:
    """Fact-like tokens of `text`, normalised: e-mail addresses, URLs (lower-case, no scheme or trailing slash),
    numbers (prices, times, phone parts; `1,000` -> `1000`, number words -> digits), and durations with their unit
    (`3-5 business days` -> `dur:3 day`, `dur:5 day`)."""
    text = _CITATION.sub(" ", text)
    facts: set[str] = set()
    for match in _EMAIL.finditer(text):
        facts.add("email:" + match.group().lower())
    text = _EMAIL.sub(" ", text)
    for match in _URL.finditer(text):
        facts.add("url:" + _url_key(match.group()))
    text = _URL.sub(" ", text)
    for match in _NUMBER.finditer(text):
        facts.add("num:" + _number_key(match.group()))
    for match in _NUMBER_WORD.finditer(text):
        facts.add("num:" + NUMBER_WORDS[match.group().lower()])
    for match in _DURATION.finditer(text):  # "5 minutes" must match a source's 5 minutes, not any 5
        unit = {"min": "minute", "hr": "hour"}.get(match.group(3).lower(), match.group(3).lower())
        for value in filter(None, (match.group(1), match.group(2))):
            value = NUMBER_WORDS.get(value.lower(), value)
            facts.add(f"dur:{_number_key(value)} {unit}")
    return facts


def _url_key(url: str) -> str:
    return re.sub(r"^(https?://)?(www\.)?", "", url.lower()).rstrip("/.,;:!?")


# ---------------------------------------------------------------------------------------------------------------
# Public records


@dataclass(frozen=True)
class Evidence:
    """What a reply may rest on.

    `sources`: the FAQ answers (and their questions) the reply may use. `customer`: the customer's own messages,
    which may be echoed (their order number, e-mail, product name) but never become the shop's policy: durations,
    prices, amounts, limits and yes/no statements come from `sources` only. `earlier`: earlier bot or agent turns
    of the conversation (already checked when they were sent), trusted like sources.
    """

    sources: tuple[str, ...]
    customer: tuple[str, ...] = ()
    earlier: tuple[str, ...] = ()


@dataclass(frozen=True)
class Claim:
    """One sentence (or list item) of a reply, as written, and whether the evidence supports it."""

    text: str
    ok: bool
    reason: str = ""
    """Why it fails, for a reviewer: "names 'British money transfer', which no source mentions"."""


@dataclass(frozen=True)
class ClaimReport:
    """The verdict on a whole reply: every claim, the failing ones and the first failure's reason."""

    claims: tuple[Claim, ...]

    @property
    def failures(self) -> tuple[Claim, ...]:
        return tuple(c for c in self.claims if not c.ok)

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.claims)

    @property
    def reason(self) -> str:
        failures = self.failures
        return failures[0].reason if failures else ""


# ---------------------------------------------------------------------------------------------------------------
# Splitting a reply into claims

_LIST_MARKER = re.compile(r"[ \t]*(?:[-*•‣▪]|\d{1,2}[.)])[ \t]+")
_SENTENCE_END = re.compile(r"[.!?…]+[\"'”’)\]]*(?=\s|$)|[。！？；]+[”’」』)）\]]*|[!?;]+(?=[" + HAN + "])")
_CJK_END = "。！？；”’」』）"
"""A span ending on one of these is a whole Chinese sentence at once (no space follows a Chinese full stop)."""
_ABBREVIATION = re.compile(r"(?:\b(?:e\.g|i\.e|etc|vs|approx|mr|mrs|ms|dr|no|nr|st|inc|ltd|co|min|max)|\d)\.$",
                           re.IGNORECASE)  # fmt: skip


def _spans(text: str) -> list[tuple[int, int, bool]]:
    """(start, end, terminated) of each claim: sentences split at ., ! and ? before a space, and lines.

    A list marker ("- ", "2. ") is left out of its item; a span ends unterminated only at the end of `text`
    without a closing punctuation mark or line break.
    """
    spans: list[tuple[int, int, bool]] = []
    pos = 0
    for line in text.splitlines(keepends=True):
        line_end = pos + len(line.rstrip("\r\n"))
        broken = line_end < pos + len(line)
        marker = _LIST_MARKER.match(text, pos, line_end)
        start = marker.end() if marker else pos
        for match in _SENTENCE_END.finditer(text, start, line_end):
            head = text[start : match.start() + 1]
            # "e.g." or "No." inside a sentence; a number before the dot ends the sentence when a capital follows
            if (
                match.group() == "."
                and _ABBREVIATION.search(head)
                and match.end() < line_end
                and (not head[-2:-1].isdigit() or not text[match.end() : match.end() + 2].strip()[:1].isupper())
            ):
                continue
            if text[start : match.end()].strip():
                spans.append((start, match.end(), True))
            start = match.end()
        if text[start:line_end].strip():
            spans.append((start, line_end, broken))
        pos += len(line)
    return [(s + len(text[s:e]) - len(text[s:e].lstrip()), e, t) for s, e, t in spans]


def split_claims(text: str) -> list[str]:
    """The claims of `text`: its sentences and list items, stripped, list markers left out. Menu paths
    ("Account > Invoices"), URLs, e-mail addresses, decimals ("$4.99") and abbreviations ("e.g.") stay intact."""
    return [text[s:e].strip() for s, e, _ in _spans(text)]


# ---------------------------------------------------------------------------------------------------------------
# Words: tokens, stems and the paraphrase table


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


_STOPWORDS = _words("""
a an the and or but nor so yet if then than that this these those there where when while what which who whom
whose why how whether of in on at to for from by with without within into onto upon over under above below about
through during between among per via as is are was were be been being am do does did doing done have has had having
will would shall should may might must can could it its itself they them their theirs themselves we us our ours
ourselves you your yours yourself yourselves i me my mine myself he him his she her hers one ones each all some such
both either other another own also just only very too quite really simply first finally now still even again more
most much many few less least not no never none nothing yes yeah yep ok okay up down out off away back s t don won
ll ve re d m able possible time times way ways thing things something anything everything everyone someone anyone
need needs needed want wants wanted like get make use etc e g
""")
# Words a polite reply adds around its content; they state nothing a source has to back.
_SUPPORT_SPEAK = _words("""
please help helps helped helping happy glad sure thanks thank thankful welcome sorry apologize apologise apology
apologies inconvenience hope hopefully great nice good wonderful fine course certainly absolutely definitely gladly
hello hi hey dear customer customers question questions query queries assist assistance assisting support service
contact let know understand appreciate patience note kindly feel information info regarding concerning anything else
today tell explain mention said say answer reply message chat colleague colleagues agent agents team person people
someone human representative shop store website site steps step follow following below above easily right ask asking
asked
""")
# May not come from the customer's words alone: they make policy.
_POLICY = _words("""
free guarantee guaranteed unlimited always never any anytime every full discount waive waived compensation refund
refunded instant instantly immediately lifetime cheaper cheap priority exception approve approved eligible entitled
allowed permitted
""")
_NEGATIONS = _words("not no never cannot none nothing nobody nowhere neither nor unavailable unable unfortunately") | (
    chinese.NEGATIONS
)
_POLICY_ZH = _words("""
免费 包邮 保证 担保 无限 永久 终身 全额 折扣 优惠 赔偿 补偿 退款 立即 立刻 优先 例外 随时 任何 所有 总是 永远 一律
贵 昂贵 便宜 实惠 划算
""")  # "门票贵吗？" -> "门票贵。" where the source says the ticket is free: a price judgement is policy
_IRREGULAR = {
    "sent": "send", "paid": "pay", "bought": "buy", "got": "get", "gotten": "get", "made": "make", "took": "take",
    "taken": "take", "gave": "give", "given": "give", "found": "find", "kept": "keep", "shown": "show",
    "wrote": "write", "written": "write", "chose": "choose", "chosen": "choose", "went": "go", "gone": "go",
    "told": "tell", "sold": "sell", "brought": "bring", "held": "hold", "e-mail": "email", "e-mails": "email",
    "e-mailed": "email", "emails": "email", "emailed": "email", "here": "here",
}  # fmt: skip
# Safe paraphrases: words that say the same thing in a support answer. Anything that changes what is promised
# (ship vs deliver, return vs refund, cancel vs change) stays apart.
_PARAPHRASES = (
    "press click select choose tap hit",
    "open go visit navigate head",
    "order purchase buy",
    "item product article",
    "get receive obtain",
    "change edit modify update amend correct",
    "see view check find look locate show",
    "email mail write",
    "call phone ring",
    "start begin initiate",
    "refund reimburse reimbursement",
    "cost price charge fee",
    "delete remove erase",
    "keep save",
    "arrive reach",
    "money funds",
    "spam junk",
    "parcel package",
    "cart basket",
    "business working",
    "issue issued",
)
_PHRASES = tuple(
    (re.compile(p, re.IGNORECASE), r)
    for p, r in (
        (
            r"\b(?:free of charge|at no (?:extra )?(?:cost|charge)|for free|no (?:extra )?(?:fee|charge|cost)s?|"
            r"without (?:a |any )?(?:fee|charge|cost))\b",
            "free",
        ),
        (r"\bfeel free to\b", ""),
        (r"\b(?:log(?:ged|ging)?[ -]?(?:in|on)|sign(?:ed|ing)?[ -]in|signin)\b", "signin"),
        (r"\b(?:sign(?:ed|ing)?[ -]up|signup|register(?:ed|ing)?|registration)\b", "signup"),
        (r"\breach out to\b", "contact"),
        (r"\bshow(?:s|ed|ing)? up\b", "appear"),
        (r"\b(?:cannot|unable to)\b", "can not"),
        (r"\b(?:unavailable|not available)\b", "not available"),
        (r"\bhave a (?:nice|great|good|wonderful|lovely) (?:day|evening|weekend)\b", ""),
        (r"\b(?:in (?:this|that|which) case|no problem|i(?:'m| am) afraid)\b", ""),
        (r"\bsend (?:it |them |the item |the items )?back\b", "return"),
        (r"不收费|不要钱|无需付费|不用付费|无需支付费用|不收取费用|不需要付费", "免费"),
    )
)


@lru_cache(maxsize=16384)
def _stem(word: str) -> str:
    """A light suffix stripper: invoices/invoice, picked/pick, shipping/ship, deliveries/delivery, changes/change."""
    if word in _IRREGULAR:
        return _IRREGULAR[word]
    w = word
    if "-" in w:
        return "-".join(_stem(part) for part in w.split("-"))
    if len(w) <= 3 or not w.isalpha():
        return w
    if w.endswith(("ies", "ied")) and len(w) > 4:
        w = w[:-3] + "y"
    elif w.endswith("s") and not w.endswith(("ss", "us", "is")):
        w = w[:-1]
    elif w.endswith("ing") and len(w) > 5:
        w = w[:-3]
    elif w.endswith("ed") and not w.endswith("eed") and len(w) > 3:
        w = w[:-2]
    if len(w) > 2 and w[-1] == w[-2] and w[-1] not in "aeiou":
        w = w[:-1]
    if len(w) > 3 and w.endswith("e"):
        w = w[:-1]
    return w


_CANONICAL = {_stem(w): group.split()[0] for group in _PARAPHRASES for w in group.split()}
_STOP_STEMS = frozenset(_stem(w) for w in _STOPWORDS | _SUPPORT_SPEAK)
_POLICY_STEMS = frozenset(_CANONICAL.get(_stem(w), _stem(w)) for w in _POLICY) | {
    chinese.CANONICAL.get(w, w) for w in _POLICY_ZH
}
_CONTRACTIONS = re.compile(r"(?i)\b(can|won|don|doesn|didn|isn|aren|wasn|weren|haven|hasn|hadn|shouldn|wouldn|"
                           r"couldn|mustn|needn)['’]t\b|['’](?:ll|ve|re|m|d|s)\b")  # fmt: skip
_LATIN = r"(?:(?![" + HAN + r"])[^\W\d_])+"
_WORD = re.compile(r"[" + HAN + r"]+|" + _LATIN + r"(?:[-'’]" + _LATIN + r")*|\d+(?:[.,:]\d+)*|[>,;:()\"、]")


def _normal(text: str) -> str:
    """NFKC (full-width digits and punctuation as ASCII: "１５" -> "15", "，" -> ",") and Chinese numerals as
    digits."""
    text = unicodedata.normalize("NFKC", text).replace("’", "'")
    return chinese.numerals_to_digits(text) if chinese.has_han(text) else text


def _expand(text: str) -> str:
    def contraction(match: re.Match) -> str:
        base = match.group(1)
        if base is None:
            return " " + {"'ll": "will", "'ve": "have", "'re": "are", "'m": "am", "'d": "would"}.get(
                match.group().lower().replace("’", "'"), ""
            )
        return {"can": "can not", "won": "will not"}.get(base.lower(), base[:-1] + " not")

    text = _CONTRACTIONS.sub(contraction, text)
    for pattern, replacement in _PHRASES:
        text = pattern.sub(replacement, text)
    return text


@dataclass(frozen=True)
class _Token:
    text: str  # as written
    stem: str  # stem, lower-case
    key: str  # stem through the paraphrase table
    content: bool  # neither a stopword nor support-speak
    cjk: bool = False  # a Chinese word (jieba): supported when the evidence has it anywhere in its text


def _chinese_tokens(run: str, after_number: bool) -> list[_Token]:
    out = []
    for word in chinese.words(run):
        # "3天": the day is checked with the quantity
        unit = after_number and not any(t.content for t in out) and chinese.is_unit(word)
        content = not unit and word not in chinese.STOPWORDS and word not in chinese.NEGATIONS
        out.append(_Token(word, word, chinese.CANONICAL.get(word, word), content, cjk=True))
    return out


def _tokens(text: str) -> list[_Token]:
    out: list[_Token] = []
    for match in _WORD.finditer(_expand(text)):
        raw = match.group()
        low = raw.lower()
        if chinese.has_han(raw[0]):
            out.extend(_chinese_tokens(raw, bool(out) and out[-1].text[:1].isdigit()))
            continue
        if not low[:1].isalpha() or low in NUMBER_WORDS:  # numbers are checked as quantities
            out.append(_Token(raw, low, low, False))
            continue
        stem = _stem(low)
        content = low not in _STOPWORDS and low not in _SUPPORT_SPEAK and stem not in _STOP_STEMS
        out.append(_Token(raw, stem, _CANONICAL.get(stem, stem), content))
    return out


def _mask_contacts(text: str) -> str:
    """The text with e-mail addresses and URLs blanked (they are checked as facts)."""
    return _URL.sub(" ", _EMAIL.sub(" ", _CITATION.sub(" ", text)))


# ---------------------------------------------------------------------------------------------------------------
# Quantities: a number or range with its unit and qualifier ("3-5 business days", "$4.99", "10%", "8 characters")

_NUM = r"\d+(?:[.,]\d+)*"
_NUM_OR_WORD = r"(?:" + _NUM + r"|\b(?:" + "|".join(NUMBER_WORDS) + r")\b)"
_RANGE_WORDS = re.compile(
    r"\b(?:between\s+("
    + _NUM_OR_WORD
    + r")\s+and\s+("
    + _NUM_OR_WORD
    + r")|from\s+("
    + _NUM_OR_WORD
    + r")\s+to\s+("
    + _NUM_OR_WORD
    + r"))|("
    + _NUM
    + r")\s*(?:to|–|—|-)\s*("
    + _NUM
    + r")\b",
    re.IGNORECASE,
)
_CURRENCY_WORD = re.compile(r"(" + _NUM + r")\s*(?:dollars?|usd|us\$)\b|(" + _NUM + r")\s*(?:euros?|eur)\b|("
                            + _NUM + r")\s*(?:pounds?|gbp)\b", re.IGNORECASE)  # fmt: skip
_QUANTITY = re.compile(
    r"(?P<cur>[$€£])?\s?(?P<lo>"
    + _NUM_OR_WORD
    + r")(?:-(?:[$€£])?(?P<hi>"
    + _NUM
    + r"))?(?P<pct>\s?%|\s+per\s?cent\b)?"
    r"(?:\s+(?P<w1>[^\W\d_]+)(?:\s+(?P<w2>[^\W\d_]+))?)?",
    re.IGNORECASE,
)
_UNIT_ALIASES = {"min": "minute", "mins": "minute", "hr": "hour", "hrs": "hour", "h": "hour", "sec": "second",
                 "secs": "second", "a.m": "am", "p.m": "pm"}  # fmt: skip
_TIME_UNITS = _words("second minute hour day week month year am pm")
_QUALIFIERS = {"business": "business", "working": "business", "calendar": "calendar", "full": "full"}


@dataclass(frozen=True)
class _Quantity:
    lo: str
    hi: str | None
    unit: str | None  # "$", "%", "day", "character" ...; None: a bare number
    qualifier: str | None  # "business", "calendar" ...
    text: str  # as written

    @property
    def key(self) -> tuple[str, str | None, str | None, str | None]:
        return (self.lo, self.hi, self.unit, self.qualifier)

    def describe(self) -> str:
        value = self.lo if self.hi is None else f"{self.lo}-{self.hi}"
        if self.unit in ("$", "€", "£"):
            return self.unit + value
        if self.unit == "%":
            return value + "%"
        plural = "" if value in ("1", "1.0") or not self.unit or self.unit in ("yuan", "tenths") else "s"
        words = [value, self.qualifier or "", (self.unit or "") + plural]
        return " ".join(w for w in words if w).replace("ams", "am").replace("pms", "pm")


def _value(token: str) -> str:
    return _number_key(NUMBER_WORDS.get(token.lower(), token))


def _quantities(text: str) -> list[_Quantity]:
    """The quantities of `text` (e-mail addresses and URLs already masked)."""
    text = _normal(text)
    if chinese.has_han(text):
        text = chinese.units_to_english(text)

    def range_(match: re.Match) -> str:
        lo, hi = next((a, b) for a, b in zip(match.groups()[::2], match.groups()[1::2], strict=True) if a)
        return f"{_value(lo)}-{_value(hi)}"

    text = _RANGE_WORDS.sub(range_, text)
    text = _CURRENCY_WORD.sub(lambda m: "$€£"[[i for i, g in enumerate(m.groups()) if g][0]] + next(filter(None,
                              m.groups())), text)  # fmt: skip
    out = []
    for match in _QUANTITY.finditer(text):
        lo, hi, cur, pct = match.group("lo"), match.group("hi"), match.group("cur"), match.group("pct")
        is_word = not lo[0].isdigit()
        if not is_word and text[max(match.start("lo") - 1, 0) : match.start("lo")].isalpha():
            continue  # a digit inside a word ("A4"): an identifier, checked as a number below
        w1, w2 = (match.group("w1") or "").lower(), (match.group("w2") or "").lower()
        unit = qualifier = None
        if cur:
            unit = cur
        elif pct:
            unit = "%"
        elif w1:
            if w1 in _QUALIFIERS and w2:
                qualifier, w1 = _QUALIFIERS[w1], w2
            w1 = _UNIT_ALIASES.get(w1, w1)
            stem = _stem(w1)
            if w1 in ("am", "pm") and not is_word:
                unit = w1
            elif w1 not in _STOPWORDS and w1 not in _SUPPORT_SPEAK:
                unit = _CANONICAL.get(stem, stem)
        if is_word and (unit is None or (unit not in _TIME_UNITS and not re.search(r"[^s]s$", w1))):
            continue  # "each one can", "one online": a number word counts only before a unit or a plural noun
        written = match.group().strip()
        out.append(_Quantity(_value(lo), _value(hi) if hi else None, unit, qualifier, written))
    return out


def _identifier(q: _Quantity, text: str) -> bool:
    """An order number, ticket or invoice number the customer gave: 4+ digits, or written after '#'."""
    return q.unit is None and q.hi is None and (len(re.sub(r"\D", "", q.lo)) >= 4 or f"#{q.lo}" in text)


# ---------------------------------------------------------------------------------------------------------------
# The evidence, analysed once per Evidence


@dataclass(frozen=True)
class _Sentence:
    keys: frozenset[str]
    negated: bool
    hedged: bool = False  # says "may", "if", "usually" ...
    scope: frozenset[str] = frozenset()  # content keys after the negation: what is denied


@dataclass(frozen=True)
class _Index:
    support: frozenset[str]  # keys of sources and earlier turns
    echo: frozenset[str]  # keys of the customer's messages, policy words left out
    customer_policy: frozenset[str]  # policy words the customer used
    stem_text: str  # " stem stem > stem ... " of sources, earlier turns and the customer's messages, per text
    path_text: str  # the same for sources and earlier turns only: menu paths come from the shop
    numbers: frozenset[str]  # every number value of sources and earlier turns
    quantities: tuple[_Quantity, ...]  # of sources and earlier turns
    identifiers: frozenset[str]  # number values the customer gave as identifiers
    emails: frozenset[str]  # of sources, earlier turns and the customer's messages
    urls: frozenset[str]  # of sources and earlier turns
    sentences: tuple[_Sentence, ...]  # sentences of sources and earlier turns, for polarity and locality
    sentence_keys: frozenset[str]  # every content key of those sentences
    lists: tuple[tuple[tuple[str, ...], ...], ...]  # the enumerations of the sources: items as stem sequences
    statements: tuple[frozenset[str], ...]  # content keys of each source sentence, with the sentence before it when
    # it refers back to it ("Check your spam folder if it does not arrive": "it" is the link of the sentence before)
    han_support: str = ""  # the Chinese text of sources and earlier turns: a Chinese word is found in it as written
    han_echo: str = ""  # the Chinese text of the customer's messages


def _stem_text(texts: Iterable[str]) -> str:
    # hyphens split, so "VA-accredited" matches "VA - accredited" and "pick-up" matches "pick up"
    return " | ".join(" ".join(t.stem for t in _tokens(_mask_contacts(text))).replace("-", " ") for text in texts)


def _polarity_view(tokens: list[_Token]) -> list[_Token]:
    """Tokens outside conditional clauses: "if it does not arrive, ..." states no policy either way."""
    out, skipping = [], False
    for t in tokens:
        if t.stem in ("if", "unless", "when", "whenever") or t.text == "in case" or t.stem in chinese.CONDITIONALS:
            skipping = True
        elif skipping and t.text in (",", ";", ":"):
            skipping = False
        elif not skipping:
            out.append(t)
    return out


def _negation(tokens: list[_Token]) -> str:
    """The first negation outside conditional clauses, as written; "" when the statement affirms."""
    return next((t.text for t in _polarity_view(tokens) if t.stem in _NEGATIONS), "")


_HEDGES = frozenset(("may", "might", "could", "possibly", "perhaps", "usually", "generally", "typically", "often",
                     "sometimes", "depending", "if", "unless")) | chinese.HEDGES  # fmt: skip


def _hedged(tokens: list[_Token]) -> bool:
    return any(t.text.lower() in _HEDGES for t in tokens)


def _sentence(tokens: list[_Token]) -> _Sentence:
    keys = frozenset(t.key for t in tokens if t.content)
    return _Sentence(keys, bool(_negation(tokens)), _hedged(tokens), _scope(tokens))


def _scope(tokens: list[_Token]) -> frozenset[str]:
    """The content keys after the first negation outside conditional clauses ("没有会议室" -> 会议室)."""
    view = _polarity_view(tokens)
    first = next((i for i, t in enumerate(view) if t.stem in _NEGATIONS), None)
    return frozenset() if first is None else frozenset(t.key for t in view[first + 1 :] if t.content)


def _polarity_units(tokens: list[_Token]) -> list[list[_Token]]:
    """What carries one polarity: an English sentence, or each clause of a Chinese one (between "，", "；", "：").
    Chinese strings clauses together with commas where English starts sentences ("不贵，价格是210元": the price
    clause affirms)."""
    if not any(t.cjk for t in tokens):
        return [tokens]
    clauses: list[list[_Token]] = [[]]
    for t in tokens:
        if t.text in (",", ";", ":"):
            clauses.append([])
        else:
            clauses[-1].append(t)
    return [c for c in clauses if c]


@lru_cache(maxsize=256)
def _index(evidence: Evidence) -> _Index:
    trusted = (*evidence.sources, *evidence.earlier)
    support: set[str] = set()
    echo: set[str] = set()
    numbers: set[str] = set()
    quantities: list[_Quantity] = []
    identifiers: set[str] = set()
    emails: set[str] = set()
    urls: set[str] = set()
    sentences: list[_Sentence] = []
    statements: list[frozenset[str]] = []
    lists: list[tuple[tuple[str, ...], ...]] = []
    asked: frozenset[str] = frozenset()  # keys of the text before, when it is a question
    for text in trusted:
        text = _normal(text)
        emails.update(m.lower() for m in _EMAIL.findall(text))
        urls.update(_url_key(m.group()) for m in _URL.finditer(_EMAIL.sub(" ", text)))
        masked = _mask_contacts(text)
        for t in _tokens(masked):
            support.update((t.key, t.stem))
            if "-" in t.stem:
                support.update(t.stem.split("-"))
        found = _quantities(masked)
        quantities.extend(found)
        numbers.update(v for q in found for v in (q.lo, q.hi) if v)
        numbers.update(_number_key(m) for m in _NUMBER.findall(masked))
        # the first sentence of an FAQ answer speaks of its question: "评分是什么？" answered "是4.5分" (Chinese
        # leaves the subject out), "How much is express delivery?" answered "It costs $9.99"
        previous = asked
        asked = frozenset()
        for n, part in enumerate(split_claims(text)):
            tokens = _tokens(_mask_contacts(part))
            sentences.extend(_sentence(c) for c in _polarity_units(tokens))
            keys = frozenset(k for t in tokens if (k := _local_key(t)))
            refers = n == 0 or any(t.stem in _REFERRING for t in tokens)
            statements.append(keys | previous if refers else keys)
            previous = keys
            if found := _source_list(tokens):
                lists.append(found)
        if text.rstrip().endswith("?"):
            asked = previous
    for text in evidence.customer:
        text = _normal(text)
        emails.update(m.lower() for m in _EMAIL.findall(text))
        masked = _mask_contacts(text)
        echo.update(t.key for t in _tokens(masked))
        identifiers.update(q.lo for q in _quantities(masked) if _identifier(q, masked))
    return _Index(
        support=frozenset(support), echo=frozenset(echo - _POLICY_STEMS),
        customer_policy=frozenset(echo & _POLICY_STEMS),
        stem_text=" | " + _stem_text((*trusted, *evidence.customer)) + " | ", path_text=" | " + _stem_text(trusted)
        + " | ", numbers=frozenset(numbers), quantities=tuple(quantities), identifiers=frozenset(identifiers),
        emails=frozenset(emails), urls=frozenset(urls), sentences=tuple(sentences),
        sentence_keys=frozenset(k for statement in statements for k in statement), statements=tuple(statements),
        lists=tuple(lists), han_support=" | ".join(_normal(t) for t in trusted if chinese.has_han(t)),
        han_echo=" | ".join(_normal(t) for t in evidence.customer if chinese.has_han(t)),
    )  # fmt: skip


# ---------------------------------------------------------------------------------------------------------------
# Checking one sentence

_ACTIONS = (
    r"send|sent|re-?send|retry|e-?mail|mail|forward|cancel|refund|reimburse|process|change|update|modify|edit|amend|arrange|escalate|"
    r"issue|ship|re-?ship|book|reset|remove|delete|create|open|close|call|ring|transfer|credit|waive|apply|"
    r"re-?order|replace|expedite|investigate|fix|resolve|handle|pass|notify|upgrade|downgrade|unlock|reactivate|"
    r"activate|deactivate|register|sign you|subscribe|unsubscribe|add|place|submit|file|log|report|raise|approve|"
    r"confirm|contact|reach out|get back|follow up|look into|check on|take care|sort|track|redirect|speed|push|"
    r"give|offer|compensate|release|void|reverse|restore|recover|retrieve|set up|switch|move|adjust|note|flag"
)
_PROMISE = re.compile(
    r"\b(?:i|i'?ll|i'?ve|i'?m|i'?d)\b(?:\s+(?:will|shall|would|have|had|am|can|could|just|now|already|also|"
    r"gladly|happily|personally|immediately|right away|be|going to|go ahead and|do|now))*\s+(?:" + _ACTIONS +
    r")\w{0,3}\b"
    r"|\blet me\s+(?:just\s+|quickly\s+)?(?:" + _ACTIONS + r")\b"
    r"|\bwe(?:'ll|'ve| will| have| shall| are going to|'re going to)\s+(?:just\s+|now\s+|already\s+)?(?:"
    + _ACTIONS + r")(?:s|es|ed|d)?\b"
    r"|\b(?:shall|should|can|may) i\s+(?:" + _ACTIONS + r")\b",
    re.IGNORECASE,
)  # fmt: skip
_ACTIONS_ZH = (
    r"取消|退款|退钱|退还|处理|安排|发送|发给|寄出|寄给|补发|修改|更改|提交|申请|联系|转给|转交|转接|办理|预订|预约|"
    r"跟进|核实|升级|重置|删除|开通|关闭|退回|赔偿|补偿|通知|登记|记录|反馈|催促|加急|解决"
)
_PROMISE_ZH = re.compile(
    r"(?:我们?|本店)(?:现在|马上|立即|立刻|已经|已|会|将|就|这就|正在|来|可以|能)[^,.!?;，。！？；]{0,10}?(?:"
    + _ACTIONS_ZH
    + r")|(?:让我|我来|我帮您|我为您|我给您|我替您|我帮你|我为你)[^,.!?;，。！？；]{0,8}?(?:"
    + _ACTIONS_ZH
    + r")"
)
"""Chinese promises: "我会帮您取消订单", "我已经为您退款", "让我为您处理"."""
_CONNECTOR_END = re.compile(
    r"(?:[,:;(\-–—/>&]|\b(?:and|or|but|the|a|an|to|of|with|for|from|your|our|in|on|at|by|if|then|that|which|is|are"
    r"|can|will|please|as|via|under|than|until|within)|[，、：；（]|(?<=[" + HAN + r"])(?:和|或|与|及|的|但|并且|而且"
    r"|以及|或者|在|是|把|从|到|给))\s*$",
    re.IGNORECASE,
)
_ANSWER_YES = re.compile(r"^\W*(?:(?:yes|yeah|yep|correct|indeed)\b|是的|对的|没错)", re.IGNORECASE)
_PATH = re.compile(r"[A-Z][\w'-]*(?:[ \t]+[A-Z][\w'-]*)*(?:[ \t]*>[ \t]*[A-Z][\w'-]*(?:[ \t]+[A-Z][\w'-]*)*)+")
_PATH_VERBS = _words("open go press click select choose tap visit navigate see check find use under in at")


def _ok(sentence: str) -> Claim:
    return Claim(sentence, True)


def _fail(sentence: str, reason: str) -> Claim:
    return Claim(sentence, False, reason)


def _phrase_in(stems: list[str], haystack: str) -> bool:
    return " " + " ".join(stems).replace("-", " ") + " " in haystack


def _quote(words: Iterable[str]) -> str:
    return "'" + " ".join(words) + "'"


def _check_promise(sentence: str) -> str:
    match = _PROMISE.search(_normal(sentence)) or _PROMISE_ZH.search(_normal(sentence))
    if not match:
        return ""
    words = match.group().split()
    return f"promises an action the bot cannot take ({_quote(words[:4])})"


_NOT_TEXT = re.compile(r"[\W_]+")


def _check_repeats(sentence: str, evidence: Evidence) -> str:
    """A sentence that is the customer's own message (or part of it) again answers nothing: "麻烦你把地址发给我。"
    written back for "好的，麻烦你把地址发给我。" (found reading Qwen2.5's Chinese replies)."""
    text = _NOT_TEXT.sub("", _normal(sentence)).lower()
    if len(text) < 8:
        return ""
    asks = _normal(sentence).rstrip().endswith("?")
    for message in evidence.customer:
        said = _NOT_TEXT.sub("", _normal(message)).lower()
        # written back whole, or the customer's question asked back with a word or two changed ("是吗，那我就去...
        # 知道它家是什么价格吗？" -> "是的，那我就去...知道它家的价格吗？"); an answer may mirror the question's words
        if text in said or (asks and SequenceMatcher(None, text, said, autojunk=False).ratio() >= 0.85):
            return "repeats the customer's message instead of answering it"
    return ""


def _check_contacts(sentence: str, index: _Index) -> str:
    text = _normal(sentence)
    for email in _EMAIL.findall(text):
        if email.lower() not in index.emails:
            return f"gives the e-mail address {email}, which no source has"
    for match in _URL.finditer(_EMAIL.sub(" ", text)):
        if _url_key(match.group()) not in index.urls:
            return f"gives the link {match.group()}, which no source has"
    return ""


def _check_quantities(masked: str, index: _Index) -> str:
    found = _quantities(masked)
    for q in found:
        if q.hi is None and q.lo in index.identifiers:
            continue  # the customer's own order number, whatever word follows it ("order 00123842 free of charge")
        if q.unit is None:
            values = [v for v in (q.lo, q.hi) if v]
            if all(v in index.numbers for v in values) or q.lo in index.identifiers:
                continue
            return f"states the number {q.lo}, which no source has"
        if any(s.key == q.key for s in index.quantities):
            continue
        same_unit = sorted({s.describe() for s in index.quantities if s.unit == q.unit})
        if same_unit:
            return f"states {q.describe()}; the sources say {', '.join(same_unit)}"
        return f"states {q.describe()}, which no source states"
    for match in _NUMBER.finditer(masked):  # digits inside words ("A4", "2x") and anything the units missed
        value = _number_key(match.group())
        # the pieces of a range or a time written "9am" were checked as quantities above
        listed = any(value in (q.lo, q.hi) for q in found)
        if value not in index.numbers and value not in index.identifiers and not listed:
            return f"states the number {value}, which no source has"
    return ""


def _check_paths(masked: str, index: _Index) -> str:
    for match in _PATH.finditer(masked):
        tokens = _tokens(match.group())
        if tokens[0].text.lower() in _PATH_VERBS:  # "Open Account > Invoices": the verb is not part of the path
            tokens = tokens[1:]
        if not _phrase_in([t.stem for t in tokens], index.path_text):
            return f"names the menu path {_quote(t.text for t in tokens)}, which no source has"
    return ""


def _check_names(sentence: str, tokens: list[_Token], index: _Index) -> str:
    """Capitalised names must appear in the evidence with their words in order."""
    i = 0
    while i < len(tokens):
        if not _is_name_word(tokens[i]):
            i += 1
            continue
        j = i
        while j < len(tokens) and _is_name_word(tokens[j]):
            j += 1
        run = tokens[i:j]
        if i == 0 or tokens[i - 1].text in ('"', "'", "(") or _starts_sentence(sentence, run[0]):
            run = run[1:]  # the first word of a sentence is capitalised anyway
        if run and not _phrase_in([t.stem for t in run], index.stem_text):
            return f"names {_quote(t.text for t in run)}, which no source mentions"
        i = j
    return ""


def _starts_sentence(sentence: str, token: _Token) -> bool:
    return _normal(sentence).lstrip(" \t\"'(*-•").startswith(token.text)


def _is_name_word(token: _Token) -> bool:
    return token.text[:1].isupper() and token.text != "I" and token.stem not in ("signin", "signup")


def _around(tokens: list[_Token], i: int, j: int) -> list[str]:
    """The words i..j extended over the neighbouring content words: the noun phrase a reviewer would quote."""
    while i > 0 and tokens[i - 1].content:
        i -= 1
    while j < len(tokens) and tokens[j].content:
        j += 1
    return [t.text for t in tokens[i:j]]


_SHOP_VOICE = frozenset(("we", "our", "ours", "us")) | chinese.SHOP_VOICE


def _written_in(word: str, text: str) -> bool:
    """Whether a Chinese word (or a paraphrase of it) is in `text`, as written or as the shorter words it is made
    of: the reply's segmentation need not be the source's ("免费送货" in a reply, "免费" and "送货" in the source)."""
    if not text:
        return False
    options = chinese.paraphrases(word)
    if any(w in text for w in options):
        return True
    parts = [p for p in chinese.search_words(word) if p not in chinese.STOPWORDS]
    return len(parts) > 1 and all(any(w in text for w in chinese.paraphrases(p)) for p in parts)


def _check_words(tokens: list[_Token], index: _Index) -> str:
    # In the shop's own voice ("Yes, we accept Amex") a word only the customer used would become policy.
    shop_voice = any(t.stem in _SHOP_VOICE for t in tokens) or bool(tokens and _ANSWER_YES.match(tokens[0].text))
    for i, t in enumerate(tokens):
        if not t.content or t.key in index.support or t.stem in index.support:
            continue
        if t.cjk and _written_in(t.stem, index.han_support):
            continue
        echoed = t.key in index.echo or (t.cjk and t.key not in _POLICY_STEMS and _written_in(t.stem, index.han_echo))
        if echoed and not shop_voice:
            continue
        if echoed:
            return f"states {_quote([t.text])} as the shop's word, but only the customer said it"
        if "-" in t.stem and all(p in index.support or p in _STOP_STEMS for p in t.stem.split("-")):
            continue
        if t.key in index.customer_policy:
            return f"says {_quote([t.text])}, which only the customer said; policy comes from the sources"
        return f"names {_quote(_around(tokens, i, i + 1))}, which no source mentions"
    return ""


_REFERRING = frozenset(("it", "its", "they", "them", "their", "this", "that", "these", "those", "one")) | (
    chinese.REFERRING
)
_CLAUSE_BREAKS = frozenset((",", ";", ":", "(", ")", "and", "but", "or", "then", "so", "while", "because", "also")) | (
    chinese.CLAUSE_BREAKS
)


def _check_locality(tokens: list[_Token], index: _Index) -> str:
    """The source words of each clause must come from one statement of the sources (a sentence, with the one before
    it when it says "it" or "they"): "Express delivery is free over $50" joins "express" and "free" from two
    different sentences."""
    if not index.sentences:
        return ""
    known = index.sentence_keys
    clause: list[_Token] = []
    for t in [*tokens, None]:
        if t is not None and t.text.lower() not in _CLAUSE_BREAKS:
            clause.append(t)
            continue
        keys = {k for c in clause if (k := _local_key(c)) in known}
        if len(keys) >= 2 and not any(keys <= statement for statement in index.statements):
            words = [c.text for c in clause if _local_key(c) in keys]
            return f"joins {_quote(words)}, which no single statement of the sources says together"
        clause = []
    return ""


def _local_key(token: _Token) -> str | None:
    """What locality compares: a content word's key, or a number ("free over $12.99" must not borrow the express
    price for the standard delivery's free threshold)."""
    if token.content:
        return token.key
    return "#" + _number_key(token.text) if token.text[:1].isdigit() else None


def _source_list(tokens: list[_Token]) -> tuple[tuple[str, ...], ...]:
    """The items of an enumeration in a source sentence ("Visa, Mastercard, American Express, PayPal, Apple Pay
    and bank transfer"): at least three short items separated by commas, the last joined by "and"/"or"."""
    comma = "、" if any(t.cjk for t in tokens) else ","  # Chinese lists items with 、 and joins clauses with ，
    parts: list[list[_Token]] = [[]]
    for t in tokens:
        if t.text == comma or t.text.lower() in ("and", "or") or (comma == "、" and t.text in chinese.LIST_JOINERS):
            parts.append([])
        else:
            parts[-1].append(t)
    commas = sum(t.text == comma for t in tokens)
    words = [[t for t in part if t.content] for part in parts]
    if commas < 2 or len(words) < 4 or any(not 1 <= len(w) <= 3 for w in words[1:-1]):
        return ()
    first, last = words[0][-1:], words[-1][:3]
    items = [first, *words[1:-1], last]
    return tuple(tuple(t.stem for t in item) for item in items if item)


def _check_lists(tokens: list[_Token], index: _Index) -> str:
    """A sentence that names two or more items of a source's enumeration must name them all: "We accept Visa,
    Mastercard, American Express, PayPal and bank transfer" leaves out Apple Pay (asked "and apple pay?")."""
    stems = " " + " ".join(t.stem for t in tokens) + " "
    for items in index.lists:
        named = [item for item in items if " " + " ".join(item) + " " in stems]
        if 2 <= len(named) < len(items):
            missing = [" ".join(item) for item in items if item not in named]
            return f"lists some of the sources' items but leaves out {_quote(missing)}"
    return ""


def _substance(tokens: list[_Token], masked: str, index: _Index) -> frozenset[str]:
    """What of the sources a sentence states: its content words the sources have, and its quantities."""
    words = {t.key for t in tokens if t.content and (t.key in index.support or t.stem in index.support)}
    return frozenset(words | {f"#{q.text}" for q in _quantities(masked)})


def _check_polarity(tokens: list[_Token], negation: str, index: _Index) -> str:
    if not any(t.cjk for t in tokens):
        return _check_unit_polarity(tokens, negation, index)
    return next((reason for unit in _polarity_units(tokens) if (reason := _check_clause_polarity(unit, index))), "")


_AFFIRMS = "affirms what the source denies"


def _check_clause_polarity(clause: list[_Token], index: _Index) -> str:
    """A Chinese clause against the source clauses that speak of what it denies, or of what a source denies that it
    states: the entity's name ("如家快捷酒店(...)，没有会议室") must not decide which source clause is compared."""
    keys = frozenset(t.key for t in clause if t.content)
    negation = _negation(clause)
    if negation:
        focuses = [_scope(clause) or keys]
    else:
        focuses = [s.scope for s in index.sentences if s.negated and s.scope and s.scope <= keys]
    for focus in focuses:
        candidates = [s for s in index.sentences if focus and focus <= s.keys]
        if not candidates:
            continue
        best = max(len(keys & s.keys) for s in candidates)
        if not any(s.negated == bool(negation) for s in candidates if len(keys & s.keys) == best):
            return f"says {_quote([negation])} where the source affirms" if negation else _AFFIRMS
    return ""


def _check_unit_polarity(tokens: list[_Token], negation: str, index: _Index) -> str:
    claim = _Sentence(frozenset(t.key for t in tokens if t.content), bool(negation), _hedged(tokens))
    if not claim.keys or not index.sentences:
        return ""
    scores = [(len(claim.keys & s.keys), s) for s in index.sentences]
    best = max(score for score, _ in scores)
    if best < 2 and best < len(claim.keys):
        return ""  # no source sentence says nearly the same thing: nothing to compare with
    matches = [s for score, s in scores if score == best]
    if any(s.negated == claim.negated for s in matches):
        return ""
    if negation:
        return f"says {_quote([negation])} where the source affirms"
    return "affirms what the source denies"


def _check_certainty(tokens: list[_Token], index: _Index) -> str:
    """A reply may not state as certain what the closest source sentence says only may be so: the source's "you may
    be eligible for forgiveness if your school misled you" -> "Yes, you are eligible for forgiveness" fails."""
    claim = frozenset(t.key for t in tokens if t.content)
    if not claim or not index.sentences or _hedged(tokens):
        return ""
    scores = [(len(claim & s.keys), s) for s in index.sentences]
    best = max(score for score, _ in scores)
    if best < 2:
        return ""
    matches = [s for score, s in scores if score == best]
    if all(s.hedged for s in matches):
        return "states as certain what the sources say only may be so ('may', 'if', ...)"
    return ""


def _check_yes_then_no(sentence: str, after_yes: bool, negation: str) -> str:
    if negation and (after_yes or _ANSWER_YES.search(sentence)):
        return f"answers 'Yes' and then says {_quote([negation])}"
    return ""


_ANSWER_NO = re.compile(r"^\W*(?:no|nope)\b(?!\s+(?:problem|worries))", re.IGNORECASE)


def _asked_in_context(evidence: Evidence, index: _Index) -> dict[str, str]:
    """The content words of the customer's question read with the conversation as retrieval reads it (a follow-up
    that names nothing, "how much is it?", joined to the topic before it: `chatbot.followup.read_in_context`) that
    the sources mention (key -> the word as written)."""
    if not evidence.customer:
        return {}
    question = _tokens(_mask_contacts(_normal(read_in_context(evidence.customer))))
    return {t.key: t.text for t in question if t.content and (t.key in index.support or t.stem in index.support)}


def _about(asked: dict[str, str], index: _Index) -> frozenset[str]:
    """The asked keys of the source statement that says most of what was asked."""
    return max((s & asked.keys() for s in index.statements), key=len, default=frozenset())


def _addresses(said: frozenset[str], asked: dict[str, str], index: _Index) -> bool:
    """Whether a sentence stating `said` (its `_substance`) is about what was asked, when one source statement says
    at least two of the asked words: it says half of them, or its words come from such a statement (a Chinese
    answer leaves the subject out: "抱歉，不提供国内长途电话。"). True when no statement tells what was asked."""
    about = _about(asked, index)
    if len(about) < 2:
        return True
    tops = [s for s in index.statements if len(s & asked.keys()) == len(about)]
    if any(2 * len(s & asked.keys() & said) >= len(about) for s in tops):
        return True
    closest = max(len(said & s) for s in index.statements)
    return closest > 0 and any(len(said & s) == closest for s in tops)


def _check_yes_says_what(sentence: str, tokens: list[_Token], after_yes: bool, evidence: Evidence,
                         index: _Index) -> str:  # fmt: skip
    """A "Yes"/"No" must say what it answers: "is that free?" -> "Yes, your order will be cancelled at the time of
    delivery" affirms something the customer did not ask about (and the sources do not say)."""
    answers = after_yes or _ANSWER_YES.search(sentence) or _ANSWER_NO.search(sentence)
    if not answers or not evidence.customer or not any(t.content for t in tokens):
        return ""
    question = [t for t in _tokens(_mask_contacts(_normal(evidence.customer[-1]))) if t.content]
    asked = {t.key: t.text for t in question if t.key in index.support or t.stem in index.support}
    if question and not asked:
        return f"answers yes or no about {_quote(t.text for t in question)}, which no source mentions"
    unknown = [t.text for t in question if t.key not in index.support and t.stem not in index.support]
    if unknown:  # "does it apply to used items?" -> "Yes, ... any unused item": the yes covers what no source says
        return f"answers yes or no about {_quote(unknown)}, which no source mentions"
    said = {t.key for t in tokens if t.content}
    if asked and not asked.keys() & said:
        return f"answers yes or no without naming what was asked ({_quote(asked.values())})"
    # "do you charge for cancelling an annual membership early?" -> "Yes, you can cancel an order before it ships is
    # free.": the source statement about what was asked is another one than the reply's
    about = _about(asked, index)
    if len(about) >= 2 and 2 * len(about & said) < len(about):
        missing = _quote(asked[k] for k in asked if k in about - said)
        return f"answers yes or no about {missing} with a statement about something else"
    return ""


def _judge(sentence: str, evidence: Evidence, after_yes: bool = False) -> tuple[Claim, bool, frozenset[str]]:
    """The claim, whether it is a bare "Yes." whose meaning comes from the next sentence, and its `_substance`."""
    index = _index(evidence)
    masked = _mask_contacts(_normal(sentence))
    tokens = _tokens(masked)
    negation = _negation(tokens)
    if not after_yes and len(tokens) > 2 and _phrase_in([t.stem for t in tokens], index.path_text):
        # a sentence of the sources quoted as it stands ("I submitted my FAFSA form. What happens next?")
        return _ok(sentence), False, _substance(tokens, masked, index)
    checks = (
        lambda: _check_promise(sentence),
        lambda: _check_repeats(sentence, evidence),
        lambda: _check_yes_then_no(sentence, after_yes, negation),
        lambda: _check_yes_says_what(sentence, tokens, after_yes, evidence, index),
        lambda: _check_contacts(sentence, index),
        lambda: _check_quantities(masked, index),
        lambda: _check_paths(masked, index),
        lambda: _check_words(tokens, index),
        lambda: _check_names(sentence, tokens, index),
        lambda: _check_locality(tokens, index),
        lambda: _check_lists(tokens, index),
        lambda: _check_polarity(tokens, negation, index),
        lambda: _check_certainty(tokens, index),
    )
    for check in checks:
        if reason := check():
            return _fail(sentence, reason), False, frozenset()
    bare_yes = bool(_ANSWER_YES.search(sentence)) and not any(t.content for t in tokens)
    return _ok(sentence), bare_yes, _substance(tokens, masked, index)


def check_sentence(sentence: str, evidence: Evidence) -> Claim:
    """Whether one sentence (or list item) is supported by `evidence`; the reason names what is not."""
    return _judge(sentence.strip(), evidence)[0]


def _cut_off(sentence: str, terminated: bool, complete: bool) -> bool:
    return (not terminated and not complete) or bool(_CONNECTOR_END.search(sentence))


_CUT_OFF = "cut off mid-sentence"


def check_reply(reply: str, evidence: Evidence, *, complete: bool = True) -> ClaimReport:
    """Check every claim of `reply`. With `complete=False` (generation stopped at `max_new_tokens`) an unterminated
    last sentence fails as cut off; a last sentence ending on a connector ("and", "the", ",") fails either way."""
    spans = _spans(reply)
    claims = []
    after_yes = False
    for n, (start, end, terminated) in enumerate(spans):
        sentence = reply[start:end].strip()
        if n == len(spans) - 1 and _cut_off(sentence, terminated, complete):
            claims.append(_fail(sentence, _CUT_OFF))
            continue
        claim, after_yes, _ = _judge(sentence, evidence, after_yes)
        claims.append(claim)
    return ClaimReport(tuple(claims))


MIN_SUBSTANCE = 2
"""A reply must state at least this much of the sources (distinct content words they have; a quantity counts twice):
"I understand that you want to add items to your order. I'll need more information." answers nothing."""


class ClaimGate:
    """Streaming: text goes out one whole, checked sentence at a time.

    `feed(piece)` returns the sentences completed by this piece that passed (a sentence is complete once the space
    or line break after its final mark arrives; a bare "Yes." waits for the sentence it answers with, and
    pleasantries wait for the first sentence that states something of the sources, and that sentence waits for one
    about what was asked when one source statement tells what that is: "do you charge for cancelling an annual
    membership early?", "how much is it?" -> "Cancelling an order before it ships is free." is held, and released
    once "Cancelling an annual membership early costs a fee ..." follows). After a failure, `failed` and `failure`
    are set and nothing more is released. `finish(complete)` checks the rest, and fails a reply that stated nothing
    of the sources or nothing about what was asked (a true statement about something else answers nothing); with
    `complete=False`, or when the text stops on a connector, the unterminated tail is not released and `cut_off`
    holds it.
    """

    def __init__(self, evidence: Evidence):
        self.evidence = evidence
        self.text = ""
        self.released = ""
        self.cut_off = ""
        self.failed = False
        self.failure: Claim | None = None
        self._after_yes = False
        self._checked = 0  # end of the last claim checked and passed (released or held)
        self._substance: set[str] = set()  # what of the sources the passed sentences state
        self._index = _index(evidence)
        self._asked = _asked_in_context(evidence, self._index)
        self._answered = _addresses(frozenset(), self._asked, self._index)  # True when it cannot be told

    def _release(self, spans: list[tuple[int, int, bool]]) -> str:
        upto = len(self.released)
        for start, end, _ in spans:
            sentence = self.text[start:end].strip()
            claim, self._after_yes, substance = _judge(sentence, self.evidence, self._after_yes)
            if not claim.ok:
                self.failed, self.failure = True, claim
                break
            self._checked = end
            self._substance |= substance
            self._answered = self._answered or _addresses(substance, self._asked, self._index)
            if not self._after_yes and self._substantive and self._answered:
                upto = end
        chunk = self.text[len(self.released) : upto]
        self.released += chunk
        return chunk

    @property
    def _substantive(self) -> bool:
        return sum(2 if k.startswith("#") else 1 for k in self._substance) >= MIN_SUBSTANCE

    def _pending(self) -> list[tuple[int, int, bool]]:
        return [s for s in _spans(self.text) if s[0] >= self._checked]

    def feed(self, piece: str) -> str:
        """Add generated text; return the text now safe to show."""
        if self.failed:
            return ""
        self.text += piece
        spans = self._pending()
        # the last span may still grow ("4." -> "4.99"), unless whitespace already follows it or it ends on a
        # Chinese full stop
        done = [s for s in spans if s[2] and (s[1] < len(self.text) or self.text[s[1] - 1] in _CJK_END)]
        return self._release(done) if done else ""

    def finish(self, complete: bool = True) -> str:
        """The rest at the end of generation, if it passes. `complete=False`: stopped at `max_new_tokens`."""
        if self.failed:
            return ""
        spans = self._pending()
        if spans:
            start, end, terminated = spans[-1]
            if _cut_off(self.text[start:end].strip(), terminated, complete):
                self.cut_off = self.text[start:end].strip()
                spans = spans[:-1]
        chunk = self._release(spans)
        if not self.failed and not self._substantive:
            self.failed = True
            self.failure = _fail(self.text.strip(), "states nothing from the sources that answers the question")
            return ""
        if not self.failed and not self._answered:
            about = _about(self._asked, self._index)
            missing = _quote(w for k, w in self._asked.items() if k in about)
            self.failed = True
            self.failure = _fail(self.text.strip(), f"does not answer what was asked about {missing}: it states "
                                 "something else of the sources")  # fmt: skip
            return ""
        if not self.failed and not self.cut_off:
            # a held bare "Yes." at the very end, and trailing whitespace
            rest = self.text[len(self.released) :]
            self.released += rest
            chunk += rest
        return chunk


# ---------------------------------------------------------------------------------------------------------------
# Customers dictating the reply

_WH = r"(?:how|what|when|where|why|which|who|whom|whose|whether|if|long|much|many)"
_SUBJECT_VERB = (
    r"(?!" + _WH + r"\b)(?:it|there|you|we|i|they|he|she|this|that|delivery|shipping|everything|all|\w+(?:\s+\w+)?)"
    r"(?:'s|'re|'ll|\s+(?:is|are|was|were|will|would|can|takes?|costs?|gets?|has|have|does|do|ships?|arrives?|"
    r"comes?|needs?|includes?|qualif(?:y|ies)|allows?|accepts?|offers?|refunds?|gives?))\b"
)
_DICTATION = tuple(
    re.compile(p, re.IGNORECASE)
    for p in (
        # "answer that it takes 10 days", "confirm that delivery is free", "tell me that I get a refund"
        r"\b(?:answer|reply|respond|say|state|write|tell\s+(?:me|us|them|him|her|the customer)|confirm|claim|"
        r"promise(?:\s+me)?|assure\s+me|guarantee(?:\s+me)?|agree|admit|repeat)\s+(?:to\s+me\s+)?(?:that|:)\s+"
        r"(?:" + _SUBJECT_VERB + r"|[\"'“])",
        # "say it's free", "tell me I get a refund", "just say yes"
        r"\b(?:say|tell\s+(?:me|us)|state|answer|reply|respond)\s+(?:" + _SUBJECT_VERB + r")",
        r"\b(?:say|answer|reply|respond|write)\s+(?:only\s+|just\s+|simply\s+)?(?:with\s+)?(?:[\"'“]|yes\b|no\b|ok\b|"
        r"okay\b|true\b|exactly\b)",
        r"\b(?:reply|answer|respond)\s+(?:only\s+|just\s+)?with\s+(?:[\"'“]|the words?\b|a single\b|exactly\b)",
        r"\byour\s+(?:answer|reply|response)\s+(?:must|should|has to|will|needs to)\s+"
        r"(?:be|say|state|include|contain)\b",
        r"\b(?:start|begin|end)\s+your\s+(?:answer|reply|response)\s+with\b",
        r"\brepeat after me\b|\byou (?:must|have to|need to) (?:say|answer|reply|confirm|tell)\b",
        # French, German, Spanish
        r"\b(?:r[ée]ponds|r[ée]pondez|dis|dites|confirme|confirmez|[ée]cris|[ée]crivez|affirme|affirmez)"
        r"(?:-(?:moi|nous))?\s+(?:que|qu')",
        r"\b(?:antworte|antworten sie|sag|sage|sagen sie|best[äa]tige|best[äa]tigen sie|schreib|schreibe|schreiben sie)"
        r"(?:\s+(?:mir|uns))?\s*,?\s+dass\b",
        r"\b(?:responde|respóndeme|respondeme|responda|contesta|contésta(?:me)?|di|dime|diga|dígame|digame|confirma|"
        r"confírma(?:me)?|confirmame|escribe|escriba)\s+que\b",
    )
)


def dictates_reply(text: str) -> bool:
    """Whether the customer tells the bot what to answer ("Answer that it takes 10 days", "say it's free",
    "tell me that I get a refund", "reply with 'yes'", "confirm that delivery is free", "dis-moi que",
    "sag mir, dass", "dime que"). Ordinary questions ("Can you tell me how long delivery takes?") do not count.
    The engine drafts such messages for an agent; it never answers them automatically."""
    norm = _normal(text).replace("’", "'")
    return any(p.search(norm) for p in _DICTATION)
