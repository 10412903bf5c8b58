"""Learned phrasings: the entry an agent's reply is drawn from, found from the texts; the customer's question becomes
its phrasing through the admin page's validated build; nothing is learned from a reply no entry supports (a
handed-off question with no source goes to the gap suggestions). Demo shop FAQ, hash embedder, scripted LM."""

from __future__ import annotations

import pytest

from chatbot.config import LearningConfig
from chatbot.followup import read_in_context
from chatbot.phrasings import DroppedPhrasings, Learned, ReviewedReply, learn, place, with_phrasings

QUESTION = "can I track my order before it ships today?"
FROM_PERIOD = "Orders placed before 2 pm ship the same day, and standard delivery then takes 3-5 business days."
"""Only the `delivery_period` entry says it (`delivery_options` has the delivery times, not the 2 pm cut-off)."""


@pytest.fixture
def entries():
    from knowledge_base.kb import demo_faq_path
    from knowledge_base.loaders import load_faq

    return load_faq(demo_faq_path())


@pytest.mark.parametrize(
    ("reply", "faq_id"),
    [
        (FROM_PERIOD, "delivery_period"),
        ("Press Forgot password on the sign-in page; the reset link works for 1 hour.", "recover_password"),
        ("Standard delivery takes 3-5 business days.", None),  # two entries say it: neither clearly
        ("Please hold on, a colleague in the warehouse will check it for you.", None),  # no entry says it
        ("Orders placed before 2 pm ship the same day and arrive within 2 hours by drone.", None),  # a new duration
        ("Yes.", None),  # no words of its own
        ("", None),
    ],
)
def test_place_finds_the_one_entry_that_clearly_supports_a_reply(entries, reply, faq_id):
    assert place(reply, entries, LearningConfig(), [QUESTION]).faq_id == faq_id


def test_words_the_customer_said_are_no_support(entries):
    # the reply only echoes the customer: no words of its own are left, so it supports nothing
    echo = "I forgot my password and the reset link"
    assert place(echo, entries, LearningConfig(), [echo]).faq_id is None
    assert place(echo, entries, LearningConfig()).faq_id == "recover_password"


def test_a_follow_up_is_learned_with_the_conversation_topic():
    assert read_in_context(["I forgot my password", "how long is the link valid?"]) == (
        "I forgot my password how long is the link valid?"
    )
    assert read_in_context(["I forgot my password", "do you sell gift cards?"]) == "do you sell gift cards?"
    with pytest.raises(ValueError, match="customer's messages"):
        read_in_context([])


def test_learn_groups_by_entry_and_phrasing_and_skips_known_and_dropped(entries):
    def reviewed(cid: str, question: str, reply: str, drafted: tuple[str, ...] = ("track_order",)) -> ReviewedReply:
        return ReviewedReply(cid, question, reply, (question,), drafted, "en")

    replies = [
        reviewed("c1", QUESTION, FROM_PERIOD),
        reviewed("c2", QUESTION.upper(), FROM_PERIOD, ("delivery_period",)),  # the same phrasing in other case
        reviewed("c3", "How long does delivery take?", FROM_PERIOD),  # the entry's own question: known
        reviewed("c4", "parcel tomorrow?", "Please hold on, a colleague will check."),
        reviewed("c5", "x" * 1001, FROM_PERIOD),  # longer than an FAQ question may be
    ]
    (item,) = learn(replies, entries, LearningConfig())
    assert item == Learned("delivery_period", QUESTION, 1.0, ("c1", "c2"), ("track_order",))
    assert learn(replies, entries, LearningConfig(), dropped={("delivery_period", QUESTION.casefold())}) == []
    assert learn(replies, entries, LearningConfig(enabled=False)) == []

    taught = with_phrasings(entries, [item])
    period = next(e for e in taught if e.id == "delivery_period")
    assert period.alt_questions[-1] == QUESTION and len(taught) == len(entries)
    assert with_phrasings(taught, [item]) == taught  # added once
    with pytest.raises(ValueError, match="no FAQ entry 'gone'"):
        with_phrasings(entries, [Learned("gone", "q", 1.0, ("c",), ())])


def test_dropped_phrasings_file_round_trips_and_names_a_bad_line(tmp_path):
    dropped = DroppedPhrasings(tmp_path / "learning" / "dropped.jsonl")
    assert dropped.load() == set()
    dropped.drop("delivery_period", "Will It Come?")
    assert dropped.load() == {("delivery_period", "will it come?")}
    with open(dropped.path, "a", encoding="utf-8") as handle:
        handle.write("not json\n")
    with pytest.raises(ValueError, match="dropped.jsonl:2"):
        dropped.load()


def test_bad_learning_config_is_refused():
    bad = [({"apply": "always"}, "learning.apply"), ({"min_support": 0.0}, "learning.min_support"),
           ({"min_margin": 1.0}, "learning.min_margin"), ({"min_words": 0}, "learning.min_words")]  # fmt: skip
    for kwargs, flag in bad:
        with pytest.raises(ValueError, match=flag):
            LearningConfig(**kwargs)


def test_config_file_sets_learning(tmp_path):
    from chatbot.config import AppConfig

    path = tmp_path / "config.toml"
    path.write_text('[learning]\napply = "auto"\nmin_support = 0.7\n', encoding="utf-8")
    config = AppConfig.load(path)
    assert config.learning.apply == "auto" and config.learning.min_support == 0.7
    path.write_text("[learning]\nminimum = 1\n", encoding="utf-8")
    with pytest.raises(ValueError, match="minimum"):
        AppConfig.load(path)


# -- from the store, through the admin page ---------------------------------------------------------------------------
def _edited_draft(engine, question: str, text: str) -> tuple[str, tuple[str, ...]]:
    """The bot drafts a reply to `question` (or hands it off); the agent sends `text`. Returns (conversation, the
    draft's sources)."""
    cid = engine.start_conversation()
    reply = engine.reply(cid, question)
    if reply.route == "draft":
        engine.store.approve_draft(reply.draft_id, "ann", text=text)
    else:
        engine.store.agent_reply(cid, "ann", text)
    return cid, tuple(h.entry.id for h in reply.sources) if reply.route == "draft" else ()


def test_an_agent_reply_from_another_entry_teaches_that_entry_through_the_admin_page(engine):
    from chatbot.gaps import answered_gaps
    from ui.admin import AdminPage

    engine.config.routing.mode = "draft_only"
    page = AdminPage(engine)
    cid, drafted = _edited_draft(engine, QUESTION, FROM_PERIOD)
    assert drafted and drafted[0] == "track_order", "the draft should rest on another entry (entry A)"
    # replies no entry supports teach no phrasing; those to questions with no source are gaps
    lost, _ = _edited_draft(engine, "is my parcel lost?", "Please hold on, a colleague in the warehouse will check.")
    gap = engine.start_conversation()
    handed = engine.reply(gap, "Do you buy back old sofas for cash?")
    assert handed.route == "handoff" and not handed.sources
    engine.store.agent_reply(gap, "ann", "We do not buy furniture back, sorry.")

    (item,) = page.learned_phrasings()
    assert (item.faq_id, item.phrasing, item.conversations) == ("delivery_period", QUESTION, (cid,))
    assert item.drafted_from == (drafted[0],)
    assert page.phrasings_table([item])[0][:2] == ["delivery_period", QUESTION]
    assert {q.conversation_id for q in answered_gaps(engine.store)} == {lost, gap}

    status = page.keep_phrasing(page.phrasing_label(item))
    assert status.startswith("✅"), status
    assert QUESTION in page.kb.entry("delivery_period").alt_questions
    again = engine.reply(engine.start_conversation(), QUESTION)
    assert again.sources[0].entry.id == "delivery_period"  # retrieval now finds where agents answered it
    assert page.learned_phrasings() == []  # kept: no longer offered
    assert page.keep_phrasing(page.phrasing_label(item)).startswith("❌ No learned phrasing")
    assert page.keep_phrasing(None) == "Choose a learned phrasing."


def test_a_dropped_phrasing_is_not_offered_again_and_auto_keeps_at_refresh(engine):
    from ui.admin import AdminPage

    engine.config.routing.mode = "draft_only"
    page = AdminPage(engine)
    _edited_draft(engine, QUESTION, FROM_PERIOD)
    (item,) = page.learned_phrasings()
    before = page.kb.current_version
    assert page.drop_phrasing(page.phrasing_label(item)).startswith("✅ Dropped")
    assert page.learned_phrasings() == [] and page.kb.current_version == before  # the FAQ is unchanged
    assert page.drop_phrasing(page.phrasing_label(item)).startswith("❌")

    engine.config.learning.apply = "auto"
    question = "Will my order ship today if I order at noon?"
    _edited_draft(engine, question, FROM_PERIOD)
    learned, status = page.refresh_phrasings()
    assert status.startswith("✅") and learned == []
    assert question in page.kb.entry("delivery_period").alt_questions
    assert page.kb.current_version != before


def test_a_handed_off_question_answered_from_an_entry_is_a_learned_phrasing_not_a_gap(engine):
    from chatbot.gaps import answered_gaps
    from ui.admin import AdminPage

    engine.config.gaps.min_questions = 1
    page = AdminPage(engine)
    gap = engine.start_conversation()
    handed = engine.reply(gap, "Do you buy back old sofas for cash?")
    assert handed.route == "handoff" and not handed.sources
    # the agent answers from the delivery entry: the question is where that entry's answer was wanted
    engine.store.agent_reply(gap, "ann", FROM_PERIOD)
    assert [q.conversation_id for q in answered_gaps(engine.store)] == [gap]
    (item,) = page.learned_phrasings()
    assert (item.faq_id, item.conversations) == ("delivery_period", (gap,))
    assert page.gap_suggestions() == []  # offered once, as a phrasing, not also as a new entry
    other = engine.start_conversation()
    engine.reply(other, "Do you buy back old sofas for cash?")
    engine.store.agent_reply(other, "ann", "We do not buy furniture back, sorry.")
    (suggestion,) = page.gap_suggestions()
    assert suggestion.conversations == (other,)


def test_the_learned_list_is_worked_out_again_only_when_something_it_rests_on_changed(engine, monkeypatch):
    import chatbot.phrasings
    from ui.admin import AdminPage

    calls = []
    learn = chatbot.phrasings.learn
    monkeypatch.setattr(chatbot.phrasings, "learn", lambda *a, **k: calls.append(1) or learn(*a, **k))
    engine.config.routing.mode = "draft_only"
    page = AdminPage(engine)
    _edited_draft(engine, QUESTION, FROM_PERIOD)
    (item,) = page.learned_phrasings()
    assert page.learned_phrasings() == [item] and page.phrasings_table(page.learned_phrasings())
    assert len(calls) == 1  # a refresh, then keep/drop looking the item up: read once
    question = "Will my order ship today if I order at noon?"
    _edited_draft(engine, question, FROM_PERIOD)  # an agent sent another reply
    assert {i.phrasing for i in page.learned_phrasings()} == {QUESTION, question} and len(calls) == 2
    assert page.drop_phrasing(page.phrasing_label(item)).startswith("✅")
    assert [i.phrasing for i in page.learned_phrasings()] == [question] and len(calls) == 3
    assert page.keep_phrasing(f"delivery_period: {question}").startswith("✅") and len(calls) == 3
    assert page.learned_phrasings() == [] and len(calls) == 4  # the keep looked its item up; a new FAQ version
