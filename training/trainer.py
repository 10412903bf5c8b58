"""LoRA fine-tuning on support logs.

`train(config, logs, out)` loads and cleans the logs, builds examples with the serving prompt function, trains a
peft LoRA adapter with the loss on assistant tokens only (`LabelledLoss`: no full-vocabulary logits), evaluates
every `eval_every` steps, writes resumable checkpoints, and fills the output folder:

    OUT/adapter_model.safetensors, OUT/adapter_config.json   the adapter (peft `save_pretrained`)
    OUT/train_config.toml                                    the TrainConfig (loadable with --config)
    OUT/prompt_format.json                                   the prompt format the adapter was trained with
    OUT/metrics.json                                         losses per evaluation, final figures, data counts
    OUT/loss_curve.png                                       train and validation loss by step
    OUT/checkpoints/step-N/                                  resumable state (adapter, optimizer, schedule, rng)

The same code runs on one CPU, one GPU, or several GPUs under `accelerate launch` (batches are sharded by process,
the loss module is wrapped by DDP, only the main process writes).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import math
import os
import re
import shutil
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from chatbot.config import AppConfig, PromptConfig
from training.config import TrainConfig
from training.data import Conversation, LoadReport, load_logs, parse_conversation, split_conversations, write_logs

log = logging.getLogger(__name__)

EMBEDDED_HUB_ID = "HuggingFaceTB/SmolLM2-135M-Instruct"
OUTPUT_FILES = (
    "adapter_model.safetensors",
    "adapter_config.json",
    "train_config.toml",
    "prompt_format.json",
    "metrics.json",
    "loss_curve.png",
)


class TrainingError(RuntimeError):
    """Training cannot start or continue; the message says how to fix it."""


class TrainingInterrupted(KeyboardInterrupt):  # noqa: N818 - it is a KeyboardInterrupt
    """Ctrl-C during training: the last completed step is saved as a checkpoint; `--resume` continues from it."""

    def __init__(self, step: int, checkpoint: Path | None):
        super().__init__(f"stopped at step {step}")
        self.step = step
        self.checkpoint = checkpoint


# -- data ---------------------------------------------------------------------------------------------------------
def store_conversations(app: AppConfig) -> list[Conversation]:
    """Reviewed replies from the engine's store (approved and edited drafts, agents' replies to handed-off chats)
    as conversations, redacted (`training.reviews`)."""
    from training.reviews import reviewed_conversations

    return [parse_conversation(row, row["id"]) for row in reviewed_conversations(app)]


def prepare_data(
    config: TrainConfig, logs: Sequence[str | Path], eval_logs: str | Path | None, store: Sequence[Conversation] = ()
) -> tuple[list[Conversation], list[Conversation], list[LoadReport]]:
    """Load, clean and split: `(train, validation, reports)`. Store conversations are split with the logs, and the
    training share is repeated `config.store_weight` times."""
    from training.data import clean_conversation

    reports, conversations = [], []
    for path in logs:
        convs, report = load_logs(path, strict=config.strict, redact=config.redact)
        conversations += convs
        reports.append(report)
    from_store = {c.id for c in store}
    conversations += [clean_conversation(c, redact=config.redact) for c in store if c.n_replies]
    if not conversations and not config.grounded:
        raise TrainingError(
            "no training data: give --logs FILE (JSONL or Q/A CSV), --grounded FILE and/or --from-store with reviews"
        )
    if eval_logs:
        val, report = load_logs(eval_logs, strict=config.strict, redact=config.redact)
        reports.append(report)
        train = conversations
    else:
        train, val = split_conversations(conversations, config.val_fraction, config.seed)
    train = [c for c in train for _ in range(config.store_weight if c.id in from_store else 1)]
    return train, val, reports


def _grounded_examples(config: TrainConfig, tokenizer: Any, prompt: PromptConfig) -> tuple[list[Any], list[Any]]:
    """`config.grounded` files as `(train, validation)` examples, split by a seeded `val_fraction`."""
    import random

    from training.grounded import load_grounded, render_grounded

    examples = [ex for path in config.grounded for ex in load_grounded(path)]
    random.Random(config.seed).shuffle(examples)
    n_val = round(len(examples) * config.val_fraction)
    rendered = render_grounded(examples, tokenizer, prompt, config.max_length)
    val_ids = {ex.id for ex in examples[:n_val]}
    train = [e for e in rendered if e.conversation_id not in val_ids]
    return train, [e for e in rendered if e.conversation_id in val_ids]


# -- helpers ------------------------------------------------------------------------------------------------------
def resolve_precision(config: TrainConfig, device: str) -> str:
    """`bf16` or `fp32` for this device (see `TrainConfig.precision`)."""
    if config.precision != "auto":
        return config.precision
    if device.startswith("cuda"):
        import torch

        return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
    from chatbot.model import cpu_bf16_is_fast

    return "bf16" if cpu_bf16_is_fast() else "fp32"


def peak_memory_mb(device: str) -> float:
    """Peak memory of this process: CUDA allocator peak on a GPU, else peak resident set size."""
    if device.startswith("cuda"):
        import torch

        return torch.cuda.max_memory_allocated() / 2**20
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def lr_factor(step: int, total: int, warmup: int) -> float:
    """Linear warm-up to 1, then cosine decay to 0.1 at `total`."""
    if step < warmup:
        return (step + 1) / (warmup + 1)
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress))


def _checkpoints(out: Path) -> list[Path]:
    folder = out / "checkpoints"
    found = [p for p in folder.glob("step-*") if re.fullmatch(r"step-\d+", p.name) and (p / "state.json").exists()]
    return sorted(found, key=lambda p: int(p.name.split("-")[1]))


def latest_checkpoint(out: str | Path) -> Path | None:
    """The newest complete checkpoint in `OUT/checkpoints`, or None."""
    found = _checkpoints(Path(out))
    return found[-1] if found else None


def plot_losses(metrics: dict[str, Any], path: Path) -> None:
    """The loss curve: training loss per step (and its running mean), validation loss per evaluation."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4), dpi=100)
    steps = [s for s, _ in metrics["train_loss"]]
    losses = [v for _, v in metrics["train_loss"]]
    if steps:
        ax.plot(steps, losses, color="tab:blue", alpha=0.3, linewidth=1, label="train (step)")
        window = max(1, len(losses) // 20)
        smooth = [
            sum(losses[max(0, i - window + 1) : i + 1]) / len(losses[max(0, i - window + 1) : i + 1])
            for i in range(len(losses))
        ]
        ax.plot(steps, smooth, color="tab:blue", linewidth=2, label=f"train (mean of {window})")
    evals = [e for e in metrics["evaluations"] if e.get("val_loss") is not None]
    if evals:
        ax.plot(
            [e["step"] for e in evals], [e["val_loss"] for e in evals], "o-", color="tab:orange", label="validation"
        )
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("loss (assistant tokens, nats)")
    ax.set_title("LoRA fine-tuning")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def prompt_format(prompt: PromptConfig, config: TrainConfig, tokenizer: Any) -> dict[str, Any]:
    """What an adapter folder records about the prompts it was trained on."""
    from chatbot.prompt import PROMPT_FORMAT_VERSION

    return {
        "version": PROMPT_FORMAT_VERSION,
        "builder": "chatbot.prompt.render_training_examples (serving: build_messages + render_prompt)",
        "prompt": dataclasses.asdict(prompt),
        "language": config.language,
        "with_sources": config.with_sources,
        "max_length": config.max_length,
        "chat_template": getattr(tokenizer, "chat_template", None),
        "eos_token": tokenizer.eos_token,
    }


def _write_json(path: Path, obj: Any) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(obj, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)


# -- training -----------------------------------------------------------------------------------------------------
def train(
    config: TrainConfig,
    logs: Sequence[str | Path],
    out: str | Path,
    *,
    eval_logs: str | Path | None = None,
    from_store: bool = False,
    resume: bool = False,
    app: AppConfig | None = None,
    progress: bool = True,
    loaded: Any = None,
    on_step: Callable[[int, float], None] | None = None,
) -> dict[str, Any]:
    """Train a LoRA adapter and fill `out` (see the module docstring); returns the metrics dict.

    `app` gives the prompt settings (the serving prompt) and the store; default: `AppConfig.load()`. `loaded` is a
    preloaded `chatbot.model.LoadedModel` to train on instead of loading `config.model` (tests use a tiny one).
    `on_step(step, loss)` is called after each optimizer step. Ctrl-C saves a checkpoint of the last completed
    step and raises `TrainingInterrupted`.
    """
    import torch
    from accelerate import Accelerator
    from tqdm.auto import tqdm

    from chatbot.config import ModelConfig
    from chatbot.model import load_model, resolve_device
    from training.examples import build_examples, collate, kb_hits_for, make_batches
    from training.loss import LabelledLoss

    out = Path(out)
    app = app or AppConfig.load()
    if config.threads:
        torch.set_num_threads(config.threads)
    distributed = int(os.environ.get("WORLD_SIZE", "1")) > 1
    if loaded is not None:
        device = str(loaded.device)
    elif distributed:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    else:
        device = resolve_device(ModelConfig(device=config.device))
    accelerator = Accelerator(cpu=device == "cpu", mixed_precision="no")
    if distributed or device.startswith("cuda"):
        device = str(accelerator.device)
    main = accelerator.is_main_process
    precision = resolve_precision(config, device)
    autocast_dtype = torch.bfloat16 if precision == "bf16" else None

    if resume and latest_checkpoint(out) is None:
        raise TrainingError(f"--resume: {out / 'checkpoints'} has no checkpoint; start without --resume")
    if not resume and main and (out / "checkpoints").exists() and _checkpoints(out):
        raise TrainingError(
            f"{out} already holds checkpoints of a run: add --resume to continue it, or pick a new --out"
        )

    # Data
    store = store_conversations(app) if from_store else []
    if from_store and not store:
        log.warning("--from-store: the store has no approved, edited or handed-off replies yet")
    train_convs, val_convs, reports = prepare_data(config, logs, eval_logs, store)
    for report in reports:
        if report.problems and main:
            print(f"warning: {report.summary()}")

    # Model
    torch.manual_seed(config.seed)
    if loaded is None:
        model_config = ModelConfig(
            name=config.model, adapter="none", device=device, dtype="bfloat16" if precision == "bf16" else "float32"
        )
        loaded = load_model(model_config, adapter="none", trainable=True)
    elif precision == "bf16":
        loaded.model.to(torch.bfloat16)
    tokenizer = loaded.tokenizer
    hits_for = None
    if config.with_sources:
        from chatbot.settings import chatbot_home
        from knowledge_base.kb import KnowledgeBase

        kb = KnowledgeBase(chatbot_home() / "kb", app.kb).warm_up()
        if kb.current_version is None:
            raise TrainingError("with_sources needs a knowledge base: run `chatbot kb build FILE` first")
        hits_for = kb_hits_for(kb, max(app.prompt.max_sources, 1), config.language)
    train_examples = build_examples(train_convs, tokenizer, app.prompt, config.max_length, config.language, hits_for)
    val_examples = build_examples(val_convs, tokenizer, app.prompt, config.max_length, config.language, hits_for)
    if config.grounded:
        grounded_train, grounded_val = _grounded_examples(config, tokenizer, app.prompt)
        train_examples += grounded_train
        val_examples = grounded_val + val_examples
    val_examples = val_examples[: config.eval_max_examples]
    if not train_examples:
        raise TrainingError("the logs gave no training example (no assistant turn answers a customer)")

    model = _with_lora(loaded.model, config)
    if config.gradient_checkpointing:
        base = model.get_base_model()
        if hasattr(base, "activation_checkpointing_enable"):  # transformers >= 5.2x
            base.activation_checkpointing_enable({"use_reentrant": False})
        else:
            base.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        model.get_base_model().config.use_cache = False
    model.train()
    trainable = [p for p in model.parameters() if p.requires_grad]
    n_trainable = sum(p.numel() for p in trainable)
    optimizer = torch.optim.AdamW(trainable, lr=config.learning_rate, weight_decay=config.weight_decay)

    world = accelerator.num_processes
    per_epoch = len(make_batches(train_examples, config.batch_size, config.seed, config.batching)) // world
    steps_per_epoch = max(1, per_epoch // config.gradient_accumulation)
    total_steps = config.max_steps or max(1, math.ceil(config.epochs * steps_per_epoch))
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: lr_factor(s, total_steps, config.warmup_steps))

    metrics: dict[str, Any] = {
        "main_process": main,
        "status": "running",
        "device": device,
        "precision": precision,
        "world_size": world,
        "trainable_params": n_trainable,
        "total_steps": total_steps,
        "evaluations": [],
        "train_loss": [],
        "data": {
            "train_conversations": len(train_convs),
            "val_conversations": len(val_convs),
            "train_examples": len(train_examples),
            "val_examples": len(val_examples),
            "train_label_tokens": sum(e.n_labels for e in train_examples),
            "logs": [r.to_dict() for r in reports],
            "store_conversations": len(store),
        },
    }
    step, train_time, tokens_seen = 0, 0.0, 0
    if resume:
        step, train_time, tokens_seen = _load_checkpoint(latest_checkpoint(out), model, optimizer, scheduler, metrics)
        if main:
            print(f"resuming from {latest_checkpoint(out)} (step {step} of {total_steps})")

    wrapper = LabelledLoss(model, config.loss_chunk)
    wrapper, optimizer = accelerator.prepare(wrapper, optimizer)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id

    def autocast() -> Any:
        if autocast_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type="cuda" if device.startswith("cuda") else "cpu", dtype=autocast_dtype)

    def micro_batches() -> Any:
        """Micro-batches of this process in order, from the start of training (resume skips the done ones)."""
        epoch = 0
        while True:
            batches = make_batches(train_examples, config.batch_size, config.seed + epoch, config.batching)
            batches = batches[: per_epoch * world]
            for i in range(accelerator.process_index, len(batches), world):
                yield batches[i]
            epoch += 1

    def evaluate() -> float | None:
        if not val_examples:
            return None
        wrapper.eval()
        nll, count = torch.zeros((), device=device), torch.zeros((), device=device)
        order = sorted(range(len(val_examples)), key=lambda i: len(val_examples[i].input_ids))
        mine = order[accelerator.process_index :: world]
        with torch.no_grad(), autocast():
            for s in range(0, len(mine), config.batch_size):
                batch = collate([val_examples[i] for i in mine[s : s + config.batch_size]], pad_id, device)
                total, n = wrapper(**batch)
                nll += total.float()
                count += n
        wrapper.train()
        nll, count = accelerator.reduce(nll, "sum"), accelerator.reduce(count, "sum")
        return float(nll / count.clamp(min=1))

    def save_checkpoint() -> Path | None:
        accelerator.wait_for_everyone()
        if not main:
            return None
        folder = out / "checkpoints" / f"step-{step}"
        tmp = out / "checkpoints" / f".step-{step}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        accelerator.unwrap_model(wrapper).model.save_pretrained(str(tmp))
        torch.save(
            {
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "torch_rng": torch.get_rng_state(),
            },
            tmp / "optimizer.pt",
        )
        _write_json(
            tmp / "state.json", {"step": step, "train_time": train_time, "tokens_seen": tokens_seen, "metrics": metrics}
        )
        shutil.rmtree(folder, ignore_errors=True)
        os.replace(tmp, folder)
        for old in _checkpoints(out)[: -config.keep_checkpoints]:
            shutil.rmtree(old, ignore_errors=True)
        return folder

    if main:
        out.mkdir(parents=True, exist_ok=True)
        if store:
            write_logs(store, out / "store_reviews.jsonl")
    bar = tqdm(
        total=total_steps, initial=step, desc="train", unit="step", disable=not (progress and main), dynamic_ncols=True
    )
    stream = micro_batches()
    for _ in range(step * config.gradient_accumulation):  # resume: skip what was done
        next(stream)
    last_loss = float("nan")
    shown = bar if main else None
    if step == 0 and config.eval_every:  # a fresh LoRA is the identity: this is the base model's validation loss
        _record_eval(metrics, 0, evaluate(), 0.0, shown)
    try:
        while step < total_steps:
            started = time.perf_counter()
            step_loss = 0.0
            for micro in range(config.gradient_accumulation):
                batch = collate([train_examples[i] for i in next(stream)], pad_id, device)
                sync = micro == config.gradient_accumulation - 1
                with contextlib.nullcontext() if sync else accelerator.no_sync(wrapper), autocast():
                    total, n = wrapper(**batch)
                    loss = total / n.clamp(min=1)
                accelerator.backward(loss / config.gradient_accumulation)
                step_loss += float(loss.detach()) / config.gradient_accumulation
                tokens_seen += int(batch["attention_mask"].sum())
            if world > 1:  # log the mean loss over processes, not the main process's share
                step_loss = float(accelerator.reduce(torch.tensor(step_loss, device=device), "mean"))
            accelerator.clip_grad_norm_(trainable, 1.0)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            step += 1
            train_time += time.perf_counter() - started
            last_loss = step_loss
            metrics["train_loss"].append([step, round(step_loss, 5)])
            bar.update(1)
            bar.set_postfix(
                loss=f"{step_loss:.3f}",
                lr=f"{scheduler.get_last_lr()[0]:.1e}",
                s_step=f"{train_time / step if step else 0:.2f}",
            )
            if on_step:
                on_step(step, step_loss)
            if config.eval_every and step % config.eval_every == 0 and step < total_steps:
                _record_eval(metrics, step, evaluate(), train_time, shown)
            if config.save_every and step % config.save_every == 0 and step < total_steps:
                save_checkpoint()
    except KeyboardInterrupt:
        bar.close()
        optimizer.zero_grad(set_to_none=True)  # a half-accumulated step is dropped; `step` is the last complete one
        metrics["status"] = "interrupted"
        folder = save_checkpoint() if step > 0 else None
        if main:
            _write_json(out / "metrics.json", metrics)
        raise TrainingInterrupted(step, folder) from None
    bar.close()

    val_loss = evaluate()
    _record_eval(metrics, step, val_loss, train_time, None)
    metrics["status"] = "finished"
    metrics["final"] = {
        "step": step,
        "train_loss": round(last_loss, 5) if not math.isnan(last_loss) else None,
        "train_loss_last10": round(
            sum(v for _, v in metrics["train_loss"][-10:]) / max(1, len(metrics["train_loss"][-10:])), 5
        ),
        "val_loss": None if val_loss is None else round(val_loss, 5),
        "val_perplexity": None if val_loss is None else round(math.exp(val_loss), 4),
        "train_time_s": round(train_time, 2),
        "s_per_step": round(train_time / max(1, step), 3),
        "tokens_per_s": round(tokens_seen / max(train_time, 1e-9), 1),
        "peak_memory_mb": round(peak_memory_mb(device), 1),
    }
    accelerator.wait_for_everyone()
    if main:
        accelerator.unwrap_model(wrapper).model.save_pretrained(str(out))
        # Name the base model by what it is, not by this machine's cache path.
        adapter_config = json.loads((out / "adapter_config.json").read_text(encoding="utf-8"))
        adapter_config["base_model_name_or_path"] = EMBEDDED_HUB_ID if config.model == "embedded" else config.model
        _write_json(out / "adapter_config.json", adapter_config)
        (out / "train_config.toml").write_text(config.to_toml(), encoding="utf-8")
        _write_json(out / "prompt_format.json", prompt_format(app.prompt, config, tokenizer))
        _write_json(out / "metrics.json", metrics)
        plot_losses(metrics, out / "loss_curve.png")
    return metrics


def _record_eval(metrics: dict[str, Any], step: int, val_loss: float | None, train_time: float, bar: Any) -> None:
    recent = [v for _, v in metrics["train_loss"][-10:]]
    entry = {
        "step": step,
        "train_loss": round(sum(recent) / len(recent), 5) if recent else None,
        "val_loss": None if val_loss is None else round(val_loss, 5),
        "val_perplexity": None if val_loss is None else round(math.exp(val_loss), 4),
        "train_time_s": round(train_time, 2),
    }
    metrics["evaluations"].append(entry)
    if bar is not None and val_loss is not None:
        bar.write(
            f"step {step}: train loss {'-' if entry['train_loss'] is None else format(entry['train_loss'], '.4f')}, "
            f"val loss {val_loss:.4f} "
            f"(perplexity {entry['val_perplexity']:.2f})"
        )


def _with_lora(model: Any, config: TrainConfig) -> Any:
    from peft import LoraConfig, PeftModel, get_peft_model

    if config.init_adapter:
        path = Path(config.init_adapter)
        if not (path / "adapter_config.json").exists():
            raise TrainingError(f"init_adapter {path} has no adapter_config.json; give a trained adapter folder")
        return PeftModel.from_pretrained(model, str(path), is_trainable=True)
    names = {name.rsplit(".", 1)[-1] for name, _ in model.named_modules()}
    missing = [m for m in config.target_modules if m not in names]
    if missing:
        raise TrainingError(
            f"target_modules {', '.join(missing)} not found in the model; it has e.g. "
            f"{', '.join(sorted(n for n in names if n.endswith('proj'))[:8])}"
        )
    lora = LoraConfig(
        r=config.r,
        lora_alpha=config.lora_alpha,
        lora_dropout=config.lora_dropout,
        target_modules=list(config.target_modules),
        task_type="CAUSAL_LM",
    )
    return get_peft_model(model, lora)


def _load_checkpoint(
    folder: Path | None, model: Any, optimizer: Any, scheduler: Any, metrics: dict[str, Any]
) -> tuple[int, float, int]:
    import torch
    from peft import set_peft_model_state_dict
    from safetensors.torch import load_file

    assert folder is not None
    state = json.loads((folder / "state.json").read_text(encoding="utf-8"))
    set_peft_model_state_dict(model, load_file(str(folder / "adapter_model.safetensors")))
    saved = torch.load(folder / "optimizer.pt", weights_only=False)
    optimizer.load_state_dict(saved["optimizer"])
    scheduler.load_state_dict(saved["scheduler"])
    torch.set_rng_state(saved["torch_rng"])
    for key in ("evaluations", "train_loss"):
        metrics[key] = state["metrics"][key]
    return int(state["step"]), float(state["train_time"]), int(state["tokens_seen"])
