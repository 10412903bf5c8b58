"""Fixtures for the training tests.

- `smol_tokenizer` (session): the embedded SmolLM2 tokenizer (with its chat template), loaded once.
- `tiny_lm`: a fresh `LoadedModel` per test with a tiny random 2-layer Llama (hidden 64) and that tokenizer, in
  fp32 on CPU; fresh because peft injects LoRA layers into the model in place.
- `sample_logs`: a small JSONL log in DESIGN.md's format (customer/agent aliases included) in the test's folder.
- `real_records`: the public datasets folder (`../shared/data`), skipping when it is not there.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
DATA = REPO.parent / "shared" / "data"

SAMPLE_CONVERSATIONS = [
    {"id": "c1", "messages": [
        {"role": "customer", "content": "Hi, where is my parcel? My email is jane@example.com"},
        {"role": "agent", "content": "Sorry about the wait. It ships tomorrow."},
        {"role": "customer", "content": "Thanks!"},
        {"role": "agent", "content": "You're welcome, anything else?"}]},
    {"id": "c2", "messages": [
        {"role": "user", "content": "Can I get a refund?"},
        {"role": "assistant", "content": "Yes, within 14 days of delivery."}]},
    {"id": "c3", "messages": [
        {"role": "user", "content": "How do I reset my password?"},
        {"role": "assistant", "content": "Use the 'Forgot password' link on the sign-in page."}]},
    {"id": "c4", "messages": [
        {"role": "system", "content": "ignored"},
        {"role": "user", "content": "Do you ship to Canada?"},
        {"role": "assistant", "content": "Yes, we ship to Canada in 5 to 8 working days."},
        {"role": "user", "content": "How much is it?"},
        {"role": "assistant", "content": "Shipping to Canada costs 12 dollars."}]},
]  # fmt: skip


@pytest.fixture(scope="session")
def smol_tokenizer(shared_model_cache):
    from chatbot.config import ModelConfig
    from chatbot.model import load_tokenizer

    return load_tokenizer(ModelConfig(cache_dir=shared_model_cache))


def make_tiny_lm(tokenizer, seed: int = 0):
    """A `LoadedModel` with a tiny random Llama sharing `tokenizer`'s vocabulary."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from chatbot.model import LoadedModel

    torch.manual_seed(seed)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=4096,
                         tie_word_embeddings=True)  # fmt: skip
    model = LlamaForCausalLM(config)
    return LoadedModel(model, tokenizer, "cpu", torch.float32, None, "tiny-llama")


@pytest.fixture
def tiny_lm(smol_tokenizer):
    return make_tiny_lm(smol_tokenizer)


@pytest.fixture
def sample_logs(tmp_path) -> Path:
    path = tmp_path / "logs.jsonl"
    path.write_text("".join(json.dumps(c) + "\n" for c in SAMPLE_CONVERSATIONS), encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def real_records() -> Path:
    if not DATA.exists():
        pytest.skip(f"the public datasets are not at {DATA}")
    return DATA


@pytest.fixture
def reviewed_store(chatbot_home):
    """The default store in the test's CHATBOT_HOME with one approved draft, one edited draft and one agent reply
    in a handed-off chat (with an e-mail address to redact); closed again after the test."""
    from chatbot.store import Store

    store = Store().warm_up()

    def drafted(question: str, draft: str) -> int:
        cid = store.create_conversation()
        store.record_exchange(cid, "Hello", {}, "Hi! How can I help?", {"route": "answer"})
        _, _, draft_id = store.record_exchange(cid, question, {}, "A person will confirm.",
                                              {"kind": "notice", "route": "draft"},
                                              draft={"text": draft, "sources": [], "language": "en"})  # fmt: skip
        return draft_id

    store.approve_draft(drafted("How long do refunds take?", "Refunds take 5 days."), "ann")
    store.approve_draft(drafted("Can I pay by card?", "Yes."), "bob", text="Yes, we take Visa and Mastercard.")
    cid = store.create_conversation()
    store.record_exchange(cid, "I want a person", {}, "Passing you on.", {"kind": "notice", "route": "handoff"},
                          handoff_reason="asked for a person")  # fmt: skip
    store.agent_reply(cid, "ann", "Hi, I'm Ann. Write to help@example.com with your order number.")
    yield store
    store.close()
