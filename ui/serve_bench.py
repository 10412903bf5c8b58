"""`chatbot bench serve`: simulated customers over HTTP on loopback, each holding one conversation through the
streaming `/v1/chat/completions`; failed requests, p50/p95 time to first token, tokens/s per stream and in all, and
the backend that ran (from `/api/health`); JSON plus a table. Time to first token is the time to the first text the
customer sees: for a reply the claim check replaced by the sources' words, sent whole in the last chunk, that chunk.

Without `--url` it starts the web app in this process (uvicorn on a free 127.0.0.1 port) over the configured engine
(the embedded defaults when there is no config), so the numbers include the whole stack: HTTP, routing, retrieval,
the grounding gate and the model's scheduler.

`--compare --store-url postgresql://...` runs the same customers, in the same run, against `chatbot serve` on one
worker with SQLite and then `chatbot serve --workers 2` (`--workers`) on that PostgreSQL database, each started as
its own process in a fresh data folder (`$CHATBOT_HOME/bench-serve/sqlite-1`, `postgresql-2`: the demo FAQ, the
configured model, the server's log), and reports both with their ratios.
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
    p.add_argument("--compare", action="store_true", help="1 worker on SQLite, then --workers on --store-url's "
                   "PostgreSQL, each started here as `chatbot serve` in a fresh data folder")  # fmt: skip
    p.add_argument("--store-url", help="with --compare: a PostgreSQL database the workers may migrate and fill")
    p.add_argument("--workers", type=int, default=2, help="with --compare: workers on PostgreSQL (default 2)")
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
                            final = chunk["chatbot"].get("text") or ""
                            if record["ttft_s"] is None and final:  # the sources' words, sent whole at the end
                                record["ttft_s"] = time.perf_counter() - start
                                record["pieces"].append((record["ttft_s"], final))
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
    streamed = 0
    for r in ok:
        text = "".join(piece for _, piece in r["pieces"])
        streamed += count(text) if count and text else len(r["pieces"])
    return {
        "n_clients": n_clients,
        "ttft_s_p50": percentile(ttfts, 50),
        "ttft_s_p95": percentile(ttfts, 95),
        "decode_tok_s_p50": percentile(rates, 50),
        "errors": len(errors),
        "n_requests": len(records),
        "decode_tok_s_p5": percentile(rates, 5),
        "total_s_p50": percentile([r["total_s"] for r in ok], 50),
        "tokens_s_total": streamed / wall_s if wall_s > 0 else None,
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
        (f"{result['unit']}/s in all", fmt(result.get("tokens_s_total"), 1)),
        ("reply time p50 (s)", fmt(result["total_s_p50"])),
        ("routes", ", ".join(f"{k} {v}" for k, v in sorted(result["routes"].items())) or "—"),
        ("backend", " ".join(str(result[k]) for k in ("backend", "model") if result.get(k)) or "—"),
        ("failed requests", str(result["errors"])),
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


def served_by(url: str) -> dict[str, Any]:
    """What `/api/health` says about the server: `backend`, `model`, `adapter`, `index_version` (empty when it
    cannot be read: an older server, or none there)."""
    import httpx

    try:
        health = httpx.get(f"{url}/api/health", timeout=10).json()
    except (httpx.HTTPError, ValueError):
        return {}
    return {k: health.get(k) for k in ("backend", "model", "adapter", "index_version")}


def wait_workers(url: str, workers: int, process: Any, log: Path, timeout: float = 900.0) -> None:
    """Until `workers` distinct worker processes have answered `/api/health` ready (each on a new connection)."""
    import httpx

    seen: set[int] = set()
    deadline = time.monotonic() + timeout
    while len(seen) < workers:
        if process.poll() is not None:
            raise RuntimeError(f"`chatbot serve` at {url} exited with {process.returncode}; see {log}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {len(seen)} of {workers} workers at {url} were ready after {timeout:.0f} s; "
                               f"see {log}")  # fmt: skip
        try:
            health = httpx.get(f"{url}/api/health", timeout=5).json()
            if health.get("status") == "ok":
                seen.add(int(health.get("worker") or 0))
        except (httpx.HTTPError, ValueError):
            pass
        time.sleep(0.2)


def start_server(config: Any, config_file: str | None, home: Path, workers: int, store_url: str | None
                 ) -> tuple[Any, str]:  # fmt: skip
    """`chatbot serve --workers N` in its own process, in a fresh data folder `home` (its output in `serve.log`
    there), with the caller's config except the store (`store_url`, else SQLite in `home`); the converted model
    cache is shared. Returns (process, URL)."""
    import os
    import shutil
    import socket
    import subprocess

    import tomlkit

    from chatbot.settings import load_toml

    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)
    data = load_toml(config_file) if config_file else {}
    store = dict(data.get("store", {}))
    store.pop("url", None)
    if store_url:
        store["url"] = store_url
    data["store"] = store
    served_config = home / "config.toml"
    served_config.write_text(tomlkit.dumps(data), encoding="utf-8")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if k != "CHATBOT_STORE_URL"}
    env |= {"CHATBOT_HOME": str(home), "CHATBOT_MODEL_CACHE": str(config.model.model_cache_dir().resolve())}
    command = [sys.executable, "-m", "cli", "--config", str(served_config), "serve", "--host", "127.0.0.1",
               "--port", str(port), "--workers", str(workers)]  # fmt: skip
    with open(home / "serve.log", "w") as log:
        process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    return process, f"http://127.0.0.1:{port}"


def compare(config: Any, config_file: str | None, store_url: str, workers: int, clients: int, messages: int,
            timeout: float, root: Path) -> dict[str, Any]:  # fmt: skip
    """1 worker on SQLite, then `workers` on `store_url`, the same customers against each, every setup in a fresh
    folder under `root`; with ratios (the second setup over the first)."""
    count, unit = token_counter(config)
    setups = {"1 worker, SQLite": (1, None), f"{workers} workers, PostgreSQL": (workers, store_url)}
    results: dict[str, Any] = {}
    for name, (n, url) in setups.items():
        print(f"bench serve: starting {name}…", file=sys.stderr, flush=True)
        home = root / ("sqlite-1" if url is None else f"postgresql-{n}")
        process, address = start_server(config, config_file, home, n, url)
        try:
            wait_workers(address, n, process, home / "serve.log")
            run(address, 1, 1, timeout, count, unit)  # one warm-up request, not counted
            print(f"bench serve: {clients} customers x {messages} messages against {name}", file=sys.stderr,
                  flush=True)  # fmt: skip
            result = run(address, clients, messages, timeout, count, unit)
            results[name] = {**result, **served_by(address), "workers": n, "store": "postgresql" if url else "sqlite"}
        finally:
            process.terminate()
            try:
                process.wait(timeout=30)
            except Exception:  # noqa: BLE001 - a worker that does not stop in time is killed
                process.kill()
    first, second = results.values()
    ratios = {k: second[k] / first[k] for k in ("ttft_s_p50", "ttft_s_p95", "decode_tok_s_p50", "tokens_s_total",
                                                "wall_s") if first.get(k) and second.get(k) is not None}  # fmt: skip
    return {"setups": results, "ratios": ratios, "errors": sum(r["errors"] for r in results.values())}


def cmd_serve(args) -> int:
    """The command: start the app unless `--url`, run the customers, print and write the result."""
    if args.clients < 1 or args.messages < 1:
        print("chatbot bench serve: --clients and --messages must be >= 1", file=sys.stderr)
        return 2
    from chatbot.config import AppConfig

    config = AppConfig.load(getattr(args, "config", None))
    if args.compare:
        return cmd_compare(args, config)
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
        result |= served_by(url)
    finally:
        if server is not None:
            server.should_exit = True
        if engine is not None:
            time.sleep(0.5)
            engine.close()
    result["url"] = url
    write(result, args.out)
    print(json.dumps(result) if args.json else table(result))
    return 1 if result["errors"] else 0


def cmd_compare(args, config: Any) -> int:
    """`--compare`: both setups, one table each, the JSON with both and their ratios."""
    from chatbot.settings import chatbot_home

    if not args.store_url or not args.store_url.startswith(("postgresql://", "postgres://")):
        print("chatbot bench serve: --compare needs --store-url postgresql://USER@HOST:PORT/DB (a database the "
              "workers may migrate and fill; use an empty one)", file=sys.stderr)  # fmt: skip
        return 2
    if args.url or args.workers < 1:
        print("chatbot bench serve: --compare starts its own servers (no --url) and needs --workers >= 1",
              file=sys.stderr)  # fmt: skip
        return 2
    result = compare(config, getattr(args, "config", None), args.store_url, args.workers, args.clients,
                     args.messages, args.timeout, chatbot_home() / "bench-serve")  # fmt: skip
    write(result, args.out)
    if args.json:
        print(json.dumps(result))
    else:
        for name, setup in result["setups"].items():
            print(f"## {name}\n{table(setup)}\n")
        print("ratios (second / first): " + ", ".join(f"{k} {v:.2f}" for k, v in result["ratios"].items()))
    return 1 if result["errors"] else 0


def write(result: dict[str, Any], out: str | None) -> None:
    if out:
        path = Path(out)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(result, indent=2), encoding="utf-8")
