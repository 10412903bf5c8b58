"""The knowledge base: versioned snapshots on disk, an atomic pointer to the current one, and an in-process
retriever that is swapped atomically on build, reload and rollback.

Layout under `root`:

    CURRENT                 the current version's name (replaced atomically with os.replace)
    versions/v0001/         manifest.json, entries.jsonl, vectors.npy, index.faiss, lexical.npz,
                            lexical_entries.npz
    versions/.build-*/      a build in progress; never current, removed by the next build
    cache/                  embeddings by content hash
    .lock                   held by a build, rollback or prune (other processes wait)

A snapshot folder appears under its final name only once complete (a rename), and `CURRENT` names it only after
that, so a build that fails or is killed at any point leaves the previous version serving.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import threading
import time
import uuid
import weakref
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from knowledge_base.config import KBConfig
from knowledge_base.embedder import Embedder, EmbeddingCache
from knowledge_base.files import file_lock, fsync_dir, write_atomic
from knowledge_base.index import Fusion, LexicalIndex, Retriever, configure_faiss
from knowledge_base.language import detect_language
from knowledge_base.loaders import load_faq
from knowledge_base.records import FaqDiff, FaqEntry, SearchResult, VersionInfo

MANIFEST_FORMAT = 1


class KnowledgeBaseError(RuntimeError):
    """A knowledge-base operation that cannot go ahead; the message says how to fix it."""


class NoSnapshotError(KnowledgeBaseError):
    """No version has been built yet."""


def demo_faq_path() -> Path:
    """The demo FAQ shipped in the repository (a store's FAQ built from the Bitext customer-support set)."""
    return Path(__file__).parent / "demo" / "store_faq.jsonl"


def corpus_hash(entries: Sequence[FaqEntry]) -> str:
    """A hash of the entries' content (order-independent)."""
    h = hashlib.sha256()
    for line in sorted(json.dumps(e.to_dict(), sort_keys=True, ensure_ascii=False) for e in entries):
        h.update(line.encode("utf-8"))
        h.update(b"\n")
    return h.hexdigest()[:16]


def fusion_for(config: KBConfig, embedder: Embedder) -> Fusion:
    """Fusion weights and calibration from `config`; for CJK queries, a multilingual embedder (one with its own
    `cjk_dense_weight`) uses `multilingual_cjk_dense_weight`, or its own weight when that is unset."""
    c = config
    cjk = c.cjk_dense_weight
    own = getattr(getattr(embedder, "active", embedder), "cjk_dense_weight", None)
    if own is not None:
        cjk = own if c.multilingual_cjk_dense_weight is None else c.multilingual_cjk_dense_weight
    return Fusion(c.dense_weight, cjk, c.calibration_slope, c.calibration_offset)


class KnowledgeBase:
    """FAQ search over versioned snapshots. Cheap `__init__`; `warm_up()` loads the current snapshot; `search` is
    thread-safe and each result comes from exactly one snapshot."""

    def __init__(self, root: Path, config: KBConfig | None = None, embedder: Embedder | None = None):
        from knowledge_base.embedder import make_embedder

        self.root = Path(root)
        self.config = config or KBConfig()
        self.embedder = embedder if embedder is not None else make_embedder(self.config)
        self._retriever: Retriever | None = None
        self._embedders: dict[str, Embedder] = {}  # by version: what its queries are embedded with
        self._warm = False
        self._swap_lock = threading.Lock()
        self._build_lock = threading.Lock()

    # -- paths and pointer ---------------------------------------------------------------------------------------
    @property
    def versions_dir(self) -> Path:
        return self.root / "versions"

    def _pointer(self) -> str | None:
        try:
            name = (self.root / "CURRENT").read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            return None
        return name or None

    @property
    def fusion(self) -> Fusion:
        """The fusion of versions built with `embedder` (`fusion_for`)."""
        return fusion_for(self.config, self.embedder)

    # -- lifecycle ----------------------------------------------------------------------------------------------
    def warm_up(self) -> KnowledgeBase:
        """Load the current snapshot (if any) and the embedder. No snapshot yet is fine: `current_version` is None."""
        with self._swap_lock:
            version = self._pointer()
            if version and (self._retriever is None or self._retriever.version != version):
                self._set_current(self._load(version))
            self._warm = True
        warm = getattr(self.embedder, "warm_up", None)
        if warm and self._retriever is not None:
            warm()
        return self

    @property
    def current_version(self) -> str | None:
        """The version this process serves (None before any build)."""
        if not self._warm:
            self.warm_up()
        return self._retriever.version if self._retriever else None

    def _current(self) -> Retriever:
        if not self._warm:
            self.warm_up()
        retriever = self._retriever
        if retriever is None:
            raise NoSnapshotError(
                f"the knowledge base in {self.root} has no version yet: run `chatbot kb build FILE` "
                "(e.g. the demo FAQ: `chatbot kb build --demo`)"
            )
        return retriever

    # -- search -------------------------------------------------------------------------------------------------
    def search(self, text: str, k: int = 5, language: str | None = None) -> SearchResult:
        """The `k` best entries for `text`, scored with a calibrated confidence in [0, 1]. With `language`, entries
        in that language rank first. All hits come from one snapshot, even while another is being swapped in."""
        retriever = self._current()  # one reference for the whole search: never a mix of versions
        t0 = time.perf_counter()
        vector = self._query_embedder(retriever).encode([text])[0]
        t1 = time.perf_counter()
        hits = retriever.search(text, vector, k=k, language=language)
        t2 = time.perf_counter()
        return SearchResult(
            hits=tuple(hits),
            index_version=retriever.version,
            language=language,
            timings={"embed_s": t1 - t0, "retrieve_s": t2 - t1},
        )

    def search_including(self, text: str, ids: Sequence[str], k: int = 5, language: str | None = None) -> SearchResult:
        """`search`, then the entries `ids` that are not among its `k` hits, scored for `text` the same way with the
        same query vector and snapshot (best first; ids this version lacks are left out). Follow-up retrieval
        scores the previous answer's sources for a new message this way."""
        retriever = self._current()
        t0 = time.perf_counter()
        vector = self._query_embedder(retriever).encode([text])[0]
        t1 = time.perf_counter()
        hits = retriever.search(text, vector, k=k, language=language)
        found = {h.entry.id for h in hits}
        extra = retriever.score_entries(text, vector, [i for i in ids if i not in found])
        t2 = time.perf_counter()
        return SearchResult(
            hits=(*hits, *extra),
            index_version=retriever.version,
            language=language,
            timings={"embed_s": t1 - t0, "retrieve_s": t2 - t1},
        )

    def entries(self) -> list[FaqEntry]:
        """Entries of the current version."""
        return list(self._current().entries)

    def entry(self, faq_id: str) -> FaqEntry | None:
        """One entry of the current version by id."""
        return self._current().by_id.get(faq_id)

    # -- build --------------------------------------------------------------------------------------------------
    def build(self, faq_path: str | Path, progress: bool = False, *, activate: bool = True) -> VersionInfo:
        """Validate `faq_path` whole (any problem raises `FaqValidationError` and changes nothing), build a new
        snapshot off to the side, switch the on-disk pointer and the in-process retriever, prune old versions.
        With `activate=False` the snapshot is only built (see `build_entries`)."""
        entries = load_faq(faq_path)
        return self.build_entries(entries, source=str(faq_path), progress=progress, activate=activate)

    def build_entries(self, entries: Sequence[FaqEntry], source: str = "", progress: bool = False, *,
                      activate: bool = True) -> VersionInfo:  # fmt: skip
        """Build a new current version from entries already in memory (the admin page's editor uses this).

        With `activate=False` the new version is complete on disk but not current (nothing is pruned): search it
        with `at(version)`, make it current with `activate(version)`.
        """
        if not entries:
            raise KnowledgeBaseError("cannot build an empty knowledge base: the FAQ needs at least one entry")
        ids = [e.id for e in entries]
        if len(set(ids)) != len(ids):
            raise KnowledgeBaseError("FAQ ids must be unique")
        with self._build_lock, file_lock(self.root / ".lock"):
            entries = [self._with_language(e) for e in entries]
            self.versions_dir.mkdir(parents=True, exist_ok=True)
            for stale in self.versions_dir.glob(".build-*"):  # left by a killed build
                shutil.rmtree(stale, ignore_errors=True)
            version = self._next_version()
            staging = self.versions_dir / f".build-{uuid.uuid4().hex[:8]}"
            staging.mkdir()
            embedder = self._embedder_for(entries)
            try:
                retriever = self._build_snapshot(staging, version, entries, source, progress, embedder)
                final = self.versions_dir / version
                os.rename(staging, final)
                fsync_dir(self.versions_dir)
            except BaseException:
                shutil.rmtree(staging, ignore_errors=True)
                raise
            if not activate:
                return self._info(version)
            write_atomic(self.root / "CURRENT", version + "\n")
            self._embedders[version] = embedder
            with self._swap_lock:
                self._set_current(retriever)
            self._hold(version)
            self._prune()
        return self._info(version)

    def _embedder_for(self, entries: Sequence[FaqEntry]) -> Embedder:
        """The embedder a new version of `entries` is built with: `[kb] embedder = "auto"` chooses by the entries'
        languages, any other embedder is itself."""
        choose = getattr(self.embedder, "choose", None)
        return choose([e.language for e in entries]) if choose else self.embedder

    def _set_current(self, retriever: Retriever) -> None:
        """Serve `retriever` (the caller holds `_swap_lock`); with `auto`, `embedder` becomes the one it was built
        with, for the callers that embed through `kb.embedder`."""
        self._retriever = retriever
        self._warm = True
        use = getattr(self.embedder, "use", None)
        if use:
            use(self._embedders[retriever.version])

    def _query_embedder(self, retriever: Retriever) -> Embedder:
        return self._embedders.get(retriever.version, self.embedder)

    def _with_language(self, entry: FaqEntry) -> FaqEntry:
        if entry.language:
            return entry
        from dataclasses import replace

        text = " ".join(entry.phrasings[:5])
        return replace(entry, language=detect_language(text, default=self.config.default_language))

    def _next_version(self) -> str:
        numbers = [int(p.name[1:]) for p in self.versions_dir.glob("v*") if p.name[1:].isdigit()]
        return f"v{max(numbers, default=0) + 1:04d}"

    def _build_snapshot(
        self, folder: Path, version: str, entries: list[FaqEntry], source: str, progress: bool, embedder: Embedder
    ) -> Retriever:
        import faiss

        phrasings = [p for e in entries for p in e.phrasings]
        cache = EmbeddingCache(self.root / "cache")
        vectors, embedded = cache.encode(embedder, phrasings, progress=progress)
        retriever = Retriever.build(
            version,
            entries,
            vectors,
            fusion_for(self.config, embedder),
            self.config.index_factory,
            self.config.hnsw_ef_search,
            self.config.candidates,
            nprobe=self.config.ivf_nprobe,
            progress=progress,
        )
        with open(folder / "entries.jsonl", "w", encoding="utf-8") as f:
            for e in entries:
                f.write(json.dumps(e.to_dict(), ensure_ascii=False) + "\n")
        np.save(folder / "vectors.npy", vectors)
        faiss.write_index(retriever.faiss_index, str(folder / "index.faiss"))
        np.savez(folder / "lexical.npz", **retriever.lexical.arrays())
        np.savez(folder / "lexical_entries.npz", **retriever.entry_lexical.arrays())
        manifest = {
            "format": MANIFEST_FORMAT,
            "version": version,
            "created": datetime.now(UTC).isoformat(timespec="seconds"),
            "entries": len(entries),
            "phrasings": len(phrasings),
            "corpus_hash": corpus_hash(entries),
            "embedder": embedder.name,
            "dim": int(vectors.shape[1]),
            "index_factory": self.config.index_factory,
            "embedded_now": embedded,
            "source": source,
        }
        # The manifest is written last: a folder without one is incomplete.
        write_atomic(folder / "manifest.json", json.dumps(manifest, indent=2))
        return retriever

    # -- load ---------------------------------------------------------------------------------------------------
    def _manifest(self, version: str) -> dict:
        path = self.versions_dir / version / "manifest.json"
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise KnowledgeBaseError(
                f"version {version!r} not found in {self.versions_dir}; `chatbot kb versions` lists the versions"
            ) from None

    def _load(self, version: str) -> Retriever:
        import faiss

        manifest = self._manifest(version)
        folder = self.versions_dir / version
        candidate = getattr(self.embedder, "candidate", None)  # `auto`: the one this version was built with
        embedder = (candidate(str(manifest.get("embedder"))) if candidate else None) or self.embedder
        if manifest.get("embedder") != embedder.name or manifest.get("dim") != embedder.dim:
            raise KnowledgeBaseError(
                f"version {version} was built with embedder {manifest.get('embedder')} (dim {manifest.get('dim')}) "
                f"but this process uses {embedder.name} (dim {embedder.dim}); rebuild with "
                f'`chatbot kb build FILE` or set [kb] embedder = "{manifest.get("embedder")}"'
            )
        entries = []
        with open(folder / "entries.jsonl", encoding="utf-8") as f:
            for line in f:
                d = json.loads(line)
                entries.append(
                    FaqEntry(
                        d["id"],
                        d["question"],
                        d["answer"],
                        tuple(d.get("alt_questions", ())),
                        d.get("language"),
                        d.get("category"),
                    )
                )
        vectors = np.load(folder / "vectors.npy", mmap_mode="r")
        index = faiss.read_index(str(folder / "index.faiss"))
        configure_faiss(index, self.config.hnsw_ef_search, self.config.ivf_nprobe)
        with np.load(folder / "lexical.npz", allow_pickle=False) as data:
            lexical = LexicalIndex.from_arrays(dict(data))
        with np.load(folder / "lexical_entries.npz", allow_pickle=False) as data:
            entry_lexical = LexicalIndex.from_arrays(dict(data))
        self._hold(version)
        self._embedders[version] = embedder
        fusion = fusion_for(self.config, embedder)
        return Retriever(version, entries, vectors, index, lexical, fusion, self.config.candidates, entry_lexical)

    # -- versions -----------------------------------------------------------------------------------------------
    def _info(self, version: str) -> VersionInfo:
        m = self._manifest(version)
        return VersionInfo(
            version=version,
            created=m.get("created", ""),
            entries=int(m.get("entries", 0)),
            corpus_hash=m.get("corpus_hash", ""),
            embedder=m.get("embedder", ""),
            dim=int(m.get("dim", 0)),
            current=version == self._pointer(),
            source=m.get("source", ""),
        )

    def _complete_versions(self) -> list[str]:
        if not self.versions_dir.exists():
            return []
        names = [
            p.name
            for p in self.versions_dir.iterdir()
            if p.is_dir() and not p.name.startswith(".") and (p / "manifest.json").exists()
        ]
        return sorted(names)

    def versions(self) -> list[VersionInfo]:
        """Complete versions on disk, oldest first, with the current one flagged."""
        return [self._info(v) for v in self._complete_versions()]

    def reload(self) -> str:
        """Re-read the on-disk pointer (e.g. after another process built or rolled back) and swap in its snapshot.
        Returns the version now served."""
        version = self._pointer()
        if version is None:
            raise NoSnapshotError(f"the knowledge base in {self.root} has no version yet: run `chatbot kb build FILE`")
        current = self._retriever
        if current is None or current.version != version:
            retriever = self._load(version)  # off to the side; searches keep using the old one meanwhile
            with self._swap_lock:
                self._set_current(retriever)
        return version

    def rollback(self, version: str) -> VersionInfo:
        """Make an older (or any complete) version current, on disk and in this process."""
        with self._build_lock, file_lock(self.root / ".lock"):
            if version not in self._complete_versions():
                known = ", ".join(self._complete_versions()) or "none"
                raise KnowledgeBaseError(f"no complete version {version!r} in {self.versions_dir} (have: {known})")
            retriever = self._load(version)
            write_atomic(self.root / "CURRENT", version + "\n")
            with self._swap_lock:
                self._set_current(retriever)
        return self._info(version)

    def activate(self, version: str) -> VersionInfo:
        """Make `version` (e.g. one built with `activate=False`) current, then prune old versions as a build does."""
        info = self.rollback(version)
        with self._build_lock, file_lock(self.root / ".lock"):
            self._prune()
        return info

    def at(self, version: str) -> KnowledgeBase:
        """A read-only knowledge base that searches `version` whatever is current (the evaluation gate compares a
        candidate with the current version this way). Building, rollback and reload are refused on it."""
        if version not in self._complete_versions():
            known = ", ".join(self._complete_versions()) or "none"
            raise KnowledgeBaseError(f"no complete version {version!r} in {self.versions_dir} (have: {known})")
        return PinnedKnowledgeBase(self, version)

    def _hold(self, version: str) -> None:
        """Record that this process serves `version`, so no process prunes it (`in-use/<pid>-<kb>` names it)."""
        folder = self.root / "in-use"
        folder.mkdir(parents=True, exist_ok=True)
        record = folder / f"{os.getpid()}-{id(self):x}"
        if not record.exists():  # first hold of this object: the record goes when the object does
            weakref.finalize(self, record.unlink, True)
        write_atomic(record, version + "\n")

    def _in_use(self) -> set[str]:
        """Versions served by a live process (stale records of ended processes are removed)."""
        used = {self._retriever.version} if self._retriever is not None else set()
        folder = self.root / "in-use"
        for record in folder.glob("[0-9]*-*") if folder.exists() else ():
            pid = record.name.split("-", 1)[0]
            try:
                os.kill(int(pid), 0)
            except ProcessLookupError:
                record.unlink(missing_ok=True)
                continue
            except (ValueError, PermissionError):  # not a pid, or another user's live process
                pass
            with contextlib.suppress(OSError):
                used.add(record.read_text(encoding="utf-8").strip())
        return used

    def _prune(self) -> None:
        """Remove the oldest versions beyond `keep_versions`, never the current one or one a process serves."""
        keep = self.config.keep_versions
        names = self._complete_versions()
        spared = {self._pointer(), *self._in_use()}
        old = [n for n in names if n not in spared]
        excess = len(names) - keep
        for name in old[: max(excess, 0)]:
            shutil.rmtree(self.versions_dir / name, ignore_errors=True)

    # -- diff ---------------------------------------------------------------------------------------------------
    def diff(self, faq_path: str | Path) -> FaqDiff:
        """What building `faq_path` would change against the current version (all ids added when none exists)."""
        new = {e.id: e for e in load_faq(faq_path)}
        try:
            old = {e.id: e for e in self._current().entries}
        except NoSnapshotError:
            old = {}

        return FaqDiff(
            added=tuple(i for i in new if i not in old),
            changed=tuple(i for i in new if i in old and not same_content(old[i], new[i])),
            removed=tuple(i for i in old if i not in new),
        )


def same_content(current: FaqEntry, incoming: FaqEntry) -> bool:
    """Whether `incoming` says what `current` says (a language left out of the file and detected at build time is
    not a change)."""
    fields = ("question", "answer", "alt_questions", "category")
    return all(getattr(current, f) == getattr(incoming, f) for f in fields) and (
        incoming.language is None or current.language == incoming.language
    )


def merge_entries(current: Sequence[FaqEntry], incoming: Sequence[FaqEntry]) -> list[FaqEntry]:
    """An upload merged into the FAQ: `current` in its order, each entry `incoming` changes replaced in place, then
    the entries `incoming` adds, in its order. Nothing is removed (an entry the upload lacks stays as it is)."""
    new = {e.id: e for e in incoming}
    merged = [new[e.id] if e.id in new and not same_content(e, new[e.id]) else e for e in current]
    known = {e.id for e in current}
    return merged + [e for e in incoming if e.id not in known]


class PinnedKnowledgeBase(KnowledgeBase):
    """One version of a knowledge base, searchable whatever `CURRENT` says; nothing on disk changes through it."""

    def __init__(self, parent: KnowledgeBase, version: str):
        view = getattr(parent.embedder, "view", None)  # `auto`: selecting this version's embedder leaves the parent's
        super().__init__(parent.root, parent.config, view() if view else parent.embedder)
        self._set_current(self._load(version))

    def warm_up(self) -> PinnedKnowledgeBase:
        warm = getattr(self.embedder, "warm_up", None)
        if warm:
            warm()
        return self

    def _refuse(self, *_: object, **__: object) -> VersionInfo:
        raise KnowledgeBaseError(
            f"this view of {self.root} is pinned to version {self.current_version} and read-only; build, roll back "
            "or activate through the knowledge base itself"
        )

    build_entries = rollback = activate = _refuse

    def reload(self) -> str:
        return str(self.current_version)
