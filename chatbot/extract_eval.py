"""How well the extractive answer answers: retrieval on an evaluation set, then the top hit's extract against the
gold grounding (the words the human agent answered from), beside today's fallbacks measured in the same run: the
whole FAQ answer and its first 2,400 characters."""

from __future__ import annotations

import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from chatbot.extract import Encode, extract_answer
from knowledge_base.config import KBConfig
from knowledge_base.embedder import Embedder, make_embedder
from knowledge_base.evaluate import MRR_DEPTH, Outcome, metrics
from knowledge_base.loaders import QueryRow
from knowledge_base.records import FaqEntry, Hit
from knowledge_base.tokenize import tokenize

PASTE_CHARS = 2_400
"""Today's help-center fallback: the first 2,400 characters of the article."""


def token_recall(gold: str, text: str) -> float:
    """Share of the gold text's distinct stemmed words (stop words dropped) that `text` holds; 1.0 for no words."""
    wanted = set(tokenize(gold))
    return len(wanted & set(tokenize(text))) / len(wanted) if wanted else 1.0


def _summary(values: Sequence[float]) -> float:
    return float(np.mean(values)) if len(values) else float("nan")


@dataclass(frozen=True)
class Retrieved:
    """One labelled query, its hits and what retrieval did with it."""

    row: QueryRow
    hits: tuple[Hit, ...]
    outcome: Outcome
    grounding: str | None


def retrieve(
    entries: Sequence[FaqEntry],
    queries: Sequence[QueryRow],
    grounding: Sequence[str | None],
    config: KBConfig,
    embedder: Embedder,
) -> list[Retrieved]:
    """Build a throwaway knowledge base of `entries` and search every query (timed with its embedding)."""
    from knowledge_base.kb import KnowledgeBase

    if len(grounding) != len(queries):
        raise ValueError(f"grounding has {len(grounding)} rows for {len(queries)} queries; align them one to one")
    out = []
    with tempfile.TemporaryDirectory() as tmp:
        kb = KnowledgeBase(Path(tmp), config, embedder)
        kb.build_entries(list(entries))
        for row, gold in zip(queries, grounding, strict=True):
            t0 = time.perf_counter()
            hits = kb.search(row.query, k=MRR_DEPTH).hits
            elapsed = time.perf_counter() - t0
            ids = [h.entry.id for h in hits]
            rank = ids.index(row.faq_id) + 1 if row.faq_id in ids else None
            top_score, top_fused = (hits[0].score, hits[0].fused) if hits else (0.0, 0.0)
            outcome = Outcome(row.faq_id, rank, ids[0] if ids else None, top_score, top_fused, elapsed)
            out.append(Retrieved(row, hits, outcome, gold))
    return out


def score_extracts(
    retrieved: Sequence[Retrieved], answer_threshold: float, *, encode: Encode | None = None, max_chars: int = 500
) -> tuple[dict, list[dict]]:
    """Extract from the top hit of every in-scope query whose top hit is the gold entry; return the figures (over
    those, `right_top`, and over the answered ones, `answered`) and one row per extract."""
    rows = []
    for r in retrieved:
        if r.outcome.rank != 1 or r.grounding is None:
            continue
        t0 = time.perf_counter()
        extract = extract_answer(r.row.query, r.hits, encode=encode, max_chars=max_chars)
        took = time.perf_counter() - t0
        answer = r.hits[0].entry.answer
        rows.append(
            {
                "query": r.row.query,
                "faq_id": r.row.faq_id,
                "answered": r.outcome.top_score >= answer_threshold,
                "text": extract.text,
                "whole": extract.whole,
                "latency_s": took,
                "recall": token_recall(r.grounding, extract.text),
                "recall_whole": token_recall(r.grounding, answer),
                "recall_paste": token_recall(r.grounding, answer[:PASTE_CHARS]),
                "chars": len(extract.text),
                "chars_whole": len(answer),
                "chars_paste": min(len(answer), PASTE_CHARS),
                "grounding": r.grounding,
            }
        )
    return {"right_top": _figures(rows), "answered": _figures([r for r in rows if r["answered"]])}, rows


def _figures(rows: list[dict]) -> dict:
    latency = np.array([r["latency_s"] for r in rows]) * 1000
    return {
        "n": len(rows),
        "composed_share": _summary([not r["whole"] for r in rows]),
        "mean_chars": _summary([r["chars"] for r in rows]),
        "mean_chars_whole": _summary([r["chars_whole"] for r in rows]),
        "mean_chars_paste": _summary([r["chars_paste"] for r in rows]),
        "gold_recall": _summary([r["recall"] for r in rows]),
        "gold_recall_whole": _summary([r["recall_whole"] for r in rows]),
        "gold_recall_paste": _summary([r["recall_paste"] for r in rows]),
        "latency_ms_p50": float(np.percentile(latency, 50)) if len(latency) else float("nan"),
        "latency_ms_p95": float(np.percentile(latency, 95)) if len(latency) else float("nan"),
    }


def evaluate_extracts(
    entries: Sequence[FaqEntry],
    queries: Sequence[QueryRow],
    grounding: Sequence[str | None],
    config: KBConfig,
    *,
    embedder: Embedder | None = None,
    max_chars: int = 500,
) -> dict:
    """Retrieval, then extraction with the embedder's cosine (`extract`) and with words alone (`extract_lexical`).

    Returns `{"retrieval": kb eval metrics, "extract": ..., "extract_lexical": ..., "examples": rows}`; each
    extract block holds, over in-scope queries whose top hit is the gold entry (`right_top`) and the answered ones
    among them (`answered`): `composed_share` (not the whole answer), `mean_chars` and `gold_recall` of the
    extract, of the whole answer (`_whole`) and of its first `PASTE_CHARS` characters (`_paste`), and latency.
    """
    embedder = embedder or make_embedder(config).warm_up()
    retrieved = retrieve(entries, queries, grounding, config, embedder)
    figures, rows = score_extracts(retrieved, config.answer_threshold, encode=embedder.encode, max_chars=max_chars)
    lexical, _ = score_extracts(retrieved, config.answer_threshold, max_chars=max_chars)
    return {
        "retrieval": metrics([r.outcome for r in retrieved], config.answer_threshold),
        "extract": figures,
        "extract_lexical": lexical,
        "examples": rows,
    }
