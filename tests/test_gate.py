"""The answer-quality gate: `compare`, versions built without switching, the FAQ gate on `kb build` / `kb rollback`,
the adapter gate, `--force`, no `[eval]` files, and the admin page refusing with the comparison table."""

from __future__ import annotations

import json

import pytest

from tests.test_answer_eval import FAQ, KeyedBackend, scripted, write_config, write_eval_files, write_jsonl

BASE = {"answered_accuracy": 0.9, "first_turn_accuracy": 0.8, "followup_accuracy": 0.85, "unsupported_share": 0.05,
        "fallback_share": 0.1, "answered_share": 0.7, "oos_answered": 0.0, "composed_share": 0.5,
        "latency_s_p50": 1.0}  # fmt: skip


@pytest.mark.parametrize(
    "change, tolerances, refused",
    [
        ({}, {}, []),
        ({"answered_accuracy": 0.85}, {}, ["answered_accuracy"]),
        ({"answered_accuracy": 0.89}, {"max_accuracy_drop": 0.02}, []),
        ({"first_turn_accuracy": 0.7}, {"max_accuracy_drop": 0.02}, ["first_turn_accuracy"]),
        ({"followup_accuracy": 0.5}, {}, ["followup_accuracy"]),
        ({"unsupported_share": 0.2}, {}, ["unsupported_share"]),
        ({"unsupported_share": 0.06}, {"max_unsupported_rise": 0.05}, []),
        ({"fallback_share": 0.3, "followup_accuracy": 0.9}, {}, ["fallback_share"]),
        ({"followup_accuracy": None}, {}, []),  # no conversations on one side: shown, not gated
        ({"answered_share": 0.1, "latency_s_p50": 9.0, "composed_share": 0.0}, {}, []),  # shown only
        ({"answered_accuracy": 1.0, "unsupported_share": 0.0}, {}, []),  # better is fine
    ],
)
def test_compare(change, tolerances, refused):
    from chatbot.config import EvalConfig
    from chatbot.gate import compare

    result = compare(BASE, {**BASE, **change}, EvalConfig(**tolerances))
    assert result.ok == (not refused)
    assert [r.metric for r in result.rows if r.worse] == refused
    assert len(result.reasons) == len(refused) and all(m in r for m, r in zip(refused, result.reasons, strict=True))
    assert [r.metric for r in result.rows][:3] == ["answered_accuracy", "first_turn_accuracy", "followup_accuracy"]
    if refused:
        assert "❌ " + refused[0] in result.markdown() and "WORSE" in result.text()


def test_compare_reason_and_table():
    from chatbot.config import EvalConfig
    from chatbot.gate import compare

    result = compare(BASE, {**BASE, "answered_accuracy": 0.6}, EvalConfig())
    assert result.reasons == ("answered_accuracy fell from 0.900 to 0.600 (tolerance 0, [eval] max_accuracy_drop)",)
    assert "| ❌ answered_accuracy | 0.900 | 0.600 | -0.300 |" in result.markdown()


@pytest.mark.parametrize("bad, message", [({"limit": -1}, "eval.limit"), ({"max_accuracy_drop": 2.0}, "[0, 1]")])
def test_eval_config_refuses_bad_values(bad, message):
    from chatbot.config import EvalConfig

    with pytest.raises(ValueError, match=message):
        EvalConfig(**bad)


def test_eval_config_from_file(chatbot_home):
    from chatbot.config import AppConfig
    from chatbot.settings import ConfigError

    config = AppConfig.load(write_config(chatbot_home, '[eval]\nqueries = "q.jsonl"\nmax_followup_drop = 0.1\n'))
    assert config.eval.configured and config.eval.path("q.jsonl") == chatbot_home / "q.jsonl"
    assert not AppConfig().eval.configured
    with pytest.raises(ConfigError, match="unknown key"):
        AppConfig.load(write_config(chatbot_home, "[eval]\nquery = 'q.jsonl'\n"))


def test_build_without_activating_then_search_it_and_activate(tmp_path, kb_config, hash_embedder):
    from knowledge_base.kb import KnowledgeBase, KnowledgeBaseError

    faq, _, _ = write_eval_files(tmp_path)
    smaller = write_jsonl(tmp_path / "smaller.jsonl", [{**e, "language": "en"} for e in FAQ[1:]])
    kb = KnowledgeBase(tmp_path / "kb", kb_config, hash_embedder)
    first = kb.build(faq)
    candidate = kb.build(smaller, activate=False)
    assert kb.current_version == first.version and not candidate.current
    assert [v.version for v in kb.versions()] == [first.version, candidate.version]
    assert kb.search("How long does delivery take?").hits[0].entry.id == "delivery"

    view = kb.at(candidate.version)
    assert view.current_version == candidate.version and len(view.entries()) == 3 and view.entry("delivery") is None
    assert view.search("How long does delivery take?").hits[0].entry.id != "delivery"
    with pytest.raises(KnowledgeBaseError, match="read-only"):
        view.build(faq)
    with pytest.raises(KnowledgeBaseError, match="no complete version 'v0009'"):
        kb.at("v0009")
    assert (tmp_path / "kb" / "CURRENT").read_text().strip() == first.version

    assert kb.activate(candidate.version).current and kb.current_version == candidate.version
    assert kb.entry("delivery") is None


@pytest.fixture
def gated_home(chatbot_home, tmp_path, monkeypatch):
    """CHATBOT_HOME with a config whose [eval] names the tiny FAQ's queries and conversations; the scripted LM
    stands in for the configured backend."""
    faq, queries, conversations = write_eval_files(tmp_path / "eval")
    config = write_config(chatbot_home, f'[eval]\nqueries = "{queries}"\nconversations = "{conversations}"\n')
    monkeypatch.setattr("chatbot.backends.make_backend", lambda config: scripted())
    return faq, config


def test_kb_build_refuses_a_worse_faq_and_force_lets_it_through(gated_home, tmp_path, chatbot_home, capsys):
    from cli.main import main
    from knowledge_base.kb import KnowledgeBase

    faq, config = gated_home
    assert main(["--config", str(config), "kb", "build", str(faq), "--quiet"]) == 0
    assert "no other active FAQ version" in capsys.readouterr().out
    # the entries customers ask about (delivery, password) are gone
    worse = write_jsonl(tmp_path / "worse.jsonl", [{**e, "language": "en"} for e in FAQ if e["id"] in
                                                   ("returns", "payment")])  # fmt: skip
    assert main(["--config", str(config), "kb", "build", str(worse), "--quiet"]) == 1
    err = capsys.readouterr().err
    assert "FAQ version v0002 not activated: first_turn_accuracy fell from 1.000 to 0.400" in err
    assert "followup_accuracy fell from 1.000 to 0.000" in err and "kb rollback v0002 --force" in err
    kb = KnowledgeBase(chatbot_home / "kb")
    assert [(v.version, v.current) for v in kb.versions()] == [("v0001", True), ("v0002", False)]

    assert main(["--config", str(config), "kb", "rollback", "v0002"]) == 1  # the same gate
    assert main(["--config", str(config), "kb", "rollback", "v0002", "--force"]) == 0
    assert "forced: the gate did not run" in capsys.readouterr().out
    assert (chatbot_home / "kb" / "CURRENT").read_text().strip() == "v0002"
    # going back to the better version passes the gate, and says how it compared
    assert main(["--config", str(config), "kb", "rollback", "v0001"]) == 0
    out = capsys.readouterr().out
    assert "first_turn_accuracy" in out and "+0.600" in out and "current version is now v0001" in out


def test_without_eval_files_the_gate_says_so_and_lets_the_change_through(tmp_path, chatbot_home, capsys, caplog):
    from cli.main import main

    faq, _, _ = write_eval_files(tmp_path)
    config = write_config(chatbot_home)
    assert main(["--config", str(config), "kb", "build", str(faq), "--quiet"]) == 0
    with caplog.at_level("WARNING", logger="chatbot.gate"):
        assert main(["--config", str(config), "kb", "build", str(faq), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "gate: no [eval] files configured" in out and "current version is now v0002" in out
    assert any("no [eval] files configured" in r.message for r in caplog.records)


def test_an_unusable_eval_file_is_a_config_error(tmp_path, chatbot_home, capsys):
    from cli.main import main

    faq, _, _ = write_eval_files(tmp_path)
    config = write_config(chatbot_home, '[eval]\nconversations = "missing.jsonl"\n')
    assert main(["--config", str(config), "kb", "build", str(faq), "--quiet"]) == 0  # nothing to compare with yet
    assert main(["--config", str(config), "kb", "build", str(faq), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "config error: [eval] conversations:" in err and "file not found" in err and "missing.jsonl" in err


@pytest.fixture
def adapters(tmp_path, chatbot_home, monkeypatch):
    """Registered adapters `good` and `bad` (the keyed LM invents a fact with `bad`), nothing shipped."""
    from chatbot.adapters import register
    from tests.test_training_adapters import fake_output

    monkeypatch.setattr("chatbot.adapters.shipped_adapter", lambda: None)
    return {name: register(fake_output(tmp_path / name, 5.0)) for name in ("good", "bad")}


@pytest.fixture
def keyed_engine(app_config, demo_kb, tmp_path):
    """An engine over the demo FAQ with the keyed LM, and [eval] queries about it."""
    from chatbot.config import EvalConfig
    from chatbot.engine import Engine

    queries = write_jsonl(tmp_path / "demo_queries.jsonl", [
        {"query": "How long does delivery take?", "faq_id": "delivery_period"},
        {"query": "How can I track my order?", "faq_id": "track_order"},
        {"query": "Do you repair bicycles in Oslo?", "faq_id": None},
    ])  # fmt: skip
    app_config.eval = EvalConfig(queries=str(queries))
    engine = Engine.from_config(app_config, kb=demo_kb, embedder=demo_kb.embedder, backend=KeyedBackend())
    yield engine.warm_up()
    engine.close()


def test_adapter_gate_refuses_an_adapter_that_invents_and_force_activates_it(adapters, keyed_engine):
    from chatbot.adapters import GateError, activate, active_record

    record = activate("good", engine=keyed_engine)
    assert record["gate"] == ["answers no worse than the active adapter on the [eval] files"]
    assert {r["metric"]: r["change"] for r in record["comparison"]}["answered_accuracy"] == 0.0
    keyed_engine.set_adapter(record["path"])
    with pytest.raises(GateError, match=r"'bad' answers worse than the active 'good': fallback_share rose") as info:
        activate("bad", engine=keyed_engine)
    assert info.value.result.rows[4].metric == "fallback_share" and info.value.result.rows[4].worse
    assert active_record()["name"] == "good" and keyed_engine.health()["adapter"] == record["path"]
    assert keyed_engine.store.stats()["routes"]["answer"] == 0  # the evaluation's conversations went elsewhere

    forced = activate("bad", force=True, engine=keyed_engine)
    assert forced["forced"] and forced["gate"] == ["forced: the gate did not run"] and forced["comparison"] == []


def test_adapters_cli_loads_an_engine_for_the_gate(adapters, gated_home, chatbot_home, capsys, monkeypatch):
    from cli.main import main

    faq, config = gated_home
    monkeypatch.setattr("chatbot.backends.make_backend", lambda config: KeyedBackend())
    assert main(["--config", str(config), "kb", "build", str(faq), "--quiet"]) == 0
    assert main(["--config", str(config), "adapters", "activate", "good"]) == 0
    assert main(["--config", str(config), "adapters", "activate", "bad"]) == 1
    err = capsys.readouterr().err
    assert "fallback_share" in err and "WORSE" in err and "pass --force" in err
    assert main(["--config", str(config), "adapters", "activate", "bad", "--force"]) == 0
    assert json.loads((chatbot_home / "adapters" / "active.json").read_text())["name"] == "bad"


def test_admin_adapter_activation_shows_the_comparison(adapters, keyed_engine):
    from ui.admin import AdminPage

    page = AdminPage(keyed_engine)
    good = page.activate_adapter("good")
    assert good.startswith("✅ Adapter") and "| answered_accuracy | 1.000 | 1.000 | +0.000 |" in good
    refused = page.activate_adapter("bad")
    assert refused.startswith("❌ Not activated") and "| ❌ fallback_share | 0.000 | 1.000 | +1.000 |" in refused
    assert keyed_engine.health()["adapter"].endswith("good")
    assert page.activate_adapter("bad", force=True).startswith("✅ Adapter")
    assert keyed_engine.health()["adapter"].endswith("bad")


def test_admin_page_refuses_a_worse_faq_and_shows_the_table(live_reset, tmp_path):
    from gradio_client import handle_file

    from chatbot.config import EvalConfig
    from knowledge_base.kb import demo_faq_path
    from tests.test_ui_handlers import console, plain

    kb = live_reset.engine.kb
    before = kb.current_version
    queries = write_jsonl(tmp_path / "queries.jsonl", [
        {"query": "How can I track my order?", "faq_id": "track_order"},
        {"query": "How do I cancel my order?", "faq_id": "cancel_order"},
        {"query": "Which payment methods do you accept?", "faq_id": "check_payment_methods"},
    ])  # fmt: skip
    lines = demo_faq_path().read_text(encoding="utf-8").splitlines()
    worse = tmp_path / "worse.jsonl"
    worse.write_text("".join(line + "\n" for line in lines if json.loads(line)["id"] not in
                             ("track_order", "cancel_order")), encoding="utf-8")  # fmt: skip
    live_reset.engine.config.eval = EvalConfig(queries=str(queries))
    live_reset.backend.delay = 0.0  # the gate's six replies need not stream slowly
    try:
        admin = console(live_reset, "ada", page="admin")
        admin.predict(handle_file(str(worse)), "replace", api_name="/check_faq")
        status, versions, *_ = admin.predict("replace", True, False, api_name="/build_faq")  # removals confirmed
        assert status.startswith("❌ Version") and f"so {before} still answers" in plain(status)
        assert "first_turn_accuracy fell from 1.000 to 0.333" in plain(status)
        assert "| ❌ first_turn_accuracy | 1.000 | 0.333 | -0.667 |" in status
        assert kb.current_version == before and versions["data"][0][3] == ""  # built, kept, not current
        refused = versions["data"][0][0]
        message, _ = admin.predict(refused, True, api_name="/activate_version")
        assert message.startswith("✅") and kb.current_version == refused
        message, _ = admin.predict(before, False, api_name="/activate_version")  # better: the gate lets it through
        assert message.startswith("✅") and "| first_turn_accuracy | 0.333 | 1.000 | +0.667 |" in message
        assert kb.current_version == before
    finally:
        live_reset.engine.config.eval = EvalConfig()
        live_reset.backend.delay = 0.03
