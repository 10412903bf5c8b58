"""Follow-up retrieval: a customer's message read with the conversation so far.

"I forgot my password" -> "how long is the link valid?": the second message alone matches nothing well, so today
it is handed off or drafted from an unrelated entry. `contextual_search` searches the message alone and together
with the conversation's topic (the latest earlier customer message that was not itself a follow-up, and those
after it), scores the previous answer's sources for both, and fuses:

    context(e) = w * ((1 - prior_weight) * score(topic + message, e) + prior_weight * prior(e))  # a previous source
    context(e) = w * score(topic + message, e)                                                  # any other entry
    score(e)   = max(score(message, e), context(e))

`prior(e)` is the previous answer's top score for its best source (`prior_decay` times that for the next ones):
a follow-up to a confidently answered question stays as confident as the context warrants, one to a draft is
less sure, and one to nothing (no previous sources) borrows no confidence. `w` is
`referring_weight` for messages that refer back ("how much is the fast one?", "and for that?", pronouns, no content
word of their own) and `plain_weight` for the others, so a new question ("do you sell gift cards?") is not
answered from the old topic. A message that alone confidently matches an entry other than the previous sources is
a topic change ("ok, and how do I reset my password?") and is searched alone. With no earlier customer message the
result is exactly `kb.search(text)`. The weights were fitted on the `tune` split of
`knowledge_base/demo/store_conversations.jsonl` (see the README for the held-out figures).
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from knowledge_base.records import Hit, SearchResult
from knowledge_base.tokenize import tokenize

# Words that point back at something said before.
_REFERRING_TEXT = (
    "it its it's itself that this those these them they their theirs one ones there same such else "
    "former latter he she him her"
)
REFERRING_WORDS = frozenset(_REFERRING_TEXT.split())
_EXISTENTIAL = frozenset(("is", "are", "was", "were", "any"))
# Openings that continue the previous message.
CONTINUATIONS = ("and", "also", "what about", "how about", "what if", "but", "so", "then", "plus", "or", "same for")
# Words (as `tokenize` gives them: lower-case, stemmed) that ask about a detail without naming a topic; what is left
# after dropping them and the stop words is the message's own topic.
_DETAIL_TEXT = (
    "how long much many often soon far fast faster quick quickly late early when where why which who whom what "
    "ok okay thank thx ty yes yeah yep no nope sure great cool fine alright right got get take need want know tell "
    "say possible work happen still again more less way thing anyth someth cost price free normal usual valid "
    "till until time day hour week minute done go good bad problem issue help mean see show find look hmm wait"
)
DETAIL_WORDS = frozenset(_DETAIL_TEXT.split())
_WORD = re.compile(r"[^\W_]+(?:'[^\W_]+)?")


@dataclass(frozen=True)
class FollowupConfig:
    """Fusion weights (fitted on the demo conversations' `tune` split)."""

    referring_weight: float = 1.0
    """Weight of the context score for messages that refer back."""
    plain_weight: float = 0.75
    """Weight of the context score for messages that name a topic of their own."""
    prior_weight: float = 0.7
    """Share of the previous answer's score in the context score (the rest is the search with the topic)."""
    prior_decay: float = 0.5
    """The previous answer's second source gets `prior_decay` times the prior of the first, and so on."""
    candidates: int = 10
    """Hits taken from each search before fusion."""


@dataclass(frozen=True)
class ContextQuery:
    """A customer message with what the conversation so far says about it."""

    text: str
    """The customer's new message."""
    previous_user: tuple[str, ...] = ()
    """Earlier customer messages of the conversation, oldest first."""
    previous_sources: tuple[str, ...] = ()
    """FAQ ids the last bot answer or draft rested on, best first."""
    previous_score: float = 0.0
    """That answer's top calibrated score (0 when none)."""


@dataclass(frozen=True)
class ContextResult:
    """The hits to route on and to put in the prompt."""

    hits: tuple[Hit, ...]
    """Best first; each hit's `score` is the fused, calibrated score."""
    index_version: str
    followup: bool
    """The message was read as a follow-up (the context decided the result)."""
    searched: str
    """The search whose hit won: `new` (the message alone) or `topic + new`."""
    timings: dict[str, float] = field(default_factory=dict)


def _words(text: str) -> list[str]:
    return _WORD.findall(text.lower().replace("\u2019", "'"))


def is_referring(text: str) -> bool:
    """Whether `text` refers back to the conversation: a pronoun or demonstrative ("when will it show up?"), an
    opening that continues ("and for that?", "what about the membership?"), or at most one content word of its own
    ("how long do I have?", "how long is the link valid?")."""
    words = _words(text)
    if not words:
        return True
    for i, w in enumerate(words):
        # "is there an app?" asks about something new: an existential "there" does not point back
        if w in REFERRING_WORDS and not (w == "there" and i and words[i - 1] in _EXISTENTIAL):
            return True
    joined = " ".join(words)
    if any(joined == c or joined.startswith(c + " ") for c in CONTINUATIONS):
        return True
    topic = [t for t in tokenize(text) if t not in DETAIL_WORDS]
    return len(topic) <= 1


def topic_text(previous_user: tuple[str, ...], text: str) -> str:
    """The conversation's topic with the new message: the latest earlier message that names a topic of its own and
    every message after it (referring messages alone would lose the topic)."""
    start = len(previous_user) - 1
    while start > 0 and is_referring(previous_user[start]):
        start -= 1
    return " ".join((*previous_user[start:], text))


def read_in_context(customer: Sequence[str]) -> str:
    """The customer's last message as retrieval reads it: alone, or with the conversation's topic when it refers
    back (`topic_text`); `customer` holds the customer's messages so far, the question last."""
    if not customer:
        raise ValueError("read_in_context needs the customer's messages, the question last")
    *before, text = (" ".join(m.split()) for m in customer)
    return topic_text(tuple(before), text) if before and is_referring(text) else text


def contextual_search(
    kb: Any, query: ContextQuery, *, k: int = 3, language: str | None = None, config: FollowupConfig | None = None
) -> ContextResult:
    """Search `query.text` with the conversation so far (see the module docstring). `kb` is a
    `knowledge_base.kb.KnowledgeBase`; with no earlier customer message the hits are exactly `kb.search`'s."""
    t0 = time.perf_counter()
    if not query.previous_user:
        plain = kb.search(query.text, k=k, language=language)
        return ContextResult(plain.hits, plain.index_version, False, "new", {"search_s": time.perf_counter() - t0})
    cfg = config or FollowupConfig()
    depth = max(k, cfg.candidates)
    sources = tuple(dict.fromkeys(query.previous_sources))
    new: SearchResult = kb.search_including(query.text, sources, k=depth, language=language)
    topic = topic_text(tuple(query.previous_user), query.text)
    ctx: SearchResult = kb.search_including(topic, sources, k=depth, language=language)
    timings = {"search_s": time.perf_counter() - t0}
    if ctx.index_version != new.index_version:  # a new FAQ version came in between: the message alone decides
        return ContextResult(new.hits[:k], new.index_version, False, "new", timings)
    by_new = {h.entry.id: h for h in new.hits}
    by_ctx = {h.entry.id: h for h in ctx.hits}
    best = new.hits[0] if new.hits else None
    answer_threshold = kb.config.answer_threshold
    if (
        best is not None
        and best.score >= answer_threshold
        and best.entry.id not in sources
        and best.score >= (by_ctx[best.entry.id].score if best.entry.id in by_ctx else 0.0)
    ):  # the message alone names another entry confidently: a topic change
        return ContextResult(new.hits[:k], new.index_version, False, "new", timings)
    weight = cfg.referring_weight if is_referring(query.text) else cfg.plain_weight
    prior = {i: query.previous_score * cfg.prior_decay**rank for rank, i in enumerate(sources)}
    fused: list[tuple[float, bool, Hit]] = []
    for entry_id in dict.fromkeys((*by_new, *by_ctx)):
        alone = by_new[entry_id].score if entry_id in by_new else 0.0
        context_hit = by_ctx.get(entry_id)
        context = 0.0
        if context_hit is not None:
            mix = cfg.prior_weight if entry_id in prior else 0.0
            context = weight * ((1 - mix) * context_hit.score + mix * prior.get(entry_id, 0.0))
        if context_hit is not None and (context > alone or entry_id not in by_new):
            fused.append((min(context, 1.0), True, replace(context_hit, score=min(context, 1.0))))
        else:
            fused.append((alone, False, by_new[entry_id]))
    fused.sort(key=lambda t: -t[0])
    if language:  # entries in the customer's language first, as `kb.search` orders them
        fused.sort(key=lambda t: t[2].entry.language != language)
    top = fused[:k]
    followup = bool(top) and top[0][1]
    hits = tuple(h for _, _, h in top)
    return ContextResult(hits, new.index_version, followup, "topic + new" if followup else "new", timings)
