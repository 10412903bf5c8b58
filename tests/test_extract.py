"""The extractive answer (`chatbot.extract`): the sentences of the top source that answer the question."""

from __future__ import annotations

import json
import re

import pytest

from chatbot.extract import Extract, extract_answer, tidy
from knowledge_base.kb import demo_faq_path
from knowledge_base.records import FaqEntry, Hit

# A help-center article as doc2dial scrapes them: headings on their own lines, " , " and " ." spacing, a list
# flattened into lines under a colon.
ARTICLE = """Returning an Item

You can return most items within 30 days of delivery , as long as they are unused. Gift cards and downloads are final.

How to Start a Return

Open Account > Orders > Returns and pick the item you want to send back. Then print the prepaid label we e-mail you and stick it on the parcel. Drop the parcel at any post office.

Refund Times

We check every parcel within 3 business days of receiving it . The refund reaches your original payment method within 14 days. Bank transfers can take up to 5 more days.

Items You Cannot Return

The following items are final sale :
Opened software
Personalised jewellery
Perishable food

Questions

Read the full policy at https://help.example.com/returns?lang=en&ref=faq. You can also call us on weekdays from 9 am to 5 pm."""  # noqa: E501


def _demo() -> dict[str, FaqEntry]:
    entries = {}
    for line in demo_faq_path().read_text(encoding="utf-8").splitlines():
        data = json.loads(line)
        entries[data["id"]] = FaqEntry(data["id"], data["question"], data["answer"])
    return entries


DEMO = _demo()
ARTICLE_ENTRY = FaqEntry("returns", "Returns and refunds", ARTICLE)


def _hits(entry: FaqEntry) -> list[Hit]:
    return [Hit(entry, 0.9), Hit(DEMO["check_payment_methods"], 0.3)]


def _assert_from_source(extract: Extract, answer: str) -> None:
    """Every line of the extract is a run of the source's (tidied) text: no word invented, nothing cut."""
    source = " ".join(tidy(line) for line in answer.split("\n"))
    for line in extract.text.split("\n"):
        assert line in source, line
    assert set(re.findall(r"\w+", extract.text)) <= set(re.findall(r"\w+", answer))


DEMO_CASES = [
    ("recover_password", "how long is the link valid?", "We send a reset link that works for 1 hour."),
    ("delivery_options", "how much is express delivery?", "Express delivery takes 1-2 business days for $12.99."),
    ("delivery_options", "are pick-up points free?", "Pick-up points are free."),
    ("recover_password", "the email never arrived", "Check your spam folder if it does not arrive."),
]


@pytest.mark.parametrize(("faq_id", "question", "expected"), DEMO_CASES)
def test_demo_entries_give_the_sentence_that_answers(faq_id, question, expected):
    entry = DEMO[faq_id]
    extract = extract_answer(question, _hits(entry), max_chars=60)
    assert extract.text == expected
    assert not extract.whole and extract.faq_id == faq_id
    _assert_from_source(extract, entry.answer)


ARTICLE_CASES = [
    # the sentence after the best one comes along when it fits
    (
        "how long does the refund take?",
        ["The refund reaches your original payment method within 14 days. Bank transfers can take up to 5 more days."],
        ["Gift"],
    ),  # fmt: skip
    ("how do I start a return?", ["Open Account > Orders > Returns and pick the item"], ["Refund"]),
    # "Then ..." keeps the step before it
    ("where do I stick the label?", ["Open Account > Orders > Returns", "Then print the prepaid label"], []),
    # the list stays whole with its intro
    (
        "what is final sale?",
        ["The following items are final sale:\nOpened software\nPersonalised jewellery\nPerishable food"],
        [],
    ),  # fmt: skip
    ("where can I read the full policy?", ["https://help.example.com/returns?lang=en&ref=faq."], ["Refund"]),
    ("how long do you take to check a parcel?", ["within 3 business days of receiving it."], ["post office"]),
]


@pytest.mark.parametrize(("question", "present", "absent"), ARTICLE_CASES)
def test_article_gives_the_sentences_that_answer(question, present, absent):
    extract = extract_answer(question, _hits(ARTICLE_ENTRY), max_chars=200)
    for part in present:
        assert part in extract.text
    for part in absent:
        assert part not in extract.text
    assert not extract.whole and len(extract.text) <= 200
    assert list(extract.sentences) == sorted(extract.sentences)
    _assert_from_source(extract, ARTICLE)


def test_scraped_spacing_is_tidied_but_words_kept():
    extract = extract_answer("how many days do I have to return an unused item?", _hits(ARTICLE_ENTRY), max_chars=120)
    assert "You can return most items within 30 days of delivery, as long as they are unused." in extract.text
    assert " ," not in extract.text


@pytest.mark.parametrize("max_chars", [40, 80, 150, 300, 450])
def test_max_chars_is_honoured(max_chars):
    for question in ("how do I return an item?", "refund", "what can't I return?", "phone opening hours"):
        extract = extract_answer(question, _hits(ARTICLE_ENTRY), max_chars=max_chars)
        longest = max(len(line) for line in extract.text.split("\n"))
        # a single segment longer than max_chars is sent alone, never cut
        assert len(extract.text) <= max_chars or (len(extract.sentences) == 1 and longest > max_chars)
        _assert_from_source(extract, ARTICLE)


def test_a_sentence_longer_than_max_chars_is_sent_whole_not_cut():
    extract = extract_answer("how do I start a return?", _hits(ARTICLE_ENTRY), max_chars=30)
    assert extract.text == "Open Account > Orders > Returns and pick the item you want to send back."
    assert len(extract.sentences) == 1


def test_follow_up_reads_the_earlier_message():
    alone = extract_answer("how long?", _hits(ARTICLE_ENTRY), max_chars=60)
    followed = extract_answer(
        "how long?", _hits(ARTICLE_ENTRY), context=["I paid by bank transfer, when is my money back?"], max_chars=60
    )
    assert followed.text == "Bank transfers can take up to 5 more days."
    assert alone.text != followed.text


@pytest.mark.parametrize(
    "faq_id", ["check_payment_methods", "registration_problems", "set_up_shipping_address", "recover_password"]
)
def test_short_answers_are_sent_whole(faq_id):
    entry = DEMO[faq_id]
    extract = extract_answer("anything", _hits(entry))
    assert extract == Extract(entry.answer, faq_id, True, extract.sentences)
    assert extract.sentences == tuple(range(len(extract.sentences)))


@pytest.mark.parametrize("answer", ["", "   ", "One sentence only, a long one that runs past the limit for sure."])
def test_empty_and_one_sentence_answers_are_whole(answer):
    entry = FaqEntry("x", "q", answer)
    extract = extract_answer("question", [Hit(entry, 0.8)], max_chars=20)
    assert extract.whole and extract.text == answer and extract.faq_id == "x"


def test_abbreviations_do_not_end_a_sentence():
    answer = (
        "You can pay by card, e.g. Visa or Mastercard. The U.S. Department of Education lends the money. "
        "Loans are repaid monthly. Interest accrues daily."
    )
    extract = extract_answer("who lends the money?", [Hit(FaqEntry("loans", "Loans", answer), 0.9)], max_chars=60)
    assert extract.text == "The U.S. Department of Education lends the money."


def test_only_the_top_hit_is_used():
    hits = [Hit(DEMO["delivery_options"], 0.9), Hit(DEMO["recover_password"], 0.8)]
    extract = extract_answer("how long is the reset link valid?", hits, max_chars=60)
    assert extract.faq_id == "delivery_options"
    _assert_from_source(extract, DEMO["delivery_options"].answer)


class CountingEncoder:
    def __init__(self, embedder):
        self.embedder = embedder
        self.calls: list[int] = []

    def __call__(self, texts):
        self.calls.append(len(texts))
        return self.embedder.encode(texts)


def test_cosine_finds_what_words_miss_and_sentences_are_embedded_once(hash_embedder):
    # no stem or prefix in common with the article, but character trigrams (what the hash embedder sees)
    encode = CountingEncoder(hash_embedder)
    for question, expected in [("postoffice?", "Drop the parcel at any post office."),
                               ("bankers?", "Bank transfers can take up to 5 more days.")]:  # fmt: skip
        assert expected not in extract_answer(question, _hits(ARTICLE_ENTRY), max_chars=80).text
        assert expected in extract_answer(question, _hits(ARTICLE_ENTRY), encode=encode, max_chars=80).text
    assert [n for n in encode.calls if n > 1] == [19], encode.calls  # the article's 19 segments once


def test_no_hits_is_a_clear_error():
    with pytest.raises(ValueError, match="at least one hit"):
        extract_answer("where is my parcel?", [])


def test_bad_max_chars_is_a_clear_error():
    with pytest.raises(ValueError, match="max_chars must be > 0"):
        extract_answer("where is my parcel?", _hits(ARTICLE_ENTRY), max_chars=0)
