"""Typed records of the dialogue engine: conversation turns and replies (frozen dataclasses)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from knowledge_base.records import Hit

Route = Literal["answer", "draft", "handoff"]
Role = Literal["user", "assistant", "system"]


@dataclass(frozen=True)
class Turn:
    """One turn of a conversation as the prompt sees it: `user` (customer) or `assistant` (bot or agent)."""

    role: Role
    content: str

    def __post_init__(self) -> None:
        if self.role not in ("user", "assistant", "system"):
            raise ValueError(f"Turn.role must be user, assistant or system, got {self.role!r}")


@dataclass(frozen=True)
class Reply:
    """What the engine answered to one customer message, as recorded in the store.

    For the `draft` route `text` is the notice the customer saw and `draft_text` the held draft; for `handoff`
    `text` is the handoff notice.
    """

    text: str
    route: Route
    grounded: bool
    """True when the text rests on the sources: a generated reply that passed the grounding check, or an FAQ
    answer sent verbatim. False for notices and for replies that were not checked."""
    language: str
    sources: tuple[Hit, ...] = ()
    index_version: str = ""
    adapter: str | None = None
    timings: dict[str, float] = field(default_factory=dict)
    """Seconds: `language`, `retrieve`, `ttft` (first piece shown), `generate`, `total`."""
    conversation_id: str = ""
    message_id: int | None = None
    draft_id: int | None = None
    fallback: bool = False
    """True when the generated text failed the claim check and the part of the sources that answers the question
    was sent instead."""
    reason: str = ""
    """Why the route was taken (`score 0.71 >= answer_threshold 0.6`, `customer asked for a person`, ...)."""
    draft_text: str | None = None
    cancelled: bool = False
    rejected: str | None = None
    """The generated text that failed the claim check (stored beside the message), or None."""
    rejection: str = ""
    """Why `rejected` failed, in words ("names 'British money transfer', which no source mentions")."""
    followup: bool = False
    """The message was read with the conversation's earlier turns (a follow-up)."""

    def to_json(self) -> dict[str, Any]:
        """The reply's JSON form (DESIGN.md's keys), which the API's `chatbot` object carries and `ask --json`
        prints (with `reply`, the held draft for a draft); `text` is what the customer saw, never an unsent draft."""
        return {
            "route": self.route,
            "grounded": self.grounded,
            "language": self.language,
            "sources": [
                {"faq_id": h.entry.id, "question": h.entry.question, "score": round(h.score, 4)} for h in self.sources
            ],  # fmt: skip
            "index_version": self.index_version,
            "adapter": self.adapter,
            "timings": self.timings,
            "conversation_id": self.conversation_id,
            "message_id": self.message_id,
            "fallback": self.fallback,
            "text": self.text,
        }
