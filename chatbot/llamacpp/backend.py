"""The llama.cpp backend: the same prompt format, batching scheduler and token choice as the transformers backend,
with llama.cpp doing the forward passes on the CPU.

Two copies of the model, from the one configured GGUF (rewritten once, cached): the prompt is read by a
compute-friendly copy (BF16 on CPUs with AVX-512 BF16), its KV cache moves to the decoding copy (Q8_0: fewer bytes
per token), and every conversation then decodes in one shared batch, one token each per step. The active peft
LoRA adapter is merged into both copies (or exported to a GGUF LoRA and applied at every step), so the fine-tuned
model is what customers get.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
from pathlib import Path
from typing import Any

from chatbot.config import LlamaCppConfig, ModelConfig, SchedulerConfig
from chatbot.generate import GenerationError
from chatbot.model import ModelError
from chatbot.scheduler import BatchScheduler, TransformersBackend


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


class LlamaRuntime:
    """The prefill and decode copies of the model with their contexts, for one adapter: merged into the weights
    (`llamacpp.merge_adapter`), or applied as a GGUF LoRA at every step."""

    def __init__(self, model_config: ModelConfig, config: LlamaCppConfig, n_seq: int, adapter: Path | None = None):
        from chatbot.llamacpp.runtime import LlamaContext, LlamaModel

        self.config = config
        self.cache_dir = model_config.model_cache_dir()
        self.source = model_gguf(model_config)
        self.threads = config.threads or os.cpu_count() or 1
        self.prefill_type = resolve_prefill_type(config)
        self.decode_type = config.decode_type
        merged = adapter if config.merge_adapter else None
        self.decoder = self.decode_ctx = self.prefiller = self.prefill_ctx = None
        try:
            self.decoder = LlamaModel(converted_gguf(self.source, self.decode_type, self.cache_dir, merged))
            separate = self.prefill_type != self.decode_type
            # The prompt cache is one more sequence of the context that reads prompts.
            self.decode_ctx = LlamaContext(self.decoder, n_seq + (0 if separate else 1), config.context_tokens,
                                           self.threads, config.flash_attn)  # fmt: skip
            self.cache_seq = n_seq
            if separate:
                self.prefiller = LlamaModel(converted_gguf(self.source, self.prefill_type, self.cache_dir, merged))
                self.prefill_ctx = LlamaContext(self.prefiller, 2, config.context_tokens, self.threads,
                                                config.flash_attn)  # fmt: skip
                self.cache_seq = 1
            self.cached: list[int] = []
            """The prompt whose KV cache `cache_seq` holds: the next prompt starting the same way (the system
            prompt of every conversation) reads only what differs."""
            if adapter is not None and merged is None:
                self.apply_lora(adapter)
        except BaseException:
            self.close()
            raise

    def prefill(self, tokens: list[int], slot: int) -> Any:
        """Read a prompt (shorter than `context_tokens`) into decode slot `slot`; returns the logits of its last
        token."""
        ctx, seq = (self.decode_ctx, slot) if self.prefill_ctx is None else (self.prefill_ctx, 0)
        try:
            reused = common_prefix(tokens, self.cached, len(tokens) - 1)  # the last token is read for its logits
            if reused:
                ctx.share(self.cache_seq, seq, reused)
            logits = ctx.prefill(tokens[reused:], seq, start=reused)
            ctx.forget(self.cache_seq)
            ctx.share(seq, self.cache_seq, len(tokens))
            self.cached = list(tokens)
            if self.prefill_ctx is not None:
                self.prefill_ctx.copy_sequence_to(self.decode_ctx, 0, slot)
        except BaseException:
            ctx.forget(self.cache_seq)
            self.cached = []
            raise
        finally:
            if self.prefill_ctx is not None:
                self.prefill_ctx.forget(0)
        return logits

    def apply_lora(self, adapter_dir: Path | None) -> None:
        """Apply a peft LoRA folder (exported to GGUF once) to both copies at every step, or none; only on a
        runtime whose weights have no adapter merged in."""
        contexts = [(self.decoder, self.decode_ctx)]
        if self.prefill_ctx is not None:
            contexts.append((self.prefiller, self.prefill_ctx))
        lora = exported_lora(adapter_dir, self.source, self.cache_dir) if adapter_dir else None
        for model, ctx in contexts:
            ctx.set_adapter(model.adapter(lora) if lora else None)
        (self.prefill_ctx or self.decode_ctx).forget(self.cache_seq)  # computed with the old adapter
        self.cached = []

    def close(self) -> None:
        for part in (self.prefill_ctx, self.prefiller, self.decode_ctx, self.decoder):
            if part is not None:
                part.close()


class LlamaCppScheduler(BatchScheduler):
    """The batching scheduler over llama.cpp: each conversation owns a KV-cache slot of the decode context.

    One arrival is prefilled per step, between decode steps of the others, so a new customer delays the running
    replies by one prompt at most.
    """

    arrivals_per_step = 1

    def __init__(self, loaded: Any, config: SchedulerConfig):
        super().__init__(loaded, config, threads=0)
        self._free = list(range(self.config.max_batch))
        self._slots: dict[int, int] = {}  # id(sequence) -> KV slot

    @property
    def runtime(self) -> LlamaRuntime:
        return self.loaded.model

    def _logits(self, rows: Any) -> Any:
        import numpy as np
        import torch

        return torch.from_numpy(np.ascontiguousarray(rows))

    def _prefill(self, arrivals: list) -> tuple[Any, Any]:
        import numpy as np

        room = self.runtime.config.context_tokens
        for seq in arrivals:
            if len(seq.prompt_ids) >= room:  # fails alone: the others keep decoding
                seq.done, seq.finish_reason = True, "error"
                seq.out.put(GenerationError(f"the prompt has {len(seq.prompt_ids)} tokens, more than "
                                            f"llamacpp.context_tokens ({room}); raise it or lower "
                                            "prompt.max_prompt_tokens"))  # fmt: skip
                continue
            slot = self._free.pop()
            self._slots[id(seq)] = slot
            seq.position = len(seq.prompt_ids)
            if seq.position + seq.config.max_new_tokens > room:
                seq.config = _shorter(seq.config, room - seq.position)
            logits = self.runtime.prefill(seq.prompt_ids, slot)
            self._choose([seq], self._logits(np.stack([logits])))
        return None, None

    def _merge(self, rows, cache, mask, arrivals, new_cache, new_mask):
        if rows:  # the running conversations advance in the same step as an arrival's prompt is read
            self._decode(rows, None, None)
        return rows + list(arrivals), None, None

    def _decode(self, rows: list, cache: Any, mask: Any) -> tuple[Any, Any]:
        slots = [self._slots[id(s)] for s in rows]
        logits = self.runtime.decode_ctx.decode([s.last for s in rows], [s.position - 1 for s in rows], slots,
                                                [True] * len(rows))  # fmt: skip
        self._choose(rows, self._logits(logits))
        return None, None

    def _release(self, seq: Any) -> None:
        slot = self._slots.pop(id(seq), None)
        if slot is not None:
            self.runtime.decode_ctx.forget(slot)
            self._free.append(slot)

    def _keep(self, rows, keep, cache, mask):
        for i, seq in enumerate(rows):
            if i not in keep:
                self._release(seq)
        return [rows[i] for i in keep], None, None

    def swap_runtime(self, new: LlamaRuntime) -> LlamaRuntime:
        """Between two steps, move every running conversation's KV cache into `new` and decode with it from then
        on; returns the old runtime for the caller to close."""

        def swap(old: LlamaRuntime) -> LlamaRuntime:
            for slot in self._slots.values():
                old.decode_ctx.copy_sequence_to(new.decode_ctx, slot, slot)
            self.loaded = dataclasses.replace(self.loaded, model=new)
            return old

        return self.call(swap)

    def _reset(self) -> None:
        for slot in self._slots.values():
            self.runtime.decode_ctx.forget(slot)
        self._slots.clear()
        self._free = list(range(self.config.max_batch))


def _shorter(config: Any, max_new_tokens: int) -> Any:
    return dataclasses.replace(config, max_new_tokens=max(1, max_new_tokens))


class LlamaCppBackend(TransformersBackend):
    """llama.cpp behind the engine's `Backend` interface; prompt rendering, streams and health as the
    transformers backend's."""

    def __init__(self, model_config: ModelConfig | None = None, scheduler_config: SchedulerConfig | None = None,
                 config: LlamaCppConfig | None = None):  # fmt: skip
        super().__init__(model_config, scheduler_config)
        self.config = config or LlamaCppConfig()

    def warm_up(self) -> None:
        import time

        from chatbot.model import LoadedModel, adapter_name, load_tokenizer, resolve_adapter

        start = time.perf_counter()
        import torch

        # torch still embeds questions and replies (grounding) and picks tokens in this process; with one thread it
        # leaves the cores to llama.cpp (`chatbot bench serve`, median of 5 runs: 1.35x the tokens/s per stream)
        torch.set_num_threads(self.model_config.threads or 1)
        tokenizer = load_tokenizer(self.model_config)
        adapter = resolve_adapter(self.model_config.adapter)
        runtime = LlamaRuntime(self.model_config, self.config, self.scheduler_config.max_batch, adapter)
        name = adapter_name(adapter) if adapter else None
        self.loaded = LoadedModel(runtime, tokenizer, "cpu", None, name, self.model_config.name,
                                  time.perf_counter() - start)  # fmt: skip
        self._adapter = name
        if name:
            self._adapters[name] = str(adapter)
        self.scheduler = LlamaCppScheduler(self.loaded, self.scheduler_config)
        self.scheduler.start()

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
                old = scheduler.swap_runtime(new)
            except BaseException:
                new.close()
                raise
            old.close()
        else:
            scheduler.call(lambda runtime: runtime.apply_lora(path))
        if name:
            self._adapters[name] = str(path)
        self._adapter = name
        self.loaded = dataclasses.replace(scheduler.loaded, adapter=name)
        return self._adapter

    def health(self) -> dict[str, Any]:
        runtime = self.loaded.model if self.loaded else None
        return {
            **super().health(),
            "backend": "llamacpp",
            "dtype": f"prefill {runtime.prefill_type}, decode {runtime.decode_type}" if runtime else None,
            "threads": runtime.threads if runtime else None,
        }

    def close(self) -> None:
        super().close()
        if self.loaded is not None:
            self.loaded.model.close()
