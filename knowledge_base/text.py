"""Unicode script classes and word patterns: the one definition that language detection, the lexical tokenizer,
the claim check and ROUGE share. Character-class strings (to build other patterns) and compiled patterns."""

from __future__ import annotations

import re

HAN_CLASS = r"\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002ffff"
"""Chinese characters (CJK unified ideographs, extension A, compatibility ideographs, extensions B and later)."""
KANA_CLASS = r"\u3040-\u30ff\u31f0-\u31ff"
"""Japanese hiragana and katakana."""
HANGUL_CLASS = r"\uac00-\ud7af\u1100-\u11ff\u3130-\u318f"
"""Korean syllables and jamo."""
CJK_CLASS = HAN_CLASS + KANA_CLASS + HANGUL_CLASS

HAN = re.compile(f"[{HAN_CLASS}]")
HAN_RUN = re.compile(f"[{HAN_CLASS}]+")
KANA = re.compile(f"[{KANA_CLASS}]")
HANGUL = re.compile(f"[{HANGUL_CLASS}]")
CJK = re.compile(f"[{CJK_CLASS}]")
KANA_HANGUL = re.compile(f"[{KANA_CLASS}{HANGUL_CLASS}]")
LETTER = re.compile(r"[^\W\d_]")
"""One letter of any script (no digits, no underscore)."""
WORD = re.compile(r"[^\W\d_]+")
"""A run of letters of any script."""
