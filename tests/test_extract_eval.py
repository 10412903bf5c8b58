"""`chatbot.extract_eval`: extracts measured against gold grounding beside today's fallbacks."""

from __future__ import annotations

import pytest

from chatbot.extract_eval import PASTE_CHARS, evaluate_extracts, token_recall
from knowledge_base.loaders import QueryRow
from knowledge_base.records import FaqEntry
from tests.test_extract import ARTICLE, DEMO


def test_token_recall_counts_the_gold_words_present():
    assert token_recall("refunds within 14 days", "We refund within 14 days.") == 1.0
    assert token_recall("refund within 14 days", "We refund you.") == pytest.approx(1 / 4)
    assert token_recall("the and of", "anything") == 1.0  # no content words to find


def test_evaluate_extracts_on_a_tiny_faq(kb_config, hash_embedder):
    long_article = FaqEntry("returns", "How do returns and refunds work?", (ARTICLE + "\n\n") * 4)
    entries = [long_article, DEMO["check_payment_methods"]]
    queries = [
        QueryRow("How do returns and refunds work?", "returns"),
        QueryRow("Which payment methods do you accept?", "check_payment_methods"),
        QueryRow("what is the weather like on mars", None),
    ]
    grounding = ["The refund reaches your original payment method within 14 days.", "Visa", None]
    result = evaluate_extracts(entries, queries, grounding, kb_config, embedder=hash_embedder)
    assert result["retrieval"]["n"] == 3 and result["retrieval"]["recall_at_1"] == 1.0
    figures = result["extract"]["right_top"]
    assert figures["n"] == 2
    assert figures["composed_share"] == 0.5  # the article is cut, the short answer sent whole
    assert figures["mean_chars_paste"] == (PASTE_CHARS + len(DEMO["check_payment_methods"].answer)) / 2
    assert figures["mean_chars"] < figures["mean_chars_paste"]
    assert figures["gold_recall_whole"] == 1.0
    assert result["extract_lexical"]["right_top"]["n"] == 2
    assert [row["faq_id"] for row in result["examples"]] == ["returns", "check_payment_methods"]


def test_grounding_must_align_with_queries(kb_config, hash_embedder):
    with pytest.raises(ValueError, match="align them one to one"):
        evaluate_extracts([DEMO["check_payment_methods"]], [QueryRow("q", None)], [], kb_config, embedder=hash_embedder)
