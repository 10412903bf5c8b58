"""Training on a tiny random Llama: the output folder, config loading, Ctrl-C and --resume, --from-store, the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from chatbot.settings import ConfigError
from training.config import TrainConfig
from training.trainer import OUTPUT_FILES, TrainingError, TrainingInterrupted, latest_checkpoint, train

REPO = Path(__file__).resolve().parent.parent
FAST = {"max_steps": 2, "batch_size": 2, "eval_every": 1, "save_every": 1, "precision": "fp32", "warmup_steps": 0}


def test_two_steps_write_every_output_file(sample_logs, tiny_lm, tmp_path):
    out = tmp_path / "out"
    metrics = train(TrainConfig(**FAST), [sample_logs], out, loaded=tiny_lm, progress=False)
    for name in OUTPUT_FILES:
        assert (out / name).stat().st_size > 0, name
    saved = json.loads((out / "metrics.json").read_text())
    assert saved["status"] == "finished" and saved["final"]["step"] == 2
    assert [e["step"] for e in saved["evaluations"]] == [0, 1, 2]  # step 0: the base model
    assert all(e["val_loss"] > 0 and e["val_perplexity"] > 1 for e in saved["evaluations"])
    assert len(saved["train_loss"]) == 2 and saved["final"]["s_per_step"] > 0
    assert saved["data"]["train_examples"] + saved["data"]["val_examples"] == 6
    assert metrics["final"] == saved["final"]
    assert TrainConfig.load(out / "train_config.toml") == TrainConfig(**FAST)
    prompt = json.loads((out / "prompt_format.json").read_text())
    assert (
        prompt["version"] >= 1 and prompt["prompt"]["company"] == "Acme" and "<|im_start|>" in prompt["chat_template"]
    )
    adapter = json.loads((out / "adapter_config.json").read_text())
    assert adapter["r"] == 16 and set(adapter["target_modules"]) == set(TrainConfig().target_modules)
    assert (out / "loss_curve.png").read_bytes()[:4] == b"\x89PNG"
    assert latest_checkpoint(out).name == "step-1"  # the final state is the adapter itself


def test_trained_adapter_loads_with_peft_and_changes_the_output(sample_logs, tiny_lm, smol_tokenizer, tmp_path):
    import torch
    from peft import PeftModel

    from tests.fixtures_training import make_tiny_lm

    config = TrainConfig(**{**FAST, "max_steps": 3, "learning_rate": 1e-2})
    train(config, [sample_logs], tmp_path / "out", loaded=tiny_lm, progress=False)
    base = make_tiny_lm(smol_tokenizer).model.eval()
    ids = torch.tensor([smol_tokenizer("Where is my parcel?")["input_ids"]])
    before = base(input_ids=ids).logits
    tuned = PeftModel.from_pretrained(base, str(tmp_path / "out")).eval()
    assert not torch.allclose(before, tuned(input_ids=ids).logits)


def test_ctrl_c_keeps_a_checkpoint_and_resume_finishes(sample_logs, tiny_lm, smol_tokenizer, tmp_path):
    from tests.fixtures_training import make_tiny_lm

    out = tmp_path / "out"
    config = TrainConfig(**{**FAST, "max_steps": 3, "save_every": 0, "eval_every": 0})

    def interrupt(step, loss):
        if step == 2:
            raise KeyboardInterrupt

    with pytest.raises(TrainingInterrupted) as exc:
        train(config, [sample_logs], out, loaded=tiny_lm, progress=False, on_step=interrupt)
    assert exc.value.step == 2 and exc.value.checkpoint == out / "checkpoints" / "step-2"
    assert json.loads((out / "metrics.json").read_text())["status"] == "interrupted"
    with pytest.raises(TrainingError, match="--resume"):
        train(config, [sample_logs], out, loaded=make_tiny_lm(smol_tokenizer), progress=False)
    metrics = train(config, [sample_logs], out, loaded=make_tiny_lm(smol_tokenizer), progress=False, resume=True)
    assert metrics["final"]["step"] == 3 and [s for s, _ in metrics["train_loss"]] == [1, 2, 3]


def test_resume_without_checkpoint_says_so(sample_logs, tiny_lm, tmp_path):
    with pytest.raises(TrainingError, match="no checkpoint"):
        train(TrainConfig(**FAST), [sample_logs], tmp_path / "none", loaded=tiny_lm, progress=False, resume=True)


def test_bf16_autocast_and_checkpointing_and_accumulation_run(sample_logs, tiny_lm, tmp_path):
    config = TrainConfig(**{**FAST, "precision": "bf16", "gradient_checkpointing": True, "gradient_accumulation": 2,
                            "eval_every": 0, "r": 4, "target_modules": ("q_proj", "v_proj")})  # fmt: skip
    metrics = train(config, [sample_logs], tmp_path / "out", loaded=tiny_lm, progress=False)
    assert metrics["precision"] == "bf16" and metrics["final"]["step"] == 2
    # 2 layers x (q_proj 64 -> 64, v_proj 64 -> 32 (2 kv heads of 16)), each A (r x in) + B (out x r), r = 4
    assert metrics["trainable_params"] == 2 * (4 * (64 + 64) + 4 * (64 + 32))
    assert metrics["final"]["val_loss"] > 0


def test_unknown_target_module_is_a_clear_error(sample_logs, tiny_lm, tmp_path):
    with pytest.raises(TrainingError, match="c_attn not found"):
        train(TrainConfig(**{**FAST, "target_modules": ("c_attn",)}), [sample_logs], tmp_path / "o", loaded=tiny_lm)


def test_config_file_then_flags_unknown_keys_and_checks(tmp_path):
    path = tmp_path / "train.toml"
    path.write_text('r = 8\nlearning_rate = 1e-3\ntarget_modules = ["q_proj"]\n', encoding="utf-8")
    config = TrainConfig.load(path, {"r": 4})
    assert (config.r, config.learning_rate, config.target_modules) == (4, 1e-3, ("q_proj",))
    path.write_text("rank = 8\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="unknown key.*rank"):
        TrainConfig.load(path)
    with pytest.raises(ConfigError, match="--r must be > 0"):
        TrainConfig.load(None, {"r": 0})
    with pytest.raises(ConfigError, match="--lora-dropout"):
        TrainConfig.load(None, {"lora_dropout": 1.5})


def test_shipped_config_loads():
    config = TrainConfig.load(REPO / "training" / "train.toml")
    assert config.max_length == 256 and config.r == 16


def test_shipped_adapter_is_complete_and_the_engine_default(chatbot_home):
    from chatbot.adapters import active_adapter

    folder = REPO / "training" / "adapter"
    for name in OUTPUT_FILES:
        assert (folder / name).exists(), name
    assert (folder / "adapter_model.safetensors").stat().st_size < 12_000_000
    assert TrainConfig.load(folder / "train_config.toml") == TrainConfig.load(REPO / "training" / "grounded.toml")
    metrics = json.loads((folder / "metrics.json").read_text())
    assert metrics["status"] == "finished" and metrics["final"]["val_perplexity"] < 2
    # measured by what it writes: more answers composed for the question, no unsupported claim sent
    answers = json.loads((folder / "eval_answers.json").read_text())
    for held_out in ("demo", "doc2dial_sections"):
        before, after = answers[held_out]["previous_adapter"], answers[held_out]["this_adapter"]
        assert after["composed_share"] > before["composed_share"] and after["unsupported_share"] == 0
        assert after["answered_accuracy"] >= before["answered_accuracy"]
    assert active_adapter() == folder


def test_from_store_trains_on_reviewed_replies(tiny_lm, tmp_path, reviewed_store):
    from chatbot.config import AppConfig

    metrics = train(TrainConfig(**{**FAST, "val_fraction": 0.5, "store_weight": 2}), [], tmp_path / "out",
                    from_store=True, app=AppConfig(), loaded=tiny_lm, progress=False)  # fmt: skip
    assert metrics["data"]["store_conversations"] == 3
    rows = [json.loads(line) for line in (tmp_path / "out" / "store_reviews.jsonl").read_text().splitlines()]
    assert sorted(r["source"] for r in rows) == ["approved", "edited", "handoff"]


def test_no_data_is_a_clear_error(tiny_lm, tmp_path):
    from chatbot.config import AppConfig

    with pytest.raises(TrainingError, match="no training data"):
        train(TrainConfig(**FAST), [], tmp_path / "o", from_store=True, app=AppConfig(), loaded=tiny_lm)


def test_train_cli_help_lists_every_config_field(capsys):
    import dataclasses

    from cli.main import main

    with pytest.raises(SystemExit):
        main(["train", "--help"])
    text = capsys.readouterr().out
    for field in dataclasses.fields(TrainConfig):
        assert "--" + field.name.replace("_", "-") in text
    assert "LoRA rank" in text and "--resume" in text and "--from-store" in text


def test_train_cli_errors(capsys, tmp_path, sample_logs):
    from cli.main import main

    assert main(["train", "--out", str(tmp_path / "o")]) == 2
    assert "--logs" in capsys.readouterr().err
    assert main(["train", "--logs", str(tmp_path / "missing.jsonl"), "--out", str(tmp_path / "o")]) == 1
    assert "does not exist" in capsys.readouterr().err
    assert main(["train", "--logs", str(sample_logs), "--out", str(tmp_path / "o"), "--r", "0"]) == 2
    assert "--r must be > 0" in capsys.readouterr().err
