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
import re
from dataclasses import dataclass, field
from pathlib import Path

from knowledge_base.loaders import MAX_ANSWER, ConversationRow, QueryRow
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


# doc2dial (CC BY 3.0, Feng et al., EMNLP 2020): government-service pages and user <-> agent dialogues grounded in
# them. Tune on the ssa and va domains, measure on studentaid (held out).
DOC2DIAL = "doc2dial"
DOC2DIAL_TUNE = ("ssa", "va")
DOC2DIAL_HELD_OUT = ("studentaid",)
_D2D_DOCUMENTS = "documents_validation_no_dmv.jsonl"
_D2D_TURNS = "turns_validation_no_dmv.jsonl"
_ENDS_SENTENCE = (".", "!", "?", ",", ";")


@dataclass(frozen=True)
class GroundedQuestion:
    """The first customer message of a doc2dial dialogue and the document spans the agent answered it from."""

    query: str
    doc_id: str
    domain: str
    span_ids: tuple[str, ...]
    grounding: str
    """The text of those spans (the gold answer's words)."""


@dataclass
class GroundedEvalSet(EvalSet):
    """An EvalSet whose queries carry the gold grounding text (None for out-of-scope rows), aligned with `queries`."""

    grounding: list[str | None] = field(default_factory=list)


def _d2d_files(data: Path) -> tuple[Path, Path]:
    folder = data / DOC2DIAL if (data / DOC2DIAL).is_dir() else data
    files = folder / _D2D_DOCUMENTS, folder / _D2D_TURNS
    missing = [p.name for p in files if not p.exists()]
    if missing:
        raise FileNotFoundError(
            f"doc2dial files not found under {folder} (missing {', '.join(missing)}); pass the shared data folder, "
            "e.g. ../shared/data, which holds doc2dial/"
        )
    return files


def _jsonl(path: Path) -> list[dict]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def doc2dial_documents(data: Path, domains: tuple[str, ...] | None = None) -> list[dict]:
    """The documents (`doc_id`, `domain`, `doc_text`, `spans`) of `domains` (all when None), in file order."""
    docs = _jsonl(_d2d_files(data)[0])
    return [d for d in docs if domains is None or d["domain"] in domains]


def doc2dial_questions(data: Path, domains: tuple[str, ...] | None = None) -> list[GroundedQuestion]:
    """The first user message of every dialogue in `domains` (all when None), with its grounding."""
    out = []
    for row in _jsonl(_d2d_files(data)[1]):
        if row["turn_id"] != 1 or (domains is not None and row["domain"] not in domains):
            continue
        first = row["history"][0]["utterance"].strip()
        grounding = row["grounding"]
        if first:
            out.append(
                GroundedQuestion(
                    first, row["doc_id"], row["domain"], tuple(grounding["span_ids"]), grounding["text"].strip()
                )
            )
    return out


def _span_order(doc: dict) -> list[str]:
    return sorted(doc["spans"], key=int)


def _is_heading(span: str) -> bool:
    return span.startswith("\n") and bool(span.strip())


def doc2dial_text(spans: list[str]) -> str:
    """Spans joined into an article: the document's text, with a line break after a span that ends without
    punctuation before a capital (a list item: the pages' lists were flattened) or with a colon (a list's intro)."""
    parts = []
    for i, span in enumerate(spans):
        parts.append(span)
        after = spans[i + 1] if i + 1 < len(spans) else ""
        end = span.rstrip()
        if not after or after.startswith("\n") or span.endswith("\n") or not end:
            continue
        if end.endswith(":") or (not end.endswith(_ENDS_SENTENCE) and after.lstrip()[:1].isupper()):
            parts.append("\n")
    text = "".join(parts)
    text = re.sub(r"[ \t]+\n", "\n", text)
    return re.sub(r"\n{3,}", "\n\n", text).strip()


def _page_titles(docs: list[dict]) -> dict[str, str]:
    """doc_id -> page title without its '#n_m' part and the site's name ('| Federal Student Aid')."""
    titles = {d["doc_id"]: d["doc_id"].split("#")[0].strip() for d in docs}
    sites: dict[str, dict[str, int]] = {}
    for d in docs:
        parts = titles[d["doc_id"]].rsplit("|", 1)
        if len(parts) == 2:
            counts = sites.setdefault(d["domain"], {})
            counts[parts[1].strip()] = counts.get(parts[1].strip(), 0) + 1
    per_domain = {dom: sum(1 for d in docs if d["domain"] == dom) for dom in sites}
    out = {}
    for d in docs:
        title = titles[d["doc_id"]]
        head, _, site = title.rpartition("|")
        if head and sites[d["domain"]].get(site.strip(), 0) >= 0.1 * per_domain[d["domain"]]:
            title = head.strip()
        out[d["doc_id"]] = title
    return out


def _unique(questions: list[str], fallbacks: list[str]) -> list[str]:
    counts: dict[str, int] = {}
    for q in questions:
        counts[q.lower()] = counts.get(q.lower(), 0) + 1
    return [q if counts[q.lower()] == 1 else f"{q} ({extra})" for q, extra in zip(questions, fallbacks, strict=True)]


def _out_of_scope(data: Path, domains: tuple[str, ...], n: int) -> list[QueryRow]:
    others = [g for g in doc2dial_questions(data) if g.domain not in domains]
    seen: set[str] = set()
    rows = []
    for g in sorted(others, key=lambda g: _h(g.query)):
        if g.query.lower() not in seen:
            seen.add(g.query.lower())
            rows.append(QueryRow(g.query, None))
    return rows[:n]


def _grounded_set(
    name: str, entries: list[FaqEntry], gold: list[tuple[QueryRow, str]], data: Path, domains: tuple[str, ...],
    max_oos: int | None,
) -> GroundedEvalSet:  # fmt: skip
    oos = _out_of_scope(data, domains, len(gold) if max_oos is None else max_oos)
    queries = [row for row, _ in gold] + oos
    return GroundedEvalSet(name, entries, queries, [text for _, text in gold] + [None] * len(oos))


def doc2dial_articles(
    data: Path, domains: tuple[str, ...] = DOC2DIAL_HELD_OUT, max_oos: int | None = None
) -> GroundedEvalSet:
    """Help-center articles: one FAQ entry per doc2dial document of `domains` (question = the page title, answer =
    the document's text, cut at a span boundary to the FAQ format's answer limit); queries = the first user messages
    of the dialogues grounded in it (dropped when their grounding lies past the cut), plus as many out-of-scope rows
    (first messages of the other domains' dialogues; `max_oos` caps them)."""
    docs = doc2dial_documents(data, domains)
    titles = _page_titles(docs)
    entries, kept = [], {}
    questions = _unique([titles[d["doc_id"]] for d in docs], [d["doc_id"] for d in docs])
    for doc, question in zip(docs, questions, strict=True):
        ids = _span_order(doc)
        spans = [doc["spans"][k] for k in ids]
        cut = len(spans)
        while cut > 1 and len(doc2dial_text(spans[:cut])) > MAX_ANSWER:
            cut -= 1
        kept[doc["doc_id"]] = set(ids[:cut])
        entries.append(FaqEntry(doc["doc_id"], question, doc2dial_text(spans[:cut]), (), "en", doc["domain"]))
    gold = [
        (QueryRow(g.query, g.doc_id), g.grounding)
        for g in doc2dial_questions(data, domains)
        if g.doc_id in kept and g.span_ids and g.span_ids[0] in kept[g.doc_id]
    ]
    return _grounded_set(f"doc2dial-articles-{'+'.join(domains)}", entries, gold, data, domains, max_oos)


def doc2dial_sections(
    data: Path, domains: tuple[str, ...] = DOC2DIAL_HELD_OUT, max_oos: int | None = None
) -> GroundedEvalSet:
    """A long-answer FAQ: one entry per titled section of the doc2dial documents of `domains` (question = the
    section's heading, with the page title when two headings are the same; answer = the section's text under the
    heading, cut at a span boundary to the answer limit; id = `doc_id` + `~` + the heading's span id). Queries =
    the first user messages of the dialogues whose first grounding span lies in that section (and before the cut),
    plus out-of-scope rows as in `doc2dial_articles`."""
    docs = doc2dial_documents(data, domains)
    titles = _page_titles(docs)
    raw: list[tuple[str, str, str, str]] = []  # (id, heading, answer, page title)
    section_of: dict[tuple[str, str], str] = {}
    for doc in docs:
        ids = _span_order(doc)
        starts = [i for i, k in enumerate(ids) if _is_heading(doc["spans"][k])]
        for n, start in enumerate(starts):
            stop = starts[n + 1] if n + 1 < len(starts) else len(ids)
            body = doc2dial_text([doc["spans"][k] for k in ids[start + 1 : stop]])
            while stop > start + 2 and len(body) > MAX_ANSWER:
                stop -= 1
                body = doc2dial_text([doc["spans"][k] for k in ids[start + 1 : stop]])
            if not body:
                continue
            fid = f"{doc['doc_id']}~{ids[start]}"
            raw.append((fid, " ".join(doc["spans"][ids[start]].split()), body, titles[doc["doc_id"]]))
            for k in ids[start:stop]:
                section_of[(doc["doc_id"], k)] = fid
    questions = _unique([r[1] for r in raw], [r[3] for r in raw])
    entries = [FaqEntry(fid, q, body, (), "en", title) for (fid, _, body, title), q in zip(raw, questions, strict=True)]
    gold = [
        (QueryRow(g.query, section_of[(g.doc_id, g.span_ids[0])]), g.grounding)
        for g in doc2dial_questions(data, domains)
        if g.span_ids and (g.doc_id, g.span_ids[0]) in section_of
    ]
    return _grounded_set(f"doc2dial-sections-{'+'.join(domains)}", entries, gold, data, domains, max_oos)


def write_eval_set(eval_set: EvalSet, folder: Path) -> tuple[Path, Path]:
    """Write `faq.jsonl` and `queries.jsonl` (DESIGN.md's formats; `faq_id` null = out of scope, and a
    `grounding` field with the gold text when the set has one) into `folder`; return their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    faq, queries = folder / "faq.jsonl", folder / "queries.jsonl"
    with open(faq, "w", encoding="utf-8") as f:
        for entry in eval_set.entries:
            f.write(json.dumps(entry.to_dict(), ensure_ascii=False) + "\n")
    grounding = getattr(eval_set, "grounding", None) or [None] * len(eval_set.queries)
    with open(queries, "w", encoding="utf-8") as f:
        for row, gold in zip(eval_set.queries, grounding, strict=True):
            out: dict = {"query": row.query, "faq_id": row.faq_id}
            if gold is not None:
                out["grounding"] = gold
            f.write(json.dumps(out, ensure_ascii=False) + "\n")
    return faq, queries


def doc2dial_conversations(
    data: Path, domains: tuple[str, ...] = DOC2DIAL_HELD_OUT, min_words: int = 4, max_turns: int = 4
) -> list[ConversationRow]:
    """Multi-turn conversations for follow-up evaluation: per doc2dial dialogue of `domains`, the customer's messages
    from the first up to the next one of at least `min_words` words (the replies in between, such as "Yes.", kept
    as sent; at most `max_turns` messages). A doc2dial dialogue is grounded in one document, so the right entry of
    the first and the last message is that document: `faq_ids` = `first_faq_ids` = its `doc_id`, the entry id of
    `doc2dial_articles`. Dialogues whose later messages are all short are left out."""
    longest: dict[str, dict] = {}
    for row in _jsonl(_d2d_files(data)[1]):
        if domains is not None and row["domain"] not in domains:
            continue
        if row["dial_id"] not in longest or row["turn_id"] > longest[row["dial_id"]]["turn_id"]:
            longest[row["dial_id"]] = row
    out = []
    for dial_id in sorted(longest, key=_h):
        row = longest[dial_id]
        said = [h["utterance"].strip() for h in row["history"] if h["role"] == "user" and h["utterance"].strip()]
        for j in range(1, min(len(said), max_turns)):
            if len(said[j].split()) >= min_words:
                out.append(ConversationRow(tuple(said[: j + 1]), (row["doc_id"],), (row["doc_id"],)))
                break
    return out


def write_conversations(rows: list[ConversationRow], path: Path) -> Path:
    """Write conversations in the multi-turn format `load_conversations` reads (`turns`, `faq_id` as a list or
    null, `first_faq_id`, `split`); return the path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        for row in rows:
            out: dict = {"turns": list(row.turns), "faq_id": list(row.faq_ids) or None}
            if row.first_faq_ids:
                out["first_faq_id"] = list(row.first_faq_ids)
            if row.split:
                out["split"] = row.split
            f.write(json.dumps(out, ensure_ascii=False) + "\n")
    return path
