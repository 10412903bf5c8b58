"""The torch model runner: a transformers causal LM behind the scheduler's `ModelRunner` protocol.

Every running conversation is one row of a single left-padded KV cache (a `DynamicCache`) with an attention mask
over its columns. New prompts are read together (left-padded, one forward pass) and their cache is stacked under
the running rows', each padded on the left to the longer length; a decode step advances every row by one token in
one forward pass. Released rows leave the cache before the next pass, with the columns no row attends to any more.
"""

from __future__ import annotations

from typing import Any

from chatbot.generate import forward


class TorchRunner:
    """Prefill and decode on a transformers model for up to `slots` conversations at once."""

    context_tokens = None

    def __init__(self, model: Any, device: str, pad_token_id: int | None, slots: int):
        self.model = model
        self.device = device
        self.slots = slots
        self._pad = pad_token_id or 0
        self._rows: list[int] = []
        """The slot of each cache row, in row order."""
        self._cache: Any = None
        self._mask: Any = None
        """(rows, columns) attention mask over the cache columns."""
        self._released: set[int] = set()

    def prefill(self, slots: list[int], prompts: list[list[int]]) -> Any:
        import torch
        from transformers import DynamicCache

        self._compact()
        length = max(len(p) for p in prompts)
        ids = torch.full((len(prompts), length), self._pad, dtype=torch.long)
        mask = torch.zeros((len(prompts), length), dtype=torch.long)
        for i, prompt in enumerate(prompts):  # left padding: every prompt ends in the last column
            ids[i, length - len(prompt) :] = torch.tensor(prompt)
            mask[i, length - len(prompt) :] = 1
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        ids, mask, positions = ids.to(self.device), mask.to(self.device), positions.to(self.device)
        with torch.inference_mode():
            logits, cache = forward(self.model, input_ids=ids, attention_mask=mask, position_ids=positions,
                                    cache=DynamicCache(), use_cache=True, logits_to_keep=1)  # fmt: skip
        self._stack(list(slots), cache, mask)
        return logits[:, -1, :]

    def decode(self, slots: list[int], tokens: list[int], positions: list[int]) -> Any:
        import torch

        self._compact()
        if sorted(slots) != sorted(self._rows):
            raise RuntimeError(f"decode for slots {sorted(slots)} but the cache holds {sorted(self._rows)}")
        at = {slot: i for i, slot in enumerate(slots)}
        order = [at[slot] for slot in self._rows]  # the caller's index of each cache row
        ids = torch.tensor([[tokens[i]] for i in order], device=self.device)
        pos = torch.tensor([[positions[i]] for i in order], device=self.device)
        mask = torch.cat([self._mask, torch.ones((len(order), 1), dtype=self._mask.dtype, device=self.device)], dim=1)
        with torch.inference_mode():
            logits, self._cache = forward(self.model, input_ids=ids, attention_mask=mask, position_ids=pos,
                                          cache=self._cache, use_cache=True, logits_to_keep=1)  # fmt: skip
        self._mask = mask
        back = torch.tensor([self._rows.index(slot) for slot in slots], device=logits.device)
        return logits[:, -1, :].index_select(0, back)

    def release(self, slot: int) -> None:
        if slot in self._rows:
            self._released.add(slot)

    def reset(self) -> None:
        self._rows, self._cache, self._mask, self._released = [], None, None, set()

    def swap_weights(self, weights: Any) -> Any:
        old, self.model = self.model, weights
        return old

    def _stack(self, slots: list[int], cache: Any, mask: Any) -> None:
        """Stack a new prefill's cache under the running rows', left-padding the shorter one in time."""
        import torch

        if not self._rows:
            self._rows, self._cache, self._mask = slots, cache, mask
            return
        t_old, t_new = self._mask.shape[1], mask.shape[1]
        length = max(t_old, t_new)

        def pad(tensor: Any, t: int) -> Any:  # (B, H, T, D) or (B, T), padded on the left of T
            if t == length:
                return tensor
            if tensor.dim() == 2:
                return torch.nn.functional.pad(tensor, (length - t, 0))
            return torch.nn.functional.pad(tensor, (0, 0, length - t, 0))

        for old_layer, new_layer in zip(self._cache.layers, cache.layers, strict=True):
            old_layer.keys = torch.cat([pad(old_layer.keys, t_old), pad(new_layer.keys, t_new)])
            old_layer.values = torch.cat([pad(old_layer.values, t_old), pad(new_layer.values, t_new)])
        self._mask = torch.cat([pad(self._mask, t_old), pad(mask, t_new)])
        self._rows = self._rows + slots

    def _compact(self) -> None:
        """Drop the released rows from the cache, and the columns no remaining row attends to."""
        if not self._released:
            return
        import torch

        keep = [i for i, slot in enumerate(self._rows) if slot not in self._released]
        self._released = set()
        if not keep:
            self.reset()
            return
        index = torch.tensor(keep, device=self._mask.device)
        mask = self._mask.index_select(0, index)
        used = mask.any(dim=0).nonzero()
        first = int(used[0]) if used.numel() else 0
        self._mask = mask[:, first:]
        for layer in self._cache.layers:
            layer.keys = layer.keys.index_select(0, index)[:, :, first:]
            layer.values = layer.values.index_select(0, index)[:, :, first:]
        self._rows = [self._rows[i] for i in keep]
