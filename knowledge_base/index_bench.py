"""`chatbot bench retrieval --indexes`: FAISS factory strings (exact `Flat` vs `HNSW32` vs IVF) on one large FAQ
from `benchdata` (a set's entries padded with distractor rows), with real embeddings: build time and size, the
search time of one query (the retriever's candidate search), how often the approximate index returns the exact
nearest phrasing, and what that costs the retriever end to end (recall@1 and MRR, dense only and hybrid, against the
same retriever over the exact index). Query vectors are precomputed: only the index differs between rows."""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from knowledge_base import benchdata
from knowledge_base.config import KBConfig
from knowledge_base.embedder import Embedder, EmbeddingCache
from knowledge_base.evaluate import metrics, run_queries
from knowledge_base.index import Fusion, Retriever, build_faiss_index

POOL_ROWS = 100_000
"""Distractor rows drawn for every scale, so a smaller FAQ is a prefix of the larger one (and of `bench retrieval`'s
100k corpus: their embeddings are shared through the cache)."""


@dataclass(frozen=True)
class IndexSpec:
    """One FAISS index to measure: a factory string with its search-time settings."""

    factory: str
    ef_search: int = 64
    nprobe: int = 16

    @property
    def label(self) -> str:
        if self.factory.startswith("HNSW"):
            return f"{self.factory} ef={self.ef_search}"
        if self.factory.startswith("IVF"):
            return f"{self.factory} nprobe={self.nprobe}"
        return self.factory


def default_specs(rows: int, ef_search: int = 64, nprobe: int = 16) -> list[IndexSpec]:
    """Exact, HNSW with 32 links, and IVF with about 4 * sqrt(rows) lists (a power of two)."""
    nlist = 2 ** max(1, round(math.log2(4 * math.sqrt(rows))))
    return [IndexSpec("Flat"), IndexSpec("HNSW32", ef_search=ef_search), IndexSpec(f"IVF{nlist},Flat", nprobe=nprobe)]


def parse_specs(text: str, ef_search: int = 64, nprobe: int = 16) -> list[IndexSpec]:
    """Factory strings separated by `;` (IVF strings hold a comma), e.g. `Flat;HNSW32;IVF1024,Flat`; `Flat` is
    always measured first (the reference)."""
    factories = [f.strip() for f in text.split(";") if f.strip()]
    if not factories:
        raise ValueError('--indexes needs FAISS factory strings separated by ";", e.g. "Flat;HNSW32;IVF1024,Flat"')
    specs = [IndexSpec(f, ef_search, nprobe) for f in factories if f != "Flat"]
    return [IndexSpec("Flat"), *specs]


def _percentile_ms(seconds: Sequence[float], q: float) -> float:
    return round(float(np.percentile(np.asarray(seconds) * 1000, q)), 3)


def measure_index(
    spec: IndexSpec,
    vectors: np.ndarray,
    query_vectors: np.ndarray,
    exact_rows: np.ndarray,
    top: int,
    timed_queries: int,
):
    """(index, figures) for one spec: build time, size, one-query search time, agreement with the exact top row."""
    import faiss

    t0 = time.perf_counter()
    index = build_faiss_index(vectors, spec.factory, spec.ef_search, spec.nprobe)
    build_s = time.perf_counter() - t0
    times = []
    for q in query_vectors[:timed_queries]:
        t = time.perf_counter()
        index.search(q.reshape(1, -1), top)
        times.append(time.perf_counter() - t)
    _, rows = index.search(query_vectors, top)
    figures = {
        "build_s": round(build_s, 2),
        "size_mb": round(len(faiss.serialize_index(index)) / 1e6, 1),
        "search_ms_p50": _percentile_ms(times, 50),
        "search_ms_p99": _percentile_ms(times, 99),
        "nn_recall_at_1": round(float(np.mean(rows[:, 0] == exact_rows[:, 0])), 4),
        "nn_recall_at_10": round(
            float(np.mean([len(set(a[:10]) & set(b[:10])) / 10 for a, b in zip(rows, exact_rows, strict=True)])), 4
        ),
    }
    return index, figures


def run_index_benchmark(
    data: Path,
    embedder: Embedder,
    config: KBConfig,
    cache_dir: Path,
    rows: int = 100_000,
    sets: Sequence[str] = ("banking77", "clinc150"),
    specs: Sequence[IndexSpec] | None = None,
    timed_queries: int = 500,
    progress: bool = True,
    pool_rows: int = POOL_ROWS,
    max_queries: int | None = None,
) -> dict:
    """Every set x index spec at `rows` FAQ entries (the first of a `pool_rows` distractor pool); the JSON-able
    result (see the module docstring)."""
    benchdata.check_data(data)
    cache = EmbeddingCache(cache_dir)
    fusion = Fusion(config.dense_weight, config.cjk_dense_weight, config.calibration_slope, config.calibration_offset)
    specs = list(specs or default_specs(rows, config.hnsw_ef_search, config.ivf_nprobe))
    if specs[0].factory != "Flat":
        raise ValueError("the first index spec must be Flat: the others are measured against it")
    results: dict = {"config": {"rows": rows, "embedder": embedder.name, "candidates": config.candidates,
                                "timed_queries": timed_queries}, "sets": {}}  # fmt: skip
    for name in sets:
        base = getattr(benchdata, name)(data)
        if max_queries is not None:  # in-scope and out-of-scope rows alike, in the set's fixed order
            base = benchdata.EvalSet(base.name, base.entries, base.queries[:: max(1, len(base.queries) // max_queries)])
        entries = benchdata.with_distractors(
            base, benchdata.distractor_pool(data, name, limit=max(rows, pool_rows)), rows
        )
        phrasings = [p for e in entries for p in e.phrasings]
        vectors, fresh = cache.encode(embedder, phrasings, progress=progress)
        qvecs, _ = cache.encode(embedder, [q.query for q in base.queries], progress=progress)
        t0 = time.perf_counter()
        reference = Retriever.build(name, entries, vectors, fusion, "Flat", candidates=config.candidates)
        lexical_s = time.perf_counter() - t0
        top = min(len(phrasings), config.candidates * 4)  # what Retriever.search asks FAISS for
        _, exact_rows = reference.faiss_index.search(qvecs, top)
        row: dict = {"entries": len(entries), "phrasings": len(phrasings), "queries": len(base.queries),
                     "embedded_now": fresh, "retriever_build_s": round(lexical_s, 2), "indexes": {}}  # fmt: skip
        exact: dict = {}
        for spec in specs:
            index, figures = measure_index(spec, vectors, qvecs, exact_rows, top, timed_queries)
            retriever = Retriever(name, entries, vectors, index, reference.lexical, fusion, config.candidates,
                                  reference.entry_lexical)  # fmt: skip
            for method, weight in (("dense", 1.0), ("hybrid", None)):
                m = metrics(run_queries(retriever, embedder, base.queries, dense_weight=weight, vectors=qvecs),
                            config.answer_threshold)  # fmt: skip
                figures[method] = {
                    k: round(m[k], 4) for k in ("recall_at_1", "mrr", "latency_ms_p50", "latency_ms_p99")
                }
                exact.setdefault(method, figures[method])
                figures[method]["recall_at_1_loss"] = round(exact[method]["recall_at_1"] - m["recall_at_1"], 4)
            row["indexes"][spec.label] = figures
        results["sets"][name] = row
    return results


def index_table(results: dict) -> str:
    """A short text table of `run_index_benchmark`'s result."""
    lines = [
        f"{'set':10s} {'index':24s} {'build s':>8s} {'MB':>6s} {'search p50/p99 ms':>18s} {'NN@1':>6s} "
        f"{'R@1 dense (loss)':>17s} {'R@1 hybrid (loss)':>18s}"
    ]
    for name, row in results["sets"].items():
        for label, f in row["indexes"].items():
            d, h = f["dense"], f["hybrid"]
            lines.append(
                f"{name:10s} {label:24s} {f['build_s']:8.2f} {f['size_mb']:6.1f} "
                f"{f['search_ms_p50']:8.3f} / {f['search_ms_p99']:7.3f} {f['nn_recall_at_1']:6.3f} "
                f"{d['recall_at_1']:.3f} ({d['recall_at_1_loss']:+.3f})    {h['recall_at_1']:.3f} "
                f"({h['recall_at_1_loss']:+.3f})"
            )
    return "\n".join(lines)
