"""Bad input: each gets a clear error, nothing is stored, and the engine keeps serving."""

from __future__ import annotations

import pytest

from chatbot.engine import InputError

BAD_INPUT = [
    ("", "empty"),
    ("   \n\t  ", "empty"),
    ("x" * 4001, "too_long"),
    ("é" * 3998 + "€" * 2, None),  # under both limits: accepted
    (b"\xff\xfe\x00garbage", "encoding"),
    (b"caf\xc3", "encoding"),
    ("\ud800 lone surrogate", "encoding"),
    ("\x00\x01\x02binary\x03\x04", "binary"),
    ("PK\x03\x04\x14\x00\x06\x00" * 4, "binary"),
    (12345, "binary"),
]


@pytest.mark.parametrize(("text", "code"), BAD_INPUT, ids=[c or "accepted" for _, c in BAD_INPUT])
def test_bad_input_is_refused_and_nothing_is_stored(engine, text, code):
    cid = engine.start_conversation()
    if code is None:
        assert engine.reply(cid, text).route in ("answer", "draft", "handoff")
        return
    with pytest.raises(InputError) as exc:
        engine.stream(cid, text)
    assert exc.value.code == code and str(exc.value)
    assert engine.store.messages(cid) == []
    assert engine.reply(cid, "How do I get a refund?").route == "answer"  # still serving


def test_utf8_bytes_are_accepted(engine):
    reply = engine.reply(engine.start_conversation(), b"How do I get a refund?")
    assert reply.route == "answer"


def test_unknown_conversation(engine):
    with pytest.raises(InputError, match="unknown conversation") as exc:
        engine.stream("nope", "How do I get a refund?")
    assert exc.value.code == "unknown_conversation"


def test_closed_conversation(engine):
    cid = engine.start_conversation()
    engine.store.close_conversation(cid)
    with pytest.raises(InputError, match="closed") as exc:
        engine.reply(cid, "How do I get a refund?")
    assert exc.value.code == "closed_conversation"
    assert engine.store.messages(cid) == []


def test_oversized_limit_comes_from_config(engine, app_config):
    app_config.limits.max_message_chars = 10
    with pytest.raises(InputError, match="at most 10"):
        engine.stream(engine.start_conversation(), "How do I get a refund?")
