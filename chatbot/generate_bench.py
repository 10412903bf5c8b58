"""`chatbot bench generate`: time to first token and decode speed of a local backend on support prompts, in one run:
1 stream; n concurrent streams through the batching scheduler; the same n requests served one after another;
and baselines measured in the same process. For transformers: fp32 against bf16. For llama.cpp: llama-cpp-python's
plain high-level API on the configured GGUF (with the same adapter), and transformers bf16 alone and batched, so
the figures decide which backend serves which load. JSON (keys as DESIGN.md) plus a short table."""

from __future__ import annotations

import json
import statistics
import sys
import threading
import time
from typing import Any


def register(subparsers) -> None:
    parser = subparsers.add_parser("generate", help="generation speed: 1 stream, n batched, n serial, fp32 vs bf16")
    parser.add_argument("--json", action="store_true", help="print the result as one JSON object")
    parser.add_argument("--out", help="also write the JSON to this file")
    parser.add_argument("--device", choices=("cpu", "cuda"), default=None, help="default: [model] device (auto)")
    parser.add_argument("--n", type=int, default=8, help="concurrent streams (default 8)")
    parser.add_argument("--max-new-tokens", type=int, default=128, help="tokens per reply (default 128)")
    parser.add_argument("--threads", type=int, default=0,
                        help="threads for the model (default: [model] / [llamacpp] threads)")  # fmt: skip
    parser.add_argument("--backend", choices=("transformers", "llamacpp"), default=None,
                        help="default: what [model] backend chooses (auto: llama.cpp on a CPU)")  # fmt: skip
    parser.add_argument("--no-baselines", action="store_true", help="skip the baselines")
    parser.set_defaults(func=run)


def bench_prompts(tokenizer: Any, prompt_config: Any, n: int) -> list[list[int]]:
    """n + 2 support prompts (about 250-320 tokens each) sharing the system prompt, as real customers do: a
    warm-up, the single-stream one (a refund question with three demo-FAQ sources), and n for the concurrent and
    serial runs, each a different demo-FAQ question with its own three sources. Distinct prompts keep prompt
    caches honest: only the system prompt repeats."""
    from pathlib import Path

    import knowledge_base
    from chatbot.prompt import build_messages, render_prompt
    from chatbot.records import Turn
    from knowledge_base.records import FaqEntry, Hit

    demo = Path(knowledge_base.__file__).parent / "demo" / "store_faq.jsonl"
    rows = [json.loads(line) for line in demo.read_text(encoding="utf-8").splitlines() if line.strip()]
    entries = {r["id"]: FaqEntry(r["id"], r["question"], r["answer"]) for r in rows}

    def render(question: str, ids: list[str]) -> list[int]:
        hits = [Hit(entries[i], score) for i, score in zip(ids, (0.9, 0.7, 0.6), strict=True)]
        messages = build_messages(prompt_config, hits, [Turn("user", question)], "en")
        return render_prompt(tokenizer, messages, prompt_config.max_prompt_tokens)

    def varied(i: int) -> list[int]:
        row = rows[i % len(rows)]
        question = (row.get("alt_questions") or [row["question"]])[0]
        return render(question, [rows[(i + k) % len(rows)]["id"] for k in range(3)])

    refund = render(REFUND_QUESTION, list(REFUND_SOURCES))
    return [varied(len(rows) - 1), refund, *(varied(i) for i in range(n))]


REFUND_QUESTION = "Hi, I bought a jacket two weeks ago and it does not fit. How do I get my money back?"
REFUND_SOURCES = ("get_refund", "check_refund_policy", "track_refund")
"""The single-stream prompt's sources (a refund question)."""


def _timed(submit: Any, pieces: list[str] | None = None) -> dict[str, float]:
    start = time.perf_counter()
    stream = submit()
    first = None
    for piece in stream:
        if first is None:
            first = time.perf_counter()
        if pieces is not None:
            pieces.append(piece)
    end = time.perf_counter()
    first = first or end
    n = max(stream.n_tokens, 1)
    return {"ttft_s": first - start, "total_s": end - start, "tokens": n,
            "decode_tok_s": (n - 1) / (end - first) if end > first and n > 1 else 0.0}  # fmt: skip


def claim_check_s(pieces: list[str], sources: list[str], question: str) -> float:
    """Seconds the serving claim check (`chatbot/claims.py`, evidence built as the engine builds it) spends on one
    reply streamed as `pieces`."""
    from chatbot.claims import ClaimGate, Evidence

    start = time.perf_counter()
    gate = ClaimGate(Evidence(sources=tuple(sources), customer=(question,)))
    for piece in pieces:
        gate.feed(piece)
        if gate.failed:
            break
    gate.finish()
    return time.perf_counter() - start


def _demo_texts(ids: tuple[str, ...]) -> list[str]:
    from pathlib import Path

    import knowledge_base

    demo = Path(knowledge_base.__file__).parent / "demo" / "store_faq.jsonl"
    rows = {r["id"]: r for r in map(json.loads, demo.read_text(encoding="utf-8").splitlines()) if r}
    return [t for i in ids for t in (rows[i]["question"], rows[i]["answer"])]


def measure(backend: Any, prompts: list[list[int]], n: int, max_new_tokens: int,
            concurrent: bool = True) -> dict[str, Any]:  # fmt: skip
    """Single, concurrent and serial figures on a warmed-up backend (from `chatbot.backends.make_backend`, with
    room for `n` conversations), with the prompts of `bench_prompts`."""
    from chatbot.config import GenerationConfig

    scheduler = backend.scheduler
    # Greedy with the serving defaults' loop guards; the reply may end before max_new_tokens at EOS.
    config = GenerationConfig(max_new_tokens=max_new_tokens)
    _timed(lambda: scheduler.submit(prompts[0], GenerationConfig(max_new_tokens=4)))  # warm-up (kernels)
    pieces: list[str] = []
    single = _timed(lambda: scheduler.submit(prompts[1], config), pieces)
    result: dict[str, Any] = {"single": {k: round(single[k], 4) for k in ("ttft_s", "decode_tok_s")}}
    result["single"]["tokens"] = single["tokens"]
    # The claim check runs on every streamed piece of a reply; its share of the reply's time (target <= 10%).
    check = claim_check_s(pieces, _demo_texts(REFUND_SOURCES), REFUND_QUESTION)
    result["single"]["check_s"] = round(check, 5)
    result["single"]["check_share"] = round(check / max(single["total_s"], 1e-9), 4)
    if not concurrent:
        return result
    runs: list[dict[str, float]] = [{}] * n
    barrier = threading.Barrier(n)

    def one(i: int) -> None:
        barrier.wait()
        runs[i] = _timed(lambda: scheduler.submit(prompts[2 + i], config))

    start = time.perf_counter()
    workers = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    total = time.perf_counter() - start
    ttfts = sorted(r["ttft_s"] for r in runs)
    result["concurrent"] = {
        "n": n, "ttft_s_p95": round(_p95(ttfts), 4), "ttft_s_max": round(ttfts[-1], 4),
        "decode_tok_s_min": round(min(r["decode_tok_s"] for r in runs), 2),
        "decode_tok_s_total": round(sum(r["tokens"] for r in runs) / total, 2), "total_s": round(total, 3),
    }  # fmt: skip
    start = time.perf_counter()
    serial = []
    for i in range(n):
        queued_at = time.perf_counter()
        r = _timed(lambda i=i: scheduler.submit(prompts[2 + i], config))
        # a customer in line waits for everyone before them: their TTFT counts from the start
        serial.append({**r, "ttft_s": queued_at - start + r["ttft_s"]})
    total = time.perf_counter() - start
    ttfts = sorted(r["ttft_s"] for r in serial)
    result["serial"] = {"n": n, "ttft_s_p95": round(_p95(ttfts), 4), "total_s": round(total, 3),
                        "decode_tok_s_total": round(sum(r["tokens"] for r in serial) / total, 2)}  # fmt: skip
    return result


def _p95(values: list[float]) -> float:
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=20, method="inclusive")[18]


def measured(config: Any, backend: str, n: int, prompts: list[list[int]], max_new_tokens: int,
             concurrent: bool = True) -> tuple[dict[str, Any], dict[str, Any]]:  # fmt: skip
    """`measure` on the backend `chatbot.backends.make_backend` builds for `config` (the one the app serves
    with), closed afterwards; returns the figures and the backend's `health()`."""
    from chatbot.backends import make_backend

    made = make_backend(config, backend, max_batch=max(n, 1))
    made.warm_up()
    try:
        return measure(made, prompts, n, max_new_tokens, concurrent), made.health()
    finally:
        made.close()


def memory_mb() -> dict[str, float]:
    """This process's resident memory now and at its peak, in MB."""
    import resource

    import psutil

    return {"rss": round(psutil.Process().memory_info().rss / 2**20, 1),
            "peak_rss": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}  # fmt: skip


def bench_generate(n: int = 8, max_new_tokens: int = 128, device: str | None = None, threads: int = 0,
                   baselines: bool = True, config_path: str | None = None,
                   backend: str | None = None) -> dict[str, Any]:  # fmt: skip
    """Run the benchmark on `backend` (default: the one `[model] backend` chooses) and return the JSON object."""
    import dataclasses

    from chatbot.backends import choose_backend
    from chatbot.config import AppConfig
    from chatbot.model import ModelError

    config = AppConfig.load(config_path)
    model = dataclasses.replace(config.model, device=device or config.model.device,
                                threads=threads or config.model.threads)  # fmt: skip
    llama = dataclasses.replace(config.llamacpp, threads=threads or config.llamacpp.threads)
    config = dataclasses.replace(config, model=model, llamacpp=llama)
    choice = choose_backend(dataclasses.replace(model, backend=backend) if backend else model)
    if choice.name == "llamacpp":
        if device not in (None, "cpu"):
            raise ModelError("the llama.cpp backend runs on the CPU here; use --backend transformers --device cuda")
        result = bench_llamacpp(config, n, max_new_tokens, baselines)
    elif choice.name == "transformers":
        result = bench_transformers(config, n, max_new_tokens, baselines)
    else:
        raise ModelError(f"bench generate measures a local backend, not {choice.name!r}; pass --backend "
                         "transformers or --backend llamacpp")  # fmt: skip
    result["backend_reason"] = choice.reason
    result.setdefault("targets", {})["claim_check_under_10_percent_of_reply"] = result["single"]["check_share"] <= 0.10
    return result


def _header(health: dict[str, Any], prompts: list[list[int]], max_new_tokens: int) -> dict[str, Any]:
    from chatbot.llamacpp.backend import common_prefix

    shared = min(common_prefix(prompts[1], p, len(p)) for p in prompts[2:]) if len(prompts) > 2 else 0
    return {
        **{k: health.get(k) for k in ("backend", "model", "adapter", "device", "dtype")},
        "prompt_tokens": len(prompts[1]), "max_new_tokens": max_new_tokens,
        # what every prompt shares (the system prompt, read once and copied by the llama.cpp backend) and the rest
        # (sources and the question), in the single-stream prompt
        "prompt_shared_tokens": shared, "prompt_own_tokens": len(prompts[1]) - shared,
    }  # fmt: skip


def bench_transformers(config: Any, n: int, max_new_tokens: int, baselines: bool) -> dict[str, Any]:
    import dataclasses

    import torch

    from chatbot.model import load_tokenizer

    prompts = bench_prompts(load_tokenizer(config.model), config.prompt, n)
    figures, health = measured(config, "transformers", n, prompts, max_new_tokens)
    result: dict[str, Any] = _header(health, prompts, max_new_tokens)
    result["threads"] = config.model.threads or torch.get_num_threads()
    result["adapter_merged"] = health["adapter_merged"]
    result.update(figures)
    result["memory_mb"] = memory_mb()
    ratios = _batching_ratios(result)
    if baselines:
        result["baselines"] = {}
        for dtype in ("float32", "bfloat16"):
            name = f"transformers_{'fp32' if dtype == 'float32' else 'bf16'}"
            if dtype == result["dtype"]:
                base = result["single"]
            else:
                other = dataclasses.replace(config, model=dataclasses.replace(config.model, dtype=dtype))
                base = measured(other, "transformers", 1, prompts, max_new_tokens, concurrent=False)[0]["single"]
            result["baselines"][name] = {"ttft_s": base["ttft_s"], "decode_tok_s": base["decode_tok_s"]}
        fp32, bf16 = result["baselines"]["transformers_fp32"], result["baselines"]["transformers_bf16"]
        ratios["bf16_over_fp32_ttft"] = round(bf16["ttft_s"] / fp32["ttft_s"], 3)
        ratios["bf16_over_fp32_decode_tok_s"] = round(bf16["decode_tok_s"] / max(fp32["decode_tok_s"], 1e-9), 3)
        if result["adapter_merged"]:
            unmerged = _unmerged_single(config, prompts, max_new_tokens)
            result["baselines"]["transformers_adapter_unmerged"] = unmerged
            ratios["merged_over_unmerged_decode_tok_s"] = round(result["single"]["decode_tok_s"]
                                                                / max(unmerged["decode_tok_s"], 1e-9), 3)  # fmt: skip
    result["ratios"] = ratios
    return result


def _unmerged_single(config: Any, prompts: list[list[int]], max_new_tokens: int) -> dict[str, float]:
    """One stream on the transformers backend with the adapter kept unmerged (its product computed every step)."""
    from chatbot.config import SchedulerConfig
    from chatbot.transformers_backend import TransformersBackend

    backend = TransformersBackend(config.model, SchedulerConfig(max_batch=1), merge_adapter=False)
    backend.warm_up()
    try:
        single = measure(backend, prompts, 1, max_new_tokens, concurrent=False)["single"]
    finally:
        backend.close()
    return {k: single[k] for k in ("ttft_s", "decode_tok_s")}


def _batching_ratios(result: dict[str, Any]) -> dict[str, float]:
    conc, serial, single = result["concurrent"], result["serial"], result["single"]
    return {
        "serial_over_concurrent_total_s": round(serial["total_s"] / conc["total_s"], 3),
        "serial_over_concurrent_ttft_p95": round(serial["ttft_s_p95"] / max(conc["ttft_s_p95"], 1e-9), 3),
        "concurrent_total_tok_s_over_single": round(conc["decode_tok_s_total"] / max(single["decode_tok_s"], 1e-9), 3),
    }


def bench_llamacpp(config: Any, n: int, max_new_tokens: int, baselines: bool) -> dict[str, Any]:
    """Our llama.cpp backend, then (same process, same prompts, same adapter, same threads) our backend with the
    adapter applied at every step and without drafting, llama-cpp-python's plain API on the configured GGUF, and
    transformers in bf16 and fp32."""
    import dataclasses

    from chatbot.llamacpp.backend import exported_lora, model_gguf
    from chatbot.model import load_tokenizer, resolve_adapter

    prompts = bench_prompts(load_tokenizer(config.model), config.prompt, n)
    figures, health = measured(config, "llamacpp", n, prompts, max_new_tokens)
    result: dict[str, Any] = _header(health, prompts, max_new_tokens)
    result["threads"] = health["threads"]
    result.update(figures)
    result["memory_mb"] = memory_mb()
    ratios = _batching_ratios(result)
    adapter = resolve_adapter(config.model.adapter)
    if baselines and adapter is not None and config.llamacpp.merge_adapter:
        applied = dataclasses.replace(config, llamacpp=dataclasses.replace(config.llamacpp, merge_adapter=False))
        single = measured(applied, "llamacpp", 1, prompts, max_new_tokens, concurrent=False)[0]["single"]
        result["adapter_applied_each_step"] = {k: single[k] for k in ("ttft_s", "decode_tok_s")}
        ratios["merged_over_applied_decode_tok_s"] = round(result["single"]["decode_tok_s"]
                                                           / max(single["decode_tok_s"], 1e-9), 3)  # fmt: skip
    result["draft_tokens"] = config.scheduler.draft_tokens
    if baselines and config.scheduler.draft_tokens:
        undrafted = dataclasses.replace(config, scheduler=dataclasses.replace(config.scheduler, draft_tokens=0))
        single = measured(undrafted, "llamacpp", 1, prompts, max_new_tokens, concurrent=False)[0]["single"]
        result["without_drafting"] = {k: single[k] for k in ("ttft_s", "decode_tok_s")}
        ratios["drafted_over_undrafted_decode_tok_s"] = round(result["single"]["decode_tok_s"]
                                                              / max(single["decode_tok_s"], 1e-9), 3)  # fmt: skip
    if baselines:
        gguf = model_gguf(config.model)
        lora = exported_lora(adapter, gguf, config.model.model_cache_dir()) if adapter else None
        plain = llamacpp_plain(gguf, lora, prompts, n, max_new_tokens, result["threads"])
        result["baselines"] = {"llamacpp": plain["single"], "llamacpp_serial": plain["serial"]}
        for dtype, name in (("float32", "transformers_fp32"), ("bfloat16", "transformers_bf16")):
            model = dataclasses.replace(config.model, dtype=dtype, device="cpu", threads=result["threads"])
            other, _ = measured(dataclasses.replace(config, model=model), "transformers", n, prompts, max_new_tokens,
                                concurrent=dtype == "bfloat16")  # fmt: skip
            result["baselines"][name] = {k: other["single"][k] for k in ("ttft_s", "decode_tok_s")}
            if "concurrent" in other:
                result["baselines"]["transformers_bf16_concurrent"] = other["concurrent"]
        base, bf16 = result["baselines"]["llamacpp"], result["baselines"]["transformers_bf16"]
        conc, tf_conc = result["concurrent"], result["baselines"]["transformers_bf16_concurrent"]
        in_line = result["baselines"]["llamacpp_serial"]
        ratios.update({
            "ttft_over_transformers_bf16": round(result["single"]["ttft_s"] / bf16["ttft_s"], 3),
            "ttft_over_llamacpp": round(result["single"]["ttft_s"] / base["ttft_s"], 3),
            "decode_tok_s_over_llamacpp": round(result["single"]["decode_tok_s"] / max(base["decode_tok_s"], 1e-9), 3),
            "concurrent_ttft_p95_over_transformers_bf16": round(conc["ttft_s_p95"] / tf_conc["ttft_s_p95"], 3),
            "concurrent_total_tok_s_over_transformers_bf16": round(conc["decode_tok_s_total"]
                                                                   / max(tf_conc["decode_tok_s_total"], 1e-9), 3),
            "concurrent_ttft_p95_over_llamacpp_serial": round(conc["ttft_s_p95"] / in_line["ttft_s_p95"], 3),
        })  # fmt: skip
        result["targets"] = {
            "single_ttft_at_most_half_transformers_bf16": ratios["ttft_over_transformers_bf16"] <= 0.5,
            "single_decode_at_least_1_2x_llamacpp": ratios["decode_tok_s_over_llamacpp"] >= 1.2,
            "concurrent_ttft_p95_under_1s": conc["ttft_s_p95"] < 1.0,
            "concurrent_every_stream_at_least_10_tok_s": conc["decode_tok_s_min"] >= 10.0,
        }
    result["ratios"] = ratios
    return result


def llamacpp_plain(gguf: Any, lora: Any, prompts: list[list[int]], n: int, max_new_tokens: int,
                   threads: int) -> dict[str, Any]:  # fmt: skip
    """llama-cpp-python's `Llama.create_completion` (streaming, greedy) on the `bench_prompts`: one stream, then n
    requests in line (it serves one at a time). It keeps the KV cache of the prefix shared with the previous
    prompt, as our backend does."""
    from llama_cpp import Llama

    llm = Llama(model_path=str(gguf), lora_path=str(lora) if lora else None, n_ctx=4096, n_threads=threads,
                n_threads_batch=threads, verbose=False)  # fmt: skip

    def one(prompt: list[int], tokens: int) -> Any:
        stream = llm.create_completion(prompt, max_tokens=tokens, temperature=0.0, repeat_penalty=1.15, stream=True)
        return _Counted(stream)

    try:
        _timed(lambda: one(prompts[0], 4))
        single = _timed(lambda: one(prompts[1], max_new_tokens))
        start = time.perf_counter()
        serial = []
        for i in range(n):
            queued_at = time.perf_counter()
            r = _timed(lambda i=i: one(prompts[2 + i], max_new_tokens))
            serial.append({**r, "ttft_s": queued_at - start + r["ttft_s"]})
        total = time.perf_counter() - start
    finally:
        llm.close()
    ttfts = sorted(r["ttft_s"] for r in serial)
    return {
        "single": {"ttft_s": round(single["ttft_s"], 4), "decode_tok_s": round(single["decode_tok_s"], 2)},
        "serial": {"n": n, "ttft_s_p95": round(_p95(ttfts), 4), "total_s": round(total, 3),
                   "decode_tok_s_total": round(sum(r["tokens"] for r in serial) / total, 2)},
    }  # fmt: skip


class _Counted:
    """A llama-cpp-python completion stream with the `n_tokens` counter `_timed` reads."""

    def __init__(self, chunks: Any):
        self.chunks = chunks
        self.n_tokens = 0

    def __iter__(self) -> Any:
        for chunk in self.chunks:
            self.n_tokens += 1
            yield chunk


def table(result: dict[str, Any]) -> str:
    s, c, q = result["single"], result["concurrent"], result["serial"]
    lines = [
        f"{result['backend']}: model {result['model']} ({result['dtype']}, {result['device']}, {result['threads']} "
        f"threads), adapter {result['adapter']}, prompt {result['prompt_tokens']} tokens, up to "
        f"{result['max_new_tokens']} new; memory {result['memory_mb']['rss']:.0f} MB resident",
        f"backend chosen: {result.get('backend_reason', 'by the caller')}",
        f"{'setup':<34}{'TTFT':>12}{'tok/s':>16}{'total':>10}",
        f"{'1 stream':<34}{s['ttft_s']:>11.3f}s{s['decode_tok_s']:>16.1f}{'':>10}"
        f"  claim check {s['check_s'] * 1000:.1f} ms ({s['check_share']:.1%} of the reply)",
        _row(f"{c['n']} concurrent (batched)", c),
        _row(f"{q['n']} one after another", q),
    ]
    for name in ("without_drafting", "adapter_applied_each_step"):
        if name in result:
            b = result[name]
            lines.append(f"{name:<34}{b['ttft_s']:>11.3f}s{b['decode_tok_s']:>16.1f}")
    for name, b in result.get("baselines", {}).items():
        if "ttft_s_p95" in b:
            lines.append(_row(f"{name} ({b['n']})", b))
        else:
            lines.append(f"{name:<34}{b['ttft_s']:>11.3f}s{b['decode_tok_s']:>16.1f}")
    lines.append("ratios: " + ", ".join(f"{k} {v}" for k, v in result["ratios"].items()))
    if "targets" in result:
        lines.append("targets: " + ", ".join(f"{k} {'yes' if v else 'NO'}" for k, v in result["targets"].items()))
    return "\n".join(lines)


def _row(name: str, figures: dict[str, Any]) -> str:
    return (f"{name:<34}{figures['ttft_s_p95']:>8.3f}s p95{figures['decode_tok_s_total']:>10.1f} total"
            f"{figures['total_s']:>9.1f}s")  # fmt: skip


def run(args) -> int:
    import os

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from chatbot.model import ModelError

    try:
        result = bench_generate(args.n, args.max_new_tokens, args.device, args.threads, not args.no_baselines,
                                args.config, args.backend)  # fmt: skip
    except ModelError as exc:
        print(f"chatbot bench generate: {exc}", file=sys.stderr)
        return 1
    text = json.dumps(result, indent=2)
    if args.out:
        with open(args.out, "w", encoding="utf-8") as handle:
            handle.write(text + "\n")
    print(text if args.json else table(result))
    return 0
