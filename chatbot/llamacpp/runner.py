"""The llama.cpp model runner: a `LlamaRuntime` behind the scheduler's `ModelRunner` protocol.

Slot `s` is sequence `s` of the runtime's decode context. Prompts arriving together are read in one batch (see
`LlamaRuntime.prefill`); a decode step is one `llama_decode` over one token of every running slot, plus its
drafted tokens when the scheduler drafts (`verify`; `trim` drops the ones it did not keep from the KV cache).
"""

from __future__ import annotations

from typing import Any

from chatbot.llamacpp.backend import LlamaRuntime


class LlamaCppRunner:
    """Prefill and decode on llama.cpp for the runtime's `n_seq` conversation slots."""

    device = "cpu"

    def __init__(self, runtime: LlamaRuntime):
        self.runtime = runtime
        self.slots = runtime.n_seq
        self.context_tokens = runtime.config.context_tokens
        self._live: set[int] = set()

    def prefill(self, slots: list[int], prompts: list[list[int]]) -> Any:
        import torch

        logits = self.runtime.prefill(slots, prompts)
        self._live.update(slots)
        return torch.from_numpy(logits)

    def decode(self, slots: list[int], tokens: list[int], positions: list[int]) -> Any:
        import torch

        logits = self.runtime.decode_ctx.decode(tokens, positions, slots, [True] * len(slots))
        return torch.from_numpy(logits)

    def release(self, slot: int) -> None:
        self.runtime.decode_ctx.forget(slot)
        self._live.discard(slot)

    def reset(self) -> None:
        for slot in self._live:
            self.runtime.decode_ctx.forget(slot)
        self._live.clear()
        self.runtime.forget_cache()

    def swap_weights(self, weights: LlamaRuntime) -> LlamaRuntime:
        """Move every running conversation's KV cache into the runtime `weights` and decode with it from now on;
        returns the old runtime (for the caller to close)."""
        for slot in self._live:
            self.runtime.decode_ctx.copy_sequence_to(weights.decode_ctx, slot, slot)
        old, self.runtime = self.runtime, weights
        return old

    def verify(self, slots: list[int], tokens: list[list[int]], positions: list[int]) -> list[Any]:
        import torch

        flat = [t for row in tokens for t in row]
        where = [p + k for p, row in zip(positions, tokens, strict=True) for k in range(len(row))]
        seqs = [slot for slot, row in zip(slots, tokens, strict=True) for _ in row]
        logits = torch.from_numpy(self.runtime.decode_ctx.decode_many(flat, where, seqs, [True] * len(flat)))
        return list(torch.split(logits, [len(row) for row in tokens]))

    def trim(self, slot: int, length: int) -> None:
        self.runtime.decode_ctx.forget(slot, keep=length)
