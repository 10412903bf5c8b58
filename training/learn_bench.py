"""`chatbot bench learn`: the learning loop run on replayed support conversations, and its effect measured.

1. doc2dial dialogues of a domain the shipped adapter never saw (`studentaid`) are split by dialogue into a tuning
   part (the threshold is read on it, and the gate's `[eval]` queries come from it), batch 1 and batch 2.
2. Batch 1 is replayed through the bot (every reply a draft, `training.replay`), and reviewed as an agent would:
   a draft within `threshold` ROUGE-L of the agent's real reply is approved unedited, any other is edited to it.
3. The reviews are exported (`training.grounded.review_examples`: the sent text with the draft's FAQ sources, the
   grounded objective) and the next adapter is trained on them from the starting one; it goes through the
   answer-quality gate (`chatbot.adapters.activate`) and serves batch 2.
4. The control: the same reviewed examples with the bot's own draft as every target (as if every draft had been
   approved as drafted: same conversations, prompts, sources, number of examples, steps and seed; only the agents'
   edits are missing), trained, gated and replayed on batch 2 the same way.

Acceptance is the share of replayed messages whose draft an agent would send unedited (a handed-off message has
none). The spread is a paired bootstrap over batch-2 conversations (and the seeds, with more than one).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import random
import shutil
import statistics
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from training.replay import ReplayRecord, ReplaySample

THRESHOLDS = tuple(round(0.05 * i, 2) for i in range(1, 20))
"""ROUGE-L thresholds the acceptance curve is drawn at."""


@dataclass(frozen=True)
class LearnBenchConfig:
    """The sizes and settings of one `chatbot bench learn` run (each is a flag)."""

    batch_size: int = 40
    """Conversations in batch 1 and in batch 2 (one agent turn of each)."""
    tune_size: int = 12
    """Conversations of the tuning part (threshold reading, the gate's `[eval]` queries)."""
    threshold: float = 0.4
    """ROUGE-L F1 of a draft against the agent's reply from which the agent sends it unedited."""
    steps: int = 20
    """Optimizer steps of each training run."""
    train_batch: int = 4
    """Examples per training step."""
    max_length: int = 384
    """Most tokens of one training example."""
    learning_rate: float = 2e-4
    seeds: tuple[int, ...] = (0,)
    """Training seeds; each trains both the learned and the control adapter."""
    split_seed: int = 0
    """Seed of the split into tuning part and batches."""
    bootstrap: int = 1000
    """Bootstrap resamples of batch 2 for the spread."""
    gate_limit: int = 8
    """Tuning-part queries the gate compares adapters on (each is answered twice per adapter)."""
    domains: tuple[str, ...] = ("studentaid",)
    """doc2dial domains replayed (the shipped adapter was trained on `ssa` and `va`)."""
    max_new_tokens: int = 80
    """Most tokens of one draft (agents' replies are one or two sentences)."""
    faithful_edits: bool = True
    """Train only on edits the draft's sources support (`training.grounded.is_faithful`, as the grounded objective
    keeps doc2dial replies); the control drops the same conversations."""

    def __post_init__(self) -> None:
        checks = [
            (self.batch_size >= 2 and self.tune_size >= 1, "--batch-size must be >= 2 and --tune-size >= 1"),
            (0.0 < self.threshold <= 1.0, "--threshold must lie in (0, 1] (a ROUGE-L F1)"),
            (self.steps >= 1 and self.train_batch >= 1, "--steps and --train-batch must be >= 1"),
            (len(self.seeds) >= 1, "--seeds needs at least one seed"),
            (self.bootstrap >= 10, "--bootstrap must be >= 10"),
            (self.gate_limit >= 1, "--gate-limit must be >= 1"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(message)


# -- figures ---------------------------------------------------------------------------------------------------------
def _share(flags: Sequence[bool]) -> float | None:
    return round(sum(flags) / len(flags), 4) if flags else None


def batch_figures(records: Sequence[ReplayRecord], threshold: float) -> dict[str, Any]:
    """A replayed batch's figures: `acceptance` (messages whose draft is sent unedited / messages),
    `acceptance_of_drafts` (the same over drafts), `draft_share`, `rouge_l` (mean over messages, 0 for a handoff),
    `rouge_l_drafts`, `unsupported_share` (drafts with an unsupported claim / drafts), `fallback_share`, and the
    acceptance `curve` at each of `THRESHOLDS`."""
    drafts = [r for r in records if r.draft is not None]
    return {
        "n": len(records),
        "acceptance": _share([r.accepted(threshold) for r in records]),
        "acceptance_of_drafts": _share([r.accepted(threshold) for r in drafts]),
        "draft_share": _share([r.draft is not None for r in records]),
        "rouge_l": round(statistics.fmean(r.rouge_l for r in records), 4) if records else None,
        "rouge_l_drafts": round(statistics.fmean(r.rouge_l for r in drafts), 4) if drafts else None,
        "unsupported_share": _share([bool(r.unsupported) for r in drafts]),
        "fallback_share": _share([r.fallback for r in drafts]),
        "curve": {str(t): _share([r.accepted(t) for r in records]) for t in THRESHOLDS},
    }


def paired_bootstrap(learned: Sequence[ReplayRecord], control: Sequence[ReplayRecord], threshold: float,
                     resamples: int, seed: int = 0) -> dict[str, float]:  # fmt: skip
    """The acceptance difference learned - control over the same messages, and its spread: the standard deviation
    and 2.5/97.5 percentiles of the difference over `resamples` bootstrap resamples of the messages."""
    if [r.sample_id for r in learned] != [r.sample_id for r in control]:
        raise ValueError("the learned and control replays must cover the same messages in the same order")
    diffs = [int(a.accepted(threshold)) - int(b.accepted(threshold)) for a, b in zip(learned, control, strict=True)]
    rng = random.Random(seed)
    n = len(diffs)
    means = sorted(sum(diffs[rng.randrange(n)] for _ in range(n)) / n for _ in range(resamples))
    return {
        "difference": round(sum(diffs) / n, 4),
        "std": round(statistics.pstdev(means), 4),
        "low": round(means[int(0.025 * (resamples - 1))], 4),
        "high": round(means[int(0.975 * (resamples - 1))], 4),
    }


def autonomy_modes(records: Sequence[ReplayRecord], outcomes: Sequence[str], config: Any) -> dict[str, Any]:
    """The mode each FAQ entry reaches (`chatbot.autonomy.settle` from `[autonomy] initial`) by the review outcomes
    of the drafts it was the top source of, in replay order; `counts` per mode and `entries` with their evidence."""
    from chatbot.autonomy import MODES, evidence, settle

    by_entry: dict[str, list[str]] = {}
    for record, outcome in zip(records, outcomes, strict=True):
        if outcome in ("approved", "edited") and record.top_faq_id:
            by_entry.setdefault(record.top_faq_id, []).append(outcome)
    entries = {}
    for faq_id, seen in by_entry.items():
        changes = settle(config.initial, seen, config)
        entries[faq_id] = {"mode": changes[-1][1] if changes else config.initial, **evidence(seen)}
    counts = {m: sum(e["mode"] == m for e in entries.values()) for m in MODES}
    return {"counts": counts, "entries": entries}


# -- the loop --------------------------------------------------------------------------------------------------------
@contextlib.contextmanager
def chatbot_home_at(folder: Path) -> Iterator[Path]:
    """`$CHATBOT_HOME` set to `folder` for the block (the registry and `active.json` the loop writes stay there)."""
    before = os.environ.get("CHATBOT_HOME")
    os.environ["CHATBOT_HOME"] = str(folder)
    try:
        yield folder
    finally:
        if before is None:
            os.environ.pop("CHATBOT_HOME", None)
        else:
            os.environ["CHATBOT_HOME"] = before


def write_gate_queries(samples: Sequence[ReplaySample], path: Path) -> Path:
    """The tuning part as `[eval]` queries: each sample's customer message and the section the agent used."""
    import json

    path.parent.mkdir(parents=True, exist_ok=True)
    rows = [{"query": s.history[-1].content, "faq_id": s.gold} for s in samples if s.gold]
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def faithful(example: Any) -> bool:
    """An example's reply adds nothing its sources or the customer's messages do not say (`is_faithful`)."""
    from training.grounded import is_faithful

    evidence = [t for s in example.sources for t in (s.answer, s.question)]
    return is_faithful(example.reply, evidence + [t.content for t in example.history if t.role == "user"])


def review_sets(store: Any, kb: Any, records: Sequence[ReplayRecord], faithful_edits: bool = True
                ) -> dict[str, list[Any]]:  # fmt: skip
    """The reviewed batch as grounded training examples (`training.grounded.review_examples`: the sent text with
    the draft's FAQ sources), `learned`, and the control, `control`: the same examples with the bot's own draft as
    the target (every draft approved as drafted: same conversations, prompts, sources and number of examples; only
    the agents' edits are missing). Replies without an FAQ source (agents' answers to handed-off messages) are left
    out of both: the grounded objective learns to restate sources, and a reply with none would teach the model to
    answer without any. With `faithful_edits`, so are edits that are not `faithful` to the draft's sources."""
    from training.grounded import review_examples

    drafts = {r.conversation_id: store.draft(r.draft_id).text for r in records if r.draft_id is not None}
    learned = [ex for ex in review_examples(store, kb.entry) if ex.sources]
    if faithful_edits:
        learned = [ex for ex in learned if ex.kind != "review:edited" or faithful(ex)]
    control = []
    for ex in learned:
        conversation_id = ex.id.removeprefix("review:").rsplit("-", 1)[0]
        control.append(dataclasses.replace(ex, reply=drafts[conversation_id], kind="review:approved"))
    return {"learned": learned, "control": control}


@dataclass
class Arm:
    """One adapter's way through the loop: its training set, training figures, gate and batch-2 replay."""

    name: str
    seed: int
    examples: int
    adapter: Path
    train: dict[str, Any] = field(default_factory=dict)
    gate: dict[str, Any] = field(default_factory=dict)
    records: list[ReplayRecord] = field(default_factory=list)


Trainer = Callable[[Any, Path, Path], dict[str, Any]]
"""(TrainConfig, grounded examples file, output folder) -> training metrics."""


def _train_config(cfg: LearnBenchConfig, seed: int, examples: Path, start: Path | None) -> Any:
    from training.config import TrainConfig

    return TrainConfig(
        init_adapter=str(start) if start else None, grounded=(str(examples),), max_steps=cfg.steps,
        batch_size=cfg.train_batch, max_length=cfg.max_length, learning_rate=cfg.learning_rate, warmup_steps=2,
        seed=seed, val_fraction=0.0, eval_every=0, save_every=0, threads=1,
    )  # fmt: skip


def _gate_and_serve(engine: Any, arm: Arm, start: str, app: Any) -> None:
    """Gate `arm.adapter` against the starting adapter on the engine, activate it (forced, and recorded so, when
    the gate refuses: the effect is still measured) and serve it."""
    from chatbot.adapters import GateError, activate

    engine.set_adapter(start)
    try:
        record = activate(str(arm.adapter), engine=engine, config=app)
        arm.gate = {"ok": True, "reasons": record["gate"], "comparison": record["comparison"]}
    except GateError as exc:
        activate(str(arm.adapter), force=True)
        arm.gate = {"ok": False, "reasons": list(exc.result.reasons),
                    "comparison": [asdict(r) for r in exc.result.rows]}  # fmt: skip
    engine.set_adapter(str(arm.adapter))


def run_learn_bench(app: Any, data: Path, work: Path, cfg: LearnBenchConfig, trainer: Trainer, *,
                    backend: Any = None, embedder: Any = None, progress: bool = False) -> dict[str, Any]:  # fmt: skip
    """Run the loop (see the module docstring) in `work` with `app` (its `[model] adapter` is the starting
    adapter; `[routing] mode` is set to `draft_only` and `[eval]` to the tuning part here) and return the results.
    `trainer` trains one adapter; `backend`/`embedder`: warm ones to use instead of `app`'s."""
    from chatbot.engine import Engine
    from chatbot.store import Store
    from knowledge_base.kb import KnowledgeBase
    from training.grounded import doc2dial_sections, write_grounded
    from training.replay import doc2dial_samples, replay, review, split_samples

    work.mkdir(parents=True, exist_ok=True)
    docs = data / "doc2dial" / "documents_validation_no_dmv.jsonl"
    turns = data / "doc2dial" / "turns_validation_no_dmv.jsonl"
    for path in (docs, turns):
        if not path.exists():
            raise FileNotFoundError(f"{path} not found: pass the shared data folder (it holds doc2dial/) with --data")
    sections = doc2dial_sections(docs, cfg.domains)
    samples = doc2dial_samples(turns, sections, cfg.domains)
    tune, batch1, batch2 = split_samples(samples, (cfg.tune_size, cfg.batch_size, cfg.batch_size), cfg.split_seed)
    start = app.model.adapter
    app = dataclasses.replace(
        app,
        routing=dataclasses.replace(app.routing, mode="draft_only"),
        generation=dataclasses.replace(app.generation, max_new_tokens=cfg.max_new_tokens),
        eval=dataclasses.replace(app.eval, queries=str(write_gate_queries(tune, work / "eval" / "queries.jsonl")),
                                 conversations=None, limit=cfg.gate_limit),
    )  # fmt: skip
    shutil.rmtree(work / "home", ignore_errors=True)
    with chatbot_home_at(work / "home"):
        kb = KnowledgeBase(work / "home" / "kb", app.kb, embedder)
        kb.build_entries(sections, source="doc2dial")
        kb.warm_up()
        store = Store(app.store, path=work / "home" / "replay.sqlite3")
        engine = Engine.from_config(app, kb=kb, embedder=kb.embedder, backend=backend, store=store).warm_up()
        try:
            engine.set_adapter(start)
            tune_records = replay(engine, tune, desc="tuning part", progress=progress)
            first = replay(engine, batch1, desc="batch 1", progress=progress)
            outcomes = review(store, first, batch1, cfg.threshold)
            sets, sizes = {}, {}
            for name, examples in review_sets(store, kb, first, cfg.faithful_edits).items():
                sets[name] = work / f"reviews-{name}.jsonl"
                sizes[name] = write_grounded(examples, sets[name])
            arms = []
            for seed in cfg.seeds:
                for name in ("learned", "control"):
                    arm = Arm(name, seed, sizes[name], work / "home" / "adapters" / f"{name}-s{seed}")
                    shutil.rmtree(arm.adapter, ignore_errors=True)
                    start_path = Path(start) if start and start != "none" else None
                    arm.train = trainer(_train_config(cfg, seed, sets[name], start_path), sets[name], arm.adapter)
                    _gate_and_serve(engine, arm, start, app)
                    arm.records = replay(engine, batch2, desc=f"batch 2, {name} s{seed}", progress=progress)
                    arms.append(arm)
            engine.set_adapter(start)
        finally:
            engine.close()
    return _results(cfg, app, tune, batch1, batch2, tune_records, first, outcomes, arms)


def _results(cfg: LearnBenchConfig, app: Any, tune: list, batch1: list, batch2: list, tune_records: list,
             first: list, outcomes: list, arms: list[Arm]) -> dict[str, Any]:  # fmt: skip
    by_id = {s.id: s for s in (*tune, *batch1, *batch2)}
    modes_before = autonomy_modes(first, outcomes, app.autonomy)
    seeds = []
    for seed in cfg.seeds:
        learned = next(a for a in arms if a.seed == seed and a.name == "learned")
        control = next(a for a in arms if a.seed == seed and a.name == "control")
        # The modes after batch 2: batch-1 outcomes, then batch 2 reviewed the same way.
        after = {}
        for arm in (learned, control):
            second = [_outcome(r, by_id[r.sample_id].agent_reply, cfg.threshold) for r in arm.records]
            after[arm.name] = autonomy_modes([*first, *arm.records], [*outcomes, *second], app.autonomy)["counts"]
        seeds.append({
            "seed": seed,
            "learned": {**batch_figures(learned.records, cfg.threshold), "train_examples": learned.examples,
                        "train": _train_summary(learned.train), "gate": learned.gate},
            "control": {**batch_figures(control.records, cfg.threshold), "train_examples": control.examples,
                        "train": _train_summary(control.train), "gate": control.gate},
            "rise": paired_bootstrap(learned.records, control.records, cfg.threshold, cfg.bootstrap, seed),
            "modes_after_batch2": after,
            "replies": [{"sample_id": a.sample_id, "agent": by_id[a.sample_id].agent_reply, "learned": a.draft,
                         "control": b.draft, "rouge_l": [round(a.rouge_l, 4), round(b.rouge_l, 4)]}
                        for a, b in zip(learned.records, control.records, strict=True)],
        })  # fmt: skip
    rises = [s["rise"]["difference"] for s in seeds]
    return {
        "config": {**asdict(cfg), "start_adapter": str(app.model.adapter), "backend": app.model.backend},
        "measure": (
            f"a draft is accepted (sent unedited) when its ROUGE-L F1 against the agent's real reply is >= "
            f"{cfg.threshold}; acceptance = accepted drafts / replayed messages (a handed-off message has no draft)"
        ),
        "tuning": {
            **batch_figures(tune_records, cfg.threshold),
            "pairs": [{"agent": by_id[r.sample_id].agent_reply, **r.to_dict()} for r in tune_records],
        },
        "batch1": {
            **batch_figures(first, cfg.threshold),
            "outcomes": {o: outcomes.count(o) for o in set(outcomes)},
            "modes": modes_before["counts"],
        },  # fmt: skip
        "batch2": seeds,
        "summary": {
            "batch1_acceptance": batch_figures(first, cfg.threshold)["acceptance"],
            "learned_acceptance": [s["learned"]["acceptance"] for s in seeds],
            "control_acceptance": [s["control"]["acceptance"] for s in seeds],
            "rise": rises,
            "rise_bootstrap_std": [s["rise"]["std"] for s in seeds],
            "rise_seed_std": round(statistics.pstdev(rises), 4) if len(rises) > 1 else None,
            "learned_unsupported": [s["learned"]["unsupported_share"] for s in seeds],
            "control_unsupported": [s["control"]["unsupported_share"] for s in seeds],
        },
    }


def _outcome(record: ReplayRecord, agent_reply: str, threshold: float) -> str:
    if record.draft is None:
        return "handoff"
    return "approved" if record.accepted(threshold) else "edited"


def _train_summary(metrics: dict[str, Any]) -> dict[str, Any]:
    final = metrics.get("final", {})
    keys = ("step", "train_loss_last10", "train_time_s", "s_per_step")
    return {k: final.get(k) for k in keys} | {"examples": metrics.get("data", {}).get("train_examples")}


def plot(results: dict[str, Any], path: Path) -> Path:
    """Acceptance against the ROUGE-L threshold for batch 1 (the starting adapter) and batch 2 (learned and control
    adapters, first seed), the chosen threshold marked; beside it acceptance at that threshold with the bootstrap
    spread of the rise."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    threshold = results["config"]["threshold"]
    first = results["batch2"][0]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4), dpi=100, gridspec_kw={"width_ratios": [3, 2]})
    for label, curve, style in (
        ("batch 1, starting adapter", results["batch1"]["curve"], "k:"),
        ("batch 2, control (no agent edits)", first["control"]["curve"], "tab:gray"),
        ("batch 2, trained on batch-1 reviews", first["learned"]["curve"], "tab:blue"),
    ):
        left.plot([float(t) for t in curve], [v or 0.0 for v in curve.values()], style, label=label, linewidth=2)
    left.axvline(threshold, color="tab:red", alpha=0.5, linestyle="--", label=f"threshold {threshold}")
    left.set_xlabel("ROUGE-L F1 to the agent's reply needed to send unedited")
    left.set_ylabel("acceptance (share of messages)")
    left.grid(alpha=0.3)
    left.legend(fontsize=8)
    names = ["batch 1", "batch 2\ncontrol", "batch 2\nlearned"]
    values = [results["batch1"]["acceptance"] or 0.0, first["control"]["acceptance"] or 0.0,
              first["learned"]["acceptance"] or 0.0]  # fmt: skip
    rise = first["rise"]
    errors = [[0, 0, rise["difference"] - rise["low"]], [0, 0, rise["high"] - rise["difference"]]]
    right.bar(names, values, color=["#999999", "#bbbbbb", "tab:blue"], yerr=errors, capsize=6)
    right.set_ylabel(f"acceptance at {threshold}")
    right.set_title(f"rise {rise['difference']:+.3f} (95% bootstrap {rise['low']:+.3f}..{rise['high']:+.3f})",
                    fontsize=9)  # fmt: skip
    fig.suptitle("chatbot bench learn: drafts agents would send unedited, before and after learning from reviews")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path
