"""The reply stream: carries out a `Plan`, checks every sentence before the customer sees it, and finishes itself by
recording the exchange in one transaction.

Generated text goes out one whole sentence at a time, each one checked against the sources first
(`chatbot/claims.py`); nothing unchecked reaches the client. When a sentence fails (or the model errs, repeats the
system prompt, or says nothing), generation stops and the customer gets the part of the sources that answers the
question (`chatbot/extract.py`) instead; the rejected text is stored beside the message with the reason. The UI
replaces what was shown with `stream.reply.text` when they differ.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from chatbot.claims import ClaimGate, Evidence
from chatbot.extract import extract_answer
from chatbot.generate import GenerationError, GenerationRequest
from chatbot.plan import Plan
from chatbot.prompt import build_messages, system_prompt
from chatbot.records import Reply
from chatbot.redact import shop_values
from chatbot.routing import leaks_prompt
from chatbot.store import ConversationClosedError

if TYPE_CHECKING:
    from chatbot.engine import Engine

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Outcome:
    """What generation through the checks produced."""

    text: str
    grounded: bool
    fallback: bool = False
    cancelled: bool = False
    rejected: str | None = None
    """The generated text that failed a check (None when it passed)."""
    rejection: str = ""


class ReplyStream:
    """Text pieces of one reply. Iterate once; then `.reply` is the recorded `Reply`.

    Stopping early (`close()`, or the `cancel` event) cancels generation; what was shown so far is recorded as a
    cancelled reply.
    """

    def __init__(self, engine: Engine, conversation: Any, plan: Plan, cancel: threading.Event,
                 timings: dict[str, float], started: float):  # fmt: skip
        self._engine = engine
        self._conversation = conversation
        self.plan = plan
        self.cancel = cancel
        self.conversation_id = conversation.id
        self._timings = timings
        self._started = started
        self._pieces = self._run()
        self._reply: Reply | None = None

    def __iter__(self) -> Iterator[str]:
        return self

    def __next__(self) -> str:
        return next(self._pieces)

    def close(self) -> None:
        """Stop generating (the customer pressed stop or left)."""
        self.cancel.set()
        for _ in self._pieces:  # drain: the stream records what was shown and finishes cleanly
            pass

    @property
    def reply(self) -> Reply:
        if self._reply is None:
            raise RuntimeError("the stream is not finished: iterate it to the end (or close() it) first")
        return self._reply

    @property
    def done(self) -> bool:
        return self._reply is not None

    # -- carrying out the plan ----------------------------------------------------------------------------------
    def _run(self) -> Iterator[str]:
        plan = self.plan
        if plan.shown_first:
            yield plan.shown_first
        outcome = None
        if plan.action == "verbatim":
            outcome = Outcome(plan.verbatim, grounded=True)
            if plan.route == "answer":
                yield plan.verbatim
        elif plan.action == "generate":
            outcome = yield from self._generate(stream_out=plan.route == "answer")
        self._timings["total"] = time.perf_counter() - self._started
        self._finish(outcome)

    def _evidence(self) -> Evidence:
        plan = self.plan
        sources = [t for h in plan.evidence_hits for t in (h.entry.question, h.entry.answer)]
        earlier = plan.history[:-1]
        return Evidence(
            sources=tuple(sources),
            customer=tuple(t.content for t in plan.history if t.role == "user"),
            earlier=tuple(t.content for t in earlier if t.role == "assistant"),
        )

    def _fallback(self, rejected: str | None, why: str) -> Outcome:
        """The part of the sources that answers the question, in their own words."""
        plan = self.plan
        earlier = tuple(t.content for t in plan.history[:-1] if t.role == "user")
        extract = extract_answer(plan.text, plan.evidence_hits, context=earlier, encode=self._engine.embedder.encode)
        log.info("generated reply replaced by the sources' words: %s", why)
        return Outcome(extract.text, grounded=True, fallback=True, rejected=rejected or None, rejection=why)

    def _generate(self, stream_out: bool):
        """Generate through the claim gate; yields checked sentences when `stream_out`. Returns an `Outcome`."""
        engine, plan, timings = self._engine, self.plan, self._timings
        cfg = engine.config
        messages = build_messages(cfg.prompt, plan.prompt_hits, plan.history, plan.language)
        request = GenerationRequest(messages, cfg.generation, cfg.prompt.max_prompt_tokens)
        checking = cfg.routing.grounding
        gate = ClaimGate(self._evidence()) if checking else None
        shown: list[str] = []
        failure = ""
        finish_reason = ""
        start = time.perf_counter()
        check_s = 0.0
        try:
            pieces = engine.backend.stream(request, self.cancel)
            for piece in pieces:
                if gate is not None:
                    t = time.perf_counter()
                    released = gate.feed(piece)
                    check_s += time.perf_counter() - t
                else:
                    released = piece
                if gate is not None and gate.failed:
                    failure = gate.failure.reason if gate.failure else "a sentence failed the claim check"
                    close = getattr(pieces, "close", None)
                    if close:
                        close()
                    break
                if released:
                    timings.setdefault("ttft", time.perf_counter() - start)
                    shown.append(released)
                    if stream_out:
                        yield released
                if self.cancel.is_set():
                    break
            finish_reason = getattr(pieces, "finish_reason", "") or ""
        except GenerationError as exc:
            log.warning("generation failed, answering from the sources: %s", exc)
            failure = f"generation failed: {exc}"
        if self.cancel.is_set() and not failure:
            timings["generate"] = time.perf_counter() - start
            return Outcome("".join(shown).strip(), grounded=False, cancelled=True)
        if gate is not None and not failure:
            t = time.perf_counter()
            tail = gate.finish(complete=finish_reason != "length")
            check_s += time.perf_counter() - t
            if gate.failed:
                failure = gate.failure.reason if gate.failure else "a sentence failed the claim check"
            elif tail:
                shown.append(tail)
                if stream_out:
                    yield tail
        timings["generate"] = time.perf_counter() - start
        timings["check"] = check_s
        generated = gate.text.strip() if gate is not None else "".join(shown).strip()
        text = "".join(shown).strip()
        if not failure and not text:
            failure = "cut off mid-sentence" if gate is not None and gate.cut_off else "empty reply"
        if not failure and leaks_prompt(text, system_prompt(cfg.prompt, plan.language)):
            failure = "the reply repeats the system prompt"
        if failure:
            if not plan.hits:
                return Outcome(text, grounded=False, rejected=generated or None, rejection=failure)
            outcome = self._fallback(generated, failure)
            if stream_out and not shown:  # nothing streamed yet: the sources' words are the stream (pages re-render)
                yield outcome.text
            return outcome
        if gate is not None and gate.cut_off:
            return Outcome(text, grounded=True, rejected=generated,
                           rejection="cut off mid-sentence: the unfinished sentence was dropped")  # fmt: skip
        return Outcome(text, grounded=checking)

    # -- finishing: one record ----------------------------------------------------------------------------------
    def _finish(self, outcome: Outcome | None) -> None:
        engine, plan, conversation = self._engine, self.plan, self._conversation
        adapter = getattr(engine.backend, "adapter", None)
        sources = plan.hits
        draft_text = None
        if plan.action == "silent":
            text = None
        elif plan.route == "answer":
            text = outcome.text if outcome is not None else plan.shown_first
        else:
            text = plan.shown_first
            draft_text = outcome.text if outcome is not None else None
        grounded = bool(outcome and outcome.grounded and sources)
        cancelled = bool(outcome and outcome.cancelled)
        timings = {k: round(v, 4) for k, v in self._timings.items()}
        keep = shop_values(h.entry.answer for h in sources)  # redaction masks the customer's data, not the shop's
        reply_fields = {
            "kind": "reply" if plan.route == "answer" else "notice", "route": plan.route, "grounded": grounded,
            "fallback": bool(outcome and outcome.fallback), "language": plan.language,
            "faq_ids": [h.entry.id for h in sources], "scores": [round(h.score, 4) for h in sources],
            "index_version": plan.index_version, "adapter": adapter, "timings": timings,
            "status": "cancelled" if cancelled else "sent",
            "rejected_text": outcome.rejected if outcome else None,
            "rejection": (outcome.rejection or None) if outcome and outcome.rejected else None, "keep": keep,
        }  # fmt: skip
        draft = None
        if draft_text is not None:
            draft = {
                "text": draft_text, "language": plan.language, "grounded": grounded, "keep": keep,
                "index_version": plan.index_version, "adapter": adapter, "sources": [
                    {"faq_id": h.entry.id, "question": h.entry.question, "answer": h.entry.answer,
                     "score": round(h.score, 4)} for h in sources],
            }  # fmt: skip
        reason = plan.reason
        if conversation.language != plan.language:
            engine.store.set_language(conversation.id, plan.language)
        try:
            _, message_id, draft_id = engine.store.record_exchange(
                conversation.id, plan.text, {"language": plan.language}, text, reply_fields, draft=draft,
                handoff_reason=reason if plan.route == "handoff" and plan.action != "silent" else None,
            )  # fmt: skip
        except ConversationClosedError:
            message_id, draft_id = None, None
            reason += "; the conversation was closed meanwhile, nothing recorded"
        self._reply = Reply(
            text=text or "", route=plan.route, grounded=grounded, language=plan.language, sources=tuple(sources),
            index_version=plan.index_version, adapter=adapter, timings=timings, conversation_id=conversation.id,
            message_id=message_id, draft_id=draft_id, fallback=reply_fields["fallback"], reason=reason,
            draft_text=draft_text, cancelled=cancelled, rejected=reply_fields["rejected_text"],
            rejection=reply_fields["rejection"] or "", followup=plan.followup,
        )  # fmt: skip
