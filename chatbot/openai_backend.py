"""The OpenAI-compatible backend: generation on any server that speaks `/v1/chat/completions` with streaming
(vLLM, TGI, llama.cpp's server: `python -m llama_cpp.server`, tested against it), through the official `openai`
client. The path to GPUs at scale: the engine, routing and grounding stay here; only tokens come from there, and
this process loads no dialogue model.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

from chatbot.config import ModelConfig
from chatbot.generate import GenerationError, GenerationRequest


class OpenAIStream:
    """Text pieces of one streamed chat completion; closing early closes the HTTP response (the server stops)."""

    def __init__(self, client: Any, model: str, request: GenerationRequest, cancel: threading.Event):
        self.client, self.model, self.request, self.cancel = client, model, request, cancel
        self.n_tokens = 0
        self.prompt_tokens = 0
        self.finish_reason = ""
        self.ttft_s: float | None = None

    def __iter__(self) -> Iterator[str]:
        import openai

        g = self.request.generation
        kwargs: dict[str, Any] = {
            "model": self.model, "messages": self.request.messages, "stream": True,
            "max_tokens": g.max_new_tokens, "temperature": g.temperature, "top_p": g.top_p, "seed": g.seed,
        }  # fmt: skip
        if g.stop:
            kwargs["stop"] = list(g.stop)[:4]
        if g.repetition_penalty != 1.0:  # vLLM and llama.cpp's server read it; others ignore it
            kwargs["extra_body"] = {"repetition_penalty": g.repetition_penalty}
        start = time.perf_counter()
        where = f"the OpenAI-compatible server at {self.client.base_url}"
        try:
            response = self.client.chat.completions.create(**kwargs)
        except openai.OpenAIError as exc:
            raise GenerationError(f"{where} failed: {exc}; check that it is running and [model] base_url") from exc
        try:
            for chunk in response:
                if self.cancel.is_set():
                    self.finish_reason = "cancelled"
                    return
                if not chunk.choices:
                    continue
                choice = chunk.choices[0]
                if choice.finish_reason:
                    self.finish_reason = choice.finish_reason
                piece = choice.delta.content if choice.delta else None
                if piece:
                    if self.ttft_s is None:
                        self.ttft_s = time.perf_counter() - start
                    self.n_tokens += 1
                    yield piece
        except openai.OpenAIError as exc:
            raise GenerationError(f"{where} failed mid-stream: {exc}") from exc
        finally:
            response.close()


class OpenAIBackend:
    """Backend over an OpenAI-compatible server (`[model] backend = "openai"`, `base_url`, `api_key`,
    `remote_model`). Cheap `__init__`; `warm_up()` connects and picks the model."""

    def __init__(self, config: ModelConfig, client: Any = None):
        self.config = config
        self.client = client
        self.model: str | None = config.remote_model
        self.name = config.remote_model or config.base_url or "openai"
        self.adapter: str | None = None
        self._active = 0
        self._lock = threading.Lock()

    def warm_up(self) -> None:
        import openai

        if self.client is None:
            self.client = openai.OpenAI(base_url=self.config.base_url, api_key=self.config.api_key, max_retries=1)
        if self.model is None:
            try:
                models = [m.id for m in self.client.models.list()]
            except openai.OpenAIError as exc:
                raise GenerationError(
                    f"cannot reach the OpenAI-compatible server at {self.config.base_url}: {exc}; "
                    "check [model] base_url and that the server is running"
                ) from exc
            if not models:
                raise GenerationError(f"the server at {self.config.base_url} lists no models; set [model] remote_model")
            self.model = models[0]
        self.name = self.model

    def stream(self, request: GenerationRequest, cancel: threading.Event | None = None) -> OpenAIStream:
        if self.client is None or self.model is None:
            raise GenerationError("the OpenAI backend is not connected: call warm_up() first")
        return OpenAIStream(self.client, self.adapter or self.model, request, cancel or threading.Event())

    def set_adapter(self, path_or_name: str | None) -> str | None:
        """On a server, an adapter is a model name (vLLM serves LoRA adapters as models); `none` = base model."""
        self.adapter = None if path_or_name in (None, "none") else str(path_or_name)
        return self.adapter

    def health(self) -> dict[str, Any]:
        return {"backend": "openai", "model": self.name, "model_loaded": self.model is not None,
                "base_url": self.config.base_url, "adapter": self.adapter, "queue_depth": 0}  # fmt: skip

    def close(self) -> None:
        if self.client is not None:
            self.client.close()
