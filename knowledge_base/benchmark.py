"""`chatbot bench retrieval`: dense only vs BM25 only vs hybrid on the evaluation sets of `benchdata`, at several
corpus sizes, with the real embedder. Metrics use batch-embedded queries; latency (`latency_ms_*`) is measured per
query with its own embedding (what a customer waits for) on the first `latency_queries` queries, and the search
alone (`retrieve_ms_*`) on every query."""

from __future__ import annotations

import platform
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from knowledge_base import benchdata, benchdata_zh
from knowledge_base.config import KBConfig
from knowledge_base.embedder import Embedder, EmbeddingCache
from knowledge_base.evaluate import metrics, run_queries
from knowledge_base.index import Retriever
from knowledge_base.kb import fusion_for

METHODS = {"dense": 1.0, "bm25": 0.0, "hybrid": None}
SETS = {
    "banking77": benchdata.banking77,
    "clinc150": benchdata.clinc150,
    "afqmc": benchdata.afqmc,
    "afqmc_1k": benchdata_zh.afqmc_1k,
    "crosswoz": benchdata_zh.crosswoz,
    "afqmc_dev": benchdata_zh.afqmc_dev,
    "crosswoz_dev": benchdata_zh.crosswoz_dev,
}
"""`afqmc`, `afqmc_1k` and `crosswoz` report; `afqmc_dev` and `crosswoz_dev` are their tuning splits (never report on
them)."""
POOL_OF = {"afqmc_dev": "afqmc", "afqmc_1k": "afqmc", "crosswoz_dev": "crosswoz"}
"""Sets whose distractors leave out what another set's leave out (the pool is chosen by that set's name)."""


def run_benchmark(
    data: Path,
    embedder: Embedder,
    config: KBConfig,
    cache_dir: Path,
    scales: Sequence[int] = (100, 10_000, 100_000),
    sets: Sequence[str] = tuple(SETS),
    latency_queries: int = 200,
    progress: bool = True,
) -> dict:
    """All sets x scales x methods; returns the JSON-able result (see the README's benchmark section)."""
    from tqdm import tqdm

    benchdata.check_data(data)
    cache = EmbeddingCache(cache_dir)
    fusion = fusion_for(config, embedder)
    results: dict = {
        "config": {
            "embedder": embedder.name,
            "index_factory": config.index_factory,
            "dense_weight": config.dense_weight,
            "cjk_dense_weight": fusion.cjk_dense_weight,
            "candidates": config.candidates,
            "latency_queries": latency_queries,
            "machine": f"{platform.processor() or platform.machine()}",
        },
        "sets": {},
    }
    for name in sets:
        base = SETS[name](data)
        pool = benchdata.distractor_pool(data, POOL_OF.get(name, name), limit=max(scales))
        queries = base.queries
        qvecs, _ = cache.encode(embedder, [q.query for q in queries], progress=progress)
        per_scale = {}
        for rows in scales:
            entries = benchdata.with_distractors(base, pool, rows)
            phrasings = [p for e in entries for p in e.phrasings]
            t0 = time.perf_counter()
            vectors, fresh = cache.encode(embedder, phrasings, progress=progress)
            t1 = time.perf_counter()
            retriever = Retriever.build(
                f"{name}-{rows}",
                entries,
                vectors,
                fusion,
                config.index_factory,
                config.hnsw_ef_search,
                config.candidates,
            )
            t2 = time.perf_counter()
            row: dict = {
                "entries": len(entries),
                "phrasings": len(phrasings),
                "queries": len(queries),
                "embed_s": round(t1 - t0, 2),
                "embedded_now": fresh,
                "index_build_s": round(t2 - t1, 2),
            }
            for method, weight in tqdm(METHODS.items(), desc=f"{name} {rows}", disable=not progress, leave=False):
                outcomes = run_queries(retriever, embedder, queries, dense_weight=weight, vectors=qvecs)
                m = metrics(outcomes, config.answer_threshold, timed=False)
                only = metrics(outcomes, config.answer_threshold)  # precomputed vectors: retrieval alone
                m["retrieve_ms_p50"], m["retrieve_ms_p99"] = only["latency_ms_p50"], only["latency_ms_p99"]
                timed = run_queries(retriever, embedder, queries[:latency_queries], dense_weight=weight)
                lat = metrics(timed, config.answer_threshold)
                m["latency_ms_p50"], m["latency_ms_p99"] = lat["latency_ms_p50"], lat["latency_ms_p99"]
                row[method] = {k: (round(v, 4) if isinstance(v, float) else v) for k, v in m.items()}
            per_scale[str(rows)] = row
        results["sets"][name] = per_scale
    results["checks"] = checks(results)
    return results


def checks(results: dict) -> dict:
    """Hybrid vs the better single method per set and scale (recall@1 and MRR), and p99 at 10k rows."""
    out = {}
    for name, scales in results["sets"].items():
        for rows, row in scales.items():
            best = {k: max(row["dense"][k], row["bm25"][k]) for k in ("recall_at_1", "mrr")}
            out[f"{name}@{rows}"] = {
                "hybrid_beats_best_single_r1": row["hybrid"]["recall_at_1"] > best["recall_at_1"],
                "hybrid_beats_best_single_mrr": row["hybrid"]["mrr"] > best["mrr"],
                "r1_ratio_vs_best_single": round(row["hybrid"]["recall_at_1"] / max(best["recall_at_1"], 1e-9), 4),
                "hybrid_p99_ms": row["hybrid"]["latency_ms_p99"],
            }
    return out


def table(results: dict) -> str:
    """A short text table of the results."""
    lines = [
        f"{'set':10s} {'rows':>7s} {'method':7s} {'R@1':>6s} {'R@5':>6s} {'MRR':>6s} {'AUROC':>6s} "
        f"{'p50ms':>6s} {'p99ms':>6s} {'search p99':>10s}"
    ]
    for name, scales in results["sets"].items():
        for rows, row in scales.items():
            for method in METHODS:
                m = row[method]
                auroc = f"{m['oos_auroc']:.3f}" if "oos_auroc" in m else "  -   "
                lines.append(
                    f"{name:10s} {int(rows):7d} {method:7s} {m['recall_at_1']:.3f}  {m['recall_at_5']:.3f}  "
                    f"{m['mrr']:.3f}  {auroc}  {m['latency_ms_p50']:6.1f} {m['latency_ms_p99']:6.1f} "
                    f"{m['retrieve_ms_p99']:10.1f}"
                )
    return "\n".join(lines)


def with_weights(config: KBConfig, dense_weight: float | None = None, cjk: float | None = None) -> KBConfig:
    return replace(
        config,
        dense_weight=config.dense_weight if dense_weight is None else dense_weight,
        cjk_dense_weight=config.cjk_dense_weight if cjk is None else cjk,
    )
