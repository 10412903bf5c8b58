"""USE heads (`knowledge_base.use_head`): files checked on load with errors that say what to do, a head trained on a
small pairs file brings its paraphrases closer, `[kb] embedder = "use-zh"` serves one, and a version built with a
head is refused by plain USE and by another head. The AFQMC training pairs leave out every benchmark sentence."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from knowledge_base.config import KBConfig
from knowledge_base.embedder import USEEmbedder, make_embedder
from knowledge_base.use_head import (
    SHAPES,
    SHIPPED_HEAD,
    HeadFileError,
    head_tag,
    head_vectors,
    load_head,
    read_pairs,
    save_head,
)

DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data"


def _weights(seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {name: rng.normal(0, 0.05, shape).astype(np.float32) for name, shape in SHAPES.items()}


def test_a_saved_head_loads_as_float32_with_its_metadata(tmp_path):
    weights = _weights()
    path = save_head(tmp_path / "h.safetensors", weights, {"note": "tiny"})
    loaded, meta = load_head(path)
    assert meta["note"] == "tiny" and meta["base"] == "use-multilingual-v3"
    for name in SHAPES:
        assert loaded[name].dtype == np.float32
        np.testing.assert_allclose(loaded[name], weights[name], atol=1e-3)  # stored as float16
    other = save_head(tmp_path / "other.safetensors", _weights(1))
    assert head_tag(path) != head_tag(other) and len(head_tag(path)) == 10


def test_the_shipped_head_is_a_valid_small_file():
    assert SHIPPED_HEAD.stat().st_size < 4_000_000
    weights, meta = load_head(SHIPPED_HEAD)
    assert set(weights) == set(SHAPES) and "AFQMC" in meta["note"]
    assert int(meta["positives"]) > 5000


def test_head_vectors_are_unit_rows_in_numpy_and_torch():
    import torch

    weights = _weights()
    sums = np.random.default_rng(2).normal(size=(3, 1280)).astype(np.float32)
    lengths = np.array([3.0, 7.0, 12.0], dtype=np.float32)
    z = head_vectors(weights, sums, lengths)
    np.testing.assert_allclose(np.linalg.norm(z, axis=1), 1.0, atol=1e-5)
    zt = head_vectors({k: torch.tensor(v) for k, v in weights.items()}, torch.tensor(sums), torch.tensor(lengths))
    np.testing.assert_allclose(zt.numpy(), z, atol=1e-5)


def test_a_missing_head_file_says_how_to_make_one(tmp_path):
    with pytest.raises(HeadFileError, match="not found.*python -m knowledge_base.use_head"):
        load_head(tmp_path / "nope.safetensors")
    with pytest.raises(HeadFileError, match="use_head: USE head file .* not found"):
        make_embedder(KBConfig(embedder="use-zh", use_head=str(tmp_path / "nope.safetensors")))


def test_a_file_that_is_not_safetensors_is_refused(tmp_path):
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x00\x01 not a tensor file at all")
    with pytest.raises(HeadFileError, match="not a safetensors file"):
        load_head(bad)


def test_a_safetensors_file_of_something_else_is_refused(tmp_path):
    from safetensors.numpy import save_file

    other = tmp_path / "lora.safetensors"
    save_file({"d0": np.zeros((512, 320), np.float16)}, str(other), metadata={"format": "pt"})
    with pytest.raises(HeadFileError, match="not a head for use-multilingual-v3"):
        load_head(other)


def test_a_head_with_a_wrong_shape_or_a_missing_array_is_refused(tmp_path):
    from safetensors.numpy import save_file

    weights = {k: v.astype(np.float16) for k, v in _weights().items()}
    meta = {"format": "use-head/1", "base": "use-multilingual-v3"}
    wrong = dict(weights, d0=np.zeros((512, 300), np.float16))
    save_file(wrong, str(tmp_path / "wrong.safetensors"), metadata=meta)
    with pytest.raises(HeadFileError, match=r"d0 has shape \(512, 300\), USE needs \(512, 320\)"):
        load_head(tmp_path / "wrong.safetensors")
    save_file({k: v for k, v in weights.items() if k != "p3"}, str(tmp_path / "short.safetensors"), metadata=meta)
    with pytest.raises(HeadFileError, match="lacks the arrays p3"):
        load_head(tmp_path / "short.safetensors")
    with pytest.raises(ValueError, match="d0 must have shape"):
        save_head(tmp_path / "x.safetensors", wrong)


def _pairs_csv(path: Path, rows: list[tuple[str, str, object]], header=("sentence1", "sentence2", "label")) -> Path:
    with open(path, "w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def test_bad_pairs_files_are_refused_with_the_line(tmp_path):
    with pytest.raises(ValueError, match="header must be sentence1,sentence2,label"):
        read_pairs(_pairs_csv(tmp_path / "a.csv", [("a", "b", 1)], header=("q1", "q2", "same")))
    with pytest.raises(ValueError, match="line 3: needs two non-empty sentences and label 0 or 1"):
        read_pairs(_pairs_csv(tmp_path / "b.csv", [("a", "b", 1), ("c", "d", "yes")]))
    with pytest.raises(ValueError, match="line 2"):
        read_pairs(_pairs_csv(tmp_path / "c.csv", [("a", "", 1)]))
    with pytest.raises(ValueError, match="no pair with label 1"):
        read_pairs(_pairs_csv(tmp_path / "d.csv", [("a", "b", 0)]))
    with pytest.raises(FileNotFoundError, match="pairs file"):
        read_pairs(tmp_path / "none.csv")


def test_use_zh_names_its_head_without_loading_the_model(tmp_path):
    shipped = make_embedder(KBConfig(embedder="use-zh"))
    assert isinstance(shipped, USEEmbedder) and shipped._model is None
    assert shipped.name == f"use-multilingual-v3+use_zh_cs-{head_tag(SHIPPED_HEAD)}"
    own = save_head(tmp_path / "shop.safetensors", _weights())
    mine = make_embedder(KBConfig(embedder="use-zh", use_head=str(own)))
    assert mine.name == f"use-multilingual-v3+shop-{head_tag(own)}" != shipped.name
    assert make_embedder(KBConfig(embedder="use")).name == "use-multilingual-v3"


# Paraphrase pairs written for these tests (a shop's own customer questions), with different-question pairs.
PARAPHRASES = [
    ("怎么修改收货地址", "收货地址可以改吗"),
    ("订单什么时候发货", "下单后多久发货"),
    ("可以开发票吗", "能不能给我开票"),
    ("退货运费谁出", "退货的邮费由谁承担"),
    ("会员积分怎么用", "积分可以抵扣现金吗"),
    ("忘记登录密码怎么办", "密码忘了如何找回"),
    ("优惠券为什么用不了", "优惠券无法使用是什么原因"),
    ("快递显示签收但我没收到", "物流说已签收可是我没拿到包裹"),
    ("怎么取消订单", "订单能撤销吗"),
    ("支持货到付款吗", "可以收货时再付钱吗"),
    ("商品有质量问题怎么处理", "收到的东西坏了怎么办"),
    ("退款多久到账", "退的钱几天能回来"),
]
DIFFERENT = [
    ("怎么修改收货地址", "怎么修改登录密码"),
    ("订单什么时候发货", "订单什么时候能退款"),
    ("可以开发票吗", "可以用花呗吗"),
    ("退款多久到账", "发货多久到"),
]


@pytest.mark.real_model
def test_training_on_a_small_pairs_file_brings_its_paraphrases_closer(tmp_path):
    from knowledge_base.use_head import TrainConfig, main, train_head

    rows = [(a, b, 1) for a, b in PARAPHRASES] + [(a, b, 0) for a, b in DIFFERENT]
    path = _pairs_csv(tmp_path / "pairs.csv", rows)
    report = train_head(read_pairs(path), tmp_path / "head.safetensors", TrainConfig(epochs=20, batch_size=6),
                        threads=1, progress=False)  # fmt: skip
    assert report.positives == len(PARAPHRASES) and report.hard_negatives == len(DIFFERENT)
    assert report.losses[-1] < report.losses[0]

    plain = USEEmbedder()
    tuned = USEEmbedder(head=report.path)
    assert tuned.name.startswith("use-multilingual-v3+head-")

    def cosines(embedder, pairs):
        left = embedder.encode([a for a, _ in pairs])
        right = embedder.encode([b for _, b in pairs])
        return (left * right).sum(1)

    before, after = cosines(plain, PARAPHRASES), cosines(tuned, PARAPHRASES)
    assert after.mean() > before.mean() + 0.05
    # Paraphrases now stand further above the different-question pairs than before.
    assert after.mean() - cosines(tuned, DIFFERENT).mean() > before.mean() - cosines(plain, DIFFERENT).mean()
    vectors = tuned.encode(["怎么修改收货地址", "收货地址可以改吗"])
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)

    assert main([str(path), str(tmp_path / "cli.safetensors"), "--epochs", "1", "--threads", "1"]) == 0
    assert load_head(tmp_path / "cli.safetensors")[1]["note"] == "pairs.csv"


@pytest.mark.real_model
def test_a_version_built_with_a_head_is_refused_by_plain_use_and_by_another_head(chatbot_home, tmp_path):
    from knowledge_base.kb import KnowledgeBase, KnowledgeBaseError
    from knowledge_base.records import FaqEntry

    entries = [
        FaqEntry("repay", "花呗怎么还款", "在花呗页面点击还款。", (), "zh"),
        FaqEntry("limit", "借呗额度为什么降低了", "额度由系统综合评估。", (), "zh"),
        FaqEntry("open", "为什么开通不了花呗", "请先完成实名认证。", (), "zh"),
    ]
    kb = KnowledgeBase(chatbot_home / "kb", KBConfig(embedder="auto", auto_cjk="use-zh"))
    info = kb.build_entries(entries)
    assert info.embedder == make_embedder(KBConfig(embedder="use-zh")).name  # recorded in the manifest
    assert kb.search("花呗如何还钱").hits[0].entry.id == "repay"
    with pytest.raises(KnowledgeBaseError, match="built with embedder use-multilingual-v3\\+use_zh_cs"):
        KnowledgeBase(kb.root, KBConfig(embedder="use")).warm_up()
    other = save_head(tmp_path / "other.safetensors", _weights())
    with pytest.raises(KnowledgeBaseError, match="built with embedder use-multilingual-v3\\+use_zh_cs"):
        KnowledgeBase(kb.root, KBConfig(embedder="use-zh", use_head=str(other))).warm_up()


@pytest.mark.slow  # reads every AFQMC pair and the 10k distractor pool: 80 s on 2 cores
@pytest.mark.skipif(not (DATA / "afqmc").exists(), reason=f"the public datasets are not at {DATA}")
def test_afqmc_training_pairs_share_no_sentence_with_the_benchmark_sets():
    from knowledge_base import benchdata, benchdata_zh

    train = benchdata_zh.afqmc_training_pairs(DATA)
    trained = {s for a, b, _ in train for s in (a, b)}
    held = set(benchdata.distractor_pool(DATA, "afqmc", limit=10_000))
    for eval_set in (benchdata.afqmc(DATA), benchdata_zh.afqmc_dev(DATA), benchdata_zh.afqmc_1k(DATA)):
        held |= {e.question for e in eval_set.entries} | {q.query for q in eval_set.queries}
    assert not trained & held
    # Nor a sentence paired with a held-out one (pairs outside training are whole components).
    rest = [p for p in benchdata._afqmc_pairs(DATA) if p not in set(train)]
    assert not trained & {s for a, b, _ in rest for s in (a, b)}
    assert sum(label for *_, label in train) > 8000
