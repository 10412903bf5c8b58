"""Reply-language detection: function words for short questions, seeded langdetect, CJK by script, and the
conversation's language for text too short to tell."""

from __future__ import annotations

import pytest

from chatbot.config import LanguageConfig
from chatbot.language import detect, model_speaks


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("How long does delivery take?", "en"),  # langdetect alone says af (p = 0.99999)
        ("Can I pay with PayPal?", "en"),
        ("¿Cómo obtengo un reembolso de mi pedido?", "es"),
        ("Comment annuler ma commande ?", "fr"),
        ("Wie kann ich meine Bestellung stornieren?", "de"),
        ("Het pakket is niet aangekomen, wat nu?", "nl"),
        ("我要退款", "zh"),
        ("注文をキャンセルしたいです", "ja"),
        ("주문을 취소하고 싶어요", "ko"),
    ],
)
def test_detect(text, expected):
    assert detect(text) == expected


@pytest.mark.parametrize("text", ["ok", "thanks!", "merci beaucoup", "hi", "?"])
def test_short_text_keeps_the_conversation_language(text):
    assert detect(text, conversation_language="fr") == "fr"
    assert detect(text, LanguageConfig(default="de")) == "de"


def test_detection_is_deterministic():
    text = "Je voudrais savoir où en est ma commande, merci beaucoup"
    assert len({detect(text) for _ in range(20)}) == 1


def test_model_languages_come_from_config():
    assert model_speaks("en") and not model_speaks("es")
    assert model_speaks("es", LanguageConfig(model_languages=("en", "es")))


@pytest.mark.parametrize(
    "text",
    ["好的", "谢谢", "退款?", "嗯", "OK", "ok", "A1234567890", "SF1234567890 到哪了", "Order ABC-12345 status",
     "iPhone 15 Pro Max", "Nike Air Max 90 size 42", "iPhone 15 Pro Max 有货吗", "👍"],
)  # fmt: skip
def test_a_chinese_conversation_stays_chinese(text):
    assert detect(text, conversation_language="zh") == "zh"


@pytest.mark.parametrize(("text", "expected"), [("好的", "zh"), ("谢谢", "zh"), ("退款?", "zh"), ("有货吗", "zh")])
def test_chinese_text_is_chinese_in_any_conversation(text, expected):
    assert detect(text, conversation_language="en") == expected
    assert detect("MacBook Pro 2023 的电池多少钱", conversation_language="en") == "zh"


def test_a_japanese_name_in_a_chinese_question_is_chinese():
    # from CrossWOZ's test dialogues: a Chinese customer asking about a Japanese restaurant got an English handoff
    assert detect("还有，千只鹤手作り料理 居楽屋(昌平店)的地址是？", conversation_language="zh") == "zh"
    assert detect("注文をキャンセルしたいです", conversation_language="zh") == "ja"
    assert detect("東京駅の近くにありますか") == "ja"


def test_an_english_sentence_moves_a_chinese_conversation_to_english():
    assert detect("Where is my order? I paid last week.", conversation_language="zh") == "en"
    assert detect("Can you tell me the delivery time for this?", conversation_language="zh") == "en"
