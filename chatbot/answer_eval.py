"""End-to-end answer evaluation: labelled queries and multi-turn conversations through the real engine.

Every query is a fresh conversation; every conversation is replayed turn by turn, so retrieval, routing,
generation and the engine's checks all run as they do for a customer. Each answer and draft is then checked claim
by claim (`chatbot.claims.check_reply`) against its sources and the customer's messages.

Labelled messages are every query, each conversation's last turn, and its first turn when the row names a
`first_faq_id`; the other turns of a conversation are replayed (and their replies kept for reading) unlabelled.
A reply is *right* when its top source is one of the message's right entries.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from knowledge_base.loaders import QueryRow

ROUTES = ("answer", "draft", "handoff")


class ConversationLike(Protocol):
    """A labelled conversation (`knowledge_base.loaders.ConversationRow`)."""

    turns: tuple[str, ...]
    faq_ids: tuple[str, ...]
    first_faq_ids: tuple[str, ...]


@dataclass(frozen=True)
class ReplyRecord:
    """One reply of the evaluation, for reading and for the figures."""

    kind: str
    """`query` or `conversation`."""
    item: int
    """Index of the query or conversation in its input."""
    turn: int
    """Turn number in the conversation (0 for a query)."""
    turns: tuple[str, ...]
    """The customer's messages so far, this one last."""
    route: str
    text: str
    """What the reply says: the sent answer, the held draft (route `draft`), or the handoff notice."""
    top_faq_id: str | None
    score: float | None
    gold: tuple[str, ...] | None
    """The right entries; `()` = out of scope; None = an unlabelled middle turn."""
    role: str
    """`first` (a first message), `followup` (a conversation's last turn) or `middle`."""
    fallback: bool
    composed: bool
    """An answer that is not one source's whole FAQ answer verbatim."""
    claim_failures: tuple[str, ...]
    """Why claims of `text` are unsupported (answers and drafts only); empty when every claim holds."""
    latency_s: float
    reason: str = ""
    rejected: str | None = None
    """The generated text the engine rejected, when it did."""
    rejection: str = ""

    @property
    def labelled(self) -> bool:
        return self.gold is not None

    @property
    def in_scope(self) -> bool:
        return bool(self.gold)

    @property
    def right(self) -> bool | None:
        """The top source is a right entry (None for unlabelled and out-of-scope messages)."""
        if not self.gold:
            return None
        return self.top_faq_id in self.gold

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind, "item": self.item, "turn": self.turn}
        out["query" if self.kind == "query" else "turns"] = self.turns[0] if self.kind == "query" else list(self.turns)
        out.update(
            route=self.route, text=self.text, top_faq_id=self.top_faq_id, score=self.score,
            gold=None if self.gold is None else list(self.gold), right=self.right, role=self.role,
            fallback=self.fallback, composed=self.composed, claim_failures=list(self.claim_failures),
            latency_s=round(self.latency_s, 4), reason=self.reason, rejected=self.rejected, rejection=self.rejection,
        )  # fmt: skip
        return out


def _share(numerator: int, denominator: int) -> float | None:
    return round(numerator / denominator, 4) if denominator else None


def _percentile(values: Sequence[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return round(ordered[index], 4)


@dataclass(frozen=True)
class AnswerReport:
    """The replies of one evaluation; `to_dict()` gives the figures."""

    n_queries: int
    n_conversations: int
    replies: tuple[ReplyRecord, ...] = field(default=())

    def to_dict(self, with_replies: bool = False) -> dict[str, Any]:
        """The figures (shares in [0, 1]; None where nothing was there to count):

        `routes` (share of every reply per route), `answered_accuracy` (right among answered in-scope labelled
        messages), `answered_share` (in-scope labelled messages answered), `oos_answered` (out-of-scope ones
        answered), `composed_share` (answers that are not a source's whole answer), `unsupported_share` (answers and
        drafts with an unsupported claim), `fallback_share` (answers and drafts whose generated text the engine
        replaced), `followup_accuracy` (in-scope last turns of conversations not handed off and right),
        `first_turn_accuracy` (the same over in-scope first messages: queries and labelled first turns),
        `latency_s_p50`, `latency_s_p95` (seconds per reply). With `with_replies`, `replies` too.
        """
        replies = self.replies
        labelled = [r for r in replies if r.labelled]
        in_scope = [r for r in labelled if r.in_scope]
        answered = [r for r in in_scope if r.route == "answer"]
        oos = [r for r in labelled if not r.in_scope]
        answers = [r for r in replies if r.route == "answer" and r.top_faq_id is not None]
        written = [r for r in replies if r.route in ("answer", "draft") and r.top_faq_id is not None]
        followups = [r for r in in_scope if r.role == "followup"]
        firsts = [r for r in in_scope if r.role == "first"]

        def kept_and_right(rows: list[ReplyRecord]) -> float | None:
            return _share(sum(r.route != "handoff" and bool(r.right) for r in rows), len(rows))

        latencies = [r.latency_s for r in replies]
        out: dict[str, Any] = {
            "n_queries": self.n_queries,
            "n_conversations": self.n_conversations,
            "n_replies": len(replies),
            "routes": {route: _share(sum(r.route == route for r in replies), len(replies)) for route in ROUTES},
            "answered_accuracy": _share(sum(bool(r.right) for r in answered), len(answered)),
            "answered_share": _share(len(answered), len(in_scope)),
            "oos_answered": _share(sum(r.route == "answer" for r in oos), len(oos)),
            "composed_share": _share(sum(r.composed for r in answers), len(answers)),
            "unsupported_share": _share(sum(bool(r.claim_failures) for r in written), len(written)),
            "fallback_share": _share(sum(r.fallback for r in written), len(written)),
            "followup_accuracy": kept_and_right(followups),
            "first_turn_accuracy": kept_and_right(firsts),
            "latency_s_p50": _percentile(latencies, 0.5),
            "latency_s_p95": _percentile(latencies, 0.95),
        }
        if with_replies:
            out["replies"] = [r.to_dict() for r in replies]
        return out


def _written_text(reply: Any) -> str:
    return reply.draft_text if reply.route == "draft" and reply.draft_text else reply.text


def _record(kind: str, item: int, turn: int, turns: tuple[str, ...], earlier: tuple[str, ...], reply: Any,
            gold: tuple[str, ...] | None, role: str, latency: float) -> ReplyRecord:  # fmt: skip
    from chatbot.claims import Evidence, check_reply

    text = _written_text(reply)
    top = reply.sources[0] if reply.sources else None
    failures: tuple[str, ...] = ()
    if reply.route in ("answer", "draft") and reply.sources:
        evidence = Evidence(
            sources=tuple(t for h in reply.sources for t in (h.entry.question, h.entry.answer)),  # as the engine
            customer=turns,
            earlier=earlier,
        )
        failures = tuple(c.reason or c.text for c in check_reply(text, evidence).failures)
    whole = {h.entry.answer.strip() for h in reply.sources}
    return ReplyRecord(
        kind=kind, item=item, turn=turn, turns=turns, route=reply.route, text=text,
        top_faq_id=top.entry.id if top else None, score=round(top.score, 4) if top else None, gold=gold, role=role,
        fallback=bool(reply.fallback), composed=reply.route == "answer" and bool(whole) and text.strip() not in whole,
        claim_failures=failures, latency_s=latency, reason=reply.reason,
        rejected=reply.rejected, rejection=reply.rejection,
    )  # fmt: skip


def _timed_reply(engine: Any, conversation_id: str, text: str) -> tuple[Any, float]:
    start = time.perf_counter()
    reply = engine.reply(conversation_id, text)
    return reply, time.perf_counter() - start


def evaluate_answers(engine: Any, queries: Sequence[QueryRow], conversations: Sequence[ConversationLike] = (), *,
                     progress: bool = False) -> AnswerReport:  # fmt: skip
    """Run every query as a fresh conversation and every conversation turn by turn through `engine` (warmed up;
    its store records them as any conversation), check every answer's claims, and report. One pass, one model."""
    from tqdm import tqdm

    total = len(queries) + sum(len(c.turns) for c in conversations)
    bar = tqdm(total=total, desc="eval answers", unit="msg", disable=not progress, leave=False)
    records: list[ReplyRecord] = []
    try:
        for i, row in enumerate(queries):
            reply, latency = _timed_reply(engine, engine.start_conversation("eval"), row.query)
            gold = (row.faq_id,) if row.faq_id else ()
            records.append(_record("query", i, 0, (row.query,), (), reply, gold, "first", latency))
            bar.update()
        for i, conversation in enumerate(conversations):
            conversation_id = engine.start_conversation("eval")
            earlier: list[str] = []
            last = len(conversation.turns) - 1
            for t, message in enumerate(conversation.turns):
                reply, latency = _timed_reply(engine, conversation_id, message)
                if t == last:  # a one-turn conversation's only message is a first message
                    gold, role = tuple(conversation.faq_ids), "followup" if t else "first"
                elif t == 0:
                    gold, role = tuple(conversation.first_faq_ids) or None, "first"
                else:
                    gold, role = None, "middle"
                records.append(_record("conversation", i, t, tuple(conversation.turns[: t + 1]), tuple(earlier),
                                       reply, gold, role, latency))  # fmt: skip
                if reply.route == "answer":
                    earlier.append(reply.text)
                bar.update()
    finally:
        bar.close()
    return AnswerReport(len(queries), len(conversations), tuple(records))


def spread(rows: Sequence[Any], limit: int) -> list[Any]:
    """At most `limit` rows spread evenly over `rows` (files are often grouped by entry); 0 = all."""
    if not limit or limit >= len(rows):
        return list(rows)
    return [rows[i * len(rows) // limit] for i in range(limit)]
