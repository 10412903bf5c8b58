"""A few LoRA steps on the real embedded SmolLM2-135M; the engine's loader then serves the adapter."""

from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.real_model


def test_few_steps_on_the_real_model_then_the_engine_loads_the_adapter(sample_logs, tmp_path, shared_model_cache):
    import torch

    from chatbot.config import ModelConfig
    from chatbot.model import load_model
    from training.config import TrainConfig
    from training.trainer import train

    out = tmp_path / "adapter"
    config = TrainConfig(max_steps=4, batch_size=6, max_length=160, learning_rate=1e-3, warmup_steps=0,
                         val_fraction=0.0, eval_every=0, save_every=0, precision="fp32", r=8)  # fmt: skip
    metrics = train(config, [sample_logs], out, eval_logs=sample_logs, progress=False)
    losses = [loss for _, loss in metrics["train_loss"]]
    assert len(losses) == 4 and losses[-1] < losses[0]  # the same 6 examples each step: it learns them
    assert metrics["final"]["val_perplexity"] < 30
    assert json.loads((out / "adapter_config.json").read_text())["base_model_name_or_path"].endswith(
        "SmolLM2-135M-Instruct"
    )
    loaded = load_model(ModelConfig(cache_dir=shared_model_cache, dtype="float32"), adapter=str(out))
    assert loaded.adapter == "adapter"
    ids = torch.tensor([loaded.tokenizer("Can I get a refund?")["input_ids"]])
    with torch.no_grad():
        tuned = loaded.model(input_ids=ids).logits
        with loaded.model.disable_adapter():
            base = loaded.model(input_ids=ids).logits
    assert not torch.allclose(tuned, base)
