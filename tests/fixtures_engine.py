"""Fixtures for the engine tests, reused by the web app's tests.

- `ScriptedBackend`: a scripted LM with the backend interface: yields queued replies word by word; with nothing
  queued it replies with the answer of source [1] in the prompt (a well-behaved grounded model). A queued
  `Truncated("...")` ends as if `max_new_tokens` ran out (`finish_reason = "length"`).
- `scripted_backend`: one, fresh per test.
- `engine`: an `Engine` over `demo_kb` (hash embedder) with the scripted backend and a real `Store` in the test's
  CHATBOT_HOME, warmed up.
- `shared_model_cache` (autouse, session): `$CHATBOT_MODEL_CACHE`, default a folder in the temp dir.
- `tiny_loaded`: a `LoadedModel` with a tiny random 2-layer Llama and the embedded model's tokenizer (session).
- `ask_delivery_grounded(app_config, demo_kb, model)`: the real-model check that a backend answers grounded.
"""

from __future__ import annotations

import re
import threading
import time
from collections import deque
from collections.abc import Iterator
from typing import Any

import pytest

_SOURCE_ONE = re.compile(r"\[1\] (?:Q: |问：).*?\n(?:A: |答：)(.*?)(?:\n\[2\] (?:Q: |问：)|\Z)", re.DOTALL)


class Truncated(str):
    """A queued reply that stops because the token budget ran out, not at the end of the model's turn."""


class ScriptedStream:
    def __init__(self, text: str, cancel: threading.Event, delay: float):
        self.text, self.cancel, self.delay = text, cancel, delay
        self.n_tokens = 0
        self.prompt_tokens = 0
        self.finish_reason = ""

    def __iter__(self) -> Iterator[str]:
        for piece in re.findall(r"\S+\s*|\s+", self.text):
            if self.cancel.is_set():
                self.finish_reason = "cancelled"
                return
            if self.delay:
                time.sleep(self.delay)
            self.n_tokens += 1
            yield piece
        self.finish_reason = "length" if isinstance(self.text, Truncated) else "stop"


class ScriptedBackend:
    """A scripted LM behind the engine's backend interface (see the module docstring).

    `queue(*texts)` adds replies; an `Exception` instance queued is raised instead. `requests` records every
    `GenerationRequest`. `delay` sleeps between pieces (for cancellation and concurrency tests).
    """

    name = "scripted"

    def __init__(self, replies: tuple[str, ...] = (), delay: float = 0.0):
        self.replies: deque = deque(replies)
        self.requests: list = []
        self.delay = delay
        self.adapter: str | None = None
        self.warm = False
        self._lock = threading.Lock()

    def queue(self, *replies) -> ScriptedBackend:
        self.replies.extend(replies)
        return self

    def warm_up(self) -> None:
        self.warm = True

    def stream(self, request, cancel: threading.Event | None = None) -> ScriptedStream:
        from chatbot.generate import GenerationError

        if not self.warm:
            raise GenerationError("the model is not loaded: call warm_up() first")
        with self._lock:
            self.requests.append(request)
            reply = self.replies.popleft() if self.replies else None
        if isinstance(reply, Exception):
            raise reply
        if reply is None:
            match = _SOURCE_ONE.search(request.messages[0]["content"])
            reply = match.group(1).strip() if match else "I will pass this to a colleague."
        return ScriptedStream(reply, cancel or threading.Event(), self.delay)

    def set_adapter(self, path_or_name: str | None) -> str | None:
        self.adapter = None if path_or_name in (None, "none") else str(path_or_name)
        return self.adapter

    def health(self) -> dict:
        return {"backend": "scripted", "model": self.name, "model_loaded": self.warm, "adapter": self.adapter,
                "queue_depth": 0}  # fmt: skip

    def close(self) -> None:
        self.warm = False


@pytest.fixture
def scripted_backend() -> ScriptedBackend:
    return ScriptedBackend()


@pytest.fixture
def app_config(kb_config):
    from chatbot.config import AppConfig

    config = AppConfig()
    config.kb = kb_config
    return config


@pytest.fixture
def engine(app_config, demo_kb, scripted_backend):
    from chatbot.engine import Engine

    eng = Engine.from_config(app_config, kb=demo_kb, embedder=demo_kb.embedder, backend=scripted_backend)
    eng.warm_up()
    yield eng
    eng.close()


@pytest.fixture(scope="session", autouse=True)
def shared_model_cache():
    """One GGUF -> safetensors conversion for every test session on this machine (not one per test home)."""
    import os
    import tempfile

    os.environ.setdefault("CHATBOT_MODEL_CACHE", os.path.join(tempfile.gettempdir(), "chatbot-model-cache"))
    return os.environ["CHATBOT_MODEL_CACHE"]


@pytest.fixture(scope="session")
def tiny_loaded(shared_model_cache):
    """A tiny random Llama (2 layers, hidden 64) with the embedded model's tokenizer, in fp32 on CPU."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from chatbot.config import ModelConfig
    from chatbot.model import LoadedModel, load_tokenizer

    tokenizer = load_tokenizer(ModelConfig(cache_dir=shared_model_cache))
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=4096)  # fmt: skip
    model = LlamaForCausalLM(config).eval()
    return LoadedModel(model, tokenizer, "cpu", torch.float32, None, "tiny-llama")


def ask_delivery_grounded(app_config: Any, demo_kb: Any, model: Any) -> dict:
    """Ask the real engine (with `model` as `[model]`) the demo FAQ's delivery question; assert a grounded answer
    from the right source with nothing invented ever shown (even before a fallback); returns the engine's health
    as it served."""
    from chatbot.config import GenerationConfig
    from chatbot.engine import Engine
    from chatbot.routing import check_grounding, supported_facts

    app_config.model = model
    app_config.generation = GenerationConfig(max_new_tokens=60)
    engine = Engine.from_config(app_config, kb=demo_kb).warm_up()
    try:
        health = engine.health()
        question = "How long does delivery take?"
        stream = engine.stream(engine.start_conversation(), question)
        shown = "".join(stream)
        reply = stream.reply
    finally:
        engine.close()
    assert reply.route == "answer" and reply.grounded
    assert reply.sources[0].entry.id == "delivery_period"
    allowed = supported_facts([h.entry.answer for h in reply.sources] + [question])
    assert check_grounding(reply.text, allowed).ok
    assert check_grounding(shown, allowed).ok
    assert reply.timings["generate"] > 0 and reply.text
    return health
