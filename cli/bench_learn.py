"""`chatbot bench learn`: replay held-out support conversations as if agents reviewed the drafts, train the next
adapter on the reviews, gate and activate it, replay a second batch, and compare with a control trained without the
agents' edits (`training/learn_bench.py`); JSON results, a plot and a short table."""

from __future__ import annotations

import json
import sys
from pathlib import Path

DEFAULT_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"


def _table(results: dict) -> str:
    lines = [f"{'':34s} {'accept':>7s} {'of drafts':>9s} {'ROUGE-L':>8s} {'unsupported':>11s}"]

    def row(label: str, figures: dict) -> str:
        def cell(key: str, width: int) -> str:
            value = figures.get(key)
            return f"{'-' if value is None else format(value, '.3f'):>{width}s}"

        return (f"{label:34s} {cell('acceptance', 7)} {cell('acceptance_of_drafts', 9)} {cell('rouge_l', 8)} "
                f"{cell('unsupported_share', 11)}")  # fmt: skip

    lines.append(row("tuning part, starting adapter", results["tuning"]))
    lines.append(row("batch 1, starting adapter", results["batch1"]))
    for seed in results["batch2"]:
        lines.append(row(f"batch 2, learned (seed {seed['seed']})", seed["learned"]))
        lines.append(row(f"batch 2, control (seed {seed['seed']})", seed["control"]))
        rise = seed["rise"]
        lines.append(f"  rise {rise['difference']:+.3f}, bootstrap std {rise['std']:.3f}, "
                     f"95% {rise['low']:+.3f}..{rise['high']:+.3f}; gate: learned "
                     f"{'ok' if seed['learned']['gate'].get('ok') else 'refused'}, control "
                     f"{'ok' if seed['control']['gate'].get('ok') else 'refused'}")  # fmt: skip
    return "\n".join(lines)


def cmd_learn(args) -> int:
    import os

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import dataclasses

    from chatbot.adapters import shipped_adapter
    from chatbot.config import AppConfig
    from chatbot.settings import chatbot_home
    from training.learn_bench import LearnBenchConfig, plot, run_learn_bench
    from training.trainer import train

    data = Path(args.data) if args.data else DEFAULT_DATA
    try:
        cfg = LearnBenchConfig(
            batch_size=args.batch_size, tune_size=args.tune_size, threshold=args.threshold, steps=args.steps,
            train_batch=args.train_batch, max_length=args.max_length, learning_rate=args.learning_rate,
            seeds=tuple(int(s) for s in args.seeds.split(",")), split_seed=args.split_seed,
            bootstrap=args.bootstrap, gate_limit=args.gate_limit, max_new_tokens=args.max_new_tokens,
            faithful_edits=not args.all_edits,
        )  # fmt: skip
    except ValueError as exc:
        print(f"chatbot bench learn: {exc}", file=sys.stderr)
        return 2
    app = AppConfig.load(getattr(args, "config", None))
    start = args.adapter or (str(shipped_adapter()) if shipped_adapter() else "none")
    model = dataclasses.replace(app.model, adapter=start, cache_dir=str(app.model.model_cache_dir()),
                                threads=args.threads)  # fmt: skip
    if args.backend:
        model = dataclasses.replace(model, backend=args.backend)
    app = dataclasses.replace(app, model=model, llamacpp=dataclasses.replace(app.llamacpp, threads=args.threads))

    def trainer(config, examples, out):
        return train(config, [], out, app=app, progress=not args.quiet)

    work = Path(args.work) if args.work else chatbot_home().resolve() / "bench" / "learn"
    try:
        results = run_learn_bench(app, data, work, cfg, trainer, progress=not args.quiet)
    except (FileNotFoundError, ValueError) as exc:
        print(f"chatbot bench learn: {exc}", file=sys.stderr)
        return 2
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    figure = plot(results, out.with_suffix(".png"))
    print(_table(results))
    print(f"\nwritten to {out} and {figure}")
    return 0


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "learn", help="the learning loop on replayed doc2dial conversations: acceptance before/after vs a control"
    )
    p.add_argument("--data", help="the shared data folder (default: ../shared/data beside the repository)")
    p.add_argument("--out", default="chatbot/benchmarks/learn_cpu.json", help="JSON results (the plot beside it)")
    p.add_argument("--work", help="working folder (default: $CHATBOT_HOME/bench/learn; replaced each run)")
    p.add_argument("--adapter", help="starting adapter folder or `none` (default: the shipped training/adapter)")
    p.add_argument("--backend", choices=("transformers", "llamacpp"), default="llamacpp",
                   help="generation backend for the replays [llamacpp]")  # fmt: skip
    p.add_argument("--batch-size", type=int, default=40, help="conversations in batch 1 and in batch 2 [40]")
    p.add_argument("--tune-size", type=int, default=12, help="conversations of the tuning part [12]")
    p.add_argument("--threshold", type=float, default=0.4, help="ROUGE-L F1 to send a draft unedited [0.4]")
    p.add_argument("--steps", type=int, default=20, help="optimizer steps per training run [20]")
    p.add_argument("--train-batch", type=int, default=4, help="examples per training step [4]")
    p.add_argument("--max-length", type=int, default=384, help="most tokens of a training example [384]")
    p.add_argument("--learning-rate", type=float, default=2e-4, help="peak learning rate [2e-4]")
    p.add_argument("--seeds", default="0", help="training seeds, comma-separated; each trains both adapters [0]")
    p.add_argument("--split-seed", type=int, default=0, help="seed of the split into parts [0]")
    p.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples for the spread [1000]")
    p.add_argument("--gate-limit", type=int, default=8, help="tuning queries the gate compares on [8]")
    p.add_argument("--max-new-tokens", type=int, default=80, help="most tokens of one draft [80]")
    p.add_argument("--threads", type=int, default=1, help="generation and training threads [1]")
    p.add_argument("--all-edits", action="store_true",
                   help="train on every edit, also those the draft's sources do not support")  # fmt: skip
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=cmd_learn)
