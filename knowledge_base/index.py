"""The in-memory indexes of one snapshot: FAISS dense index over every phrasing, BM25 over every phrasing, and the
hybrid retriever that fuses them into ranked `Hit`s with a calibrated score."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import sparse

from knowledge_base.language import has_cjk
from knowledge_base.records import FaqEntry, Hit
from knowledge_base.tokenize import tokenize

ADD_CHUNK = 8192
"""Rows added to a FAISS index at a time (one progress-bar step)."""


def build_faiss_index(
    vectors: np.ndarray, factory: str = "Flat", ef_search: int = 64, nprobe: int = 16, progress: bool = False
):
    """A FAISS inner-product index over L2-normalised `vectors` (so scores are cosines), from a factory string
    (`Flat` exact, `HNSW32`, `IVF1024,Flat`, ...); trained first when the type needs it, then filled in chunks."""
    import faiss
    from tqdm import tqdm

    n, dim = vectors.shape
    try:
        index = faiss.index_factory(dim, factory, faiss.METRIC_INNER_PRODUCT)
    except RuntimeError as exc:
        raise ValueError(
            f"kb.index_factory {factory!r} is not a FAISS factory string ({str(exc).strip().splitlines()[-1]}); "
            'use "Flat" (exact), "HNSW32" or "IVF1024,Flat"'
        ) from exc
    if not index.is_trained:
        ivf = faiss.try_extract_index_ivf(index)
        if ivf is not None and n < ivf.nlist:
            raise ValueError(
                f"kb.index_factory {factory!r} has {ivf.nlist} lists but the FAQ has only {n} phrasings to train them "
                'on; use "Flat" (exact) for an FAQ this small, or fewer lists (about 4 * sqrt(phrasings))'
            )
        index.train(vectors)
    with tqdm(total=n, desc=f"FAISS {factory}", unit="rows", disable=not progress, leave=False) as bar:
        for start in range(0, n, ADD_CHUNK):
            index.add(vectors[start : start + ADD_CHUNK])
            bar.update(min(ADD_CHUNK, n - start))
    configure_faiss(index, ef_search, nprobe)
    return index


def configure_faiss(index, ef_search: int = 64, nprobe: int = 16) -> None:
    """Search-time settings, not stored in the index file: efSearch for HNSW, nprobe for IVF."""
    import faiss

    if hasattr(index, "hnsw"):
        index.hnsw.efSearch = ef_search
    ivf = faiss.try_extract_index_ivf(index)
    if ivf is not None:
        ivf.nprobe = min(nprobe, ivf.nlist)


class LexicalIndex:
    """Okapi BM25 (Lucene's idf, k1=1.2, b=0.75) over documents given as token lists.

    `weights` is a (vocab, docs) CSR matrix of precomputed term weights, so scoring a query sums a few rows.
    """

    def __init__(
        self,
        vocab: dict[str, int],
        weights: sparse.csr_matrix,
        idf: np.ndarray,
        avgdl: float,
        k1: float = 1.2,
        b: float = 0.75,
    ):
        self.vocab, self.weights, self.idf, self.avgdl, self.k1, self.b = vocab, weights, idf, avgdl, k1, b
        self.n_docs = weights.shape[1]

    @classmethod
    def build(cls, docs: Sequence[Sequence[str]], k1: float = 1.2, b: float = 0.75) -> LexicalIndex:
        vocab: dict[str, int] = {}
        rows, cols, tfs = [], [], []
        lengths = np.zeros(len(docs), dtype=np.float32)
        for d, tokens in enumerate(docs):
            lengths[d] = len(tokens)
            counts: dict[int, int] = {}
            for tok in tokens:
                t = vocab.setdefault(tok, len(vocab))
                counts[t] = counts.get(t, 0) + 1
            rows.extend(counts)
            cols.extend([d] * len(counts))
            tfs.extend(counts.values())
        n = max(len(docs), 1)
        avgdl = float(lengths.mean()) if len(docs) else 1.0
        avgdl = avgdl or 1.0
        rows_a, cols_a = np.asarray(rows, dtype=np.int64), np.asarray(cols, dtype=np.int64)
        tf = np.asarray(tfs, dtype=np.float32)
        df = np.bincount(rows_a, minlength=len(vocab)).astype(np.float32)
        idf = np.log1p((n - df + 0.5) / (df + 0.5)).astype(np.float32)
        norm = k1 * (1 - b + b * lengths[cols_a] / avgdl) if len(cols_a) else np.zeros(0, np.float32)
        w = idf[rows_a] * tf * (k1 + 1) / (tf + norm)
        weights = sparse.csr_matrix((w, (rows_a, cols_a)), shape=(len(vocab), len(docs)), dtype=np.float32)
        return cls(vocab, weights, idf, avgdl, k1, b)

    def scores(self, tokens: Sequence[str]) -> tuple[np.ndarray, float]:
        """(BM25 score of every document, the query's self-score used to normalise into [0, 1])."""
        counts: dict[str, int] = {}
        for tok in tokens:
            counts[tok] = counts.get(tok, 0) + 1
        ids = [self.vocab[t] for t in counts if t in self.vocab]
        # Words the FAQ never uses still count in the self-score: a query about something else scores low.
        unseen_idf = math.log1p((self.n_docs + 0.5) / 0.5)
        qlen = max(len(tokens), 1)
        self_score = 0.0
        for tok, tf in counts.items():
            idf = float(self.idf[self.vocab[tok]]) if tok in self.vocab else unseen_idf
            self_score += idf * tf * (self.k1 + 1) / (tf + self.k1 * (1 - self.b + self.b * qlen / self.avgdl))
        if not ids:
            return np.zeros(self.n_docs, dtype=np.float32), self_score
        # Repeated query words weigh more, as in the self-score.
        mult = np.asarray([counts[t] for t in counts if t in self.vocab], dtype=np.float32)
        scored = self.weights[ids].multiply(mult[:, None]).sum(axis=0) if mult.max() > 1 else self.weights[ids].sum(0)
        return np.asarray(scored, dtype=np.float32).ravel(), self_score

    def arrays(self) -> dict[str, np.ndarray]:
        keys = np.array(sorted(self.vocab, key=self.vocab.get), dtype=str)
        return {
            "vocab": keys,
            "data": self.weights.data,
            "indices": self.weights.indices,
            "indptr": self.weights.indptr,
            "shape": np.array(self.weights.shape),
            "idf": self.idf,
            "params": np.array([self.avgdl, self.k1, self.b], dtype=np.float64),
        }

    @classmethod
    def from_arrays(cls, data: dict[str, np.ndarray]) -> LexicalIndex:
        vocab = {str(t): i for i, t in enumerate(data["vocab"])}
        weights = sparse.csr_matrix((data["data"], data["indices"], data["indptr"]), shape=tuple(data["shape"]))
        avgdl, k1, b = (float(x) for x in data["params"])
        return cls(vocab, weights, data["idf"], avgdl, k1, b)


def sigmoid(x: np.ndarray | float) -> np.ndarray | float:
    """The logistic function: calibrated score = sigmoid(slope * fused + offset)."""
    return 1.0 / (1.0 + np.exp(-np.asarray(x, dtype=np.float64)))


@dataclass(frozen=True)
class Fusion:
    """How dense and lexical scores combine, and how the fused score maps to a calibrated confidence."""

    dense_weight: float = 0.8
    cjk_dense_weight: float = 0.3
    slope: float = 5.73
    offset: float = -2.68

    def weight(self, query: str) -> float:
        return self.cjk_dense_weight if has_cjk(query) else self.dense_weight

    def calibrate(self, fused: np.ndarray | float) -> np.ndarray | float:
        return sigmoid(self.slope * np.asarray(fused) + self.offset)


class Retriever:
    """One snapshot in memory: entries, phrasing vectors, FAISS index, BM25 index. Immutable once built, so a
    search holding a reference to it never sees another version."""

    def __init__(
        self,
        version: str,
        entries: Sequence[FaqEntry],
        vectors: np.ndarray,
        faiss_index,
        lexical: LexicalIndex,
        fusion: Fusion,
        candidates: int = 30,
        entry_lexical: LexicalIndex | None = None,
    ):
        self.version = version
        self.entries = tuple(entries)
        self.by_id = {e.id: e for e in self.entries}
        counts = np.array([len(e.phrasings) for e in self.entries], dtype=np.int64)
        self.starts = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64) if len(counts) else counts
        self.row_entry = np.repeat(np.arange(len(self.entries)), counts)
        self.phrasings = [p for e in self.entries for p in e.phrasings]
        self.vectors = vectors  # (rows, dim), L2-normalised; may be a read-only memmap
        self.faiss_index = faiss_index
        self.lexical = lexical
        # BM25 over each entry's phrasings joined: the words of the whole intent, not of one phrasing.
        self.entry_lexical = entry_lexical or LexicalIndex.build(
            [[t for p in e.phrasings for t in tokenize(p)] for e in self.entries]
        )
        self.fusion = fusion
        self.candidates = candidates

    @classmethod
    def build(
        cls,
        version: str,
        entries: Sequence[FaqEntry],
        vectors: np.ndarray,
        fusion: Fusion,
        factory: str = "Flat",
        ef_search: int = 64,
        candidates: int = 30,
        *,
        nprobe: int = 16,
        progress: bool = False,
    ) -> Retriever:
        """Index `entries` whose phrasings' vectors are `vectors` (rows in phrasing order); `progress` shows a bar
        for the word index and one for the FAISS index."""
        from tqdm import tqdm

        docs: list[list[str]] = []
        entry_docs: list[list[str]] = []
        for e in tqdm(entries, desc="word index", unit="entries", disable=not progress, leave=False):
            tokens = [tokenize(p) for p in e.phrasings]
            docs += tokens
            entry_docs.append([t for toks in tokens for t in toks])
        return cls(
            version,
            entries,
            vectors,
            build_faiss_index(vectors, factory, ef_search, nprobe, progress),
            LexicalIndex.build(docs),
            fusion,
            candidates,
            LexicalIndex.build(entry_docs),
        )

    def _entry_max(self, row_scores: np.ndarray) -> np.ndarray:
        return np.maximum.reduceat(row_scores, self.starts) if len(self.starts) else row_scores

    def search(
        self,
        query: str,
        query_vector: np.ndarray,
        k: int = 5,
        language: str | None = None,
        dense_weight: float | None = None,
    ) -> list[Hit]:
        """Top `k` entries for one query. `query_vector` is its (dim,) normalised embedding. `dense_weight`
        overrides the fusion weight (1 = dense only, 0 = BM25 only; the benchmark compares them)."""
        if not self.entries:
            return []
        w = self.fusion.weight(query) if dense_weight is None else dense_weight
        n_rows = len(self.phrasings)
        c = min(len(self.entries), max(self.candidates, k))
        cand: set[int] = set()
        if w > 0:
            top = min(n_rows, c * 4)
            _, rows = self.faiss_index.search(query_vector.reshape(1, -1).astype(np.float32), top)
            for r in rows[0]:
                if r >= 0:
                    cand.add(int(self.row_entry[r]))
                    if len(cand) >= c:
                        break
        lex_norm, ent_norm = self._lexical(query)
        if w < 1:
            lex_entry = 0.5 * self._entry_max(lex_norm) + 0.5 * ent_norm
            nz = np.flatnonzero(lex_entry)
            if len(nz):
                best = nz[np.argsort(-lex_entry[nz], kind="stable")[:c]]
                cand.update(int(i) for i in best)
        if not cand:
            return []
        scored = [self._score(i, query_vector, w, lex_norm, ent_norm) for i in cand]
        scored.sort(key=lambda t: (-t[0], t[3]))
        if language:
            # Entries in the customer's language first; order within each group is by score.
            scored.sort(key=lambda t: self.entries[t[3]].language != language)
        return [self._hit(t) for t in scored[:k]]

    def score_entries(
        self, query: str, query_vector: np.ndarray, ids: Sequence[str], dense_weight: float | None = None
    ) -> list[Hit]:
        """The hits of the given entry ids for one query, scored exactly as `search` scores them, best first; ids
        not in this snapshot are left out."""
        w = self.fusion.weight(query) if dense_weight is None else dense_weight
        index = {e.id: i for i, e in enumerate(self.entries)}
        wanted = dict.fromkeys(index[i] for i in ids if i in index)
        if not wanted:
            return []
        lex_norm, ent_norm = self._lexical(query)
        scored = sorted((self._score(i, query_vector, w, lex_norm, ent_norm) for i in wanted), key=lambda t: -t[0])
        return [self._hit(t) for t in scored]

    def _lexical(self, query: str) -> tuple[np.ndarray, np.ndarray]:
        """(BM25 of every phrasing, BM25 of every entry's joined phrasings), each normalised by the self-score."""
        tokens = tokenize(query)
        lex_rows, self_score = self.lexical.scores(tokens)
        lex_norm = np.minimum(lex_rows / self_score, 1.0) if self_score > 0 else lex_rows
        ent_rows, ent_self = self.entry_lexical.scores(tokens)
        ent_norm = np.minimum(ent_rows / ent_self, 1.0) if ent_self > 0 else ent_rows
        return lex_norm, ent_norm

    def _score(
        self, i: int, query_vector: np.ndarray, w: float, lex_norm: np.ndarray, ent_norm: np.ndarray
    ) -> tuple[float, float, float, int, int]:
        """(fused, dense, lexical, entry index, best phrasing row) of entry `i`."""
        s, e = self.starts[i], self.starts[i] + len(self.entries[i].phrasings)
        cos = np.asarray(self.vectors[s:e]) @ query_vector  # (phrasings,)
        lex = lex_norm[s:e]
        # An entry scores by its best phrasing, smoothed by its best three (a nearest-neighbours vote).
        top3 = np.sort(cos)[-3:]
        dense = float(0.5 * top3[-1] + 0.5 * top3.mean())
        lexical = float(0.5 * lex.max() + 0.5 * ent_norm[i])
        best_row = int(np.argmax(w * cos + (1 - w) * lex))
        fused = w * max(dense, 0.0) + (1 - w) * lexical
        return fused, dense, lexical, int(i), int(s + best_row)

    def _hit(self, scored: tuple[float, float, float, int, int]) -> Hit:
        f, d, lx, i, row = scored
        return Hit(
            entry=self.entries[i],
            score=float(self.fusion.calibrate(f)),
            dense=d,
            lexical=lx,
            matched=self.phrasings[row],
            index_version=self.version,
            fused=f,
        )
