"""Replaying real support conversations through the bot as if agents were reviewing its drafts.

A `ReplaySample` is one doc2dial agent turn: the conversation up to the customer's message and the reply the human
agent really sent. `replay` puts the earlier turns into the engine's store as they happened, asks the engine for
the customer's last message (with `[routing] mode = "draft_only"` every reply is a draft held for review) and
scores the draft against the agent's reply (`rouge_l`). `review` then acts as the agent: a draft close enough to
the agent's reply (`rouge_l >= threshold`) is approved unedited, any other is edited to the agent's reply, and a
handed-off message gets the agent's reply as an ordinary agent message. What the store holds afterwards is what
`chatbot export-reviews` and `training.grounded.review_examples` read.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chatbot.records import Turn
from knowledge_base.records import FaqEntry
from training.grounded import merge_turns

_TOKEN = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")
AGENT = "replay-agent"
"""The agent name the replayed reviews are recorded under."""


@dataclass(frozen=True)
class ReplaySample:
    """One agent turn of a real support conversation."""

    id: str
    dialogue: str
    """The conversation it belongs to; splits never share one."""
    history: tuple[Turn, ...]
    """The conversation so far, ending with the customer's message the agent answered."""
    agent_reply: str
    doc_id: str
    gold: str | None
    """The FAQ entry (document section) the agent's reply is grounded in, when the knowledge base has it."""


@dataclass(frozen=True)
class ReplayRecord:
    """What the bot did with one sample and how close it came to the agent."""

    sample_id: str
    conversation_id: str
    route: str
    draft: str | None
    """The held draft (route `draft`); None when the message was handed off."""
    draft_id: int | None
    top_faq_id: str | None
    rouge_l: float
    """ROUGE-L F1 of the draft against the agent's reply (0 without a draft)."""
    unsupported: tuple[str, ...]
    """Why claims of the draft are unsupported by its sources (`chatbot.claims`); empty when all hold."""
    fallback: bool

    def accepted(self, threshold: float) -> bool:
        """The agent would send this draft unedited: there is one and it is at least `threshold` close."""
        return self.draft is not None and self.rouge_l >= threshold

    def to_dict(self) -> dict[str, Any]:
        return {
            "sample_id": self.sample_id, "conversation_id": self.conversation_id, "route": self.route,
            "draft": self.draft, "draft_id": self.draft_id, "top_faq_id": self.top_faq_id, "rouge_l": self.rouge_l,
            "unsupported": list(self.unsupported), "fallback": self.fallback,
        }  # fmt: skip

    @classmethod
    def from_dict(cls, row: dict[str, Any]) -> ReplayRecord:
        """The record `to_dict` wrote."""
        return cls(row["sample_id"], row["conversation_id"], row["route"], row["draft"], row["draft_id"],
                   row["top_faq_id"], row["rouge_l"], tuple(row["unsupported"]), row["fallback"])  # fmt: skip


# -- the measure -----------------------------------------------------------------------------------------------------
def tokens(text: str) -> list[str]:
    """Lower-cased words and numbers of `text` (what ROUGE-L compares)."""
    return _TOKEN.findall(text.lower().replace("’", "'"))


def rouge_l(candidate: str, reference: str) -> float:
    """ROUGE-L F1: the longest common word subsequence of the two texts, as the harmonic mean of its share of
    each (0 when either has no word)."""
    a, b = tokens(candidate), tokens(reference)
    if not a or not b:
        return 0.0
    previous = [0] * (len(b) + 1)
    for x in a:
        row = [0]
        for j, y in enumerate(b):
            row.append(previous[j] + 1 if x == y else max(previous[j + 1], row[j]))
        previous = row
    lcs = previous[-1]
    if not lcs:
        return 0.0
    precision, recall = lcs / len(a), lcs / len(b)
    return 2 * precision * recall / (precision + recall)


# -- the data --------------------------------------------------------------------------------------------------------
def section_of(sections: Sequence[FaqEntry], doc_id: str, position: int) -> str | None:
    """The id of the section (`training.grounded.doc2dial_sections`, ids `DOC_ID@OFFSET`) of document `doc_id`
    that holds character `position`, or None when that document has no section there."""
    best: tuple[int, str] | None = None
    for entry in sections:
        doc, _, offset = entry.id.rpartition("@")
        if doc == doc_id and offset.isdigit() and int(offset) <= position and (best is None or int(offset) > best[0]):
            best = (int(offset), entry.id)
    return best[1] if best else None


def doc2dial_samples(
    turns_file: str | Path,
    sections: Sequence[FaqEntry],
    domains: Iterable[str] = ("studentaid",),
    *,
    max_history: int = 4,
    min_words: int = 5,
) -> list[ReplaySample]:
    """The agent turns of doc2dial dialogues in `domains` that answer: replies of at least `min_words` words that
    are not a question back (the bot answers from an FAQ; it does not ask for clarification), each with at most
    `max_history` turns of context and its grounding section among `sections` as `gold`."""
    wanted = set(domains)
    out = []
    with open(turns_file, encoding="utf-8") as handle:
        for line in handle:
            row = json.loads(line)
            reply = " ".join((row.get("agent_reply") or "").split())
            if row["domain"] not in wanted or reply.endswith("?") or len(reply.split()) < min_words:
                continue
            history = merge_turns(row["history"], end_with_user=False)
            while history and history[-1].role != "user":
                history.pop()
            if not history:
                continue
            history = history[-max_history:]
            while history[0].role != "user":
                history = history[1:]
            gold = section_of(sections, row["doc_id"], row["grounding"].get("answer_start", 0))
            out.append(ReplaySample(row["id"], row["dial_id"], tuple(history), reply, row["doc_id"], gold))
    return out


def _rank(key: str, seed: int) -> str:
    return hashlib.sha256(f"{seed}:{key}".encode()).hexdigest()


def split_samples(samples: Sequence[ReplaySample], sizes: Sequence[int], seed: int = 0, *, all_turns: bool = False
                  ) -> list[list[ReplaySample]]:  # fmt: skip
    """Disjoint parts of `sizes` dialogues each, no dialogue in two parts, dialogues in a seeded order; of each
    dialogue every sample (`all_turns`, in turn order) or one (a seeded choice). Raises `ValueError` when there are
    fewer dialogues than the sizes add up to."""
    by_dialogue: dict[str, list[ReplaySample]] = {}
    for s in samples:
        by_dialogue.setdefault(s.dialogue, []).append(s)
    order = sorted(by_dialogue, key=lambda d: _rank(d, seed))
    if len(order) < sum(sizes):
        raise ValueError(
            f"{len(order)} dialogues, {sum(sizes)} asked for ({' + '.join(map(str, sizes))}): ask for smaller "
            "batches (--batch-size, --tune-size)"
        )
    rng = random.Random(seed)
    parts, start = [], 0
    for size in sizes:
        chosen = order[start : start + size]
        if all_turns:
            parts.append([s for d in chosen for s in by_dialogue[d]])
        else:
            parts.append([rng.choice(by_dialogue[d]) for d in chosen])
        start += size
    return parts


# -- replay and review -----------------------------------------------------------------------------------------------
def replay_one(engine: Any, sample: ReplaySample) -> ReplayRecord:
    """Replay `sample` in a fresh conversation of `engine`: the earlier turns stored as sent, then the customer's
    message answered; the draft scored against the agent's reply and its claims checked against its sources."""
    from chatbot.claims import Evidence, check_reply

    store = engine.store
    conversation_id = engine.start_conversation("replay")
    for turn in sample.history[:-1]:
        store.add_message(conversation_id, "user" if turn.role == "user" else "bot", turn.content, route="answer")
    reply = engine.reply(conversation_id, sample.history[-1].content)
    draft = reply.draft_text if reply.route == "draft" and reply.draft_text else None
    unsupported: tuple[str, ...] = ()
    if draft is not None and reply.sources:
        evidence = Evidence(
            sources=tuple(t for h in reply.sources for t in (h.entry.answer, h.entry.question)),
            customer=tuple(t.content for t in sample.history if t.role == "user"),
            earlier=tuple(t.content for t in sample.history if t.role == "assistant"),
        )
        unsupported = tuple(c.reason or c.text for c in check_reply(draft, evidence).failures)
    return ReplayRecord(
        sample_id=sample.id,
        conversation_id=conversation_id,
        route=reply.route,
        draft=draft,
        draft_id=reply.draft_id,
        top_faq_id=reply.sources[0].entry.id if reply.sources else None,
        rouge_l=rouge_l(draft, sample.agent_reply) if draft is not None else 0.0,
        unsupported=unsupported,
        fallback=bool(reply.fallback),
    )


def replay(engine: Any, samples: Sequence[ReplaySample], *, desc: str = "replay", progress: bool = False
           ) -> list[ReplayRecord]:  # fmt: skip
    """`replay_one` for every sample, with a progress bar."""
    from tqdm import tqdm

    return [replay_one(engine, s) for s in tqdm(samples, desc=desc, unit="msg", disable=not progress, leave=False)]


def review(store: Any, records: Sequence[ReplayRecord], samples: Sequence[ReplaySample], threshold: float
           ) -> list[str]:  # fmt: skip
    """Act as the agent on each replayed message; returns each one's outcome (`approved`, `edited`, `handoff`): a
    draft `threshold` close to the agent's reply is approved unedited, any other edited to the agent's reply, and a
    handed-off message gets the agent's reply as an agent message."""
    by_id = {s.id: s for s in samples}
    outcomes = []
    for record in records:
        sample = by_id[record.sample_id]
        if record.draft_id is None:
            store.agent_reply(record.conversation_id, AGENT, sample.agent_reply)
            outcomes.append("handoff")
        elif record.accepted(threshold):
            store.approve_draft(record.draft_id, AGENT)
            outcomes.append("approved")
        else:
            store.approve_draft(record.draft_id, AGENT, text=sample.agent_reply)
            outcomes.append("edited")
    return outcomes
