"""Routing policy, fact extraction and the streaming fact gate, on hand-made hits."""

from __future__ import annotations

import pytest

from chatbot.config import RoutingConfig
from chatbot.routing import FactGate, asks_for_human, check_grounding, decide_route, extract_facts, supported_facts
from knowledge_base.config import KBConfig
from knowledge_base.records import FaqEntry, Hit

SOURCE = (
    "Return any unused item within 30 days. Refunds cost $4.99 and arrive in 3-5 business days. "
    "Write to support@example-store.com or see https://example-store.com/returns; call +1 555 0100."
)
ALLOWED = supported_facts([SOURCE])


def _hit(score):
    return Hit(FaqEntry("x", "q", "a"), score)


@pytest.mark.parametrize(
    ("score", "mode", "human", "route"),
    [
        (0.9, "auto", False, "answer"),
        (0.5, "auto", False, "draft"),
        (0.1, "auto", False, "handoff"),
        (0.9, "draft_only", False, "draft"),
        (0.5, "draft_only", False, "draft"),
        (0.9, "off", False, "handoff"),
        (0.9, "auto", True, "handoff"),
    ],
)
def test_decide_route(score, mode, human, route):
    kb = KBConfig(answer_threshold=0.6, draft_threshold=0.35)
    assert decide_route([_hit(score)], kb, RoutingConfig(mode=mode), human).route == route


def test_no_hits_hand_off():
    assert decide_route([], KBConfig(), RoutingConfig()).route == "handoff"


@pytest.mark.parametrize(
    ("reply", "ok"),
    [
        ("You have 30 days to return it.", True),
        ("You have thirty days to return it.", True),
        ("You have 45 days to return it.", False),
        ("It costs $4.99.", True),
        ("It costs $5.99.", False),
        ("Refunds arrive in 5 business days.", True),
        ("Refunds arrive in 5 minutes.", False),
        ("Mail support@example-store.com.", True),
        ("Mail help@example-store.com.", False),
        ("See https://example-store.com/returns.", True),
        ("See www.example-store.com/refund-now", False),
        ("Call +1 555 0100.", True),
        ("Call +1 555 0199.", False),
        ("We are happy to help. [1]", True),
    ],
)
def test_grounding_check(reply, ok):
    assert check_grounding(reply, ALLOWED).ok is ok


def test_extract_facts_normalises():
    facts = extract_facts("1,000 items, 3-5 business days, WWW.Example.com/X/, Bob@Mail.com")
    assert {"num:1000", "dur:3 day", "dur:5 day", "url:example.com/x", "email:bob@mail.com"} <= facts


@pytest.mark.parametrize(
    "pieces",
    [
        ["Go to www", ".evil", ".com/x", " now"],
        ["You have 4", "5 days", " to return it."],
        ["Refunds take 5", " minutes", " to arrive."],
    ],
)
def test_fact_gate_never_releases_an_unsupported_fact(pieces):
    gate = FactGate(ALLOWED)
    shown = "".join(gate.feed(p) for p in pieces) + gate.finish()
    assert gate.failed
    assert check_grounding(shown, ALLOWED).ok and "evil" not in shown and "45" not in shown


def test_fact_gate_streams_supported_text_word_by_word():
    gate = FactGate(ALLOWED)
    pieces = ["You ", "can ", "return ", "it ", "within 3", "0 days", " for ", "$4.99", "."]
    outputs = [gate.feed(p) for p in pieces]
    assert sum(1 for o in outputs if o) >= 4  # streamed, not all at the end
    assert "".join(outputs) + gate.finish() == "You can return it within 30 days for $4.99."


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Can I talk to a human?", True),
        ("representative", True),
        ("Ich möchte mit einem Mitarbeiter sprechen", True),
        ("quiero hablar con un agente", True),
        ("我要转人工", True),
        ("How do I get a refund?", False),
        ("my personal data", False),
    ],
)
def test_asks_for_human(text, expected):
    assert asks_for_human(text) is expected


def test_extra_human_phrases_from_config():
    assert asks_for_human("beam me to support staff", extra=("support staff",))
