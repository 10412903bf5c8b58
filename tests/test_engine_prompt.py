"""The prompt format: serving and training build identical prompts; the budget trims old history first."""

from __future__ import annotations

import pytest

from chatbot.config import GenerationConfig, PromptConfig
from chatbot.generate import GenerationRequest
from chatbot.prompt import (
    IGNORE_INDEX,
    build_messages,
    render_prompt,
    render_training_example,
    render_training_examples,
)
from chatbot.records import Turn
from knowledge_base.records import FaqEntry, Hit

HITS = (
    Hit(FaqEntry("get_refund", "How do I get a refund?", "Send the item back within 30 days."), 0.9),
    Hit(FaqEntry("track_order", "How can I track my order?", "Open My Orders and press Track."), 0.4),
)
HISTORY = [
    Turn("user", "Hello"),
    Turn("assistant", "Hi! How can I help?"),
    Turn("user", "How do I get a refund?"),
]


@pytest.fixture(scope="module")
def tokenizer(tiny_loaded):
    return tiny_loaded.tokenizer


def test_training_prompt_is_identical_to_serving_prompt(tiny_loaded):
    from chatbot.transformers_backend import TransformersBackend

    config = PromptConfig()
    backend = TransformersBackend(loaded=tiny_loaded)
    backend.warm_up()
    try:
        serving = backend.render(GenerationRequest(build_messages(config, HITS, HISTORY, "en"), GenerationConfig()))
    finally:
        backend.close()
    ids, labels = render_training_example(tiny_loaded.tokenizer, config, HISTORY, "Within 30 days.", HITS, "en")
    assert ids[: len(serving)] == serving
    assert all(label == IGNORE_INDEX for label in labels[: len(serving)])
    target = tiny_loaded.tokenizer.decode(ids[len(serving) :])
    assert target.startswith("Within 30 days.") and target.endswith("<|im_end|>")
    assert labels[len(serving) :] == ids[len(serving) :]


def test_one_example_per_assistant_turn_with_loss_only_on_it(tokenizer):
    turns = [*HISTORY, Turn("assistant", "Send it back within 30 days."), Turn("user", "thanks"),
             Turn("assistant", "You're welcome!")]  # fmt: skip
    examples = list(render_training_examples(tokenizer, PromptConfig(), turns, hits_for=lambda h: HITS))
    assert len(examples) == 3
    for (ids, labels), reply in zip(examples, ["Hi! How can I help?", "Send it back", "You're welcome!"], strict=True):
        supervised = [t for t, lab in zip(ids, labels, strict=True) if lab != IGNORE_INDEX]
        assert tokenizer.decode(supervised).startswith(reply)


def test_system_prompt_has_rules_company_language_and_numbered_sources():
    config = PromptConfig(company="Globex")
    system = build_messages(config, HITS, HISTORY, "fr")[0]["content"]
    assert "Globex" in system and "French" in system and "only the facts" in system
    assert "[1] Q: How do I get a refund?\nA: Send the item back within 30 days." in system
    assert "[2] Q: How can I track my order?" in system


def test_budget_drops_oldest_history_first(tokenizer):
    config = PromptConfig()
    long_history = [Turn("user" if i % 2 == 0 else "assistant", f"turn {i} " + "words " * 40) for i in range(8)]
    long_history.append(Turn("user", "How do I get a refund?"))
    messages = build_messages(config, HITS, long_history, "en")
    full = render_prompt(tokenizer, messages, 10_000)
    trimmed = render_prompt(tokenizer, messages, len(full) - 100)
    assert len(trimmed) <= len(full) - 100
    text = tokenizer.decode(trimmed)
    assert "How do I get a refund?" in text and "Send the item back within 30 days." in text
    assert "turn 0 " not in text and "turn 7 " in text


def test_prompt_never_exceeds_budget(tokenizer):
    messages = build_messages(PromptConfig(), HITS, [Turn("user", "refund " * 800)], "en")
    assert len(render_prompt(tokenizer, messages, 300)) <= 300


def test_history_must_end_with_the_customer():
    with pytest.raises(ValueError, match="must end with the customer's message"):
        build_messages(PromptConfig(), HITS, [Turn("assistant", "hi")], "en")
