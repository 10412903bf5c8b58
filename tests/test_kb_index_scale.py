"""FAISS index types at scale: approximate indexes against exact search, their search settings surviving a reload,
clear errors for bad factory strings, a progress bar while building, and `bench retrieval --indexes` on the shared
data (hash embedder here; the README's figures come from MiniLM)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from knowledge_base.config import KBConfig
from knowledge_base.embedder import HashEmbedder
from knowledge_base.index import Fusion, Retriever, build_faiss_index, configure_faiss
from knowledge_base.index_bench import IndexSpec, default_specs, parse_specs, run_index_benchmark

DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data"
needs_data = pytest.mark.skipif(not (DATA / "banking77" / "train.csv").exists(), reason=f"no shared data at {DATA}")


@pytest.fixture(scope="module")
def banking():
    """Real sentences (Banking77 utterances) with hash-embedder vectors: clustered like text, unlike random ones."""
    import csv

    if not (DATA / "banking77" / "train.csv").exists():
        pytest.skip(f"no shared data at {DATA}")
    with open(DATA / "banking77" / "train.csv", encoding="utf-8", newline="") as f:
        texts = sorted({row["text"].strip() for row in csv.DictReader(f)})
    vectors = HashEmbedder(128).encode(texts)
    return vectors[:4000], vectors[4000:4400]  # (FAQ rows, queries)


def top_rows(index, queries: np.ndarray, k: int = 10) -> np.ndarray:
    return index.search(queries, k)[1]


@needs_data
@pytest.mark.parametrize(
    ("factory", "ef_search", "nprobe", "min_nn1"),
    [("HNSW32", 64, 16, 0.95), ("IVF64,Flat", 64, 64, 1.0), ("IVF64,Flat", 64, 8, 0.7)],
)
def test_approximate_indexes_find_what_exact_search_finds(banking, factory, ef_search, nprobe, min_nn1):
    rows, queries = banking
    exact = top_rows(build_faiss_index(rows, "Flat"), queries)
    approx = top_rows(build_faiss_index(rows, factory, ef_search, nprobe), queries)
    agreement = float(np.mean(approx[:, 0] == exact[:, 0]))
    assert agreement >= min_nn1
    if nprobe == 64:  # every list searched: IVF is exact
        assert agreement == 1.0


def test_ivf_nprobe_is_restored_from_config_on_reload(chatbot_home, hash_embedder):
    import faiss

    from knowledge_base.kb import KnowledgeBase, demo_faq_path

    config = KBConfig(embedder="hash:256", index_factory="IVF8,Flat", ivf_nprobe=3)
    KnowledgeBase(chatbot_home / "kb", config, hash_embedder).build(demo_faq_path())
    reloaded = KnowledgeBase(chatbot_home / "kb", config, hash_embedder).warm_up()
    ivf = faiss.extract_index_ivf(reloaded._current().faiss_index)
    assert (ivf.nlist, ivf.nprobe) == (8, 3)  # nprobe is not stored in the index file
    assert reloaded.search("how do I get a refund", k=1).hits[0].entry.id == "get_refund"


def test_nprobe_is_capped_at_the_number_of_lists():
    import faiss

    vectors = HashEmbedder(32).encode([f"sentence number {i} about orders" for i in range(200)])
    index = build_faiss_index(vectors, "IVF4,Flat", nprobe=16)
    assert faiss.extract_index_ivf(index).nprobe == 4
    configure_faiss(index, nprobe=2)
    assert faiss.extract_index_ivf(index).nprobe == 2


@pytest.mark.parametrize(
    ("factory", "n", "message"),
    [
        ("NotAnIndex", 50, "is not a FAISS factory string"),
        ("IVF1024,Flat", 50, "has 1024 lists but the FAQ has only 50"),
    ],
)
def test_bad_index_factories_say_how_to_fix(factory, n, message):
    vectors = HashEmbedder(32).encode([f"question {i}" for i in range(n)])
    with pytest.raises(ValueError, match=message) as caught:
        build_faiss_index(vectors, factory)
    assert '"Flat"' in str(caught.value)


@pytest.mark.parametrize("field", ["ivf_nprobe", "hnsw_ef_search"])
def test_search_settings_must_be_positive(field):
    with pytest.raises(ValueError, match=f"kb.{field}"):
        KBConfig(**{field: 0})


def test_a_build_shows_progress_for_the_word_and_dense_indexes(capsys):
    from knowledge_base.records import FaqEntry

    entries = [FaqEntry(f"e{i}", f"question {i} about delivery", "an answer", (f"phrasing {i}",)) for i in range(300)]
    vectors = HashEmbedder(32).encode([p for e in entries for p in e.phrasings])
    retriever = Retriever.build("v1", entries, vectors, Fusion(), "HNSW32", progress=True)
    err = capsys.readouterr().err
    assert "word index" in err and "FAISS HNSW32" in err and "/600 " in err  # the bar over all 600 rows
    assert retriever.search("question 7 about delivery", vectors[14], k=1)[0].entry.id == "e7"


def test_index_specs_from_the_command_line():
    assert parse_specs("HNSW32;IVF1024,Flat", ef_search=32, nprobe=8) == [
        IndexSpec("Flat"), IndexSpec("HNSW32", 32, 8), IndexSpec("IVF1024,Flat", 32, 8)
    ]  # fmt: skip
    assert [s.factory for s in parse_specs("Flat;HNSW32")] == ["Flat", "HNSW32"]
    with pytest.raises(ValueError, match="factory strings separated by"):
        parse_specs(" ; ")
    assert [s.label for s in default_specs(100_000)] == ["Flat", "HNSW32 ef=64", "IVF1024,Flat nprobe=16"]


@needs_data
@pytest.mark.slow
def test_index_benchmark_measures_every_index_against_exact(tmp_path):
    config = KBConfig(embedder="hash:64")
    specs = [IndexSpec("Flat"), IndexSpec("HNSW32", ef_search=16), IndexSpec("IVF64,Flat", nprobe=64)]
    small = {"rows": 3000, "sets": ["banking77"], "progress": False, "pool_rows": 3000, "max_queries": 150}
    results = run_index_benchmark(DATA, HashEmbedder(64), config, tmp_path / "cache", specs=specs, timed_queries=50,
                                  **small)  # fmt: skip
    row = results["sets"]["banking77"]
    assert row["entries"] == 3000 and row["phrasings"] > 3000
    flat, ivf = row["indexes"]["Flat"], row["indexes"]["IVF64,Flat nprobe=64"]
    assert flat["nn_recall_at_1"] == 1.0 and flat["dense"]["recall_at_1_loss"] == 0.0
    assert ivf["nn_recall_at_1"] == 1.0 and ivf["hybrid"]["recall_at_1_loss"] == 0.0  # all lists: exact
    hnsw = row["indexes"]["HNSW32 ef=16"]
    assert 0.5 <= hnsw["nn_recall_at_1"] <= 1.0 and hnsw["search_ms_p50"] > 0 and hnsw["size_mb"] > flat["size_mb"]
    with pytest.raises(ValueError, match="must be Flat"):
        run_index_benchmark(DATA, HashEmbedder(64), config, tmp_path / "cache", rows=3000, sets=["banking77"],
                            specs=specs[1:], progress=False, pool_rows=3000, max_queries=150)  # fmt: skip


@needs_data
@pytest.mark.slow
def test_bench_retrieval_indexes_through_the_cli(chatbot_home, capsys, tmp_path):
    from cli.main import main

    (chatbot_home / "config.toml").write_text('[kb]\nembedder = "hash:64"\n', encoding="utf-8")
    out = tmp_path / "indexes.json"
    argv = ["bench", "retrieval", "--data", str(DATA), "--indexes", "Flat;IVF32,Flat", "--index-rows", "2000",
            "--sets", "banking77", "--index-queries", "100", "--out", str(out)]  # fmt: skip
    assert main(argv) == 0
    assert "IVF32,Flat nprobe=16" in capsys.readouterr().out
    assert set(json.loads(out.read_text())["sets"]["banking77"]["indexes"]) == {"Flat", "IVF32,Flat nprobe=16"}
    assert main([*argv[:5], " ; ", *argv[6:]]) == 2
    assert "factory strings separated by" in capsys.readouterr().err
