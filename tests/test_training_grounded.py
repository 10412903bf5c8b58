"""Grounded training examples (`training.grounded`): serving's prompt, labels on the reply, faithful targets."""

from __future__ import annotations

import json

import pytest

from chatbot.config import PromptConfig
from chatbot.prompt import IGNORE_INDEX, build_messages, render_prompt
from chatbot.records import Turn
from knowledge_base.records import FaqEntry, Hit
from training.grounded import (
    HANDOFF_REPLY,
    GroundedExample,
    doc2dial_examples,
    entry_searcher,
    faq_examples,
    is_faithful,
    load_grounded,
    out_of_scope_examples,
    render_grounded,
    review_examples,
    unsupported_terms,
    write_grounded,
)

PAYMENT = FaqEntry(
    "payment_methods",
    "Which payment methods do you accept?",
    "We accept Visa, Mastercard, American Express, PayPal, Apple Pay and bank transfer.",
    ("can I pay with paypal", "what cards do you take"),
    "en",
)
REFUND = FaqEntry(
    "refund_time",
    "How long does a refund take?",
    "Refunds reach your account 3-5 business days after we receive the item. You can follow them in Account > Refunds.",
    ("when will I get my money back",),
    "en",
)
FAQ = [PAYMENT, REFUND, FaqEntry("hours", "When are you open?", "Our support desk is open 9:00-17:00 on weekdays.")]


@pytest.fixture
def search(tmp_path, kb_config, hash_embedder):
    return entry_searcher(FAQ, tmp_path / "kb", kb_config, embedder=hash_embedder)


def test_prompt_equals_the_serving_prompt_and_labels_only_the_reply(smol_tokenizer, search):
    prompt = PromptConfig()
    examples = faq_examples(FAQ, search, seed=1)
    rendered = render_grounded(examples, smol_tokenizer, prompt, max_length=640)
    assert len(rendered) == len(examples) == sum(len(e.phrasings) for e in FAQ)
    for ex, r in zip(examples, rendered, strict=True):
        hits = [Hit(entry=e, score=1.0) for e in ex.sources]
        served = render_prompt(smol_tokenizer, build_messages(prompt, hits, ex.history, "en"), prompt.max_prompt_tokens)
        n_prompt = sum(1 for t in r.labels if t == IGNORE_INDEX)
        assert list(r.input_ids[:n_prompt]) == served
        assert all(t != IGNORE_INDEX for t in r.labels[n_prompt:])
        reply = smol_tokenizer.decode(r.input_ids[n_prompt:])
        assert reply.startswith(ex.reply) and reply.endswith(smol_tokenizer.eos_token)


def test_faq_targets_restate_the_right_source_which_is_among_the_sources(search):
    examples = faq_examples(FAQ, search, seed=0, exclude=["What cards do you take"])
    by_question = {e.history[-1].content: e for e in examples}
    assert "what cards do you take" not in by_question  # evaluation phrasings never become prompts
    for ex in examples:
        right = next(e for e in FAQ if ex.id.startswith(f"faq:{e.id}:"))
        assert right.id in [s.id for s in ex.sources]
        assert right.answer in ex.reply  # short answers are restated whole, at most after a lead-in
        assert ex.reply.removesuffix(right.answer).strip() in ("", "Sure.", "Happy to help.", "Good question.",
                                                                "Of course.")  # fmt: skip


def test_a_missed_right_entry_is_put_first():
    def wrong_search(_text):
        return [Hit(entry=FAQ[2], score=0.3), Hit(entry=REFUND, score=0.2), Hit(entry=FAQ[0], score=0.1)]

    [ex, *_] = faq_examples([REFUND], lambda t: wrong_search(t)[:1], k=3)
    assert [s.id for s in ex.sources] == ["refund_time", "hours"]


@pytest.mark.parametrize(
    ("reply", "faithful"),
    [
        ("We accept Visa, Mastercard, American Express, PayPal, Apple Pay and bank transfer.", True),
        ("You can pay by PayPal or Apple Pay.", True),
        ("We accept Visa, Mastercard, American Express and British money transfer.", False),  # a name added
        ("Refunds reach your account within 10 business days.", False),  # a number added
        ("Refunds take 3-5 business days.", True),
        ("You can follow them at www.acme.com/refunds.", False),  # a link added
        ("Our warehouse team inspects every parcel carefully before shipping.", False),  # content words added
    ],
)
def test_faithful_filter_rejects_added_numbers_names_and_content(reply, faithful):
    evidence = [PAYMENT.answer, REFUND.answer]
    assert is_faithful(reply, evidence) is faithful


def test_unsupported_terms_name_what_was_added():
    added = unsupported_terms("Refunds take 7 days, ask Jane in Berlin.", [REFUND.answer])
    assert added == ["dur:7 day", "num:7", "Berlin", "Jane"]


def test_out_of_scope_examples_keep_the_sources_and_hand_off(search):
    [ex] = out_of_scope_examples(["what size wipers does this car take"], search)
    assert ex.reply == HANDOFF_REPLY and ex.kind == "out_of_scope"
    assert 1 <= len(ex.sources) <= 3 and {s.id for s in ex.sources} <= {e.id for e in FAQ}


def test_handoff_reply_is_the_engines_notice():
    from chatbot.notices import notice

    assert notice("handoff", "en") == HANDOFF_REPLY


def _doc2dial(tmp_path):
    section = (
        "Apply for benefits \nYou can apply online or call us at 800-772-1213. It takes about 30 minutes to finish "
        "the application. Have your bank account number ready."
    )
    text = "Overview \nWe pay benefits to people who worked.\n\n" + section
    doc = {"doc_id": "Apply | SSA#1_0", "domain": "ssa", "doc_text": text, "spans": {}}
    start = text.index("You can apply")
    span = "You can apply online or call us at 800-772-1213. It takes about 30 minutes to finish the application."

    def row(i, reply, domain="ssa"):
        history = [{"role": "user", "utterance": "How do I apply?"}]
        grounding = {"span_ids": ["3"], "text": span, "answer_start": start}
        return {"id": f"d_{i}", "domain": domain, "doc_id": doc["doc_id"], "history": history,
                "grounding": grounding, "agent_reply": reply}  # fmt: skip

    rows = [
        row(1, "You can apply online, it takes about 30 minutes."),
        row(2, "You can apply online; it takes about 45 minutes."),  # a number not in the span
        row(3, "Do you want to apply online?"),  # a clarifying question
        row(4, "You can apply online or ask your local Chicago office."),  # a name not in the span
        row(5, "You can apply online.", domain="studentaid"),  # held-out domain
        row(6, ""),
    ]
    turns, documents = tmp_path / "turns.jsonl", tmp_path / "docs.jsonl"
    turns.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    documents.write_text(json.dumps(doc) + "\n", encoding="utf-8")
    return turns, documents


def test_doc2dial_keeps_faithful_replies_with_the_grounding_section_first(tmp_path, search):
    turns, documents = _doc2dial(tmp_path)
    examples, counts = doc2dial_examples(turns, documents, search)
    assert [e.id for e in examples] == ["doc2dial:d_1"]
    assert counts == {"rows": 5, "kept": 1, "no_reply": 1, "question": 1, "unfaithful": 2, "no_span": 0}
    [ex] = examples
    assert ex.sources[0].answer.startswith("You can apply online or call us at 800-772-1213.")
    assert ex.sources[0].question == "Apply: Apply for benefits"
    assert len(ex.sources) == 3 and ex.history == (Turn("user", "How do I apply?"),)


def test_reviewed_replies_come_with_the_drafts_sources(chatbot_home):
    from chatbot.store import Store

    store = Store().warm_up()
    cid = store.create_conversation()
    _, _, draft_id = store.record_exchange(
        cid, "How long do refunds take?", {"language": "en"}, "A person will confirm.",
        {"kind": "notice", "route": "draft", "faq_ids": ["refund_time"], "scores": [0.5]},
        draft={"text": "3-5 days.", "sources": [{"faq_id": "refund_time", "score": 0.5}], "language": "en"},
    )  # fmt: skip
    store.approve_draft(draft_id, "ann", text="Refunds take 3-5 business days after we receive the item.")
    by_id = {e.id: e for e in FAQ}
    [ex] = review_examples(store, by_id.get)
    store.close()
    assert ex.kind == "review:edited"
    assert ex.reply == "Refunds take 3-5 business days after we receive the item."
    assert ex.history == (Turn("user", "How long do refunds take?"),)
    assert ex.sources == (REFUND,)


def test_write_and_load_round_trip_and_bad_lines_name_their_line(tmp_path, search):
    examples = faq_examples(FAQ, search) + out_of_scope_examples(["is it raining"], search)
    path = tmp_path / "grounded.jsonl"
    assert write_grounded(examples, path) == len(examples)
    assert load_grounded(path) == examples
    bad = GroundedExample("x", (Turn("user", "hi"),), (), "hello", "faq").to_json()
    bad["messages"] = bad["messages"][:1]
    path.write_text(json.dumps(examples[0].to_json()) + "\n" + json.dumps(bad) + "\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"grounded.jsonl:2: not a grounded example"):
        load_grounded(path)


def test_training_takes_grounded_files_with_a_seeded_validation_share(tmp_path, smol_tokenizer, search):
    from training.config import TrainConfig
    from training.trainer import _grounded_examples, prepare_data

    path = tmp_path / "grounded.jsonl"
    n = write_grounded(faq_examples(FAQ, search), path)
    config = TrainConfig(grounded=(str(path),), val_fraction=0.25)
    assert prepare_data(config, [], None) == ([], [], [])  # no --logs needed beside --grounded
    train, val = _grounded_examples(config, smol_tokenizer, PromptConfig())
    assert len(train) + len(val) == n and len(val) == round(n * 0.25)
    assert not {e.conversation_id for e in train} & {e.conversation_id for e in val}
