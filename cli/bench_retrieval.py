"""`chatbot bench retrieval`: dense vs BM25 vs hybrid retrieval on evaluation sets built from the shared public
data, at 100, 10k and 100k FAQ rows, with the real embedder; JSON file plus a short table. With `--indexes`: FAISS
index types (exact vs HNSW vs IVF) on one large FAQ instead (`knowledge_base.index_bench`)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

DEFAULT_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
OUT = "var/bench/retrieval.json"


def cmd_retrieval(args) -> int:
    import os

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from chatbot.config import AppConfig
    from chatbot.settings import chatbot_home
    from knowledge_base.benchmark import run_benchmark, table
    from knowledge_base.embedder import make_embedder

    data = Path(args.data) if args.data else DEFAULT_DATA
    if not data.exists():
        print(
            f"chatbot bench retrieval: data folder {data} not found; pass the shared data folder with "
            "--data PATH (it holds banking77/, clinc150/, afqmc/)",
            file=sys.stderr,
        )
        return 2
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
        import faiss

        faiss.omp_set_num_threads(args.threads)
    config = AppConfig.load(getattr(args, "config", None)).kb
    embedder = make_embedder(config)
    if args.indexes:
        return _indexes(args, data, embedder, config)
    scales = [int(s) for s in args.scales.split(",")]
    sets = (args.sets or "banking77,clinc150,afqmc").split(",")
    try:
        results = run_benchmark(
            data,
            embedder,
            config,
            chatbot_home() / "bench" / "cache",
            scales=scales,
            sets=sets,
            latency_queries=args.latency_queries,
        )
    except FileNotFoundError as exc:
        print(f"chatbot bench retrieval: {exc}", file=sys.stderr)
        return 2
    results["config"]["threads"] = args.threads
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2), encoding="utf-8")
    print(table(results))
    print(f"\nwritten to {out}")
    return 0


def _indexes(args, data: Path, embedder, config) -> int:
    from chatbot.settings import chatbot_home
    from knowledge_base.index_bench import default_specs, index_table, parse_specs, run_index_benchmark

    try:
        specs = (
            default_specs(args.index_rows, config.hnsw_ef_search, config.ivf_nprobe)
            if args.indexes == "default"
            else parse_specs(args.indexes, config.hnsw_ef_search, config.ivf_nprobe)
        )
        results = run_index_benchmark(data, embedder, config, chatbot_home() / "bench" / "cache", rows=args.index_rows,
                                      sets=(args.sets or "banking77,clinc150").split(","), specs=specs,
                                      max_queries=args.index_queries)  # fmt: skip
    except (FileNotFoundError, ValueError) as exc:
        print(f"chatbot bench retrieval: {exc}", file=sys.stderr)
        return 2
    results["config"]["threads"] = args.threads
    out = Path(args.out if args.out != OUT else "var/bench/retrieval-indexes.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2), encoding="utf-8")
    print(index_table(results))
    print(f"\nwritten to {out}")
    return 0


def register(subparsers) -> None:
    p = subparsers.add_parser("retrieval", help="dense vs BM25 vs hybrid FAQ retrieval at 100 / 10k / 100k rows")
    p.add_argument("--data", help="the shared data folder (default: ../shared/data beside the repository)")
    p.add_argument("--out", default=OUT, help="JSON results file (with --indexes: var/bench/retrieval-indexes.json)")
    p.add_argument("--scales", default="100,10000,100000", help="FAQ sizes in entries, comma-separated")
    p.add_argument("--sets", help="evaluation sets, comma-separated (default banking77,clinc150,afqmc; with --indexes "
                   "banking77,clinc150)")  # fmt: skip
    p.add_argument("--latency-queries", type=int, default=200, help="queries timed one by one with embedding")
    p.add_argument("--threads", type=int, default=1, help="torch/FAISS threads (1 leaves a core to others; 0 = all)")
    p.add_argument("--indexes", nargs="?", const="default", metavar="FACTORIES",
                   help='compare FAISS indexes instead: factory strings separated by ";" (default Flat;HNSW32;'
                   'IVF<4*sqrt(rows)>,Flat), with [kb] hnsw_ef_search and ivf_nprobe')  # fmt: skip
    p.add_argument("--index-rows", type=int, default=100_000, help="FAQ entries for --indexes (default 100000)")
    p.add_argument("--index-queries", type=int, help="at most this many queries per set for --indexes (default all)")
    p.set_defaults(func=cmd_retrieval)
