"""The lexical tokenizer: lower-cased words with light English normalisation, and character unigrams plus
bigrams for Chinese, Japanese and Korean runs (no word boundaries there), so a CJK FAQ is searchable by BM25
even with an English embedder.

Chinese word segmentation (jieba's dictionary through the `rjieba` binding) is a measured alternative, not the
default: on AFQMC and a CrossWOZ FAQ (tuning splits, 10k rows) BM25 recall@1 was 0.140 / 0.701 with n-grams,
0.083 / 0.571 with jieba words, 0.137 / 0.696 with both (`python -m knowledge_base.bench_lexical`)."""

from __future__ import annotations

import re
import unicodedata

from knowledge_base.text import CJK as _CJK
from knowledge_base.text import CJK_CLASS
from knowledge_base.text import HAN_RUN as _HAN
from knowledge_base.text import KANA_HANGUL as _KANA_HANGUL

_TOKEN = re.compile(rf"[{CJK_CLASS}]+|[^\W_]+")

_STOPWORD_TEXT = (
    "a an the and or but if of to in on at by for with about from into over after before is are was were be been "
    "being am do does did have has had i me my mine we our you your he she it its they them their this that these "
    "those there here what which who whom can could would should will shall may might must please hi hello hey "
    "just so too very also as than then up out s t"
)
STOPWORDS = frozenset(_STOPWORD_TEXT.split())

CJK_MODES = ("ngrams", "words", "words+ngrams")
"""How a Chinese run becomes tokens: character unigrams and bigrams (the default: it won), jieba words (search mode:
long words also give their dictionary sub-words), or the n-grams plus the words longer than two characters."""
DEFAULT_CJK_MODE = "ngrams"


def _stem(word: str) -> str:
    """A light suffix stripper (plural, -ing, -ed): enough for BM25 to match 'refunds' with 'refund'."""
    if len(word) > 5 and word.endswith("ing"):
        return word[:-3]
    if len(word) > 4 and word.endswith("ied"):
        return word[:-3] + "y"
    if len(word) > 4 and word.endswith("ed"):
        return word[:-2]
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 3 and word.endswith("s") and not word.endswith("ss"):
        return word[:-1]
    return word


def _ngrams(run: str) -> list[str]:
    return [*run, *(run[i : i + 2] for i in range(len(run) - 1))]


def _cjk_tokens(run: str, mode: str) -> list[str]:
    if mode == "ngrams" or _KANA_HANGUL.search(run) or not _HAN.fullmatch(run):
        return _ngrams(run)  # jieba's dictionary is Chinese: Japanese and Korean keep the n-grams
    import rjieba  # only the measured alternatives segment

    words = rjieba.cut_for_search(run)
    if mode == "words":
        return words
    # Words of one or two characters are already among the n-grams.
    return [*(w for w in words if len(w) > 2), *_ngrams(run)]


def tokenize(text: str, cjk: str = DEFAULT_CJK_MODE) -> list[str]:
    """Tokens for BM25: words (stop words dropped, lightly stemmed) and CJK tokens as `cjk` says (`CJK_MODES`)."""
    if cjk not in CJK_MODES:
        raise ValueError(f"unknown CJK tokenizer mode {cjk!r}: use one of {', '.join(CJK_MODES)}")
    text = unicodedata.normalize("NFKC", text).lower()
    out: list[str] = []
    for match in _TOKEN.finditer(text):
        run = match.group(0)
        if _CJK.match(run):
            out.extend(_cjk_tokens(run, cjk))
        elif run not in STOPWORDS:
            out.append(_stem(run))
    return out
