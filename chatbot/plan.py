"""What the engine does with one customer message, decided before anything is generated or stored.

`make_plan` is pure: it takes the message, its language, the conversation so far and the retrieval result, and
returns a `Plan` with one of three actions:

- `silent`: a person handles the conversation: the message goes to them, the bot neither answers nor drafts;
- `notice`: a fixed text at once (handoff, a reply to a greeting or thanks, refusal of a prompt injection);
- `verbatim`: an FAQ answer as written (a language the model does not write);
- `generate`: the model writes the reply from the sources, through the claim check (`chatbot/stream.py`); for the
  `draft` route the customer gets the hold notice first and the generated text waits for an agent.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from chatbot.config import AppConfig
from chatbot.language import model_speaks
from chatbot.notices import handoff_notice, notice
from chatbot.records import Route, Turn
from chatbot.routing import decide_route, looks_like_injection, small_talk

Action = Literal["silent", "notice", "verbatim", "generate"]

FACT_SOURCE_RATIO = 0.8
"""A reply may rest only on sources scoring at least this share of the top source's score (not a weak third hit)."""


@dataclass(frozen=True)
class Plan:
    """The decision for one message. `hits` are the sources recorded with the reply (and put in the prompt)."""

    text: str
    """The customer's message."""
    language: str
    route: Route
    reason: str
    action: Action
    hits: tuple = ()
    """`knowledge_base.records.Hit`s, best first."""
    index_version: str = ""
    history: tuple[Turn, ...] = ()
    """The conversation so far, ending with the customer's message (what the prompt sees)."""
    shown_first: str = ""
    """Text the customer sees at once: the hold notice of a draft, a handoff notice, a refusal."""
    verbatim: str = ""
    """The FAQ answer sent (or drafted) as written, for action `verbatim`."""
    followup: bool = False
    """The message was read with the conversation's earlier turns (a follow-up)."""
    asked_for_human: bool = False
    passages: tuple = ()
    """`hits` as the prompt sees them: a long answer cut to its passage about the question (`extract.focus_hits`);
    empty = `hits` as they are."""

    @property
    def prompt_hits(self) -> tuple:
        return self.passages or self.hits

    @property
    def evidence_hits(self) -> tuple:
        """The sources a generated reply may rest on: those within `FACT_SOURCE_RATIO` of the top score."""
        hits = self.prompt_hits
        if not hits:
            return ()
        floor = FACT_SOURCE_RATIO * hits[0].score
        return tuple(h for h in hits if h.score >= floor) or hits[:1]


def make_plan(
    config: AppConfig,
    text: str,
    language: str,
    hits: tuple,
    index_version: str,
    history: tuple[Turn, ...],
    *,
    asked_for_human: bool,
    dictated: bool,
    followup: bool = False,
    with_person: bool = False,
) -> Plan:
    """The plan for `text` (see the module docstring). `dictated`: the customer tells the bot what to say, so an
    agent confirms the reply (a customer's words never become the shop's policy). `with_person`: the conversation
    is handed to people, who answer it; the bot stays silent."""
    if with_person:
        return Plan(text=text, language=language, route="handoff", action="silent", index_version=index_version,
                    reason="a person handles this conversation: the bot stays silent", history=history)  # fmt: skip
    decision = decide_route(hits, config.kb, config.routing, asked_for_human)
    route, reason = decision.route, decision.reason
    sources = hits[: config.prompt.max_sources]
    if route == "handoff" and (asked_for_human or (hits and hits[0].score < config.kb.draft_threshold)):
        sources = ()  # nothing good was found (the admin page's "unanswered questions"), or the customer asked
    common = {"text": text, "language": language, "index_version": index_version, "history": history,
              "followup": followup, "asked_for_human": asked_for_human}  # fmt: skip
    chat = small_talk(text) if config.routing.mode != "off" and not asked_for_human else None
    if chat:  # "hi", "thanks!": answered politely, never handed off for a missing source
        return Plan(route="answer", reason=f"small talk ({chat})", action="notice", shown_first=notice(chat, language),
                    **common)  # fmt: skip
    if route != "handoff" and looks_like_injection(text):
        refusal = notice("refuse", language, config.prompt.company)
        return Plan(route="answer", reason="prompt injection refused", action="notice", hits=sources,
                    shown_first=refusal, **common)  # fmt: skip
    if route != "handoff" and not model_speaks(language, config.language):
        same = [h for h in hits if h.entry.language == language]
        if same and same[0].score >= config.kb.draft_threshold:  # the FAQ's own answer in that language
            ordered = (same[0], *[h for h in sources if h is not same[0]])[: config.prompt.max_sources]
            reason += f"; {language} is not a model language: FAQ answer sent as is"
            return Plan(route=route, reason=reason, action="verbatim", hits=ordered, verbatim=same[0].entry.answer,
                        shown_first=notice("hold", language) if route == "draft" else "", **common)  # fmt: skip
        route, reason = "handoff", f"{language} is not a model language and no FAQ answer is in it"
    if route == "answer" and dictated:
        route, reason = "draft", f"the customer tells the bot what to say: an agent confirms ({reason})"
    if route == "handoff":
        return Plan(route=route, reason=reason, action="notice", hits=sources,
                    shown_first=handoff_notice(language, config.desk.hours), **common)  # fmt: skip
    return Plan(route=route, reason=reason, action="generate", hits=sources,
                shown_first=notice("hold", language) if route == "draft" else "", **common)  # fmt: skip
