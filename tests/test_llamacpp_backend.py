"""The llama.cpp backend: same tokens as transformers + peft with the exported adapter, perplexity within 2% in the
serving weight types, the adapter changes the output, batching, KV hand-over, and clear errors.

The real-model tests need llama-cpp-python (`make llamacpp`); they skip without it, unless
CHATBOT_REQUIRE_LLAMACPP=1 (CI sets it, so there they run).
"""

from __future__ import annotations

import math
import os
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from chatbot.config import AppConfig, GenerationConfig, LlamaCppConfig, ModelConfig, SchedulerConfig
from chatbot.generate import GenerationError, GenerationRequest
from chatbot.model import ModelError
from tests.fixtures_engine import ask_delivery_grounded

REPO = Path(__file__).resolve().parent.parent
SHIPPED = REPO / "training" / "adapter"


def llama_cpp_missing() -> str | None:
    try:
        import llama_cpp  # noqa: F401
    except ImportError:
        return "llama-cpp-python is not installed (make llamacpp)"
    return None


needs_llama = pytest.mark.skipif(
    llama_cpp_missing() is not None and os.environ.get("CHATBOT_REQUIRE_LLAMACPP") != "1",
    reason=llama_cpp_missing() or "",
)


def heldout_messages(n: int) -> list[list[dict[str, str]]]:
    """Serving prompts for `n` questions the shipped adapter never saw (demo FAQ entries spread over the file, each
    phrased by a held-out customer query, with its entry as source [1]), so their greedy replies differ."""
    import json

    from chatbot.prompt import build_messages
    from chatbot.records import Turn
    from knowledge_base.kb import demo_faq_path
    from knowledge_base.records import FaqEntry, Hit

    rows = [json.loads(line) for line in demo_faq_path().read_text(encoding="utf-8").splitlines()]
    picked = [rows[i * 7 % len(rows)] for i in range(n)]
    prompt = AppConfig().prompt
    return [build_messages(prompt, [Hit(FaqEntry(r["id"], r["question"], r["answer"]), 0.9)],
                           [Turn("user", r["question"])], "en") for r in picked]  # fmt: skip


def grounded_examples(tokenizer, n: int) -> list:
    """Held-out demo FAQ questions with their entry as source [1] and the answer as target: what the shipped adapter
    was trained for (restating its sources), on entries it never saw."""
    import json

    from chatbot.prompt import render_training_example
    from chatbot.records import Turn
    from knowledge_base.kb import demo_faq_path
    from knowledge_base.records import FaqEntry, Hit
    from training.examples import Example

    rows = [json.loads(line) for line in demo_faq_path().read_text(encoding="utf-8").splitlines()][:n]
    out = []
    for row in rows:
        entry = FaqEntry(row["id"], row["question"], row["answer"])
        ids, labels = render_training_example(tokenizer, AppConfig().prompt, [Turn("user", row["question"])],
                                              row["answer"], [Hit(entry, 0.9)], "en", 512)  # fmt: skip
        out.append(Example(tuple(ids), tuple(labels), row["id"]))
    return out


GREEDY = GenerationConfig(max_new_tokens=32, repetition_penalty=1.0, no_repeat_ngram_size=0)
"""Plain greedy: with the repetition penalty, float rounding (llama.cpp and torch sum in other orders) can flip
a near-tie after a dozen tokens; the plain argmax of these prompts has no such tie."""


def run(backend, messages, config: GenerationConfig = GREEDY) -> str:
    return "".join(backend.stream(GenerationRequest(messages, config)))


@pytest.fixture(scope="module", params=[True, False], ids=["merged", "applied"])
def f32_backend(request, shared_model_cache):
    """The llama.cpp backend on F32 weights (exactly the weights transformers dequantizes) with the shipped adapter,
    merged into the weights or applied as a GGUF LoRA at every step."""
    from chatbot.llamacpp.backend import LlamaCppBackend

    model = ModelConfig(cache_dir=shared_model_cache, adapter=str(SHIPPED))
    f32 = LlamaCppConfig(threads=2, decode_type="F32", prefill_type="F32", merge_adapter=request.param)
    backend = LlamaCppBackend(model, SchedulerConfig(max_batch=4), f32)
    backend.warm_up()
    yield backend
    backend.close()


@pytest.fixture(scope="module")
def peft_model(shared_model_cache):
    from chatbot.model import load_model

    return load_model(ModelConfig(cache_dir=shared_model_cache, adapter=str(SHIPPED), dtype="float32"))


# -- real model ---------------------------------------------------------------------------------------------------
@needs_llama
@pytest.mark.real_model
def test_same_greedy_tokens_as_transformers_with_peft_alone_and_batched(f32_backend, peft_model):
    from chatbot.generate import SingleStream
    from chatbot.prompt import render_prompt

    prompts = heldout_messages(3)
    expected = []
    for messages in prompts:
        ids = render_prompt(peft_model.tokenizer, messages, 1536)
        expected.append("".join(SingleStream(peft_model, ids, GREEDY)))
    assert [run(f32_backend, m) for m in prompts] == expected
    assert all(expected) and len(set(expected)) == 3

    together: list[str] = [""] * 3  # three customers at once: one shared decode batch, three KV slots
    barrier = threading.Barrier(3)

    def customer(i: int) -> None:
        barrier.wait()
        together[i] = run(f32_backend, prompts[i])

    workers = [threading.Thread(target=customer, args=(i,)) for i in range(3)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert together == expected


@needs_llama
@pytest.mark.real_model
def test_the_adapter_changes_the_reply_and_switches_while_serving(f32_backend):
    messages = heldout_messages(1)[0]
    tuned = run(f32_backend, messages)
    running = iter(f32_backend.stream(GenerationRequest(messages, GREEDY)))
    first = shown = next(running)  # a customer mid-reply while the admin switches the adapter
    assert f32_backend.set_adapter("none") is None and f32_backend.health()["adapter"] is None
    shown += "".join(running)  # the reply goes on (its KV cache moved to the new weights) and ends
    # only what came before the switch is the tuned model's; the switch lands between two decode steps
    assert tuned.startswith(first) and len(shown) > len(first)
    base = run(f32_backend, messages)
    assert f32_backend.set_adapter(str(SHIPPED)) == "adapter"
    assert base != tuned and run(f32_backend, messages) == tuned
    assert f32_backend.health()["backend"] == "llamacpp"


@needs_llama
@pytest.mark.real_model
def test_a_prompt_too_long_fails_alone_and_the_backend_keeps_serving(f32_backend, shared_model_cache):
    from chatbot.llamacpp.backend import LlamaCppBackend

    small = LlamaCppBackend(ModelConfig(cache_dir=shared_model_cache, adapter="none"), SchedulerConfig(max_batch=2),
                            LlamaCppConfig(decode_type="F32", prefill_type="F32", context_tokens=256))  # fmt: skip
    small.warm_up()
    try:
        messages = heldout_messages(1)[0]
        alone = run(small, messages, GREEDY)
        running = iter(small.stream(GenerationRequest(messages, GREEDY)))
        shown = next(running)  # another customer is mid-reply
        long = [{"role": "user", "content": "where is my parcel " * 100}]
        with pytest.raises(GenerationError, match=r"more than llamacpp.context_tokens \(256\)"):
            run(small, long)
        assert shown + "".join(running) == alone  # untouched by the refused one
        assert run(small, messages, GREEDY) == alone
    finally:
        small.close()


@needs_llama
@pytest.mark.real_model
@pytest.mark.parametrize(("qtype", "merge"), [("Q8_0", True), ("BF16", False)])
def test_perplexity_in_the_serving_types_within_two_percent_of_transformers(qtype, merge, peft_model,
                                                                             shared_model_cache):  # fmt: skip
    import torch

    from chatbot.llamacpp.backend import LlamaRuntime
    from training.evaluate import perplexity

    examples = grounded_examples(peft_model.tokenizer, 12)
    pad = peft_model.tokenizer.pad_token_id
    reference, _ = perplexity(peft_model.model, examples, pad, "cpu", torch.float32)
    with peft_model.model.disable_adapter():
        base, _ = perplexity(peft_model.model, examples, pad, "cpu", torch.float32)
    config = LlamaCppConfig(decode_type=qtype, merge_adapter=merge)
    runtime = LlamaRuntime(ModelConfig(cache_dir=shared_model_cache), config, 1, SHIPPED)
    try:
        tuned = llama_perplexity(runtime.decode_ctx, examples)
    finally:
        runtime.close()
    assert abs(tuned / reference - 1) < 0.02, (tuned, reference)
    assert tuned < 0.9 * base  # the adapter is really there (measured 1.13 against 1.38 for the base model)


def llama_perplexity(ctx, examples) -> float:
    """Perplexity on the labelled tokens, from llama.cpp's logits at every position."""
    nll, count = 0.0, 0
    for example in examples:
        ids = list(example.input_ids)
        ctx.forget(0)
        logits = ctx.decode(ids, list(range(len(ids))), [0] * len(ids), [True] * len(ids)).astype(np.float64)
        logits -= logits.max(axis=1, keepdims=True)
        log_probs = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
        for i, label in enumerate(example.labels[1:]):
            if label != -100:
                nll -= log_probs[i, label]
                count += 1
    return math.exp(nll / count)


@needs_llama
@pytest.mark.real_model
def test_a_sequence_moves_between_contexts_with_its_kv_cache(shared_model_cache):
    from chatbot.llamacpp.backend import converted_gguf, model_gguf
    from chatbot.llamacpp.runtime import LlamaContext, LlamaModel

    model_config = ModelConfig(cache_dir=shared_model_cache)
    model = LlamaModel(converted_gguf(model_gguf(model_config), "F32", model_config.model_cache_dir()))
    a, b = LlamaContext(model, 1, 512, 2), LlamaContext(model, 4, 512, 2)
    try:
        prompt = list(range(1000, 1040))
        a.prefill(prompt, 0)
        a.copy_sequence_to(b, 0, 2)
        here = a.decode([5], [40], [0], [True])[0]
        there = b.decode([5], [40], [2], [True])[0]
        np.testing.assert_allclose(there, here, rtol=1e-5, atol=1e-4)
        b.forget(2)  # without the moved cache the same step sees no prompt
        assert not np.allclose(b.decode([5], [0], [2], [True])[0], here, atol=1e-2)
    finally:
        for part in (a, b, model):
            part.close()


@needs_llama
@pytest.mark.real_model
def test_engine_answers_a_demo_question_grounded_on_the_default_llamacpp_setup(app_config, demo_kb, shared_model_cache):
    """The default serving setup (BF16 or Q8_0 prefill, Q8_0 decode, the shipped adapter) behind the real engine."""
    health = ask_delivery_grounded(app_config, demo_kb, ModelConfig(cache_dir=shared_model_cache, backend="llamacpp"))
    assert health["backend"] == "llamacpp" and health["adapter"] == "adapter"


@needs_llama
@pytest.mark.real_model
def test_a_prompt_starting_like_the_last_one_reads_only_the_rest(peft_model, shared_model_cache):
    from chatbot.llamacpp.backend import LlamaRuntime, common_prefix
    from chatbot.prompt import render_prompt

    first, second = (render_prompt(peft_model.tokenizer, m, 1536) for m in heldout_messages(2))
    shared = common_prefix(first, second, len(second))
    assert shared > 60  # the system prompt
    config = LlamaCppConfig(decode_type="F32", prefill_type="F32")
    warm = LlamaRuntime(ModelConfig(cache_dir=shared_model_cache), config, 2)
    cold = LlamaRuntime(ModelConfig(cache_dir=shared_model_cache), config, 2)
    try:
        warm.prefill([0], [first])
        calls = []
        original = warm.decode_ctx.decode
        warm.decode_ctx.decode = lambda tokens, *rest: calls.append(len(tokens)) or original(tokens, *rest)
        reused = warm.prefill([1], [second])[0]
        assert sum(calls) == len(second) - shared  # only the part after the shared system prompt was read
        fresh = cold.prefill([1], [second])[0]
        # the same up to rounding (the KV cache is F16 and attention sums in another order); a wrong cache would be
        # off by whole units
        np.testing.assert_allclose(reused, fresh, atol=0.05)
        # the same best tokens (near-ties may swap places within the top five)
        assert int(np.argmax(reused)) == int(np.argmax(fresh))
        assert set(np.argsort(reused)[-5:].tolist()) == set(np.argsort(fresh)[-5:].tolist())
    finally:
        warm.close()
        cold.close()


# -- no llama.cpp needed --------------------------------------------------------------------------------------------
def test_without_llama_cpp_the_error_says_how_to_install_it(monkeypatch):
    from chatbot.llamacpp import runtime

    monkeypatch.setitem(sys.modules, "llama_cpp", None)
    monkeypatch.setattr(runtime, "_initialised", False)
    with pytest.raises(ModelError, match=r"make llamacpp.*backend = \"transformers\""):
        runtime.llama_cpp_module()


def test_a_transformers_model_folder_is_refused_with_the_way_out(tmp_path):
    from chatbot.llamacpp.backend import model_gguf

    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(ModelError, match=r"needs a GGUF model.*\.gguf file"):
        model_gguf(ModelConfig(name=str(tmp_path)))


def test_prefill_type_follows_the_processor():
    from chatbot.llamacpp.backend import resolve_prefill_type

    assert resolve_prefill_type(LlamaCppConfig(), "flags : avx2 avx512f avx512_bf16") == "BF16"
    assert resolve_prefill_type(LlamaCppConfig(), "flags : avx2 fma") == "Q8_0"
    assert resolve_prefill_type(LlamaCppConfig(prefill_type="F16"), "flags : avx512_bf16") == "F16"


def test_config_selects_the_backend_and_refuses_bad_values(tmp_path):
    from chatbot.backends import make_backend
    from chatbot.llamacpp.backend import LlamaCppBackend
    from chatbot.settings import ConfigError

    good = tmp_path / "good.toml"
    good.write_text('[model]\nbackend = "llamacpp"\n[llamacpp]\nthreads = 1\ndecode_type = "BF16"\n')
    backend = make_backend(AppConfig.load(good))
    assert isinstance(backend, LlamaCppBackend) and backend.config.threads == 1
    for bad in ("[llamacpp]\ncontext_tokens = 10\n", '[llamacpp]\ndecode_type = "Q4_1"\n'):
        path = tmp_path / "bad.toml"
        path.write_text(bad)
        with pytest.raises(ConfigError):
            AppConfig.load(path)
