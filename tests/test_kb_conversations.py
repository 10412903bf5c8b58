"""Multi-turn evaluation files: the reader (`load_conversations`) with every kind of bad line, the shipped demo
conversations, and the doc2dial builder on a tiny doc2dial-shaped folder."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from knowledge_base import benchdata
from knowledge_base.kb import demo_faq_path
from knowledge_base.loaders import ConversationRow, FaqValidationError, load_conversations, load_faq

DEMO_CONVERSATIONS = demo_faq_path().parent / "store_conversations.jsonl"


def _write(tmp_path: Path, *rows, name: str = "c.jsonl") -> Path:
    path = tmp_path / name
    path.write_text("\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    return path


def test_good_file(tmp_path):
    path = _write(
        tmp_path,
        {"turns": ["I forgot my password", " how long is the link valid? "], "faq_id": "recover_password"},
        "",
        {"turns": ["hi", "can I pay with paypal"], "faq_id": ["a", "b"], "first_faq_id": None, "split": "test"},
        {"turns": ["do you sell gift cards?"], "faq_id": None, "first_faq_id": "x", "split": "tune", "id": "c3"},
        {"turns": ["weather?"], "faq_id": ""},
    )
    rows = load_conversations(path)
    assert rows == [
        ConversationRow(("I forgot my password", "how long is the link valid?"), ("recover_password",), (), None, 1),
        ConversationRow(("hi", "can I pay with paypal"), ("a", "b"), (), "test", 3),
        ConversationRow(("do you sell gift cards?",), (), ("x",), "tune", 4),
        ConversationRow(("weather?",), (), (), None, 5),
    ]


BAD = [
    ("not json", "{turns: [", "not valid JSON"),
    ("not an object", '["a", "b"]', "must be a JSON object"),
    ("no turns", {"faq_id": "a"}, "'turns' must be a non-empty list"),
    ("empty turns", {"turns": [], "faq_id": "a"}, "'turns' must be a non-empty list"),
    ("turns as text", {"turns": "hello", "faq_id": "a"}, "'turns' must be a non-empty list"),
    ("blank turn", {"turns": ["hi", "  "], "faq_id": "a"}, "every turn must be non-empty text"),
    ("number turn", {"turns": ["hi", 3], "faq_id": "a"}, "every turn must be non-empty text"),
    ("long turn", {"turns": ["x" * 1001], "faq_id": "a"}, "longer than 1000 characters"),
    ("too many turns", {"turns": ["x"] * 51, "faq_id": "a"}, "51 turns, the limit is 50"),
    ("no faq_id", {"turns": ["hi"]}, "missing 'faq_id'"),
    ("faq_id number", {"turns": ["hi"], "faq_id": 7}, "'faq_id' must be an id"),
    ("faq_id blank in list", {"turns": ["hi"], "faq_id": ["a", ""]}, "'faq_id' must be an id"),
    ("first_faq_id bad", {"turns": ["hi"], "faq_id": "a", "first_faq_id": {"x": 1}}, "'first_faq_id' must be an id"),
    ("bad split", {"turns": ["hi"], "faq_id": "a", "split": "train"}, "'split' must be 'tune' or 'test'"),
    ("unknown field", {"turns": ["hi"], "faq_id": "a", "answer": "x"}, "unknown field(s) answer"),
]


@pytest.mark.parametrize(("case", "line", "message"), BAD, ids=[b[0] for b in BAD])
def test_bad_line_is_reported_with_its_number(tmp_path, case, line, message):
    path = _write(tmp_path, {"turns": ["fine"], "faq_id": "a"}, line)
    with pytest.raises(FaqValidationError) as info:
        load_conversations(path)
    assert [p.line for p in info.value.problems] == [2]
    assert message in str(info.value)


def test_every_problem_of_a_file_is_reported_at_once(tmp_path):
    path = _write(tmp_path, {"turns": []}, {"turns": ["ok"], "faq_id": "a"}, "nope")
    with pytest.raises(FaqValidationError) as info:
        load_conversations(path)
    assert [p.line for p in info.value.problems] == [1, 1, 3]


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [("c.csv", "turns,faq_id\n", "conversations are .jsonl"), ("c.jsonl", "\n\n", "no conversations")],
)
def test_bad_file(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    with pytest.raises(FaqValidationError, match=message):
        load_conversations(path)


def test_missing_and_non_utf8_files(tmp_path):
    with pytest.raises(FaqValidationError, match="file not found"):
        load_conversations(tmp_path / "absent.jsonl")
    path = tmp_path / "latin1.jsonl"
    path.write_bytes(b'{"turns": ["caf\xe9"], "faq_id": "a"}\n')
    with pytest.raises(FaqValidationError, match="not valid UTF-8"):
        load_conversations(path)


def test_demo_conversations_are_valid_and_name_demo_entries():
    rows = load_conversations(DEMO_CONVERSATIONS)
    ids = {e.id for e in load_faq(demo_faq_path())}
    assert len(rows) >= 60
    assert all(set(r.faq_ids) <= ids and set(r.first_faq_ids) <= ids for r in rows)
    splits = [r.split for r in rows]
    assert set(splits) == {"tune", "test"} and abs(splits.count("tune") - splits.count("test")) <= 0.1 * len(rows)
    assert {len(r.turns) for r in rows} >= {2, 3}
    covered = {i for r in rows for i in (*r.faq_ids, *r.first_faq_ids)}
    assert len(covered) >= 0.8 * len(ids)
    for split in ("tune", "test"):  # both splits hold topic changes and out-of-scope follow-ups
        part = [r for r in rows if r.split == split]
        assert any(r.first_faq_ids and not set(r.first_faq_ids) & set(r.faq_ids) and r.faq_ids for r in part)
        assert any(not r.faq_ids for r in part)


def _doc2dial_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "doc2dial"
    folder.mkdir()
    docs = [
        {"doc_id": "Loans#1_0", "domain": "studentaid", "doc_text": "\nLoans\nPay back.",
         "spans": {"1": "\nLoans\n", "2": "Pay back."}},
        {"doc_id": "Pension#1_0", "domain": "va", "doc_text": "\nPension\nApply.",
         "spans": {"1": "\nPension\n", "2": "Apply."}},
    ]  # fmt: skip

    def row(dial, domain, doc, said):
        history = [{"turn_id": i + 1, "role": role, "utterance": text} for i, (role, text) in enumerate(said)]
        return {"id": f"{dial}_{len(said)}", "dial_id": dial, "turn_id": len(said), "domain": domain, "doc_id": doc,
                "history": history, "grounding": {"span_ids": ["2"], "text": "x", "answer_start": 0},
                "agent_reply": None}  # fmt: skip

    talk = [("user", "How do I repay my student loan?"), ("agent", "Do you have a federal loan?"), ("user", "Yes."),
            ("user", "When does the first payment come due?"), ("agent", "Six months after."),
            ("user", "What if I cannot pay it?")]  # fmt: skip
    rows = [
        row("d1", "studentaid", "Loans#1_0", talk[:1]),
        row("d1", "studentaid", "Loans#1_0", talk),  # the longest history of d1
        row("d2", "studentaid", "Loans#1_0", [("user", "loan question"), ("agent", "Sure?"), ("user", "ok thanks")]),
        row("d3", "va", "Pension#1_0", [("user", "Can I get a pension?"), ("user", "I served for ten years.")]),
    ]
    (folder / "documents_validation_no_dmv.jsonl").write_text("\n".join(json.dumps(d) for d in docs) + "\n")
    (folder / "turns_validation_no_dmv.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return tmp_path


def test_doc2dial_conversations(tmp_path):
    data = _doc2dial_folder(tmp_path)
    rows = benchdata.doc2dial_conversations(data, ("studentaid",))
    # d1: up to the next message of at least 4 words, with the short reply between; d2 has none and is left out
    assert rows == [
        ConversationRow(
            ("How do I repay my student loan?", "Yes.", "When does the first payment come due?"),
            ("Loans#1_0",),
            ("Loans#1_0",),
        )
    ]
    articles = {e.id for e in benchdata.doc2dial_articles(data, ("studentaid",)).entries}
    assert set(rows[0].faq_ids) <= articles  # the ids are doc2dial_articles' entry ids
    held_out = benchdata.doc2dial_conversations(data, ("va",))
    assert [r.turns for r in held_out] == [("Can I get a pension?", "I served for ten years.")]
    assert benchdata.doc2dial_conversations(data, ("studentaid",), max_turns=2) == []


def test_doc2dial_conversations_without_the_data_says_where_to_point(tmp_path):
    with pytest.raises(FileNotFoundError, match="shared data folder"):
        benchdata.doc2dial_conversations(tmp_path)


def test_written_conversations_read_back(tmp_path):
    rows = [
        ConversationRow(("a", "b"), ("x", "y"), ("x",), "test"),
        ConversationRow(("c",), ()),
    ]
    path = benchdata.write_conversations(rows, tmp_path / "out" / "conversations.jsonl")
    back = load_conversations(path)
    assert [(r.turns, r.faq_ids, r.first_faq_ids, r.split) for r in back] == [
        (r.turns, r.faq_ids, r.first_faq_ids, r.split) for r in rows
    ]
