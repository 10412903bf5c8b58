"""`[kb] embedder = "auto"`: the embedder chosen by an FAQ's languages at build time, recorded in the manifest, used
for that version's queries after a reload; a version is still refused by an embedder it was not built with. Both
candidates here are hash embedders of different sizes (a stand-in for MiniLM and e5 that needs no model)."""

from __future__ import annotations

import json

import pytest

from knowledge_base.config import KBConfig
from knowledge_base.embedder import AutoEmbedder, E5Embedder, HashEmbedder, USEEmbedder, make_embedder
from knowledge_base.kb import KnowledgeBase, KnowledgeBaseError
from knowledge_base.records import FaqEntry

AUTO = KBConfig(embedder="auto", auto_english="hash:256", auto_cjk="hash:64")
ENGLISH = [
    FaqEntry("refund", "How do I get a refund?", "Send it back within 30 days.", ("money back",), "en"),
    FaqEntry("track", "Where is my order?", "Use the tracking link in your email.", (), "en"),
]
CHINESE = [
    FaqEntry("refund-zh", "怎么申请退款？", "30天内寄回即可退款。", ("我想退钱",), "zh"),
    FaqEntry("track-zh", "我的订单在哪里？", "请用邮件里的物流链接查询。", (), "zh"),
    FaqEntry("hours", "When are you open?", "9 to 5.", (), "en"),
]


def _manifest(kb: KnowledgeBase, version: str) -> dict:
    return json.loads((kb.versions_dir / version / "manifest.json").read_text(encoding="utf-8"))


def test_make_embedder_names_the_multilingual_ones_without_loading_them():
    e5, use = make_embedder(KBConfig(embedder="e5")), make_embedder(KBConfig(embedder="use"))
    assert isinstance(e5, E5Embedder) and (e5.name, e5.dim, e5._model) == ("multilingual-e5-small-q4", 384, None)
    assert isinstance(use, USEEmbedder) and (use.name, use.dim, use._model) == ("use-multilingual-v3", 512, None)
    assert isinstance(make_embedder(AUTO), AutoEmbedder)


def test_auto_chooses_by_the_share_of_cjk_entries():
    auto = AutoEmbedder(AUTO)
    assert auto.choose(["zh", "zh", "en"]).name == "hash:64"
    assert auto.choose(["zh", "en"]).name == "hash:256"  # half is not mostly
    assert auto.choose(["ja", "ko", "zh"]).name == "hash:64"
    assert auto.choose([]).name == "hash:256"
    assert auto.name == "hash:256"  # choosing changes nothing until a version is served


def test_auto_builds_a_chinese_faq_with_the_cjk_embedder_and_records_it(chatbot_home):
    kb = KnowledgeBase(chatbot_home / "kb", AUTO)
    english = kb.build_entries(ENGLISH)
    assert (english.embedder, english.dim) == ("hash:256", 256)
    chinese = kb.build_entries(CHINESE)
    assert (chinese.embedder, chinese.dim) == ("hash:64", 64)
    assert _manifest(kb, chinese.version)["embedder"] == "hash:64"
    assert kb.embedder.name == "hash:64"
    assert kb.search("怎么退款").hits[0].entry.id == "refund-zh"


def test_a_fresh_process_serves_each_version_with_the_embedder_it_was_built_with(chatbot_home):
    kb = KnowledgeBase(chatbot_home / "kb", AUTO)
    first = kb.build_entries(ENGLISH).version
    kb.build_entries(CHINESE)
    fresh = KnowledgeBase(kb.root, AUTO).warm_up()
    assert fresh.embedder.name == "hash:64"
    assert fresh.search("我的订单在哪里").hits[0].entry.id == "track-zh"
    fresh.rollback(first)
    assert fresh.embedder.name == "hash:256"
    assert fresh.search("where is my order").hits[0].entry.id == "track"


def test_a_pinned_version_with_the_other_embedder_leaves_the_current_one_alone(chatbot_home):
    kb = KnowledgeBase(chatbot_home / "kb", AUTO)
    english = kb.build_entries(ENGLISH).version
    kb.build_entries(CHINESE)
    pinned = kb.at(english)
    assert pinned.embedder.name == "hash:256" and pinned.search("refund").hits[0].entry.id == "refund"
    assert kb.embedder.name == "hash:64" and kb.search("怎么退款").hits[0].entry.id == "refund-zh"


def test_a_version_built_with_one_embedder_is_refused_by_another(chatbot_home):
    kb = KnowledgeBase(chatbot_home / "kb", AUTO)
    kb.build_entries(CHINESE)  # built with hash:64
    plain = KnowledgeBase(kb.root, KBConfig(embedder="hash:256"), HashEmbedder(256))
    with pytest.raises(KnowledgeBaseError, match='built with embedder hash:64.*set \\[kb\\] embedder = "hash:64"'):
        plain.warm_up()
    other_auto = KBConfig(embedder="auto", auto_english="hash:256", auto_cjk="hash:128")
    with pytest.raises(KnowledgeBaseError, match="built with embedder hash:64"):
        KnowledgeBase(kb.root, other_auto).warm_up()


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"auto_cjk": "auto"}, "name an embedder"),
        ({"auto_cjk_share": 1.0}, "auto_cjk_share"),
        ({"threads": 0}, "kb.threads"),
    ],
)
def test_bad_auto_settings_are_refused(fields, message):
    with pytest.raises(ValueError, match=message):
        KBConfig(embedder="auto", **fields)


def test_multilingual_embedders_weigh_their_dense_side_more_for_cjk_queries():
    from knowledge_base.kb import fusion_for

    config = KBConfig()
    assert fusion_for(config, HashEmbedder(64)).cjk_dense_weight == config.cjk_dense_weight == 0.3
    assert fusion_for(config, E5Embedder()).cjk_dense_weight == 0.9
    assert fusion_for(config, USEEmbedder()).cjk_dense_weight == 0.5
    assert fusion_for(KBConfig(multilingual_cjk_dense_weight=0.7), E5Embedder()).cjk_dense_weight == 0.7
    auto = AutoEmbedder(KBConfig(embedder="auto", auto_english="hash:256", auto_cjk="e5"))
    assert fusion_for(config, auto).cjk_dense_weight == 0.3
    auto.use(auto.choose(["zh"]))
    assert fusion_for(config, auto).cjk_dense_weight == 0.9
    with pytest.raises(ValueError, match="multilingual_cjk_dense_weight"):
        KBConfig(multilingual_cjk_dense_weight=1.5)
