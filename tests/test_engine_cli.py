"""`chatbot ask` end to end on the embedded defaults (real SmolLM2 and MiniLM, demo FAQ built on first use)."""

from __future__ import annotations

import io
import json

import pytest


@pytest.mark.real_model
def test_ask_json_has_the_design_keys(chatbot_home):
    from cli.main import main

    (chatbot_home / "config.toml").write_text(
        '[model]\nthreads = 1\nadapter = "none"\n[generation]\nmax_new_tokens = 48\n'
    )
    out = io.StringIO()
    import contextlib

    with contextlib.redirect_stdout(out):
        assert main(["ask", "--json", "How long does delivery take?"]) == 0
    result = json.loads(out.getvalue().strip().splitlines()[-1])
    design = {"reply", "route", "grounded", "language", "sources", "index_version", "adapter", "timings"}
    assert set(result) == design | {"conversation_id", "message_id", "fallback", "text"}  # the API's keys too
    assert result["route"] == "answer" and result["grounded"] and result["language"] == "en"
    assert result["sources"][0]["faq_id"] == "delivery_period"
    assert set(result["sources"][0]) == {"faq_id", "question", "score"}
    assert result["index_version"] and result["adapter"] is None and result["timings"]["total"] > 0


@pytest.mark.parametrize("text", [" ", "x" * 5000])
def test_ask_refuses_bad_text_before_loading_anything(chatbot_home, capsys, text):
    from cli.main import main

    assert main(["ask", text]) == 1
    assert "chatbot ask: the message is" in capsys.readouterr().err
    assert not (chatbot_home / "chatbot.sqlite3").exists()
