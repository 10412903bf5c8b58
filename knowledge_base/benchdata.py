"""Evaluation sets built from the public data in `../shared/data` (the folder READMEs give sources and licenses).

- banking77: per intent, a deterministic 60/40 split of the training utterances into FAQ phrasings (the entry's
  question is the first, the rest `alt_questions`) and queries. Every 11th intent is left out of the FAQ; its
  queries become out-of-scope rows (a customer asking what the FAQ does not cover).
- clinc150: 100 of the 150 intents (those whose sorted position is not 2 mod 3) as entries, 15 training utterances
  each as phrasings; queries are their `val` utterances plus the 100 `oos_val` rows as out of scope.
- afqmc: Chinese paraphrase pairs (label 1): `sentence1` is the entry's question, `sentence2` the query.

Larger corpora add distractor entries (one phrasing each) drawn from the other datasets: CLINC150 train
utterances, Bitext instructions, MultiDoGO customer turns, SGD user turns and unused AFQMC sentences. Sources that
would answer a set's own queries are left out of that set's pool (CLINC for clinc150; CLINC banking/credit-card
intents and MultiDoGO finance for banking77; AFQMC positives' sentences for afqmc).
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from knowledge_base.loaders import QueryRow
from knowledge_base.records import FaqEntry


@dataclass
class EvalSet:
    """An FAQ and labelled queries."""

    name: str
    entries: list[FaqEntry]
    queries: list[QueryRow]


def _h(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()


def check_data(data: Path) -> None:
    """Raise FileNotFoundError with the fix when the shared data folder is missing."""
    needed = ["banking77/train.csv", "clinc150/data_full_trainval.json", "afqmc/train.csv"]
    missing = [n for n in needed if not (data / n).exists()]
    if missing:
        raise FileNotFoundError(
            f"benchmark data not found under {data} (missing {', '.join(missing)}); pass the "
            "shared data folder with --data, e.g. --data ../shared/data"
        )


def banking77(data: Path, max_queries: int = 1000) -> EvalSet:
    by_intent: dict[str, list[str]] = {}
    with open(data / "banking77/train.csv", encoding="utf-8", newline="") as f:
        for row in csv.DictReader(f):
            by_intent.setdefault(row["category"], []).append(row["text"].strip())
    entries, inscope, oos = [], [], []
    for i, intent in enumerate(sorted(by_intent)):
        texts = sorted(set(by_intent[intent]), key=_h)
        cut = int(len(texts) * 0.6)
        if i % 11 == 10:
            oos += [QueryRow(t, None) for t in texts[cut:]]
            continue
        entries.append(FaqEntry(intent, texts[0], f"(answer for {intent})", tuple(texts[1:cut]), "en", "banking"))
        inscope += [QueryRow(t, intent) for t in texts[cut:]]
    inscope = sorted(inscope, key=lambda q: _h(q.query))[:max_queries]
    oos = sorted(oos, key=lambda q: _h(q.query))[: max(1, max_queries // 4)]
    return EvalSet("banking77", entries, inscope + oos)


def clinc150(data: Path, max_queries: int = 1000, phrasings: int = 15) -> EvalSet:
    raw = json.loads((data / "clinc150/data_full_trainval.json").read_text(encoding="utf-8"))
    train: dict[str, list[str]] = {}
    for text, intent in raw["train"]:
        train.setdefault(intent, []).append(text)
    intents = [n for i, n in enumerate(sorted(train)) if i % 3 != 2]
    keep = set(intents)
    entries = []
    for intent in intents:
        texts = sorted(set(train[intent]), key=_h)[:phrasings]
        entries.append(FaqEntry(intent, texts[0], f"(answer for {intent})", tuple(texts[1:]), "en", None))
    inscope = sorted((QueryRow(t, n) for t, n in raw["val"] if n in keep), key=lambda q: _h(q.query))[:max_queries]
    oos = [QueryRow(t, None) for t, _ in raw["oos_val"]]
    return EvalSet("clinc150", entries, inscope + oos)


def _afqmc_pairs(data: Path) -> list[tuple[str, str, int]]:
    with open(data / "afqmc/train.csv", encoding="utf-8", newline="") as f:
        return [(r["sentence1"].strip(), r["sentence2"].strip(), int(r["label"])) for r in csv.DictReader(f)]


def afqmc(data: Path, n: int = 100) -> EvalSet:
    pairs = [p for p in _afqmc_pairs(data) if p[2] == 1]
    pairs = sorted(pairs, key=lambda p: _h(p[0] + p[1]))
    entries, queries, seen = [], [], set()
    for s1, s2, _ in pairs:
        if s1 in seen or s2 in seen or s1 == s2:
            continue
        seen.update((s1, s2))
        fid = f"afqmc-{len(entries)}"
        entries.append(FaqEntry(fid, s1, f"(answer {fid})", (), "zh", None))
        queries.append(QueryRow(s2, fid))
        if len(entries) == n:
            break
    return EvalSet("afqmc", entries, queries)


def distractor_pool(data: Path, exclude: str, limit: int = 120_000) -> list[str]:
    """Real sentences from the other datasets, deduplicated, in a fixed order (see the module docstring)."""
    texts: list[str] = []
    raw = json.loads((data / "clinc150/data_full_trainval.json").read_text(encoding="utf-8"))
    if exclude != "clinc150":
        domains = json.loads((data / "clinc150/domains.json").read_text(encoding="utf-8"))
        banned = set(domains.get("banking", []) + domains.get("credit_cards", [])) if exclude == "banking77" else set()
        texts += [t for t, n in raw["train"] if n not in banned]
    bitext = data / "bitext_customer_support/Bitext_Sample_Customer_Support_Training_Dataset.csv"
    if bitext.exists():
        with open(bitext, encoding="utf-8", newline="") as f:
            texts += [r["instruction"] for r in csv.DictReader(f) if "{{" not in r["instruction"]]
    mdg = data / "multidogo"
    if mdg.exists():
        for domain in sorted(p.name for p in mdg.iterdir() if p.is_dir()):
            if exclude == "banking77" and domain == "finance":
                continue
            with open(mdg / domain / "train.tsv", encoding="utf-8", errors="replace") as f:
                next(f, None)
                for line in f:
                    cells = line.rstrip("\n").split("\t")
                    if len(cells) >= 4 and len(cells[3].split()) >= 4:
                        texts.append(cells[3])
    sgd = data / "sgd/train"
    if sgd.exists():
        for path in sorted(sgd.glob("dialogues_*.json.gz")):
            with gzip.open(path, "rt", encoding="utf-8") as f:
                for dialog in json.load(f):
                    texts += [t["utterance"] for t in dialog["turns"] if t["speaker"] == "USER"]
            if len(texts) > limit * 2:
                break
    zh_used = {e for s1, s2, lab in _afqmc_pairs(data) if lab == 1 for e in (s1, s2)} if exclude == "afqmc" else set()
    texts += [s for s1, s2, _ in _afqmc_pairs(data) for s in (s1, s2) if s not in zh_used]
    seen: set[str] = set()
    out = []
    for t in sorted(texts, key=_h):  # a fixed, mixed order across sources
        t = t.strip()
        if t and t.lower() not in seen and len(t) <= 300:
            seen.add(t.lower())
            out.append(t)
            if len(out) >= limit:
                break
    return out


def with_distractors(base: EvalSet, pool: list[str], rows: int) -> list[FaqEntry]:
    """The base entries plus distractor entries up to `rows` entries in all."""
    need = max(0, rows - len(base.entries))
    if need > len(pool):
        raise ValueError(f"only {len(pool)} distractor texts for {need} rows")
    extra = [FaqEntry(f"distractor-{i}", t, "(distractor)", (), None, "distractor") for i, t in enumerate(pool[:need])]
    return list(base.entries) + extra
