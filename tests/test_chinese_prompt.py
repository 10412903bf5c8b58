"""The prompt in Chinese when the reply language is Chinese: the default system prompt and the source labels are
written in Chinese; a configured system prompt is used as written."""

from __future__ import annotations

from chatbot.config import PromptConfig
from chatbot.prompt import build_messages, system_prompt
from chatbot.records import Turn
from knowledge_base.records import FaqEntry, Hit

HITS = (Hit(FaqEntry("refund", "多久能退款？", "退款会在3到5个工作日内退回原支付账户。", language="zh"), 0.9),)
HISTORY = [Turn("user", "我想退货，多久能退款？")]


def test_the_default_prompt_is_chinese_for_a_chinese_reply():
    system = build_messages(PromptConfig(company="小米商城"), HITS, HISTORY, "zh")[0]["content"]
    assert system.startswith("你是小米商城的客服助手。语气要友好、简洁、专业。")
    assert "请用中文回答。" in system and "Reply in" not in system
    assert "资料：\n[1] 问：多久能退款？\n答：退款会在3到5个工作日内退回原支付账户。" in system


def test_the_english_prompt_is_unchanged():
    system = build_messages(PromptConfig(), HITS, HISTORY, "en")[0]["content"]
    assert system.startswith("You are the customer support assistant of Acme.") and system.endswith(
        "Sources:\n[1] Q: 多久能退款？\nA: 退款会在3到5个工作日内退回原支付账户。"
    )
    assert build_messages(PromptConfig(), (), HISTORY, "zh")[0]["content"].endswith("资料：无。")


def test_a_configured_prompt_and_tone_are_used_as_written():
    config = PromptConfig(system_prompt="Assistant of {company}, {tone}. Reply in {language}.", tone="热情")
    assert system_prompt(config, "zh") == "Assistant of Acme, 热情. Reply in Chinese."
    assert "语气要热情。" in system_prompt(PromptConfig(tone="热情"), "zh")


def test_a_reply_repeating_the_chinese_prompt_is_a_leak():
    from chatbot.routing import leaks_prompt

    prompt = system_prompt(PromptConfig(), "zh")
    assert leaks_prompt("我的指示是：只根据下面编号资料中的事实回答顾客的问题。", prompt)
    assert not leaks_prompt("退款会在3到5个工作日内退回原支付账户。", prompt)
    assert not leaks_prompt("如果资料中没有答案", prompt)  # eight characters: an ordinary phrase, not a leak
