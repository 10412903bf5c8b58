"""The llama.cpp backend: the same prompt format, batching scheduler and token choice as the transformers backend,
with llama.cpp doing the forward passes on the CPU (`chatbot/llamacpp/runner.py` puts them behind the scheduler's
runner protocol).

Two copies of the model, from the one configured GGUF (rewritten once, cached): prompts are read by a
compute-friendly copy (BF16 on CPUs with AVX-512 BF16), their KV cache moves to the decoding copy (Q8_0: fewer
bytes per token), and every conversation then decodes in one shared batch, one token each per step. The prompts
that arrive together are read in one llama.cpp batch (several sequence ids), each starting from a copy of the
cached system prompt's KV rather than reading it again. The active peft LoRA adapter is merged into both copies (or
exported to a GGUF LoRA and applied at every step), so the fine-tuned model is what customers get.
"""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path
from typing import Any

from chatbot.config import LlamaCppConfig, ModelConfig, SchedulerConfig
from chatbot.generate import GenerationError, GenerationRequest
from chatbot.model import ModelError
from chatbot.scheduler import BatchScheduler, ScheduledStream


def resolve_prefill_type(config: LlamaCppConfig, cpuinfo: str | None = None) -> str:
    """`prefill_type`, with `auto` decided by the processor: BF16 where it has AVX-512 BF16, else the decode type."""
    if config.prefill_type != "auto":
        return config.prefill_type
    from chatbot.llamacpp.build import cpu_flags

    if cpuinfo is None:
        path = Path("/proc/cpuinfo")
        cpuinfo = path.read_text() if path.exists() else ""
    return "BF16" if "avx512_bf16" in cpu_flags(cpuinfo) else config.decode_type


def model_gguf(model_config: ModelConfig) -> Path:
    """The GGUF file of the configured model (the embedded one, or a `.gguf` path)."""
    from chatbot.model import resolve_model

    resolved = resolve_model(model_config)
    if not resolved.gguf_file:
        raise ModelError(
            f"the llama.cpp backend needs a GGUF model, and {model_config.name!r} is a transformers model: set "
            "[model] name to a .gguf file (llama.cpp's convert_hf_to_gguf.py writes one), or use "
            'backend = "transformers"'
        )
    return Path(resolved.source) / resolved.gguf_file


def adapter_digest(adapter_dir: Path) -> str:
    """A short digest of an adapter's config and weights: cached files derived from it are named by it."""
    digest = hashlib.sha256()
    for name in ("adapter_config.json", "adapter_model.safetensors"):
        digest.update((adapter_dir / name).read_bytes())
    return digest.hexdigest()[:16]


def converted_gguf(source: Path, qtype: str, cache_dir: Path, merge: Path | None = None) -> Path:
    """`source` rewritten with `qtype` weights, and with the peft LoRA folder `merge` merged in when given;
    converted once into `cache_dir` (the source itself when it already is that type and nothing is merged)."""
    import gguf

    from chatbot.llamacpp.convert import convert_gguf
    from chatbot.llamacpp.export import read_gguf_fields, read_lora

    if merge is None:
        file_type = read_gguf_fields(source, ("general.file_type",)).get("general.file_type")
        if file_type == getattr(gguf.LlamaFileType, f"MOSTLY_{qtype}", gguf.LlamaFileType.ALL_F32):
            return source
    merged = f".{merge.name}-{adapter_digest(merge)}" if merge else ""
    out = cache_dir / f"{source.stem}-{source.stat().st_size}{merged}.{qtype}.gguf"
    if not out.exists():
        convert_gguf(source, out, qtype, read_lora(merge, source) if merge else None)
    return out


def exported_lora(adapter_dir: Path, base: Path, cache_dir: Path) -> Path:
    """The GGUF LoRA export of a peft adapter folder, written once per adapter content."""
    from chatbot.llamacpp.export import export_lora

    out = cache_dir / "lora" / f"{adapter_dir.name}-{adapter_digest(adapter_dir)}.gguf"
    if not out.exists():
        export_lora(adapter_dir, base, out)
    return out


def common_prefix(a: list[int], b: list[int], limit: int) -> int:
    """How many leading tokens `a` and `b` share, at most `limit`."""
    n = 0
    for x, y in zip(a[:limit], b, strict=False):
        if x != y:
            break
        n += 1
    return n


SHARED_PREFIX_MIN = 32
"""A batch of prompts sharing at least this many more tokens than the cache holds reads them once into the cache
first (the system prompt, when the cache is cold or the prompt changed)."""


class LlamaRuntime:
    """The prefill and decode copies of the model with their contexts, for one adapter: merged into the weights
    (`llamacpp.merge_adapter`), or applied as a GGUF LoRA at every step.

    Sequence `s` of the decode context is conversation slot `s` (`0 .. n_seq - 1`). The context that reads prompts
    (the decode one, or a separate prefill copy) keeps one more sequence, `cache_seq`: the KV of the last prompt
    read, so a new prompt starting the same way (every conversation's system prompt) only reads what differs.
    """

    def __init__(self, model_config: ModelConfig, config: LlamaCppConfig, n_seq: int, adapter: Path | None = None):
        from chatbot.llamacpp.runtime import LlamaContext, LlamaModel

        self.config = config
        self.n_seq = n_seq
        self.cache_dir = model_config.model_cache_dir()
        self.source = model_gguf(model_config)
        self.threads = config.threads or os.cpu_count() or 1
        self.prefill_type = resolve_prefill_type(config)
        self.decode_type = config.decode_type
        merged = adapter if config.merge_adapter else None
        self.decoder = self.decode_ctx = self.prefiller = self.prefill_ctx = None
        room = config.context_tokens
        try:
            self.decoder = LlamaModel(converted_gguf(self.source, self.decode_type, self.cache_dir, merged))
            separate = self.prefill_type != self.decode_type
            self.cache_seq = n_seq
            self.decode_ctx = LlamaContext(self.decoder, n_seq + (0 if separate else 1),
                                           (n_seq + (0 if separate else 2)) * room, self.threads,
                                           config.flash_attn)  # fmt: skip
            if separate:
                # the prompt cache plus one group of prompts (`prefill` reads at most `room` new tokens at a time)
                self.prefiller = LlamaModel(converted_gguf(self.source, self.prefill_type, self.cache_dir, merged))
                self.prefill_ctx = LlamaContext(self.prefiller, n_seq + 1, 2 * room, self.threads,
                                                config.flash_attn)  # fmt: skip
            self.cached: list[int] = []
            """The prompt whose KV cache `cache_seq` holds."""
            if adapter is not None and merged is None:
                self.apply_lora(adapter)
        except BaseException:
            self.close()
            raise

    @property
    def reader(self) -> Any:
        """The context that reads prompts."""
        return self.prefill_ctx or self.decode_ctx

    def prefill(self, slots: list[int], prompts: list[list[int]]) -> Any:
        """Read prompts (each shorter than `context_tokens`) into decode slots `slots`, together; returns the
        logits of each one's last token, a (len(prompts), vocab) float32 array."""
        import numpy as np

        out = []
        try:
            self._cache_shared_prefix(prompts)
            group: list[int] = []
            size = 0
            for i, prompt in enumerate(prompts):
                new = len(prompt) - common_prefix(prompt, self.cached, len(prompt) - 1)
                if group and size + new > self.config.context_tokens:
                    out.append(self._read([slots[k] for k in group], [prompts[k] for k in group]))
                    group, size = [], 0
                group.append(i)
                size += new
            out.append(self._read([slots[k] for k in group], [prompts[k] for k in group]))
        except BaseException:
            self.forget_cache()
            for slot in slots:
                self.decode_ctx.forget(slot)
                if self.prefill_ctx is not None:
                    self.prefill_ctx.forget(slot)
            raise
        return np.concatenate(out)

    def _cache_shared_prefix(self, prompts: list[list[int]]) -> None:
        if len(prompts) < 2:
            return
        first = prompts[0]
        shared = min(common_prefix(first, p, len(p) - 1) for p in prompts[1:])
        have = common_prefix(first, self.cached, shared)
        if shared - have < SHARED_PREFIX_MIN:
            return
        self.reader.forget(self.cache_seq, keep=have)
        self.cached = []
        self.reader.prefill(first[have:shared], self.cache_seq, start=have)
        self.cached = first[:shared]

    def _read(self, slots: list[int], prompts: list[list[int]]) -> Any:
        """One batch: each prompt after the part the cache holds, all in one decode pass (in `n_batch` chunks)."""
        ctx = self.reader
        tokens: list[int] = []
        positions: list[int] = []
        seqs: list[int] = []
        for slot, prompt in zip(slots, prompts, strict=True):
            reused = common_prefix(prompt, self.cached, len(prompt) - 1)  # the last token is read for its logits
            if reused:
                ctx.share(self.cache_seq, slot, reused)
            tokens += prompt[reused:]
            positions += range(reused, len(prompt))
            seqs += [slot] * (len(prompt) - reused)
        want = [i + 1 == len(seqs) or seqs[i + 1] != seqs[i] for i in range(len(seqs))]
        logits = ctx.decode_many(tokens, positions, seqs, want)
        ctx.forget(self.cache_seq)
        ctx.share(slots[-1], self.cache_seq, len(prompts[-1]))
        self.cached = list(prompts[-1])
        if self.prefill_ctx is not None:
            for slot in slots:
                self.prefill_ctx.copy_sequence_to(self.decode_ctx, slot, slot)
                self.prefill_ctx.forget(slot)
        return logits

    def forget_cache(self) -> None:
        self.reader.forget(self.cache_seq)
        self.cached = []

    def apply_lora(self, adapter_dir: Path | None) -> None:
        """Apply a peft LoRA folder (exported to GGUF once) to both copies at every step, or none; only on a
        runtime whose weights have no adapter merged in."""
        contexts = [(self.decoder, self.decode_ctx)]
        if self.prefill_ctx is not None:
            contexts.append((self.prefiller, self.prefill_ctx))
        lora = exported_lora(adapter_dir, self.source, self.cache_dir) if adapter_dir else None
        for model, ctx in contexts:
            ctx.set_adapter(model.adapter(lora) if lora else None)
        self.forget_cache()  # computed with the old adapter

    def close(self) -> None:
        for part in (self.prefill_ctx, self.prefiller, self.decode_ctx, self.decoder):
            if part is not None:
                part.close()


class LlamaCppBackend:
    """llama.cpp behind the engine's `Backend` interface: the batching scheduler over a `LlamaCppRunner`.

    Cheap to construct; `warm_up()` converts (once) and loads the GGUF copies.
    """

    def __init__(self, model_config: ModelConfig | None = None, scheduler_config: SchedulerConfig | None = None,
                 config: LlamaCppConfig | None = None):  # fmt: skip
        from chatbot.backends import BackendChoice

        self.model_config = model_config or ModelConfig()
        self.scheduler_config = scheduler_config or SchedulerConfig()
        self.config = config or LlamaCppConfig()
        self.name = self.model_config.name
        self.choice = BackendChoice("llamacpp", "constructed directly")
        self.scheduler: BatchScheduler | None = None
        self.tokenizer: Any = None
        self.adapter: str | None = None
        self._adapters: dict[str, str] = {}

    @property
    def runtime(self) -> LlamaRuntime | None:
        return self.scheduler.runner.runtime if self.scheduler is not None else None

    def warm_up(self) -> None:
        import torch

        from chatbot.llamacpp.runner import LlamaCppRunner
        from chatbot.model import adapter_name, load_tokenizer, resolve_adapter

        # torch still embeds questions and replies (grounding) and picks tokens in this process; with one thread it
        # leaves the cores to llama.cpp (`chatbot bench serve`, median of 5 runs: 1.35x the tokens/s per stream)
        torch.set_num_threads(self.model_config.threads or 1)
        self.tokenizer = load_tokenizer(self.model_config)
        adapter = resolve_adapter(self.model_config.adapter)
        slots = self.scheduler_config.max_batch
        runtime = LlamaRuntime(self.model_config, self.config, slots, adapter)
        self.adapter = adapter_name(adapter) if adapter else None
        if self.adapter:
            self._adapters[self.adapter] = str(adapter)
        self.scheduler = BatchScheduler(LlamaCppRunner(runtime), self.tokenizer, self.scheduler_config)
        self.scheduler.start()

    def _require(self) -> BatchScheduler:
        if self.scheduler is None:
            raise GenerationError("the model is not loaded: call warm_up() first")
        return self.scheduler

    def render(self, request: GenerationRequest) -> list[int]:
        from chatbot.prompt import render_prompt

        self._require()
        return render_prompt(self.tokenizer, request.messages, request.max_prompt_tokens)

    def stream(self, request: GenerationRequest, cancel: threading.Event | None = None) -> ScheduledStream:
        """Queue the request; iterate the result for text pieces."""
        scheduler = self._require()
        return scheduler.submit(self.render(request), request.generation, cancel)

    def set_adapter(self, path_or_name: str | None) -> str | None:
        """Switch the adapter while serving: a folder, a name used before, or None/`none` for the base model.

        Merged (the default): the new merged copy is prepared beside the serving one, then swapped in between two
        decode steps with every running conversation's KV cache. Otherwise the GGUF LoRA is applied at once.
        """
        scheduler = self._require()
        from chatbot.model import adapter_name, resolve_adapter

        if path_or_name is None or str(path_or_name).lower() == "none":
            name, path = None, None
        elif str(path_or_name) in self._adapters:
            name, path = str(path_or_name), Path(self._adapters[str(path_or_name)])
        else:
            path = resolve_adapter(str(path_or_name))
            name = adapter_name(path)
        if self.config.merge_adapter:
            new = LlamaRuntime(self.model_config, self.config, self.scheduler_config.max_batch, path)
            try:
                old = scheduler.call(lambda runner: runner.swap_weights(new))
            except BaseException:
                new.close()
                raise
            old.close()
        else:
            scheduler.call(lambda runner: runner.runtime.apply_lora(path))
        if name:
            self._adapters[name] = str(path)
        self.adapter = name
        return self.adapter

    def health(self) -> dict[str, Any]:
        runtime = self.runtime
        return {
            "backend": "llamacpp",
            "backend_reason": self.choice.reason,
            "model": self.name,
            "model_loaded": runtime is not None,
            "device": "cpu" if runtime else None,
            "dtype": f"prefill {runtime.prefill_type}, decode {runtime.decode_type}" if runtime else None,
            "threads": runtime.threads if runtime else None,
            "adapter": self.adapter,
            "queue_depth": self.scheduler.queue_depth if self.scheduler else 0,
        }

    def close(self) -> None:
        if self.scheduler is not None:
            self.scheduler.close()
            self.scheduler.runner.runtime.close()
