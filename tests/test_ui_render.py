"""What the chat shows: text stays text, drafts are replaced by the agent's text, sources and ids line up."""

from __future__ import annotations

import html

import pytest

from ui.render import HOLD_PREFIX, RATEABLE, as_text, render_messages

CASES = [
    ("<script>alert(1)</script>", "&lt;script&gt;"),
    ('<img src=x onerror="alert(1)">', "&lt;img src=x onerror="),
    ("**bold** _it_ [link](javascript:x)", r"\*\*bold\*\* \_it\_ \[link\]\(javascript:x\)"),
    ("> quote", "&gt; quote"),
    ("$x^2$", r"\$x^2\$"),
    ("مرحبا، أين طلبي؟", "مرحبا، أين طلبي؟"),
    ("我的订单在哪里？", "我的订单在哪里？"),
    ("a & b", "a &amp; b"),
]


@pytest.mark.parametrize("text, expected", CASES)
def test_as_text_escapes_markup(text, expected):
    escaped = as_text(text)
    assert expected in escaped
    assert "<" not in escaped and ">" not in escaped
    # Undoing the escapes gives the original text back: nothing is lost, only neutralised.
    assert html.unescape(escaped).replace("\\", "") == text.replace("\\", "")


def test_drafted_reply_is_replaced_by_the_agent_text_and_sources_rate_their_reply(engine):
    store = engine.store
    engine.config.routing.mode = "draft_only"
    conversation = engine.start_conversation()
    held = engine.reply(conversation, "How do I track my order?")
    assert held.route == "draft"
    view = render_messages(store.messages(conversation))
    assert view.history[-1]["content"].startswith(HOLD_PREFIX)
    assert view.message_ids[-1] is None  # a hold notice cannot be rated

    sent_id = store.approve_draft(held.draft_id, "ann", "It ships <today>.")
    view = render_messages(store.messages(conversation))
    assert [m["role"] for m in view.history] == ["user", "assistant"]
    assert "It ships &lt;today&gt;." in view.history[-1]["content"] and RATEABLE in view.history[-1]["content"]
    assert view.message_ids[-1] == sent_id and view.last_id == sent_id

    engine.config.routing.mode = "auto"
    answer = engine.reply(conversation, "How can I track my order?")
    view = render_messages(store.messages(conversation), engine.kb.entry, source_ratio=0.8)
    sources = [row for row in view.history if row.get("metadata")]
    assert sources and sources[0]["metadata"]["title"].startswith("Source: How can I track my order")
    assert all(view.message_ids[i] == answer.message_id for i, row in enumerate(view.history) if row.get("metadata"))
    # weak hits (below 0.8 x the best score) are not shown as sources
    assert len(sources) == sum(1 for h in answer.sources if h.score >= 0.8 * answer.sources[0].score)
