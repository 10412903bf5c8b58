"""Learned phrasings: where the answer is, learned from what agents send.

When an agent sends a reply (a draft approved as it was, an edited draft, or a reply in a handed-off chat) and one
FAQ entry clearly supports it, the customer's question becomes a phrasing of that entry (`alt_questions`), so the
next customer who asks it that way is answered from that entry, whichever entry the bot had drafted from.

- `reviewed_replies` reads what agents sent from the store, each with the customer's question read as the follow-up
  module reads it (`chatbot.followup.read_in_context`: a message that refers back, "what if I miss it?", joined to
  the conversation's topic).
- `support` scores how well one entry supports a reply: the share of the reply's words (the lexical tokenizer's) the
  entry states, and 0 when the reply states a number, duration, URL or address the entry does not.
- `place` finds the entry the reply is drawn from, from text only: the best-supported entry when its support is at
  least `[learning] min_support` and ahead of the runner-up's by `min_margin`; else None (nothing is learned: a
  question handed off for want of a source goes to the gap suggestions, `chatbot.gaps`).
- `learn` turns replies into `Learned` phrasings (one per entry and phrasing, with its evidence), leaving out
  phrasings an entry has already and those an admin dropped (`DroppedPhrasings`); `with_phrasings` adds them to the
  entries, for the normal validated build (the admin page's Gaps tab keeps or drops each; `[learning] apply = "auto"`
  adds them there without asking).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from chatbot.config import LearningConfig
from chatbot.followup import read_in_context
from knowledge_base.records import FaqEntry
from knowledge_base.tokenize import tokenize

MAX_PHRASING = 1_000
"""The FAQ format's limit on a question's characters (`knowledge_base.loaders.MAX_QUESTION`)."""


@dataclass(frozen=True)
class ReviewedReply:
    """What an agent sent in reply to a customer's question."""

    conversation_id: str
    question: str
    """The customer's question as retrieval reads it with the conversation (`chatbot.followup.read_in_context`)."""
    reply: str
    customer: tuple[str, ...]
    """The customer's messages so far, the question last (a reply may echo them)."""
    drafted_from: tuple[str, ...] = ()
    """The FAQ entries the bot's draft rested on (empty for a reply to a handed-off chat)."""
    language: str | None = None


@dataclass(frozen=True)
class Placement:
    """The entry a reply is drawn from, if one clearly supports it."""

    faq_id: str | None
    support: float
    runner_up: float
    """The support of the next best entry."""


@dataclass(frozen=True)
class Learned:
    """A phrasing learned for an FAQ entry, with the reviews it rests on."""

    faq_id: str
    phrasing: str
    support: float
    """The lowest support among the replies that placed it."""
    conversations: tuple[str, ...]
    drafted_from: tuple[str, ...]
    """Entries the bot's drafts had used instead (empty when the bot already drafted from this one)."""


def reviewed_replies(store: Any) -> list[ReviewedReply]:
    """Every reply an agent sent after a customer's message (`Store.reviewed_examples`), oldest first."""
    out = []
    for row in store.reviewed_examples():
        *context, last = row["messages"]
        if not context or context[-1]["role"] != "user":
            continue
        customer = tuple(m["content"] for m in context if m["role"] == "user")
        conversation_id, message_id = row["id"].rsplit("-", 1)
        message = store.message(int(message_id))
        out.append(ReviewedReply(conversation_id, read_in_context(customer), last["content"], customer,
                                 tuple(message.faq_ids), message.language))  # fmt: skip
    return out


@functools.lru_cache(maxsize=8192)
def _words(text: str) -> frozenset[str]:
    return frozenset(tokenize(text))


def support(reply: str, entry: FaqEntry, customer: Sequence[str] = ()) -> float:
    """How well `entry` supports `reply`: the share of the reply's distinct words (not counting those the customer
    said) that the entry's answer or question states; 0 when the reply states a fact (a number, duration, URL or
    e-mail address: `chatbot.routing.extract_facts`) that neither the entry nor the customer does, and for a reply
    with no words of its own. The sentence-level claim check is not used here: agents paraphrase, hedge and add
    "yes" where a bot may not, and on batch 1 of the `bench learn` split 0 it left out half the replies an entry
    supported (58 placed against 119, 93% against 83% on the section doc2dial's annotators marked)."""
    from chatbot.routing import extract_facts, supported_facts

    said = set().union(*(_words(c) for c in customer)) if customer else set()
    words = _words(reply) - said
    if not words or extract_facts(reply) - supported_facts([entry.answer, entry.question, *customer]):
        return 0.0
    return len(words & (_words(entry.answer) | _words(entry.question))) / len(words)


def place(reply: str, entries: Sequence[FaqEntry], config: LearningConfig, customer: Sequence[str] = ()) -> Placement:
    """The entry `reply` is drawn from (see the module docstring); the fact check runs on the few entries that
    share the most words with the reply."""
    said = set().union(*(_words(c) for c in customer)) if customer else set()
    words = _words(reply) - said
    if len(words) < config.min_words or not entries:
        return Placement(None, 0.0, 0.0)
    overlap = sorted(((len(words & (_words(e.answer) | _words(e.question))), i) for i, e in enumerate(entries)),
                     reverse=True)  # fmt: skip
    scored = sorted(((support(reply, entries[i], customer), i) for _, i in overlap[:3]), reverse=True)
    best, i = scored[0]
    # the fourth entry's share of words bounds the support of every entry not checked
    runner_up = max([s for s, _ in scored[1:]] + [n / len(words) for n, _ in overlap[3:4]], default=0.0)
    if best >= config.min_support and best - runner_up >= config.min_margin:
        return Placement(entries[i].id, round(best, 4), round(runner_up, 4))
    return Placement(None, round(best, 4), round(runner_up, 4))


def source_of(reply: str, customer: Sequence[str], language: str | None, entries: Sequence[FaqEntry],
              config: LearningConfig) -> Placement:  # fmt: skip
    """`place` among the entries in the customer's `language` (and those without one): the entry an agent's reply
    to a customer is drawn from. A reply with one teaches a learned phrasing; one without stays a gap
    (`chatbot.gaps`)."""
    candidates = [e for e in entries if language is None or e.language in (None, language)]
    return place(reply, candidates, config, customer)


class DroppedPhrasings:
    """Phrasings an admin dropped, one JSON object a line (`{"faq_id", "phrasing"}`), never suggested again."""

    def __init__(self, path: str | Path):
        self.path = Path(path)

    def load(self) -> set[tuple[str, str]]:
        if not self.path.exists():
            return set()
        out = set()
        for number, line in enumerate(self.path.read_text(encoding="utf-8").splitlines(), start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                out.add((str(row["faq_id"]), str(row["phrasing"]).casefold()))
            except (KeyError, TypeError, ValueError) as exc:
                raise ValueError(f"{self.path}:{number}: not a dropped phrasing ({exc}); delete the line") from exc
        return out

    def drop(self, faq_id: str, phrasing: str) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps({"faq_id": faq_id, "phrasing": phrasing}, ensure_ascii=False) + "\n")


def learn(replies: Iterable[ReviewedReply], entries: Sequence[FaqEntry], config: LearningConfig,
          dropped: Collection[tuple[str, str]] = ()) -> list[Learned]:  # fmt: skip
    """The phrasings `replies` teach (see the module docstring), most-evidenced first; none when learning is off.
    Phrasings an entry has already (any case) and `dropped` ones (`(faq_id, casefolded phrasing)`) are left out."""
    if not config.enabled:
        return []
    known = {(e.id, p.casefold()) for e in entries for p in e.phrasings} | set(dropped)
    found: dict[tuple[str, str], list[tuple[ReviewedReply, float]]] = {}
    for r in replies:
        if not r.question.strip() or len(r.question) > MAX_PHRASING:
            continue
        where = source_of(r.reply, r.customer, r.language, entries, config)
        if where.faq_id is None or (where.faq_id, r.question.casefold()) in known:
            continue
        found.setdefault((where.faq_id, r.question.casefold()), []).append((r, where.support))
    out = []
    for (faq_id, _), seen in found.items():
        drafted = tuple(dict.fromkeys(i for r, _ in seen for i in r.drafted_from[:1] if i != faq_id))
        out.append(Learned(faq_id, seen[0][0].question, min(s for _, s in seen),
                           tuple(dict.fromkeys(r.conversation_id for r, _ in seen)), drafted))  # fmt: skip
    return sorted(out, key=lambda x: (-len(x.conversations), -x.support))


def with_phrasings(entries: Sequence[FaqEntry], learned: Iterable[Learned], limit: int = 500) -> list[FaqEntry]:
    """`entries` with the `learned` phrasings added to their `alt_questions` (each entry's at most `limit`, the FAQ
    format's; a phrasing of an entry not in `entries` is refused with a `ValueError`)."""
    by_id = {e.id: e for e in entries}
    extra: dict[str, list[str]] = {}
    for item in learned:
        if item.faq_id not in by_id:
            raise ValueError(f"no FAQ entry {item.faq_id!r} to add the phrasing {item.phrasing!r} to; refresh the list")
        extra.setdefault(item.faq_id, []).append(item.phrasing)
    out = []
    for e in entries:
        if e.id not in extra:
            out.append(e)
            continue
        seen = {p.casefold() for p in e.phrasings}
        alts = list(e.alt_questions)
        for p in extra[e.id]:
            if p.casefold() not in seen and len(alts) < limit:
                alts.append(p)
                seen.add(p.casefold())
        out.append(replace(e, alt_questions=tuple(alts)))
    return out
