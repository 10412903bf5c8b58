"""`chatbot bench generate`: time to first token and decode speed of the local backend, on one support prompt
in one run: 1 stream; n concurrent streams through the batching scheduler; the same n requests served one after
another; and fp32 against bf16 for one stream. JSON (keys as DESIGN.md) plus a short table."""

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
    parser.add_argument("--no-baselines", action="store_true", help="skip the fp32/bf16 single-stream baselines")
    parser.set_defaults(func=run)


def bench_prompt(tokenizer: Any, prompt_config: Any) -> list[int]:
    """The benchmark prompt: a refund question with three demo-FAQ sources (about 300 tokens)."""
    from pathlib import Path

    import knowledge_base
    from chatbot.prompt import build_messages, render_prompt
    from chatbot.records import Turn
    from knowledge_base.records import FaqEntry, Hit

    demo = Path(knowledge_base.__file__).parent / "demo" / "store_faq.jsonl"
    rows = [json.loads(line) for line in demo.read_text(encoding="utf-8").splitlines() if line.strip()]
    entries = {r["id"]: FaqEntry(r["id"], r["question"], r["answer"]) for r in rows}
    hits = [Hit(entries[i], s) for i, s in (("get_refund", 0.9), ("check_refund_policy", 0.7), ("track_refund", 0.6))]
    history = [Turn("user", "Hi, I bought a jacket two weeks ago and it does not fit. How do I get my money back?")]
    messages = build_messages(prompt_config, hits, history, "en")
    return render_prompt(tokenizer, messages, prompt_config.max_prompt_tokens)


def _timed(submit: Any) -> dict[str, float]:
    start = time.perf_counter()
    stream = submit()
    first = None
    for _ in stream:
        if first is None:
            first = time.perf_counter()
    end = time.perf_counter()
    first = first or end
    n = max(stream.n_tokens, 1)
    return {"ttft_s": first - start, "total_s": end - start, "tokens": n,
            "decode_tok_s": (n - 1) / (end - first) if end > first and n > 1 else 0.0}  # fmt: skip


def measure(loaded: Any, prompt: list[int], n: int, max_new_tokens: int, threads: int,
            concurrent: bool = True) -> dict[str, Any]:  # fmt: skip
    """Single, concurrent and serial figures for one loaded model."""
    from chatbot.config import GenerationConfig, SchedulerConfig
    from chatbot.scheduler import BatchScheduler

    # Greedy with the serving defaults' loop guards; the reply may end before max_new_tokens at EOS.
    config = GenerationConfig(max_new_tokens=max_new_tokens)
    scheduler = BatchScheduler(loaded, SchedulerConfig(max_batch=max(n, 1), max_queue=4 * n), threads)
    try:
        _timed(lambda: scheduler.submit(prompt, GenerationConfig(max_new_tokens=4)))  # warm-up (oneDNN kernels)
        single = _timed(lambda: scheduler.submit(prompt, config))
        result: dict[str, Any] = {"single": {k: round(single[k], 4) for k in ("ttft_s", "decode_tok_s")}}
        result["single"]["tokens"] = single["tokens"]
        if not concurrent:
            return result
        runs: list[dict[str, float]] = [{}] * n
        barrier = threading.Barrier(n)

        def one(i: int) -> None:
            barrier.wait()
            runs[i] = _timed(lambda: scheduler.submit(prompt, config))

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
        for _ in range(n):
            queued_at = time.perf_counter()
            r = _timed(lambda: scheduler.submit(prompt, config))
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


def bench_generate(n: int = 8, max_new_tokens: int = 128, device: str | None = None, threads: int = 0,
                   baselines: bool = True, config_path: str | None = None) -> dict[str, Any]:  # fmt: skip
    """Run the benchmark and return the JSON object."""
    import dataclasses

    import torch

    from chatbot.config import AppConfig
    from chatbot.model import load_model

    config = AppConfig.load(config_path)
    model_config = config.model
    if device:
        model_config = dataclasses.replace(model_config, device=device)
    threads = threads or model_config.threads
    if threads:
        torch.set_num_threads(threads)
    loaded = load_model(model_config)
    prompt = bench_prompt(loaded.tokenizer, config.prompt)
    result: dict[str, Any] = {
        "model": model_config.name, "adapter": loaded.adapter, "device": loaded.device,
        "dtype": str(loaded.dtype).removeprefix("torch."), "threads": torch.get_num_threads(),
        "prompt_tokens": len(prompt), "max_new_tokens": max_new_tokens,
    }  # fmt: skip
    result.update(measure(loaded, prompt, n, max_new_tokens, threads))
    conc, serial = result["concurrent"], result["serial"]
    ratios = {
        "serial_over_concurrent_total_s": round(serial["total_s"] / conc["total_s"], 3),
        "serial_over_concurrent_ttft_p95": round(serial["ttft_s_p95"] / max(conc["ttft_s_p95"], 1e-9), 3),
        "concurrent_total_tok_s_over_single": round(conc["decode_tok_s_total"] / max(result["single"]["decode_tok_s"],
                                                                                   1e-9), 3),
    }  # fmt: skip
    if baselines:
        result["baselines"] = {}
        for dtype in ("float32", "bfloat16"):
            name = f"transformers_{'fp32' if dtype == 'float32' else 'bf16'}"
            if dtype == result["dtype"]:
                base = result["single"]
            else:
                other = load_model(dataclasses.replace(model_config, dtype=dtype))
                base = measure(other, prompt, 1, max_new_tokens, threads, concurrent=False)["single"]
                del other
            result["baselines"][name] = {"ttft_s": base["ttft_s"], "decode_tok_s": base["decode_tok_s"]}
        fp32, bf16 = result["baselines"]["transformers_fp32"], result["baselines"]["transformers_bf16"]
        ratios["bf16_over_fp32_ttft"] = round(bf16["ttft_s"] / fp32["ttft_s"], 3)
        ratios["bf16_over_fp32_decode_tok_s"] = round(bf16["decode_tok_s"] / max(fp32["decode_tok_s"], 1e-9), 3)
    result["ratios"] = ratios
    return result


def table(result: dict[str, Any]) -> str:
    s, c, q = result["single"], result["concurrent"], result["serial"]
    lines = [
        f"model {result['model']} ({result['dtype']}, {result['device']}, {result['threads']} threads), "
        f"prompt {result['prompt_tokens']} tokens, up to {result['max_new_tokens']} new",
        f"{'setup':<28}{'TTFT':>12}{'tok/s':>16}{'total':>10}",
        f"{'1 stream':<28}{s['ttft_s']:>11.3f}s{s['decode_tok_s']:>16.1f}{'':>10}",
        f"{str(c['n']) + ' concurrent (batched)':<28}{c['ttft_s_p95']:>8.3f}s p95{c['decode_tok_s_total']:>10.1f} total"
        f"{c['total_s']:>9.1f}s",
        f"{str(q['n']) + ' one after another':<28}{q['ttft_s_p95']:>8.3f}s p95{q['decode_tok_s_total']:>10.1f} total"
        f"{q['total_s']:>9.1f}s",
    ]
    for name, b in result.get("baselines", {}).items():
        lines.append(f"{name:<28}{b['ttft_s']:>11.3f}s{b['decode_tok_s']:>16.1f}")
    lines.append("ratios: " + ", ".join(f"{k} {v}" for k, v in result["ratios"].items()))
    return "\n".join(lines)


def run(args) -> int:
    import os

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from chatbot.model import ModelError

    try:
        result = bench_generate(args.n, args.max_new_tokens, args.device, args.threads, not args.no_baselines,
                                args.config)  # fmt: skip
    except ModelError as exc:
        print(f"chatbot bench generate: {exc}", file=sys.stderr)
        return 1
    text = json.dumps(result, indent=2)
    if args.out:
        with open(args.out, "w", encoding="utf-8") as handle:
            handle.write(text + "\n")
    print(text if args.json else table(result))
    return 0
