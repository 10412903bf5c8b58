"""Retrieval evaluation and threshold calibration: the functions behind `kb eval`, `kb calibrate` and
`bench retrieval`.

Metrics over a labelled query file (DESIGN.md's keys): recall@1, recall@5, MRR (over the top 10), latency per
query with its embedding, and with out-of-scope rows (no gold id) the OOS AUROC of the top hit's score, the share
of OOS queries left unanswered at the answer threshold, and answered-and-right over in-scope queries.
"""

from __future__ import annotations

import math
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from knowledge_base.config import KBConfig
from knowledge_base.embedder import Embedder
from knowledge_base.index import Retriever, sigmoid
from knowledge_base.loaders import QueryRow, load_faq, load_queries

MRR_DEPTH = 10


@dataclass(frozen=True)
class Outcome:
    """What the retriever did with one query."""

    gold: str | None
    rank: int | None
    """1-based rank of the gold entry in the top `MRR_DEPTH`, None when absent (or out of scope)."""
    top_id: str | None
    top_score: float
    """Calibrated score of the top hit (0 when nothing was found)."""
    top_fused: float
    latency_s: float


def run_queries(
    retriever: Retriever,
    embedder: Embedder,
    queries: Sequence[QueryRow],
    *,
    dense_weight: float | None = None,
    vectors: np.ndarray | None = None,
    progress: bool = False,
    desc: str = "queries",
) -> list[Outcome]:
    """Search every query. Without `vectors`, each query is embedded on its own and timed with its embedding (the
    latency a customer sees); with precomputed `vectors` only retrieval is timed."""
    from tqdm import tqdm

    out = []
    for i, row in enumerate(tqdm(queries, desc=desc, unit="q", disable=not progress, leave=False)):
        t0 = time.perf_counter()
        vec = embedder.encode([row.query])[0] if vectors is None else vectors[i]
        hits = retriever.search(row.query, vec, k=MRR_DEPTH, dense_weight=dense_weight)
        elapsed = time.perf_counter() - t0
        ids = [h.entry.id for h in hits]
        rank = ids.index(row.faq_id) + 1 if row.faq_id in ids else None
        top = hits[0] if hits else None
        out.append(
            Outcome(
                row.faq_id,
                rank,
                top.entry.id if top else None,
                top.score if top else 0.0,
                top.fused if top else 0.0,
                elapsed,
            )
        )
    return out


def auroc(positive: Sequence[float], negative: Sequence[float]) -> float:
    """Probability that a random positive scores above a random negative (ties count half)."""
    from scipy.stats import rankdata

    if not len(positive) or not len(negative):
        return float("nan")
    ranks = rankdata(np.concatenate([positive, negative]))
    n_pos, n_neg = len(positive), len(negative)
    return float((ranks[:n_pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def metrics(outcomes: Sequence[Outcome], answer_threshold: float, timed: bool = True) -> dict:
    """DESIGN.md's `kb eval --json` object."""
    inscope = [o for o in outcomes if o.gold is not None]
    oos = [o for o in outcomes if o.gold is None]
    n_in = max(len(inscope), 1)
    result: dict = {
        "n": len(outcomes),
        "in_scope": len(inscope),
        "recall_at_1": sum(o.rank == 1 for o in inscope) / n_in,
        "recall_at_5": sum(o.rank is not None and o.rank <= 5 for o in inscope) / n_in,
        "mrr": sum(1.0 / o.rank for o in inscope if o.rank) / n_in,
    }
    if timed:
        lat = np.array([o.latency_s for o in outcomes]) * 1000
        result["latency_ms_p50"] = float(np.percentile(lat, 50)) if len(lat) else 0.0
        result["latency_ms_p99"] = float(np.percentile(lat, 99)) if len(lat) else 0.0
    if oos:
        # In scope is the positive class: a good score ranks in-scope queries above out-of-scope ones.
        result["oos_auroc"] = auroc([o.top_score for o in inscope], [o.top_score for o in oos])
        result["oos_recall"] = sum(o.top_score < answer_threshold for o in oos) / len(oos)
        result["answered_accuracy"] = sum(o.top_score >= answer_threshold and o.rank == 1 for o in inscope) / n_in
    return result


def fit_calibration(fused: Sequence[float], correct: Sequence[bool], iterations: int = 100) -> tuple[float, float]:
    """Platt scaling: (slope, offset) of the logistic P(top hit right) = sigmoid(slope * fused + offset), fitted by
    Newton's method with a weak prior so that separable data stays finite."""
    x = np.asarray(fused, dtype=np.float64)
    y = np.asarray(correct, dtype=np.float64)
    # Platt's smoothed targets
    n_pos, n_neg = y.sum(), len(y) - y.sum()
    t = np.where(y > 0, (n_pos + 1) / (n_pos + 2), 1 / (n_neg + 2))
    a, b = 1.0, 0.0
    for _ in range(iterations):
        p = sigmoid(a * x + b)
        g = np.array([((p - t) * x).sum() + 1e-3 * a, (p - t).sum()])
        w = p * (1 - p)
        h = np.array([[(w * x * x).sum() + 1e-3, (w * x).sum()], [(w * x).sum(), w.sum() + 1e-9]])
        step = np.linalg.solve(h, g)
        a, b = a - step[0], b - step[1]
        if np.abs(step).max() < 1e-8:
            break
    return float(a), float(b)


def choose_threshold(scores: Sequence[float], correct: Sequence[bool], precision: float = 0.9) -> float:
    """The lowest score threshold at which answered queries (score >= threshold) are right at least `precision`
    of the time. `correct` is False for out-of-scope queries (answering them is always wrong). 1.0 if none."""
    order = np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")
    s = np.asarray(scores, dtype=np.float64)[order]
    c = np.asarray(correct, dtype=np.float64)[order]
    prec = np.cumsum(c) / np.arange(1, len(c) + 1)
    best = 1.0
    for i in range(len(s)):
        # a threshold can only sit between distinct scores
        if (i + 1 == len(s) or s[i + 1] < s[i]) and prec[i] >= precision:
            best = float(s[i])
    return math.floor(best * 1000) / 1000 if best < 1.0 else 1.0


def _retriever_for(
    faq_path: str | Path, config: KBConfig, embedder: Embedder, progress: bool, workdir: Path
) -> Retriever:
    from knowledge_base.kb import KnowledgeBase

    kb = KnowledgeBase(workdir, config, embedder)
    kb.build(faq_path, progress=progress)
    return kb._current()


def evaluate_files(
    faq_path: str | Path,
    queries_path: str | Path,
    config: KBConfig,
    embedder: Embedder,
    progress: bool = False,
    cache_dir: Path | None = None,
) -> dict:
    """`kb eval`: build a throwaway index of `faq_path` and score `queries_path` (validated first)."""
    load_faq(faq_path)
    queries = load_queries(queries_path)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        if cache_dir is not None and cache_dir.exists():  # reuse embeddings of earlier builds
            (root / "cache").symlink_to(cache_dir.resolve(), target_is_directory=True)
        retriever = _retriever_for(faq_path, config, embedder, progress, root)
        outcomes = run_queries(retriever, embedder, queries, progress=progress, desc="eval")
    return metrics(outcomes, config.answer_threshold)


@dataclass(frozen=True)
class Calibration:
    """Result of `kb calibrate`."""

    answer_threshold: float
    precision: float
    """The precision reached at that threshold on the validation queries."""
    answered: float
    """Share of in-scope queries answered at that threshold."""
    slope: float
    offset: float
    n: int


def calibrate_files(
    faq_path: str | Path,
    queries_path: str | Path,
    config: KBConfig,
    embedder: Embedder,
    precision: float = 0.9,
    refit: bool = False,
    progress: bool = False,
    cache_dir: Path | None = None,
) -> Calibration:
    """`kb calibrate`: the answer threshold that reaches `precision` on the labelled queries. With `refit`, the
    score calibration (slope, offset) is refitted first and the threshold chosen on the refitted scores."""
    load_faq(faq_path)
    queries = load_queries(queries_path)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        if cache_dir is not None and cache_dir.exists():
            (root / "cache").symlink_to(cache_dir.resolve(), target_is_directory=True)
        retriever = _retriever_for(faq_path, config, embedder, progress, root)
        outcomes = run_queries(retriever, embedder, queries, progress=progress, desc="calibrate")
    correct = [o.gold is not None and o.rank == 1 for o in outcomes]
    slope, offset = config.calibration_slope, config.calibration_offset
    if refit:
        slope, offset = fit_calibration([o.top_fused for o in outcomes], correct)
    scores = [float(sigmoid(slope * o.top_fused + offset)) for o in outcomes]
    threshold = choose_threshold(scores, correct, precision)
    answered = [s >= threshold for s in scores]
    n_answered = max(sum(answered), 1)
    reached = sum(a and c for a, c in zip(answered, correct, strict=True)) / n_answered
    in_scope = max(sum(o.gold is not None for o in outcomes), 1)
    share = sum(a and o.gold is not None for a, o in zip(answered, outcomes, strict=True)) / in_scope
    return Calibration(threshold, reached, share, slope, offset, len(outcomes))
