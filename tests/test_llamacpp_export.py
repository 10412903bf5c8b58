"""The peft LoRA -> llama.cpp GGUF LoRA export and the llama.cpp build flags (no llama.cpp needed)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from chatbot.llamacpp.build import cmake_args, cpu_flags
from chatbot.llamacpp.export import export_lora, permute_rows, read_gguf_fields
from chatbot.model import ModelError

N_LAYERS, N_HEAD, N_KV, HIDDEN = 2, 4, 2, 64


def tiny_base_gguf(path):
    """A GGUF holding only what the exporter reads of a base model: the llama architecture's key/values."""
    import gguf

    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_block_count(N_LAYERS)
    writer.add_head_count(N_HEAD)
    writer.add_head_count_kv(N_KV)
    writer.add_tensor("token_embd.weight", np.zeros((8, HIDDEN), dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


@pytest.fixture
def lora_folder(tmp_path):
    """A real peft LoRA (random, non-zero B) on every linear layer of a tiny random Llama, saved to a folder."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=128, hidden_size=HIDDEN, intermediate_size=96, num_hidden_layers=N_LAYERS,
                         num_attention_heads=N_HEAD, num_key_value_heads=N_KV)  # fmt: skip
    targets = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    model = get_peft_model(LlamaForCausalLM(config), LoraConfig(r=4, lora_alpha=8, target_modules=targets))
    for name, param in model.named_parameters():
        if "lora_B" in name:
            torch.nn.init.normal_(param)
    model.save_pretrained(tmp_path / "adapter")
    return tmp_path / "adapter"


def test_export_names_shapes_alpha_and_rotary_permutation(lora_folder, tmp_path):
    from gguf import GGUFReader
    from safetensors.numpy import load_file
    from transformers.modeling_gguf_pytorch_utils import LlamaTensorProcessor

    out = export_lora(lora_folder, tiny_base_gguf(tmp_path / "base.gguf"), tmp_path / "lora.gguf")
    fields = read_gguf_fields(out)
    assert fields["general.type"] == "adapter" and fields["adapter.type"] == "lora"
    assert fields["adapter.lora.alpha"] == 8.0 and fields["general.architecture"] == "llama"
    tensors = {t.name: np.array(t.data) for t in GGUFReader(str(out)).tensors}
    assert len(tensors) == N_LAYERS * 7 * 2
    peft = load_file(str(lora_folder / "adapter_model.safetensors"))
    prefix = "base_model.model.model.layers.1"
    # A keeps its (rank, in) layout; B of v/o/MLP is copied as (out, rank)
    a_q, b_down = tensors["blk.1.attn_q.weight.lora_a"], tensors["blk.1.ffn_down.weight.lora_b"]
    np.testing.assert_array_equal(a_q, peft[f"{prefix}.self_attn.q_proj.lora_A.weight"])
    np.testing.assert_array_equal(b_down, peft[f"{prefix}.mlp.down_proj.lora_B.weight"])
    # B of q/k is permuted like the base weights, so the reader's inverse permutation gives peft's rows back
    undo = LlamaTensorProcessor({"num_attention_heads": N_HEAD, "num_key_value_heads": N_KV})
    for proj, gguf_name in (("q_proj", "attn_q"), ("k_proj", "attn_k")):
        stored = tensors[f"blk.1.{gguf_name}.weight.lora_b"]
        original = peft[f"{prefix}.self_attn.{proj}.lora_B.weight"]
        assert not np.array_equal(stored, original)
        back = undo.process(stored, f"blk.1.{gguf_name}.weight").weights
        np.testing.assert_array_equal(back, original)


def test_permutation_matches_llama_cpp_for_grouped_heads():
    w = np.arange(12 * 3).reshape(12, 3)
    permuted = permute_rows(w, 2)  # 2 heads of 6 rows: rows (0,3,1,4,2,5) within each head
    assert permuted[:6, 0].tolist() == [0, 9, 3, 12, 6, 15]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: (d / "adapter_model.safetensors").unlink(), "not a peft adapter folder"),
        (lambda d: _edit_config(d, peft_type="IA3"), "only LoRA exports"),
        (lambda d: _edit_config(d, use_dora=True), "DoRA"),
        (lambda d: _edit_config(d, rank_pattern={"q_proj": 8}), "per-layer ranks"),
    ],
)
def test_adapters_that_cannot_export_say_why_and_write_nothing(lora_folder, tmp_path, change, message):
    change(lora_folder)
    with pytest.raises(ModelError, match=message):
        export_lora(lora_folder, tiny_base_gguf(tmp_path / "base.gguf"), tmp_path / "lora.gguf")
    assert not list(tmp_path.glob("*lora.gguf*"))


def test_a_tensor_that_is_not_lora_is_refused(lora_folder, tmp_path):
    from safetensors.numpy import load_file, save_file

    weights = lora_folder / "adapter_model.safetensors"
    tensors = load_file(str(weights))
    tensors["base_model.model.lm_head.weight"] = np.zeros((128, HIDDEN), dtype=np.float32)
    save_file(tensors, str(weights))
    with pytest.raises(ModelError, match="lm_head"):
        export_lora(lora_folder, tiny_base_gguf(tmp_path / "base.gguf"), tmp_path / "lora.gguf")


def _edit_config(folder, **changes):
    path = folder / "adapter_config.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), **changes}))


def test_build_flags_follow_the_processor():
    epyc = cpu_flags("processor\t: 0\nflags\t\t: fpu avx avx2 fma f16c bmi2 avx512f avx512vbmi avx512_vnni\n")
    args = cmake_args(epyc).split()
    assert "-DGGML_NATIVE=OFF" in args and "-DGGML_AVX512=ON" in args and "-DGGML_AVX512_VNNI=ON" in args
    assert "-DGGML_AVX_VNNI=OFF" in args  # not listed: switching it on dies with "Illegal instruction"
    assert {"-DGGML_AMX_TILE=OFF", "-DGGML_AMX_INT8=OFF", "-DGGML_AMX_BF16=OFF"} <= set(args)
    sapphire = cmake_args(cpu_flags("flags : avx avx2 avx_vnni amx_tile amx_int8 amx_bf16"))
    assert "-DGGML_AVX_VNNI=ON" in sapphire and "-DGGML_AMX_TILE=OFF" in sapphire  # AMX crashes: always off
    assert "-DGGML_AVX512=OFF" in cmake_args(cpu_flags("flags : avx avx2 fma"))
    assert cmake_args(set(), machine="aarch64") == "-DGGML_NATIVE=ON"
