"""Export a peft LoRA adapter to llama.cpp's GGUF LoRA format, so the llama.cpp backend serves the fine-tuned model.

Each LoRA pair of a linear layer becomes two tensors named after the base model's GGUF tensor (from `gguf`'s own
name mapping) plus `.lora_a` / `.lora_b`: `A` is (rank, in), `B` is (out, rank), as llama.cpp expects. The rows of
`q_proj` and `k_proj` are stored permuted in a llama GGUF (the rotary layout of llama.cpp differs from Hugging
Face's), so `B` of those two gets the same row permutation; `A` acts on the input side and stays as it is.
"""

from __future__ import annotations

import functools
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chatbot.model import ModelError

# peft key: base_model.model.<hf module>.lora_A.weight (adapter name omitted in saved files)
_KEY = re.compile(r"^base_model\.model\.(?P<module>.+)\.lora_(?P<ab>[AB])(?:\.[^.]+)?\.weight$")


def permute_rows(w: Any, n_head: int) -> Any:
    """Hugging Face -> llama.cpp rotary layout of the rows of a q/k projection (as llama.cpp's converter does)."""
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def gguf_architecture(arch_fields: dict[str, Any]) -> tuple[str, int, int, int]:
    """(architecture, layers, heads, kv heads) from the key/values of the base model's GGUF."""
    arch = str(arch_fields["general.architecture"])
    return (arch, int(arch_fields[f"{arch}.block_count"]), int(arch_fields[f"{arch}.attention.head_count"]),
            int(arch_fields[f"{arch}.attention.head_count_kv"]))  # fmt: skip


def read_gguf_fields(path: str | Path, names: tuple[str, ...] = ()) -> dict[str, Any]:
    """Scalar and string key/values of a GGUF file (all of them, or only `names`). Parsing a model's header takes
    seconds (its tokenizer arrays), so each file version is parsed once per process."""
    stat = Path(path).stat()
    fields = _scalar_fields(str(Path(path).resolve()), stat.st_mtime_ns, stat.st_size)
    return {k: v for k, v in fields.items() if not names or k in names}


@functools.lru_cache(maxsize=8)
def _scalar_fields(path: str, mtime_ns: int, size: int) -> dict[str, Any]:
    from gguf import GGUFReader

    out: dict[str, Any] = {}
    for name, field in GGUFReader(path).fields.items():
        if not field.types or field.types[0].name == "ARRAY":
            continue
        value = field.parts[field.data[0]]
        out[name] = bytes(value).decode("utf-8") if field.types[0].name == "STRING" else value.tolist()[0]
    return out


@dataclass(frozen=True)
class LoraWeights:
    """A peft LoRA in llama.cpp's terms: per GGUF weight name, `A` (rank, in) and `B` (out, rank) with B's rows in
    llama.cpp's rotary layout; the update of that weight is `alpha / rank * B @ A`."""

    name: str
    alpha: float
    rank: int
    pairs: dict[str, tuple[Any, Any]]

    def delta(self, weight_name: str) -> Any | None:
        """The update of one GGUF weight (out, in) as float32, or None when the adapter leaves it alone."""
        if weight_name not in self.pairs:
            return None
        a, b = self.pairs[weight_name]
        return (self.alpha / self.rank) * (b @ a)


def read_lora(adapter_dir: str | Path, base_gguf: str | Path) -> LoraWeights:
    """Read a peft LoRA folder and map it onto the tensors of the model in `base_gguf`."""
    import gguf
    import numpy as np
    from safetensors.numpy import load_file

    adapter_dir = Path(adapter_dir)
    config_file, weights_file = adapter_dir / "adapter_config.json", adapter_dir / "adapter_model.safetensors"
    if not config_file.exists() or not weights_file.exists():
        raise ModelError(f"{adapter_dir} is not a peft adapter folder (adapter_config.json and "
                         "adapter_model.safetensors expected)")  # fmt: skip
    config = json.loads(config_file.read_text(encoding="utf-8"))
    if config.get("peft_type") != "LORA":
        raise ModelError(f"{adapter_dir} holds a {config.get('peft_type')} adapter; only LoRA exports to llama.cpp")
    if any(config.get(key) for key in ("use_dora", "use_rslora", "rank_pattern", "alpha_pattern")):
        raise ModelError(f"{adapter_dir}: DoRA, rsLoRA and per-layer ranks/alphas do not export to llama.cpp; "
                         "train a plain LoRA (the default of `chatbot train`)")  # fmt: skip
    fields = read_gguf_fields(base_gguf)
    arch, n_layers, n_head, n_kv_head = gguf_architecture(fields)
    try:
        name_map = gguf.get_tensor_name_map(gguf.MODEL_ARCH[arch.upper()], n_layers)
    except KeyError as exc:
        raise ModelError(f"{base_gguf}: gguf has no tensor names for architecture {arch!r}") from exc

    halves: dict[str, dict[str, Any]] = {}
    for key, tensor in load_file(str(weights_file)).items():
        match = _KEY.match(key)
        if match is None:
            raise ModelError(f"{weights_file}: cannot export tensor {key!r} (only LoRA A/B of linear layers)")
        halves.setdefault(match["module"], {})[match["ab"]] = tensor.astype(np.float32)
    if not halves:
        raise ModelError(f"{weights_file} holds no LoRA tensors")
    pairs = {}
    for module, ab in sorted(halves.items()):
        target = name_map.get_name(module)
        if target is None or set(ab) != {"A", "B"}:
            raise ModelError(f"{weights_file}: no llama.cpp tensor for {module!r} (or an A/B half is missing)")
        b = ab["B"]
        if module.endswith("q_proj"):
            b = permute_rows(b, n_head)
        elif module.endswith("k_proj"):
            b = permute_rows(b, n_kv_head)
        pairs[f"{target}.weight"] = (np.ascontiguousarray(ab["A"]), np.ascontiguousarray(b))
    return LoraWeights(adapter_dir.name, float(config["lora_alpha"]), int(config["r"]), pairs)


def open_writer(out: Path, arch: str) -> Any:
    """A `GGUFWriter` for `out` that writes under a temporary name; `finish` moves the file into place, so nobody
    ever reads half a file."""
    import gguf

    out.parent.mkdir(parents=True, exist_ok=True)
    return gguf.GGUFWriter(str(out.with_name(f".{out.name}.tmp{os.getpid()}")), arch)


def finish(writer: Any, out: Path) -> Path:
    """Write everything added to `writer` (from `open_writer(out, ...)`), then rename it to `out`."""
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    Path(writer.path).replace(out)
    return out


def export_lora(adapter_dir: str | Path, base_gguf: str | Path, out: str | Path) -> Path:
    """Write `adapter_dir` (a peft LoRA folder) as a GGUF LoRA for the model in `base_gguf`; returns `out`."""
    import gguf

    lora = read_lora(adapter_dir, base_gguf)
    arch = read_gguf_fields(base_gguf, ("general.architecture",))["general.architecture"]
    out = Path(out)
    writer = open_writer(out, arch)
    writer.add_type(gguf.GGUFType.ADAPTER)
    writer.add_string(gguf.Keys.Adapter.TYPE, "lora")
    writer.add_float32(gguf.Keys.Adapter.LORA_ALPHA, lora.alpha)
    writer.add_name(lora.name)
    for weight, (a, b) in lora.pairs.items():
        writer.add_tensor(f"{weight}.lora_a", a)
        writer.add_tensor(f"{weight}.lora_b", b)
    return finish(writer, out)
