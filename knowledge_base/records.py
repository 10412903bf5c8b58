"""Typed records that cross package boundaries. Raw FAISS arrays never leave `knowledge_base`."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class FaqEntry:
    """One FAQ entry as DESIGN.md's file format defines it."""

    id: str
    question: str
    answer: str
    alt_questions: tuple[str, ...] = ()
    language: str | None = None
    """ISO 639-1; detected at build time when the file leaves it out."""
    category: str | None = None

    @property
    def phrasings(self) -> tuple[str, ...]:
        """The question and its alternative phrasings; an entry scores by its best phrasing."""
        return (self.question, *self.alt_questions)

    def to_dict(self) -> dict:
        """The JSONL form of the entry (DESIGN.md's FAQ format)."""
        out: dict = {"id": self.id, "question": self.question, "answer": self.answer}
        if self.alt_questions:
            out["alt_questions"] = list(self.alt_questions)
        if self.language:
            out["language"] = self.language
        if self.category:
            out["category"] = self.category
        return out


@dataclass(frozen=True)
class Hit:
    """A ranked FAQ entry for one query."""

    entry: FaqEntry
    score: float
    """Calibrated confidence in [0, 1] that this entry answers the query; routing thresholds apply to it."""
    dense: float = 0.0
    """Dense similarity: the mean of the best cosine of the query with the entry's phrasings and of the mean of
    its best three."""
    lexical: float = 0.0
    """Lexical similarity in [0, 1]: the mean of the best phrasing's BM25 score and the BM25 score of all the entry's
    phrasings together, each as a fraction of the query's own BM25 self-score."""
    matched: str = ""
    """The phrasing that matched best."""
    index_version: str = ""
    fused: float = 0.0
    """The uncalibrated fused score (`dense_weight * dense + (1 - dense_weight) * lexical`) that ranks the hits."""


@dataclass(frozen=True)
class SearchResult:
    """The hits of one search and the snapshot version they all come from (never a mix)."""

    hits: tuple[Hit, ...]
    index_version: str
    language: str | None = None
    timings: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class VersionInfo:
    """One snapshot version on disk."""

    version: str
    created: str
    """ISO 8601 UTC time of the build."""
    entries: int
    corpus_hash: str
    embedder: str
    dim: int
    current: bool = False
    source: str = ""
    """The FAQ file it was built from."""


@dataclass(frozen=True)
class FaqDiff:
    """What activating a new FAQ file would change, as entry ids."""

    added: tuple[str, ...] = ()
    changed: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()

    @property
    def empty(self) -> bool:
        return not (self.added or self.changed or self.removed)
