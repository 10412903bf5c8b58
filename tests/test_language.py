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
