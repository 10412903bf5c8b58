"""The reply language: the knowledge base's seeded detector, falling back to the conversation's language.

Very short messages ("ok", "thanks") say little about the language; for those the language the conversation
already has wins, then the configured default. A Chinese, Japanese or Korean conversation stays so for Latin text
without the function words of a language (an order number, "OK", a product name such as "iPhone 15 Pro Max"), and
text with CJK characters is that script's language unless its Latin words clearly are another language.
"""

from __future__ import annotations

from chatbot.config import LanguageConfig
from knowledge_base.language import detect_language, has_cjk
from knowledge_base.text import CJK as _CJK_CHARS
from knowledge_base.text import HAN as _HAN
from knowledge_base.text import KANA as _KANA
from knowledge_base.text import LETTER as _LETTERS
from knowledge_base.text import WORD as _WORDS

CJK_LANGUAGES = frozenset(("zh", "ja", "ko"))

# Function words that mark a language even in a short question, where langdetect is weak (measured here: "How
# long does delivery take?" -> af with p = 0.99999). Only words that are rare in the other listed languages.
STOPWORDS = {
    "en": "the a an is are do does did how what where when why which who can could would should will i you my "
    "your we our it this that with for of to from have has please thanks thank hello hi not don't",
    "es": "el la los las un una es son cómo como qué dónde cuándo por para mi mis tu con del al puedo quiero "
    "gracias hola pedido mí",
    "fr": "le la les un une est sont comment quoi où quand pourquoi je tu vous mon ma mes votre avec pour du des "
    "au merci bonjour commande puis-je",
    "de": "der die das ein eine ist sind wie was wo wann warum ich du sie mein meine ihr mit für von zu bitte "
    "danke hallo bestellung kann",
    "it": "il lo gli una è sono come cosa dove quando perché io mio mia con per del della grazie ciao ordine posso",
    "pt": "o os um uma é são como onde quando porque eu meu minha com para do da obrigado olá pedido posso você",
    "nl": "de het een is zijn hoe wat waar wanneer waarom ik jij mijn met voor van bedankt hallo bestelling kan",
}


def stopword_language(text: str) -> str | None:
    """The language whose function words clearly dominate `text` (at least two, more than any other), else None."""
    words = [w.casefold() for w in _WORDS.findall(text.replace("’", "'"))]
    counts = {lang: sum(w in vocab for w in words) for lang, vocab in _STOPSETS.items()}
    ranked = sorted(counts.items(), key=lambda kv: -kv[1])
    (best, n), (_, second) = ranked[0], ranked[1]
    return best if n >= 2 and n > second else None


_STOPSETS = {lang: frozenset(words.split()) for lang, words in STOPWORDS.items()}


def detect(text: str, config: LanguageConfig | None = None, conversation_language: str | None = None) -> str:
    """ISO 639-1 code for the reply to `text`.

    CJK text is decided by script at any length. Text with fewer than `config.min_chars` letters keeps the
    conversation's language (else the default). Longer text is decided by function words when they clearly
    point to one language, else by seeded langdetect, which also falls back to that language when unsure; in a
    Chinese, Japanese or Korean conversation only function words move Latin text to another language.
    """
    config = config or LanguageConfig()
    fallback = conversation_language or config.default
    if has_cjk(text):
        found = detect_language(text, default=fallback) or fallback
        if found == "ja" and len(_KANA.findall(text)) * 5 < len(_HAN.findall(text)):
            return "zh"  # Chinese naming a Japanese shop ("千只鹤手作り料理 居楽屋(昌平店)的地址是？"): a kana or two
        if found in CJK_LANGUAGES or stopword_language(text):
            return found
        # mostly Latin letters around a few CJK words ("iPhone 15 Pro Max 有货吗"): the CJK words decide
        return detect_language("".join(_CJK_CHARS.findall(text)), default=fallback) or fallback
    if len(_LETTERS.findall(text)) < config.min_chars:
        return fallback
    if fallback in CJK_LANGUAGES:
        return stopword_language(text) or fallback
    return stopword_language(text) or detect_language(text, default=fallback) or fallback


def model_speaks(language: str, config: LanguageConfig | None = None) -> bool:
    """Whether the dialogue model is configured to reply in `language`."""
    config = config or LanguageConfig()
    return language in config.model_languages
