"""ROUGE-L, perplexity and `eval-dialogue` (with --compare) on a tiny random Llama with a LoRA adapter."""

from __future__ import annotations

import json
import math

import pytest

from training.evaluate import DESIGN_KEYS, design_json, evaluate_dialogue, lcs_length, rouge_l, rouge_tokens

ROUGE_CASES = [
    ("the cat sat on the mat", "the cat sat on the mat", 1.0),
    ("", "anything", 0.0),
    ("completely different words", "nothing shared here", 0.0),
    # LCS "the cat the mat" = 4 of 6 and 4 of 5 tokens
    ("the cat was on the mat", "the cat the mat ok", 2 * (4 / 6) * (4 / 5) / (4 / 6 + 4 / 5)),
    ("Your REFUND, is on its way!", "your refund is on its way", 1.0),
    ("退款需要三天", "退款需要五天", 5 / 6),  # one CJK character = one token
]


@pytest.mark.parametrize(("candidate", "reference", "expected"), ROUGE_CASES)
def test_rouge_l(candidate, reference, expected):
    assert rouge_l(candidate, reference) == pytest.approx(expected)


def test_tokens_and_lcs():
    assert rouge_tokens("Order #123 shipped; 已发货") == ["order", "123", "shipped", "已", "发", "货"]
    assert lcs_length("abcbdab", "bdcaba") == 4


@pytest.fixture
def tiny_with_adapter(tiny_lm):
    import dataclasses

    import torch
    from peft import LoraConfig, get_peft_model

    model = get_peft_model(tiny_lm.model, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"]))
    with torch.no_grad():  # a non-zero update so the adapter changes the model
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.5)
    return dataclasses.replace(tiny_lm, model=model.eval(), adapter="tiny")


def test_compare_reports_base_and_adapter_from_one_model(sample_logs, tiny_with_adapter):
    result = evaluate_dialogue(sample_logs, compare=True, sample=2, max_new_tokens=4, loaded=tiny_with_adapter,
                               progress=False)  # fmt: skip
    base, tuned = result["base"], result["adapter"]
    assert base["n_conversations"] == tuned["n_conversations"] == 4
    assert base["n_tokens"] == tuned["n_tokens"] > 0
    assert base["perplexity"] != tuned["perplexity"] and base["perplexity"] > 1000  # a random model is lost
    assert base["n_rouge"] == 2 and 0 <= base["rouge_l"] <= 1
    assert result["ratios"]["perplexity"] == pytest.approx(tuned["perplexity"] / base["perplexity"], rel=1e-3)
    out = design_json(result)
    assert set(out) == {"base", "adapter"} and all(tuple(out[s]) == DESIGN_KEYS for s in out)
    json.dumps(out)


def test_single_model_keys_and_perplexity_matches_training_loss(sample_logs, tiny_lm):
    import torch

    from chatbot.config import PromptConfig
    from training.data import load_logs
    from training.examples import build_examples, collate
    from training.loss import reference_loss

    result = evaluate_dialogue(sample_logs, sample=0, loaded=tiny_lm, progress=False)
    assert tuple(design_json(result)) == DESIGN_KEYS and result["rouge_l"] is None
    examples = build_examples(load_logs(sample_logs)[0], tiny_lm.tokenizer, PromptConfig(), 512)
    with torch.no_grad():
        total = sum(float(reference_loss(tiny_lm.model, **collate([e], 0))) * e.n_labels for e in examples)
    assert result["perplexity"] == pytest.approx(math.exp(total / sum(e.n_labels for e in examples)), rel=1e-3)


def test_compare_without_adapter_is_a_clear_error(sample_logs, tiny_lm):
    with pytest.raises(ValueError, match="--compare needs an adapter"):
        evaluate_dialogue(sample_logs, compare=True, loaded=tiny_lm, progress=False)


def test_eval_cli_reports_bad_logs(tmp_path, capsys):
    from cli.main import main

    assert main(["eval-dialogue", "--logs", str(tmp_path / "missing.jsonl"), "--json"]) == 1
    assert "does not exist" in capsys.readouterr().err
