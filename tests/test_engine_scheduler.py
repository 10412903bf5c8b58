"""The batching scheduler on a tiny random Llama: batched decoding equals one-at-a-time decoding, many concurrent
conversations all finish with their own reply, cancellation and adapter switching work mid-serving; and over a
scripted fake runner: admission, the prefill token budget, slots released, stop strings, a failed step."""

from __future__ import annotations

import threading
import time

import pytest

from chatbot.config import GenerationConfig, SchedulerConfig
from chatbot.generate import BusyError, PieceDecoder, SingleStream
from chatbot.scheduler import BatchScheduler
from chatbot.torch_runner import TorchRunner

GREEDY = GenerationConfig(max_new_tokens=16, repetition_penalty=1.0, no_repeat_ngram_size=0)


def _scheduler(loaded, config: SchedulerConfig) -> BatchScheduler:
    runner = TorchRunner(loaded.model, loaded.device, loaded.tokenizer.pad_token_id, config.max_batch)
    return BatchScheduler(runner, loaded.tokenizer, config)


def _prompts(tokenizer, n):
    return [tokenizer(f"customer {i} asks " + "about refunds " * (i % 4 + 1))["input_ids"] for i in range(n)]


def test_concurrent_requests_each_get_their_own_reply_identical_to_serial(tiny_loaded):
    prompts = _prompts(tiny_loaded.tokenizer, 12)
    expected = ["".join(SingleStream(tiny_loaded, p, GREEDY)) for p in prompts]
    scheduler = _scheduler(tiny_loaded, SchedulerConfig(max_batch=4))
    results: list[str | BaseException | None] = [None] * len(prompts)

    def run(i):
        try:
            time.sleep(0.003 * i)  # staggered arrivals join a running batch
            results[i] = "".join(scheduler.submit(prompts[i], GREEDY))
        except BaseException as exc:
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(prompts))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    scheduler.close()
    assert results == expected
    assert scheduler.steps < sum(GREEDY.max_new_tokens for _ in prompts)  # decode steps were shared


def test_cancelled_request_leaves_the_batch_and_others_finish(tiny_loaded):
    scheduler = _scheduler(tiny_loaded, SchedulerConfig(max_batch=4))
    long = GenerationConfig(max_new_tokens=200, repetition_penalty=1.0, no_repeat_ngram_size=0)
    prompts = _prompts(tiny_loaded.tokenizer, 2)
    cancel = threading.Event()
    doomed = scheduler.submit(prompts[0], long, cancel)
    other = scheduler.submit(prompts[1], GREEDY)
    it = iter(doomed)
    next(it)
    cancel.set()
    list(it)
    assert doomed.finish_reason == "cancelled" and doomed.n_tokens < 200
    assert "".join(other) == "".join(SingleStream(tiny_loaded, prompts[1], GREEDY))
    scheduler.close()


def test_full_queue_is_refused_with_a_clear_error(tiny_loaded):
    scheduler = _scheduler(tiny_loaded, SchedulerConfig(max_batch=1, max_queue=0))
    scheduler._stop.clear()  # not started: requests stay queued
    prompt = _prompts(tiny_loaded.tokenizer, 1)[0]
    scheduler._thread = threading.Thread()  # pretend a worker exists so submit does not start one
    scheduler.start = lambda: None
    scheduler.submit(prompt, GREEDY)
    with pytest.raises(BusyError, match="max_queue"):
        scheduler.submit(prompt, GREEDY)


def test_stop_strings_are_held_back_and_cut(tiny_loaded):
    tokenizer = tiny_loaded.tokenizer
    decoder = PieceDecoder(tokenizer, stop=("\nCustomer:",))
    ids = tokenizer("Sure, here it is.\nCustomer: more", add_special_tokens=False)["input_ids"]
    shown = "".join(decoder.push(i) for i in ids) + decoder.flush()
    assert shown == "Sure, here it is." and decoder.stopped


def test_incremental_pieces_join_to_the_whole_decode_even_across_multibyte_characters(tiny_loaded):
    tokenizer = tiny_loaded.tokenizer
    text = "Refunds take 5–7 days 🎉. 退款需要七天。 naïve café"
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    decoder = PieceDecoder(tokenizer)
    pieces = [decoder.push(i) for i in ids]
    assert "".join(pieces) + decoder.flush() == tokenizer.decode(ids, skip_special_tokens=True) == text
    assert all("\ufffd" not in piece for piece in pieces)  # half a character is never shown


def test_sampling_is_reproducible_with_a_seed(tiny_loaded):
    prompt = _prompts(tiny_loaded.tokenizer, 1)[0]
    sampled = GenerationConfig(max_new_tokens=12, temperature=0.9, top_p=0.9, top_k=50, seed=7)
    a = "".join(SingleStream(tiny_loaded, prompt, sampled))
    b = "".join(SingleStream(tiny_loaded, prompt, sampled))
    assert a == b


def test_no_repeat_ngram_blocks_loops(tiny_loaded):
    import torch

    from chatbot.generate import choose_tokens

    config = GenerationConfig(no_repeat_ngram_size=2, repetition_penalty=1.0)
    logits = torch.zeros(1, 10)
    logits[0, 3] = 5.0  # the model wants token 3 after token 2 again
    assert choose_tokens(logits, [[2, 3, 5, 2]], [config], [None]) != [3]
    assert choose_tokens(logits, [[2, 3, 5, 6]], [config], [None]) == [3]


def test_engine_over_the_scheduler_many_conversations(app_config, demo_kb, tiny_loaded):
    """8 customers at once through the real scheduler: none fails, each reply is recorded in its conversation."""
    from chatbot.engine import Engine
    from chatbot.transformers_backend import TransformersBackend

    app_config.generation = GenerationConfig(max_new_tokens=12)
    backend = TransformersBackend(scheduler_config=SchedulerConfig(max_batch=8), loaded=tiny_loaded)
    engine = Engine.from_config(app_config, kb=demo_kb, backend=backend).warm_up()
    questions = ["How do I get a refund?", "How can I track my order?", "How do I delete my account?",
                 "Which payment methods do you accept?"] * 2  # fmt: skip
    conversations = [engine.start_conversation() for _ in questions]
    replies: list = [None] * len(questions)

    def run(i):
        try:
            replies[i] = engine.reply(conversations[i], questions[i])
        except BaseException as exc:
            replies[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(questions))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    for cid, question, reply in zip(conversations, questions, replies, strict=True):
        assert not isinstance(reply, BaseException), reply
        assert reply.conversation_id == cid and reply.route == "answer"
        assert [m.text for m in engine.store.messages(cid)][0] == question
        # a random model never passes the grounding and drift checks: every reply is the FAQ answer, marked
        assert reply.grounded and reply.fallback and reply.text == reply.sources[0].entry.answer
    engine.close()


def test_batched_token_choice_matches_a_row_by_row_reference():
    import random

    import torch

    from chatbot.generate import choose_tokens

    def reference(logits, histories, configs):
        out = []
        for row, (history, config) in enumerate(zip(histories, configs, strict=True)):
            scores = logits[row].clone()
            if history and config.repetition_penalty != 1.0:
                seen = torch.tensor(sorted(set(history)))
                values = scores[seen]
                p = config.repetition_penalty
                scores[seen] = torch.where(values > 0, values / p, values * p)
            n = config.no_repeat_ngram_size
            if n and len(history) >= n:
                prefix = tuple(history[len(history) - n + 1 :])
                banned = [
                    history[i + n - 1] for i in range(len(history) - n + 1) if tuple(history[i : i + n - 1]) == prefix
                ]
                if banned:
                    scores[torch.tensor(banned)] = float("-inf")
            out.append(int(torch.argmax(scores)))
        return out

    rng = random.Random(0)
    torch.manual_seed(0)
    for _ in range(200):
        batch, vocab = rng.randint(1, 6), 50
        logits = torch.randn(batch, vocab) * 3
        histories = [[rng.randrange(vocab) for _ in range(rng.randint(0, 30))] for _ in range(batch)]
        configs = [GenerationConfig(repetition_penalty=rng.choice([1.0, 1.15, 2.0]),
                                    no_repeat_ngram_size=rng.choice([0, 2, 3])) for _ in range(batch)]  # fmt: skip
        assert choose_tokens(logits, histories, configs, [None] * batch) == reference(logits, histories, configs)


class ScriptedRunner:
    """A `ModelRunner` whose logits pick scripted tokens: each prompt's reply is `replies[prompt[0]]`, then EOS.
    Records every call, so tests can check how the scheduler batched the work."""

    device = "cpu"

    def __init__(self, tokenizer, replies: dict[int, list[int]], slots: int = 4, context_tokens: int | None = None):
        self.vocab = len(tokenizer)
        self.eos = tokenizer.eos_token_id
        self.replies = replies
        self.slots = slots
        self.context_tokens = context_tokens
        self.script: dict[int, list[int]] = {}
        self.calls: list[tuple[str, list[int]]] = []
        self.fail_decode = False
        self.resets = 0

    def _logits(self, slots):
        import torch

        logits = torch.zeros(len(slots), self.vocab)
        for row, slot in enumerate(slots):
            script = self.script[slot]
            logits[row, script.pop(0) if script else self.eos] = 10.0
        return logits

    def prefill(self, slots, prompts):
        self.calls.append(("prefill", list(slots)))
        for slot, prompt in zip(slots, prompts, strict=True):
            assert slot not in self.script, "a slot was reused before it was released"
            self.script[slot] = list(self.replies[prompt[0]])
        return self._logits(slots)

    def decode(self, slots, tokens, positions):
        self.calls.append(("decode", list(slots)))
        if self.fail_decode:
            raise RuntimeError("the device fell over")
        return self._logits(slots)

    def release(self, slot):
        self.calls.append(("release", [slot]))
        del self.script[slot]

    def reset(self):
        self.resets += 1
        self.script.clear()

    def swap_weights(self, weights):
        return weights


def _words(tokenizer, text):
    return tokenizer(text, add_special_tokens=False)["input_ids"]


def test_scheduler_over_a_scripted_runner_batches_prompts_and_cuts_stop_strings(tiny_loaded):
    tokenizer = tiny_loaded.tokenizer
    texts = {1: "Refunds take five days.", 2: "Track it online. Customer: hi", 3: "Yes, by card or PayPal."}
    runner = ScriptedRunner(tokenizer, {k: _words(tokenizer, v) for k, v in texts.items()})
    scheduler = BatchScheduler(runner, tokenizer, SchedulerConfig(max_batch=4))
    scheduler.start()
    scheduler.call(lambda r: time.sleep(0.2))  # hold the worker so all three arrive before its next step
    stop = GenerationConfig(max_new_tokens=40, stop=(" Customer:",))
    streams = [scheduler.submit([k, 7, 7, 7], stop) for k in texts]
    replies = ["".join(s) for s in streams]
    scheduler.close()
    assert replies == ["Refunds take five days.", "Track it online.", "Yes, by card or PayPal."]
    assert [s.finish_reason for s in streams] == ["stop", "stop", "stop"]
    assert runner.calls[0] == ("prefill", [0, 1, 2])  # the three prompts read in one prefill
    assert all(kind != "prefill" for kind, _ in runner.calls[1:])
    assert sorted(slots[0] for kind, slots in runner.calls if kind == "release") == [0, 1, 2]


def test_the_prefill_budget_spreads_prompts_over_steps_and_running_replies_advance(tiny_loaded):
    tokenizer = tiny_loaded.tokenizer
    runner = ScriptedRunner(tokenizer, {k: _words(tokenizer, "one two three four five") for k in (1, 2, 3)})
    scheduler = BatchScheduler(runner, tokenizer, SchedulerConfig(max_batch=4, prefill_tokens=6))
    scheduler.start()
    scheduler.call(lambda r: time.sleep(0.2))
    config = GenerationConfig(max_new_tokens=3, repetition_penalty=1.0, no_repeat_ngram_size=0)
    streams = [scheduler.submit([k, 7, 7, 7], config) for k in (1, 2, 3)]
    assert ["".join(s) for s in streams] == ["one two three"] * 3
    scheduler.close()
    # 4-token prompts, budget 6: one prompt a step, and those already running decode in the same step
    assert runner.calls[:5] == [("prefill", [0]), ("decode", [0]), ("prefill", [1]), ("decode", [0, 1]),
                                ("prefill", [2])]  # fmt: skip
    assert [s.finish_reason for s in streams] == ["length"] * 3


def test_a_failed_step_fails_its_requests_and_the_scheduler_goes_on(tiny_loaded):
    tokenizer = tiny_loaded.tokenizer
    from chatbot.generate import GenerationError

    runner = ScriptedRunner(tokenizer, {1: _words(tokenizer, "fine thanks"), 2: _words(tokenizer, "ok")},
                            context_tokens=8)  # fmt: skip
    scheduler = BatchScheduler(runner, tokenizer, SchedulerConfig(max_batch=2))
    runner.fail_decode = True
    with pytest.raises(GenerationError, match="the device fell over"):
        "".join(scheduler.submit([1, 7], GenerationConfig(max_new_tokens=5)))
    assert runner.resets == 1
    runner.fail_decode = False
    assert "".join(scheduler.submit([2, 7], GenerationConfig(max_new_tokens=5))) == "ok"
    with pytest.raises(GenerationError, match=r"more than llamacpp.context_tokens \(8\)"):
        "".join(scheduler.submit([2] + [7] * 8, GenerationConfig(max_new_tokens=5)))
    scheduler.close()
