"""The adapter registry, `active.json`, the activation gate, and the export of reviewed replies."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from chatbot.adapters import activate, active_record, list_adapters, register, registry_dir


def fake_output(folder: Path, val_perplexity: float | None) -> Path:
    """A training output folder as far as the registry reads it (adapter config, metrics, a checkpoint)."""
    folder.mkdir(parents=True)
    (folder / "adapter_config.json").write_text(json.dumps({"r": 8, "base_model_name_or_path": "smol"}))
    (folder / "adapter_model.safetensors").write_bytes(b"weights")
    final = {"step": 10} if val_perplexity is None else {"step": 10, "val_perplexity": val_perplexity}
    (folder / "metrics.json").write_text(json.dumps({"final": final}))
    (folder / "checkpoints" / "step-5").mkdir(parents=True)
    return folder


@pytest.fixture
def no_shipped(monkeypatch):
    monkeypatch.setattr("chatbot.adapters.shipped_adapter", lambda: None)


def test_activation_without_eval_files_goes_through_and_says_so(tmp_path, chatbot_home, no_shipped):
    """The gate compares answers on the [eval] files (tests/test_gate.py); with none it lets every adapter through,
    whatever its own validation perplexity, and records why."""
    from chatbot.gate import NOT_CONFIGURED

    good, worse = (fake_output(tmp_path / n, p) for n, p in (("v1", 6.0), ("v2", 7.5)))
    record = activate(str(good))
    assert record["name"] == "v1" and record["val_perplexity"] == 6.0 and record["previous"] == "none"
    assert record["gate"] == [NOT_CONFIGURED] and record["comparison"] == [] and not record["forced"]
    assert activate(str(worse))["previous"] == "v1" and active_record()["name"] == "v2"
    forced = activate("v1", force=True)
    assert forced["forced"] and forced["gate"] == ["forced: the gate did not run"]
    assert activate("none")["path"] is None


def test_active_json_format_is_what_the_engine_reads(tmp_path, chatbot_home, no_shipped):
    fake_output(tmp_path / "v1", 6.0)
    activate(str(tmp_path / "v1"))
    record = json.loads((chatbot_home / "adapters" / "active.json").read_text())
    assert set(record) == {"name", "path", "val_perplexity", "activated_at", "forced", "previous", "gate", "comparison"}
    assert Path(record["path"]) == (chatbot_home / "adapters" / "v1").resolve()
    assert sorted(p.name for p in (chatbot_home / "adapters").iterdir() if p.is_file()) == ["active.json"]
    from chatbot.model import resolve_adapter  # the engine's reader sees the same adapter

    assert resolve_adapter(None) == (chatbot_home / "adapters" / "v1").resolve()


def test_adapter_without_validation_perplexity_is_activated(tmp_path, chatbot_home, no_shipped):
    fake_output(tmp_path / "blind", None)
    record = activate(str(tmp_path / "blind"))
    assert record["name"] == "blind" and record["val_perplexity"] is None


def test_the_shipped_adapter_is_the_previous_one_when_nothing_is_active(tmp_path, chatbot_home, monkeypatch):
    shipped = fake_output(tmp_path / "shipped", 5.5)
    monkeypatch.setattr("chatbot.adapters.shipped_adapter", lambda: shipped)
    assert active_record()["name"] == "shipped"
    fake_output(tmp_path / "other", 6.0)
    assert activate(str(tmp_path / "other"))["previous"] == "shipped"
    assert [(a.name, a.active) for a in list_adapters()] == [("shipped", False), ("other", True)]


def test_register_copies_without_checkpoints_and_checks_names(tmp_path, chatbot_home, no_shipped):
    from chatbot.adapters import AdapterError

    target = register(fake_output(tmp_path / "out", 4.0), "support-v1")
    assert target == registry_dir() / "support-v1" and not (target / "checkpoints").exists()
    assert (target / "adapter_model.safetensors").exists()
    with pytest.raises(AdapterError, match="already registered"):
        register(tmp_path / "out", "support-v1")
    with pytest.raises(AdapterError, match="not allowed"):
        register(tmp_path / "out", "none")
    with pytest.raises(AdapterError, match="no adapter_config.json"):
        register(tmp_path)
    with pytest.raises(AdapterError, match="unknown adapter 'nope'"):
        activate("nope")


def test_adapters_cli(tmp_path, chatbot_home, no_shipped, capsys):
    from cli.main import main

    fake_output(tmp_path / "a", 6.0)
    fake_output(tmp_path / "b", 9.0)
    assert main(["adapters", "activate", str(tmp_path / "a")]) == 0
    assert main(["adapters", "activate", str(tmp_path / "b")]) == 0
    assert "gate: no [eval] files configured" in capsys.readouterr().out
    assert main(["adapters", "activate", "b", "--force"]) == 0
    capsys.readouterr()
    assert main(["adapters", "list", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [(a["name"], a["active"], a["val_perplexity"]) for a in listed] == [("a", False, 6.0), ("b", True, 9.0)]


def test_export_reviews(reviewed_store, tmp_path, capsys):
    from cli.main import main

    out = tmp_path / "reviews.jsonl"
    assert main(["export-reviews", "--out", str(out)]) == 0
    assert "3 conversations" in capsys.readouterr().out
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    by_source = {r["source"]: r for r in rows}
    assert set(by_source) == {"approved", "edited", "handoff"}
    edited = by_source["edited"]["messages"]
    assert [m["role"] for m in edited] == ["user", "assistant", "user", "assistant"]
    assert (
        edited[-1]["content"] == "Yes, we take Visa and Mastercard." and edited[-2]["content"] == "Can I pay by card?"
    )
    assert by_source["approved"]["messages"][-1]["content"] == "Refunds take 5 days."
    handoff = by_source["handoff"]["messages"]
    assert handoff[-1]["content"].startswith("Hi, I'm Ann") and "[EMAIL]" in handoff[-1]["content"]
    from training.data import load_logs

    conversations, report = load_logs(out, strict=True)  # the export is valid training data
    assert len(conversations) == 3


def test_a_running_app_follows_activation_from_another_process(tmp_path, chatbot_home, no_shipped, engine):
    from chatbot.adapter_watch import ActiveAdapterWatcher

    watcher = ActiveAdapterWatcher(engine)
    assert watcher.check() is None  # nothing changed since it started
    activate(str(fake_output(tmp_path / "v1", 6.0)))
    assert watcher.check() == str(chatbot_home / "adapters" / "v1")
    assert engine.health()["adapter"] == str(chatbot_home / "adapters" / "v1") and watcher.check() is None
    activate("none", force=True)
    assert watcher.check() == "none" and engine.health()["adapter"] is None
    v2 = fake_output(tmp_path / "v2", 5.0)
    engine.set_adapter(str(registry_dir() / register(v2).name))  # the admin page switches, then records
    activate("v2")
    assert watcher.check() is None  # nothing to do twice


def test_a_switch_that_fails_keeps_the_served_adapter(tmp_path, chatbot_home, no_shipped, engine, monkeypatch):
    from chatbot.adapter_watch import ActiveAdapterWatcher

    watcher = ActiveAdapterWatcher(engine)

    def refuse(path_or_name):
        raise ValueError("size mismatch")

    monkeypatch.setattr(engine.backend, "set_adapter", refuse)
    activate(str(fake_output(tmp_path / "v1", 6.0)))
    assert watcher.check() is None and engine.health()["adapter"] is None
