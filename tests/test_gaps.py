"""Gap suggestions: agent-answered questions with no good FAQ source, grouped by meaning, offered as new entries and
added in one action through the admin page's validated build. Phrasings are Banking77 training queries (PolyAI,
CC BY 4.0, /work/shared/data/banking77), quoted as written."""

from __future__ import annotations

import pytest

from chatbot.config import GapsConfig, StoreConfig
from chatbot.gaps import Suggestion, answered_gaps, group, suggest
from knowledge_base.embedder import HashEmbedder

TOP_UP_FAILED = ("I think my top-up has failed.", "Top-up is not working", "My top up is not working",
                 "For what reason did my top-up fail?")  # fmt: skip
EXCHANGE_RATE = ("Do you know the rate of exchange?", "How is the exchange rate doing?",
                 "I would like to know what exchange rates you use?",
                 "What foreign exchange rate will I get on weekdays and on the weekends?")  # fmt: skip
HASH = GapsConfig(similarity=0.2)  # the hash embedder shares words, not meaning: its similarities run lower


@pytest.fixture
def encode():
    return HashEmbedder(256).encode


def test_group_two_banking77_intents(encode):
    texts = [*TOP_UP_FAILED, *EXCHANGE_RATE]
    assert group(texts, encode, HASH.similarity) == [[0, 1, 2, 3], [4, 5, 6, 7]]
    assert group(texts, encode, 0.99) == [[i] for i in range(8)]  # nothing that close: every question alone
    assert group(texts[:1], encode, 0.5) == [[0]] and group([], encode, 0.5) == []


@pytest.fixture
def store(chatbot_home):
    from chatbot.store import Store

    s = Store(StoreConfig()).warm_up()
    yield s
    s.close()


def handed_off(store, question: str, answer: str | None, language: str = "en") -> str:
    """A question the bot handed off for want of a source, and the agent's reply (None: nobody answered)."""
    cid = store.create_conversation()
    store.record_exchange(cid, question, {"language": language}, "A person will reply.",
                          {"kind": "notice", "route": "handoff", "language": language},
                          handoff_reason="no good source (best score 0.10 < 0.40)")  # fmt: skip
    if answer is not None:
        store.agent_reply(cid, "ann", answer)
    return cid


def test_suggestions_from_agent_answered_gaps(store, encode):
    for q in TOP_UP_FAILED:
        handed_off(store, q, "Top-ups fail when the card issuer declines them; try another card.")
    handed_off(store, TOP_UP_FAILED[1], "Try another card: the issuer declined it.")  # asked twice, answered apart
    for q in EXCHANGE_RATE[:3]:
        handed_off(store, q, "We use the interbank rate of the moment, with no markup on weekdays.")
    handed_off(store, "How do I order a pizza?", "We only do banking, sorry.")  # alone: below min_questions
    handed_off(store, "What is the exchange rate for yen?", None)  # nobody answered it
    handed_off(store, "I want to talk to a human", "Hi, Ann here.")  # a request for a person, no FAQ gap
    handed_off(store, "Miksi latausni epäonnistui? top-up", "Kokeile toista korttia.", language="fi")

    questions = answered_gaps(store, asks_for_person=lambda t: "human" in t, languages={"en"})
    assert len(questions) == 9
    top_up, exchange = suggest(questions, encode, HASH)
    assert isinstance(top_up, Suggestion) and len(top_up.conversations) == 5 and top_up.n == 4
    assert {top_up.question, *top_up.alt_questions} == set(TOP_UP_FAILED)  # the twice-asked phrasing listed once
    assert top_up.answer in top_up.answers and len(top_up.answers) == 2
    assert {exchange.question, *exchange.alt_questions} == set(EXCHANGE_RATE[:3])
    assert exchange.answer == "We use the interbank rate of the moment, with no markup on weekdays."
    entry = exchange.entry(taken=set())
    assert entry.id.startswith("gap-") and entry.alt_questions == exchange.alt_questions
    assert exchange.entry(taken={entry.id}).id == entry.id + "-2"
    assert suggest(questions, encode, GapsConfig(similarity=0.2, min_questions=6)) == []


def test_bad_gap_config_is_refused():
    with pytest.raises(ValueError, match="gaps.similarity"):
        GapsConfig(similarity=50)
    with pytest.raises(ValueError, match="gaps.min_questions"):
        GapsConfig(min_questions=0)


# -- the one-action add on the admin page (scripted LM, hash embedder, demo FAQ) ------------------------------------
def test_the_admin_adds_a_suggestion_in_one_action(engine):
    from ui.admin import AdminPage

    engine.config.gaps = HASH
    page = AdminPage(engine)
    asked = []
    for q in EXCHANGE_RATE:
        cid = engine.start_conversation()
        reply = engine.reply(cid, q)
        if reply.route == "handoff" and not reply.sources:
            engine.store.agent_reply(cid, "ann", "We use the interbank rate of the moment, with no markup.")
            asked.append(q)
    assert len(asked) >= 2, "the demo shop's FAQ should have no source for exchange rates"
    (suggestion,) = page.gap_suggestions()
    assert page.gaps_table([suggestion])[0][0] == suggestion.question
    before = {e.id for e in page.kb.entries()}

    status = page.add_gap(suggestion.question)
    assert status.startswith("✅"), status
    (added,) = [e for e in page.kb.entries() if e.id not in before]
    assert added.id.startswith("gap-") and added.answer.startswith("We use the interbank rate")
    assert set(added.phrasings) == set(asked)
    reply = engine.reply(engine.start_conversation(), asked[0])
    assert reply.sources and reply.sources[0].entry.id == added.id  # the FAQ answers it now
    assert page.gap_suggestions() == []  # and no longer suggests it
    assert page.add_gap(suggestion.question).startswith("❌ No suggestion asks")
    assert page.add_gap(None) == "Choose a suggestion."


CARD_ARRIVAL = (
    "I am still waiting on my card?",
    "What can I do if my card still hasn't arrived after 2 weeks?",
    "I have been waiting over a week. Is the card still coming?",
    "Can I track my card while it is in the process of delivery?",
    "How do I know if I will get my card, or if it is lost?",
    "When did you send me my new card?",
    "Do you have info about the card on delivery?",
    "What do I do if I still have not received my new card?",
)
EXCHANGE_RATE_8 = (
    "What is my money worth in other countries?",
    "Will my money be of equal value when I travel abroad?",
    "Do you know the rate of exchange?",
    "What foreign exchange rate will I get on weekdays and on the weekends?",
    "What is the exchange looking like?",
    "How is the exchange rate doing?",
    "I would like to know how exchange rates are calculated when transferring funds.",
    "I would like to know what exchange rates you use?",
)


@pytest.mark.real_model
def test_real_embedder_groups_two_banking77_intents_apart():
    from knowledge_base.config import KBConfig
    from knowledge_base.embedder import make_embedder

    embedder = make_embedder(KBConfig())
    embedder.warm_up()
    groups = group([*CARD_ARRIVAL, *EXCHANGE_RATE_8], embedder.encode, GapsConfig().similarity)
    assert all(max(g) < 8 or min(g) >= 8 for g in groups)  # no group mixes the two intents
    assert groups[0] == list(range(8))  # every "where is my card" phrasing in one group
    assert len(groups[1]) >= 5
