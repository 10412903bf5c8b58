"""Resolution figures on a hand-built store (built through the Store API under a fake clock) with the answers worked
out by hand in the comments."""

from __future__ import annotations

import datetime as dt
import json
import time

import pytest

from chatbot.config import AppConfig, StoreConfig
from chatbot.resolution import DEFINITIONS, Resolution, handoff_reason, is_thanks, word_distance
from chatbot.store import Store

T0 = dt.datetime(2026, 11, 1, tzinfo=dt.UTC).timestamp()
H, DAY = 3600.0, 86400.0
NOW = T0 + 20 * DAY
D1, D2 = "2026-11-01", "2026-11-02"


class Clock:
    def __init__(self):
        self.t = T0

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def clock(monkeypatch):
    c = Clock()
    monkeypatch.setattr(time, "time", c)
    return c


@pytest.fixture
def store(chatbot_home, clock, store_url):
    s = Store(StoreConfig(url=store_url)).warm_up()  # once on SQLite, once on PostgreSQL
    yield s
    s.close()


def answer(store, clock, at: float, faq: str, cid: str | None = None, **fields) -> str:
    """A customer question and the bot's sent answer resting on `faq`, at `at`."""
    clock.t = at
    cid = cid or store.create_conversation()
    fields = {"route": "answer", "faq_ids": [faq], "scores": [0.9], "language": "en", **fields}
    store.record_exchange(cid, f"question about {faq}", {"language": "en"}, f"answer from {faq}", fields)
    return cid


def draft(store, clock, at: float, faq: str, text: str) -> int:
    clock.t = at
    cid = store.create_conversation()
    _, _, draft_id = store.record_exchange(
        cid, f"question about {faq}", {"language": "en"}, "A person will confirm.",
        {"kind": "notice", "route": "draft", "faq_ids": [faq], "scores": [0.5]},
        draft={"text": text, "sources": [{"faq_id": faq, "score": 0.5}], "language": "en"},
    )  # fmt: skip
    return draft_id


@pytest.fixture
def figures(store, clock):
    """The hand-built month (see each line); `now` is T0 + 20 days, the period 30 days."""
    answer(store, clock, T0 - 11 * DAY, "A")  # before the period: counted nowhere
    c1 = answer(store, clock, T0 + 1 * H, "A")  # contained, durable, confirmed by 👍
    store.rate_as_customer(store.messages(c1)[-1].id, True)
    c2 = answer(store, clock, T0 + 2 * H, "A")  # contained, durable, confirmed by the thanks after it
    clock.t = T0 + 2 * H + 60
    store.add_message(c2, "user", "ok thanks a lot!")
    c3 = answer(store, clock, T0 + 3 * H, "B")  # not contained: asked again, answered from B, 2 h later
    answer(store, clock, T0 + 5 * H, "B", cid=c3)  # contained, durable
    c4 = answer(store, clock, T0 + 4 * H, "A")  # not contained: the customer asked for a person 10 min later
    clock.t = T0 + 4 * H + 600
    store.hand_off(c4, "the customer asked for a person", notice="A person will reply.")  # a routed handoff
    clock.t = T0 + 4 * H + 600 + 1800
    store.agent_reply(c4, "ann", "Ann here.")  # first human reply after 1800 s
    c5 = answer(store, clock, T0 + 6 * H, "B", rejected_text="Delivery is free.", rejection="unsupported")
    clock.t = T0 + 1 * DAY
    store.resolve(c5, "ann", "Closed.")
    clock.t = T0 + 3 * DAY + 6 * H
    store.reopen(c5, "ann")  # contained (after 24 h), not durable; a handoff on 2026-11-04, never answered

    approved = draft(store, clock, T0 + DAY + H, "A", "Track it in your account.")
    store.approve_draft(approved, "ann")
    edited = draft(store, clock, T0 + DAY + 2 * H, "A", "Track it in your account.")
    store.approve_draft(edited, "ann", "Track it in your account or by e-mail.")  # 4 words changed of 8
    rejected = draft(store, clock, T0 + DAY + 3 * H, "B", "Refunds take a year.")
    store.reject_draft(rejected, "ann", "wrong")  # a handoff, never answered

    clock.t = T0 + DAY + 4 * H
    c9 = store.create_conversation()
    store.record_exchange(c9, "do you sell boats?", {"language": "en"}, "A person will reply.",
                          {"kind": "notice", "route": "handoff"},
                          handoff_reason="no good source (best score 0.10 < 0.40)")  # fmt: skip
    clock.t = T0 + DAY + 6 * H
    store.agent_reply(c9, "ada", "No boats, sorry.")  # 7200 s

    answer(store, clock, T0 + 15 * DAY, "B")  # contained; too recent for durable
    answer(store, clock, NOW - H, "A")  # too recent for contained and durable; counts for confirmed
    clock.t = NOW
    return Resolution(store, AppConfig(), days=30, now=NOW).figures()


def test_contained(figures):
    f = figures["contained"]
    # answered c1 c2 c3a c3b c4 c5 (Nov 1) and Nov 16; the one an hour old is not decided yet
    assert (f["n"], f["value"]) == (7, 5 / 7)
    assert f["per_day"] == [{"day": D1, "n": 6, "value": 4 / 6}, {"day": "2026-11-16", "n": 1, "value": 1.0}]
    assert f["per_entry"] == [{"faq_id": "B", "n": 4, "value": 3 / 4}, {"faq_id": "A", "n": 3, "value": 2 / 3}]


def test_durable(figures):
    f = figures["durable"]  # the six of Nov 1: c5 was reopened on day 3
    assert (f["n"], f["value"]) == (6, 3 / 6)
    assert f["per_entry"] == [{"faq_id": "A", "n": 3, "value": 2 / 3}, {"faq_id": "B", "n": 3, "value": 1 / 3}]


def test_confirmed(figures):
    f = figures["confirmed"]  # the 👍 on c1 and the thanks after c2, of all eight answers
    assert (f["n"], f["value"]) == (8, 2 / 8)
    assert {e["faq_id"]: e["value"] for e in f["per_entry"]} == {"A": 2 / 4, "B": 0.0}


def test_handoffs_by_reason(figures):
    f = figures["handoffs"]
    # routed: 8 answers, c4's handoff notice, 3 draft notices, c9's handoff notice = 13
    assert (f["n"], f["value"]) == (13, 4 / 13)
    assert f["counts"] == {"handoffs": 4, "person": 1, "low_confidence": 1, "language": 0, "rejected_draft": 1,
                           "shadow": 0, "agent": 1, "other": 0, "unsupported_claim": 1}  # fmt: skip
    assert f["by_reason"]["person"] == 1 / 13 and f["by_reason"]["unsupported_claim"] == 1 / 13
    days = [(D1, 1), (D2, 2), ("2026-11-04", 1), ("2026-11-16", 0), ("2026-11-20", 0)]
    assert [(d["day"], d["counts"]["handoffs"]) for d in f["per_day"]] == days


def test_acceptance_and_edit_distance(figures):
    f = figures["acceptance"]
    assert (f["n"], f["value"]) == (3, 2 / 3)
    assert f["per_day"] == [{"day": D2, "n": 3, "value": 2 / 3}]
    assert f["per_entry"] == [{"faq_id": "A", "n": 2, "value": 1.0}, {"faq_id": "B", "n": 1, "value": 0.0}]
    e = figures["edit_distance"]
    assert (e["n"], e["value"], e["relative"]) == (1, 4, 0.5)


def test_first_human_reply(figures):
    f = figures["first_human_reply"]
    assert (f["n"], f["value"], f["median"], f["unanswered"]) == (2, 4500, 4500, 2)
    assert [(d["day"], d["value"]) for d in f["per_day"]] == [(D1, 1800), (D2, 7200)]


def test_every_figure_carries_its_definition(figures):
    assert list(figures) == list(DEFINITIONS)
    assert all(figures[name]["definition"] == DEFINITIONS[name] for name in DEFINITIONS)


def test_an_empty_store_has_no_values_and_bad_days_are_refused(store):
    figures = Resolution(store, AppConfig(), days=7).figures()
    assert all(f["value"] is None and f["n"] == 0 for f in figures.values())
    with pytest.raises(ValueError, match="days must be >= 1"):
        Resolution(store, AppConfig(), days=0)


@pytest.mark.parametrize(
    ("text", "thanks"),
    [("thanks!", True), ("ok that helped, thank you", True), ("that worked", True), ("merci beaucoup", True),
     ("thanks, but where is my parcel?", False), ("it did not help", False), ("and the refund?", False)],
)  # fmt: skip
def test_is_thanks(text, thanks):
    assert is_thanks(text) is thanks


@pytest.mark.parametrize(
    ("a", "b", "n"),
    [("a b c", "a b c", 0), ("a b c", "a x c", 1), ("a b", "a b c d", 2), ("", "a b", 2), ("a b c", "c b a", 2)],
)
def test_word_distance(a, b, n):
    assert word_distance(a, b) == n


@pytest.mark.parametrize(
    ("reason", "category"),
    [("the customer asked for a person", "person"), ("no good source (best score 0.10 < 0.40)", "low_confidence"),
     ("fi is not a model language and no FAQ answer is in it", "language"),
     ("draft rejected by ann: x", "rejected_draft"),
     ("taken by agent ann", "agent"), ("reopened by agent ann", "agent"), ("routing.mode = off: ...", "other")],
)  # fmt: skip
def test_handoff_reason(reason, category):
    assert handoff_reason(reason) == category


def test_chatbot_report_json_prints_the_figures_and_the_modes(figures, capsys, chatbot_home, store_url):
    from cli.main import main

    if store_url:  # the command reads the store that $CHATBOT_HOME/config.toml names
        (chatbot_home / "config.toml").write_text(f'[store]\nurl = "{store_url}"\n', encoding="utf-8")

    assert main(["report", "--json", "--days", "30"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["figures"]["contained"]["value"] == figures["contained"]["value"] == 5 / 7
    assert out["figures"]["acceptance"]["definition"] == DEFINITIONS["acceptance"]
    modes = {e["faq_id"]: e for e in out["autonomy"]}
    assert set(modes) == {"A", "B"}
    # A: approved, then edited (a correction) -> shadow; B: its draft rejected -> shadow
    assert [h["reason"] for h in modes["A"]["history"]] == ["demoted at once: draft #2 edited by ann"]
    assert modes["B"]["mode"] == "shadow"
    assert main(["report"]) == 0 and "contained" in capsys.readouterr().out
    assert main(["report", "--days", "0"]) == 2
    assert "--days must be >= 1" in capsys.readouterr().err
