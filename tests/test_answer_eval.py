"""`chatbot eval answers` and `chatbot.answer_eval`: a tiny FAQ, labelled queries with an out-of-scope row and two
conversations through the real engine with a scripted LM and the hash embedder; exact figures."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.fixtures_engine import ScriptedBackend

FAQ = [
    {"id": "delivery", "question": "How long does delivery take?",
     "answer": "Delivery takes 3-5 business days. Express delivery takes 1 business day and costs 9 EUR."},
    {"id": "returns", "question": "How do I return an item?",
     "answer": "Open Account > Orders, choose the item and press Return. Returns are free within 30 days."},
    {"id": "payment", "question": "Which payment methods do you accept?",
     "answer": "We accept Visa, Mastercard and PayPal."},
    {"id": "password", "question": "How do I reset my password?",
     "answer": "Press Forgot password on the sign-in page. We e-mail you a link that is valid for 24 hours."},
]  # fmt: skip
QUERIES = [
    {"query": "How long does delivery take?", "faq_id": "delivery"},
    {"query": "How do I return an item?", "faq_id": "returns"},
    {"query": "Which payment methods do you accept?", "faq_id": "payment"},
    {"query": "How do I reset my password?", "faq_id": "password"},
    {"query": "Do you repair bicycles in Oslo?", "faq_id": None},
]
CONVERSATIONS = [
    {"turns": ["How long does delivery take?", "how much does express delivery cost?"], "faq_id": "delivery",
     "first_faq_id": "delivery"},
    {"turns": ["How do I reset my password?", "how long is the password link valid?"], "faq_id": "password"},
]  # fmt: skip
INVENTED = "We accept Visa, Mastercard, PayPal and Apple Pay."
"""The scripted model's reply to the payment question: Apple Pay is in no source."""


class KeyedBackend(ScriptedBackend):
    """A scripted LM that answers some customer messages with fixed text (the rest: source [1]'s answer).
    With an adapter whose folder is named `bad`, it invents a fact in every reply."""

    def __init__(self, replies: dict[str, str] | None = None):
        super().__init__()
        self.by_message = replies or {}

    def stream(self, request, cancel=None):
        last = request.messages[-1]["content"]
        if self.adapter and Path(self.adapter).name == "bad":
            self.queue("Delivery is free and takes 10 days.")
        elif last in self.by_message:
            self.queue(self.by_message[last])
        return super().stream(request, cancel)


def scripted() -> KeyedBackend:
    return KeyedBackend({"Which payment methods do you accept?": INVENTED,
                         "How do I return an item?": "Open Account > Orders, choose the item and press Return.",
                         "how much does express delivery cost?": "Express delivery costs 9 EUR."})  # fmt: skip


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def write_eval_files(folder: Path, faq: list[dict] = FAQ) -> tuple[Path, Path, Path]:
    """The tiny FAQ (in English: detection guesses wrong on one short line), its queries and conversations as
    files in `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    return (write_jsonl(folder / "faq.jsonl", [{**e, "language": "en"} for e in faq]),
            write_jsonl(folder / "queries.jsonl", QUERIES),
            write_jsonl(folder / "conversations.jsonl", CONVERSATIONS))  # fmt: skip


def write_config(home: Path, extra: str = "") -> Path:
    """The hash embedder; answers from 0.5, which every right hit of the tiny FAQ reaches (first messages score
    0.95, the follow-ups about 0.7 however follow-up retrieval fuses them, the out-of-scope row 0.13)."""
    path = home / "config.toml"
    path.write_text('[kb]\nembedder = "hash:256"\nanswer_threshold = 0.5\n' + extra, encoding="utf-8")
    return path


EXPECTED = {
    "n_queries": 5,
    "n_conversations": 2,
    "n_replies": 9,
    "routes": {"answer": 0.8889, "draft": 0.0, "handoff": 0.1111},
    "answered_accuracy": 1.0,
    "answered_share": 1.0,  # the 7 labelled in-scope messages
    "oos_answered": 0.0,
    "composed_share": 0.25,  # the returns and the express answers, of 8 answers
    "unsupported_share": 0.0,
    "fallback_share": 0.125,  # the payment reply, of 8
    "followup_accuracy": 1.0,
    "first_turn_accuracy": 1.0,
}


def test_eval_answers_on_a_tiny_faq(tmp_path, chatbot_home):
    from cli.eval_answers import eval_answers

    faq, queries, conversations = write_eval_files(tmp_path)
    config = write_config(chatbot_home)
    out = tmp_path / "replies.jsonl"
    result = eval_answers(faq, queries, conversations, config_path=str(config), out=out, progress=False,
                          backend=scripted())  # fmt: skip
    assert {k: result[k] for k in EXPECTED} == EXPECTED
    assert 0 < result["latency_s_p50"] <= result["latency_s_p95"]
    assert not (chatbot_home / "kb").exists() and not (chatbot_home / "chatbot.sqlite3").exists()

    replies = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert len(replies) == 9
    by_query = {r["query"]: r for r in replies if r["kind"] == "query"}
    oos = by_query["Do you repair bicycles in Oslo?"]
    assert oos["route"] == "handoff" and oos["gold"] == [] and oos["right"] is None
    payment = by_query["Which payment methods do you accept?"]
    assert payment["fallback"] and payment["rejected"] == INVENTED and "Apple Pay" in payment["rejection"]
    assert payment["text"] == FAQ[2]["answer"] and not payment["composed"] and payment["claim_failures"] == []
    followup = replies[6]
    assert followup["turns"] == CONVERSATIONS[0]["turns"] and followup["role"] == "followup"
    assert followup["route"] == "answer" and followup["text"] == "Express delivery costs 9 EUR." and followup["right"]
    assert followup["composed"]
    assert by_query["How do I return an item?"]["composed"] and not by_query["How do I reset my password?"]["composed"]
    unlabelled = replies[7]  # the second conversation names no first_faq_id
    assert unlabelled["role"] == "first" and unlabelled["gold"] is None and unlabelled["right"] is None


def test_unsupported_claims_in_sent_text_are_counted():
    """An answer the engine let through is still checked claim by claim (here: an engine without checks)."""
    from chatbot.answer_eval import evaluate_answers
    from chatbot.records import Reply
    from knowledge_base.loaders import QueryRow
    from knowledge_base.records import FaqEntry, Hit

    entry = FaqEntry("payment", FAQ[2]["question"], FAQ[2]["answer"])

    class Unchecked:
        def start_conversation(self, channel: str = "web") -> str:
            return "c1"

        def reply(self, conversation_id: str, text: str) -> Reply:
            return Reply(INVENTED, "answer", True, "en", sources=(Hit(entry, 0.9),))

    report = evaluate_answers(Unchecked(), [QueryRow(FAQ[2]["question"], "payment")]).to_dict(with_replies=True)
    assert report["unsupported_share"] == 1.0 and report["composed_share"] == 1.0 and report["fallback_share"] == 0.0
    assert report["answered_accuracy"] == 1.0 and report["followup_accuracy"] is None
    assert "Apple Pay" in report["replies"][0]["claim_failures"][0]


def test_spread_takes_rows_from_the_whole_file():
    from chatbot.answer_eval import spread

    assert spread(list(range(10)), 3) == [0, 3, 6]
    assert spread(list(range(4)), 0) == [0, 1, 2, 3] and spread(list(range(4)), 9) == [0, 1, 2, 3]


def test_cli_json_and_bad_input(tmp_path, chatbot_home, capsys, monkeypatch):
    from cli.main import main

    faq, queries, conversations = write_eval_files(tmp_path)
    config = write_config(chatbot_home)
    monkeypatch.setattr("chatbot.backends.make_backend", lambda config: scripted())
    assert main(["--config", str(config), "eval", "answers", "--faq", str(faq), "--queries", str(queries),
                 "--limit", "2", "--json", "--quiet"]) == 0  # fmt: skip
    result = json.loads(capsys.readouterr().out)
    assert result["n_queries"] == 2 and result["n_conversations"] == 0 and result["followup_accuracy"] is None

    assert main(["--config", str(config), "eval", "answers", "--faq", str(faq), "--queries", str(queries),
                 "--limit", "-1"]) == 2  # fmt: skip
    assert "--limit must be >= 0" in capsys.readouterr().err
    broken = write_jsonl(tmp_path / "broken.jsonl", [{"turns": [], "faq_id": "delivery"}])
    assert main(["--config", str(config), "eval", "answers", "--faq", str(faq), "--queries", str(queries),
                 "--conversations", str(broken)]) == 1  # fmt: skip
    err = capsys.readouterr().err
    assert "broken.jsonl" in err and "'turns' must be a non-empty list" in err


@pytest.mark.parametrize("flag", ["--faq", "--queries"])
def test_cli_requires_the_faq_and_the_queries(flag, capsys):
    from cli.main import main

    args = ["eval", "answers", "--faq", "f.jsonl", "--queries", "q.jsonl"]
    i = args.index(flag)
    with pytest.raises(SystemExit):
        main(args[:i] + args[i + 2 :])
    assert f"the following arguments are required: {flag}" in capsys.readouterr().err
