"""Retrieval-level evaluation of follow-ups: every labelled conversation is replayed turn by turn, as the engine
reads it (the previous answer's sources are those of the last turn that was answered or drafted), once with the
message alone (`kb.search`, today's behaviour) and once with `contextual_search`; the figures compare the two."""

from __future__ import annotations

import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from chatbot.followup import ContextQuery, FollowupConfig, contextual_search
from knowledge_base.loaders import ConversationRow
from knowledge_base.records import Hit

Method = Literal["plain", "context"]


@dataclass(frozen=True)
class TurnOutcome:
    """One evaluated customer message."""

    conversation: int
    turn: int
    gold: tuple[str, ...]
    top: str | None
    score: float
    followup: bool
    seconds: float


def _route(score: float, kb: Any) -> str:
    if score >= kb.config.answer_threshold:
        return "answer"
    return "draft" if score >= kb.config.draft_threshold else "handoff"


def replay(
    kb: Any, conversations: Sequence[ConversationRow], method: Method, *, k: int = 3,
    config: FollowupConfig | None = None,
) -> list[TurnOutcome]:  # fmt: skip
    """Every turn of every conversation; `gold` is known for the last turn and, where labelled, the first."""
    out = []
    for c, row in enumerate(conversations):
        sources: tuple[str, ...] = ()
        score = 0.0
        for t, text in enumerate(row.turns):
            t0 = time.perf_counter()
            if method == "plain":
                hits: tuple[Hit, ...] = kb.search(text, k=k).hits
                followup = False
            else:
                query = ContextQuery(text, tuple(row.turns[:t]), sources, score)
                result = contextual_search(kb, query, k=k, config=config)
                hits, followup = result.hits, result.followup
            seconds = time.perf_counter() - t0
            top = hits[0] if hits else None
            if top is not None and top.score >= kb.config.draft_threshold:  # what the engine records as sources
                sources, score = tuple(h.entry.id for h in hits), top.score
            gold = row.faq_ids if t == len(row.turns) - 1 else row.first_faq_ids if t == 0 else ()
            out.append(TurnOutcome(c, t, gold, top.entry.id if top else None, top.score if top else 0.0, followup,
                                   seconds))  # fmt: skip
    return out


def _shares(outcomes: Sequence[TurnOutcome], kb: Any) -> dict[str, float | int]:
    n = len(outcomes)
    if not n:
        return {"n": 0}
    routes = [_route(o.score, kb) for o in outcomes]
    right = [o.top in o.gold for o in outcomes]
    return {
        "n": n,
        "top1_accuracy": sum(right) / n,
        "right_answered": sum(r and x == "answer" for r, x in zip(right, routes, strict=True)) / n,
        "right_not_handed_off": sum(r and x != "handoff" for r, x in zip(right, routes, strict=True)) / n,
        "answer_share": routes.count("answer") / n,
        "draft_share": routes.count("draft") / n,
        "handoff_share": routes.count("handoff") / n,
    }


def summarize(
    kb: Any, conversations: Sequence[ConversationRow], outcomes: Sequence[TurnOutcome]
) -> dict[str, dict[str, float | int]]:
    """Figures by kind of message: `followup` (last turns on the first turn's topic or with no labelled first turn),
    `topic_change` (last turns whose right entries differ from the first turn's), `last` (both), `first` (labelled
    first turns), `out_of_scope` (last turns no entry answers: `answer_share` should be 0), and `latency` (seconds
    per message, p50 / p95 / mean)."""
    groups: dict[str, list[TurnOutcome]] = {"followup": [], "topic_change": [], "last": [], "first": [], "oos": []}
    for o in outcomes:
        row = conversations[o.conversation]
        if o.turn == len(row.turns) - 1 and o.turn > 0:
            if not row.faq_ids:
                groups["oos"].append(o)
                continue
            groups["last"].append(o)
            change = bool(row.first_faq_ids) and not set(row.first_faq_ids) & set(row.faq_ids)
            groups["topic_change" if change else "followup"].append(o)
        if o.turn == 0 and row.first_faq_ids:
            groups["first"].append(o)
    report = {name: _shares(group, kb) for name, group in groups.items() if name != "oos"}
    report["out_of_scope"] = _shares(groups["oos"], kb)
    seconds = sorted(o.seconds for o in outcomes if o.turn > 0)
    if seconds:
        report["latency"] = {
            "n": len(seconds),
            "p50_s": statistics.median(seconds),
            "p95_s": seconds[min(len(seconds) - 1, int(0.95 * len(seconds)))],
            "mean_s": statistics.fmean(seconds),
        }
    return report


def compare(
    kb: Any, conversations: Sequence[ConversationRow], *, k: int = 3, config: FollowupConfig | None = None
) -> dict[str, dict]:
    """`{"plain": summary, "context": summary}` on the same knowledge base and conversations."""
    return {
        method: summarize(kb, conversations, replay(kb, conversations, method, k=k, config=config))
        for method in ("plain", "context")
    }
