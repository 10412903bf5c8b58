"""Gap suggestions: questions the FAQ had no good source for, that agents then answered, grouped into new entries.

`answered_gaps` reads them from the store: the customer's message right before a handoff that rested on no source
(the route's "no good source"; requests for a person and languages the bot does not answer in are left out), with the
first reply a person sent after it. `group` clusters the questions by meaning (the knowledge base's embedder,
average-linkage agglomerative clustering on cosine distance, `[gaps] similarity`), one language at a time.
`suggest` makes one `Suggestion` per group of at least `[gaps] min_questions`: the phrasing closest to the group's
others as the question, the agents' answer closest to the others as the answer, the other phrasings as
`alt_questions`. The admin page adds one through its validated FAQ build and the answer-quality gate
(`ui/admin.py`).
"""

from __future__ import annotations

import re
import time
from collections import defaultdict
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from chatbot.config import GapsConfig
from chatbot.extract import Encode
from knowledge_base.records import FaqEntry


@dataclass(frozen=True)
class GapQuestion:
    """A customer question with no good FAQ source, and the first reply a person sent after it."""

    conversation_id: str
    question: str
    answer: str
    language: str | None
    at: float


@dataclass(frozen=True)
class Suggestion:
    """A new FAQ entry offered to the admin, from a group of similar agent-answered questions."""

    question: str
    answer: str
    alt_questions: tuple[str, ...]
    language: str | None
    answers: tuple[str, ...]
    """Every agent answer of the group (the admin may prefer another)."""
    conversations: tuple[str, ...]

    @property
    def n(self) -> int:
        return 1 + len(self.alt_questions)

    def entry(self, taken: Collection[str] = ()) -> FaqEntry:
        """The suggestion as an FAQ entry, with an id (`gap-<words of the question>`) not in `taken`."""
        words = re.findall(r"[^\W_]+", self.question.casefold())[:6] or ["question"]
        base = "gap-" + "-".join(words)
        faq_id, k = base, 2
        while faq_id in taken:
            faq_id, k = f"{base}-{k}", k + 1
        return FaqEntry(faq_id, self.question, self.answer, self.alt_questions, self.language)


def answered_gaps(store: Any, days: int = 30, *, asks_for_person: Callable[[str], bool] | None = None,
                  languages: Collection[str] | None = None, now: float | None = None) -> list[GapQuestion]:  # fmt: skip
    """Questions of the last `days` days that were handed off with no source and then answered by a person, oldest
    first. `asks_for_person(text)` and `languages` leave out requests for a person and other languages (as the
    admin page's unanswered questions do)."""
    now = time.time() if now is None else now
    rows = store._read(
        "SELECT b.conversation_id, q.text AS question, q.language AS language, q.created_at AS at, "
        "(SELECT a.text FROM messages a WHERE a.conversation_id = b.conversation_id AND a.role = 'agent' "
        "AND a.status = 'sent' AND a.id > b.id ORDER BY a.id LIMIT 1) AS answer "
        "FROM messages b JOIN messages q ON q.id = (SELECT MAX(id) FROM messages WHERE conversation_id = "
        "b.conversation_id AND id < b.id) WHERE b.role = 'bot' AND b.route = 'handoff' AND b.faq_ids = '[]' "
        "AND q.role = 'user' AND b.created_at >= ? AND b.created_at <= ? ORDER BY b.id",
        (now - days * 86400, now),
    )
    out = []
    for r in rows:
        if r["answer"] is None:
            continue
        if asks_for_person is not None and asks_for_person(r["question"]):
            continue
        if languages is not None and r["language"] and r["language"] not in languages:
            continue
        out.append(GapQuestion(r["conversation_id"], r["question"], r["answer"], r["language"], r["at"]))
    return out


def group(texts: Sequence[str], encode: Encode, similarity: float) -> list[list[int]]:
    """Indices of `texts` grouped by meaning: average-linkage clusters whose members are, on average, at least
    `similarity` (cosine) apart from each other; biggest group first."""
    if len(texts) < 2:
        return [list(range(len(texts)))] if texts else []
    from scipy.cluster.hierarchy import fcluster, linkage

    vectors = np.asarray(encode(list(texts)), dtype=np.float64)
    tree = linkage(vectors, method="average", metric="cosine")
    labels = fcluster(tree, t=1.0 - similarity, criterion="distance")
    groups: dict[int, list[int]] = defaultdict(list)
    for i, label in enumerate(labels):
        groups[int(label)].append(i)
    return sorted(groups.values(), key=lambda g: (-len(g), g[0]))


def _central(texts: Sequence[str], encode: Encode) -> int:
    """The index of the text most similar, on average, to the others."""
    if len(texts) < 3:
        return 0
    vectors = np.asarray(encode(list(texts)), dtype=np.float64)
    return int(np.argmax((vectors @ vectors.T).sum(axis=1)))


def suggest(questions: Sequence[GapQuestion], encode: Encode, config: GapsConfig) -> list[Suggestion]:
    """One suggestion per group of at least `config.min_questions` similar questions (per language), biggest first.
    The same phrasing asked twice counts twice but is listed once."""
    by_language: dict[str | None, list[GapQuestion]] = defaultdict(list)
    for q in questions:
        by_language[q.language].append(q)
    out = []
    for language, items in by_language.items():
        for members in group([q.question for q in items], encode, config.similarity):
            if len(members) < config.min_questions:
                continue
            chosen = [items[i] for i in members]
            asked = [q.question for q in chosen]
            question = asked[_central(asked, encode)]
            answers = tuple(dict.fromkeys(q.answer for q in chosen))
            alts = tuple(p for p in dict.fromkeys(asked) if p.casefold() != question.casefold())
            out.append(Suggestion(question, answers[_central(answers, encode)], alts, language, answers,
                                  tuple(dict.fromkeys(q.conversation_id for q in chosen))))  # fmt: skip
    return sorted(out, key=lambda s: -len(s.conversations))
