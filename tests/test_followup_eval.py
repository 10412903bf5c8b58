"""The follow-up replay (`chatbot/followup_eval.py`) on a few demo conversations with the hash embedder."""

from __future__ import annotations

import pytest

from chatbot.followup_eval import compare, replay, summarize
from knowledge_base.loaders import ConversationRow

ROWS = [
    ConversationRow(("I forgot my password", "how long is the link valid?"), ("recover_password",),
                    ("recover_password",)),
    ConversationRow(("How do I add a shipping address?", "how many can I save?"), ("set_up_shipping_address",),
                    ("set_up_shipping_address",)),
    ConversationRow(("How can I leave a review?", "and how do I delete my account?"), ("delete_account",),
                    ("review",)),
    ConversationRow(("What delivery options do you have?", "do you sell gift cards?"), ()),
    ConversationRow(("hi", "where are my invoices? I need the one from May"), ("check_invoice", "get_invoice")),
]  # fmt: skip


def test_replay_passes_the_previous_answer_as_the_engine_does(demo_kb):
    outcomes = replay(demo_kb, ROWS, "context")
    assert [(o.conversation, o.turn) for o in outcomes] == [(c, t) for c, r in enumerate(ROWS) for t in range(2)]
    assert outcomes[1].top == "recover_password" and outcomes[1].followup
    assert outcomes[0].gold == ("recover_password",) and outcomes[8].gold == ()  # "hi" has no labelled entry
    plain = replay(demo_kb, ROWS, "plain")
    assert [o.top for o in plain if o.turn == 0] == [o.top for o in outcomes if o.turn == 0]
    assert not any(o.followup for o in plain)


def test_summary_groups_and_compares(demo_kb):
    report = compare(demo_kb, ROWS)
    plain, context = report["plain"], report["context"]
    assert context["followup"]["n"] == 3 and context["topic_change"]["n"] == 1 and context["last"]["n"] == 4
    assert context["out_of_scope"]["n"] == 1 and context["first"]["n"] == 3  # labelled first turns only
    assert context["followup"]["right_not_handed_off"] > plain["followup"]["right_not_handed_off"]
    assert context["topic_change"]["top1_accuracy"] == 1.0
    assert context["first"] == plain["first"]
    for group in ("followup", "last", "first"):
        shares = context[group]
        assert shares["answer_share"] + shares["draft_share"] + shares["handoff_share"] == pytest.approx(1.0)
    assert context["latency"]["n"] == len(ROWS) and context["latency"]["p95_s"] >= context["latency"]["p50_s"]


def test_summary_of_nothing(demo_kb):
    report = summarize(demo_kb, [], [])
    assert report["last"] == {"n": 0} and "latency" not in report
