"""The engine end to end with the scripted LM, the hash embedder and a real store: routes, streaming, recording."""

from __future__ import annotations

import threading

import pytest

from chatbot.engine import EngineNotReadyError, ReplyStream


def test_answer_streams_a_grounded_reply_and_records_it(engine):
    cid = engine.start_conversation()
    stream = engine.stream(cid, "How do I get a refund?")
    assert isinstance(stream, ReplyStream)
    pieces = list(stream)
    reply = stream.reply
    assert reply.route == "answer" and reply.grounded and not reply.fallback
    assert "".join(pieces).strip() == reply.text
    assert "30 days" in reply.text
    assert reply.sources[0].entry.id == "get_refund"
    assert reply.index_version == engine.kb.current_version
    messages = engine.store.messages(cid)
    assert [m.role for m in messages] == ["user", "bot"]
    assert messages[1].id == reply.message_id and messages[1].route == "answer"
    assert messages[1].faq_ids[0] == "get_refund" and messages[1].index_version == reply.index_version
    assert set(reply.timings) >= {"language", "retrieve", "ttft", "generate", "total"}


def test_invented_fact_falls_back_to_the_faq_answer_and_never_streams_it(engine, scripted_backend):
    scripted_backend.queue("You can return items within 45 days of delivery, no questions asked.")
    cid = engine.start_conversation()
    stream = engine.stream(cid, "How do I get a refund?")
    shown = "".join(stream)
    reply = stream.reply
    assert "45" not in shown
    assert reply.fallback and reply.grounded
    assert reply.text == reply.sources[0].entry.answer
    assert engine.store.messages(cid)[-1].fallback


def test_drift_from_the_source_falls_back(engine, scripted_backend):
    scripted_backend.queue("Our cafeteria serves pizza and pasta on weekdays, enjoy your lunch break with friends.")
    reply = engine.reply(engine.start_conversation(), "How do I get a refund?")
    assert reply.fallback and reply.text == reply.sources[0].entry.answer


def test_draft_route_holds_the_reply_for_an_agent(engine, app_config):
    app_config.routing.mode = "draft_only"
    cid = engine.start_conversation()
    stream = engine.stream(cid, "How do I get a refund?")
    shown = "".join(stream)
    reply = stream.reply
    assert reply.route == "draft" and reply.draft_id is not None
    assert "30 days" not in shown and "confirm" in shown
    pending = engine.store.pending_drafts()
    assert [d.id for d in pending] == [reply.draft_id]
    assert "30 days" in pending[0].text and pending[0].context[-1].text == "How do I get a refund?"
    engine.store.approve_draft(reply.draft_id, "ann")
    assert engine.store.messages(cid)[-1].role == "agent"


def test_no_good_source_hands_off(engine, scripted_backend):
    cid = engine.start_conversation()
    reply = engine.reply(cid, "What is the airspeed velocity of an unladen swallow?")
    assert reply.route == "handoff" and not scripted_backend.requests
    assert [h["conversation_id"] for h in engine.store.open_handoffs()] == [cid]
    assert engine.store.stats()["top_unanswered"][0]["question"].startswith("What is the airspeed")


@pytest.mark.parametrize(
    "text", ["I want to talk to a person", "agent please", "Je veux parler à un conseiller", "我要人工客服"]
)
def test_asking_for_a_human_hands_off_in_several_languages(engine, text):
    reply = engine.reply(engine.start_conversation(), text)
    assert reply.route == "handoff" and "customer asked for a person" in reply.reason


def test_request_human_button(engine):
    cid = engine.start_conversation()
    reply = engine.request_human(cid)
    assert reply.route == "handoff"
    assert engine.store.get_conversation(cid).status == "handoff"


def test_mode_off_hands_everything_to_agents(engine, app_config, scripted_backend):
    app_config.routing.mode = "off"
    assert engine.reply(engine.start_conversation(), "How do I get a refund?").route == "handoff"
    assert not scripted_backend.requests


def test_history_reaches_the_prompt(engine, scripted_backend):
    cid = engine.start_conversation()
    engine.reply(cid, "How do I get a refund?")
    engine.reply(cid, "How long does delivery take?")
    last = scripted_backend.requests[-1].messages
    assert [m["role"] for m in last] == ["system", "user", "assistant", "user"]
    assert last[1]["content"] == "How do I get a refund?"


def test_cancel_stops_generation_and_records_what_was_shown(app_config, demo_kb):
    from chatbot.engine import Engine
    from tests.fixtures_engine import ScriptedBackend

    backend = ScriptedBackend(delay=0.01)
    engine = Engine.from_config(app_config, kb=demo_kb, backend=backend).warm_up()
    cid = engine.start_conversation()
    cancel = threading.Event()
    stream = engine.stream(cid, "How do I get a refund?", cancel=cancel)
    first = next(stream)
    cancel.set()
    rest = list(stream)
    assert stream.reply.cancelled and stream.reply.text == "".join([first, *rest]).strip()
    assert engine.store.messages(cid)[-1].status == "cancelled"


def test_generation_error_falls_back_and_keeps_serving(engine, scripted_backend):
    from chatbot.generate import GenerationError

    scripted_backend.queue(GenerationError("backend down"))
    reply = engine.reply(engine.start_conversation(), "How do I get a refund?")
    assert reply.fallback and reply.text == reply.sources[0].entry.answer
    assert engine.reply(engine.start_conversation(), "How do I get a refund?").route == "answer"


def test_spanish_question_gets_the_spanish_faq_answer_without_generation(engine, scripted_backend):
    reply = engine.reply(engine.start_conversation(), "¿Cómo obtengo un reembolso de mi pedido?")
    assert reply.language == "es"
    assert reply.route in ("answer", "draft")
    if reply.route == "answer":
        assert reply.text.startswith("Inicia una devolución")
    assert not scripted_backend.requests


def test_use_before_warm_up_says_how_to_fix(app_config, demo_kb, scripted_backend):
    from chatbot.engine import Engine

    engine = Engine.from_config(app_config, kb=demo_kb, backend=scripted_backend)
    with pytest.raises(EngineNotReadyError, match="warm_up"):
        engine.start_conversation()


def test_reply_before_exhaustion_is_an_error(engine):
    stream = engine.stream(engine.start_conversation(), "How do I get a refund?")
    with pytest.raises(RuntimeError, match="not finished"):
        _ = stream.reply


def test_adapter_switch_is_recorded_on_replies(engine):
    engine.set_adapter("support-v2")
    reply = engine.reply(engine.start_conversation(), "How do I get a refund?")
    assert reply.adapter == "support-v2"
    assert engine.store.message(reply.message_id).adapter == "support-v2"
    assert engine.health()["adapter"] == "support-v2"


def test_health(engine):
    health = engine.health()
    assert health["model_loaded"] and health["index_version"] == engine.kb.current_version
    assert health["queue_depth"] == 0


def test_drift_stops_the_stream_after_the_first_wandering_sentence(engine, scripted_backend):
    scripted_backend.queue(
        "Visit the website of your local bank and select Finance from the menu on the homepage. "
        "You will then be directed to an online payment system with various types of money."
    )
    stream = engine.stream(engine.start_conversation(), "How do I get a refund?")
    shown = "".join(stream)
    assert "online payment system" not in shown
    assert stream.reply.fallback and stream.reply.text == stream.reply.sources[0].entry.answer


def test_short_first_sentence_is_not_a_drift(engine, scripted_backend):
    scripted_backend.queue(
        "Sure. Start a return in My Orders > Return item and send the item back within 30 days; the refund "
        "reaches your original payment method within 14 days of our receiving it."
    )
    reply = engine.reply(engine.start_conversation(), "How do I get a refund?")
    assert not reply.fallback and reply.text.startswith("Sure. Start a return")


def test_invented_duration_with_a_known_number_is_caught_before_it_is_shown(engine, scripted_backend):
    # "2" is in the source (2 hours), "2 minutes" is not: the number waits for its unit
    scripted_backend.queue("You can change an order within 2 minutes of placing it in My Orders.")
    stream = engine.stream(engine.start_conversation(), "How can I change an order I already placed?")
    shown = "".join(stream)
    assert "2 minutes" not in shown and stream.reply.fallback
    assert shown == stream.reply.text  # nothing had streamed: the sources' words are what streams


def test_facts_from_a_weak_third_source_are_not_allowed(engine, scripted_backend):
    reply = engine.reply(engine.start_conversation(), "Which payment methods do you accept?")
    weak = [h for h in reply.sources[1:] if h.score < 0.8 * reply.sources[0].score]
    assert weak, "the demo FAQ should give weaker secondary hits here"
    scripted_backend.queue("We accept Visa and PayPal, and delivery takes 3-5 business days.")
    reply = engine.reply(engine.start_conversation(), "Which payment methods do you accept?")
    assert reply.fallback


def test_draft_hold_notice_comes_before_the_draft_is_generated(engine, app_config, scripted_backend):
    app_config.routing.mode = "draft_only"
    stream = engine.stream(engine.start_conversation(), "How do I get a refund?")
    first = next(stream)
    assert "confirm" in first and not scripted_backend.requests  # nothing generated yet
    assert list(stream) == []
    assert stream.reply.draft_id is not None and stream.reply.text == first
