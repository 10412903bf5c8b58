"""FAQ knowledge base: loaders with validation, embedder, FAISS and BM25 indexes, hybrid retrieval,
versioned snapshots with atomic reload and rollback, and retrieval evaluation. Imports nothing of ours.

Import the heavy parts from their modules (`knowledge_base.kb.KnowledgeBase`, `knowledge_base.embedder`); this
package's top level stays light so config and CLI `--help` load instantly.
"""

from knowledge_base.records import FaqDiff, FaqEntry, Hit, SearchResult, VersionInfo

__all__ = ["FaqDiff", "FaqEntry", "Hit", "SearchResult", "VersionInfo"]
