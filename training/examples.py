"""Supervised examples from conversations, built with the serving prompt function, and length-bucketed batches.

Each assistant turn that answers a customer becomes one example: the prompt is exactly what serving would send for
the conversation so far (`chatbot.prompt.render_training_examples`: the same system prompt, sources and history
trimming), the target is the turn's text and the end-of-turn token, and only the target's tokens carry labels.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from chatbot.config import PromptConfig
from chatbot.prompt import IGNORE_INDEX, render_training_examples
from training.data import Conversation


@dataclass(frozen=True)
class Example:
    """One training example: token ids and labels (`-100` except on the reply's tokens)."""

    input_ids: tuple[int, ...]
    labels: tuple[int, ...]
    conversation_id: str

    @property
    def n_labels(self) -> int:
        return sum(1 for t in self.labels if t != IGNORE_INDEX)


def build_examples(
    conversations: Sequence[Conversation],
    tokenizer: Any,
    prompt_config: PromptConfig,
    max_length: int,
    language: str | None = "en",
    hits_for: Callable[[Sequence[Any]], Sequence[Any]] | None = None,
) -> list[Example]:
    """One `Example` per assistant reply in `conversations` (see the module docstring).

    `language` is the reply language of the system prompt unless a conversation has its own; `hits_for(history)`
    returns the FAQ hits serving would have retrieved (None = no sources).
    """
    out = []
    for conv in conversations:
        turns = [t for t in conv.turns if t.role in ("user", "assistant")]
        for input_ids, labels in render_training_examples(
            tokenizer,
            prompt_config,
            turns,
            hits_for=hits_for,
            language=conv.language or language,
            max_length=max_length,
        ):
            if any(t != IGNORE_INDEX for t in labels[1:]):
                out.append(Example(tuple(input_ids), tuple(labels), conv.id))
    return out


def kb_hits_for(kb: Any, k: int, language: str | None) -> Callable[[Sequence[Any]], Sequence[Any]]:
    """`hits_for` that searches a warmed-up knowledge base with the last customer message, as serving does."""

    def hits_for(history: Sequence[Any]) -> Sequence[Any]:
        return tuple(kb.search(history[-1].content, k=k, language=language).hits)

    return hits_for


def make_batches(
    examples: Sequence[Example], batch_size: int, seed: int, mode: str = "bucket", drop_last: bool = False
) -> list[list[int]]:
    """Batches of example indices for one epoch, in a seeded random order.

    `bucket`: shuffle, cut into windows of 50 batches, sort each window by length and cut it into batches, then
    shuffle the batches: each batch holds similar lengths (little padding) while the order stays random.
    """
    rng = random.Random(seed)
    order = list(range(len(examples)))
    rng.shuffle(order)
    if mode == "bucket":
        window = batch_size * 50
        order = [
            i
            for s in range(0, len(order), window)
            for i in sorted(order[s : s + window], key=lambda i: len(examples[i].input_ids))
        ]
    batches = [order[s : s + batch_size] for s in range(0, len(order), batch_size)]
    if drop_last and batches and len(batches[-1]) < batch_size:
        batches.pop()
    rng.shuffle(batches)
    return batches


def collate(examples: Sequence[Example], pad_id: int, device: Any = "cpu", multiple: int = 32) -> dict[str, Any]:
    """Right-padded `input_ids`, `attention_mask` and `labels` tensors (B, T), T = the longest example rounded up
    to `multiple` (few distinct shapes: oneDNN's bf16 kernels are prepared per shape, and the first call of a
    new shape costs several times a normal step on CPU)."""
    import torch

    width = max(len(e.input_ids) for e in examples)
    width = -(-width // multiple) * multiple
    ids = torch.full((len(examples), width), pad_id, dtype=torch.long)
    labels = torch.full((len(examples), width), IGNORE_INDEX, dtype=torch.long)
    mask = torch.zeros((len(examples), width), dtype=torch.long)
    for row, e in enumerate(examples):
        n = len(e.input_ids)
        ids[row, :n] = torch.tensor(e.input_ids)
        labels[row, :n] = torch.tensor(e.labels)
        mask[row, :n] = 1
    return {"input_ids": ids.to(device), "attention_mask": mask.to(device), "labels": labels.to(device)}
