"""`chatbot bench learn`: replay held-out support conversations as if agents reviewed the drafts, learn phrasings
and train the next adapter from the reviews, gate both, replay a second batch with them, and compare with a control
that learned nothing (`training/learn_bench.py`); JSON results, a plot and a short table."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def _table(results: dict) -> str:
    lines = [f"{'':36s} {'accept':>7s} {'of drafts':>9s} {'ROUGE-L':>8s} {'unsupported':>11s} {'agent src':>9s}"]

    def row(label: str, figures: dict) -> str:
        def cell(key: str, width: int) -> str:
            value = figures.get(key)
            return f"{'-' if value is None else format(value, '.3f'):>{width}s}"

        return (f"{label:36s} {cell('acceptance', 7)} {cell('acceptance_of_drafts', 9)} {cell('rouge_l', 8)} "
                f"{cell('unsupported_share', 11)} {cell('top_source_is_agents', 9)}")  # fmt: skip

    for split in results["splits"]:
        seed, learning = split["split_seed"], split["learning"]
        lines.append(row(f"split {seed}: batch 1, starting", split["batch1"]))
        lines.append(f"  learned {learning['n_phrasings']} phrasings for {learning['entries_taught']} entries, "
                     f"{learning['examples']} training examples; batch 2 on taught entries "
                     f"{learning['batch2_on_taught_entries']}")  # fmt: skip
        for arm, figures in split["batch2"].items():
            lines.append(row(f"split {seed}: batch 2, {arm}", figures))
    lines.append("pooled over the splits (rise over the control, 95% bootstrap over dialogues):")
    summary = results["summary"]
    lines.append(f"  control {summary['control_acceptance']}")
    for arm, figures in summary.items():
        if not isinstance(figures, dict):
            continue
        rise = figures["rise"]
        lines.append(f"  {arm}: acceptance {figures['acceptance']}, rise {rise['difference']:+.3f} "
                     f"(std {rise['std']:.3f}, {rise['low']:+.3f}..{rise['high']:+.3f}), by split "
                     f"{', '.join(f'{r:+.3f}' for r in figures['rise_by_split'])}")  # fmt: skip
    return "\n".join(lines)


def cmd_learn(args) -> int:
    import os

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import dataclasses

    from chatbot.adapters import shipped_adapter
    from chatbot.config import AppConfig
    from chatbot.settings import chatbot_home
    from training.learn_bench import LearnBenchConfig, Paused, plot, run_learn_bench
    from training.trainer import train

    data = Path(args.data) if args.data else DEFAULT_DATA
    try:
        cfg = LearnBenchConfig(
            batch_size=args.batch_size, tune_size=args.tune_size, threshold=args.threshold, steps=args.steps,
            train_batch=args.train_batch, max_length=args.max_length, learning_rate=args.learning_rate,
            seed=args.seed, split_seeds=tuple(int(s) for s in args.split_seeds.split(",")),
            arms=tuple(a.strip() for a in args.arms.split(",")), all_turns=not args.one_turn,
            bootstrap=args.bootstrap, gate_limit=args.gate_limit, max_new_tokens=args.max_new_tokens,
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
    if args.fresh:
        shutil.rmtree(work, ignore_errors=True)
    try:
        results = run_learn_bench(app, data, work, cfg, trainer, progress=not args.quiet, max_stages=args.max_stages,
                                  report_only=args.report_only)  # fmt: skip
    except Paused as exc:
        print(f"chatbot bench learn: {exc}")
        return 3
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


ARMS = "control,phrasings,adapter,both"
"""`training.learn_bench.ARMS` (not imported here: `--help` stays instant)."""


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "learn", help="the learning loop on replayed doc2dial conversations: acceptance before/after vs a control"
    )
    p.add_argument("--data", help="the shared data folder (default: ../shared/data beside the repository)")
    p.add_argument("--out", default="chatbot/benchmarks/learn_cpu.json", help="JSON results (the plot beside it)")
    p.add_argument("--work", help="working folder, kept to continue a stopped run (default: $CHATBOT_HOME/bench/learn)")
    p.add_argument("--fresh", action="store_true", help="empty the working folder first")
    p.add_argument("--report-only", action="store_true",
                   help="run nothing: report the steps the working folder holds (arms where they ran)")  # fmt: skip
    p.add_argument("--max-stages", type=int,
                   help="run at most this many steps, then stop (exit 3); the same command continues")  # fmt: skip
    p.add_argument("--adapter", help="starting adapter folder or `none` (default: the shipped training/adapter)")
    p.add_argument("--backend", choices=("transformers", "llamacpp"), default="llamacpp",
                   help="generation backend for the replays [llamacpp]")  # fmt: skip
    p.add_argument("--batch-size", type=int, default=58, help="dialogues in batch 1 and in batch 2 [58]")
    p.add_argument("--tune-size", type=int, default=12, help="dialogues of the tuning part [12]")
    p.add_argument("--one-turn", action="store_true", help="replay one agent turn per dialogue, not every one")
    p.add_argument("--threshold", type=float, default=0.4, help="ROUGE-L F1 to send a draft unedited [0.4]")
    p.add_argument("--steps", type=int, default=20, help="optimizer steps per training run [20]")
    p.add_argument("--train-batch", type=int, default=4, help="examples per training step [4]")
    p.add_argument("--max-length", type=int, default=384, help="most tokens of a training example [384]")
    p.add_argument("--learning-rate", type=float, default=2e-4, help="peak learning rate [2e-4]")
    p.add_argument("--seed", type=int, default=0, help="training seed [0]")
    p.add_argument("--split-seeds", default="0,1", help="seeds of the splits into parts, comma-separated [0,1]")
    p.add_argument("--arms", default=ARMS, help=f"batch-2 replays, comma-separated (control is needed) [{ARMS}]")
    p.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples for the spread [1000]")
    p.add_argument("--gate-limit", type=int, default=8, help="tuning queries the gate compares on [8]")
    p.add_argument("--max-new-tokens", type=int, default=80, help="most tokens of one draft [80]")
    p.add_argument("--threads", type=int, default=1, help="generation and training threads [1]")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=cmd_learn)
