"""The reply language: the knowledge base's seeded detector, falling back to the conversation's language.

Very short messages ("ok", "thanks") say little about the language; for those the language the conversation
already has wins, then the configured default.
"""

from __future__ import annotations

import re

from chatbot.config import LanguageConfig
from knowledge_base.language import detect_language, has_cjk

_LETTERS = re.compile(r"[^\W\d_]", re.UNICODE)


def detect(text: str, config: LanguageConfig | None = None, conversation_language: str | None = None) -> str:
    """ISO 639-1 code for the reply to `text`.

    CJK text is decided by script at any length. Text with fewer than `config.min_chars` letters keeps the
    conversation's language (else the default); longer text goes through seeded langdetect, which also falls
    back to that language when it is unsure.
    """
    config = config or LanguageConfig()
    fallback = conversation_language or config.default
    if not has_cjk(text) and len(_LETTERS.findall(text)) < config.min_chars:
        return fallback
    return detect_language(text, default=fallback) or fallback


def model_speaks(language: str, config: LanguageConfig | None = None) -> bool:
    """Whether the dialogue model is configured to reply in `language`."""
    config = config or LanguageConfig()
    return language in config.model_languages
