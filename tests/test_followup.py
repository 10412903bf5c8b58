"""Follow-up retrieval (`chatbot/followup.py`): a message read with the conversation so far, on the demo FAQ with
the hash embedder; one real-model test on the held-out demo conversations with MiniLM."""

from __future__ import annotations

import pytest

from chatbot.followup import ContextQuery, FollowupConfig, contextual_search, is_referring, topic_text


def _after(kb, first: str, text: str) -> tuple:
    """The context the engine passes after the bot answered `first`: its sources and top score."""
    hits = kb.search(first, k=3).hits
    return ContextQuery(text, (first,), tuple(h.entry.id for h in hits), hits[0].score)


FOLLOWUPS = [
    ("I forgot my password", "how long is the link valid?", "recover_password"),
    ("What delivery options do you have?", "how much is the fast one?", "delivery_options"),
    ("How do I add a shipping address?", "how many can I save?", "set_up_shipping_address"),
    ("How can I leave a review?", "when will it show up?", "review"),
    ("where can i see my invoices", "how far back do they go?", "check_invoice"),
]


@pytest.mark.parametrize(("first", "text", "gold"), FOLLOWUPS)
def test_followup_is_answered_from_the_previous_topic(demo_kb, first, text, gold):
    alone = demo_kb.search(text, k=3).hits[0]
    assert alone.score < demo_kb.config.draft_threshold  # alone it would be handed off
    result = contextual_search(demo_kb, _after(demo_kb, first, text))
    assert result.hits[0].entry.id == gold
    assert result.followup and result.searched == "topic + new"
    # a follow-up to a confidently answered question is confident too: not handed off because it is short
    assert result.hits[0].score >= demo_kb.config.answer_threshold
    assert [h.score for h in result.hits] == sorted((h.score for h in result.hits), reverse=True)
    assert result.index_version == demo_kb.current_version


@pytest.mark.parametrize(
    "text", ["I forgot my password", "how much is the fast one?", "¿Cómo cancelo mi pedido?", "", "zzz qqq"]
)
@pytest.mark.parametrize("language", [None, "es"])
def test_without_earlier_turns_the_result_is_plain_search(demo_kb, text, language):
    plain = demo_kb.search(text, k=3, language=language)
    result = contextual_search(demo_kb, ContextQuery(text, previous_sources=("review",), previous_score=0.9),
                               k=3, language=language)  # fmt: skip
    assert result.hits == plain.hits
    assert result.index_version == plain.index_version
    assert not result.followup and result.searched == "new"


@pytest.mark.parametrize(
    ("first", "text", "gold"),
    [
        ("how do I track my order", "ok, and how do I delete my account?", "delete_account"),
        ("How do I add a shipping address?", "and how do I delete my account?", "delete_account"),
        ("What delivery options do you have?", "ok, how do I get a refund?", "get_refund"),
    ],
)
def test_a_topic_change_does_not_stick_to_the_old_topic(demo_kb, first, text, gold):
    query = _after(demo_kb, first, text)
    result = contextual_search(demo_kb, query)
    assert result.hits[0].entry.id == gold
    assert not result.followup
    assert result.hits == demo_kb.search(text, k=3).hits


def test_previous_sources_are_kept_as_candidates(demo_kb):
    # "how do I do that?" alone or with this topic does not rank `review` in the first 2; the previous answer's
    # source is scored anyway and its prior carries it to the top
    text, topic = "where do I do that?", "I want to tell you what I think about the product"
    config = FollowupConfig(candidates=2)
    ranked = [h.entry.id for h in demo_kb.search(f"{topic} {text}", k=2).hits]
    assert "review" not in ranked
    result = contextual_search(demo_kb, ContextQuery(text, (topic,), ("review",), 0.9), k=2, config=config)
    assert result.hits[0].entry.id == "review" and result.followup
    # without that source the same conversation does not find it
    without = contextual_search(demo_kb, ContextQuery(text, (topic,), (), 0.0), k=2, config=config)
    assert "review" not in [h.entry.id for h in without.hits]


def test_search_including_scores_given_entries_as_search_does(demo_kb):
    text = "how many addresses can I save?"
    full = {h.entry.id: h for h in demo_kb.search(text, k=100).hits}
    result = demo_kb.search_including(text, ["review", "no-such-entry", "complaint"], k=2)
    ids = [h.entry.id for h in result.hits]
    assert ids[:2] == [h.entry.id for h in demo_kb.search(text, k=2).hits]
    assert set(ids[2:]) == {"review", "complaint"}  # an id this version lacks is left out
    for hit in result.hits:
        assert hit.score == pytest.approx(full[hit.entry.id].score)
        assert hit.index_version == result.index_version


def test_the_context_counts_as_much_as_the_previous_answer_was_sure(demo_kb):
    first, text = "I forgot my password", "how long is the link valid?"
    sure = contextual_search(demo_kb, ContextQuery(text, (first,), ("recover_password",), 0.95)).hits[0]
    unsure = contextual_search(demo_kb, ContextQuery(text, (first,), ("recover_password",), 0.45)).hits[0]
    assert sure.entry.id == unsure.entry.id == "recover_password"
    assert sure.score > unsure.score
    assert unsure.score < demo_kb.config.answer_threshold


def test_a_followup_to_nothing_gets_no_borrowed_confidence(demo_kb):
    text = "how long is it valid?"
    result = contextual_search(demo_kb, ContextQuery(text, ("hi",), (), 0.0))
    alone = demo_kb.search(text, k=3).hits[0]
    together = demo_kb.search(f"hi {text}", k=3).hits[0]
    assert result.hits[0].score <= max(alone.score, together.score) + 1e-9
    assert result.hits[0].score < demo_kb.config.answer_threshold


def test_a_new_question_after_an_answer_is_not_answered_from_the_old_topic(demo_kb):
    query = _after(demo_kb, "What delivery options do you have?", "do you sell gift cards?")
    result = contextual_search(demo_kb, query)
    assert result.hits[0].score < demo_kb.config.answer_threshold


def test_language_first_ordering_is_kept(demo_kb):
    query = ContextQuery("¿y cuánto tarda?", ("quiero un reembolso",), ("es_get_refund",), 0.85)
    result = contextual_search(demo_kb, query, language="es")
    assert result.hits and all(h.entry.language == "es" for h in result.hits)


def test_unknown_previous_sources_are_ignored(demo_kb):
    query = ContextQuery("how long is the link valid?", ("I forgot my password",), ("removed-entry",), 0.9)
    result = contextual_search(demo_kb, query)
    assert result.hits[0].entry.id == "recover_password"
    assert "removed-entry" not in [h.entry.id for h in result.hits]


@pytest.mark.parametrize(
    ("text", "referring"),
    [
        ("how much is the fast one?", True),
        ("and for that?", True),
        ("how many can I save?", True),
        ("how long is the link valid?", True),
        ("when will it show up?", True),
        ("what about my membership?", True),
        ("how long do I have?", True),
        ("is that free?", True),
        ("and with express?", True),
        ("ok", True),
        ("", True),
        ("???", True),
        ("How do I add a shipping address?", False),
        ("I forgot my password", False),
        ("do you sell gift cards?", False),
        ("thanks. how do i leave a review", False),
        ("what payment methods do you accept", False),
        ("do you price match other stores?", False),
        ("are there any discounts for students?", False),
        ("is there a fee?", True),
        ("can I pick it up there?", True),
    ],
)
def test_referring_detection(text, referring):
    assert is_referring(text) is referring


def test_topic_text_goes_back_to_the_last_message_that_names_a_topic():
    previous = ("I need to change my order", "how long do I have?")
    assert topic_text(previous, "and after that?") == "I need to change my order how long do I have? and after that?"
    assert topic_text(("hi", "I need an invoice for my order"), "can I see them online?") == (
        "I need an invoice for my order can I see them online?"
    )
    assert topic_text(("ok",), "and that?") == "ok and that?"


@pytest.mark.real_model
def test_demo_conversations_held_out_split_with_minilm(tmp_path):
    from chatbot.followup_eval import compare
    from knowledge_base.config import KBConfig
    from knowledge_base.kb import KnowledgeBase, demo_faq_path
    from knowledge_base.loaders import load_conversations, load_faq

    kb = KnowledgeBase(tmp_path / "kb", KBConfig(embedder="embedded"))
    kb.build_entries(load_faq(demo_faq_path()))
    rows = [r for r in load_conversations(demo_faq_path().parent / "store_conversations.jsonl") if r.split == "test"]
    report = compare(kb, rows)
    plain, context = report["plain"], report["context"]
    assert context["followup"]["right_not_handed_off"] >= 0.85
    assert context["followup"]["right_not_handed_off"] > plain["followup"]["right_not_handed_off"]
    assert context["first"]["top1_accuracy"] >= plain["first"]["top1_accuracy"]
    assert context["first"]["right_answered"] >= plain["first"]["right_answered"]
    assert context["out_of_scope"]["answer_share"] <= plain["out_of_scope"]["answer_share"]
