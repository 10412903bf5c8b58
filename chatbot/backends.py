"""The backend factory: which generation backend serves (`[model] backend`, `auto` by default) and why.

`auto` takes llama.cpp when its package is importable and the model runs on the CPU (it decodes several times
faster there), and transformers otherwise (on a GPU, or without llama.cpp). The choice and its reason are logged
once and reported in the backend's `health()` (`backend`, `backend_reason`), so `/api/health` says which one ran.
The app, the gate and `chatbot bench generate` all build their backend here.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import logging
from dataclasses import dataclass
from typing import Any

from chatbot.config import AppConfig, ModelConfig
from chatbot.generate import Backend

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BackendChoice:
    """The backend that serves and why."""

    name: str
    """`transformers`, `llamacpp` or `openai`."""
    reason: str
    """One sentence for the log and `/api/health` (how to get the faster one, when it was not chosen)."""


def llama_cpp_installed() -> bool:
    """Whether llama-cpp-python is importable (without importing it)."""
    return importlib.util.find_spec("llama_cpp") is not None


def choose_backend(config: ModelConfig, device: str | None = None,
                   llama_cpp: bool | None = None) -> BackendChoice:  # fmt: skip
    """The backend `config.backend` names; for `auto`, decided by the device (`device`, default: resolved from
    `config.device`), whether llama.cpp is installed (`llama_cpp`, default: looked up) and the model's format."""
    if config.backend != "auto":
        return BackendChoice(config.backend, f'configured: [model] backend = "{config.backend}"')
    if device is None:
        from chatbot.model import resolve_device

        device = resolve_device(config)
    if not device.startswith("cpu"):
        return BackendChoice("transformers", f"auto: the model runs on {device}, where transformers serves "
                                             "(llama.cpp is used on the CPU)")  # fmt: skip
    if not (llama_cpp_installed() if llama_cpp is None else llama_cpp):
        return BackendChoice("transformers", "auto: llama.cpp is not installed, so transformers serves on the CPU "
                                             "(several times slower): run `make llamacpp`")  # fmt: skip
    from chatbot.model import resolve_model

    if not resolve_model(config).gguf_file:
        return BackendChoice("transformers", f"auto: {config.name!r} is not a GGUF model, so transformers serves "
                                             "(set [model] name to a .gguf file for llama.cpp)")  # fmt: skip
    return BackendChoice("llamacpp", "auto: llama.cpp is installed and the model runs on the CPU")


def make_backend(config: AppConfig, backend: str | None = None, max_batch: int | None = None,
                 loaded: Any = None) -> Backend:  # fmt: skip
    """The generation backend for `config` (not yet warmed up): `backend` overrides `[model] backend`,
    `max_batch` `[scheduler] max_batch`; `loaded` is an already loaded transformers model to serve (tests,
    benchmarks). The choice is logged and kept as the backend's `choice`."""
    model_config = dataclasses.replace(config.model, backend=backend) if backend else config.model
    scheduler_config = config.scheduler
    if max_batch is not None:
        scheduler_config = dataclasses.replace(scheduler_config, max_batch=max_batch, max_queue=4 * max_batch)
    choice = choose_backend(model_config, device=loaded.device if loaded is not None else None)
    log.info("generation backend: %s (%s)", choice.name, choice.reason)
    if choice.name == "openai":
        from chatbot.openai_backend import OpenAIBackend

        made = OpenAIBackend(model_config)
    elif choice.name == "llamacpp":
        from chatbot.llamacpp.backend import LlamaCppBackend

        made = LlamaCppBackend(model_config, scheduler_config, config.llamacpp)
    else:
        from chatbot.transformers_backend import TransformersBackend

        made = TransformersBackend(model_config, scheduler_config, loaded=loaded)
    made.choice = choice
    return made
