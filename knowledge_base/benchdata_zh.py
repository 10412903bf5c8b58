"""Chinese evaluation sets beside `benchdata.afqmc` (the folder READMEs in `../shared/data` give sources and licenses).

- afqmc_dev: AFQMC paraphrase pairs like `benchdata.afqmc`, but the next pairs in the same hash order, so that
  tuning on them never sees the pairs `afqmc` reports on.
- afqmc_1k: the 1,000 pairs after those (report on these too: ten times the queries of `afqmc`, less noise).
- afqmc_training_pairs: the AFQMC train pairs that none of these sets (nor their distractors) touch, what the
  shipped USE head (`knowledge_base.use_head`) is trained on.
- crosswoz / crosswoz_dev: a Chinese FAQ of what CrossWOZ travellers ask about a place they were told of (its phone
  number, address, opening hours, the hotels nearby ...): one entry per (domain, requested slot) with at least 20
  validation-split questions. Entries take up to 15 validation questions as phrasings; `crosswoz_dev` queries are
  the other validation questions (tune on these), `crosswoz` queries are the test split's (report on these).
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

from knowledge_base.benchdata import EvalSet, _afqmc_pairs, _h
from knowledge_base.loaders import QueryRow
from knowledge_base.records import FaqEntry

_MIN_QUESTIONS = 20
_PHRASINGS = 15


def afqmc_dev(data: Path, n: int = 300, skip: int = 100) -> EvalSet:
    """`n` AFQMC pairs after the `skip` that `benchdata.afqmc` uses (same order, no sentence shared with them)."""
    pairs = sorted((p for p in _afqmc_pairs(data) if p[2] == 1), key=lambda p: _h(p[0] + p[1]))
    entries, queries, seen, taken = [], [], set(), 0
    for s1, s2, _ in pairs:
        if s1 in seen or s2 in seen or s1 == s2:
            continue
        seen.update((s1, s2))
        taken += 1
        if taken <= skip:
            continue
        fid = f"afqmc-dev-{len(entries)}"
        entries.append(FaqEntry(fid, s1, f"(answer {fid})", (), "zh", None))
        queries.append(QueryRow(s2, fid))
        if len(entries) == n:
            break
    return EvalSet("afqmc_dev", entries, queries)


def afqmc_1k(data: Path) -> EvalSet:
    """1,000 AFQMC pairs after those of `afqmc` and `afqmc_dev` (same order, no sentence shared with them)."""
    held = afqmc_dev(data, n=1000, skip=400)
    return EvalSet("afqmc_1k", held.entries, held.queries)


def afqmc_training_pairs(data: Path, distractor_rows: int = 10_000) -> list[tuple[str, str, int]]:
    """AFQMC train pairs (label 1 and 0) outside every benchmark AFQMC set: the sentences of `afqmc`, `afqmc_dev`
    and `afqmc_1k` and the AFQMC distractors of their FAQs up to `distractor_rows` entries are held out, with every
    pair connected to them through shared sentences (connected components of the pair graph), so that no sentence
    a benchmark query, entry or distractor uses, nor a sentence paired with one, is trained on."""
    from knowledge_base.benchdata import afqmc, distractor_pool

    pairs = _afqmc_pairs(data)
    held = set()
    for eval_set in (afqmc(data), afqmc_dev(data), afqmc_1k(data)):
        held.update(e.question for e in eval_set.entries)
        held.update(q.query for q in eval_set.queries)
    held.update(distractor_pool(data, "afqmc", limit=distractor_rows))
    parent: dict[str, str] = {}

    def root(x: str) -> str:
        while parent.setdefault(x, x) != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for s1, s2, _ in pairs:
        r1, r2 = root(s1), root(s2)
        if r1 != r2:
            parent[r1] = r2
    held_roots = {root(s) for s in held if s in parent}
    return [p for p in pairs if root(p[0]) not in held_roots]


def _crosswoz_questions(data: Path, split: str) -> dict[str, list[str]]:
    """Customer turns that only ask for one slot (greetings aside), by `domain-slot`."""
    path = data / "crosswoz" / f"{split}.json.zip"
    if not path.exists():
        raise FileNotFoundError(
            f"CrossWOZ file {path} not found; pass the shared data folder, e.g. ../shared/data, which holds crosswoz/"
        )
    with zipfile.ZipFile(path) as z:
        dialogs = json.loads(z.read(f"{split}.json"))
    out: dict[str, list[str]] = {}
    for dialog in dialogs.values():
        for message in dialog["messages"]:
            acts = [a for a in message["dialog_act"] if a[0] != "General"]
            if message["role"] != "usr" or not acts or any(a[0] != "Request" for a in acts):
                continue
            slots = {f"{a[1]}-{a[2]}" for a in acts}
            if len(slots) == 1:
                out.setdefault(slots.pop(), []).append(message["content"].strip())
    return out


def _crosswoz(data: Path, held_out: bool) -> EvalSet:
    val = _crosswoz_questions(data, "val")
    intents = sorted(k for k, v in val.items() if len(set(v)) >= _MIN_QUESTIONS)
    entries, queries = [], []
    test = _crosswoz_questions(data, "test") if held_out else {}
    used: set[str] = set()
    for intent in intents:
        texts = sorted(set(val[intent]), key=_h)
        phrasings = texts[:_PHRASINGS]
        used.update(phrasings)
        entries.append(FaqEntry(intent, phrasings[0], f"(answer for {intent})", tuple(phrasings[1:]), "zh", None))
        rest = sorted(set(test.get(intent, ())), key=_h) if held_out else texts[_PHRASINGS:]
        queries += [QueryRow(t, intent) for t in rest if t not in used]
    return EvalSet("crosswoz" if held_out else "crosswoz_dev", entries, queries)


def crosswoz(data: Path) -> EvalSet:
    """The CrossWOZ FAQ with test-split queries (report on these)."""
    return _crosswoz(data, held_out=True)


def crosswoz_dev(data: Path) -> EvalSet:
    """The CrossWOZ FAQ with held-back validation queries (tune on these)."""
    return _crosswoz(data, held_out=False)
