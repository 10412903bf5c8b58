"""What a Chinese customer reads besides the replies: a refused message says in Chinese what to do, and the
notices and page texts have a Chinese table with every text."""

from __future__ import annotations

import pytest

from chatbot import notices
from ui import i18n
from ui.customer import CustomerChat, conversation_token


@pytest.mark.parametrize(
    ("message", "expected"),
    [("   ", "消息是空的，请输入您的问题。"), ("退" * 5000, "消息太长了（最多 4000 个字符），请缩短后再发送。")],
)
def test_a_refused_message_says_in_chinese_what_to_do(engine, message, expected):
    import gradio as gr

    chat = CustomerChat(engine)
    conversation_id = engine.start_conversation()
    engine.store.set_language(conversation_id, "zh")
    with pytest.raises(gr.Error) as refused:
        next(chat.send(message, conversation_token(engine.store, conversation_id)))
    assert refused.value.message == expected and refused.value.title == "消息未发送"
    assert engine.store.messages(conversation_id) == []


def test_every_refusal_the_engine_names_has_a_page_text():
    codes = {"empty", "too_long", "binary", "encoding", "closed_conversation"}  # InputError.code, but unknown_...
    assert codes <= set(i18n.REFUSED)  # (the page starts a new conversation for an unknown one)
    assert all(i18n.text(key, "zh", limit="10") != i18n.text(key, "en", limit="10") for key in i18n.REFUSED.values())


def test_the_chinese_tables_are_complete_and_chinese():
    assert set(notices.ZH) == set(notices.EN) and set(i18n.ZH) == set(i18n.EN)
    texts = (*notices.ZH.values(), *i18n.ZH.values())
    assert [t for t in texts if not any("\u4e00" <= c <= "\u9fff" for c in t)] == []
    assert notices.notice("handoff", "zh-CN") == "我正在把您的问题转给同事，稍后会有工作人员在这里回复您。"
    assert notices.notice("refuse", "zh", company="小米商城") == "我只能回答有关小米商城的产品、订单和服务的问题。"


def test_source_labels_follow_the_customer_back_to_english(engine):
    chat = CustomerChat(engine)
    conversation_id = engine.start_conversation()
    engine.store.set_language(conversation_id, "zh")
    token = conversation_token(engine.store, conversation_id)
    *_, last = chat.send("How long does delivery take?", token)
    assert engine.store.get_conversation(conversation_id).language == "en"
    titles = [row["metadata"]["title"] for row in last[0] if row.get("metadata")]
    assert titles and all(t.startswith("Source: ") for t in titles), titles
    assert chat.labels(token)[-1] == "en"  # the page's texts relabel to the same language
