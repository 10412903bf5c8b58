"""`chatbot bench generate`'s prompts and measurement loop, on the tiny random model (the real runs are benchmarks)."""

from __future__ import annotations

from chatbot.backends import make_backend
from chatbot.config import AppConfig
from chatbot.generate_bench import bench_prompts, measure, table


def test_prompts_are_distinct_and_share_only_the_system_prompt(tiny_loaded):
    from chatbot.llamacpp.backend import common_prefix

    prompts = bench_prompts(tiny_loaded.tokenizer, AppConfig().prompt, 8)
    assert len(prompts) == 10 and len({tuple(p) for p in prompts}) == 10
    assert all(200 < len(p) < 400 for p in prompts)
    shared = [common_prefix(prompts[1], p, len(p)) for p in prompts[2:]]
    system = tiny_loaded.tokenizer.decode(prompts[1][: min(shared)])
    assert system.rstrip().endswith("Sources:\n[1] Q:") and max(shared) < 0.5 * len(prompts[1])


def test_measure_reports_single_concurrent_and_serial_figures(tiny_loaded):
    prompts = bench_prompts(tiny_loaded.tokenizer, AppConfig().prompt, 3)
    backend = make_backend(AppConfig(), "transformers", max_batch=3, loaded=tiny_loaded)
    backend.warm_up()
    try:
        result = measure(backend, prompts, 3, 6)
    finally:
        backend.close()
    assert backend.health()["backend_reason"] == 'configured: [model] backend = "transformers"'
    single, conc, serial = result["single"], result["concurrent"], result["serial"]
    assert single["ttft_s"] > 0 and single["tokens"] >= 1
    assert single["check_s"] > 0 and 0 < single["check_share"] < 1  # the claim check's cost, measured
    assert conc["n"] == 3 and conc["ttft_s_max"] >= conc["ttft_s_p95"] > 0 and conc["total_s"] > 0
    assert serial["n"] == 3 and serial["total_s"] > 0
    header = {"backend": "transformers", "model": "tiny", "dtype": "float32", "device": "cpu", "threads": 1}
    result.update(header, adapter=None, prompt_tokens=len(prompts[1]), max_new_tokens=6, memory_mb={"rss": 1.0},
                  ratios={"x": 1.0})  # fmt: skip
    text = table(result)
    assert "3 concurrent (batched)" in text and "3 one after another" in text and "ratios: x 1.0" in text
    assert "claim check" in text and "backend chosen: by the caller" in text
