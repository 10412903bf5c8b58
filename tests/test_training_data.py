"""Support-log loading, cleaning, bad rows, the seeded split, and the dataset converters on real records."""

from __future__ import annotations

import json

import pytest

from training.data import LogError, load_logs, split_conversations


def test_jsonl_aliases_redaction_and_cleaning(sample_logs):
    conversations, report = load_logs(sample_logs)
    assert [c.id for c in conversations] == ["c1", "c2", "c3", "c4"]
    first = conversations[0]
    assert [t.role for t in first.turns] == ["user", "assistant", "user", "assistant"]
    assert "jane@example.com" not in first.turns[0].content and "[EMAIL]" in first.turns[0].content
    assert first.n_replies == 2
    assert report.skipped == 0 and report.conversations == 4


def test_empty_and_duplicate_turns_dropped_duplicate_conversations_counted(tmp_path):
    conv = {"id": "a", "messages": [
        {"role": "user", "content": "Hello?"}, {"role": "user", "content": "Hello?"}, {"role": "user", "content": " "},
        {"role": "agent", "content": "Hi!"}, {"role": "agent", "content": "How can I help?"}]}  # fmt: skip
    path = tmp_path / "l.jsonl"
    path.write_text(json.dumps(conv) + "\n\n" + json.dumps({**conv, "id": "b"}) + "\n", encoding="utf-8")
    conversations, report = load_logs(path)
    assert len(conversations) == 1
    turns = conversations[0].turns
    assert [(t.role, t.content) for t in turns] == [("user", "Hello?"), ("assistant", "Hi!\nHow can I help?")]
    # both copies are cleaned (one duplicate and one empty turn each) before the second is dropped as a duplicate
    assert (report.duplicate_turns, report.empty_turns, report.duplicate_conversations) == (2, 2, 1)


BAD_ROWS = [
    ('{"id": "x", "messages": [', "malformed JSON"),
    ('{"id": "x", "messages": [{"role": "robot", "content": "hi"}]}', "unknown role 'robot'"),
    ('{"id": "x", "messages": [{"role": "user", "content": "anyone?"}]}', "no assistant turn"),
    ('{"id": "x", "messages": [{"role": "agent", "content": "Hi"}, {"role": "system", "content": "s"}]}',
     "no assistant turn follows a customer turn"),
    ('["not", "an", "object"]', "expected a JSON object"),
    ('{"id": "x", "messages": [{"role": "user", "content": 5}, {"role": "agent", "content": "ok"}]}',
     "content must be a string"),
]  # fmt: skip


@pytest.mark.parametrize(("row", "message"), BAD_ROWS, ids=[m for _, m in BAD_ROWS])
def test_bad_rows_lenient_and_strict(tmp_path, row, message):
    good = json.dumps({"id": "ok", "messages": [{"role": "user", "content": "q"}, {"role": "agent", "content": "a"}]})
    path = tmp_path / "l.jsonl"
    path.write_text(f"{good}\n{row}\n{good.replace('ok', 'ok2').replace('q', 'q2')}\n", encoding="utf-8")
    conversations, report = load_logs(path)
    assert [c.id for c in conversations] == ["ok", "ok2"]
    assert report.skipped == 1
    assert report.problems[0].line == 2 and message in report.problems[0].message
    assert f"{path}:2:" in report.summary()
    with pytest.raises(LogError) as exc:
        load_logs(path, strict=True)
    assert f"{path}:2: " in str(exc.value) and message in str(exc.value)


def test_csv_question_answer_pairs_with_bad_rows(tmp_path):
    path = tmp_path / "qa.csv"
    path.write_text('question,answer\nWhere is my order?,"It ships in\n2 days."\n,no question\nRefund?,Yes.\n',
                    encoding="utf-8")  # fmt: skip
    conversations, report = load_logs(path)
    assert [(c.turns[0].content, c.turns[1].content) for c in conversations] == [
        ("Where is my order?", "It ships in\n2 days."), ("Refund?", "Yes.")]  # fmt: skip
    assert report.problems[0].line == 4 and "empty question" in report.problems[0].message
    with pytest.raises(LogError, match="qa.csv:4"):
        load_logs(path, strict=True)


def test_unusable_files_say_how_to_fix(tmp_path):
    with pytest.raises(LogError, match="does not exist"):
        load_logs(tmp_path / "missing.jsonl")
    (tmp_path / "l.txt").write_text("x", encoding="utf-8")
    with pytest.raises(LogError, match="use .jsonl"):
        load_logs(tmp_path / "l.txt")
    (tmp_path / "q.csv").write_text("a,b\n1,2\n", encoding="utf-8")
    with pytest.raises(LogError, match="question column"):
        load_logs(tmp_path / "q.csv")
    (tmp_path / "bad.jsonl").write_bytes(b'{"messages": "\xff"}\n')
    with pytest.raises(LogError, match="not UTF-8"):
        load_logs(tmp_path / "bad.jsonl")


def test_split_is_seeded_and_by_conversation(sample_logs):
    conversations, _ = load_logs(sample_logs)
    train, val = split_conversations(conversations, 0.25, seed=3)
    again = split_conversations(list(reversed(conversations)), 0.25, seed=3)
    assert {c.id for c in val} == {c.id for c in again[1]}
    assert len(val) == 1 and not {c.id for c in train} & {c.id for c in val}
    assert len(train) + len(val) == 4


def test_converters_on_real_records(real_records, tmp_path):
    from training.convert import convert_abcd, convert_bitext, convert_sgd, convert_taskmaster4
    from training.data import parse_conversation

    tm4 = next(convert_taskmaster4([real_records / "taskmaster4_coffee" / "data_00.json.gz"]))
    sgd = next(convert_sgd([real_records / "sgd" / "train" / f"dialogues_{n:03d}.json.gz" for n in range(1, 60)]))
    csv_path = real_records / "bitext_customer_support" / "Bitext_Sample_Customer_Support_Training_Dataset.csv"
    bitext = next(convert_bitext(csv_path))
    abcd = next(convert_abcd(real_records / "abcd_sample" / "abcd_sample.json"))
    assert tm4["id"].startswith("tm4-dlg-") and tm4["messages"][0]["role"] == "user"
    assert sgd["id"].startswith("sgd-") and {m["role"] for m in sgd["messages"]} == {"user", "assistant"}
    assert len(bitext["messages"]) == 2 and bitext["messages"][1]["content"]
    assert all("@email.com" not in m["content"] for m in abcd["messages"])  # redacted
    assert "[EMAIL]" in " ".join(m["content"] for m in abcd["messages"])
    for conv in (tm4, sgd, bitext, abcd):
        assert parse_conversation(conv, "x").n_replies >= 1


def test_sgd_keeps_only_the_chosen_services(real_records):
    from training.convert import convert_sgd

    files = sorted((real_records / "sgd" / "train").glob("dialogues_0[0-4]*.json.gz"))
    banks = list(convert_sgd(files))
    assert banks, "the first SGD files hold Banks dialogues"
    raw = {d["dialogue_id"]: d["services"] for f in files for d in __import__("training.convert").convert._read_json(f)}
    assert all(all(s.startswith("Banks") for s in raw[c["id"][4:]]) for c in banks)


def test_shipped_samples_load_cleanly():
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent / "training" / "samples"
    train, report = load_logs(root / "train.jsonl", strict=True)
    val, _ = load_logs(root / "val.jsonl", strict=True)
    assert len(train) >= 300 and len(val) >= 30
    assert not {c.id for c in train} & {c.id for c in val}
    assert (root / "ATTRIBUTION.md").exists()
    assert sum(p.stat().st_size for p in root.glob("*.jsonl")) < 500_000
