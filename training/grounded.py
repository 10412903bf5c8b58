"""Grounded training examples: the sources in the prompt exactly as served, targets that restate them.

Four kinds, each a `GroundedExample` (the conversation so far, the FAQ entries serving would have put in the
prompt, the target reply):

- `faq_examples`: every phrasing of an FAQ entry -> the entry's own sentences that answer it (sometimes after a
  lead-in that states no fact), with the hits a knowledge-base search returns for the phrasing (the right entry
  among them; put first when the search missed it).
- `doc2dial_examples`: doc2dial agent turns with the section of the grounding document as source [1] plus
  retrieved distractors; only replies that pass `is_faithful` against the grounding span (no added numbers, names
  or other content words) are kept.
- `review_examples`: agent-approved, edited and handoff replies from the store, with the FAQ entries of the draft.
- `out_of_scope_examples`: questions whose retrieved sources do not answer them -> the engine's handoff notice.

`write_grounded` / `load_grounded` store them as JSONL (DESIGN.md's log format plus a `sources` list of FAQ
entries); `render_grounded` turns them into training `Example`s with `chatbot.prompt.render_training_example`, the
function serving's prompt comes from. `chatbot train --grounded FILE` trains on them.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chatbot.config import PromptConfig
from chatbot.extract import extract_answer
from chatbot.records import Turn
from chatbot.routing import extract_facts, supported_facts
from knowledge_base.records import FaqEntry, Hit

Search = Callable[[str], Sequence[Hit]]
"""Text -> ranked FAQ hits, as serving retrieves them (see `entry_searcher`)."""

HANDOFF_REPLY = "I'm passing your question to a colleague; a person will reply here shortly."
"""The out-of-scope target: the engine's English handoff notice (`chatbot.engine.NOTICES`; a test keeps them equal)."""

LEAD_INS = ("", "", "Sure.", "Happy to help.", "Good question.", "Of course.")
"""Openers a target may start with: they add no fact. Empty twice, so half of the targets start with the answer."""

_STOP_WORDS = (
    "a about after again all also am an and any are as at be been before being but by can could did do does doing "
    "for from had has have having he her here hers him his how i if in into is it its just let me more most my no "
    "nor not now of off on once only or other our ours out over own same she should so some such than that the "
    "their them then there these they this those through to too under until up very was we were what when where "
    "which while who whom why will with would you your yours yes ok okay sure please thank thanks hi hello well "
    "there's it's that's you're i'm don't can't won't isn't aren't let's like need want know get one also may"
)
_STOP = frozenset(_STOP_WORDS.split())
_WORD = re.compile(r"[a-z0-9][a-z0-9'’-]*")
_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(])|\n+")
_NAME = re.compile(r"(?<![.!?]\s)(?<!^)\b[A-Z][a-zA-Z]+\b")


@dataclass(frozen=True)
class GroundedExample:
    """One grounded training example: what serving would see and the faithful reply to learn."""

    id: str
    history: tuple[Turn, ...]
    """The conversation so far, ending with the customer's message."""
    sources: tuple[FaqEntry, ...]
    """The FAQ entries in the prompt, in rank order (source [1] first); empty = `Sources: none.`."""
    reply: str
    kind: str
    """`faq`, `doc2dial`, `review` (with the store's review state after a colon) or `out_of_scope`."""
    language: str | None = "en"

    def to_json(self) -> dict[str, Any]:
        """One JSONL line: DESIGN.md's log format plus `sources` (FAQ entries) and `kind`."""
        messages = [{"role": t.role, "content": t.content} for t in self.history]
        return {
            "id": self.id,
            "messages": [*messages, {"role": "assistant", "content": self.reply}],
            "sources": [e.to_dict() for e in self.sources],
            "kind": self.kind,
            "language": self.language,
        }


# -- faithfulness ----------------------------------------------------------------------------------------------------
def _stem(word: str) -> str:
    word = word.strip("'’-").replace("’", "'")
    for suffix in ("'s", "ing", "ed", "es", "s"):
        if len(word) > len(suffix) + 3 and word.endswith(suffix):
            return word[: -len(suffix)]
    return word


def content_words(text: str) -> list[str]:
    """Lower-cased, crudely stemmed words of `text` that carry content (no stop words, no one-letter words)."""
    return [_stem(w) for w in _WORD.findall(text.lower()) if w not in _STOP and len(w) > 1]


def unsupported_terms(reply: str, evidence: Iterable[str]) -> list[str]:
    """What `reply` states that `evidence` does not: facts (numbers, durations, URLs, e-mail addresses, by
    `chatbot.routing.extract_facts`) and capitalised names not at a sentence start."""
    evidence = list(evidence)
    missing = sorted(extract_facts(reply) - supported_facts(evidence))
    known = {w.lower() for text in evidence for w in re.findall(r"[A-Za-z]+", text)}
    missing += sorted({m.group() for m in _NAME.finditer(reply) if m.group().lower() not in known})
    return missing


def coverage(reply: str, evidence: Iterable[str]) -> float:
    """Share of the reply's content words found in `evidence` (1.0 for a reply with none)."""
    words = content_words(reply)
    if not words:
        return 1.0
    known = {w for text in evidence for w in content_words(text)}
    return sum(w in known for w in words) / len(words)


def is_faithful(reply: str, evidence: Iterable[str], min_coverage: float = 0.75) -> bool:
    """True when `reply` adds no fact or name to `evidence` and most of its content words come from it."""
    evidence = list(evidence)
    return not unsupported_terms(reply, evidence) and coverage(reply, evidence) >= min_coverage


# -- targets ---------------------------------------------------------------------------------------------------------
def sentences(text: str) -> list[str]:
    """`text` cut into sentences (and lines), stripped, empty ones dropped."""
    out: list[str] = []
    for piece in (s.strip() for s in _SENTENCE.split(text)):
        if out and re.fullmatch(r"\d{1,2}\.", out[-1]):  # "1." of a numbered list belongs to its item
            out[-1] = f"{out[-1]} {piece}"
        elif piece:
            out.append(piece)
    return out


def _with_lead_in(text: str, rng: random.Random) -> str:
    lead = rng.choice(LEAD_INS)
    return f"{lead} {text}" if lead else text


def _hits(entries: Sequence[FaqEntry]) -> tuple[Hit, ...]:
    return tuple(Hit(entry=e, score=1.0) for e in entries)


def render_grounded(
    examples: Sequence[GroundedExample], tokenizer: Any, prompt: PromptConfig, max_length: int
) -> list[Any]:
    """Training `Example`s (token ids, labels on the reply only) with the serving prompt for each example's
    history and sources (`chatbot.prompt.render_training_example`)."""
    from chatbot.prompt import IGNORE_INDEX, render_training_example
    from training.examples import Example

    out = []
    for ex in examples:
        ids, labels = render_training_example(
            tokenizer, prompt, ex.history, ex.reply, _hits(ex.sources), ex.language, max_length
        )
        if any(t != IGNORE_INDEX for t in labels[1:]):
            out.append(Example(tuple(ids), tuple(labels), ex.id))
    return out


# -- retrieval -------------------------------------------------------------------------------------------------------
def entry_searcher(entries: Sequence[FaqEntry], root: str | Path, kb_config: Any, k: int = 3, embedder: Any = None):
    """A `Search` over `entries`: a knowledge base built in `root` with `kb_config` (serving's hybrid retrieval),
    returning the top `k` hits."""
    from knowledge_base.kb import KnowledgeBase

    kb = KnowledgeBase(Path(root), kb_config, embedder)
    kb.build_entries(list(entries), source="grounded")

    def search(text: str) -> Sequence[Hit]:
        return kb.search(text, k=k).hits

    return search


def _sources_with(hits: Sequence[Hit], right: FaqEntry, k: int) -> tuple[FaqEntry, ...]:
    """The hits' entries with `right` among them: kept in place when retrieved, else put first."""
    found = [h.entry for h in hits[:k]]
    if any(e.id == right.id for e in found):
        return tuple(found)
    return (right, *[e for e in found if e.id != right.id][: k - 1])


# -- the four kinds --------------------------------------------------------------------------------------------------
def faq_examples(
    entries: Sequence[FaqEntry],
    search: Search,
    *,
    per_entry: int = 16,
    k: int = 3,
    seed: int = 0,
    exclude: Iterable[str] = (),
    max_chars: int = 600,
) -> list[GroundedExample]:
    """Up to `per_entry` phrasings of each entry (its question first) -> the entry's own sentences that answer that
    phrasing (`chatbot.extract.extract_answer`, within `max_chars`), sometimes with a lead-in. Phrasings in
    `exclude` (compared lower-cased) are skipped, so an evaluation set's questions never become training prompts."""
    rng = random.Random(seed)
    banned = {q.strip().lower() for q in exclude}
    out = []
    for entry in entries:
        phrasings = [p for p in dict.fromkeys(entry.phrasings) if p.strip() and p.strip().lower() not in banned]
        for i, phrasing in enumerate(phrasings[:per_entry]):
            sources = _sources_with(search(phrasing), entry, k)
            reply = _with_lead_in(extract_answer(phrasing, _hits([entry]), max_chars=max_chars).text, rng)
            out.append(GroundedExample(f"faq:{entry.id}:{i}", (Turn("user", phrasing),), sources, reply, "faq"))
    return out


def out_of_scope_examples(
    questions: Sequence[str], search: Search, *, k: int = 3, notice: str = HANDOFF_REPLY
) -> list[GroundedExample]:
    """Questions none of the FAQ answers, with the sources retrieved for them (which do not answer) -> the engine's
    handoff notice ("I'm passing your question to a colleague ...")."""
    out = []
    for i, question in enumerate(questions):
        sources = tuple(h.entry for h in search(question)[:k])
        out.append(GroundedExample(f"oos:{i}", (Turn("user", question),), sources, notice, "out_of_scope"))
    return out


def doc2dial_sections(documents: str | Path, domains: Iterable[str], max_chars: int = 1200) -> list[FaqEntry]:
    """The sections of doc2dial documents in `domains` as FAQ entries: question = the document title and the
    section heading, answer = the section's text (cut at a sentence end within `max_chars`). Ids are
    `DOC_ID@OFFSET`, OFFSET being where the section starts in the document's text."""
    wanted = set(domains)
    out = []
    with open(documents, encoding="utf-8") as handle:
        for line in handle:
            doc = json.loads(line)
            if doc["domain"] not in wanted:
                continue
            for offset, title, body in _split_sections(doc["doc_text"]):
                answer = _clip(body, max_chars)
                if len(answer) < 40:
                    continue
                topic = doc["doc_id"].split("|")[0].split("#")[0].strip()
                question = f"{topic}: {title}" if title and not title.startswith(topic) else topic
                out.append(FaqEntry(f"{doc['doc_id']}@{offset}", question, answer, language="en", category="doc2dial"))
    return out


def _split_sections(text: str) -> list[tuple[int, str, str]]:
    """`(offset, heading, body)` for each blank-line-separated section of a doc2dial document."""
    out = []
    for match in re.finditer(r"(?:^|\n\n)([^\n]*)((?:\n(?!\n)[^\n]*)*)", text):
        head, body = match.group(1).strip(), match.group(2).strip()
        if not body:
            head, body = "", head
        if body:
            out.append((match.start(), head, " ".join(body.split())))
    return out


def _clip(text: str, max_chars: int) -> str:
    if len(text) <= max_chars:
        return text
    cut = text[:max_chars]
    end = max(cut.rfind(". "), cut.rfind("? "), cut.rfind("! "))
    return cut[: end + 1] if end > max_chars // 3 else cut.rsplit(" ", 1)[0]


def _window(body: str, span: str, max_chars: int) -> str:
    """The sentences of `body` around `span` (which it must contain), within `max_chars`."""
    where = body.find(span)
    if where < 0:
        return ""
    start = max(0, where - max_chars // 3)
    start = body.rfind(". ", 0, start) + 2 if start else 0
    return _clip(body[start:], max_chars)


def doc2dial_examples(
    turns: str | Path,
    documents: str | Path,
    search: Search,
    *,
    domains: Iterable[str] = ("ssa", "va"),
    k: int = 3,
    max_chars: int = 900,
    min_coverage: float = 0.75,
    questions: bool = False,
) -> tuple[list[GroundedExample], dict[str, int]]:
    """doc2dial agent replies grounded in a document section: `(examples, counts)`.

    Source [1] is the window of the grounding section around the annotated span; sources [2..k] are the best
    retrieved sections of other documents. A reply is kept when it is faithful (`is_faithful`) to the span, the
    section window and the conversation; clarifying questions (replies ending in `?`) are dropped unless
    `questions`. `counts` says how many rows were kept and why the others were dropped.
    """
    wanted = set(domains)
    bodies: dict[str, list[tuple[int, str, str]]] = {}
    with open(documents, encoding="utf-8") as handle:
        for line in handle:
            doc = json.loads(line)
            if doc["domain"] in wanted:
                bodies[doc["doc_id"]] = _split_sections(doc["doc_text"])
    counts = {"rows": 0, "kept": 0, "no_reply": 0, "question": 0, "unfaithful": 0, "no_span": 0}
    out = []
    with open(turns, encoding="utf-8") as handle:
        for line in handle:
            row = json.loads(line)
            if row["domain"] not in wanted:
                continue
            counts["rows"] += 1
            reply = " ".join((row.get("agent_reply") or "").split())
            if not reply:
                counts["no_reply"] += 1
                continue
            if reply.endswith("?") and not questions:
                counts["question"] += 1
                continue
            span = " ".join(row["grounding"]["text"].split())
            section = _section_at(bodies.get(row["doc_id"], []), row["grounding"].get("answer_start", 0))
            window = _window(section[2], span, max_chars) if section else ""
            if not window:
                counts["no_span"] += 1
                continue
            history = merge_turns(row["history"])
            customer = [t.content for t in history]
            if not is_faithful(reply, [span, *customer], min_coverage) or unsupported_terms(reply, [window, *customer]):
                counts["unfaithful"] += 1
                continue
            topic = row["doc_id"].split("|")[0].split("#")[0].strip()
            own = FaqEntry(f"{row['doc_id']}@{section[0]}", f"{topic}: {section[1]}" if section[1] else topic, window)
            others = [h.entry for h in search(history[-1].content) if not h.entry.id.startswith(row["doc_id"] + "@")]
            sources = (own, *others[: k - 1])
            out.append(GroundedExample(f"doc2dial:{row['id']}", tuple(history), sources, reply, "doc2dial"))
            counts["kept"] += 1
    return out, counts


def _section_at(sections: Sequence[tuple[int, str, str]], position: int) -> tuple[int, str, str] | None:
    before = [s for s in sections if s[0] <= position]
    return before[-1] if before else None


def merge_turns(history: Sequence[dict[str, Any]], end_with_user: bool = True) -> list[Turn]:
    """doc2dial history (`role` user/agent, `utterance`) as turns, consecutive turns of one speaker merged; with
    `end_with_user`, trailing agent turns dropped."""
    turns: list[Turn] = []
    for item in history:
        role = "user" if item["role"] == "user" else "assistant"
        text = " ".join(item["utterance"].split())
        if not text:
            continue
        if turns and turns[-1].role == role:
            turns[-1] = Turn(role, f"{turns[-1].content} {text}")
        else:
            turns.append(Turn(role, text))
    while end_with_user and turns and turns[-1].role != "user":
        turns.pop()
    return turns


def review_examples(store: Any, lookup: Callable[[str], FaqEntry | None]) -> list[GroundedExample]:
    """The store's reviewed replies (`Store.reviewed_examples`: approved and edited drafts, agents' replies to
    handed-off chats) with the FAQ entries the sent message rests on (`lookup(faq_id)`, e.g. `kb.entry`; ids it
    no longer knows are left out)."""
    from training.reviews import reviewed_conversations

    out = []
    for row in reviewed_conversations(store=store):
        *context, last = row["messages"]
        message_id = int(row["id"].rsplit("-", 1)[1])
        found = (lookup(faq_id) for faq_id in store.message(message_id).faq_ids)
        history = tuple(Turn(m["role"], m["content"]) for m in context)
        if not history or history[-1].role != "user":
            continue
        sources = tuple(e for e in found if e is not None)
        out.append(GroundedExample(f"review:{row['id']}", history, sources, last["content"], f"review:{row['source']}"))
    return out


def sourced_review_examples(store: Any, entries: Sequence[FaqEntry], config: Any, k: int = 3
                            ) -> tuple[list[GroundedExample], dict[str, int]]:  # fmt: skip
    """The store's reviewed replies, each against the FAQ entry it is drawn from: `(examples, counts)`.

    The entry is found from the texts (`chatbot.phrasings.place` with `config`, a `LearningConfig`), not taken from
    the draft, whose sources an agent often did not use; it is source [1], the draft's other sources follow (up to
    `k`). A reply no entry clearly supports, or that adds to that entry what it does not say (`is_faithful`), is
    left out: the grounded objective learns to restate sources. `counts`: `replies`, `kept`, `no_source`,
    `unfaithful`."""
    from chatbot.phrasings import place
    from training.reviews import reviewed_conversations

    by_id = {e.id: e for e in entries}
    counts = {"replies": 0, "kept": 0, "no_source": 0, "unfaithful": 0}
    out = []
    for row in reviewed_conversations(store=store):
        *context, last = row["messages"]
        history = tuple(Turn(m["role"], m["content"]) for m in context)
        if not history or history[-1].role != "user":
            continue
        counts["replies"] += 1
        customer = [t.content for t in history if t.role == "user"]
        where = place(last["content"], entries, config, customer)
        if where.faq_id is None:
            counts["no_source"] += 1
            continue
        source = by_id[where.faq_id]
        if not is_faithful(last["content"], [source.answer, source.question, *customer]):
            counts["unfaithful"] += 1
            continue
        drafted = store.message(int(row["id"].rsplit("-", 1)[1])).faq_ids
        others = [by_id[i] for i in drafted if i in by_id and i != source.id]
        out.append(GroundedExample(f"review:{row['id']}", history, (source, *others[: k - 1]), last["content"],
                                   f"review:{row['source']}"))  # fmt: skip
        counts["kept"] += 1
    return out, counts


# -- files -----------------------------------------------------------------------------------------------------------
def write_grounded(examples: Iterable[GroundedExample], path: str | Path) -> int:
    """Write examples as JSONL (`GroundedExample.to_json`); returns how many."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    n = 0
    with open(path, "w", encoding="utf-8") as handle:
        for ex in examples:
            handle.write(json.dumps(ex.to_json(), ensure_ascii=False) + "\n")
            n += 1
    return n


def load_grounded(path: str | Path) -> list[GroundedExample]:
    """Read a `write_grounded` file; a bad line raises `ValueError` with its line number."""
    out = []
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                *context, last = row["messages"]
                if last["role"] != "assistant" or not context or context[-1]["role"] != "user":
                    raise ValueError("messages must end with a user turn and then the assistant reply")
                sources = tuple(
                    FaqEntry(s["id"], s["question"], s["answer"], tuple(s.get("alt_questions", ())), s.get("language"))
                    for s in row.get("sources", [])
                )
                history = tuple(Turn(m["role"], m["content"]) for m in context)
                out.append(
                    GroundedExample(
                        row["id"], history, sources, last["content"], row.get("kind", ""), row.get("language", "en")
                    )
                )
            except (KeyError, TypeError, ValueError) as exc:
                raise ValueError(
                    f"{path}:{number}: not a grounded example ({exc}); write the file with "
                    "training.grounded.write_grounded"
                ) from exc
    return out


# -- the training set from ../shared/data ----------------------------------------------------------------------------
_PROMISE = re.compile(r"\b(I'll|I will|we will|we'll|provide (me|us)|share (the|your))\b", re.IGNORECASE)
_SIGN_OFF = re.compile(r"(further (questions|assistance)|don't hesitate|do not hesitate|reach out|feel free)", re.I)


def _bitext_answer(response: str) -> str:
    """A Bitext response as an FAQ answer: placeholders (`{{Order Details}}`) as plain names, the sign-off
    ("If you have any further questions ...") and what follows it cut."""
    text = " ".join(re.sub(r"\{\{\s*([^}]+?)\s*\}\}", r"\1", response).split())
    kept = []
    for sentence in sentences(text):
        if _SIGN_OFF.search(sentence):
            break
        kept.append(sentence)
    return " ".join(kept)


def bitext_faq(path: str | Path, max_phrasings: int = 40) -> list[FaqEntry]:
    """Bitext customer-support pairs grouped by intent as an FAQ: one entry per intent, its phrasings the intent's
    requests, its answer the shortest response (of at least 150 characters once `_bitext_answer` cleaned it) to a
    request that names no order or account, preferring step-by-step ones and leaving out responses that promise
    an action or ask for details. Intents with no such response are left out."""
    import csv

    by_intent: dict[str, list[dict[str, str]]] = {}
    with open(path, encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle):
            by_intent.setdefault(row["intent"], []).append(row)
    out = []
    for intent, rows in sorted(by_intent.items()):
        plain = [r for r in rows if not r["entity_value"] and not re.search(r"\d", r["instruction"])] or rows
        answers = [_bitext_answer(r["response"]) for r in plain]
        answers = [a for a in answers if len(a) >= 150 and not _PROMISE.search(a)]
        if not answers:
            continue
        answer = min(answers, key=lambda a: (not re.search(r"\b1\. .+\b2\. ", a), len(a)))
        phrasings = list(dict.fromkeys(" ".join(r["instruction"].split()) for r in rows))
        question = min((p for p in phrasings if not re.search(r"\d", p)), key=len, default=phrasings[0])
        alts = tuple(p for p in phrasings if p != question)[:max_phrasings]
        out.append(FaqEntry(f"bitext:{intent}", question, answer, alts, "en", rows[0]["category"]))
    return out


def clinc_out_of_scope(path: str | Path) -> list[str]:
    """CLINC150's out-of-scope queries (train and validation)."""
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    return [text for split in ("oos_train", "oos_val") for text, _ in data.get(split, [])]


def grounded_examples(
    data: str | Path,
    work: str | Path,
    kb_config: Any,
    *,
    exclude: Iterable[str] = (),
    per_entry: int = 16,
    n_out_of_scope: int = 120,
    store: Any = None,
    lookup: Callable[[str], FaqEntry | None] | None = None,
    seed: int = 0,
    embedder: Any = None,
) -> tuple[list[GroundedExample], dict[str, Any]]:
    """The grounded training set from `data` (the shared data folder): `(examples, counts)`.

    Bitext intents as an FAQ (`faq_examples`, phrasings in `exclude` skipped), doc2dial `ssa` and `va` dialogues
    over their sections (`doc2dial_examples`; `studentaid` stays out for evaluation), CLINC150 out-of-scope
    questions against both (`out_of_scope_examples`), and with `store` the reviewed replies (`review_examples`,
    sources through `lookup`). Knowledge bases are built under `work` with `kb_config`.
    """
    data, work = Path(data), Path(work)
    faq = bitext_faq(data / "bitext_customer_support" / "Bitext_Sample_Customer_Support_Training_Dataset.csv")
    sections = doc2dial_sections(data / "doc2dial" / "documents_validation_no_dmv.jsonl", ("ssa", "va"))
    search_faq = entry_searcher(faq, work / "kb-bitext", kb_config, embedder=embedder)
    search_docs = entry_searcher(sections, work / "kb-doc2dial", kb_config, embedder=embedder)
    faq_set = faq_examples(faq, search_faq, per_entry=per_entry, seed=seed, exclude=exclude)
    docs_set, doc_counts = doc2dial_examples(
        data / "doc2dial" / "turns_validation_no_dmv.jsonl",
        data / "doc2dial" / "documents_validation_no_dmv.jsonl",
        search_docs,
    )
    questions = clinc_out_of_scope(data / "clinc150" / "data_full_trainval.json")
    random.Random(seed).shuffle(questions)
    questions = questions[:n_out_of_scope]
    half = len(questions) // 2
    oos = out_of_scope_examples(questions[:half], search_faq) + out_of_scope_examples(questions[half:], search_docs)
    oos = [GroundedExample(f"oos:{i}", e.history, e.sources, e.reply, e.kind) for i, e in enumerate(oos)]
    reviews = review_examples(store, lookup or (lambda _id: None)) if store is not None else []
    examples = faq_set + docs_set + oos + reviews
    counts = {
        "faq": len(faq_set),
        "faq_entries": len(faq),
        "doc2dial": doc_counts,
        "doc2dial_sections": len(sections),
        "out_of_scope": len(oos),
        "reviews": len(reviews),
        "total": len(examples),
    }
    return examples, counts


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m training.grounded --data ../shared/data --out FILE`: write the grounded training set, leaving out
    every phrasing of the demo FAQ and its queries (they are the held-out evaluation)."""
    import argparse
    import tempfile

    from knowledge_base.config import KBConfig
    from knowledge_base.kb import demo_faq_path
    from knowledge_base.loaders import load_faq

    parser = argparse.ArgumentParser(prog="python -m training.grounded", description=main.__doc__)
    parser.add_argument("--data", required=True, help="the shared data folder (bitext, doc2dial, clinc150)")
    parser.add_argument("--out", required=True, help="JSONL file to write")
    parser.add_argument("--embedder", default="embedded", help="retrieval embedder for the sources [embedded]")
    parser.add_argument("--per-entry", type=int, default=16, help="phrasings per FAQ entry [16]")
    parser.add_argument("--out-of-scope", type=int, default=120, help="out-of-scope examples [120]")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    demo = demo_faq_path()
    exclude = [p for e in load_faq(demo) for p in e.phrasings]
    queries = demo.with_name("store_queries.jsonl")
    if queries.exists():
        exclude += [json.loads(line)["query"] for line in queries.read_text(encoding="utf-8").splitlines() if line]
    with tempfile.TemporaryDirectory() as work:
        examples, counts = grounded_examples(
            args.data,
            work,
            KBConfig(embedder=args.embedder),
            exclude=exclude,
            per_entry=args.per_entry,
            n_out_of_scope=args.out_of_scope,
            seed=args.seed,
        )
    write_grounded(examples, args.out)
    print(json.dumps(counts))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
