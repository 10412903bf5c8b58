"""What a model writes from the sources: greedy replies (serving's prompt and generation settings) on held-out
grounded questions, scored for faithfulness and for restating the right source.

`python -m training.eval_grounded --adapter none --adapter training/adapter --adapter DIR --out FILE.json` runs each
model on the same items: `--demo` questions of the demo FAQ (spread over its entries, with its retrieved hits as
sources) and `--studentaid` doc2dial questions of the held-out `studentaid` domain (grounding section as source [1],
retrieved sections after it). Per model it reports the share of replies passing the numbers/URL check
(`chatbot.routing.check_grounding`), the share adding no fact or name (`training.grounded.unsupported_terms`), the
mean content-word coverage by the sources and the question, the mean length in words, ROUGE-L against the extract
(`chatbot.extract.extract_answer` of the right source) and the share with ROUGE-L >= 0.4, the share of handoff
replies, and the perplexity of the extract as target. Every reply is written to the output file for reading.
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from chatbot.records import Turn
from knowledge_base.records import Hit
from training.grounded import (
    GroundedExample,
    coverage,
    doc2dial_examples,
    doc2dial_sections,
    entry_searcher,
    unsupported_terms,
)

RESTATES = 0.4
"""ROUGE-L against the extract from which a reply counts as restating the right source."""


def demo_items(n: int, search: Any, seed: int = 0) -> list[tuple[GroundedExample, str]]:
    """`n` in-scope demo queries, round-robin over the FAQ entries, with the retrieved hits as sources; the gold
    is the extract of the right entry for the query."""
    from chatbot.extract import extract_answer
    from knowledge_base.kb import demo_faq_path
    from knowledge_base.loaders import load_faq

    demo = demo_faq_path()
    by_id = {e.id: e for e in load_faq(demo)}
    rows = [json.loads(line) for line in demo.with_name("store_queries.jsonl").read_text("utf-8").splitlines() if line]
    per_entry: dict[str, list[str]] = {}
    for row in rows:
        if row.get("faq_id") in by_id:
            per_entry.setdefault(row["faq_id"], []).append(row["query"])
    rng = random.Random(seed)
    for queries in per_entry.values():
        rng.shuffle(queries)
    out: list[tuple[GroundedExample, str]] = []
    while len(out) < n and any(per_entry.values()):
        for faq_id, queries in per_entry.items():
            if queries and len(out) < n:
                query = queries.pop()
                sources = tuple(h.entry for h in search(query))
                gold = extract_answer(query, (Hit(entry=by_id[faq_id], score=1.0),)).text
                out.append((GroundedExample(f"demo:{faq_id}", (Turn("user", query),), sources, gold, "faq"), gold))
    return out


def studentaid_items(data: Path, n: int, work: Path, kb_config: Any, seed: int = 0) -> list[tuple[Any, str]]:
    """`n` doc2dial `studentaid` turns (held out of training) whose agent reply is faithful to its span; the gold
    is the extract of the grounding section for the customer's message."""
    from chatbot.extract import extract_answer

    documents = data / "doc2dial" / "documents_validation_no_dmv.jsonl"
    sections = doc2dial_sections(documents, ("studentaid",))
    search = entry_searcher(sections, work / "kb-studentaid", kb_config)
    examples, _ = doc2dial_examples(
        data / "doc2dial" / "turns_validation_no_dmv.jsonl", documents, search, domains=("studentaid",)
    )
    examples = random.Random(seed).sample(examples, min(n, len(examples)))
    return [
        (ex, extract_answer(ex.history[-1].content, (Hit(entry=ex.sources[0], score=1.0),)).text) for ex in examples
    ]


def score_reply(reply: str, example: GroundedExample, gold: str) -> dict[str, Any]:
    """The figures of one reply (see the module docstring)."""
    from chatbot.routing import check_grounding, supported_facts
    from training.evaluate import rouge_l
    from training.grounded import HANDOFF_REPLY

    evidence = [e.answer for e in example.sources] + [t.content for t in example.history if t.role == "user"]
    grounding = check_grounding(reply, supported_facts(evidence))
    added = unsupported_terms(reply, evidence)
    return {
        "numbers_urls_ok": grounding.ok,
        "no_added_terms": not added,
        "added": added,
        "coverage": round(coverage(reply, evidence), 4),
        "words": len(reply.split()),
        "rouge_l": round(rouge_l(reply, gold), 4),
        "handoff": reply.strip() == HANDOFF_REPLY,
    }


def evaluate_model(loaded: Any, app: Any, items: Sequence[tuple[GroundedExample, str]]) -> dict[str, Any]:
    """Generate and score every item with `loaded`; returns the summary and the replies."""
    from chatbot.generate import SingleStream
    from chatbot.prompt import build_messages, render_prompt
    from training.evaluate import perplexity
    from training.grounded import render_grounded

    rows = []
    for example, gold in items:
        hits = [Hit(entry=e, score=1.0) for e in example.sources]
        messages = build_messages(app.prompt, hits, example.history, "en")
        ids = render_prompt(loaded.tokenizer, messages, app.prompt.max_prompt_tokens)
        reply = "".join(SingleStream(loaded, ids, app.generation)).strip()
        rows.append({"id": example.id, "question": example.history[-1].content, "gold": gold, "reply": reply,
                     **score_reply(reply, example, gold)})  # fmt: skip
        print(json.dumps(rows[-1], ensure_ascii=False), flush=True)  # a long run's replies survive an interruption
    targets = [GroundedExample(ex.id, ex.history, ex.sources, gold, ex.kind) for ex, gold in items]
    rendered = render_grounded(targets, loaded.tokenizer, app.prompt, 1024)
    pad = loaded.tokenizer.pad_token_id if loaded.tokenizer.pad_token_id is not None else 0
    ppl, _ = perplexity(loaded.model, rendered, pad, loaded.device, loaded.dtype)
    n = len(rows)
    summary = {
        "n": n,
        "numbers_urls_ok": round(sum(r["numbers_urls_ok"] for r in rows) / n, 4),
        "no_added_terms": round(sum(r["no_added_terms"] for r in rows) / n, 4),
        "coverage": round(sum(r["coverage"] for r in rows) / n, 4),
        "mean_words": round(sum(r["words"] for r in rows) / n, 2),
        "rouge_l": round(sum(r["rouge_l"] for r in rows) / n, 4),
        "restates_share": round(sum(r["rouge_l"] >= RESTATES for r in rows) / n, 4),
        "handoff_share": round(sum(r["handoff"] for r in rows) / n, 4),
        "perplexity": round(ppl, 4),
    }
    return {"summary": summary, "replies": rows}


def main(argv: Sequence[str] | None = None) -> int:
    from chatbot.config import AppConfig
    from chatbot.model import load_model
    from knowledge_base.config import KBConfig
    from knowledge_base.kb import demo_faq_path
    from knowledge_base.loaders import load_faq

    parser = argparse.ArgumentParser(prog="python -m training.eval_grounded", description=__doc__)
    parser.add_argument("--adapter", action="append", required=True, help="adapter folder or `none`; repeatable")
    parser.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared" / "data"))
    parser.add_argument("--demo", type=int, default=16, help="demo FAQ questions [16]")
    parser.add_argument("--studentaid", type=int, default=8, help="doc2dial studentaid questions [8]")
    parser.add_argument("--embedder", default="hash:256", help="retrieval embedder for the sources [hash:256]")
    parser.add_argument("--out", required=True, help="JSON file: summaries and every reply")
    args = parser.parse_args(argv)
    app = AppConfig.load()
    kb_config = KBConfig(embedder=args.embedder)
    with tempfile.TemporaryDirectory() as work:
        search = entry_searcher(load_faq(demo_faq_path()), Path(work) / "kb-demo", kb_config)
        sets = {
            "demo": demo_items(args.demo, search),
            "studentaid": studentaid_items(Path(args.data), args.studentaid, Path(work), kb_config),
        }
    results: dict[str, Any] = {}
    for adapter in args.adapter:
        loaded = load_model(app.model, adapter=adapter)
        results[adapter] = {name: evaluate_model(loaded, app, items) for name, items in sets.items()}
        print(json.dumps({adapter: {k: v["summary"] for k, v in results[adapter].items()}}), flush=True)
    Path(args.out).write_text(json.dumps(results, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
