"""The promotion rule (pure) and its config."""

import pytest

from chatbot.autonomy import ceiling, evidence, next_mode, settle
from chatbot.config import AutonomyConfig

CFG = AutonomyConfig(min_drafts=20, min_unedited=0.9)


@pytest.mark.parametrize(
    ("current", "outcomes", "expected"),
    [
        ("draft", ["approved"] * 19, "draft"),  # one short of min_drafts
        ("draft", ["approved"] * 20, "auto"),
        ("draft", ["approved"] * 20 + ["thumbs_up"] * 5, "auto"),  # thumbs up are not drafts
        ("draft", ["approved"] * 30 + ["edited"], "shadow"),  # a correction demotes at once
        ("draft", ["approved"] * 30 + ["rejected"], "shadow"),
        ("auto", ["thumbs_down"], "draft"),
        ("auto", ["approved"] * 50, "auto"),  # nothing above auto
        ("shadow", ["approved"] * 18 + ["edited"] * 2, "draft"),  # 18/20 = 0.9 >= 0.9
        ("shadow", ["approved"] * 17 + ["edited"] * 3, "shadow"),  # 17/20 < 0.9
        ("shadow", ["approved"] * 25 + ["thumbs_down"], "shadow"),  # a 👎 blocks the promotion
        ("shadow", ["rejected"] * 5, "shadow"),  # nothing below shadow
    ],
)
def test_next_mode(current, outcomes, expected):
    assert next_mode(current, outcomes, CFG) == expected


def test_settle_restarts_the_evidence_at_each_change():
    outcomes = ["approved"] * 20 + ["thumbs_down"] + ["approved"] * 19 + ["approved"]
    # 20 approvals: draft -> auto (index 19); the 👎: auto -> draft (20); 20 more approvals: draft -> auto (40)
    assert settle("draft", outcomes, CFG) == [(19, "auto"), (20, "draft"), (40, "auto")]
    assert settle("draft", ["approved"] * 5, CFG) == []


def test_evidence_counts():
    ev = evidence(["approved", "approved", "edited", "rejected", "thumbs_down", "thumbs_up"])
    assert ev == {"drafts": 4, "unedited": 2, "unedited_share": 0.5, "corrections": 2, "thumbs_down": 1}


@pytest.mark.parametrize(
    ("mode", "routing", "expected"),
    [("auto", "auto", "auto"), ("auto", "draft_only", "draft"), ("shadow", "draft_only", "shadow"),
     ("draft", "off", "shadow"), ("draft", "auto", "draft")],
)  # fmt: skip
def test_ceiling(mode, routing, expected):
    assert ceiling(mode, routing) == expected


def test_bad_input_says_what_is_allowed():
    with pytest.raises(ValueError, match="unknown review outcome.*'liked'"):
        next_mode("draft", ["approved", "liked"], CFG)
    with pytest.raises(ValueError, match="unknown autonomy mode 'manual'"):
        next_mode("manual", [], CFG)
    with pytest.raises(ValueError, match="autonomy.min_unedited"):
        AutonomyConfig(min_unedited=90)
    with pytest.raises(ValueError, match="autonomy.min_drafts"):
        AutonomyConfig(min_drafts=0)


# -- the store-backed modes, the engine and the desk (scripted LM, hash embedder, real store) -----------------------

TRACK = "How do I track my order?"


@pytest.fixture
def autonomous(engine):
    engine.config.autonomy = AutonomyConfig(enabled=True, min_drafts=3, min_unedited=0.9)
    return engine


@pytest.fixture
def desk(autonomous):
    from chatbot.desk import Desk

    return Desk(autonomous.store, autonomous.config)


def top_entry(engine, text: str = TRACK) -> str:
    engine.config.autonomy.enabled = False
    cid = engine.start_conversation()
    faq_id = engine.reply(cid, text).sources[0].entry.id
    engine.config.autonomy.enabled = True
    return faq_id


def ask(engine, text: str = TRACK):
    return engine.reply(engine.start_conversation(), text)


def test_a_new_entry_starts_in_draft_and_the_engine_drafts_its_answers(autonomous):
    reply = ask(autonomous)
    assert reply.route == "draft" and reply.draft_id is not None
    assert "draft mode" in reply.reason
    autonomous.config.autonomy.enabled = False  # off: the routing mode alone decides, as before
    assert ask(autonomous).route == "answer"


def test_pinned_modes_and_the_routing_ceiling(autonomous, desk):
    faq_id = top_entry(autonomous)
    autonomous.autonomy.pin(faq_id, "auto", "root")
    assert ask(autonomous).route == "answer"
    autonomous.config.routing.mode = "draft_only"  # the global mode stays the ceiling
    assert ask(autonomous).route == "draft"
    assert autonomous.autonomy.mode(faq_id) == "draft"
    autonomous.config.routing.mode = "auto"

    autonomous.autonomy.pin(faq_id, "shadow", "root")
    reply = ask(autonomous)
    assert reply.route == "handoff" and reply.draft_text and reply.draft_id is not None  # the agent's suggestion
    assert autonomous.store.get_conversation(reply.conversation_id).status == "handoff"
    desk.reply(reply.conversation_id, "ann", "Ann here: your parcel is on its way.")  # the agent writes their own
    assert autonomous.store.draft(reply.draft_id).state == "rejected"
    assert autonomous.autonomy.mode(faq_id) == "shadow"  # pinned: the rejection does not move it

    autonomous.autonomy.pin(faq_id, None, "root")
    (row,) = autonomous.autonomy.overview([faq_id])
    assert row["mode"] == "shadow" and not row["pinned"] and row["evidence"]["drafts"] == 0
    assert [h["reason"] for h in row["history"]] == [
        "pinned at auto by root",
        "pinned at shadow by root",
        "unpinned by root: the rule applies again",
    ]


def test_reviews_promote_and_a_thumbs_down_or_an_edit_demotes(autonomous, desk):
    faq_id = top_entry(autonomous)
    for _ in range(3):
        draft = autonomous.store.draft(ask(autonomous).draft_id)
        desk.approve(draft.id, draft.version, "ann")
    assert autonomous.autonomy.mode(faq_id) == "auto"
    sent = ask(autonomous)
    assert sent.route == "answer"

    autonomous.store.rate_as_customer(sent.message_id, False)
    assert autonomous.autonomy.mode(faq_id) == "draft"
    draft = autonomous.store.draft(ask(autonomous).draft_id)
    desk.approve(draft.id, draft.version, "ann", "You can track it from the link in your e-mail.")
    history = autonomous.autonomy.history(faq_id)
    assert [c.mode for c in history] == ["auto", "draft", "shadow"]
    assert history[0].reason.startswith("promoted: 3 of 3 reviewed drafts approved unedited")
    assert history[1].reason == f"demoted at once: 👎 on message #{sent.message_id}"
    assert history[2].reason == f"demoted at once: draft #{draft.id} edited by ann"
    assert ask(autonomous).route == "handoff"  # shadow: an agent writes the reply


def test_the_evidence_of_one_entry_leaves_others_alone(autonomous, desk):
    faq_id = top_entry(autonomous)
    other = top_entry(autonomous, "How do I get a refund?")
    assert other != faq_id
    draft = autonomous.store.draft(ask(autonomous).draft_id)
    desk.reject(draft.id, draft.version, "ann", "wrong order number")
    assert autonomous.autonomy.mode(faq_id) == "shadow"
    assert autonomous.autonomy.mode(other) == "draft" and autonomous.autonomy.history(other) == []


def test_pinning_a_bad_mode_is_refused_and_nothing_recorded(autonomous):
    with pytest.raises(ValueError, match="unknown autonomy mode 'always'"):
        autonomous.autonomy.pin("faq-1", "always", "root")
    assert autonomous.autonomy.history("faq-1") == []


@pytest.mark.parametrize("faq_id", ["track_order", "50%_off"])  # LIKE's wildcards in an id match only themselves
def test_the_rule_over_the_store_on_both_databases(chatbot_home, store_url, faq_id):
    from chatbot.autonomy import Autonomy
    from chatbot.config import AppConfig, StoreConfig
    from chatbot.store import Store

    store = Store(StoreConfig(url=store_url)).warm_up()
    config = AppConfig()
    config.autonomy = AutonomyConfig(enabled=True, min_drafts=2)
    autonomy = Autonomy(store, config)
    lookalike = faq_id.replace("_", "x").replace("%", "y")  # would match an unescaped pattern
    sent = []
    for entry in (faq_id, faq_id, lookalike):
        cid = store.create_conversation()
        _, _, draft_id = store.record_exchange(
            cid, "where is my order?", {"language": "en"}, "A person will confirm.",
            {"kind": "notice", "route": "draft", "faq_ids": [entry], "scores": [0.5]},
            draft={"text": "Track it in your account.", "sources": [{"faq_id": entry, "score": 0.5}]},
        )  # fmt: skip
        sent.append(store.approve_draft(draft_id, "ann"))
    assert [e.outcome for e in autonomy.evidence_since(faq_id)] == ["approved", "approved"]
    assert autonomy.mode(faq_id) == "auto" and autonomy.mode(lookalike) == "draft"
    store.rate_as_customer(sent[0], False)
    assert autonomy.mode(faq_id) == "draft"
    assert autonomy.known_entries() == sorted({faq_id, lookalike})
    store.close()
