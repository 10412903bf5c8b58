"""`chatbot eval answers`: the end-to-end answer evaluation through the engine on an FAQ, labelled queries and
optional multi-turn conversations.

The FAQ is built into a temporary knowledge base and the replies are recorded in a temporary store, so the live
knowledge base and store (`$CHATBOT_HOME`) are untouched; generation uses the configured backend.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path
from typing import Any, TextIO

FIGURES = (
    "answered_accuracy", "answered_share", "oos_answered", "composed_share", "unsupported_share", "fallback_share",
    "followup_accuracy", "first_turn_accuracy", "latency_s_p50", "latency_s_p95",
)  # fmt: skip


def eval_answers(faq: Path, queries: Path, conversations: Path | None = None, *, config_path: str | None = None,
                 adapter: str | None = None, limit: int = 0, out: Path | None = None, progress: bool = True,
                 backend: Any = None) -> dict[str, Any]:  # fmt: skip
    """Evaluate the configured engine on `faq` with `queries` (and `conversations`); returns the figures
    (`AnswerReport.to_dict()`) and writes every reply as one JSON line to `out`. `backend`: a generation backend
    to use instead of the configured one (it is warmed up and closed here)."""
    from chatbot.answer_eval import evaluate_answers, spread
    from chatbot.config import AppConfig
    from chatbot.engine import Engine
    from chatbot.store import Store
    from knowledge_base.kb import KnowledgeBase
    from knowledge_base.loaders import load_conversations, load_faq, load_queries

    config = AppConfig.load(config_path, {"model.adapter": adapter} if adapter is not None else None)
    entries = load_faq(faq)  # every input is validated before a model loads
    rows = spread(load_queries(queries), limit)
    dialogues = spread(load_conversations(conversations), limit) if conversations else []
    with tempfile.TemporaryDirectory(prefix="chatbot-eval-") as tmp:
        kb = KnowledgeBase(Path(tmp) / "kb", config.kb)
        kb.build_entries(entries, source=str(faq), progress=progress)
        store = Store(config.store, path=Path(tmp) / "eval.sqlite3")
        engine = Engine.from_config(config, kb=kb, embedder=kb.embedder, backend=backend, store=store).warm_up()
        try:
            report = evaluate_answers(engine, rows, dialogues, progress=progress)
        finally:
            engine.close()
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        with open(out, "w", encoding="utf-8") as f:
            for record in report.replies:
                f.write(json.dumps(record.to_dict(), ensure_ascii=False) + "\n")
    return report.to_dict()


def print_table(result: dict[str, Any], stream: TextIO) -> None:
    """The figures as a short table."""
    routes = result["routes"]
    stream.write(f"{result['n_queries']} queries, {result['n_conversations']} conversations, "
                 f"{result['n_replies']} replies: " + ", ".join(
                     f"{k} {'-' if v is None else f'{v:.1%}'}" for k, v in routes.items()) + "\n")  # fmt: skip
    for key in FIGURES:
        value = result[key]
        stream.write(f"{key:20s} {'-' if value is None else f'{value:.4f}'}\n")


def run(args) -> int:
    from chatbot.engine import InputError
    from chatbot.model import ModelError
    from knowledge_base.kb import KnowledgeBaseError
    from knowledge_base.loaders import FaqValidationError

    if args.limit < 0:
        print("chatbot eval answers: --limit must be >= 0 (0 = all)", file=sys.stderr)
        return 2
    try:
        result = eval_answers(args.faq, args.queries, args.conversations, config_path=args.config,
                              adapter=args.adapter, limit=args.limit, out=args.out,
                              progress=not args.quiet)  # fmt: skip
    except (FaqValidationError, KnowledgeBaseError, InputError, ModelError) as exc:
        print(f"chatbot eval answers: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(result))
    else:
        print_table(result, sys.stdout)
    if args.out is not None:
        print(f"replies written to {args.out}", file=sys.stderr)
    return 0


def register(subparsers) -> None:
    parser = subparsers.add_parser("eval", help="end-to-end evaluation through the engine")
    sub = parser.add_subparsers(dest="eval_command", required=True, metavar="WHAT")
    p = sub.add_parser(
        "answers",
        help="answer quality on an FAQ, labelled queries and conversations (routes, accuracy, claims, latency)",
    )
    p.add_argument("--faq", type=Path, required=True, help="FAQ file (.jsonl, .csv or .md)")
    p.add_argument("--queries", type=Path, required=True, help="query file: query, faq_id (empty = out of scope)")
    p.add_argument("--conversations", type=Path, help="multi-turn file (.jsonl): turns, faq_id of the last turn")
    p.add_argument("--adapter", help="LoRA adapter folder or name (`none` for the base model)")
    p.add_argument("--limit", type=int, default=0, metavar="N",
                   help="at most N queries and N conversations, spread over each file (default: all)")  # fmt: skip
    p.add_argument("--out", type=Path, metavar="FILE", help="write every reply as one JSON line (for reading)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)
