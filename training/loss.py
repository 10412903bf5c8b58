"""The loss on labelled positions only, without the full-vocabulary logits.

A causal LM's usual forward computes logits for every position: (B, T, 49152) floats, 400 MB a copy at 8 x 256 in
fp32, and most of the training memory (MEASURED.md). Here the model body runs once, the hidden states at the
positions that predict a label are gathered, and lm_head plus cross-entropy run on them in chunks, each chunk
recomputed in the backward pass (activation checkpointing) so at most one chunk's logits exist at a time.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.nn import functional as F  # noqa: N812
from torch.utils.checkpoint import checkpoint

from chatbot.prompt import IGNORE_INDEX


def unwrap_base(model: Any) -> Any:
    """The transformers causal LM under a peft wrapper (LoRA layers are injected into it in place)."""
    return model.get_base_model() if hasattr(model, "get_base_model") else model


def body_and_head(model: Any) -> tuple[nn.Module, nn.Module]:
    """`(decoder body, lm_head)` of a causal LM (Llama, Qwen, Mistral, GPT-2 style)."""
    base = unwrap_base(model)
    body = base.get_decoder() if hasattr(base, "get_decoder") else None
    if body is None:
        body = getattr(base, base.base_model_prefix)
    head = base.get_output_embeddings()
    if head is None:
        raise ValueError(f"{type(base).__name__} has no output embeddings (lm_head); it is not a causal LM")
    return body, head


def _chunk_nll(head: nn.Module, hidden: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    logits = head(hidden).float()  # (n, V), only this chunk
    return F.cross_entropy(logits, targets, reduction="sum")


class LabelledLoss(nn.Module):
    """Wraps a causal LM (plain or peft); `forward(input_ids, attention_mask, labels)` returns
    `(summed negative log-likelihood over labelled positions, number of labelled positions)`.

    A module of its own so that `accelerate` (DDP) wraps the whole computation and gradients are synchronised.
    """

    def __init__(self, model: nn.Module, chunk: int = 512):
        super().__init__()
        self.model = model
        self.chunk = chunk

    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, labels: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        body, head = body_and_head(self.model)
        hidden = body(input_ids=input_ids, attention_mask=attention_mask, use_cache=False).last_hidden_state  # (B,T,H)
        targets = labels[:, 1:]  # position t predicts token t+1
        keep = targets != IGNORE_INDEX  # (B, T-1)
        picked = hidden[:, :-1][keep]  # (N, H)
        wanted = targets[keep]  # (N,)
        total = hidden.new_zeros((), dtype=torch.float32)
        for start in range(0, picked.shape[0], self.chunk):
            h, t = picked[start : start + self.chunk], wanted[start : start + self.chunk]
            if torch.is_grad_enabled() and h.requires_grad:
                total = total + checkpoint(_chunk_nll, head, h, t, use_reentrant=False)
            else:
                total = total + _chunk_nll(head, h, t)
        return total, keep.sum()


def reference_loss(
    model: Any, input_ids: torch.Tensor, attention_mask: torch.Tensor, labels: torch.Tensor
) -> torch.Tensor:
    """The plain full-logits mean loss over labelled positions (for tests to compare `LabelledLoss` with)."""
    logits = model(input_ids=input_ids, attention_mask=attention_mask).logits.float()  # (B, T, V)
    return F.cross_entropy(
        logits[:, :-1].reshape(-1, logits.shape[-1]), labels[:, 1:].reshape(-1), ignore_index=IGNORE_INDEX
    )
