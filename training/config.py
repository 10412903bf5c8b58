"""The training config: one dataclass, loadable from a TOML file and overridden by flags. Imports nothing heavy.

`chatbot train --config train.toml --r 8` builds it with `chatbot.settings.load_config` (file first, then flags;
unknown keys are an error). Field names follow peft (`r`, `lora_alpha`, `lora_dropout`, `target_modules`) and HF
(`learning_rate`, `max_steps`). The shipped adapter's config is `training/train.toml`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from chatbot.settings import load_config

ATTENTION = ("q_proj", "k_proj", "v_proj", "o_proj")
MLP = ("gate_proj", "up_proj", "down_proj")


@dataclass
class TrainConfig:
    """LoRA fine-tuning settings. Every field is also a `chatbot train` flag (`--lora-alpha 32`)."""

    model: str = "embedded"
    """Base model: `embedded` (SmolLM2-135M-Instruct), a Hugging Face id or a local folder (as `[model] name`)."""
    r: int = 16
    """LoRA rank."""
    lora_alpha: int = 32
    """LoRA scaling numerator (the update is scaled by `lora_alpha / r`)."""
    lora_dropout: float = 0.05
    """Dropout on the LoRA branch's input."""
    target_modules: tuple[str, ...] = ATTENTION + MLP
    """Linear layers that get a LoRA adapter (Llama names: attention q/k/v/o_proj and MLP gate/up/down_proj)."""
    init_adapter: str | None = None
    """Start from this trained adapter folder instead of a fresh LoRA (its r, alpha and modules are kept)."""
    learning_rate: float = 2e-4
    """Peak AdamW learning rate (linear warm-up, then cosine decay to 10%)."""
    weight_decay: float = 0.0
    """AdamW weight decay on the LoRA weights."""
    warmup_steps: int = 10
    """Optimizer steps of linear learning-rate warm-up."""
    epochs: float = 1.0
    """Passes over the training examples; ignored when `max_steps` > 0."""
    max_steps: int = 0
    """Optimizer steps to run; 0 = as many as `epochs` take."""
    batch_size: int = 8
    """Examples per micro-batch (per process under `accelerate launch`)."""
    gradient_accumulation: int = 1
    """Micro-batches per optimizer step."""
    max_length: int = 256
    """Most tokens of one example (prompt + reply); the oldest history is dropped first to fit."""
    batching: Literal["bucket", "shuffle"] = "bucket"
    """`bucket`: batches of similar length (little padding) in random order; `shuffle`: plain random batches."""
    loss_chunk: int = 512
    """Labelled positions per lm_head chunk; the full (batch, length, vocab) logits are never materialised."""
    precision: Literal["auto", "bf16", "fp32"] = "auto"
    """`bf16` = bf16 base weights and autocast with fp32 LoRA weights; `auto` = bf16 on CUDA and on CPUs with fast
    bf16 (AMX), fp32 otherwise."""
    gradient_checkpointing: bool = False
    """Recompute activations in the backward pass: less memory, about 10-30% slower."""
    device: str = "auto"
    """`auto` (CUDA when present), `cpu`, `cuda`; under `accelerate launch` each process takes its own GPU."""
    threads: int = 0
    """torch CPU threads; 0 = torch's default (all cores)."""
    seed: int = 0
    """Seed for the split, the batch order, LoRA initialisation and dropout."""
    val_fraction: float = 0.1
    """Share of conversations held out for validation when no `--eval-logs` are given."""
    eval_every: int = 50
    """Evaluate on the validation set every this many optimizer steps (and at the end); 0 = only at the end."""
    eval_max_examples: int = 200
    """Most validation examples per evaluation (the same ones each time)."""
    save_every: int = 50
    """Write a resumable checkpoint every this many optimizer steps; 0 = only on Ctrl-C and at the end."""
    keep_checkpoints: int = 2
    """Most recent checkpoints kept in `OUT/checkpoints`."""
    language: str = "en"
    """Reply language written into the system prompt of every example (as serving detects it), unless a log
    conversation carries its own `language`."""
    with_sources: bool = False
    """Put the knowledge base's top FAQ hits for each customer message into the prompt, as serving does (needs a
    built knowledge base in `$CHATBOT_HOME/kb`)."""
    grounded: tuple[str, ...] = ()
    """Grounded example files (`python -m training.grounded`: sources in the prompt as served, faithful replies),
    trained on beside `--logs`; a seeded `val_fraction` of them joins the validation set."""
    redact: bool = True
    """Redact e-mail addresses, phone, card and account numbers in the logs before training."""
    strict: bool = False
    """Stop at the first bad row of a log file instead of skipping and counting it."""
    store_weight: int = 1
    """With `--from-store`: how many times each reviewed example is repeated in the training set."""

    def __post_init__(self) -> None:
        checks = [
            (self.r > 0, "--r must be > 0"),
            (self.lora_alpha > 0, "--lora-alpha must be > 0"),
            (0 <= self.lora_dropout < 1, "--lora-dropout must lie in [0, 1)"),
            (len(self.target_modules) > 0, "--target-modules needs at least one module name"),
            (self.learning_rate > 0, "--learning-rate must be > 0"),
            (self.epochs > 0 or self.max_steps > 0, "--epochs must be > 0 (or set --max-steps)"),
            (self.max_steps >= 0, "--max-steps must be >= 0 (0 = use --epochs)"),
            (self.batch_size >= 1, "--batch-size must be >= 1"),
            (self.gradient_accumulation >= 1, "--gradient-accumulation must be >= 1"),
            (self.max_length >= 96, "--max-length must be >= 96 (the system prompt alone takes about 90 tokens)"),
            (self.loss_chunk >= 1, "--loss-chunk must be >= 1"),
            (self.eval_every >= 0 and self.save_every >= 0, "--eval-every and --save-every must be >= 0"),
            (self.keep_checkpoints >= 1, "--keep-checkpoints must be >= 1"),
            (0 <= self.val_fraction < 1, "--val-fraction must lie in [0, 1)"),
            (self.eval_max_examples >= 1, "--eval-max-examples must be >= 1"),
            (self.store_weight >= 1, "--store-weight must be >= 1"),
            (self.threads >= 0, "--threads must be >= 0"),
            (self.warmup_steps >= 0 and self.weight_decay >= 0, "--warmup-steps and --weight-decay must be >= 0"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(message)
        self.target_modules = tuple(self.target_modules)

    @classmethod
    def load(cls, path: str | Path | None = None, overrides: dict[str, Any] | None = None) -> TrainConfig:
        """File first (a flat TOML table of these fields), then `overrides`; unknown keys raise `ConfigError`."""
        return load_config(cls, path, overrides)

    def to_dict(self) -> dict[str, Any]:
        """Plain values (lists for tuples, no None), as written to `train_config.toml`."""
        out = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if value is None:
                continue
            out[f.name] = list(value) if isinstance(value, tuple) else value
        return out

    def to_toml(self) -> str:
        import tomlkit

        return tomlkit.dumps(self.to_dict())
