"""`python -m knowledge_base.bench_lexical`: BM25 alone at a given FAQ size, for the choices of issue 14.

- CJK tokens (`tokenize.CJK_MODES`: character n-grams, jieba words, both) on the Chinese sets, scored as the
  retriever's lexical side scores an entry (half its best phrasing, half its phrasings joined).
- The hand-written BM25 with the light English stemmer against `bm25s` with PyStemmer's Snowball stemmer, on the
  English sets, an entry scored by its best phrasing in both, with per-query time.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from knowledge_base import benchdata, benchdata_zh
from knowledge_base.benchdata import EvalSet
from knowledge_base.index import LexicalIndex
from knowledge_base.tokenize import CJK_MODES, tokenize

SETS: dict[str, Callable[[Path], EvalSet]] = {
    "afqmc_dev": benchdata_zh.afqmc_dev,
    "crosswoz_dev": benchdata_zh.crosswoz_dev,
    "afqmc": benchdata.afqmc,
    "crosswoz": benchdata_zh.crosswoz,
    "banking77": benchdata.banking77,
    "clinc150": benchdata.clinc150,
}
_POOL = {"afqmc_dev": "afqmc", "crosswoz_dev": "crosswoz"}


def _entries(data: Path, name: str, rows: int) -> tuple[EvalSet, list]:
    base = SETS[name](data)
    pool = benchdata.distractor_pool(data, _POOL.get(name, name), limit=rows)
    return base, benchdata.with_distractors(base, pool, rows)


def _summary(ranks: list[int | None], seconds: list[float]) -> dict:
    n = len(ranks)
    return {
        "queries": n,
        "recall_at_1": round(sum(r == 1 for r in ranks) / n, 4),
        "recall_at_5": round(sum(r is not None and r <= 5 for r in ranks) / n, 4),
        "mrr": round(sum(1 / r for r in ranks if r) / n, 4),
        "query_ms_p50": round(float(np.percentile(seconds, 50)) * 1000, 3),
        "query_ms_p99": round(float(np.percentile(seconds, 99)) * 1000, 3),
    }


def _rank(scores: np.ndarray, gold: int) -> int | None:
    if scores[gold] <= 0:
        return None
    rank = int((scores > scores[gold]).sum()) + 1
    return rank if rank <= 10 else None


def cjk_modes(data: Path, name: str, rows: int) -> dict:
    """BM25-only recall of each CJK tokenizer mode on one set at `rows` entries."""
    base, entries = _entries(data, name, rows)
    ids = {e.id: i for i, e in enumerate(entries)}
    counts = np.array([len(e.phrasings) for e in entries])
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    out = {}
    for mode in CJK_MODES:
        rows_index = LexicalIndex.build([tokenize(p, mode) for e in entries for p in e.phrasings])
        entry_index = LexicalIndex.build([[t for p in e.phrasings for t in tokenize(p, mode)] for e in entries])
        ranks, seconds = [], []
        for q in base.queries:
            if q.faq_id is None:
                continue
            t0 = time.perf_counter()
            tokens = tokenize(q.query, mode)
            row_scores, row_self = rows_index.scores(tokens)
            ent_scores, ent_self = entry_index.scores(tokens)
            best_row = np.maximum.reduceat(np.minimum(row_scores / max(row_self, 1e-9), 1.0), starts)
            scores = 0.5 * best_row + 0.5 * np.minimum(ent_scores / max(ent_self, 1e-9), 1.0)
            seconds.append(time.perf_counter() - t0)
            ranks.append(_rank(scores, ids[q.faq_id]))
        out[mode] = _summary(ranks, seconds)
    return out


def bm25_engines(data: Path, name: str, rows: int) -> dict:
    """The hand-written BM25 + light stemmer against bm25s + Snowball English, best phrasing per entry."""
    import bm25s
    import Stemmer

    base, entries = _entries(data, name, rows)
    ids = {e.id: i for i, e in enumerate(entries)}
    row_entry = np.repeat(np.arange(len(entries)), [len(e.phrasings) for e in entries])
    starts = np.concatenate([[0], np.flatnonzero(np.diff(row_entry)) + 1])
    phrasings = [p for e in entries for p in e.phrasings]
    queries = [q for q in base.queries if q.faq_id is not None]

    ours = LexicalIndex.build([tokenize(p) for p in phrasings])
    stemmer = Stemmer.Stemmer("english")
    engine = bm25s.BM25(k1=1.2, b=0.75)
    engine.index(bm25s.tokenize(phrasings, stopwords="en", stemmer=stemmer, show_progress=False), show_progress=False)
    scorers = {
        "handwritten": lambda text: ours.scores(tokenize(text))[0],
        "bm25s": lambda text: engine.get_scores(
            bm25s.tokenize([text], stopwords="en", stemmer=stemmer, return_ids=False, show_progress=False)[0]
        ),
    }
    out = {}
    for engine_name, score in scorers.items():
        ranks, seconds = [], []
        for q in queries:
            t0 = time.perf_counter()
            scores = np.maximum.reduceat(np.asarray(score(q.query), dtype=np.float32), starts)
            seconds.append(time.perf_counter() - t0)
            ranks.append(_rank(scores, ids[q.faq_id]))
        out[engine_name] = _summary(ranks, seconds)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared" / "data"))
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--cjk-sets", default="afqmc_dev,crosswoz_dev,afqmc,crosswoz")
    parser.add_argument("--engine-sets", default="banking77,clinc150")
    parser.add_argument("--out", default="var/bench/lexical.json")
    args = parser.parse_args(argv)
    data = Path(args.data)
    results: dict = {"rows": args.rows, "cjk_modes": {}, "bm25_engines": {}}
    for name in filter(None, args.cjk_sets.split(",")):
        results["cjk_modes"][name] = cjk_modes(data, name, args.rows)
        print(name, json.dumps(results["cjk_modes"][name]), flush=True)
    for name in filter(None, args.engine_sets.split(",")):
        results["bm25_engines"][name] = bm25_engines(data, name, args.rows)
        print(name, json.dumps(results["bm25_engines"][name]), flush=True)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
