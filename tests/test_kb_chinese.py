"""Chinese retrieval pieces: the CJK tokenizer modes and the Chinese evaluation sets (on tiny data-shaped folders)."""

from __future__ import annotations

import csv
import json
import zipfile
from pathlib import Path

import pytest

from knowledge_base import benchdata, benchdata_zh
from knowledge_base.tokenize import CJK_MODES, DEFAULT_CJK_MODE, tokenize


def test_default_cjk_tokens_are_character_unigrams_and_bigrams():
    assert DEFAULT_CJK_MODE == "ngrams"
    assert tokenize("花呗还款") == ["花", "呗", "还", "款", "花呗", "呗还", "还款"]


def test_words_mode_segments_chinese_with_jieba():
    words = tokenize("为什么我的花呗不能用了", "words")
    assert "为什么" in words and "不能" in words
    assert "么我" not in words  # a bigram across a word boundary is not a word


def test_words_plus_ngrams_adds_only_words_longer_than_a_bigram():
    tokens = tokenize("为什么不能还款", "words+ngrams")
    assert tokens.count("为什么") == 1
    assert tokens.count("还款") == 1  # the bigram, not again as a word
    assert set(tokenize("为什么不能还款", "ngrams")) < set(tokens)


@pytest.mark.parametrize("mode", CJK_MODES)
def test_japanese_and_korean_keep_ngrams_in_every_mode(mode):
    assert tokenize("こんにちは", mode) == tokenize("こんにちは", "ngrams")
    assert tokenize("안녕하세요", mode) == tokenize("안녕하세요", "ngrams")


def test_english_tokens_do_not_depend_on_the_cjk_mode():
    assert {tuple(tokenize("Refunds for cancelled orders", m)) for m in CJK_MODES} == {("refund", "cancell", "order")}


def test_an_unknown_cjk_mode_is_refused_with_the_choices():
    with pytest.raises(ValueError, match="ngrams, words, words\\+ngrams"):
        tokenize("花呗", "bigrams")


def _afqmc(folder: Path, n: int) -> None:
    (folder / "afqmc").mkdir(parents=True)
    with open(folder / "afqmc/train.csv", "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(["sentence1", "sentence2", "label"])
        for i in range(n):
            w.writerow([f"问题{i}怎么办", f"请问问题{i}如何处理", 1])
            w.writerow([f"无关{i}", f"别的{i}", 0])


def test_afqmc_dev_shares_no_pair_or_sentence_with_the_reported_afqmc_set(tmp_path):
    _afqmc(tmp_path, 40)
    reported = benchdata.afqmc(tmp_path, n=10)
    dev = benchdata_zh.afqmc_dev(tmp_path, n=20, skip=10)
    assert len(dev.entries) == 20 and len(dev.queries) == 20
    seen = {e.question for e in reported.entries} | {q.query for q in reported.queries}
    assert not seen & ({e.question for e in dev.entries} | {q.query for q in dev.queries})
    assert all(q.faq_id.startswith("afqmc-dev-") for q in dev.queries)


def _dialog(questions: list[tuple[str, str, str]]) -> dict:
    messages = [{"role": "sys", "content": "您好", "dialog_act": []}]
    for text, domain, slot in questions:
        acts = [["General", "greet", "none", "none"], ["Request", domain, slot, ""]]
        messages.append({"role": "usr", "content": text, "dialog_act": acts})
    # Asking two things at once, or informing, is not an FAQ question.
    both = [["Request", "酒店", "电话", ""], ["Request", "酒店", "地址", ""]]
    messages.append({"role": "usr", "content": "电话和地址呢", "dialog_act": both})
    messages.append({"role": "usr", "content": "我想住", "dialog_act": [["Inform", "酒店", "名称", "x"]]})
    return {"messages": messages}


def _crosswoz(folder: Path) -> None:
    (folder / "crosswoz").mkdir(parents=True)
    splits = {
        "val": [(f"酒店电话是多少{i}", "酒店", "电话") for i in range(25)]
        + [(f"地址在哪{i}", "餐馆", "地址") for i in range(25)]
        + [(f"门票多少{i}", "景点", "门票") for i in range(5)],  # too few to be an entry
        "test": [("这家酒店的电话？", "酒店", "电话"), ("餐馆地址呢？", "餐馆", "地址"), ("门票贵吗", "景点", "门票")],
    }
    for split, questions in splits.items():
        with zipfile.ZipFile(folder / "crosswoz" / f"{split}.json.zip", "w") as z:
            z.writestr(f"{split}.json", json.dumps({"1": _dialog(questions)}, ensure_ascii=False))


def test_crosswoz_faq_has_an_entry_per_asked_slot_and_held_out_test_queries(tmp_path):
    _crosswoz(tmp_path)
    held_out, dev = benchdata_zh.crosswoz(tmp_path), benchdata_zh.crosswoz_dev(tmp_path)
    assert [e.id for e in held_out.entries] == ["酒店-电话", "餐馆-地址"] == [e.id for e in dev.entries]
    assert all(len(e.phrasings) == 15 and e.language == "zh" for e in held_out.entries)
    expected = [("这家酒店的电话？", "酒店-电话"), ("餐馆地址呢？", "餐馆-地址")]
    assert [(q.query, q.faq_id) for q in held_out.queries] == expected
    phrasings = {p for e in dev.entries for p in e.phrasings}
    assert len(dev.queries) == 20 and not phrasings & {q.query for q in dev.queries}


def test_crosswoz_without_its_files_says_where_they_belong(tmp_path):
    with pytest.raises(FileNotFoundError, match="holds crosswoz/"):
        benchdata_zh.crosswoz(tmp_path)
