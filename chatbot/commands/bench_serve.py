"""`chatbot bench serve`: simulated customers over HTTP on loopback, each holding one conversation through the
streaming `/v1/chat/completions`; p50/p95 time to first token, tokens/s per stream, errors; JSON plus a table.

Without `--url` it starts the web app in this process (uvicorn on a free 127.0.0.1 port) over the configured engine
(the embedded defaults when there is no config), so the numbers include the whole stack: HTTP, routing, retrieval,
the grounding gate and the model's scheduler.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from pathlib import Path
from typing import Any

JSON_KEYS = ("n_clients", "ttft_s_p50", "ttft_s_p95", "decode_tok_s_p50", "errors")
"""The keys DESIGN.md promises for `bench serve --json`; the result has more."""


def register(subparsers) -> None:
    p = subparsers.add_parser("serve", help="N simulated customers over HTTP: time to first token, tokens/s, errors")
    p.add_argument("--clients", type=int, default=16, help="customers chatting at the same time")
    p.add_argument("--messages", type=int, default=3, help="messages each customer sends, one after the other")
    p.add_argument("--url", help="a running server's base URL (default: start the app here on a free port)")
    p.add_argument("--json", action="store_true", help="print the result as one JSON object instead of a table")
    p.add_argument("--out", help="also write the JSON result to this file")
    p.add_argument("--timeout", type=float, default=300.0, help="seconds one request may take")
    p.set_defaults(func=cmd_serve)


def percentile(values: list[float], q: float) -> float | None:
    """The q-th percentile (0-100) by linear interpolation; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def questions() -> list[str]:
    """Customer messages: the demo FAQ's questions and phrasings, plus a few it cannot answer."""
    from knowledge_base.kb import demo_faq_path
    from knowledge_base.loaders import load_faq

    out: list[str] = []
    for entry in load_faq(demo_faq_path()):
        out.extend(entry.phrasings[:2])
    return out + ["Can I bring my dog to your office?", "What is the meaning of life?"]


def token_counter(config: Any) -> tuple[Any, str]:
    """Count tokens with the served model's tokenizer; fall back to counting streamed pieces."""
    try:
        from chatbot.model import load_tokenizer

        tokenizer = load_tokenizer(config.model)
        return (lambda text: len(tokenizer(text, add_special_tokens=False)["input_ids"])), "tokens"
    except Exception:  # noqa: BLE001 - no tokenizer here (e.g. a remote model): pieces are the unit then
        return None, "pieces"


def one_customer(url: str, index: int, messages: list[str], timeout: float, results: list[dict]) -> None:
    """One customer: send `messages` in one conversation, recording each reply's timings."""
    import httpx

    conversation_id = secret = None
    with httpx.Client(base_url=url, timeout=timeout) as client:
        for text in messages:
            body: dict[str, Any] = {"model": "support-bot", "stream": True,
                                    "messages": [{"role": "user", "content": text}]}  # fmt: skip
            if conversation_id:  # a conversation is continued with the secret of its first reply
                body["conversation_id"], body["conversation_secret"] = conversation_id, secret
            record: dict[str, Any] = {"client": index, "ttft_s": None, "pieces": [], "error": None, "route": None}
            start = time.perf_counter()
            try:
                with client.stream("POST", "/v1/chat/completions", json=body) as response:
                    if response.status_code != 200:
                        response.read()
                        raise RuntimeError(f"HTTP {response.status_code}: {response.text[:200]}")
                    for line in response.iter_lines():
                        if not line.startswith("data: ") or line == "data: [DONE]":
                            continue
                        chunk = json.loads(line[6:])
                        delta = chunk["choices"][0]["delta"].get("content") if chunk.get("choices") else None
                        if delta:
                            now = time.perf_counter() - start
                            if record["ttft_s"] is None:
                                record["ttft_s"] = now
                            record["pieces"].append((now, delta))
                        if "chatbot" in chunk:
                            record["route"] = chunk["chatbot"]["route"]
                            conversation_id = chunk["chatbot"]["conversation_id"]
                            secret = chunk["chatbot"].get("conversation_secret", secret)
                if record["route"] is None:
                    raise RuntimeError("the stream ended without its final chunk")
            except Exception as exc:  # noqa: BLE001 - every failure counts as an error, with its message
                record["error"] = f"{type(exc).__name__}: {exc}"
            record["total_s"] = time.perf_counter() - start
            results.append(record)


def summarize(records: list[dict], n_clients: int, wall_s: float, count: Any, unit: str) -> dict[str, Any]:
    """The JSON result from the per-request records."""
    ok = [r for r in records if r["error"] is None]
    ttfts = [r["ttft_s"] for r in ok if r["ttft_s"] is not None]
    rates = []
    for r in ok:
        pieces = r["pieces"]
        if len(pieces) < 2:
            continue
        text_after_first = "".join(p for _, p in pieces[1:])
        n = count(text_after_first) if count else len(pieces) - 1
        span = pieces[-1][0] - pieces[0][0]
        if span > 0 and n > 0:
            rates.append(n / span)
    routes: dict[str, int] = {}
    for r in ok:
        routes[r["route"]] = routes.get(r["route"], 0) + 1
    errors = [r["error"] for r in records if r["error"]]
    return {
        "n_clients": n_clients,
        "ttft_s_p50": percentile(ttfts, 50),
        "ttft_s_p95": percentile(ttfts, 95),
        "decode_tok_s_p50": percentile(rates, 50),
        "errors": len(errors),
        "n_requests": len(records),
        "decode_tok_s_p5": percentile(rates, 5),
        "total_s_p50": percentile([r["total_s"] for r in ok], 50),
        "wall_s": wall_s,
        "routes": routes,
        "unit": unit,
        "error_examples": errors[:3],
    }


def table(result: dict[str, Any]) -> str:
    def fmt(value: Any, digits: int = 2) -> str:
        return "—" if value is None else f"{value:.{digits}f}"

    rows = [
        ("clients", str(result["n_clients"])),
        ("requests", str(result["n_requests"])),
        ("TTFT p50 / p95 (s)", f"{fmt(result['ttft_s_p50'])} / {fmt(result['ttft_s_p95'])}"),
        (f"{result['unit']}/s per stream p50 (p5)", f"{fmt(result['decode_tok_s_p50'], 1)} "
                                                   f"({fmt(result['decode_tok_s_p5'], 1)})"),
        ("reply time p50 (s)", fmt(result["total_s_p50"])),
        ("routes", ", ".join(f"{k} {v}" for k, v in sorted(result["routes"].items())) or "—"),
        ("errors", str(result["errors"])),
        ("wall time (s)", fmt(result["wall_s"], 1)),
    ]  # fmt: skip
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"{name:<{width}}  {value}" for name, value in rows)


def run(url: str, clients: int, messages: int, timeout: float, count: Any = None, unit: str = "pieces"
        ) -> dict[str, Any]:  # fmt: skip
    """Run `clients` simulated customers against `url`; returns the summary."""
    pool = questions()
    records: list[dict] = []
    threads = [
        threading.Thread(target=one_customer, daemon=True,
                         args=(url, i, [pool[(i * messages + j) % len(pool)] for j in range(messages)], timeout,
                               records))
        for i in range(clients)
    ]  # fmt: skip
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return summarize(records, clients, time.perf_counter() - start, count, unit)


def cmd_serve(args) -> int:
    """The command: start the app unless `--url`, run the customers, print and write the result."""
    if args.clients < 1 or args.messages < 1:
        print("chatbot bench serve: --clients and --messages must be >= 1", file=sys.stderr)
        return 2
    from chatbot.config import AppConfig

    config = AppConfig.load(getattr(args, "config", None))
    server = engine = None
    url = args.url
    if not url:
        import socket

        import uvicorn

        from chatbot.engine import Engine
        from ui.app import create_app

        print("bench serve: loading the engine…", file=sys.stderr, flush=True)
        engine = Engine.from_config(config).warm_up()
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        server = uvicorn.Server(uvicorn.Config(create_app(config, engine), host="127.0.0.1", port=port,
                                               log_level="warning", timeout_graceful_shutdown=2))  # fmt: skip
        threading.Thread(target=server.run, daemon=True).start()
        while not server.started:
            time.sleep(0.05)
        url = f"http://127.0.0.1:{port}"
    count, unit = token_counter(config)
    try:
        print(f"bench serve: {args.clients} customers x {args.messages} messages against {url}",
              file=sys.stderr, flush=True)  # fmt: skip
        result = run(url, args.clients, args.messages, args.timeout, count, unit)
    finally:
        if server is not None:
            server.should_exit = True
        if engine is not None:
            time.sleep(0.5)
            engine.close()
    result["url"] = url
    if args.out:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=2), encoding="utf-8")
    print(json.dumps(result) if args.json else table(result))
    return 1 if result["errors"] else 0
