"""Dialogue evaluation: perplexity on assistant turns and ROUGE-L of generated against gold replies.

Perplexity is `exp(mean negative log-likelihood)` over every assistant-reply token of the logs (the same examples
as training builds, with the serving prompt). ROUGE-L is the LCS F1 between the reply the model generates for the
conversation so far (serving prompt and serving generation settings) and the agent's real reply, averaged over a
seeded sample of assistant turns. Tokens for ROUGE are lower-cased words, and each CJK character is one token, so
Chinese and Japanese replies score sensibly too.
"""

from __future__ import annotations

import contextlib
import math
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chatbot.config import AppConfig
from knowledge_base.text import CJK_CLASS
from training.data import Conversation, load_logs

# CJK ideographs, kana, hangul: one token per character. Everything else: runs of letters and digits.
_TOKEN = re.compile(f"[{CJK_CLASS}]|[^\\W_]+")


def rouge_tokens(text: str) -> list[str]:
    """Lower-cased word tokens; each CJK character is a token of its own."""
    return _TOKEN.findall(text.lower())


def lcs_length(a: Sequence[str], b: Sequence[str]) -> int:
    """Length of the longest common subsequence (O(len(a) * len(b)) time, O(len(b)) memory)."""
    if not a or not b:
        return 0
    previous = [0] * (len(b) + 1)
    for x in a:
        current = [0]
        for j, y in enumerate(b, start=1):
            current.append(previous[j - 1] + 1 if x == y else max(previous[j], current[j - 1]))
        previous = current
    return previous[-1]


def rouge_l(candidate: str, reference: str) -> float:
    """ROUGE-L F1 between a generated and a gold text (0 when either has no tokens)."""
    c, r = rouge_tokens(candidate), rouge_tokens(reference)
    lcs = lcs_length(c, r)
    if lcs == 0:
        return 0.0
    precision, recall = lcs / len(c), lcs / len(r)
    return 2 * precision * recall / (precision + recall)


@dataclass(frozen=True)
class ReplyTurn:
    """An assistant turn to generate: the conversation before it and the gold reply."""

    conversation_id: str
    history: tuple[Any, ...]
    gold: str
    language: str | None


def reply_turns(conversations: Sequence[Conversation]) -> list[ReplyTurn]:
    """Every assistant turn that answers a customer, with its history."""
    out = []
    for conv in conversations:
        turns = [t for t in conv.turns if t.role in ("user", "assistant")]
        for i, turn in enumerate(turns):
            if turn.role == "assistant" and i > 0 and turns[i - 1].role == "user":
                out.append(ReplyTurn(conv.id, tuple(turns[:i]), turn.content, conv.language))
    return out


def sample_turns(turns: Sequence[ReplyTurn], n: int, seed: int) -> list[ReplyTurn]:
    """A seeded sample of `n` turns (all when fewer)."""
    if n >= len(turns):
        return list(turns)
    return random.Random(seed).sample(list(turns), n)


def perplexity(
    model: Any, examples: Sequence[Any], pad_id: int, device: str, dtype: Any, batch_size: int = 8, progress: Any = None
) -> tuple[float, int]:
    """`(perplexity, tokens)` of `model` on the labelled tokens of `examples`."""
    import torch

    from training.examples import collate
    from training.loss import LabelledLoss

    wrapper = LabelledLoss(model)
    order = sorted(range(len(examples)), key=lambda i: len(examples[i].input_ids))
    nll, count = 0.0, 0
    autocast = (
        torch.autocast(device_type="cuda" if device.startswith("cuda") else "cpu", dtype=dtype)
        if dtype != torch.float32
        else contextlib.nullcontext()
    )
    with torch.inference_mode(), autocast:
        for s in range(0, len(order), batch_size):
            batch = collate([examples[i] for i in order[s : s + batch_size]], pad_id, device)
            total, n = wrapper(**batch)
            nll += float(total)
            count += int(n)
            if progress is not None:
                progress.update(len(batch["input_ids"]))
    return (math.exp(nll / count) if count else float("nan")), count


def generate_reply(loaded: Any, app: AppConfig, turn: ReplyTurn, max_new_tokens: int) -> str:
    """The reply serving would generate for `turn.history` without sources (same prompt, same settings)."""
    import dataclasses

    from chatbot.generate import SingleStream
    from chatbot.prompt import build_messages, render_prompt

    messages = build_messages(app.prompt, (), turn.history, turn.language or app.language.default)
    ids = render_prompt(loaded.tokenizer, messages, app.prompt.max_prompt_tokens)
    generation = dataclasses.replace(app.generation, max_new_tokens=max_new_tokens)
    return "".join(SingleStream(loaded, ids, generation)).strip()


def _no_adapter(model: Any) -> Any:
    return model.disable_adapter() if hasattr(model, "disable_adapter") else contextlib.nullcontext()


def evaluate_dialogue(
    logs: str | Path,
    *,
    adapter: str | None = None,
    sample: int = 32,
    compare: bool = False,
    max_conversations: int = 0,
    max_length: int = 512,
    max_new_tokens: int = 96,
    seed: int = 0,
    app: AppConfig | None = None,
    loaded: Any = None,
    progress: bool = True,
    strict: bool = False,
) -> dict[str, Any]:
    """The figures of `eval-dialogue`: `n_conversations`, `perplexity`, `rouge_l`, plus `n_tokens`, `n_rouge`,
    `adapter`; with `compare`, `{"base": {...}, "adapter": {...}, "ratios": {...}}` from one loaded model (the
    adapter switched off for the base figures). `design_json` keeps DESIGN.md's keys only.

    `adapter`: a folder, a name in `$CHATBOT_HOME/adapters`, `none`, or None for the configured default (the active
    adapter, else the shipped one). `sample` assistant turns are generated for ROUGE-L (0 = skip ROUGE-L);
    `max_conversations` caps the conversations used (0 = all). `loaded` is a preloaded model (tests).
    """
    from tqdm.auto import tqdm

    from chatbot.model import load_model
    from training.examples import build_examples

    app = app or AppConfig.load()
    conversations, report = load_logs(logs, strict=strict, redact=True)
    if max_conversations:
        conversations = random.Random(seed).sample(conversations, min(max_conversations, len(conversations)))
    if loaded is None:
        loaded = load_model(app.model, adapter=adapter if adapter is not None else ...)
    if compare and loaded.adapter is None:
        raise ValueError("--compare needs an adapter: give --adapter DIR (or activate one with `chatbot adapters`)")
    language = app.language.default
    examples = build_examples(conversations, loaded.tokenizer, app.prompt, max_length, language)
    turns = sample_turns(reply_turns(conversations), sample, seed)
    pad_id = loaded.tokenizer.pad_token_id if loaded.tokenizer.pad_token_id is not None else 0
    variants = [("base", True), ("adapter", False)] if compare else [(loaded.adapter or "base", False)]
    results: dict[str, Any] = {}
    for name, disable in variants:
        context = _no_adapter(loaded.model) if disable else contextlib.nullcontext()
        with context:
            bar = tqdm(total=len(examples), desc=f"{name}: perplexity", unit="ex", disable=not progress)
            ppl, n_tokens = perplexity(loaded.model, examples, pad_id, loaded.device, loaded.dtype, progress=bar)
            bar.close()
            scores = []
            for turn in tqdm(turns, desc=f"{name}: ROUGE-L", unit="reply", disable=not progress):
                scores.append(rouge_l(generate_reply(loaded, app, turn, max_new_tokens), turn.gold))
        results["base" if name == "base" else "adapter"] = {
            "n_conversations": len(conversations),
            "perplexity": round(ppl, 4),
            "rouge_l": round(sum(scores) / len(scores), 4) if scores else None,
            "n_tokens": n_tokens,
            "n_rouge": len(scores),
            "adapter": None if disable else loaded.adapter,
        }
    if compare:
        base, tuned = results["base"], results["adapter"]
        results["ratios"] = {
            "perplexity": round(tuned["perplexity"] / base["perplexity"], 4),
            "rouge_l": round(tuned["rouge_l"] / base["rouge_l"], 4) if base["rouge_l"] and tuned["rouge_l"] else None,
        }
        return results
    only = next(iter(results.values()))
    if report.problems:
        only["skipped_rows"] = report.skipped
    return only


DESIGN_KEYS = ("n_conversations", "perplexity", "rouge_l")


def design_json(result: dict[str, Any]) -> dict[str, Any]:
    """DESIGN.md's `eval-dialogue --json` object: exactly `n_conversations`, `perplexity`, `rouge_l`; with
    `--compare`, exactly `{"base": {...}, "adapter": {...}}`, each with those keys."""
    if "base" in result and "adapter" in result and isinstance(result["base"], dict):
        return {side: {k: result[side][k] for k in DESIGN_KEYS} for side in ("base", "adapter")}
    return {k: result[k] for k in DESIGN_KEYS}
