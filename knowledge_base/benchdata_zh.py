"""Chinese evaluation sets beside `benchdata.afqmc` (the folder READMEs in `../shared/data` give sources and licenses).

- afqmc_dev: AFQMC paraphrase pairs like `benchdata.afqmc`, but the next pairs in the same hash order, so that
  tuning on them never sees the pairs `afqmc` reports on.
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
