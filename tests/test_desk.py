"""The support desk service: states, assignment, hand-back and resolve notices, safe review, the inbox's filters,
unread marker and typing, business hours in the handoff notice (scripted LM, hash embedder, real store)."""

from __future__ import annotations

import datetime as dt
import time

import pytest

from chatbot.config import AppConfig, BusinessHours, DeskConfig
from chatbot.desk import Desk, DeskError, StaleDraftError, state_of
from chatbot.notices import EN, TABLES, handoff_notice
from chatbot.store import Store


@pytest.fixture
def desk(engine):
    return Desk(engine.store, engine.config)


def drafted(engine, text: str = "How do I get a refund?") -> tuple[str, int]:
    """A conversation whose question waits as a draft; returns its id and the draft's id."""
    engine.config.routing.mode = "draft_only"
    cid = engine.start_conversation()
    reply = engine.reply(cid, text)
    engine.config.routing.mode = "auto"
    return cid, reply.draft_id


def customer_texts(engine, cid: str) -> list[str]:
    return [m.text for m in engine.store.messages(cid) if m.role != "user"]


@pytest.mark.parametrize(
    "status, assignee, draft_id, state",
    [
        ("open", None, None, "bot"),
        ("open", None, 3, "waiting"),
        ("handoff", None, None, "waiting"),
        ("handoff", "ann", None, "with_agent"),
        ("handoff", "ann", 3, "with_agent"),
        ("closed", "ann", None, "resolved"),
        ("closed", None, 3, "resolved"),
    ],
)
def test_state_of(status, assignee, draft_id, state):
    assert state_of(status, assignee, draft_id) == state


def test_a_support_day_through_the_service(engine, desk):
    cid = engine.start_conversation()
    assert engine.reply(cid, "How do I track my order?").route == "answer"
    assert [i.state for i in desk.inbox() if i.conversation_id == cid] == ["bot"]
    engine.request_human(cid)
    (item,) = desk.inbox(state="waiting")
    assert item.conversation_id == cid and item.unread and item.assignee is None

    desk.assign(cid, "ann")
    view = desk.view(cid, agent="ann")
    assert (view.state, view.assignee) == ("with_agent", "ann")
    assert not desk.inbox()[0].unread  # opened by an agent
    desk.reply(cid, "ann", "Hi, Ann here. Your parcel left today.")
    # the bot stays silent while the agent has the conversation
    silent = engine.reply(cid, "Thanks! And when will it arrive?")
    assert silent.text == "" and customer_texts(engine, cid)[-1] == "Hi, Ann here. Your parcel left today."
    assert desk.inbox()[0].unread  # the customer wrote after the agent looked

    desk.resolve(cid, "ann")
    assert desk.view(cid).state == "resolved"
    assert customer_texts(engine, cid)[-1] == EN["resolved"]
    with pytest.raises(DeskError, match="resolved: reopen it first"):
        desk.reply(cid, "ann", "one more thing")
    desk.reopen(cid, "ada")
    assert (desk.view(cid).state, desk.view(cid).assignee) == ("with_agent", "ada")
    desk.hand_back(cid, "ada")
    assert desk.view(cid).state == "bot" and customer_texts(engine, cid)[-1] == EN["handback"]
    assert engine.reply(cid, "How do I track my order?").route == "answer"  # the bot answers again


def test_assigning_a_bot_conversation_silences_the_bot(engine, desk, scripted_backend):
    cid = engine.start_conversation()
    engine.reply(cid, "How do I track my order?")
    desk.assign(cid, "ann")
    before = len(scripted_backend.requests)
    assert engine.reply(cid, "How do I cancel my order?").text == ""
    assert len(scripted_backend.requests) == before and not engine.store.pending_drafts()


def test_a_reply_assigns_an_unassigned_conversation(engine, desk):
    cid = engine.start_conversation()
    engine.request_human(cid)
    desk.reply(cid, "ann", "Hello!")
    assert desk.view(cid).assignee == "ann"
    desk.reply(cid, "ada", "Ann is on a break; I can help too.")  # someone else helping keeps the assignee
    assert desk.view(cid).assignee == "ann"


def test_the_customer_is_told_in_their_language(engine, desk):
    cid = engine.start_conversation()
    engine.store.set_language(cid, "zh")
    engine.request_human(cid)
    desk.hand_back(cid, "ann")
    desk.resolve(cid, "ann")
    assert customer_texts(engine, cid)[-2:] == [TABLES["zh"]["handback"], TABLES["zh"]["resolved"]]


@pytest.mark.parametrize(
    "action, needle",
    [
        (lambda d, cid: d.hand_back(cid, "ann"), "already with the bot"),
        (lambda d, cid: d.reopen(cid, "ann"), "not resolved"),
        (lambda d, cid: d.reply(cid, "ann", "  "), "empty"),
        (lambda d, cid: d.assign("nope", "ann"), "unknown conversation 'nope'"),
        (lambda d, cid: d.inbox(state="lost"), "unknown state 'lost'"),
    ],
)
def test_wrong_actions_are_refused_with_the_reason(engine, desk, action, needle):
    cid = engine.start_conversation()
    engine.reply(cid, "How do I track my order?")
    with pytest.raises(DeskError, match=needle):
        action(desk, cid)


def test_two_tab_race_refuses_the_stale_click_and_never_sends_another_draft(engine, desk):
    first, draft_2 = drafted(engine, "How do I get a refund?")
    second, draft_5 = drafted(engine, "How do I cancel my order?")
    tab_1 = desk.view(first, agent="ann").draft
    tab_2 = desk.view(first, agent="ada").draft
    assert tab_1.id == tab_2.id == draft_2

    desk.approve(tab_1.id, tab_1.version, "ann")
    with pytest.raises(StaleDraftError, match=f"draft #{draft_2} changed since you opened it .*approved by ann"):
        desk.approve(tab_2.id, tab_2.version, "ada")
    with pytest.raises(StaleDraftError):
        desk.approve(tab_2.id, tab_2.version, "ada", "my edit")
    with pytest.raises(StaleDraftError):
        desk.reject(tab_2.id, tab_2.version, "ada", "wrong")
    assert engine.store.draft(draft_5).state == "pending"  # #5 was not sent
    assert [m.role for m in engine.store.messages(second)] == ["user", "bot"]
    assert sum(m.role == "agent" for m in engine.store.messages(first)) == 1


def test_review_needs_the_version_shown(engine, desk):
    cid, draft_id = drafted(engine)
    draft = desk.view(cid).draft
    for version in ("", "2:pending:0", draft.version + "x"):
        with pytest.raises(StaleDraftError):
            desk.approve(draft_id, version, "ann")
    with pytest.raises(DeskError, match="unknown draft 999"):
        desk.approve(999, draft.version, "ann")
    with pytest.raises(DeskError, match="edited reply is empty"):
        desk.approve(draft_id, draft.version, "ann", "  ")
    with pytest.raises(DeskError, match="give a reason"):
        desk.reject(draft_id, draft.version, "ann", " ")
    desk.approve(draft_id, draft.version, "ann", "Refunds take 5 days.")
    assert engine.store.draft(draft_id).state == "edited"
    assert customer_texts(engine, cid)[-1] == "Refunds take 5 days."


def test_drafts_are_inbox_items_with_their_context_and_sources(engine, desk):
    cid, draft_id = drafted(engine)
    (item,) = desk.inbox(state="waiting")
    assert (item.conversation_id, item.draft_id) == (cid, draft_id)
    draft = desk.view(cid).draft
    assert draft.context[-1].text == "How do I get a refund?"
    assert draft.sources and draft.sources[0]["faq_id"]
    desk.reject(draft_id, draft.version, "ann", "needs the new policy")
    assert desk.view(cid).draft is None and desk.view(cid).state == "waiting"  # now a handoff


def test_inbox_search_and_filter(engine, desk):
    refund = engine.start_conversation()
    engine.reply(refund, "How do I get a refund?")
    track = engine.start_conversation()
    engine.reply(track, "How do I track my order?")
    engine.request_human(track)
    assert [i.conversation_id for i in desk.inbox(search="REFUND")] == [refund]
    assert [i.conversation_id for i in desk.inbox(search="100%_")] == []  # LIKE wildcards are literal
    assert [i.conversation_id for i in desk.inbox()] == [track, refund]  # waiting first
    assert [i.conversation_id for i in desk.inbox(state="bot")] == [refund]
    assert desk.counts() == {"bot": 1, "waiting": 1, "with_agent": 0, "resolved": 0}
    assert engine.start_conversation() not in [i.conversation_id for i in desk.inbox()]  # nothing said yet
    pressed = engine.start_conversation()
    engine.request_human(pressed)  # "talk to a person" before writing anything
    (first,) = desk.inbox(state="waiting")[:1]
    assert (first.conversation_id, first.customer_text, first.unread) == (pressed, "", False)


def test_waiting_conversations_are_never_cut_off_and_counts_see_everything(engine, desk):
    waiting = engine.start_conversation()
    engine.request_human(waiting)
    for _ in range(3):
        engine.reply(engine.start_conversation(), "How do I track my order?")
    assert [i.conversation_id for i in desk.inbox(limit=2)][0] == waiting  # the oldest, yet listed first
    assert desk.counts() == {"bot": 3, "waiting": 1, "with_agent": 0, "resolved": 0}
    assert sum(desk.counts().values()) == len(desk.inbox(limit=100))


def test_typing_is_seen_by_the_other_agents_for_a_while(engine, desk, monkeypatch):
    cid = engine.start_conversation()
    engine.request_human(cid)
    desk.typing(cid, "ann")
    assert desk.view(cid, agent="ada").typing == ("ann",)
    assert desk.view(cid, agent="ann").typing == ()
    clock = time.time() + engine.config.desk.typing_s + 1
    monkeypatch.setattr("chatbot.desk.time.time", lambda: clock)
    assert desk.view(cid, agent="ada").typing == ()
    desk.typing(cid, "ann")
    desk.reply(cid, "ann", "Sent.")  # sending ends typing
    assert desk.typists(cid) == ()


def test_typing_on_one_worker_is_seen_on_another(engine, desk):
    other = Desk(Store(engine.config.store).warm_up(), engine.config)  # another process on the same database
    cid = engine.start_conversation()
    engine.request_human(cid)
    desk.typing(cid, "ann")
    assert other.view(cid, agent="ada").typing == ("ann",)
    other.reply(cid, "ann", "Sent from the other worker.")
    assert desk.typists(cid) == ()
    other.store.close()


# -- business hours --------------------------------------------------------------------------------------------
SATURDAY_NOON = dt.datetime(2026, 12, 5, 12, 0, tzinfo=dt.UTC)
FRIDAY_NOON = dt.datetime(2026, 12, 4, 12, 0, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    "text, zone, now, opening",
    [
        ("Mon-Fri 09:00-17:00", "UTC", SATURDAY_NOON, "2026-12-07 09:00"),
        ("Mon-Fri 09:00-17:00", "UTC", FRIDAY_NOON, None),
        ("Mon-Fri 09:00-17:00", "UTC", dt.datetime(2026, 12, 4, 17, 0, tzinfo=dt.UTC), "2026-12-07 09:00"),
        ("Mon-Fri 09:00-17:00", "UTC", dt.datetime(2026, 12, 3, 6, 0, tzinfo=dt.UTC), "2026-12-03 09:00"),
        ("Sat,Sun 10:00-12:00", "UTC", FRIDAY_NOON, "2026-12-05 10:00"),
        ("Fri-Mon 10:00-12:00", "UTC", dt.datetime(2026, 12, 8, 12, 0, tzinfo=dt.UTC), "2026-12-11 10:00"),
        ("Mon-Fri 09:00-17:00", "Asia/Tokyo", FRIDAY_NOON, "2026-12-07 09:00"),  # 21:00 on Friday in Tokyo
        ("", "UTC", SATURDAY_NOON, None),
    ],
)
def test_business_hours(text, zone, now, opening):
    hours = BusinessHours.parse(text, zone)
    found = hours.next_opening(now)
    assert (found.strftime("%Y-%m-%d %H:%M") if found else None) == opening
    assert hours.is_open(now) == (opening is None)


@pytest.mark.parametrize(
    "hours, zone, needle",
    [
        ("weekdays 9-5", "UTC", "is not understood"),
        ("Mon-Fri 09:00", "UTC", "is not understood"),
        ("Mon-Fri 17:00-09:00", "UTC", "closing time must come after"),
        ("Mon-Fri 09:00-17:00", "Mars/Olympus", "not a time zone name"),
    ],
)
def test_bad_business_hours_say_how_to_write_them(hours, zone, needle):
    with pytest.raises(ValueError, match=needle):
        DeskConfig(business_hours=hours, timezone=zone)


def test_bad_business_hours_in_a_config_file_are_an_error(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text('[desk]\nbusiness_hours = "Mon-Fri 9-5"\n', encoding="utf-8")
    with pytest.raises(ValueError, match="desk.business_hours"):
        AppConfig.load(path)
    path.write_text('[desk]\nbusiness_hours = "Mon-Fri 09:00-17:00"\ntimezone = "Europe/Berlin"\n', encoding="utf-8")
    assert AppConfig.load(path).desk.hours.timezone == "Europe/Berlin"


def test_outside_business_hours_the_handoff_says_when_a_person_answers(engine):
    hours = BusinessHours.parse("Mon-Fri 09:00-17:00", "UTC")
    assert handoff_notice("en", hours, SATURDAY_NOON) == EN["handoff_later"].format(when="2026-12-07 09:00 (UTC)")
    assert handoff_notice("de", hours, SATURDAY_NOON).endswith("ab 2026-12-07 09:00 (UTC).")
    assert handoff_notice("en", hours, FRIDAY_NOON) == EN["handoff"]

    now = dt.datetime.now(dt.UTC)
    closed_day = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")[(now.weekday() + 3) % 7]  # never today
    engine.config.desk = DeskConfig(business_hours=f"{closed_day} 09:00-17:00", timezone="UTC")
    expected = handoff_notice("en", engine.config.desk.hours, now)
    assert "Our team is away right now" in expected
    cid = engine.start_conversation()
    assert engine.request_human(cid).text == expected
    asked = engine.reply(engine.start_conversation(), "I want to talk to a person")
    assert asked.route == "handoff" and asked.text == expected
