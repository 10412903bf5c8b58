"""The batching scheduler: one model serves many conversations by decoding them together.

One worker thread owns the model. New requests are prefilled together as soon as they arrive (left-padded, one
forward pass), then join the running batch: their KV caches are left-padded to the batch's length and stacked,
so each decode step advances every active conversation by one token in a single forward pass. Finished or
cancelled rows leave the batch at once. Every request gets its first token after at most one prefill and one
decode step of the others, instead of waiting for whole replies in line.

`TransformersBackend` puts the prompt format, the scheduler and adapter switching behind the engine's
`Backend` interface.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chatbot.config import GenerationConfig, ModelConfig, SchedulerConfig
from chatbot.generate import (
    BusyError,
    GenerationError,
    GenerationRequest,
    PieceDecoder,
    choose_tokens,
    forward,
    make_generator,
    stop_token_ids,
)

log = logging.getLogger(__name__)

_END = object()


@dataclass(eq=False)
class _Sequence:
    prompt_ids: list[int]
    config: GenerationConfig
    cancel: threading.Event
    """Internal: set when the consumer stops reading."""
    out: queue.Queue
    decoder: PieceDecoder
    generator: Any
    generated: list[int] = field(default_factory=list)
    position: int = 0
    """Position id of the next token to feed."""
    last: int = 0
    done: bool = False
    finish_reason: str = ""
    external: threading.Event | None = None
    """The caller's cancel event (the customer pressed stop); never set by the scheduler."""

    @property
    def cancelled(self) -> bool:
        return self.cancel.is_set() or (self.external is not None and self.external.is_set())


class ScheduledStream:
    """The pieces of one request as the scheduler produces them; counters fill in as it runs.

    Closing the iterator early (the customer left) cancels the request.
    """

    def __init__(self, scheduler: BatchScheduler, seq: _Sequence, timeout_s: float):
        self._scheduler = scheduler
        self._seq = seq
        self._timeout = timeout_s
        self.prompt_tokens = len(seq.prompt_ids)
        self.n_tokens = 0
        self.finish_reason = ""
        self.ttft_s: float | None = None

    def __iter__(self) -> Iterator[str]:
        start = time.perf_counter()
        seq = self._seq
        try:
            while True:
                try:
                    item = seq.out.get(timeout=self._timeout)
                except queue.Empty:
                    seq.cancel.set()
                    raise GenerationError(
                        f"no token for {self._timeout:.0f} s; the request was cancelled "
                        "(raise scheduler.request_timeout_s or lower the load)"
                    ) from None
                if item is _END:
                    break
                if isinstance(item, BaseException):
                    raise GenerationError(f"generation failed: {item}") from item
                if self.ttft_s is None:
                    self.ttft_s = time.perf_counter() - start
                yield item
        finally:
            seq.cancel.set()
            self.n_tokens = len(seq.generated)
            self.finish_reason = seq.finish_reason or "cancelled"


class BatchScheduler:
    """Batches the decode steps of concurrent requests on one model (see the module docstring).

    `submit(prompt_ids, config, cancel)` returns a `ScheduledStream` at once; the worker thread starts on
    `start()` (or the first submit). At most `config.max_batch` rows decode together; up to `config.max_queue`
    more wait, and beyond that `submit` raises `BusyError`.
    """

    arrivals_per_step: int | None = None
    """Most waiting requests prefilled in one step (None: all that fit the batch)."""

    def __init__(self, loaded: Any, config: SchedulerConfig | None = None, threads: int = 0):
        self.loaded = loaded
        self.config = config or SchedulerConfig()
        self.threads = threads
        self._incoming: queue.Queue[_Sequence] = queue.Queue()
        self._commands: queue.Queue[tuple[Any, threading.Event, list]] = queue.Queue()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._stops = stop_token_ids(loaded.tokenizer)
        self.active = 0
        self.steps = 0

    # -- public -----------------------------------------------------------------------------------------------
    @property
    def queue_depth(self) -> int:
        """Requests waiting plus those decoding."""
        return self._incoming.qsize() + self.active

    def start(self) -> None:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._stop.clear()
                self._thread = threading.Thread(target=self._run, name="chatbot-scheduler", daemon=True)
                self._thread.start()

    def submit(self, prompt_ids: list[int], config: GenerationConfig,
               cancel: threading.Event | None = None) -> ScheduledStream:  # fmt: skip
        if self._stop.is_set():
            raise GenerationError("the scheduler is closed; create a new engine")
        if self._incoming.qsize() >= self.config.max_queue + self.config.max_batch:
            raise BusyError(f"{self.queue_depth} requests are waiting; retry shortly or raise scheduler.max_queue")
        self.start()
        seq = _Sequence(
            prompt_ids=list(prompt_ids),
            config=config,
            cancel=threading.Event(),
            external=cancel,
            out=queue.Queue(),
            decoder=PieceDecoder(self.loaded.tokenizer, config.stop),
            generator=make_generator(config, self.loaded.device),
        )
        self._incoming.put(seq)
        self._wake.set()
        return ScheduledStream(self, seq, self.config.request_timeout_s)

    def call(self, fn: Any) -> Any:
        """Run `fn(model)` on the worker thread between decode steps (adapter switching) and return its result."""
        if self._thread is None or not self._thread.is_alive():
            return fn(self.loaded.model)
        done, box = threading.Event(), []
        self._commands.put((fn, done, box))
        self._wake.set()
        done.wait()
        if box and isinstance(box[0], BaseException):
            raise box[0]
        return box[0] if box else None

    def close(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

    # -- worker -----------------------------------------------------------------------------------------------
    def _run(self) -> None:
        import torch

        if self.threads:
            torch.set_num_threads(self.threads)
        rows: list[_Sequence] = []
        cache = None
        mask = None  # (B, T) attention mask over the cache columns
        while not self._stop.is_set():
            self._run_commands()
            rows, cache, mask = self._drop_finished(rows, cache, mask)
            self.active = len(rows)
            room = self.config.max_batch - len(rows)
            if self.arrivals_per_step is not None:
                room = min(room, self.arrivals_per_step)
            arrivals = []
            while room > 0:
                try:
                    seq = self._incoming.get_nowait()
                except queue.Empty:
                    break
                if seq.cancelled:
                    seq.finish_reason = "cancelled"
                    seq.out.put(_END)
                    continue
                arrivals.append(seq)
                room -= 1
            if not rows and not arrivals:
                self._wake.wait(timeout=0.5)
                self._wake.clear()
                continue
            try:
                with torch.inference_mode():
                    if arrivals:
                        new_cache, new_mask = self._prefill(arrivals)
                        rows, cache, mask = self._merge(rows, cache, mask, arrivals, new_cache, new_mask)
                    else:
                        cache, mask = self._decode(rows, cache, mask)
                self.steps += 1
            except Exception as exc:  # a failed step fails its rows, never the worker
                log.exception("generation step failed")
                for seq in rows + [a for a in arrivals if a not in rows]:
                    if not seq.done:
                        seq.done = True
                        seq.finish_reason = "error"
                        seq.out.put(exc)
                self._reset()
                rows, cache, mask = [], None, None
        for seq in rows:
            seq.finish_reason = "cancelled"
            seq.out.put(_END)
        self.active = 0

    def _run_commands(self) -> None:
        while True:
            try:
                fn, done, box = self._commands.get_nowait()
            except queue.Empty:
                return
            try:
                box.append(fn(self.loaded.model))
            except BaseException as exc:  # handed back to the caller
                box.append(exc)
            done.set()

    def _emit(self, seq: _Sequence, token: int) -> None:
        """Record one chosen token: stop, or decode and send its text."""
        if token in self._stops:
            self._finish(seq, "stop")
            return
        seq.generated.append(token)
        seq.last = token
        seq.position += 1
        piece = seq.decoder.push(token)
        if piece:
            seq.out.put(piece)
        if seq.decoder.stopped:
            self._finish(seq, "stop")
        elif len(seq.generated) >= seq.config.max_new_tokens:
            self._finish(seq, "length")

    def _finish(self, seq: _Sequence, reason: str) -> None:
        tail = seq.decoder.flush()
        if tail:
            seq.out.put(tail)
        seq.done = True
        seq.finish_reason = reason
        seq.out.put(_END)

    def _choose(self, rows: list[_Sequence], logits: Any) -> None:
        tokens = choose_tokens(
            logits, [s.generated for s in rows], [s.config for s in rows], [s.generator for s in rows]
        )
        for seq, token in zip(rows, tokens, strict=True):
            self._emit(seq, token)

    def _prefill(self, arrivals: list[_Sequence]) -> tuple[Any, Any]:
        import torch
        from transformers import DynamicCache

        device = self.loaded.device
        length = max(len(s.prompt_ids) for s in arrivals)
        pad = self.loaded.tokenizer.pad_token_id or 0
        ids = torch.full((len(arrivals), length), pad, dtype=torch.long)
        mask = torch.zeros((len(arrivals), length), dtype=torch.long)
        for i, seq in enumerate(arrivals):  # left padding: every prompt ends in the last column
            n = len(seq.prompt_ids)
            ids[i, length - n :] = torch.tensor(seq.prompt_ids)
            mask[i, length - n :] = 1
            seq.position = n
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        ids, mask, positions = ids.to(device), mask.to(device), positions.to(device)
        cache = DynamicCache()
        logits, cache = forward(
            self.loaded.model, input_ids=ids, attention_mask=mask, position_ids=positions, cache=cache,
            use_cache=True, logits_to_keep=1,
        )  # fmt: skip
        self._choose(arrivals, logits[:, -1, :])
        return cache, mask

    def _decode(self, rows: list[_Sequence], cache: Any, mask: Any) -> tuple[Any, Any]:
        import torch

        device = self.loaded.device
        ids = torch.tensor([[s.last] for s in rows], device=device)
        positions = torch.tensor([[s.position - 1] for s in rows], device=device)
        mask = torch.cat([mask, torch.ones((len(rows), 1), dtype=mask.dtype, device=device)], dim=1)
        logits, cache = forward(
            self.loaded.model, input_ids=ids, attention_mask=mask, position_ids=positions, cache=cache,
            use_cache=True, logits_to_keep=1,
        )  # fmt: skip
        self._choose(rows, logits[:, -1, :])
        return cache, mask

    def _merge(self, rows, cache, mask, arrivals, new_cache, new_mask):
        """Stack the arrivals' cache under the running batch's, left-padding the shorter one in time."""
        import torch

        if not rows:
            return list(arrivals), new_cache, new_mask
        t_old, t_new = mask.shape[1], new_mask.shape[1]
        length = max(t_old, t_new)

        def pad(tensor: Any, t: int) -> Any:  # (B, H, T, D) or (B, T), padded on the left of T
            if t == length:
                return tensor
            if tensor.dim() == 2:
                return torch.nn.functional.pad(tensor, (length - t, 0))
            return torch.nn.functional.pad(tensor, (0, 0, length - t, 0))

        for old_layer, new_layer in zip(cache.layers, new_cache.layers, strict=True):
            old_layer.keys = torch.cat([pad(old_layer.keys, t_old), pad(new_layer.keys, t_new)])
            old_layer.values = torch.cat([pad(old_layer.values, t_old), pad(new_layer.values, t_new)])
        mask = torch.cat([pad(mask, t_old), pad(new_mask, t_new)])
        return rows + list(arrivals), cache, mask

    def _drop_finished(self, rows, cache, mask):
        """Remove finished or cancelled rows from the batch, and cache columns no row attends to any more."""
        for seq in rows:
            if not seq.done and seq.cancelled:
                seq.done = True
                seq.finish_reason = "cancelled"
                seq.out.put(_END)
        keep = [i for i, s in enumerate(rows) if not s.done]
        if len(keep) == len(rows):
            return rows, cache, mask
        return self._keep(rows, keep, cache, mask)

    def _reset(self) -> None:
        """After a failed step: forget every row's state (the transformers cache is simply dropped)."""

    def _keep(self, rows, keep, cache, mask):
        """The rows at the indices `keep`, with their cache and mask."""
        if not keep:
            return [], None, None
        import torch

        index = torch.tensor(keep, device=mask.device)
        mask = mask.index_select(0, index)
        used = mask.any(dim=0).nonzero()
        first = int(used[0]) if used.numel() else 0
        mask = mask[:, first:]
        for layer in cache.layers:
            layer.keys = layer.keys.index_select(0, index)[:, :, first:]
            layer.values = layer.values.index_select(0, index)[:, :, first:]
        return [rows[i] for i in keep], cache, mask


class TransformersBackend:
    """The local backend: a transformers model (with its peft adapter) behind the batching scheduler.

    Cheap to construct; `warm_up()` loads the model (or takes an already `loaded` one, for tests).
    """

    def __init__(self, model_config: ModelConfig | None = None, scheduler_config: SchedulerConfig | None = None,
                 loaded: Any = None):  # fmt: skip
        self.model_config = model_config or ModelConfig()
        self.scheduler_config = scheduler_config or SchedulerConfig()
        self.loaded = loaded
        self.scheduler: BatchScheduler | None = None
        self.name = self.model_config.name
        self._adapters: dict[str, str] = {}

    @property
    def adapter(self) -> str | None:
        return self._adapter if self.loaded is not None else None

    def warm_up(self) -> None:
        if self.loaded is None:
            from chatbot.model import load_model

            self.loaded = load_model(self.model_config)
        self._adapter = self.loaded.adapter
        if self._adapter:
            self._adapters[self._adapter] = self._adapter
        self.scheduler = BatchScheduler(self.loaded, self.scheduler_config, self.model_config.threads)
        self.scheduler.start()

    def _require(self) -> BatchScheduler:
        if self.scheduler is None:
            raise GenerationError("the model is not loaded: call warm_up() first")
        return self.scheduler

    def render(self, request: GenerationRequest) -> list[int]:
        from chatbot.prompt import render_prompt

        self._require()
        return render_prompt(self.loaded.tokenizer, request.messages, request.max_prompt_tokens)

    def stream(self, request: GenerationRequest, cancel: threading.Event | None = None) -> ScheduledStream:
        """Queue the request; iterate the result for text pieces."""
        scheduler = self._require()
        return scheduler.submit(self.render(request), request.generation, cancel)

    def set_adapter(self, path_or_name: str | None) -> str | None:
        """Switch the adapter between decode steps: a folder (loaded once), a loaded name, or None/`none` for the
        base model. Returns the active adapter name."""
        scheduler = self._require()
        from chatbot.model import adapter_name, resolve_adapter

        if path_or_name is None or str(path_or_name).lower() == "none":
            target, path = None, None
        elif str(path_or_name) in self._adapters:
            target, path = str(path_or_name), None
        else:
            path = resolve_adapter(str(path_or_name))
            target = adapter_name(Path(path))

        def switch(model: Any) -> Any:
            from peft import PeftModel

            if target is None:
                if isinstance(model, PeftModel):
                    model.base_model.disable_adapter_layers()
                    self.loaded = _replace_model(self.loaded, model, None)
                    scheduler.loaded = self.loaded
                return None
            if path is not None and target not in self._adapters:
                if isinstance(model, PeftModel):
                    model.load_adapter(str(path), adapter_name=target)
                else:
                    model = PeftModel.from_pretrained(model, str(path), adapter_name=target)
                model.to(device=self.loaded.device, dtype=self.loaded.dtype)
                model.eval()
                self._adapters[target] = str(path)
            model.base_model.enable_adapter_layers()
            model.set_adapter(target)
            self.loaded = _replace_model(self.loaded, model, target)
            scheduler.loaded = self.loaded
            return target

        self._adapter = scheduler.call(switch)
        return self._adapter

    def health(self) -> dict[str, Any]:
        return {
            "backend": "transformers",
            "model": self.name,
            "model_loaded": self.loaded is not None and self.scheduler is not None,
            "device": self.loaded.device if self.loaded else None,
            "dtype": str(self.loaded.dtype).removeprefix("torch.") if self.loaded else None,
            "adapter": self.adapter,
            "queue_depth": self.scheduler.queue_depth if self.scheduler else 0,
        }

    def close(self) -> None:
        if self.scheduler is not None:
            self.scheduler.close()


def _replace_model(loaded: Any, model: Any, adapter: str | None) -> Any:
    import dataclasses

    return dataclasses.replace(loaded, model=model, adapter=adapter)
