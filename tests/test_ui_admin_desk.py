"""The admin page's Resolution, Autonomy and Gaps sections: the figures with their definitions and plots, each FAQ
entry's mode with its evidence and history, pinning; direct calls on `AdminPage` (scripted LM, hash embedder, demo
FAQ) and the same through Gradio's client on a live server."""

from __future__ import annotations

import pytest
from gradio_client import Client
from matplotlib.figure import Figure

from chatbot.config import AutonomyConfig
from chatbot.desk import Desk
from chatbot.resolution import DEFINITIONS
from ui.auth import COOKIE


def plain(markdown: str) -> str:
    return markdown.replace("\\", "")


@pytest.fixture
def page(engine):
    from ui.admin import AdminPage

    engine.config.autonomy = AutonomyConfig(enabled=True, min_drafts=2)
    return AdminPage(engine)


def test_resolution_section_shows_every_figure_with_its_definition_and_plots(page, engine):
    desk = Desk(engine.store, engine.config)
    tops = set()
    for text in ("How do I track my order?", "How do I track my order?", "How do I get a refund?"):
        reply = engine.reply(engine.start_conversation(), text)
        tops.add(reply.sources[0].entry.id)
        draft = engine.store.draft(reply.draft_id)  # every entry starts in draft mode
        desk.approve(draft.id, draft.version, "ann")
    summary, per_day, handoffs, entries = page.resolution()
    for definition in DEFINITIONS.values():
        assert plain(definition) in plain(summary)
    assert "| acceptance | 100% | 3 |" in summary
    assert isinstance(per_day, Figure) and isinstance(handoffs, Figure)
    assert {row[0] for row in entries} == tops and len(tops) == 2
    assert all(row[4] == "100%" for row in entries)  # acceptance per entry


def test_autonomy_section_lists_modes_with_evidence_and_pins(page, engine):
    desk = Desk(engine.store, engine.config)
    faq_id = None
    for _ in range(2):
        reply = engine.reply(engine.start_conversation(), "How do I track my order?")
        faq_id = reply.sources[0].entry.id
        draft = engine.store.draft(reply.draft_id)
        desk.approve(draft.id, draft.version, "ann")
    rows = {r[0]: r for r in page.autonomy_rows()}
    assert len(rows) == len(page.kb.entries())
    assert rows[faq_id][1:4] == ["auto", "auto", ""] and rows[faq_id][8].startswith("promoted: 2 of 2")
    others = [r for k, r in rows.items() if k != faq_id]
    assert all(r[1] == "draft" and r[8] == "new entry: [autonomy] initial" for r in others)

    assert page.pin_mode(faq_id, "shadow", "ada") == f"✅ `{faq_id}` is pinned at **shadow** until unpinned."
    assert page.autonomy_rows()[sorted(rows).index(faq_id)][1:4] == ["shadow", "shadow", "📌"]
    engine.config.routing.mode = "off"  # the ceiling
    assert {r[2] for r in page.autonomy_rows()} == {"shadow"}
    engine.config.routing.mode = "auto"
    history = page.autonomy_history(faq_id)
    assert [h[1:] for h in history] == [["shadow", "📌", "pinned at shadow by ada", "ada"],
                                        ["auto", "", history[1][3], "the rule"]]  # fmt: skip
    assert page.pin_mode(faq_id, "always", "ada").startswith("❌ Choose a mode")
    assert page.pin_mode(None, "auto", "ada") == "Choose an FAQ entry."
    assert page.pin_mode(faq_id, "unpin", "ada").startswith("✅")
    assert len(page.autonomy_history(faq_id)) == 3


def test_the_sections_through_gradio_on_a_live_server(live_reset):
    admin = Client(f"{live_reset.url}/admin/", verbose=False, headers={"Cookie": f"{COOKIE}={live_reset.login('ada')}"})
    summary, *_ = admin.predict(api_name="/resolution")
    assert "Contained resolution" in plain(summary)
    table, _ = admin.predict(api_name="/autonomy")
    assert "track_order" in [row[0] for row in table["data"]]
    status, table, history = admin.predict("track_order", "auto", api_name="/pin_mode")
    assert status.startswith("✅") and history["data"][0][3] == "pinned at auto by ada"
    status, *_ = admin.predict("track_order", "unpin", api_name="/pin_mode")
    assert "unpinned" in status
    suggestions, _ = admin.predict(api_name="/gaps")
    assert suggestions["headers"] == ["question", "agents' answer", "other phrasings", "conversations"]
