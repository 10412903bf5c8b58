"""Examples use the serving prompt; labels cover assistant tokens only; the chunked loss equals the full one."""

from __future__ import annotations

import pytest

from chatbot.config import PromptConfig
from chatbot.prompt import IGNORE_INDEX, build_messages, render_prompt
from chatbot.records import Turn
from training.data import load_logs
from training.examples import build_examples, collate, make_batches


def test_prompt_equals_serving_prompt_and_labels_only_the_reply(sample_logs, smol_tokenizer):
    conversations, _ = load_logs(sample_logs)
    examples = build_examples(conversations, smol_tokenizer, PromptConfig(), max_length=512, language="en")
    assert len(examples) == sum(c.n_replies for c in conversations) == 6
    conv = conversations[0]  # c1: the second reply has history user, assistant, user
    example = [e for e in examples if e.conversation_id == "c1"][1]
    history = list(conv.turns[:3])
    serving = render_prompt(smol_tokenizer, build_messages(PromptConfig(), (), history, "en"), 1536)
    n_prompt = len(serving)
    assert list(example.input_ids[:n_prompt]) == serving
    assert all(label == IGNORE_INDEX for label in example.labels[:n_prompt])
    reply = [t for t in example.labels[n_prompt:]]
    assert IGNORE_INDEX not in reply and reply == list(example.input_ids[n_prompt:])
    text = smol_tokenizer.decode(reply)
    assert text.startswith(conv.turns[3].content) and text.rstrip().endswith("<|im_end|>")


def test_long_conversations_fit_max_length_and_keep_the_reply(smol_tokenizer):
    from training.data import Conversation

    turns = []
    for i in range(30):
        turns += [Turn("user", f"Question number {i} about my order please?"), Turn("assistant", f"Answer {i}.")]
    examples = build_examples([Conversation("long", tuple(turns))], smol_tokenizer, PromptConfig(), max_length=160)
    assert len(examples) == 30
    assert all(len(e.input_ids) <= 160 for e in examples)
    assert smol_tokenizer.decode([t for t in examples[-1].labels if t != IGNORE_INDEX]).startswith("Answer 29.")


def test_batches_are_seeded_cover_everything_and_bucket_lengths(sample_logs, smol_tokenizer):
    conversations, _ = load_logs(sample_logs)
    examples = build_examples(conversations * 10, smol_tokenizer, PromptConfig(), 512)
    a = make_batches(examples, 4, seed=1)
    assert a == make_batches(examples, 4, seed=1) and a != make_batches(examples, 4, seed=2)
    assert sorted(i for b in a for i in b) == list(range(len(examples)))
    spread = [max(len(examples[i].input_ids) for i in b) - min(len(examples[i].input_ids) for i in b) for b in a]
    shuffled = make_batches(examples, 4, seed=1, mode="shuffle")
    spread_shuffled = [max(len(examples[i].input_ids) for i in b) - min(len(examples[i].input_ids) for i in b)
                       for b in shuffled]  # fmt: skip
    assert sum(spread) < sum(spread_shuffled)


@pytest.mark.parametrize("chunk", [1, 5, 4096])
def test_labelled_loss_equals_the_full_logits_loss(sample_logs, tiny_lm, chunk):
    import torch

    from training.loss import LabelledLoss, reference_loss

    conversations, _ = load_logs(sample_logs)
    examples = build_examples(conversations, tiny_lm.tokenizer, PromptConfig(), 512)
    batch = collate(examples[:4], tiny_lm.tokenizer.pad_token_id)
    assert batch["input_ids"].shape[1] % 32 == 0
    total, n = LabelledLoss(tiny_lm.model, chunk)(**batch)
    assert int(n) == sum(e.n_labels for e in examples[:4]) - 0  # every label is predicted from its left neighbour
    reference = reference_loss(tiny_lm.model, **batch)
    assert torch.allclose(total / n, reference, atol=1e-5)
    # gradients agree too
    (total / n).backward()
    grad = tiny_lm.model.model.layers[0].self_attn.q_proj.weight.grad.clone()
    tiny_lm.model.zero_grad()
    reference_loss(tiny_lm.model, **batch).backward()
    assert torch.allclose(grad, tiny_lm.model.model.layers[0].self_attn.q_proj.weight.grad, atol=1e-6)
