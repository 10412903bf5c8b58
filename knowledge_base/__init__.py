"""FAQ knowledge base: loaders with validation, embedder, FAISS and BM25 indexes, hybrid retrieval,
versioned snapshots with atomic reload and rollback, and retrieval evaluation. Imports nothing of ours."""

from knowledge_base.records import FaqEntry, Hit, SearchResult

__all__ = ["FaqEntry", "Hit", "SearchResult"]
