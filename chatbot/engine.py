"""The conversation engine: a customer's message in, a checked reply out, everything recorded.

guard -> language -> retrieve (with the conversation so far) -> plan (route; notice / verbatim / generate) ->
stream (generation through the claim check, the sources' own words when it fails) -> record. See DESIGN.md.
`Engine.stream()` returns a `ReplyStream` (`chatbot/stream.py`): iterate it for the text pieces the customer may
see; after it is exhausted `stream.reply` holds the recorded `Reply`, whose text can differ from the joined pieces
when the generated text failed a check and the sources' words replaced it (the UI then replaces the shown text).
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from typing import TYPE_CHECKING, Any

from chatbot.autonomy import Autonomy
from chatbot.claims import dictates_reply
from chatbot.config import AppConfig
from chatbot.extract import focus_hits
from chatbot.followup import ContextQuery, contextual_search
from chatbot.language import detect
from chatbot.notices import handoff_notice
from chatbot.plan import Plan, make_plan
from chatbot.records import Reply, Turn
from chatbot.routing import asks_for_human
from chatbot.store import NotFoundError, Store
from chatbot.stream import ReplyStream

if TYPE_CHECKING:
    from chatbot.generate import Backend
    from knowledge_base.embedder import Embedder
    from knowledge_base.kb import KnowledgeBase

__all__ = ["Engine", "EngineNotReadyError", "InputError", "ReplyStream", "validate_text"]

log = logging.getLogger(__name__)


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


class Engine:
    """The dialogue engine. `from_config` is cheap; `warm_up()` loads the model, the KB and the store."""

    def __init__(self, config: AppConfig, kb: KnowledgeBase | None = None, embedder: Embedder | None = None,
                 backend: Backend | None = None, store: Store | None = None):  # fmt: skip
        self.config = config
        self.kb = kb
        self.embedder = embedder
        self.backend = backend
        self.store = store or Store(config.store)
        self.autonomy = Autonomy(self.store, config)
        self._ready = False
        self._warm_lock = threading.Lock()

    @classmethod
    def from_config(cls, config: AppConfig, *, kb: KnowledgeBase | None = None, embedder: Embedder | None = None,
                    backend: Backend | None = None, store: Store | None = None) -> Engine:  # fmt: skip
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
                from chatbot.backends import make_backend

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
        text = handoff_notice(language, self.config.desk.hours)
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
        """Check the message now (raising `InputError`, nothing stored), decide what to do with it, and return the
        reply's stream (generation starts when it is iterated)."""
        self._require()
        limits = self.config.limits
        clean = validate_text(text, limits.max_message_chars, limits.max_message_bytes)
        conversation = self._open_conversation(conversation_id)
        started = time.perf_counter()
        timings: dict[str, float] = {}
        plan = self.plan(conversation, clean, timings)
        return ReplyStream(self, conversation, plan, cancel or threading.Event(), timings, started)

    # -- deciding -----------------------------------------------------------------------------------------------
    def plan(self, conversation: Any, text: str, timings: dict[str, float] | None = None) -> Plan:
        """Read the message with the conversation so far and decide what to do (nothing is stored)."""
        cfg = self.config
        timings = {} if timings is None else timings
        t0 = time.perf_counter()
        language = detect(text, cfg.language, conversation.language)
        timings["language"] = time.perf_counter() - t0
        messages = self.store.messages(conversation.id)
        history = [Turn("user" if m.role == "user" else "assistant", m.text) for m in messages
                   if m.kind == "reply" and m.status == "sent" and m.role != "system"]  # fmt: skip
        hits: tuple = ()
        index_version = ""
        followup = False
        with_person = conversation.status == "handoff"
        if cfg.routing.mode != "off" and not with_person:
            t = time.perf_counter()
            previous = next((m for m in reversed(messages) if m.role == "bot" and m.faq_ids), None)
            query = ContextQuery(
                text=text,
                previous_user=tuple(t.content for t in history if t.role == "user"),
                previous_sources=previous.faq_ids if previous else (),
                previous_score=previous.scores[0] if previous and previous.scores else 0.0,
            )
            result = contextual_search(self.kb, query, k=max(cfg.prompt.max_sources, 3), language=language)
            hits, index_version, followup = tuple(result.hits), result.index_version, result.followup
            timings["retrieve"] = time.perf_counter() - t
        plan = make_plan(
            cfg, text, language, hits, index_version, (*history, Turn("user", text)),
            asked_for_human=asks_for_human(text, cfg.routing.human_phrases), dictated=dictates_reply(text),
            followup=followup, with_person=with_person,
        )  # fmt: skip
        plan = self.autonomy.route(plan)  # the top source's own mode (shadow / draft / auto), under [routing] mode
        if plan.action != "generate":
            return plan
        earlier = tuple(t.content for t in history if t.role == "user")
        passages = focus_hits(text, plan.hits, context=earlier, encode=self.embedder.encode,
                              max_chars=cfg.prompt.max_source_chars)  # fmt: skip
        return dataclasses.replace(plan, passages=passages)
