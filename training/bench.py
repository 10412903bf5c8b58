"""Fine-tuning speed and memory: seconds per optimizer step and peak memory of LoRA training setups.

`python -m training.bench [--steps 3] [--json]` runs each setup in a fresh process (so each peak resident set size
is its own) on the same batch: 8 examples of the shipped sample logs, padded to 256 tokens, SmolLM2-135M, LoRA r=16
on attention + MLP, AdamW. Setups: the plain transformers loss (full (B, T, 49152) logits) in fp32 and in bf16,
and this project's `LabelledLoss` (hidden states gathered at labelled positions, lm_head in chunks) in bf16, with
and without gradient checkpointing. The first step (kernel preparation) is not timed.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

SETUPS = {
    "full_logits_fp32": {"loss": "full", "precision": "fp32", "checkpointing": False},
    "full_logits_bf16": {"loss": "full", "precision": "bf16", "checkpointing": False},
    "labelled_bf16": {"loss": "labelled", "precision": "bf16", "checkpointing": False},
    "labelled_bf16_checkpointing": {"loss": "labelled", "precision": "bf16", "checkpointing": True},
}
SAMPLES = Path(__file__).resolve().parent / "samples" / "train.jsonl"


def run_setup(name: str, steps: int, batch_size: int, length: int) -> dict[str, float]:
    """One setup in this process: `{"s_per_step", "peak_rss_mb", "loss"}`."""
    import contextlib
    import resource

    import torch
    from peft import LoraConfig, get_peft_model

    from chatbot.config import ModelConfig, PromptConfig
    from chatbot.model import load_model
    from training.config import ATTENTION, MLP
    from training.data import load_logs
    from training.examples import build_examples, collate
    from training.loss import LabelledLoss

    setup = SETUPS[name]
    bf16 = setup["precision"] == "bf16"
    loaded = load_model(ModelConfig(dtype="bfloat16" if bf16 else "float32"), adapter="none", trainable=True)
    conversations, _ = load_logs(SAMPLES)
    examples = build_examples(conversations, loaded.tokenizer, PromptConfig(), length)
    examples = sorted(examples, key=lambda e: -len(e.input_ids))[:batch_size]  # the longest: a full batch
    batch = collate(examples, loaded.tokenizer.pad_token_id, multiple=length)
    model = get_peft_model(loaded.model, LoraConfig(r=16, lora_alpha=32, target_modules=list(ATTENTION + MLP)))
    if setup["checkpointing"]:
        model.get_base_model().activation_checkpointing_enable({"use_reentrant": False})
    model.train()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    wrapper = LabelledLoss(model)
    times, loss = [], 0.0
    for step in range(steps + 1):
        start = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else contextlib.nullcontext():
            if setup["loss"] == "full":
                out = model(**batch)
                loss_t = out.loss
            else:
                total, n = wrapper(**batch)
                loss_t = total / n
        loss_t.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        loss = float(loss_t.detach())
        if step:
            times.append(time.perf_counter() - start)
    return {
        "s_per_step": round(sorted(times)[len(times) // 2], 2),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "loss": round(loss, 4),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=3, help="timed steps per setup (median reported) [3]")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--length", type=int, default=256)
    parser.add_argument("--setups", default=",".join(SETUPS), help="comma-separated subset of " + ", ".join(SETUPS))
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # internal: run one setup and print its JSON
    args = parser.parse_args(argv)
    if args.one:
        print(json.dumps(run_setup(args.one, args.steps, args.batch_size, args.length)))
        return 0
    results = {}
    for name in args.setups.split(","):
        cmd = [sys.executable, "-m", "training.bench", "--one", name, "--steps", str(args.steps),
               "--batch-size", str(args.batch_size), "--length", str(args.length)]  # fmt: skip
        done = subprocess.run(cmd, capture_output=True, text=True, check=True)
        results[name] = json.loads(done.stdout.strip().splitlines()[-1])
        if not args.json:
            print(f"{name:30} {results[name]['s_per_step']:6.2f} s/step  peak {results[name]['peak_rss_mb']:6} MB")
    if args.json:
        print(json.dumps({"batch": [args.batch_size, args.length], "results": results}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
