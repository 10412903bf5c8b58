"""The doc2dial evaluation sets of `knowledge_base.benchdata`, on a tiny doc2dial-shaped folder."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from knowledge_base import benchdata
from knowledge_base.benchdata import (
    doc2dial_articles,
    doc2dial_questions,
    doc2dial_sections,
    doc2dial_text,
    write_eval_set,
)
from knowledge_base.loaders import load_faq, load_queries

DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data"

LOANS = {
    "1": "\n\nRepaying Your Loans \n",
    "2": "Your loan servicer sends a bill each month , ",
    "3": "and you pay it online. ",
    "4": "You can choose a plan : ",
    "5": "Standard plan ",
    "6": "Graduated plan ",
    "7": "Ask your servicer which plan fits. ",
    "8": "\n\nMissing a Payment \n",
    "9": "If you miss a payment , ",
    "10": "contact your servicer at once. ",
    "11": "\n\nContact Us \n",
}
GRANTS = {"1": "\n\nRepaying Your Loans \n", "2": "Grants do not have to be repaid. "}
CARDS = {"1": "\n\nReplacing a Card \n", "2": "You can replace a lost card for free. "}
DOCS = [
    ("Student Loans | Federal Student Aid#1_0", "studentaid", LOANS),
    ("Grants | Federal Student Aid#1_0", "studentaid", GRANTS),
    ("Replace Your Card | Social Security Administration#1_0", "ssa", CARDS),
]
TURNS = [  # (dialogue, turn, doc, domain, first message, grounding span ids)
    ("d1", 1, 0, "studentaid", "how do I pay my loan bill?", ["2", "3"]),
    ("d1", 3, 0, "studentaid", "and if I can't pay?", ["9"]),
    ("d2", 1, 0, "studentaid", "I missed a payment, what now?", ["9", "10"]),
    ("d3", 1, 1, "studentaid", "do I repay a grant?", ["2"]),
    ("d4", 1, 2, "ssa", "I lost my card", ["2"]),
    ("d5", 1, 2, "ssa", "how much is a new card?", ["2"]),
]


@pytest.fixture
def d2d(tmp_path) -> Path:
    folder = tmp_path / "doc2dial"
    folder.mkdir()
    with open(folder / "documents_validation_no_dmv.jsonl", "w", encoding="utf-8") as f:
        for doc_id, domain, spans in DOCS:
            text = "".join(spans[k] for k in sorted(spans, key=int))
            f.write(json.dumps({"doc_id": doc_id, "domain": domain, "doc_text": text, "spans": spans}) + "\n")
    with open(folder / "turns_validation_no_dmv.jsonl", "w", encoding="utf-8") as f:
        for dial, turn, doc, domain, message, span_ids in TURNS:
            doc_id, _, spans = DOCS[doc]
            row = {
                "id": f"{dial}_{turn}", "dial_id": dial, "turn_id": turn, "domain": domain, "doc_id": doc_id,
                "history": [{"turn_id": turn, "role": "user", "utterance": f" {message} "}],
                "grounding": {"span_ids": span_ids, "text": "".join(spans[k] for k in span_ids), "answer_start": 0},
                "agent_reply": "ok",
            }  # fmt: skip
            f.write(json.dumps(row) + "\n")
    return tmp_path


def test_questions_are_first_messages_with_their_grounding(d2d):
    questions = doc2dial_questions(d2d, ("studentaid",))
    assert [q.query for q in questions] == ["how do I pay my loan bill?", "I missed a payment, what now?",
                                            "do I repay a grant?"]  # fmt: skip
    assert questions[0].grounding == "Your loan servicer sends a bill each month , and you pay it online."
    assert questions[0].span_ids == ("2", "3")


def test_text_breaks_lines_after_list_items_and_intros():
    spans = [LOANS[k] for k in sorted(LOANS, key=int)]
    assert doc2dial_text(spans) == (
        "Repaying Your Loans\n"
        "Your loan servicer sends a bill each month , and you pay it online. You can choose a plan :\n"
        "Standard plan\nGraduated plan\nAsk your servicer which plan fits.\n\n"
        "Missing a Payment\nIf you miss a payment , contact your servicer at once.\n\nContact Us"
    )


def test_articles_one_entry_per_document_with_out_of_scope_rows(d2d):
    articles = doc2dial_articles(d2d, ("studentaid",))
    assert [(e.id, e.question) for e in articles.entries] == [
        ("Student Loans | Federal Student Aid#1_0", "Student Loans"),  # the site's name is dropped
        ("Grants | Federal Student Aid#1_0", "Grants"),
    ]
    assert articles.entries[0].answer.startswith("Repaying Your Loans\nYour loan servicer sends a bill")
    in_scope = [(q.query, q.faq_id) for q in articles.queries if q.faq_id]
    assert in_scope == [
        ("how do I pay my loan bill?", "Student Loans | Federal Student Aid#1_0"),
        ("I missed a payment, what now?", "Student Loans | Federal Student Aid#1_0"),
        ("do I repay a grant?", "Grants | Federal Student Aid#1_0"),
    ]
    # the other domains' first messages, at most as many as in scope
    assert sorted(q.query for q in articles.queries if q.faq_id is None) == [
        "I lost my card",
        "how much is a new card?",
    ]
    assert articles.grounding[:3] == [
        "Your loan servicer sends a bill each month , and you pay it online.",
        "If you miss a payment , contact your servicer at once.",
        "Grants do not have to be repaid.",
    ]
    assert articles.grounding[3:] == [None, None]
    assert len(doc2dial_articles(d2d, ("studentaid",), max_oos=1).queries) == 4


def test_articles_are_cut_at_a_span_to_the_answer_limit(d2d, monkeypatch):
    monkeypatch.setattr(benchdata, "MAX_ANSWER", 90)
    articles = doc2dial_articles(d2d, ("studentaid",))
    loans = articles.entries[0].answer
    assert loans == "Repaying Your Loans\nYour loan servicer sends a bill each month , and you pay it online."
    # the question grounded past the cut is dropped
    assert [q.query for q in articles.queries if q.faq_id] == ["how do I pay my loan bill?", "do I repay a grant?"]


def test_sections_one_entry_per_titled_section(d2d):
    sections = doc2dial_sections(d2d, ("studentaid",))
    assert [(e.id, e.question) for e in sections.entries] == [
        ("Student Loans | Federal Student Aid#1_0~1", "Repaying Your Loans (Student Loans)"),
        ("Student Loans | Federal Student Aid#1_0~8", "Missing a Payment"),
        ("Grants | Federal Student Aid#1_0~1", "Repaying Your Loans (Grants)"),  # same heading: the page names it
    ]  # "Contact Us" has no text under it
    assert sections.entries[0].answer == (
        "Your loan servicer sends a bill each month , and you pay it online. You can choose a plan :\n"
        "Standard plan\nGraduated plan\nAsk your servicer which plan fits."
    )
    assert [(q.query, q.faq_id) for q in sections.queries if q.faq_id] == [
        ("how do I pay my loan bill?", "Student Loans | Federal Student Aid#1_0~1"),
        ("I missed a payment, what now?", "Student Loans | Federal Student Aid#1_0~8"),
        ("do I repay a grant?", "Grants | Federal Student Aid#1_0~1"),
    ]
    assert sum(q.faq_id is None for q in sections.queries) == 2


def test_written_sets_load_with_the_kb_loaders(d2d, tmp_path):
    sections = doc2dial_sections(d2d, ("studentaid",))
    faq, queries = write_eval_set(sections, tmp_path / "out")
    assert [e.id for e in load_faq(faq)] == [e.id for e in sections.entries]
    assert [(q.query, q.faq_id) for q in load_queries(queries)] == [(q.query, q.faq_id) for q in sections.queries]
    rows = [json.loads(line) for line in queries.read_text(encoding="utf-8").splitlines()]
    assert rows[0]["grounding"] == sections.grounding[0]
    assert "grounding" not in rows[-1] and rows[-1]["faq_id"] is None


def test_missing_folder_says_what_to_pass(tmp_path):
    with pytest.raises(FileNotFoundError, match="shared data folder"):
        doc2dial_articles(tmp_path)


@pytest.mark.skipif(not (DATA / "doc2dial").exists(), reason=f"the public datasets are not at {DATA}")
def test_held_out_studentaid_sets_on_the_real_data():
    articles = doc2dial_articles(DATA)
    sections = doc2dial_sections(DATA)
    assert len(articles.entries) == 50 and len(sections.entries) > 400
    for evalset in (articles, sections):
        in_scope = [q for q in evalset.queries if q.faq_id]
        assert len(in_scope) > 120
        assert sum(q.faq_id is None for q in evalset.queries) == len(in_scope)
        assert {q.faq_id for q in in_scope} <= {e.id for e in evalset.entries}
        assert all(len(e.answer) <= 10_000 for e in evalset.entries)
