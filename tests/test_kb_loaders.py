"""FAQ and query loaders: good files of every format, every kind of bad file, nothing changed after a bad one."""

from __future__ import annotations

import json

import pytest

from knowledge_base.loaders import FaqValidationError, load_faq, load_queries, validate_faq


def _jsonl(*rows) -> str:
    return "\n".join(r if isinstance(r, str) else json.dumps(r, ensure_ascii=False) for r in rows) + "\n"


GOOD = [
    (
        "basic.jsonl",
        _jsonl(
            {"id": "a", "question": "Q1?", "answer": "A1"},
            {
                "id": "b",
                "question": "Q2?",
                "answer": "A2",
                "alt_questions": ["q2 other", " "],
                "language": "EN",
                "category": "x",
            },
        ),
        [("a", "Q1?", (), None), ("b", "Q2?", ("q2 other",), "en")],
    ),
    ("blank_lines.jsonl", "\n" + _jsonl({"id": "a", "question": "Q", "answer": "A"}) + "\n\n", [("a", "Q", (), None)]),
    (
        "basic.csv",
        'id,question,answer,alt_questions,language\na,Q1?,A1,"one\ntwo",\nb,"Q, 2",A2,,de\n',
        [("a", "Q1?", ("one", "two"), None), ("b", "Q, 2", (), "de")],
    ),
    ("bom.csv", "\ufeffid,question,answer\na,Q,A\n", [("a", "Q", (), None)]),
    (
        "faq.md",
        "# Store FAQ\n\n## How do I pay?\nid: pay\nalt: payment options\ncategory: PAYMENT\n\nBy card.\n\n"
        "## Where is my parcel?\nTrack it in My Orders.\n",
        [("pay", "How do I pay?", ("payment options",), None), ("where-is-my-parcel", "Where is my parcel?", (), None)],
    ),
]


@pytest.mark.parametrize(("name", "text", "expected"), GOOD, ids=[g[0] for g in GOOD])
def test_good_files_load(tmp_path, name, text, expected):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    entries = load_faq(path)
    assert [(e.id, e.question, e.alt_questions, e.language) for e in entries] == expected
    assert all(e.answer for e in entries)
    assert validate_faq(path) == []


BAD = [
    ("missing_field.jsonl", _jsonl({"id": "a", "question": "Q"}), [(1, "missing or empty 'answer'")]),
    ("empty_field.jsonl", _jsonl({"id": "a", "question": "  ", "answer": "A"}), [(1, "missing or empty 'question'")]),
    (
        "duplicate.jsonl",
        _jsonl({"id": "a", "question": "Q", "answer": "A"}, {"id": "a", "question": "Q2", "answer": "B"}),
        [(2, "duplicate id 'a' (first on line 1)")],
    ),
    (
        "bad_json.jsonl",
        _jsonl({"id": "a", "question": "Q", "answer": "A"}, '{"id": "b", "question": '),
        [(2, "not valid JSON")],
    ),
    ("not_object.jsonl", _jsonl('["a", "b"]'), [(1, "must be a JSON object")]),
    (
        "unknown_key.jsonl",
        _jsonl({"id": "a", "question": "Q", "answer": "A", "tags": "x"}),
        [(1, "unknown field(s) tags")],
    ),
    (
        "oversized.jsonl",
        _jsonl({"id": "a", "question": "Q" * 1001, "answer": "A"}),
        [(1, "'question' is 1001 characters, the limit is 1000")],
    ),
    (
        "bad_alts.jsonl",
        _jsonl({"id": "a", "question": "Q", "answer": "A", "alt_questions": "one"}),
        [(1, "'alt_questions' must be a list of strings")],
    ),
    (
        "bad_language.jsonl",
        _jsonl({"id": "a", "question": "Q", "answer": "A", "language": "english"}),
        [(1, "two-letter ISO 639-1")],
    ),
    ("unknown_column.csv", "id,question,answer,tags\na,Q,A,x\n", [(1, "unknown column(s) tags")]),
    ("missing_column.csv", "id,question\na,Q\n", [(1, "missing column(s) answer")]),
    ("short_row.csv", "id,question,answer\na,Q\n", [(2, "2 cells, the header has 3")]),
    ("empty.jsonl", "", [(0, "no FAQ entries")]),
    ("faq.txt", "id,question,answer\n", [(0, "unsupported file type .txt")]),
]


@pytest.mark.parametrize(("name", "text", "expected"), BAD, ids=[b[0] for b in BAD])
def test_bad_files_report_every_problem_with_its_line(tmp_path, name, text, expected):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    problems = validate_faq(path)
    assert len(problems) == len(expected), problems
    for line, msg in expected:
        assert any(p.line == line and msg in p.message for p in problems), problems
    with pytest.raises(FaqValidationError) as exc:
        load_faq(path)
    assert str(path) in str(exc.value) and "nothing was changed" in str(exc.value)
    assert isinstance(exc.value, ValueError)


def test_all_problems_reported_at_once(tmp_path):
    path = tmp_path / "many.jsonl"
    path.write_text(
        _jsonl(
            {"id": "a", "question": "Q", "answer": ""},
            {"id": "b", "question": "Q", "answer": "A"},
            {"id": "b", "answer": "A", "extra": 1},
        ),
        encoding="utf-8",
    )
    lines = sorted({p.line for p in validate_faq(path)})
    assert lines == [1, 3]
    messages = " | ".join(p.message for p in validate_faq(path))
    for expected in ("'answer'", "duplicate id 'b'", "'question'", "extra"):
        assert expected in messages


def test_bad_encoding_names_the_line(tmp_path):
    path = tmp_path / "latin1.csv"
    path.write_bytes("id,question,answer\na,Q,A\nb,caf\xe9?,A\n".encode("latin-1"))
    problems = validate_faq(path)
    assert len(problems) == 1 and problems[0].line == 3 and "UTF-8" in problems[0].message


def test_missing_file(tmp_path):
    problems = validate_faq(tmp_path / "nope.jsonl")
    assert problems and "not found" in problems[0].message


def test_query_files(tmp_path):
    jl = tmp_path / "q.jsonl"
    jl.write_text(
        _jsonl(
            {"query": "refund?", "faq_id": "r"}, {"query": "weather", "faq_id": None}, {"query": "hi", "faq_id": ""}
        ),
        encoding="utf-8",
    )
    assert [(q.query, q.faq_id) for q in load_queries(jl)] == [("refund?", "r"), ("weather", None), ("hi", None)]
    csv_path = tmp_path / "q.csv"
    csv_path.write_text("query,faq_id\nrefund?,r\nweather,\n", encoding="utf-8")
    assert [(q.query, q.faq_id) for q in load_queries(csv_path)] == [("refund?", "r"), ("weather", None)]
    bad = tmp_path / "bad.jsonl"
    bad.write_text(_jsonl({"faq_id": "r"}), encoding="utf-8")
    with pytest.raises(FaqValidationError, match="line 1|:1:"):
        load_queries(bad)
