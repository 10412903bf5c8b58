"""`chatbot bench learn`: the learning loop run on replayed support conversations, and its effect measured.

1. doc2dial dialogues of a domain the shipped adapter never saw (`studentaid`) are split by dialogue into a tuning
   part (its replays are kept to read the acceptance threshold on, and the gates' `[eval]` queries come from it),
   batch 1 and batch 2; each agent turn that answers is one replayed message (`all_turns`), shown with its own
   conversation so far. Each `split_seeds` seed draws another split and runs the whole loop on it.
2. Batch 1 is replayed through the bot (every reply a draft, `training.replay`) with the starting FAQ version and
   adapter, and reviewed as an agent would: a draft within `threshold` ROUGE-L of the agent's real reply is
   approved unedited, any other is edited to it, and a handed-off message gets the agent's reply.
3. The reviews teach both levers. **Where the answer is** (`chatbot.phrasings`): each reply that one FAQ entry
   clearly supports (found from the texts alone) makes the customer's question a phrasing of that entry; the
   phrasings are built into a new FAQ version through the normal build and the FAQ answer-quality gate.
   **How agents say it**: each reply with such an entry becomes a grounded example with that entry as source [1]
   (`training.grounded.sourced_review_examples`; replies it does not support are left out), and the next adapter is
   trained on them from the starting one and put through the adapter gate.
4. Batch 2 is replayed in each arm of `arms`: `both` (learned phrasings and trained adapter), `phrasings` (learned
   FAQ version, starting adapter), `adapter` (starting FAQ version, trained adapter) and `control` (the starting FAQ
   version and the starting adapter: nothing learned from batch 1). A gate that refuses is recorded and the version
   or adapter used anyway, so its effect is still measured.

Acceptance is the share of replayed messages whose draft an agent would send unedited (a handed-off message has
none). Each arm's rise over the control is a paired bootstrap over batch-2 dialogues, per split and pooled over the
splits; the run-to-run spread is the rise's bootstrap deviation and its difference between the splits.

Every step writes its result into the working folder (`stages`); a run stopped after `max_stages` steps (or killed)
continues from there when started again with the same settings.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import random
import shutil
import statistics
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from training.replay import ReplayRecord, ReplaySample

THRESHOLDS = tuple(round(0.05 * i, 2) for i in range(1, 20))
"""ROUGE-L thresholds the acceptance curve is drawn at."""
ARMS = ("control", "phrasings", "adapter", "both")
"""Batch-2 replays: which of batch 1's levers each one serves (see the module docstring)."""
_LEVERS = {"control": (False, False), "phrasings": (True, False), "adapter": (False, True), "both": (True, True)}


@dataclass(frozen=True)
class LearnBenchConfig:
    """The sizes and settings of one `chatbot bench learn` run (each is a flag)."""

    batch_size: int = 58
    """Dialogues in batch 1 and in batch 2."""
    tune_size: int = 12
    """Dialogues of the tuning part (threshold reading, the gates' `[eval]` queries)."""
    all_turns: bool = True
    """Replay every answering agent turn of a dialogue (else one, a seeded choice)."""
    threshold: float = 0.4
    """ROUGE-L F1 of a draft against the agent's reply from which the agent sends it unedited."""
    steps: int = 20
    """Optimizer steps of the training run."""
    train_batch: int = 4
    """Examples per training step."""
    max_length: int = 384
    """Most tokens of one training example."""
    learning_rate: float = 2e-4
    seed: int = 0
    """Training seed."""
    split_seeds: tuple[int, ...] = (0, 1)
    """Seeds of the splits into tuning part and batches; each runs the whole loop."""
    arms: tuple[str, ...] = ARMS
    """Batch-2 replays to run (`control` always runs: the others are measured against it)."""
    bootstrap: int = 1000
    """Bootstrap resamples of batch-2 dialogues for the spread."""
    gate_limit: int = 8
    """Tuning-part queries the gates compare on (each is answered twice per candidate)."""
    domains: tuple[str, ...] = ("studentaid",)
    """doc2dial domains replayed (the shipped adapter was trained on `ssa` and `va`)."""
    max_new_tokens: int = 80
    """Most tokens of one draft (agents' replies are one or two sentences)."""

    def __post_init__(self) -> None:
        checks = [
            (self.batch_size >= 2 and self.tune_size >= 1, "--batch-size must be >= 2 and --tune-size >= 1"),
            (0.0 < self.threshold <= 1.0, "--threshold must lie in (0, 1] (a ROUGE-L F1)"),
            (self.steps >= 1 and self.train_batch >= 1, "--steps and --train-batch must be >= 1"),
            (len(self.split_seeds) >= 1 and len(set(self.split_seeds)) == len(self.split_seeds),
             "--split-seeds needs at least one seed, each once"),
            ("control" in self.arms and set(self.arms) <= set(ARMS),
             f"--arms must include control and name only {', '.join(ARMS)}"),
            (self.bootstrap >= 10, "--bootstrap must be >= 10"),
            (self.gate_limit >= 1, "--gate-limit must be >= 1"),
        ]  # fmt: skip
        for ok, message in checks:
            if not ok:
                raise ValueError(message)


class Paused(Exception):
    """The run stopped after its `max_stages` steps; starting it again continues with `next_stage`."""

    def __init__(self, next_stage: str, done: int):
        super().__init__(f"stopped after {done} step(s); run the same command again to continue with {next_stage}")
        self.next_stage = next_stage


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
                     resamples: int, seed: int = 0, groups: Sequence[str] | None = None
                     ) -> dict[str, float]:  # fmt: skip
    """The acceptance difference learned - control over the same messages, and its spread: the standard deviation
    and 2.5/97.5 percentiles of the difference over `resamples` bootstrap resamples. With `groups` (each message's
    dialogue), whole dialogues are resampled: the turns of one conversation are not independent."""
    if [r.sample_id for r in learned] != [r.sample_id for r in control]:
        raise ValueError("the learned and control replays must cover the same messages in the same order")
    if not learned:
        raise ValueError("the paired bootstrap needs at least one message")
    diffs = [int(a.accepted(threshold)) - int(b.accepted(threshold)) for a, b in zip(learned, control, strict=True)]
    clusters: dict[str, list[int]] = {}
    for i, d in enumerate(diffs):
        clusters.setdefault(groups[i] if groups is not None else str(i), []).append(d)
    units = [(sum(c), len(c)) for c in clusters.values()]
    rng = random.Random(seed)
    means = []
    for _ in range(resamples):
        drawn = [units[rng.randrange(len(units))] for _ in units]
        means.append(sum(s for s, _ in drawn) / sum(n for _, n in drawn))
    means.sort()
    return {
        "difference": round(sum(diffs) / len(diffs), 4),
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


def outcome(record: ReplayRecord, threshold: float) -> str:
    """What the reviewing agent does with a replayed message: `handoff`, `approved` or `edited`."""
    if record.draft is None:
        return "handoff"
    return "approved" if record.accepted(threshold) else "edited"


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
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = [{"query": s.history[-1].content, "faq_id": s.gold} for s in samples if s.gold]
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


Trainer = Callable[[Any, Path, Path], dict[str, Any]]
"""(TrainConfig, grounded examples file, output folder) -> training metrics."""


def _train_config(cfg: LearnBenchConfig, examples: Path, start: Path | None) -> Any:
    from training.config import TrainConfig

    return TrainConfig(
        init_adapter=str(start) if start else None, grounded=(str(examples),), max_steps=cfg.steps,
        batch_size=cfg.train_batch, max_length=cfg.max_length, learning_rate=cfg.learning_rate, warmup_steps=2,
        seed=cfg.seed, val_fraction=0.0, eval_every=0, save_every=0, threads=1,
    )  # fmt: skip


class Stages:
    """Each step's result as a JSON file in `folder`: a step whose file exists is read back, not run again; after
    `budget` steps run in this process, the next one raises `Paused`; with `report_only` a missing step is None."""

    def __init__(self, folder: Path, budget: int | None = None, report_only: bool = False):
        self.folder, self.budget, self.done, self.report_only = folder, budget, 0, report_only
        folder.mkdir(parents=True, exist_ok=True)

    def has(self, name: str) -> bool:
        return (self.folder / f"{name}.json").exists()

    def run(self, name: str, step: Callable[[], Any]) -> Any:
        path = self.folder / f"{name}.json"
        if path.exists():
            return json.loads(path.read_text(encoding="utf-8"))
        if self.report_only:
            return None
        if self.budget is not None and self.done >= self.budget:
            raise Paused(f"{self.folder.name}/{name}", self.done)
        value = step()
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(value, ensure_ascii=False) + "\n", encoding="utf-8")
        os.replace(tmp, path)
        self.done += 1
        return json.loads(path.read_text(encoding="utf-8"))


class _Split:
    """One split's knowledge base, store and engine in its own `$CHATBOT_HOME`, made when a step first needs them."""

    def __init__(self, app: Any, home: Path, sections: list, backend: Any, embedder: Any):
        self.app, self.home, self.sections = app, home, sections
        self.backend, self.embedder = backend, embedder
        self._kb = self._store = self._engine = None

    @property
    def kb(self) -> Any:
        if self._kb is None:
            from knowledge_base.kb import KnowledgeBase

            kb = KnowledgeBase(self.home / "kb", self.app.kb, self.embedder)
            if kb.current_version is None:
                kb.build_entries(self.sections, source="doc2dial")
            self._kb = kb.warm_up()
        return self._kb

    @property
    def store(self) -> Any:
        if self._store is None:
            from chatbot.store import Store

            self._store = Store(self.app.store, path=self.home / "replay.sqlite3").warm_up()
        return self._store

    @property
    def engine(self) -> Any:
        if self._engine is None:
            from chatbot.engine import Engine

            self._engine = Engine.from_config(self.app, kb=self.kb, embedder=self.kb.embedder, backend=self.backend,
                                              store=self.store).warm_up()  # fmt: skip
            self.backend = self._engine.backend  # warm: the next split's engine shares it
        return self._engine

    def serve(self, version: str, adapter: str) -> Any:
        """The engine answering from FAQ `version` with `adapter`."""
        engine = self.engine
        if self.kb.current_version != version:
            self.kb.activate(version)
        engine.set_adapter(adapter)
        return engine

    def close(self) -> None:
        if self._engine is not None:
            self._engine.close()
        elif self._store is not None:
            self._store.close()


def run_learn_bench(app: Any, data: Path, work: Path, cfg: LearnBenchConfig, trainer: Trainer, *,
                    backend: Any = None, embedder: Any = None, progress: bool = False,
                    max_stages: int | None = None, report_only: bool = False) -> dict[str, Any]:  # fmt: skip
    """Run the loop (see the module docstring) in `work` with `app` (its `[model] adapter` is the starting
    adapter; `[routing] mode` is set to `draft_only` and `[eval]` to the tuning part here) and return the results.
    `trainer` trains one adapter; `backend`/`embedder`: warm ones to use instead of `app`'s. `work` keeps every
    step's result: a second call with the same settings continues where the first stopped (`max_stages`: run at
    most that many steps, then raise `Paused`); other settings are refused (start in an empty folder). With
    `report_only` nothing runs: the results cover the steps done (a split without its batch-2 control is left out,
    an arm counts in the splits that replayed it)."""
    from training.grounded import doc2dial_sections
    from training.replay import doc2dial_samples, split_samples

    docs = data / "doc2dial" / "documents_validation_no_dmv.jsonl"
    turns = data / "doc2dial" / "turns_validation_no_dmv.jsonl"
    for path in (docs, turns):
        if not path.exists():
            raise FileNotFoundError(f"{path} not found: pass the shared data folder (it holds doc2dial/) with --data")
    settings = {**asdict(cfg), "start_adapter": str(app.model.adapter), "backend": app.model.backend}
    # which arms run and how the figures are resampled may change between the calls of one run; nothing else
    kept = json.loads(json.dumps({k: v for k, v in settings.items() if k not in ("arms", "bootstrap")}))
    work.mkdir(parents=True, exist_ok=True)
    saved = work / "settings.json"
    if saved.exists() and json.loads(saved.read_text(encoding="utf-8")) != kept:
        raise ValueError(f"{work} holds a run with other settings ({saved}): pass another --work folder or --fresh")
    saved.write_text(json.dumps(kept, indent=2) + "\n", encoding="utf-8")
    sections = doc2dial_sections(docs, cfg.domains)
    samples = doc2dial_samples(turns, sections, cfg.domains)
    start = str(app.model.adapter or "none")
    splits = []
    budget = [max_stages]
    for split_seed in cfg.split_seeds:
        parts = split_samples(samples, (cfg.tune_size, cfg.batch_size, cfg.batch_size), split_seed,
                              all_turns=cfg.all_turns)  # fmt: skip
        folder = work / f"split-{split_seed}"
        split_app = dataclasses.replace(
            app,
            routing=dataclasses.replace(app.routing, mode="draft_only"),
            generation=dataclasses.replace(app.generation, max_new_tokens=cfg.max_new_tokens),
            eval=dataclasses.replace(app.eval, queries=str(write_gate_queries(parts[0], folder / "eval.jsonl")),
                                     conversations=None, limit=cfg.gate_limit),
        )  # fmt: skip
        stages = Stages(folder, budget[0], report_only)
        try:
            split = _run_split(split_app, folder, sections, parts, cfg, trainer, start, stages, backend, embedder,
                               progress)  # fmt: skip
        finally:
            if budget[0] is not None:
                budget[0] -= stages.done
        backend = split.pop("_backend", backend)
        if split["arms"].get("control") is not None:
            splits.append({**split, "split_seed": split_seed})
    if not splits:
        raise ValueError(f"{work} holds no split replayed to its batch-2 control yet: run without --report-only")
    return _results(cfg, settings, app, splits)


def _run_split(app: Any, folder: Path, sections: list, parts: list[list[ReplaySample]], cfg: LearnBenchConfig,
               trainer: Trainer, start: str, stages: Stages, backend: Any, embedder: Any, progress: bool
               ) -> dict[str, Any]:  # fmt: skip
    from training.replay import replay, review

    tune, batch1, batch2 = parts
    home = folder / "home"
    if not stages.has("batch1"):  # the store must hold batch 1's reviews once: start the split's home afresh
        shutil.rmtree(home, ignore_errors=True)
    split = _Split(app, home, sections, backend, embedder)
    records = ReplayRecord.from_dict
    try:
        with chatbot_home_at(home):
            # the doc2dial sections as they are (a report reads no knowledge base)
            first_version = "" if stages.report_only else split.kb.versions()[0].version

            def replayed(samples: list[ReplaySample], desc: str, version: str, adapter: str) -> list[dict]:
                engine = split.serve(version, adapter)
                return [r.to_dict() for r in replay(engine, samples, desc=desc, progress=progress)]

            tune_rows = stages.run("tune", lambda: replayed(tune, "tuning part", first_version, start))

            def batch_one() -> dict[str, Any]:
                got = [records(r) for r in replayed(batch1, "batch 1", first_version, start)]
                return {"records": [r.to_dict() for r in got], "outcomes": review(split.store, got, batch1,
                                                                                  cfg.threshold)}  # fmt: skip

            first = stages.run("batch1", batch_one)
            learned = stages.run("learn", lambda: _learn(split, folder, first_version))
            if learned is None:  # report only, and this split is not that far
                return {"parts": parts, "arms": {}, "_backend": split.backend}
            adapter_path = str(home / "adapters" / f"learned-s{cfg.seed}")
            trained = None
            if {"adapter", "both"} & set(cfg.arms):
                trained = stages.run("train", lambda: _train(split, cfg, trainer, folder, adapter_path, start,
                                                             first_version))  # fmt: skip
            arms = {}
            for arm in ARMS:
                if arm not in cfg.arms:
                    continue
                phrasings, adapter = _LEVERS[arm]
                version = learned["version"] if phrasings else first_version
                served = adapter_path if adapter else start
                rows = stages.run(f"batch2-{arm}", lambda v=version, a=served, n=arm: replayed(
                    batch2, f"batch 2, {n}", v, a))  # fmt: skip
                if rows is not None:
                    arms[arm] = rows
    finally:
        split.close()
    return {"parts": parts, "tune": tune_rows, "batch1": first, "learn": learned, "train": trained, "arms": arms,
            "_backend": split.backend}  # fmt: skip


def _learn(split: _Split, folder: Path, first_version: str) -> dict[str, Any]:
    """Both levers from batch 1's reviews: the learned phrasings built into a new FAQ version (through the FAQ gate;
    used anyway when it refuses, and recorded so) and the grounded examples, each with the entry its reply is
    drawn from as source [1]."""
    from chatbot.gate import GateRefusedError, activate_version
    from chatbot.phrasings import learn, reviewed_replies, with_phrasings
    from training.grounded import sourced_review_examples, write_grounded

    kb, config = split.kb, split.app.learning
    if kb.current_version != first_version:
        kb.activate(first_version)
    entries = kb.entries()
    replies = reviewed_replies(split.store)
    phrasings = learn(replies, entries, config)
    examples, counts = sourced_review_examples(split.store, entries, config)
    n_examples = write_grounded(examples, folder / "reviews.jsonl")
    out: dict[str, Any] = {
        "replies": len(replies), "phrasings": [asdict(p) for p in phrasings],
        "entries_taught": len({p.faq_id for p in phrasings}), "examples": n_examples, "example_counts": counts,
    }  # fmt: skip
    if not phrasings:
        return {**out, "version": first_version, "gate": {"ok": True, "reasons": ["nothing learned"]}}
    info = kb.build_entries(with_phrasings(entries, phrasings), source="learned phrasings", activate=False)
    engine = split.engine
    try:
        _, result = activate_version(kb, info.version, split.app, backend=engine.backend)
        gate = {"ok": True, "reasons": list(result.reasons)}
    except GateRefusedError as exc:
        gate = {"ok": False, "reasons": list(exc.result.reasons)}
    kb.activate(first_version)
    return {**out, "version": info.version, "gate": gate}


def _train(split: _Split, cfg: LearnBenchConfig, trainer: Trainer, folder: Path, adapter: str, start: str,
           first_version: str) -> dict[str, Any]:  # fmt: skip
    """Train the next adapter on the sourced reviews from the starting one, and gate it against the starting one
    (activated anyway when refused, and recorded so)."""
    from chatbot.adapters import GateError, activate

    shutil.rmtree(adapter, ignore_errors=True)
    start_path = Path(start) if start and start != "none" else None
    examples = folder / "reviews.jsonl"
    metrics = trainer(_train_config(cfg, examples, start_path), examples, Path(adapter))
    engine = split.serve(first_version, start)
    try:
        record = activate(adapter, engine=engine, config=split.app)
        gate = {"ok": True, "reasons": record["gate"]}
    except GateError as exc:
        activate(adapter, force=True)
        gate = {"ok": False, "reasons": list(exc.result.reasons)}
    engine.set_adapter(start)
    return {"train": _train_summary(metrics), "gate": gate}


def _train_summary(metrics: dict[str, Any]) -> dict[str, Any]:
    final = metrics.get("final", {})
    keys = ("step", "train_loss_last10", "train_time_s", "s_per_step")
    return {k: final.get(k) for k in keys} | {"examples": metrics.get("data", {}).get("train_examples")}


# -- results ---------------------------------------------------------------------------------------------------------
def _results(cfg: LearnBenchConfig, settings: dict[str, Any], app: Any, splits: list[dict[str, Any]]
             ) -> dict[str, Any]:  # fmt: skip
    t = cfg.threshold
    out_splits = []
    pooled: dict[str, list[ReplayRecord]] = {arm: [] for arm in cfg.arms}
    paired: dict[str, list[ReplayRecord]] = {arm: [] for arm in cfg.arms}  # the control's records beside each arm's
    groups_of: dict[str, list[str]] = {arm: [] for arm in cfg.arms}
    for split in splits:
        split_seed = split["split_seed"]
        tune, batch1, batch2 = split["parts"]
        by_id = {s.id: s for s in (*tune, *batch1, *batch2)}
        first = [ReplayRecord.from_dict(r) for r in split["batch1"]["records"]]
        outcomes = split["batch1"]["outcomes"]
        arms = {arm: [ReplayRecord.from_dict(r) for r in rows] for arm, rows in split["arms"].items()}
        groups = [by_id[r.sample_id].dialogue for r in arms["control"]]
        taught = {p["faq_id"] for p in split["learn"]["phrasings"]}
        figures = {}
        for arm, records in arms.items():
            second = [outcome(r, t) for r in records]
            figures[arm] = {
                **batch_figures(records, t),
                "top_source_is_agents": _share([r.top_faq_id == by_id[r.sample_id].gold for r in records]),
                "modes_after_batch2": autonomy_modes([*first, *records], [*outcomes, *second], app.autonomy)["counts"],
            }  # fmt: skip
            if arm != "control":
                figures[arm]["rise"] = paired_bootstrap(records, arms["control"], t, cfg.bootstrap, split_seed, groups)
            pooled[arm].extend(records)
            paired[arm].extend(arms["control"])
            groups_of[arm].extend(f"{split_seed}:{g}" for g in groups)
        out_splits.append({
            "split_seed": split_seed,
            "sizes": {"tune": len(tune), "batch1": len(batch1), "batch2": len(batch2),
                      "dialogues": [len({s.dialogue for s in p}) for p in (tune, batch1, batch2)]},
            "tuning": {**batch_figures([ReplayRecord.from_dict(r) for r in split["tune"]], t),
                       "pairs": [{"sample_id": r["sample_id"], "agent": by_id[r["sample_id"]].agent_reply,
                                  "draft": r["draft"], "rouge_l": round(r["rouge_l"], 4)} for r in split["tune"]]},
            "batch1": {**batch_figures(first, t), "outcomes": {o: outcomes.count(o) for o in sorted(set(outcomes))},
                       "modes": autonomy_modes(first, outcomes, app.autonomy)["counts"],
                       "top_source_is_agents": _share([r.top_faq_id == by_id[r.sample_id].gold for r in first])},
            "learning": {
                **{k: v for k, v in split["learn"].items() if k != "phrasings"},
                "n_phrasings": len(split["learn"]["phrasings"]),
                "phrasings_placed_on_agents_section": _share(
                    [_placed_right(p, batch1) for p in split["learn"]["phrasings"]]),
                "batch2_on_taught_entries": _share([s.gold in taught for s in batch2]),
                "phrasings": split["learn"]["phrasings"][:40],  # the first of them, as examples
                "adapter": split["train"],
            },
            "batch2": figures,
            "replies": [{"sample_id": c.sample_id, "agent": by_id[c.sample_id].agent_reply,
                         **{arm: arms[arm][i].draft for arm in arms}} for i, c in enumerate(arms["control"][:30])],
            "arms": sorted(arms),
        })  # fmt: skip
    summary: dict[str, Any] = {"control_acceptance": _share([r.accepted(t) for r in pooled["control"]])}
    for arm in cfg.arms:
        ran = [s for s in out_splits if arm in s["batch2"]]
        if arm == "control" or not ran:
            continue
        rises = [s["batch2"][arm]["rise"]["difference"] for s in ran]
        summary[arm] = {
            "splits": [s["split_seed"] for s in ran],
            "acceptance": _share([r.accepted(t) for r in pooled[arm]]),
            "control_acceptance": _share([r.accepted(t) for r in paired[arm]]),
            "rise": paired_bootstrap(pooled[arm], paired[arm], t, cfg.bootstrap, 0, groups_of[arm]),
            "rise_by_split": rises,
            "split_spread": round(max(rises) - min(rises), 4),
            "unsupported": [s["batch2"][arm]["unsupported_share"] for s in ran],
            "control_unsupported": [s["batch2"]["control"]["unsupported_share"] for s in ran],
        }
    pooled_figures = {arm: batch_figures(records, t) for arm, records in pooled.items() if records}
    return {
        "config": settings,
        "measure": (
            f"a draft is accepted (sent unedited) when its ROUGE-L F1 against the agent's real reply is >= {t}; "
            "acceptance = accepted drafts / replayed messages (a handed-off message has no draft)"
        ),
        "control": "batch 2 replayed with the starting FAQ version and the starting adapter (nothing learned)",
        "splits": out_splits,
        "pooled": pooled_figures,
        "summary": summary,
    }


def _placed_right(phrasing: dict[str, Any], batch1: Sequence[ReplaySample]) -> bool:
    """Whether a learned phrasing went to the section doc2dial's annotators say the agent used (a check of the
    text-only placement; the gold section is never used to place it)."""
    golds = {s.gold for s in batch1 if phrasing["phrasing"].endswith(" ".join(s.history[-1].content.split()))}
    return phrasing["faq_id"] in golds


def plot(results: dict[str, Any], path: Path) -> Path:
    """Acceptance against the ROUGE-L threshold on batch 2 (pooled over the splits) for each arm, the chosen
    threshold marked; beside it acceptance at that threshold per arm with the 95% bootstrap interval of the rise."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    threshold = results["config"]["threshold"]
    pooled, summary = results["pooled"], results["summary"]
    styles = {"control": ("tab:gray", "control (nothing learned)"), "phrasings": ("tab:orange", "learned phrasings"),
              "adapter": ("tab:green", "adapter trained on reviews"),
              "both": ("tab:blue", "phrasings + adapter")}  # fmt: skip
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4), dpi=100, gridspec_kw={"width_ratios": [3, 2]})
    for arm, figures in pooled.items():
        curve = figures["curve"]
        color, label = styles[arm]
        left.plot([float(x) for x in curve], [v or 0.0 for v in curve.values()], color=color, label=label,
                  linewidth=2.5 if arm in ("control", "both") else 1.5)  # fmt: skip
    left.axvline(threshold, color="tab:red", alpha=0.5, linestyle="--", label=f"threshold {threshold}")
    left.set_xlabel("ROUGE-L F1 to the agent's reply needed to send unedited")
    left.set_ylabel("acceptance on batch 2 (share of messages)")
    left.grid(alpha=0.3)
    left.legend(fontsize=8)
    arms = list(pooled)
    values = [pooled[a]["acceptance"] or 0.0 for a in arms]
    low = [0.0 if a == "control" else summary[a]["rise"]["difference"] - summary[a]["rise"]["low"] for a in arms]
    high = [0.0 if a == "control" else summary[a]["rise"]["high"] - summary[a]["rise"]["difference"] for a in arms]
    right.bar(arms, values, color=[styles[a][0] for a in arms], yerr=[low, high], capsize=6)
    right.set_ylabel(f"acceptance at {threshold}")
    n = sum(s["sizes"]["batch2"] for s in results["splits"])
    right.set_title(f"{n} batch-2 messages, {len(results['splits'])} split(s)\nerror bars: 95% bootstrap of the rise",
                    fontsize=9)  # fmt: skip
    fig.suptitle("chatbot bench learn: drafts agents would send unedited, after learning from batch 1's reviews")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path
