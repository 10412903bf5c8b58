"""The batching scheduler: one model serves many conversations by decoding them together.

One worker thread owns a `ModelRunner` (the torch runner in `chatbot/torch_runner.py`, the llama.cpp one in
`chatbot/llamacpp/runner.py`). The scheduler does everything that is not a forward pass: the queue and its limit,
admission, cancellation, token choice (`generate.choose_tokens`), stop strings and incremental detokenization
(`generate.PieceDecoder`). The runner only reads prompts into KV-cache slots and decodes one token per slot (a
`DraftingRunner` also checks several drafted tokens per slot in one pass).

Each step advances every running conversation by one token in one `decode` (on a drafting runner, greedy replies
also take the prompt-lookup draft's tokens the model agrees with: `chatbot/draft.py`, `_decode`), then reads the
waiting prompts that fit `scheduler.prefill_tokens` (always at least one) in one `prefill`: each conversation
decodes every step, and the torch runner's one batched cache holds exactly the running rows at each decode.
Finished or cancelled conversations leave at once (their slot is released). So a new customer's first token waits
for at most one batch of prompts, and running replies are never held up by more than that.
(The split follows vLLM's scheduler / model-runner division; read, not copied.)
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from chatbot.config import GenerationConfig, SchedulerConfig
from chatbot.draft import PromptLookup
from chatbot.generate import BusyError, GenerationError, PieceDecoder, choose_tokens, make_generator, stop_token_ids

log = logging.getLogger(__name__)

_END = object()


class ModelRunner(Protocol):
    """The forward passes of one model over numbered KV-cache slots (`0 .. slots - 1`), owned by the scheduler's
    worker thread. Logits are returned as a float torch tensor of shape (rows, vocab), one row per slot given."""

    device: str
    """Where token choice runs (`cpu`, `cuda`)."""
    slots: int
    """How many conversations the runner holds at once."""
    context_tokens: int | None
    """Room for prompt plus reply in one slot; None when only memory limits it."""

    def prefill(self, slots: list[int], prompts: list[list[int]]) -> Any:
        """Read each prompt into its (free) slot; the logits of each prompt's last token."""
        ...

    def decode(self, slots: list[int], tokens: list[int], positions: list[int]) -> Any:
        """Feed one token per slot at the given position; the logits after it."""
        ...

    def release(self, slot: int) -> None:
        """Forget a slot's conversation (finished or cancelled)."""
        ...

    def reset(self) -> None:
        """Forget every slot (after a failed step)."""
        ...

    def swap_weights(self, weights: Any) -> Any:
        """Decode with `weights` from the next step on, the running conversations' caches kept; returns the old
        weights."""
        ...


@runtime_checkable
class DraftingRunner(ModelRunner, Protocol):
    """A runner that can also check drafted tokens (prompt lookup, `chatbot/draft.py`): several tokens per slot in
    one pass, and the cache cut back to the tokens that were kept."""

    def verify(self, slots: list[int], tokens: list[list[int]], positions: list[int]) -> list[Any]:
        """Feed each slot its tokens from its position on; per slot, the logits after each of them (len, vocab)."""
        ...

    def trim(self, slot: int, length: int) -> None:
        """Forget the slot's cache from position `length` on (drafted tokens that were not kept)."""
        ...


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
    slot: int = -1
    position: int = 0
    """Position of the next token to feed."""
    last: int = 0
    done: bool = False
    finish_reason: str = ""
    external: threading.Event | None = None
    """The caller's cancel event (the customer pressed stop); never set by the scheduler."""
    lookup: PromptLookup | None = None
    """Where drafts come from, when this request is drafted (greedy, on a drafting runner)."""

    @property
    def cancelled(self) -> bool:
        return self.cancel.is_set() or (self.external is not None and self.external.is_set())


class ScheduledStream:
    """The pieces of one request as the scheduler produces them; counters fill in as it runs.

    Closing the iterator early (the customer left) cancels the request.
    """

    def __init__(self, seq: _Sequence, timeout_s: float):
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
    """Batches the prompts and decode steps of concurrent requests on one runner (see the module docstring).

    `submit(prompt_ids, config, cancel)` returns a `ScheduledStream` at once; the worker thread starts on
    `start()` (or the first submit). At most `runner.slots` (and `config.max_batch`) conversations run together;
    up to `config.max_queue` more wait, and beyond that `submit` raises `BusyError`.
    """

    def __init__(self, runner: ModelRunner, tokenizer: Any, config: SchedulerConfig | None = None,
                 on_start: Callable[[], None] | None = None):  # fmt: skip
        self.runner = runner
        self.tokenizer = tokenizer
        self.config = config or SchedulerConfig()
        self._on_start = on_start
        self._incoming: queue.Queue[_Sequence] = queue.Queue()
        self._commands: queue.Queue[tuple[Any, threading.Event, list]] = queue.Queue()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._stops = stop_token_ids(tokenizer)
        self._free = list(range(min(self.config.max_batch, runner.slots)))[::-1]
        self._drafting = self.config.draft_tokens > 0 and isinstance(runner, DraftingRunner)
        self.active = 0
        self.steps = 0

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
            decoder=PieceDecoder(self.tokenizer, config.stop),
            generator=make_generator(config, self.runner.device),
        )
        self._incoming.put(seq)
        self._wake.set()
        return ScheduledStream(seq, self.config.request_timeout_s)

    def call(self, fn: Callable[[ModelRunner], Any]) -> Any:
        """Run `fn(runner)` on the worker thread between two steps (adapter switching) and return its result."""
        if self._thread is None or not self._thread.is_alive():
            return fn(self.runner)
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
        if self._on_start is not None:
            self._on_start()
        rows: list[_Sequence] = []
        while not self._stop.is_set():
            self._run_commands()
            rows = self._drop_finished(rows)
            self.active = len(rows)
            arrivals = self._admit()
            if not rows and not arrivals:
                self._wake.wait(timeout=0.5)
                self._wake.clear()
                continue
            try:
                if rows:
                    self._decode(rows)
                if arrivals:
                    logits = self.runner.prefill([s.slot for s in arrivals], [s.prompt_ids for s in arrivals])
                    self._choose(arrivals, logits)
                rows += arrivals
                self.steps += 1
            except Exception as exc:  # a failed step fails its rows, never the worker
                log.exception("generation step failed")
                for seq in rows + arrivals:
                    if not seq.done:
                        seq.done = True
                        seq.finish_reason = "error"
                        seq.out.put(exc)
                self.runner.reset()
                self._free = list(range(min(self.config.max_batch, self.runner.slots)))[::-1]
                rows = []
        for seq in rows:  # closed: the replies still running end here, and every slot is released
            if not seq.done:
                seq.done, seq.finish_reason = True, "cancelled"
                seq.out.put(_END)
        self._drop_finished(rows)
        self.active = 0

    def _admit(self) -> list[_Sequence]:
        """Waiting requests for this step's prefill: as many as have a free slot and fit the token budget."""
        arrivals: list[_Sequence] = []
        budget = self.config.prefill_tokens
        room = self.runner.context_tokens
        while self._free:
            try:
                seq = self._incoming.queue[0]  # peek: one that does not fit waits for the next step
            except IndexError:
                break
            if arrivals and len(seq.prompt_ids) > budget:
                break
            self._incoming.get_nowait()
            if seq.cancelled:
                seq.finish_reason = "cancelled"
                seq.out.put(_END)
                continue
            if room is not None and len(seq.prompt_ids) >= room:  # fails alone: the others keep decoding
                seq.done, seq.finish_reason = True, "error"
                seq.out.put(GenerationError(f"the prompt has {len(seq.prompt_ids)} tokens, more than "
                                            f"llamacpp.context_tokens ({room}); raise it or lower "
                                            "prompt.max_prompt_tokens"))  # fmt: skip
                continue
            budget -= len(seq.prompt_ids)
            seq.slot = self._free.pop()
            seq.position = len(seq.prompt_ids)
            if self._drafting and seq.config.temperature == 0:
                seq.lookup = PromptLookup(seq.prompt_ids)
            arrivals.append(seq)
        return arrivals

    def _run_commands(self) -> None:
        while True:
            try:
                fn, done, box = self._commands.get_nowait()
            except queue.Empty:
                return
            try:
                box.append(fn(self.runner))
            except BaseException as exc:  # handed back to the caller
                box.append(exc)
            done.set()

    def _decode(self, rows: list[_Sequence]) -> None:
        """One decode step: every row's next token, plus the drafted tokens the model agrees with."""
        import torch

        drafts = self._drafts(rows)
        if not any(drafts):
            logits = self.runner.decode([s.slot for s in rows], [s.last for s in rows], [s.position - 1 for s in rows])
            self._choose(rows, logits)
            return
        logits = self.runner.verify([s.slot for s in rows], [[s.last, *d] for s, d in zip(rows, drafts, strict=True)],
                                    [s.position - 1 for s in rows])  # fmt: skip
        # Position j of every row still agreeing with its draft is chosen together, exactly as a plain step would
        # choose it (the penalties see the tokens taken before it), until the choice leaves the draft.
        going = list(range(len(rows)))
        j = 0
        while going:
            chosen = choose_tokens(torch.stack([logits[i][j] for i in going]), [rows[i].generated for i in going],
                                   [rows[i].config for i in going], [rows[i].generator for i in going])  # fmt: skip
            agreeing = []
            for i, token in zip(going, chosen, strict=True):
                self._emit(rows[i], token)
                if not rows[i].done and j < len(drafts[i]) and token == drafts[i][j]:
                    agreeing.append(i)
            going, j = agreeing, j + 1
        for seq, draft in zip(rows, drafts, strict=True):
            if draft and not seq.done:  # the cache holds `last` and the draft; keep up to the token taken last
                self.runner.trim(seq.slot, seq.position - 1)

    def _drafts(self, rows: list[_Sequence]) -> list[list[int]]:
        """Each row's drafted tokens for this step ([] for none), within the per-step budget: what is left of it is
        shared out over the rows still to draft, so under load every reply gets some (not the oldest ones all)."""
        budget = self.config.draft_step_tokens
        room = self.runner.context_tokens
        drafts = []
        for k, seq in enumerate(rows):
            share = budget // (len(rows) - k)
            limit = min(self.config.draft_tokens, share, seq.config.max_new_tokens - len(seq.generated) - 1)
            if room is not None:
                limit = min(limit, room - seq.position - 1)
            draft = seq.lookup.draft(seq.generated, limit) if seq.lookup is not None else []
            budget -= len(draft)
            drafts.append(draft)
        return drafts

    def _choose(self, rows: list[_Sequence], logits: Any) -> None:
        tokens = choose_tokens(
            logits, [s.generated for s in rows], [s.config for s in rows], [s.generator for s in rows]
        )
        for seq, token in zip(rows, tokens, strict=True):
            self._emit(seq, token)

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
        room = self.runner.context_tokens
        if seq.decoder.stopped:
            self._finish(seq, "stop")
        elif len(seq.generated) >= seq.config.max_new_tokens or (room is not None and seq.position >= room):
            self._finish(seq, "length")

    def _finish(self, seq: _Sequence, reason: str) -> None:
        tail = seq.decoder.flush()
        if tail:
            seq.out.put(tail)
        seq.done = True
        seq.finish_reason = reason
        seq.out.put(_END)

    def _drop_finished(self, rows: list[_Sequence]) -> list[_Sequence]:
        """Release the slots of finished or cancelled rows; the rows still running."""
        keep = []
        for seq in rows:
            if not seq.done and seq.cancelled:
                seq.done = True
                seq.finish_reason = "cancelled"
                seq.out.put(_END)
            if seq.done:
                self.runner.release(seq.slot)
                self._free.append(seq.slot)
            else:
                keep.append(seq)
        return keep
