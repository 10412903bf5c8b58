"""`chatbot train`, `chatbot eval-dialogue`, `chatbot export-reviews`, `chatbot adapters list|add|activate`.

Thin: each parser calls a typed function in `training`. Nothing heavy is imported here (`--help` stays instant);
`training.config` is a plain dataclass module.
"""

from __future__ import annotations

import json
import sys
from typing import Any


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


_FLAG_TYPES = {"integer": int, "number": float}


def _train_flags(parser) -> None:
    """One flag per `TrainConfig` field, read from its pydantic schema (docstring as help, default, choices); unset
    flags leave the file's value alone, and the values are validated with the file's (`load_config`)."""
    import argparse

    from chatbot.settings import config_schema
    from training.config import TrainConfig

    group = parser.add_argument_group("training settings (override the --config file; defaults in brackets)")
    for name, spec in config_schema(TrainConfig)["properties"].items():
        kind = next((s for s in spec.get("anyOf", [spec]) if s.get("type") != "null"), spec)
        default = spec.get("default")
        shown = ",".join(default) if isinstance(default, list) else default
        help_text = f"{' '.join(spec.get('description', '').split())} [{shown}]".replace("%", "%%")
        flag = dict(dest=f"cfg_{name}", default=None, help=help_text)
        if kind.get("type") == "boolean":
            flag["action"] = argparse.BooleanOptionalAction
        elif kind.get("type") == "array":
            flag.update(metavar="A,B", type=lambda s: [x.strip() for x in s.split(",") if x.strip()])
        elif "enum" in kind:
            flag["choices"] = kind["enum"]
        else:
            flag.update(metavar=name.upper(), type=_FLAG_TYPES.get(kind.get("type"), str))
        group.add_argument(_flag(name), **flag)


def train_overrides(args) -> dict[str, Any]:
    """The `TrainConfig` fields given as flags."""
    return {k[4:]: v for k, v in vars(args).items() if k.startswith("cfg_") and v is not None}


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "train",
        help="LoRA fine-tuning on support logs (progress bar, checkpoints, metrics in OUT)",
        description="Fine-tune a LoRA adapter on support logs. Settings: --config FILE (TOML, the TrainConfig "
        "fields) then flags. Ctrl-C saves a checkpoint; --resume continues. Under `accelerate launch` the same "
        "command trains on several GPUs.",
    )
    p.add_argument(
        "--logs",
        action="append",
        default=[],
        metavar="FILE",
        help="training logs: .jsonl conversations (DESIGN.md) or .csv question/answer pairs; repeatable",
    )
    p.add_argument("--eval-logs", metavar="FILE", help="validation logs (default: a seeded share of --logs)")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder (adapter, config, metrics, curve)")
    p.add_argument("--config", dest="train_config", metavar="FILE", help="TOML file of training settings")
    p.add_argument(
        "--from-store",
        action="store_true",
        help="add the store's approved/edited drafts and agents' handoff replies (mixed with --logs)",
    )
    p.add_argument("--resume", action="store_true", help="continue from the newest checkpoint in OUT/checkpoints")
    p.add_argument("--app-config", metavar="FILE", help="application config (prompt, store); default: as `chatbot`")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    _train_flags(p)
    p.set_defaults(func=run_train)

    e = subparsers.add_parser(
        "eval-dialogue",
        help="perplexity on assistant turns and ROUGE-L of generated replies",
        description="Evaluate the dialogue model on support logs.",
    )
    e.add_argument("--logs", required=True, metavar="FILE", help="held-out logs (.jsonl or Q/A .csv)")
    e.add_argument("--adapter", help="adapter folder or name; `none` = base model; default: the active adapter")
    e.add_argument("--sample", type=int, default=32, metavar="N", help="assistant turns generated for ROUGE-L [32]")
    e.add_argument("--compare", action="store_true", help="base model and adapter side by side in one run")
    e.add_argument(
        "--max-conversations",
        type=int,
        default=0,
        metavar="N",
        help="evaluate a seeded sample of N conversations (0 = all) [0]",
    )
    e.add_argument("--max-length", type=int, default=512, help="most tokens of one perplexity example [512]")
    e.add_argument("--max-new-tokens", type=int, default=96, help="most tokens of a generated reply [96]")
    e.add_argument("--seed", type=int, default=0, help="seed of the ROUGE-L sample [0]")
    e.add_argument("--json", action="store_true", help="print one JSON object with DESIGN.md's keys")
    e.add_argument("--quiet", action="store_true", help="no progress bars")
    e.set_defaults(func=run_eval)

    x = subparsers.add_parser("export-reviews", help="write agent-approved/edited drafts and handoff replies as logs")
    x.add_argument("--out", required=True, metavar="FILE", help="JSONL file to write (DESIGN.md's log format)")
    x.set_defaults(func=run_export)

    a = subparsers.add_parser("adapters", help="list, add and activate LoRA adapters (activation is gated)")
    asub = a.add_subparsers(dest="adapters_command", required=True, metavar="ACTION")
    lst = asub.add_parser("list", help="registered adapters with validation perplexity; * marks the active one")
    lst.add_argument("--json", action="store_true", help="print a JSON list")
    lst.set_defaults(func=run_adapters_list)
    add = asub.add_parser("add", help="register a trained output folder (copied, without checkpoints)")
    add.add_argument("folder", help="a `chatbot train --out` folder")
    add.add_argument("--name", help="registry name (default: the folder's name)")
    add.set_defaults(func=run_adapters_add)
    act = asub.add_parser("activate", help="make an adapter the active one, unless it answers the [eval] files worse")
    act.add_argument("name", help="a registered name, `shipped`, `none`, or a trained folder (registered on the way)")
    act.add_argument("--force", action="store_true", help="activate even when the gate refuses")
    act.set_defaults(func=run_adapters_activate)


def _fail(command: str, exc: Exception) -> int:
    print(f"chatbot {command}: {exc}", file=sys.stderr)
    return 1


def run_train(args) -> int:
    from chatbot.config import AppConfig
    from chatbot.model import ModelError
    from training.config import TrainConfig
    from training.data import LogError
    from training.trainer import TrainingError, TrainingInterrupted, train

    config = TrainConfig.load(args.train_config, train_overrides(args))
    if not args.logs and not args.from_store and not config.grounded:
        print("chatbot train: give --logs FILE (repeatable), --grounded FILE and/or --from-store", file=sys.stderr)
        return 2
    app = AppConfig.load(args.app_config or args.config)
    try:
        metrics = train(
            config,
            args.logs,
            args.out,
            eval_logs=args.eval_logs,
            from_store=args.from_store,
            resume=args.resume,
            app=app,
            progress=not args.quiet,
        )
    except TrainingInterrupted as exc:
        where = f"checkpoint {exc.checkpoint}" if exc.checkpoint else "no checkpoint (no step finished)"
        print(
            f"chatbot train: interrupted at step {exc.step}; kept {where}. Continue with the same command and "
            "--resume.",
            file=sys.stderr,
        )
        return 130
    except (TrainingError, LogError, ModelError) as exc:
        return _fail("train", exc)
    if not metrics.get("main_process", True):  # under accelerate launch / torchrun only rank 0 reports
        return 0
    final = metrics["final"]
    print(
        f"done: {final['step']} steps, train loss {final['train_loss']}, val loss {final['val_loss']} "
        f"(perplexity {final['val_perplexity']}), {final['s_per_step']} s/step, peak {final['peak_memory_mb']} MB; "
        f"adapter in {args.out}. Activate it with `chatbot adapters activate {args.out}`."
    )
    return 0


def run_eval(args) -> int:
    from chatbot.config import AppConfig
    from chatbot.model import ModelError
    from training.data import LogError
    from training.evaluate import design_json, evaluate_dialogue

    app = AppConfig.load(args.config)
    try:
        result = evaluate_dialogue(
            args.logs,
            adapter=args.adapter,
            sample=args.sample,
            compare=args.compare,
            max_conversations=args.max_conversations,
            max_length=args.max_length,
            max_new_tokens=args.max_new_tokens,
            seed=args.seed,
            app=app,
            progress=not args.quiet,
        )
    except (LogError, ModelError, ValueError) as exc:
        return _fail("eval-dialogue", exc)
    if args.json:
        print(json.dumps(design_json(result)))
        return 0
    rows = [("base", result["base"]), ("adapter", result["adapter"])] if args.compare else [("model", result)]
    print(f"{'':10} {'conversations':>13} {'tokens':>8} {'perplexity':>11} {'ROUGE-L':>8}  adapter")
    for label, r in rows:
        rouge = "-" if r["rouge_l"] is None else f"{r['rouge_l']:.4f}"
        print(
            f"{label:10} {r['n_conversations']:>13} {r['n_tokens']:>8} {r['perplexity']:>11.3f} {rouge:>8}  "
            f"{r['adapter'] or 'none'}"
        )
    if args.compare:
        ratios = result["ratios"]
        print(f"adapter / base: perplexity x{ratios['perplexity']}, ROUGE-L x{ratios['rouge_l']}")
    return 0


def run_export(args) -> int:
    from chatbot.config import AppConfig
    from training.reviews import export_reviews

    counts = export_reviews(args.out, AppConfig.load(args.config))
    print(
        f"wrote {counts['total']} conversations to {args.out} ({counts['approved']} approved, {counts['edited']} "
        f"edited, {counts['handoff']} handoff replies)"
    )
    return 0


def run_adapters_list(args) -> int:
    from chatbot.adapters import list_adapters

    adapters = list_adapters()
    if args.json:
        print(
            json.dumps(
                [
                    {
                        "name": a.name,
                        "path": str(a.path),
                        "val_perplexity": a.val_perplexity,
                        "steps": a.steps,
                        "base_model": a.base_model,
                        "active": a.active,
                    }
                    for a in adapters
                ]
            )
        )
        return 0
    if not adapters:
        print("no adapters: train one with `chatbot train`, then `chatbot adapters activate OUT`")
    for a in adapters:
        ppl = "-" if a.val_perplexity is None else f"{a.val_perplexity:.3f}"
        print(f"{'*' if a.active else ' '} {a.name:24} val perplexity {ppl:>8}  steps {a.steps or '-':>5}  {a.path}")
    return 0


def run_adapters_add(args) -> int:
    from chatbot.adapters import AdapterError, register

    try:
        path = register(args.folder, args.name)
    except AdapterError as exc:
        return _fail("adapters add", exc)
    print(f"registered {path.name} ({path}); activate it with `chatbot adapters activate {path.name}`")
    return 0


def run_adapters_activate(args) -> int:
    from chatbot.adapters import AdapterError, GateError, activate
    from chatbot.config import AppConfig

    try:
        record = activate(args.name, force=args.force, config=AppConfig.load(args.config), progress=True)
    except GateError as exc:
        print(exc.result.text(), file=sys.stderr)
        return _fail("adapters activate", exc)
    except AdapterError as exc:
        return _fail("adapters activate", exc)
    print("gate: " + "; ".join(record["gate"]))
    ppl = record["val_perplexity"]
    print(
        f"active adapter: {record['name']} (val perplexity {ppl if ppl is not None else '-'}; was "
        f"{record['previous']}){' [forced]' if record['forced'] else ''}"
    )
    return 0
