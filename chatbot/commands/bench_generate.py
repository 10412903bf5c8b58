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
    parser.add_argument("--threads", type=int, default=0, help="torch threads (default: [model] threads, 0 = all)")
    parser.add_argument("--backend", choices=("transformers", "llamacpp"), default=None,
                        help="default: [model] backend")  # fmt: skip
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


def measure(make_scheduler: Any, prompts: list[list[int]], n: int, max_new_tokens: int,
            concurrent: bool = True) -> dict[str, Any]:  # fmt: skip
    """Single, concurrent and serial figures on the scheduler `make_scheduler(max_batch)` returns, with the
    prompts of `bench_prompts`."""
    from chatbot.config import GenerationConfig

    # Greedy with the serving defaults' loop guards; the reply may end before max_new_tokens at EOS.
    config = GenerationConfig(max_new_tokens=max_new_tokens)
    scheduler = make_scheduler(max(n, 1))
    try:
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
    finally:
        scheduler.close()


def _p95(values: list[float]) -> float:
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=20, method="inclusive")[18]


def transformers_scheduler(loaded: Any, n: int, threads: int) -> Any:
    """A factory of batching schedulers over a loaded transformers model (for `measure`)."""
    from chatbot.config import SchedulerConfig
    from chatbot.scheduler import BatchScheduler

    return lambda batch: BatchScheduler(loaded, SchedulerConfig(max_batch=batch, max_queue=4 * n), threads)


def memory_mb() -> dict[str, float]:
    """This process's resident memory now and at its peak, in MB."""
    import resource

    import psutil

    return {"rss": round(psutil.Process().memory_info().rss / 2**20, 1),
            "peak_rss": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}  # fmt: skip


def bench_generate(n: int = 8, max_new_tokens: int = 128, device: str | None = None, threads: int = 0,
                   baselines: bool = True, config_path: str | None = None,
                   backend: str | None = None) -> dict[str, Any]:  # fmt: skip
    """Run the benchmark on `backend` (default: the configured one) and return the JSON object."""
    from chatbot.config import AppConfig
    from chatbot.model import ModelError

    config = AppConfig.load(config_path)
    backend = backend or config.model.backend
    if backend == "llamacpp":
        if device not in (None, "cpu"):
            raise ModelError("the llama.cpp backend runs on the CPU here; use --backend transformers --device cuda")
        result = bench_llamacpp(config, n, max_new_tokens, threads, baselines)
    elif backend == "transformers":
        result = bench_transformers(config, n, max_new_tokens, device, threads, baselines)
    else:
        raise ModelError(f"bench generate measures a local backend, not {backend!r}; pass --backend transformers "
                         "or --backend llamacpp")  # fmt: skip
    result.setdefault("targets", {})["claim_check_under_10_percent_of_reply"] = result["single"]["check_share"] <= 0.10
    return result


def bench_transformers(config: Any, n: int, max_new_tokens: int, device: str | None, threads: int,
                       baselines: bool) -> dict[str, Any]:  # fmt: skip
    import dataclasses

    import torch

    from chatbot.model import load_model

    model_config = config.model
    if device:
        model_config = dataclasses.replace(model_config, device=device)
    threads = threads or model_config.threads
    if threads:
        torch.set_num_threads(threads)
    loaded = load_model(model_config)
    prompts = bench_prompts(loaded.tokenizer, config.prompt, n)
    result: dict[str, Any] = {
        "backend": "transformers", "model": model_config.name, "adapter": loaded.adapter, "device": loaded.device,
        "dtype": str(loaded.dtype).removeprefix("torch."), "threads": torch.get_num_threads(),
        "prompt_tokens": len(prompts[1]), "max_new_tokens": max_new_tokens,
    }  # fmt: skip
    result.update(measure(transformers_scheduler(loaded, n, threads), prompts, n, max_new_tokens))
    result["memory_mb"] = memory_mb()
    ratios = _batching_ratios(result)
    if baselines:
        result["baselines"] = {}
        for dtype in ("float32", "bfloat16"):
            name = f"transformers_{'fp32' if dtype == 'float32' else 'bf16'}"
            if dtype == result["dtype"]:
                base = result["single"]
            else:
                other = load_model(dataclasses.replace(model_config, dtype=dtype))
                base = measure(transformers_scheduler(other, 1, threads), prompts, 1, max_new_tokens,
                               concurrent=False)["single"]  # fmt: skip
                del other
            result["baselines"][name] = {"ttft_s": base["ttft_s"], "decode_tok_s": base["decode_tok_s"]}
        fp32, bf16 = result["baselines"]["transformers_fp32"], result["baselines"]["transformers_bf16"]
        ratios["bf16_over_fp32_ttft"] = round(bf16["ttft_s"] / fp32["ttft_s"], 3)
        ratios["bf16_over_fp32_decode_tok_s"] = round(bf16["decode_tok_s"] / max(fp32["decode_tok_s"], 1e-9), 3)
    result["ratios"] = ratios
    return result


def _batching_ratios(result: dict[str, Any]) -> dict[str, float]:
    conc, serial, single = result["concurrent"], result["serial"], result["single"]
    return {
        "serial_over_concurrent_total_s": round(serial["total_s"] / conc["total_s"], 3),
        "serial_over_concurrent_ttft_p95": round(serial["ttft_s_p95"] / max(conc["ttft_s_p95"], 1e-9), 3),
        "concurrent_total_tok_s_over_single": round(conc["decode_tok_s_total"] / max(single["decode_tok_s"], 1e-9), 3),
    }


def bench_llamacpp(config: Any, n: int, max_new_tokens: int, threads: int, baselines: bool) -> dict[str, Any]:
    """Our llama.cpp backend, then (same process, same prompts, same adapter, same threads) llama-cpp-python's plain
    API on the configured GGUF, and transformers in bf16 and fp32."""
    import dataclasses

    import torch

    from chatbot.config import SchedulerConfig
    from chatbot.llamacpp.backend import LlamaCppScheduler, LlamaRuntime, exported_lora, model_gguf
    from chatbot.model import LoadedModel, adapter_name, load_model, load_tokenizer, resolve_adapter

    llama_config = dataclasses.replace(config.llamacpp, threads=threads or config.llamacpp.threads)
    tokenizer = load_tokenizer(config.model)
    prompts = bench_prompts(tokenizer, config.prompt, n)
    adapter = resolve_adapter(config.model.adapter)
    runtime = LlamaRuntime(config.model, llama_config, max(n, 1), adapter)
    try:
        loaded = LoadedModel(runtime, tokenizer, "cpu", None, adapter_name(adapter) if adapter else None,
                             config.model.name)  # fmt: skip
        result: dict[str, Any] = {
            "backend": "llamacpp", "model": config.model.name, "adapter": loaded.adapter, "device": "cpu",
            "dtype": f"prefill {runtime.prefill_type}, decode {runtime.decode_type}", "threads": runtime.threads,
            "prompt_tokens": len(prompts[1]), "max_new_tokens": max_new_tokens,
        }  # fmt: skip

        def make(batch: int) -> Any:
            return LlamaCppScheduler(loaded, SchedulerConfig(max_batch=batch, max_queue=4 * n))

        result.update(measure(make, prompts, n, max_new_tokens))
        result["memory_mb"] = memory_mb()
    finally:
        runtime.close()
    ratios = _batching_ratios(result)
    if baselines and adapter is not None and llama_config.merge_adapter:
        applied = dataclasses.replace(llama_config, merge_adapter=False)
        runtime = LlamaRuntime(config.model, applied, 1, adapter)
        try:
            loaded = dataclasses.replace(loaded, model=runtime)
            single = measure(lambda b: LlamaCppScheduler(loaded, SchedulerConfig(max_batch=b)), prompts, 1,
                             max_new_tokens, concurrent=False)["single"]  # fmt: skip
        finally:
            runtime.close()
        result["adapter_applied_each_step"] = {k: single[k] for k in ("ttft_s", "decode_tok_s")}
        ratios["merged_over_applied_decode_tok_s"] = round(result["single"]["decode_tok_s"]
                                                           / max(single["decode_tok_s"], 1e-9), 3)  # fmt: skip
    if baselines:
        gguf = model_gguf(config.model)
        lora = exported_lora(adapter, gguf, config.model.model_cache_dir()) if adapter else None
        plain = llamacpp_plain(gguf, lora, prompts, n, max_new_tokens, result["threads"])
        result["baselines"] = {"llamacpp": plain["single"], "llamacpp_serial": plain["serial"]}
        torch.set_num_threads(result["threads"])
        for dtype, name in (("float32", "transformers_fp32"), ("bfloat16", "transformers_bf16")):
            other = load_model(dataclasses.replace(config.model, dtype=dtype, device="cpu"))
            figures = measure(transformers_scheduler(other, n, result["threads"]), prompts, n, max_new_tokens,
                              concurrent=dtype == "bfloat16")  # fmt: skip
            del other
            result["baselines"][name] = {k: figures["single"][k] for k in ("ttft_s", "decode_tok_s")}
            if "concurrent" in figures:
                result["baselines"]["transformers_bf16_concurrent"] = figures["concurrent"]
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
            "single_ttft_no_worse_than_transformers_bf16": result["single"]["ttft_s"] <= bf16["ttft_s"],
            "single_decode_at_least_llamacpp": result["single"]["decode_tok_s"] >= base["decode_tok_s"],
            "concurrent_ttft_p95_under_1s": conc["ttft_s_p95"] < 1.0,
            "concurrent_every_stream_above_10_tok_s": conc["decode_tok_s_min"] > 10.0,
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
        f"{'setup':<34}{'TTFT':>12}{'tok/s':>16}{'total':>10}",
        f"{'1 stream':<34}{s['ttft_s']:>11.3f}s{s['decode_tok_s']:>16.1f}{'':>10}"
        f"  claim check {s['check_s'] * 1000:.1f} ms ({s['check_share']:.1%} of the reply)",
        _row(f"{c['n']} concurrent (batched)", c),
        _row(f"{q['n']} one after another", q),
    ]
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
