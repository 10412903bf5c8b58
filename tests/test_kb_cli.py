"""`chatbot kb ...` and `chatbot bench retrieval` through the real parser, with the hash embedder from config."""

from __future__ import annotations

import json

import pytest
import tomlkit

from cli.main import main
from knowledge_base.kb import demo_faq_path


@pytest.fixture
def hash_config(chatbot_home):
    path = chatbot_home / "config.toml"
    path.write_text(
        '# site settings\n[kb]\nembedder = "hash"  # fast fake\nkeep_versions = 3\n\n[store]\nredact = false\n',
        encoding="utf-8",
    )
    return path


def test_build_search_versions_rollback(hash_config, capsys, tmp_path):
    assert main(["kb", "build", "--demo", "--quiet"]) == 0
    assert "built v0001" in capsys.readouterr().out
    assert main(["kb", "search", "how do I get my money back refund", "--json", "--k", "3"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["index_version"] == "v0001" and len(result["hits"]) == 3
    assert result["hits"][0]["faq_id"] in {"get_refund", "check_refund_policy", "track_refund"}
    small = tmp_path / "small.csv"
    small.write_text("id,question,answer\nhours,When are you open?,9 to 5\n", encoding="utf-8")
    assert main(["kb", "build", str(small), "--quiet"]) == 0
    assert "-31 removed" in capsys.readouterr().out
    assert main(["kb", "versions"]) == 0
    out = capsys.readouterr().out
    assert "  v0001" in out and "* v0002" in out
    assert main(["kb", "rollback", "v0001"]) == 0
    assert main(["kb", "versions", "--json"]) == 0
    capsys.readouterr()
    assert main(["kb", "rollback", "v0042"]) == 1
    assert "no complete version 'v0042'" in capsys.readouterr().err


def test_search_before_build_says_what_to_do(hash_config, capsys):
    assert main(["kb", "search", "hello"]) == 1
    assert "chatbot kb build" in capsys.readouterr().err


def test_validate_and_bad_build(hash_config, capsys, tmp_path):
    assert main(["kb", "validate", str(demo_faq_path())]) == 0
    assert "OK, 31 entries" in capsys.readouterr().out
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "a", "question": "q"}\n{"id": "a", "question": "q", "answer": "x"}\n', encoding="utf-8")
    assert main(["kb", "validate", str(bad)]) == 1
    err = capsys.readouterr().err
    assert f"{bad}:1:" in err and f"{bad}:2:" in err and "duplicate id" in err
    assert main(["kb", "build", str(bad), "--quiet"]) == 1
    assert "nothing was changed" in capsys.readouterr().err
    assert main(["kb", "versions"]) == 0 and "no versions yet" in capsys.readouterr().out


def _queries(tmp_path):
    path = tmp_path / "q.jsonl"
    rows = [
        {"query": "how can I get a refund", "faq_id": "get_refund"},
        {"query": "track my order please", "faq_id": "track_order"},
        {"query": "I forgot my password", "faq_id": "recover_password"},
        {"query": "what is the weather in Paris tomorrow", "faq_id": None},
        {"query": "play some jazz music", "faq_id": ""},
    ]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    return path


def test_eval_json_has_the_design_keys(hash_config, capsys, tmp_path):
    assert main(["kb", "eval", "--faq", str(demo_faq_path()), "--queries", str(_queries(tmp_path)), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert set(result) == {
        "n",
        "in_scope",
        "recall_at_1",
        "recall_at_5",
        "mrr",
        "latency_ms_p50",
        "latency_ms_p99",
        "oos_auroc",
        "oos_recall",
        "answered_accuracy",
    }
    assert result["n"] == 5 and result["in_scope"] == 3 and result["recall_at_5"] == 1.0
    assert 0 <= result["oos_auroc"] <= 1


def test_calibrate_writes_the_threshold_and_keeps_the_rest(hash_config, capsys, tmp_path):
    assert (
        main(
            [
                "kb",
                "calibrate",
                "--faq",
                str(demo_faq_path()),
                "--queries",
                str(_queries(tmp_path)),
                "--precision",
                "0.9",
            ]
        )
        == 0
    )
    assert "answer_threshold =" in capsys.readouterr().out
    text = hash_config.read_text(encoding="utf-8")
    doc = tomlkit.parse(text)
    assert 0.0 <= doc["kb"]["answer_threshold"] <= 1.0
    assert doc["kb"].get("draft_threshold", 0.0) <= doc["kb"]["answer_threshold"]
    assert "# site settings" in text and "# fast fake" in text and doc["store"]["redact"] is False
    from chatbot.config import AppConfig

    assert AppConfig.load(hash_config).kb.answer_threshold == doc["kb"]["answer_threshold"]


def test_bench_retrieval_without_data_names_the_fix(capsys, tmp_path):
    assert main(["bench", "retrieval", "--data", str(tmp_path / "missing")]) == 2
    assert "--data" in capsys.readouterr().err
