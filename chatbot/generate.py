"""Token generation as an iterator of text pieces: incremental decoding with stop strings held back, repetition
penalty and n-gram blocking (the 135M model loops without them), greedy or sampled choice, cancellation.

`PieceDecoder` and `choose_tokens` are shared by the single-stream loop here and the batching scheduler.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from chatbot.config import GenerationConfig

END_OF_TURN_TOKENS = ("<|im_end|>", "<|endoftext|>", "<|eot_id|>", "<|end|>", "</s>", "<end_of_turn>")


class GenerationError(RuntimeError):
    """Generation failed or could not start; the message says why and what to do."""


class BusyError(GenerationError):
    """The scheduler's queue is full; retry shortly or raise `scheduler.max_queue`."""


@dataclass(frozen=True)
class GenerationRequest:
    """What a backend generates for: chat messages (from `prompt.build_messages`) and the settings."""

    messages: list[dict[str, str]]
    generation: GenerationConfig = field(default_factory=GenerationConfig)
    max_prompt_tokens: int = 1536


class TextStream(Protocol):
    """An iterator of text pieces with counters filled in as it runs."""

    n_tokens: int
    prompt_tokens: int
    finish_reason: str

    def __iter__(self) -> Iterator[str]: ...


class Backend(Protocol):
    """A text generator the engine talks to: the local scheduler, an OpenAI-compatible server, or a test fake."""

    name: str
    adapter: str | None

    def warm_up(self) -> None: ...

    def stream(self, request: GenerationRequest, cancel: threading.Event | None = None) -> TextStream: ...

    def set_adapter(self, path_or_name: str | None) -> str | None: ...

    def health(self) -> dict[str, Any]: ...

    def close(self) -> None: ...


def forward(model: Any, **kwargs: Any) -> tuple[Any, Any]:
    """`model(...)` with the KV cache passed under the name this transformers version uses (`cache` in 5.2x,
    `past_key_values` before); returns `(logits, cache)`."""
    cache = kwargs.pop("cache", None)
    out = model(**kwargs, **{_cache_name(model): cache})
    return out.logits, (out.cache if hasattr(out, "cache") else out.past_key_values)


_CACHE_NAMES: dict[type, str] = {}


def _cache_name(model: Any) -> str:
    import inspect

    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    if type(base) not in _CACHE_NAMES:
        params = inspect.signature(base.forward).parameters
        _CACHE_NAMES[type(base)] = "cache" if "cache" in params else "past_key_values"
    return _CACHE_NAMES[type(base)]


def stop_token_ids(tokenizer: Any) -> set[int]:
    """Token ids that end a reply: the tokenizer's EOS and the chat template's end-of-turn tokens."""
    ids = set()
    if tokenizer.eos_token_id is not None:
        ids.add(int(tokenizer.eos_token_id))
    vocab = tokenizer.get_vocab()
    for token in END_OF_TURN_TOKENS:
        if token in vocab:
            ids.add(int(vocab[token]))
    return ids


class PieceDecoder:
    """Turns a growing list of token ids into text pieces, O(1) work per token.

    The tokenizer's own incremental decoder (`tokenizers.decoders.DecodeStream`) turns each token into its new
    text, holding back an incomplete UTF-8 character; a tail that could be the start of a stop string is held
    back here, and when a stop string appears the text ends before it and `stopped` becomes True.
    """

    def __init__(self, tokenizer: Any, stop: Sequence[str] = ()):
        from tokenizers.decoders import DecodeStream

        self.tokenizer = tokenizer.backend_tokenizer
        self.stream = DecodeStream(skip_special_tokens=True)
        self.stop = tuple(s for s in stop if s)
        self.text = ""
        """Everything decoded so far."""
        self.emitted = 0
        """How much of `text` has been handed out."""
        self.stopped = False

    def push(self, token_id: int) -> str:
        """Add one token; return the text now safe to show (may be empty)."""
        if self.stopped:
            return ""
        self.text += self.stream.step(self.tokenizer, int(token_id)) or ""
        end = len(self.text)
        for stop in self.stop:  # a stop string starts after what was shown: its beginning was held back
            at = self.text.find(stop, self.emitted)
            if at >= 0:
                self.stopped = True
                end = min(end, at)
        if not self.stopped:
            for stop in self.stop:
                for k in range(min(len(stop) - 1, end - self.emitted), 0, -1):
                    if self.text.endswith(stop[:k]):
                        end = min(end, len(self.text) - k)
                        break
        if self.stopped:
            self.text = self.text[:end]
        piece = self.text[self.emitted : end]
        self.emitted = end
        return piece

    def flush(self) -> str:
        """The held-back tail at the end of generation (a partial stop string that never completed)."""
        if self.stopped:
            return ""
        piece = self.text[self.emitted :]
        self.emitted = len(self.text)
        return piece


def choose_tokens(logits: Any, histories: Sequence[Sequence[int]], configs: Sequence[GenerationConfig],
                  generators: Sequence[Any]) -> list[int]:  # fmt: skip
    """Pick the next token of each row of `logits` (B, V) given each row's generated ids and settings.

    Applies the repetition penalty and n-gram blocking over the reply's own tokens (not the prompt: copying facts
    from the sources must stay cheap), then greedy or temperature/top-k/top-p sampling.
    """
    import torch

    scores = logits.float().clone()  # (B, V); the model's own logits stay untouched
    device = scores.device
    # Repetition penalty for all rows at once: one (B, L) index of each row's distinct reply tokens, padded with
    # the row's first token (a padded slot computes the same penalised value from the same original, so the
    # duplicate writes of scatter agree).
    rows = [(r, sorted(set(h)), c.repetition_penalty) for r, (h, c) in enumerate(zip(histories, configs, strict=True))
            if h and c.repetition_penalty != 1.0]  # fmt: skip
    if rows:
        width = max(len(ids) for _, ids, _ in rows)
        index = torch.tensor([ids + [ids[0]] * (width - len(ids)) for _, ids, _ in rows], dtype=torch.long)
        penalty = torch.tensor([p for _, _, p in rows], dtype=scores.dtype).unsqueeze(1)
        row_ids = torch.tensor([r for r, _, _ in rows], dtype=torch.long)
        index, penalty, row_ids = index.to(device), penalty.to(device), row_ids.to(device)
        values = scores[row_ids].gather(1, index)
        updated = torch.where(values > 0, values / penalty, values * penalty)
        block = scores[row_ids]
        block.scatter_(1, index, updated)
        scores[row_ids] = block
    # n-gram blocking: the banned (row, token) pairs are found on the host, set in one indexing op.
    banned_rows, banned_tokens = [], []
    for row, (history, config) in enumerate(zip(histories, configs, strict=True)):
        n = config.no_repeat_ngram_size
        if n and len(history) >= n:
            prefix = tuple(history[len(history) - n + 1 :])
            for i in range(len(history) - n + 1):
                if tuple(history[i : i + n - 1]) == prefix:
                    banned_rows.append(row)
                    banned_tokens.append(history[i + n - 1])
    if banned_rows:
        scores[torch.tensor(banned_rows, device=device), torch.tensor(banned_tokens, device=device)] = float("-inf")
    chosen = torch.argmax(scores, dim=-1).tolist()  # one device sync for the whole batch
    for row, (config, generator) in enumerate(zip(configs, generators, strict=True)):
        if config.temperature == 0:
            continue
        row_scores = scores[row] / config.temperature
        if config.top_k:
            kth = torch.topk(row_scores, min(config.top_k, row_scores.numel())).values[-1]
            row_scores = row_scores.masked_fill(row_scores < kth, float("-inf"))
        probs = torch.softmax(row_scores, dim=-1)
        if config.top_p < 1.0:
            sorted_probs, order = torch.sort(probs, descending=True)
            outside = torch.cumsum(sorted_probs, dim=-1) - sorted_probs > config.top_p
            sorted_probs[outside] = 0
            probs = torch.zeros_like(probs).scatter(0, order, sorted_probs)
        chosen[row] = int(torch.multinomial(probs, 1, generator=generator))
    return [int(t) for t in chosen]


def make_generator(config: GenerationConfig, device: str = "cpu") -> Any:
    import torch

    generator = torch.Generator(device=device)
    generator.manual_seed(config.seed)
    return generator


class SingleStream:
    """One prompt generated on its own (no batching): the serial baseline and a simple backend for scripts.

    Iterate for text pieces; `n_tokens`, `prompt_tokens`, `finish_reason` (`stop`, `length`, `cancelled`) and
    `ttft_s` are filled in as it runs.
    """

    def __init__(self, loaded: Any, prompt_ids: list[int], config: GenerationConfig,
                 cancel: threading.Event | None = None):  # fmt: skip
        self.loaded = loaded
        self.prompt_ids = prompt_ids
        self.config = config
        self.cancel = cancel or threading.Event()
        self.n_tokens = 0
        self.prompt_tokens = len(prompt_ids)
        self.finish_reason = ""
        self.ttft_s: float | None = None

    def __iter__(self) -> Iterator[str]:
        import torch

        model, tokenizer, device = self.loaded.model, self.loaded.tokenizer, self.loaded.device
        stops = stop_token_ids(tokenizer)
        decoder = PieceDecoder(tokenizer, self.config.stop)
        generator = make_generator(self.config, device)
        start = time.perf_counter()
        cache = None
        input_ids = torch.tensor([self.prompt_ids], device=device)
        position = len(self.prompt_ids)
        generated: list[int] = []
        self.finish_reason = "length"
        with torch.inference_mode():
            for _ in range(self.config.max_new_tokens):
                if self.cancel.is_set():
                    self.finish_reason = "cancelled"
                    break
                logits, cache = forward(model, input_ids=input_ids, cache=cache, use_cache=True, logits_to_keep=1)
                token = choose_tokens(logits[:, -1, :], [generated], [self.config], [generator])[0]
                if token in stops:
                    self.finish_reason = "stop"
                    break
                generated.append(token)
                self.n_tokens += 1
                piece = decoder.push(token)
                if piece:
                    if self.ttft_s is None:
                        self.ttft_s = time.perf_counter() - start
                    yield piece
                if decoder.stopped:
                    self.finish_reason = "stop"
                    break
                input_ids = torch.tensor([[token]], device=device)
                position += 1
        tail = decoder.flush()
        if tail:
            yield tail
