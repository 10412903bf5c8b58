"""The conversation engine: a customer's message in, a grounded reply out, everything recorded.

guard -> language -> retrieve -> route -> generate (through the grounding gate) -> record -> stream. See
DESIGN.md. `Engine.stream()` returns a `ReplyStream`: iterate it for the text pieces the customer may see; after
it is exhausted `stream.reply` holds the recorded `Reply`, whose text can differ from the joined pieces when the
generated text failed the grounding check and the top source's answer replaced it (the UI then replaces the
shown text).
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Iterator
from typing import Any

from chatbot.config import AppConfig
from chatbot.generate import GenerationError, GenerationRequest
from chatbot.language import detect, model_speaks
from chatbot.prompt import build_messages, system_prompt
from chatbot.records import Reply, Turn
from chatbot.routing import (
    FactGate,
    asks_for_human,
    check_grounding,
    decide_route,
    leaks_prompt,
    looks_like_injection,
    supported_facts,
)
from chatbot.store import ConversationClosedError, NotFoundError, Store
from knowledge_base.records import Hit

log = logging.getLogger(__name__)
_SENTENCE_END = re.compile(r"[.!?。！？]\s|\n")
FACT_SOURCE_RATIO = 0.8
"""Facts in a reply must come from sources scoring at least this share of the top source's score."""
DRIFT_MIN_WORDS = 8
"""The drift check runs at sentence ends once the reply has this many words (a short "Sure." says nothing)."""

NOTICES = {
    "hold": {
        "en": "Thanks! A member of our team will confirm the answer shortly.",
        "es": "¡Gracias! Una persona de nuestro equipo confirmará la respuesta en breve.",
        "fr": "Merci ! Une personne de notre équipe va confirmer la réponse sous peu.",
        "de": "Danke! Jemand aus unserem Team bestätigt die Antwort in Kürze.",
    },
    "handoff": {
        "en": "I'm passing your question to a colleague; a person will reply here shortly.",
        "es": "Paso tu pregunta a un compañero; una persona te responderá aquí en breve.",
        "fr": "Je transmets votre question à un collègue ; une personne vous répondra ici sous peu.",
        "de": "Ich gebe Ihre Frage an einen Kollegen weiter; eine Person antwortet Ihnen hier in Kürze.",
    },
    "refuse": {
        "en": "I can only help with questions about {company}'s products, orders and services.",
    },
}


def notice(kind: str, language: str, company: str = "") -> str:
    """A fixed customer notice in `language` (English when there is no translation)."""
    table = NOTICES[kind]
    return table.get(language, table["en"]).format(company=company)


class InputError(ValueError):
    """A message the engine refuses (empty, too long, binary, invalid UTF-8, unknown or closed conversation).

    `code` is one of `empty`, `too_long`, `binary`, `encoding`, `unknown_conversation`, `closed_conversation`.
    Nothing is stored for a refused message.
    """

    def __init__(self, message: str, code: str):
        super().__init__(message)
        self.code = code


class EngineNotReadyError(RuntimeError):
    """The engine was used before `warm_up()`."""


def validate_text(text: str | bytes, max_chars: int = 4000, max_bytes: int = 16000) -> str:
    """The customer's message as clean text, or `InputError` saying what is wrong with it."""
    if isinstance(text, bytes | bytearray):
        try:
            text = bytes(text).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InputError(f"the message is not valid UTF-8 (byte {exc.start}); send text", "encoding") from None
    if not isinstance(text, str):
        raise InputError(f"the message must be text, got {type(text).__name__}", "binary")
    try:
        size = len(text.encode("utf-8"))
    except UnicodeEncodeError:
        raise InputError("the message contains invalid characters (unpaired surrogates); send UTF-8 text",
                         "encoding") from None  # fmt: skip
    controls = sum(1 for ch in text if ord(ch) < 32 and ch not in "\n\r\t")
    if "\x00" in text or "\ufffd" in text or controls > max(2, len(text) // 20):
        raise InputError("the message looks like binary data, not text", "binary")
    if not text.strip():
        raise InputError("the message is empty; type a question", "empty")
    if len(text) > max_chars or size > max_bytes:
        raise InputError(f"the message is too long ({len(text)} characters; at most {max_chars}); shorten it",
                         "too_long")  # fmt: skip
    return text.strip()


class ReplyStream:
    """Text pieces of one reply. Iterate once; then `.reply` is the recorded `Reply`.

    Stopping early (`close()`, or the `cancel` event) cancels generation; what was shown so far is recorded as a
    cancelled reply.
    """

    def __init__(self, pieces: Iterator[str], cancel: threading.Event, conversation_id: str):
        self._pieces = pieces
        self._reply: Reply | None = None
        self.cancel = cancel
        self.conversation_id = conversation_id

    def __iter__(self) -> Iterator[str]:
        return self

    def __next__(self) -> str:
        return next(self._pieces)

    def close(self) -> None:
        """Stop generating (the customer pressed stop or left)."""
        self.cancel.set()
        for _ in self._pieces:  # drain: the engine records what was shown and finishes cleanly
            pass

    @property
    def reply(self) -> Reply:
        if self._reply is None:
            raise RuntimeError("the stream is not finished: iterate it to the end (or close() it) first")
        return self._reply

    @property
    def done(self) -> bool:
        return self._reply is not None


class Engine:
    """The dialogue engine. `from_config` is cheap; `warm_up()` loads the model, the KB and the store."""

    def __init__(self, config: AppConfig, kb: Any = None, embedder: Any = None, backend: Any = None,
                 store: Store | None = None):  # fmt: skip
        self.config = config
        self.kb = kb
        self.embedder = embedder
        self.backend = backend
        self.store = store or Store(config.store)
        self._ready = False
        self._warm_lock = threading.Lock()

    @classmethod
    def from_config(cls, config: AppConfig, *, kb: Any = None, embedder: Any = None, backend: Any = None,
                    store: Store | None = None) -> Engine:  # fmt: skip
        """An engine over `config`; pass `kb`, `embedder`, `backend` or `store` to use your own. Loads nothing."""
        return cls(config, kb=kb, embedder=embedder, backend=backend, store=store)

    # -- lifecycle ----------------------------------------------------------------------------------------------
    def warm_up(self) -> Engine:
        """Open the store, load the knowledge base (building the demo FAQ when it has no version yet) and the
        model. Idempotent."""
        with self._warm_lock:
            if self._ready:
                return self
            self.store.warm_up()
            if self.kb is None:
                from chatbot.settings import chatbot_home
                from knowledge_base.kb import KnowledgeBase

                self.kb = KnowledgeBase(chatbot_home() / "kb", self.config.kb, self.embedder)
            self.kb.warm_up()
            if self.kb.current_version is None:
                from knowledge_base.kb import demo_faq_path

                log.info("the knowledge base is empty: building the demo FAQ")
                self.kb.build(demo_faq_path())
                self.kb.warm_up()
            if self.embedder is None:
                self.embedder = self.kb.embedder
            if self.backend is None:
                self.backend = make_backend(self.config)
            self.backend.warm_up()
            self._ready = True
        return self

    def _require(self) -> None:
        if not self._ready:
            raise EngineNotReadyError("the engine is not loaded: call engine.warm_up() first")

    def close(self) -> None:
        if self.backend is not None:
            self.backend.close()
        self.store.close()
        self._ready = False

    def health(self) -> dict[str, Any]:
        """`model_loaded`, `index_version`, `queue_depth`, `adapter`, plus the backend's details."""
        backend = self.backend.health() if self.backend is not None and self._ready else {}
        return {
            **backend,
            "ready": self._ready,
            "model_loaded": bool(backend.get("model_loaded", False)),
            "index_version": self.kb.current_version if self.kb is not None and self._ready else None,
            "queue_depth": backend.get("queue_depth", 0),
            "adapter": backend.get("adapter"),
        }

    def set_adapter(self, path_or_name: str | None) -> str | None:
        """Switch the LoRA adapter while serving (a folder, a loaded name, or `none`); returns the active name."""
        self._require()
        return self.backend.set_adapter(path_or_name)

    # -- conversations ------------------------------------------------------------------------------------------
    def start_conversation(self, channel: str = "web") -> str:
        self._require()
        return self.store.create_conversation(channel)

    def request_human(self, conversation_id: str) -> Reply:
        """The customer pressed "talk to a person": hand off with a notice."""
        self._require()
        conversation = self._open_conversation(conversation_id)
        language = conversation.language or self.config.language.default
        text = notice("handoff", language)
        self.store.hand_off(conversation_id, "the customer asked for a person", notice=text)
        last = self.store.messages(conversation_id)[-1]
        return Reply(text, "handoff", False, language, conversation_id=conversation_id, message_id=last.id,
                     reason="the customer asked for a person")  # fmt: skip

    def _open_conversation(self, conversation_id: str):
        try:
            conversation = self.store.get_conversation(conversation_id)
        except NotFoundError:
            raise InputError(f"unknown conversation {conversation_id!r}; start one first",
                             "unknown_conversation") from None  # fmt: skip
        if conversation.status == "closed":
            raise InputError(f"conversation {conversation_id} is closed; start a new one", "closed_conversation")
        return conversation

    def reply(self, conversation_id: str, text: str | bytes) -> Reply:
        """The whole reply at once (exhausts `stream`)."""
        stream = self.stream(conversation_id, text)
        for _ in stream:
            pass
        return stream.reply

    def stream(self, conversation_id: str, text: str | bytes, *, cancel: threading.Event | None = None
               ) -> ReplyStream:  # fmt: skip
        """Check the message now (raising `InputError`, nothing stored) and return the reply's stream."""
        self._require()
        limits = self.config.limits
        clean = validate_text(text, limits.max_message_chars, limits.max_message_bytes)
        conversation = self._open_conversation(conversation_id)
        cancel = cancel or threading.Event()
        stream = ReplyStream(iter(()), cancel, conversation_id)
        stream._pieces = self._run(stream, conversation, clean, cancel)
        return stream

    # -- the pipeline -------------------------------------------------------------------------------------------
    def _history(self, conversation_id: str) -> list[Turn]:
        turns = []
        for m in self.store.messages(conversation_id):
            if m.kind != "reply" or m.status != "sent" or m.role == "system":
                continue
            turns.append(Turn("user" if m.role == "user" else "assistant", m.text))
        return turns

    def _run(self, stream: ReplyStream, conversation: Any, text: str, cancel: threading.Event) -> Iterator[str]:
        cfg = self.config
        t0 = time.perf_counter()
        timings: dict[str, float] = {}
        language = detect(text, cfg.language, conversation.language)
        timings["language"] = time.perf_counter() - t0
        human = asks_for_human(text, cfg.routing.human_phrases)
        hits: tuple[Hit, ...] = ()
        index_version = ""
        if cfg.routing.mode != "off":
            t = time.perf_counter()
            result = self.kb.search(text, k=max(cfg.prompt.max_sources, 3), language=language)
            hits, index_version = tuple(result.hits), result.index_version
            timings["retrieve"] = time.perf_counter() - t
        decision = decide_route(hits, cfg.kb, cfg.routing, human)
        route, reason = decision.route, decision.reason
        adapter = getattr(self.backend, "adapter", None)
        out: dict[str, Any] = {"text": "", "grounded": False, "fallback": False, "draft": None, "cancelled": False}

        if route != "handoff" and looks_like_injection(text):
            route, reason = "answer", "prompt injection refused"
            out["text"] = notice("refuse", language, cfg.prompt.company)
            yield out["text"]
        elif route != "handoff" and not model_speaks(language, cfg.language):
            same = [h for h in hits if h.entry.language == language]
            if same and same[0].score >= cfg.kb.draft_threshold:  # the FAQ's own answer in that language
                hits = (same[0], *[h for h in hits if h is not same[0]])
                reason += f"; {language} is not a model language: FAQ answer sent as is"
                answer, out["grounded"] = same[0].entry.answer, True
                if route == "answer":
                    out["text"] = answer
                    yield answer
                else:
                    out["draft"], out["text"] = answer, notice("hold", language)
                    yield out["text"]
            else:
                route, reason = "handoff", f"{language} is not a model language and no FAQ answer is in it"
        elif route in ("answer", "draft"):
            history = [*self._history(conversation.id), Turn("user", text)]
            shown: list[str] = []
            if route == "draft":  # the customer hears at once that a person will confirm; the draft follows
                yield notice("hold", language)
            final, grounded, fallback = yield from self._generate(
                history, hits, language, cancel, timings, stream_out=route == "answer", shown=shown
            )
            if route == "answer":
                out.update(text=final, grounded=grounded, fallback=fallback)
                if cancel.is_set() and not fallback:
                    out["cancelled"] = True
            else:
                out.update(draft=final, grounded=grounded, fallback=fallback, text=notice("hold", language))
        if route == "handoff":
            out["text"] = notice("handoff", language)
            yield out["text"]

        timings["total"] = time.perf_counter() - t0
        sources = hits[: cfg.prompt.max_sources] if route != "handoff" or not human else hits[:0]
        if route == "handoff" and not human and hits and hits[0].score < cfg.kb.draft_threshold:
            sources = ()  # nothing good was found: the admin page's "unanswered questions"
        reply_fields = {
            "kind": "reply" if route == "answer" else "notice", "route": route, "grounded": out["grounded"],
            "fallback": out["fallback"], "language": language, "faq_ids": [h.entry.id for h in sources],
            "scores": [round(h.score, 4) for h in sources], "index_version": index_version, "adapter": adapter,
            "timings": {k: round(v, 4) for k, v in timings.items()},
            "status": "cancelled" if out["cancelled"] else "sent",
        }  # fmt: skip
        draft = None
        if out["draft"] is not None:
            draft = {
                "text": out["draft"], "language": language, "grounded": out["grounded"], "index_version": index_version,
                "adapter": adapter, "sources": [
                    {"faq_id": h.entry.id, "question": h.entry.question, "answer": h.entry.answer,
                     "score": round(h.score, 4)} for h in sources],
            }  # fmt: skip
        if conversation.language != language:
            self.store.set_language(conversation.id, language)
        try:
            _, message_id, draft_id = self.store.record_exchange(
                conversation.id, text, {"language": language}, out["text"], reply_fields, draft=draft,
                handoff_reason=reason if route == "handoff" else None,
            )  # fmt: skip
        except ConversationClosedError:
            message_id, draft_id = None, None
            reason += "; the conversation was closed meanwhile, nothing recorded"
        stream._reply = Reply(
            text=out["text"], route=route, grounded=out["grounded"], language=language, sources=tuple(sources),
            index_version=index_version, adapter=adapter, timings=reply_fields["timings"],
            conversation_id=conversation.id, message_id=message_id, draft_id=draft_id, fallback=out["fallback"],
            reason=reason, draft_text=out["draft"], cancelled=out["cancelled"],
        )  # fmt: skip

    def _generate(self, history: list[Turn], hits: tuple[Hit, ...], language: str, cancel: threading.Event,
                  timings: dict[str, float], stream_out: bool, shown: list[str]):  # fmt: skip
        """Generate through the grounding gate; yields checked pieces when `stream_out`.

        Returns `(text, grounded, fallback)`: the generated text when it passed every check, else the top source's
        answer verbatim with `fallback=True`.
        """
        cfg = self.config
        messages = build_messages(cfg.prompt, hits, history, language)
        request = GenerationRequest(messages, cfg.generation, cfg.prompt.max_prompt_tokens)
        sources = hits[: cfg.prompt.max_sources]
        # Facts may come only from sources that plausibly answer the question, not from a weak third hit.
        floor = max(cfg.kb.draft_threshold, FACT_SOURCE_RATIO * sources[0].score) if sources else 0.0
        fact_sources = [h for h in sources if h.score >= floor] or list(sources[:1])
        allowed = supported_facts([*(h.entry.answer for h in fact_sources), *(h.entry.question for h in fact_sources),
                                   *(t.content for t in history if t.role == "user")])  # fmt: skip
        gate = FactGate(allowed)
        checking = cfg.routing.grounding
        start = time.perf_counter()
        failure = ""
        checked_upto = 0
        try:
            pieces = self.backend.stream(request, cancel)
            for piece in pieces:
                released = gate.feed(piece) if checking else piece
                if checking and gate.failed:
                    failure = f"unsupported facts {', '.join(gate.unsupported)}"
                    cancel_generation = getattr(pieces, "close", None)
                    if cancel_generation:
                        cancel_generation()
                    break
                if (
                    checking
                    and sources
                    and _SENTENCE_END.search(gate.text, checked_upto)
                    and len(gate.text.split()) >= DRIFT_MIN_WORDS
                ):
                    # drift is checked at each sentence end, so a wandering reply stops after one sentence
                    checked_upto = len(gate.text)
                    similarity = self._similarity(gate.text, sources[0].entry.answer)
                    if similarity < cfg.routing.drift_threshold:
                        failure = (
                            f"drifted from the source (similarity {similarity:.2f} < {cfg.routing.drift_threshold})"
                        )
                        cancel_generation = getattr(pieces, "close", None)
                        if cancel_generation:
                            cancel_generation()
                        break
                if released:
                    if "ttft" not in timings:
                        timings["ttft"] = time.perf_counter() - start
                    shown.append(released)
                    if stream_out:
                        yield released
                if cancel.is_set():
                    break
        except GenerationError as exc:
            log.warning("generation failed, falling back to the FAQ answer: %s", exc)
            failure = f"generation failed: {exc}"
        timings["generate"] = time.perf_counter() - start
        if not failure and checking:
            tail = gate.finish()
            if gate.failed:
                failure = f"unsupported facts {', '.join(gate.unsupported)}"
            elif tail:
                shown.append(tail)
                if stream_out:
                    yield tail
        text = (gate.text if checking else "".join(shown)).strip()
        if cancel.is_set() and not failure:
            return "".join(shown).strip(), False, False
        if not failure and not text:
            failure = "empty reply"
        if not failure and leaks_prompt(text, system_prompt(cfg.prompt, language)):
            failure = "the reply repeats the system prompt"
        if not failure and checking and not check_grounding(text, allowed).ok:
            failure = "unsupported facts"
        if not failure and checking and sources:
            similarity = self._similarity(text, sources[0].entry.answer)
            timings["similarity"] = similarity
            if similarity < cfg.routing.drift_threshold:
                failure = f"drifted from the source (similarity {similarity:.2f} < {cfg.routing.drift_threshold})"
        if failure:
            if not sources:
                return text, False, False
            log.info("grounding fallback: %s", failure)
            return sources[0].entry.answer, True, True
        return text, checking and bool(sources), False

    def _similarity(self, a: str, b: str) -> float:
        vectors = self.embedder.encode([a, b])
        return float((vectors[0] * vectors[1]).sum())


def make_backend(config: AppConfig) -> Any:
    """The generation backend named by `[model] backend`."""
    if config.model.backend == "openai":
        from chatbot.openai_backend import OpenAIBackend

        return OpenAIBackend(config.model)
    if config.model.backend == "llamacpp":
        from chatbot.llamacpp.backend import LlamaCppBackend

        return LlamaCppBackend(config.model, config.scheduler, config.llamacpp)
    from chatbot.scheduler import TransformersBackend

    return TransformersBackend(config.model, config.scheduler)
