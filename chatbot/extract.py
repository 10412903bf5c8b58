"""The extractive answer: the sentences of the top source that answer the question, in the source's own words.

When a generated reply fails its checks, the customer gets this instead of the whole FAQ answer. An answer is cut
into segments (sentences, list items, headings); each is scored against the question (stemmed word overlap weighted
by rarity inside the answer, plus the embedder's cosine when one is given, plus the relevance of the section heading
above it), and the best ones are kept in source order within `max_chars`. A segment keeps the neighbours it needs:
a list stays whole with the line that introduces it, and a sentence that opens with "Then", "This", "It", ... keeps
the sentence before it. Nothing is cut inside a segment, and the only change to the source's text is the spacing
around punctuation (scraped pages write "offer , they" and "loans ."), so every word of an extract is the source's.
"""

from __future__ import annotations

import math
import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from functools import lru_cache

import numpy as np

from knowledge_base.records import Hit
from knowledge_base.tokenize import tokenize

SHORT_SENTENCES = 2
"""Answers of at most this many sentences are sent whole."""
MAX_SEGMENTS = 3
"""At most this many segments (after their needed neighbours) are chosen."""
KEEP_RATIO = 0.5
"""A further segment is added only when it scores at least this fraction of the best one."""
HEADING_WEIGHT = 0.6
"""How much a section heading's relevance lifts the sentences under it."""
CONTEXT_WEIGHT = 0.35
"""How much the customer's earlier messages count against the question itself."""
COSINE_WEIGHT = 1.0
"""Weight of the embedder's cosine against the lexical score (which lies in [0, 1])."""
CUE_BONUS = 0.15
"""Bonus of a segment holding what the question's form asks for (an amount for "how much", ...)."""
FOLLOW_NEXT = True
"""Whether the sentence right after the best one comes with it (same paragraph, within `max_chars`)."""
PREFIX_CREDIT = 0.7
"""Credit of a query word that shares only its first letters with a segment's word."""
_PREFIX = 5
_VECTOR_CACHE_SIZE = 256

_ABBREVIATIONS = frozenset(
    ("e.g", "i.e", "etc", "vs", "mr", "mrs", "ms", "dr", "st", "no", "nos", "jr", "sr", "inc", "ltd", "co", "u.s",
     "u.k", "a.m", "p.m", "approx", "dept", "fig", "ca", "cf")
)  # fmt: skip
# A sentence ends at . ! ? (and closing quotes or brackets) followed by space and a capital, a digit or an opening
# quote or bracket.
_BOUNDARY = re.compile(r"[.!?][\"')\]]*\s+(?=[\"'(\[]?[A-Z0-9])|[。！？；][”’」』)）]*\s*")
"""A sentence end: English before a space and a capital or digit, Chinese (。！？；) wherever it stands."""
_TERMINAL = re.compile(r"[.!?:;,。！？；：，][\"')\]”’」』）]*$")
_BULLET = re.compile(r"^\s*(?:[-*\u2022\u2013]|\d{1,2}[.)])\s+")
_DEPENDENT = re.compile(
    r"^(?:then|next|after that|afterwards|finally|also|however|otherwise|instead|this|that|these|those|it|they|"
    r"such|if so|if not|in that case|in addition|as a result)\b",
    re.IGNORECASE,
)
# "long" in "how long" asks for a duration (a cue below), it is not a topic word to match
_QUESTION_FORM = re.compile(r"\bhow (?:much|long|many|often|soon|quickly)\b", re.IGNORECASE)
_SPACE_BEFORE_PUNCT = re.compile(r"[ \t]+([,.;:?!])(?=\s|$)")
_SPACES = re.compile(r"[ \t]+")
_CUES: tuple[tuple[re.Pattern[str], re.Pattern[str]], ...] = (
    (
        re.compile(r"\b(how much|cost|costs|price|fee|fees|charge|pay)\b", re.IGNORECASE),
        re.compile(r"[$€£¥]\s?\d|\d\s?(?:%|percent|dollars?|euros?)|\bfree\b", re.IGNORECASE),
    ),
    (
        re.compile(r"\b(how long|when|how soon|how quickly|deadline|valid)\b", re.IGNORECASE),
        re.compile(
            r"\b\d+\s*(?:-\s*\d+\s*)?(?:[a-z]+\s+)?(?:minutes?|hours?|days?|weeks?|months?|years?)\b|\bwithin\b",
            re.IGNORECASE,
        ),
    ),
    (
        re.compile(r"\b(how many|how often|limit|maximum|minimum)\b", re.IGNORECASE),
        re.compile(r"\b\d+\b|\bup to\b", re.IGNORECASE),
    ),
    (
        re.compile(r"\b(where|which page|what page|menu|find)\b", re.IGNORECASE),
        re.compile(r">|https?://|www\.|\b(?:page|menu|section|tab)\b", re.IGNORECASE),
    ),
)

Encode = Callable[[Sequence[str]], np.ndarray]
"""Texts -> L2-normalised vectors (the knowledge base's `embedder.encode`)."""


@dataclass(frozen=True)
class Extract:
    """The part of a source that answers a question."""

    text: str
    """The answer: sentences of the source in their own words, in source order."""
    faq_id: str
    """The entry they come from."""
    whole: bool
    """True when `text` is the entry's whole answer (short answers are sent whole)."""
    sentences: tuple[int, ...] = ()
    """Indexes of the chosen segments (sentences, list items, headings) in the answer's segmentation."""


@dataclass(frozen=True)
class _Segment:
    text: str
    """The segment's source text with its spacing tidied."""
    kind: str
    """"sentence", "item" (of a list) or "heading"."""
    paragraph: int
    line: int
    tokens: frozenset[str]
    prefixes: frozenset[str]
    """The first `_PREFIX` letters of its longer tokens: "arrived" and "arrive" stem apart but share "arriv"."""


@dataclass(frozen=True)
class _Parsed:
    segments: tuple[_Segment, ...]
    heading_of: tuple[int | None, ...]
    """Per segment, the index of the heading of its section."""
    units: tuple[tuple[int, ...], ...]
    """Per segment, the segments it must be sent with (itself included), in source order."""
    idf: dict[str, float]


def tidy(text: str) -> str:
    """The text with scraped-page spacing fixed: no space before , . ; : ? ! and single spaces."""
    return _SPACES.sub(" ", _SPACE_BEFORE_PUNCT.sub(r"\1", text)).strip()


def _sentences(line: str) -> list[str]:
    out, start = [], 0
    for match in _BOUNDARY.finditer(line):
        head = line[start : match.start()].rstrip()
        last = head.rsplit(None, 1)[-1] if head.strip() else ""
        word = last.strip("\"'([").lower()
        if match.group()[0] in ".!?" and (word in _ABBREVIATIONS or (len(word) == 1 and word.isalpha())):
            continue  # "e.g. Visa", "U.S. Department", "J. Smith"
        out.append(line[start : match.end()])
        start = match.end()
    out.append(line[start:])
    return [s for s in (tidy(s) for s in out) if s]


@lru_cache(maxsize=512)
def _parse(answer: str) -> _Parsed:
    segments: list[_Segment] = []
    paragraph = 0
    for line_number, line in enumerate(answer.split("\n")):
        if not line.strip():
            paragraph += 1
            continue
        parts = _sentences(line)
        after_break = not segments or segments[-1].paragraph != paragraph
        previous = segments[-1] if segments else None
        single = len(parts) == 1
        if single and _BULLET.match(line):
            kind = "item"
        elif single and not _TERMINAL.search(parts[0]) and after_break and len(parts[0].split()) <= 12:
            kind = "heading"
        elif (
            single
            and not _TERMINAL.search(parts[0])
            and previous is not None
            and (previous.kind == "item" or previous.text.endswith(":"))
        ):
            kind = "item"
        else:
            kind = "sentence"
        for part in parts:
            tokens = frozenset(tokenize(part))
            prefixes = frozenset(t[:_PREFIX] for t in tokens if len(t) >= _PREFIX)
            segments.append(_Segment(part, kind, paragraph, line_number, tokens, prefixes))
    headings: list[int | None] = []
    current: int | None = None
    for i, seg in enumerate(segments):
        if seg.kind == "heading":
            current = i
        headings.append(current)
    lists = _list_blocks(segments)
    units: list[tuple[int, ...]] = []
    for i in range(len(segments)):
        members = set(lists.get(i, (i,)))
        j = min(members)
        # a sentence that leans on the one before it ("Then ...", "This ...") keeps it
        while j > 0 and _needs_previous(segments, j):
            j -= 1
            members.update(lists.get(j, (j,)))
            j = min(members)
        units.append(tuple(sorted(members)))
    df: dict[str, int] = {}
    for seg in segments:
        for token in seg.tokens:
            df[token] = df.get(token, 0) + 1
    n = len(segments)
    idf = {token: math.log(1 + n / count) for token, count in df.items()}
    return _Parsed(tuple(segments), tuple(headings), tuple(units), idf)


def _list_blocks(segments: Sequence[_Segment]) -> dict[int, tuple[int, ...]]:
    """Each list item, and the line introducing the list, mapped to the whole block (intro and items)."""
    blocks: dict[int, tuple[int, ...]] = {}
    i = 0
    while i < len(segments):
        if segments[i].kind != "item":
            i += 1
            continue
        start = i
        intro = i - 1
        if intro >= 0 and segments[intro].kind != "heading" and segments[intro].text.endswith(":"):
            start = intro
        end = i
        while end + 1 < len(segments) and segments[end + 1].kind == "item":
            end += 1
        block = tuple(range(start, end + 1))
        for k in block:
            blocks[k] = block
        i = end + 1
    return blocks


def _needs_previous(segments: Sequence[_Segment], i: int) -> bool:
    seg, before = segments[i], segments[i - 1]
    same_paragraph = before.kind != "heading" and before.paragraph == seg.paragraph
    return seg.kind == "sentence" and same_paragraph and bool(_DEPENDENT.match(seg.text))


def _lexical(query: Sequence[str], parsed: _Parsed) -> np.ndarray:
    """Per segment, the idf-weighted share of the query's distinct tokens it holds (unknown tokens weigh most; a
    shared prefix earns part of a token's weight)."""
    distinct = set(query)
    if not distinct:
        return np.zeros(len(parsed.segments))
    top = math.log(1 + len(parsed.segments))
    weights = {t: parsed.idf.get(t, top) for t in distinct}
    total = sum(weights.values())
    return np.array([sum(w * _credit(t, seg) for t, w in weights.items()) / total for seg in parsed.segments])


def _credit(token: str, seg: _Segment) -> float:
    if token in seg.tokens:
        return 1.0
    return PREFIX_CREDIT if len(token) >= _PREFIX and token[:_PREFIX] in seg.prefixes else 0.0


def _cues(question: str, parsed: _Parsed) -> np.ndarray:
    bonus = np.zeros(len(parsed.segments))
    for asks, holds in _CUES:
        if asks.search(question):
            bonus += [CUE_BONUS if holds.search(seg.text) else 0.0 for seg in parsed.segments]
    return bonus


_vectors: OrderedDict[tuple[Encode, str], np.ndarray] = OrderedDict()
_vectors_lock = threading.Lock()


def _segment_vectors(encode: Encode, answer: str, parsed: _Parsed) -> np.ndarray:
    """The segments' embeddings, computed once per answer and embedder (a bound method compares equal to itself)."""
    key = (encode, answer)
    with _vectors_lock:
        if key in _vectors:
            _vectors.move_to_end(key)
            return _vectors[key]
    vectors = np.asarray(encode([seg.text for seg in parsed.segments]), dtype=np.float32)
    with _vectors_lock:
        _vectors[key] = vectors
        while len(_vectors) > _VECTOR_CACHE_SIZE:
            _vectors.popitem(last=False)
    return vectors


def _scores(question: str, context: Sequence[str], parsed: _Parsed, answer: str, encode: Encode | None) -> np.ndarray:
    query = tokenize(_QUESTION_FORM.sub(" ", question))
    earlier = [t for t in tokenize(" ".join(context[-2:])) if t not in set(query)]
    score = _lexical(query, parsed) + CONTEXT_WEIGHT * _lexical(earlier, parsed) + _cues(question, parsed)
    if encode is not None:
        texts = [question] + ([f"{context[-1]} {question}"] if context else [])
        asked = np.asarray(encode(texts), dtype=np.float32)
        vectors = _segment_vectors(encode, answer, parsed)
        cosine = vectors @ asked[0]
        if context:
            cosine = (1 - CONTEXT_WEIGHT) * cosine + CONTEXT_WEIGHT * (vectors @ asked[1])
        score = score + COSINE_WEIGHT * cosine
    lifted = score.copy()
    for i, heading in enumerate(parsed.heading_of):
        if heading is not None and heading != i:
            lifted[i] += HEADING_WEIGHT * max(score[heading], 0.0)
    return lifted


def _render(parsed: _Parsed, chosen: Sequence[int]) -> str:
    out: list[str] = []
    for k, i in enumerate(chosen):
        seg = parsed.segments[i]
        if k:
            prev = parsed.segments[chosen[k - 1]]
            same_line = " " if not prev.text.endswith(tuple("。！？；”’」』）")) else ""  # no space after Chinese
            out.append(same_line if i == chosen[k - 1] + 1 and prev.line == seg.line else "\n")
        out.append(seg.text)
    return "".join(out)


def _follow(parsed: _Parsed, chosen: set[int], last: int, max_chars: int) -> None:
    """Add the sentence after the best one when it is in the same paragraph and fits: answers often go on there."""
    if not FOLLOW_NEXT or last + 1 >= len(parsed.segments):
        return
    nxt = last + 1
    if parsed.segments[nxt].kind == "heading" or parsed.segments[nxt].paragraph != parsed.segments[last].paragraph:
        return
    candidate = sorted(chosen.union(parsed.units[nxt]))
    if len(_render(parsed, candidate)) <= max_chars:
        chosen.update(candidate)


def extract_answer(
    question: str,
    hits: Sequence[Hit],
    *,
    context: Sequence[str] = (),
    encode: Encode | None = None,
    max_chars: int = 500,
) -> Extract:
    """The sentences of the top hit's answer that answer `question`, in source order, within `max_chars`.

    `context` holds the customer's earlier messages (a follow-up "how much is the fast one?" is read with the
    question before it); `encode` is the knowledge base's embedder (`kb.embedder.encode`, L2-normalised vectors),
    None for the lexical score alone. An answer of at most two sentences or `max_chars` characters is sent whole.
    A single segment longer than `max_chars` is sent alone rather than cut.
    """
    if not hits:
        raise ValueError(
            "extract_answer needs at least one hit; when retrieval finds nothing, hand the conversation to a person"
        )
    if max_chars <= 0:
        raise ValueError(f"max_chars must be > 0, got {max_chars}")
    entry = hits[0].entry
    answer = entry.answer
    parsed = _parse(answer)
    bodies = [i for i, seg in enumerate(parsed.segments) if seg.kind != "heading"]
    if len(bodies) <= SHORT_SENTENCES or len(answer.strip()) <= max_chars:
        return Extract(answer, entry.id, True, tuple(range(len(parsed.segments))))
    scores = _scores(question, context, parsed, answer, encode)
    order = sorted(bodies, key=lambda i: (-scores[i], i))
    best = scores[order[0]]
    chosen: set[int] = set()
    picked = 0
    for i in order:
        if picked == MAX_SEGMENTS or (picked and (scores[i] <= 0 or scores[i] < KEEP_RATIO * best)):
            break
        if i in chosen:
            continue
        unit = [k for k in parsed.units[i] if parsed.segments[k].kind != "heading"]
        candidate = sorted(chosen.union(unit))
        if len(_render(parsed, candidate)) > max_chars:
            if chosen:
                continue
            candidate = [i]  # too long with its neighbours: the sentence alone, never cut
        chosen.update(candidate)
        picked += 1
        if picked == 1:
            _follow(parsed, chosen, max(candidate), max_chars)
    indexes = tuple(sorted(chosen))
    if len(indexes) == len(bodies):
        return Extract(answer, entry.id, True, tuple(range(len(parsed.segments))))
    return Extract(_render(parsed, indexes), entry.id, False, indexes)


def focus_hits(
    question: str,
    hits: Sequence[Hit],
    *,
    context: Sequence[str] = (),
    encode: Encode | None = None,
    max_chars: int = 700,
) -> tuple[Hit, ...]:
    """`hits` with each answer longer than `max_chars` cut to its passage that answers `question` (`extract_answer`
    on that hit alone), so a help-center article puts the part about the question into the prompt, not its first
    page; shorter answers are kept as they are."""
    out = []
    for hit in hits:
        if len(hit.entry.answer) <= max_chars:
            out.append(hit)
            continue
        passage = extract_answer(question, [hit], context=context, encode=encode, max_chars=max_chars)
        out.append(replace(hit, entry=replace(hit.entry, answer=passage.text)))
    return tuple(out)
