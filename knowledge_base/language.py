"""Language detection: langdetect, seeded so it is deterministic, with script rules for CJK and a short-text
fallback (langdetect is often wrong on a word or two: "ok" -> sk, "hi" -> sw)."""

from __future__ import annotations

import threading

from knowledge_base.text import HAN as _HAN
from knowledge_base.text import HANGUL as _HANGUL
from knowledge_base.text import KANA as _KANA
from knowledge_base.text import LETTER as _LETTER
from knowledge_base.text import WORD as _WORD

_lock = threading.Lock()
_factory_ready = False


def has_cjk(text: str) -> bool:
    """Whether the text contains Chinese, Japanese or Korean script."""
    return bool(_HAN.search(text) or _KANA.search(text) or _HANGUL.search(text))


def _cjk_language(text: str) -> str | None:
    letters = len(_LETTER.findall(text)) or 1
    kana, hangul, han = len(_KANA.findall(text)), len(_HANGUL.findall(text)), len(_HAN.findall(text))
    if (kana + hangul + han) / letters < 0.3:
        return None
    if kana:
        return "ja"
    if hangul > han:
        return "ko"
    return "zh" if han else None


def detect_language(text: str, default: str | None = None, min_words: int = 3) -> str | None:
    """ISO 639-1 code of `text`, or `default` when the text is too short (under `min_words` words) or undecidable.

    CJK text is decided by script (kana -> ja, hangul -> ko, han -> zh). Everything else goes through langdetect
    with `DetectorFactory.seed = 0`, so the same text always gets the same answer.
    """
    global _factory_ready
    text = (text or "").strip()
    if not text:
        return default
    cjk = _cjk_language(text)
    if cjk:
        return cjk
    if len(_WORD.findall(text)) < min_words:
        return default
    from langdetect import DetectorFactory, detector_factory
    from langdetect.lang_detect_exception import LangDetectException

    with _lock:  # langdetect's factory is global and not thread-safe while it loads profiles
        if not _factory_ready:
            DetectorFactory.seed = 0
            detector_factory.init_factory()
            _factory_ready = True
        try:
            detector = detector_factory._factory.create()
            detector.append(text)
            ranked = detector.get_probabilities()
        except LangDetectException:
            return default
    if not ranked:
        return default
    code = ranked[0].lang.split("-")[0].lower()
    # An unsure detector with the default among its candidates keeps the default ("how do i get a refund": da 0.57,
    # en 0.43): a wrong language is worse than the expected one.
    unsure = default and code != default and ranked[0].prob < 0.9
    if unsure and any(c.lang.split("-")[0] == default and c.prob >= 0.2 for c in ranked):
        return default
    return code if len(code) == 2 else default
