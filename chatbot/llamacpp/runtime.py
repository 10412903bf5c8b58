"""A thin layer over llama.cpp's C API (through llama-cpp-python's ctypes bindings) for our own scheduler.

llama-cpp-python's `Llama` class serves one sequence at a time and samples inside llama.cpp. The backend needs
more: several sequences decoded in one batch, the logits of each (our repetition penalty, n-gram blocking and
sampling are shared with the transformers backend), a sequence's KV cache moved between two contexts, and LoRA
adapters switched while serving. Those are all public llama.cpp functions; this module wraps the few it uses.
"""

from __future__ import annotations

import ctypes
import threading
from pathlib import Path
from typing import Any

from chatbot.model import ModelError

_init_lock = threading.Lock()
_initialised = False
_log_callback: Any = None  # kept referenced: llama.cpp calls it for as long as the process runs


def llama_cpp_module() -> Any:
    """The `llama_cpp` bindings, initialised once with llama.cpp's logging off (errors still raise here)."""
    global _initialised, _log_callback
    try:
        import llama_cpp
    except ImportError as exc:
        raise ModelError(
            "the llama.cpp backend needs llama-cpp-python built for this processor: run `make llamacpp` "
            '(or CMAKE_ARGS="$(python -m chatbot.llamacpp.build)" pip install --no-cache-dir '
            "'.[llamacpp]'), or set [model] backend = \"transformers\""
        ) from exc
    with _init_lock:
        if not _initialised:
            llama_cpp.llama_backend_init()
            _log_callback = llama_cpp.llama_log_callback(lambda level, text, data: None)
            llama_cpp.llama_log_set(_log_callback, ctypes.c_void_p(0))
            _initialised = True
    return llama_cpp


class LlamaModel:
    """The weights of one GGUF file (memory-mapped) and the LoRA adapters loaded for it."""

    def __init__(self, path: str | Path):
        self.lib = llama_cpp_module()
        self.path = Path(path)
        self.ptr = self.lib.llama_model_load_from_file(str(self.path).encode(), self.lib.llama_model_default_params())
        if not self.ptr:
            raise ModelError(f"llama.cpp cannot load {self.path}; is it a GGUF model file?")
        self.n_vocab = int(self.lib.llama_vocab_n_tokens(self.lib.llama_model_get_vocab(self.ptr)))
        self.adapters: dict[str, Any] = {}

    def adapter(self, path: str | Path) -> Any:
        """The loaded LoRA adapter of a GGUF LoRA file (loaded once)."""
        key = str(path)
        if key not in self.adapters:
            ptr = self.lib.llama_adapter_lora_init(self.ptr, key.encode())
            if not ptr:
                raise ModelError(f"llama.cpp cannot load the LoRA {path} for {self.path.name}")
            self.adapters[key] = ptr
        return self.adapters[key]

    def close(self) -> None:
        if self.ptr:
            for ptr in self.adapters.values():
                self.lib.llama_adapter_lora_free(ptr)
            self.adapters.clear()
            self.lib.llama_model_free(self.ptr)
            self.ptr = None


class LlamaContext:
    """A llama.cpp context over a model: one KV cache of `n_cells` token cells shared by `n_seq` sequences (a
    prefix copied from one sequence to another shares its cells)."""

    def __init__(self, model: LlamaModel, n_seq: int, n_cells: int, threads: int, flash_attn: bool = True,
                 n_batch: int = 512):  # fmt: skip
        self.lib, self.model = model.lib, model
        params = self.lib.llama_context_default_params()
        params.n_ctx = n_cells
        params.n_batch = params.n_ubatch = n_batch
        params.n_seq_max = n_seq
        params.n_threads = params.n_threads_batch = threads
        params.flash_attn_type = 1 if flash_attn else 0
        params.kv_unified = True  # one cache for all sequences: a sequence's state moves between contexts
        params.no_perf = True
        self.ptr = self.lib.llama_init_from_model(model.ptr, params)
        if not self.ptr:
            raise ModelError(f"llama.cpp cannot create a context of {params.n_ctx} tokens for {model.path.name}")
        self.memory = self.lib.llama_get_memory(self.ptr)
        self.n_batch = n_batch
        self.batch = self.lib.llama_batch_init(n_batch, 0, 1)

    def decode(self, tokens: list[int], positions: list[int], seqs: list[int], want: list[bool]) -> Any:
        """Run one batch (at most `n_batch` tokens); returns the logits of the tokens marked in `want` as a
        (k, vocab) float32 array, in order."""
        import numpy as np

        n = len(tokens)
        batch = self.batch
        batch.n_tokens = n
        for i in range(n):
            batch.token[i] = tokens[i]
            batch.pos[i] = positions[i]
            batch.n_seq_id[i] = 1
            batch.seq_id[i][0] = seqs[i]
            batch.logits[i] = want[i]
        status = self.lib.llama_decode(self.ptr, batch)
        if status != 0:
            raise RuntimeError(f"llama_decode failed with status {status} (KV cache full or bad batch)")
        rows = [i for i in range(n) if want[i]]
        out = np.empty((len(rows), self.model.n_vocab), dtype=np.float32)
        for k, i in enumerate(rows):
            out[k] = np.ctypeslib.as_array(self.lib.llama_get_logits_ith(self.ptr, i), shape=(self.model.n_vocab,))
        return out

    def prefill(self, tokens: list[int], seq: int, start: int = 0) -> Any:
        """Feed prompt tokens into sequence `seq` from position `start` (the positions before it already in its
        cache); returns the last token's logits (vocab,)."""
        last = None
        for offset in range(0, len(tokens), self.n_batch):
            chunk = tokens[offset : offset + self.n_batch]
            end = offset + len(chunk) == len(tokens)
            first = start + offset
            logits = self.decode(chunk, list(range(first, first + len(chunk))), [seq] * len(chunk),
                                 [False] * (len(chunk) - 1) + [end])  # fmt: skip
            last = logits[0] if end else last
        return last

    def forget(self, seq: int, keep: int = 0) -> None:
        """Drop sequence `seq` from the KV cache (all but its first `keep` positions)."""
        self.lib.llama_memory_seq_rm(self.memory, seq, keep if keep else -1, -1)

    def decode_many(self, tokens: list[int], positions: list[int], seqs: list[int], want: list[bool]) -> Any:
        """`decode` of any number of tokens (of several sequences), in batches of `n_batch`."""
        import numpy as np

        parts = [self.decode(tokens[i : i + self.n_batch], positions[i : i + self.n_batch],
                             seqs[i : i + self.n_batch], want[i : i + self.n_batch])
                 for i in range(0, len(tokens), self.n_batch)]  # fmt: skip
        return np.concatenate(parts) if parts else np.empty((0, self.model.n_vocab), dtype=np.float32)

    def share(self, seq: int, dest_seq: int, n_tokens: int) -> None:
        """Let `dest_seq` start with the first `n_tokens` positions of `seq`'s cache (the cells are shared)."""
        self.lib.llama_memory_seq_cp(self.memory, seq, dest_seq, 0, n_tokens)

    def copy_sequence_to(self, other: LlamaContext, seq: int, dest_seq: int) -> None:
        """Move the KV cache of `seq` into `dest_seq` of another context over a model of the same architecture."""
        size = self.lib.llama_state_seq_get_size(self.ptr, seq)
        buffer = (ctypes.c_uint8 * size)()
        written = self.lib.llama_state_seq_get_data(self.ptr, buffer, size, seq)
        if not written or not self.lib.llama_state_seq_set_data(other.ptr, buffer, written, dest_seq):
            raise RuntimeError("llama.cpp could not move a sequence's KV cache between contexts")

    def set_adapter(self, lora: Any | None) -> None:
        """Apply a loaded LoRA (scale 1: the file's alpha/rank applies), or none."""
        if lora is None:
            status = self.lib.llama_set_adapters_lora(self.ptr, None, 0, None)
        else:
            adapters = (self.lib.llama_adapter_lora_p_ctypes * 1)(lora)
            status = self.lib.llama_set_adapters_lora(self.ptr, adapters, 1, (ctypes.c_float * 1)(1.0))
        if status:
            raise ModelError("llama.cpp refused the LoRA adapter for this model")

    def close(self) -> None:
        if self.ptr:
            self.lib.llama_batch_free(self.batch)
            self.lib.llama_free(self.ptr)
            self.ptr = None
