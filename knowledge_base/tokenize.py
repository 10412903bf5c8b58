"""The lexical tokenizer: lower-cased words with light English normalisation, and character unigrams plus
bigrams for Chinese, Japanese and Korean runs (no word boundaries there), so a CJK FAQ is searchable by BM25
even with an English embedder."""

from __future__ import annotations

import re
import unicodedata

_TOKEN = re.compile(
    r"[\u3040-\u30ff\u31f0-\u31ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af]+"  # CJK runs
    r"|[^\W_]+",
    re.UNICODE,
)
_CJK = re.compile(r"[\u3040-\u30ff\u31f0-\u31ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af]")

_STOPWORD_TEXT = (
    "a an the and or but if of to in on at by for with about from into over after before is are was were be been "
    "being am do does did have has had i me my mine we our you your he she it its they them their this that these "
    "those there here what which who whom can could would should will shall may might must please hi hello hey "
    "just so too very also as than then up out s t"
)
STOPWORDS = frozenset(_STOPWORD_TEXT.split())


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


def tokenize(text: str) -> list[str]:
    """Tokens for BM25: words (stop words dropped, lightly stemmed) and CJK character uni- and bigrams."""
    text = unicodedata.normalize("NFKC", text).lower()
    out: list[str] = []
    for match in _TOKEN.finditer(text):
        run = match.group(0)
        if _CJK.match(run):
            out.extend(run)
            out.extend(run[i : i + 2] for i in range(len(run) - 1))
        elif run not in STOPWORDS:
            out.append(_stem(run))
    return out
