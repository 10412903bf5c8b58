"""`chatbot bench learn` and its parts: ROUGE-L, the doc2dial replay samples and their split, the replayed review,
the figures and the paired bootstrap, and the whole loop on a tiny doc2dial folder with the scripted backend, the
hash embedder and one training step of a tiny random Llama."""

from __future__ import annotations

import dataclasses
import json

import pytest

from training.learn_bench import LearnBenchConfig, batch_figures, paired_bootstrap, run_learn_bench
from training.replay import ReplayRecord, doc2dial_samples, rouge_l, section_of, split_samples

TOPICS = {
    "loans": ("Student loans", "Repaying loans", "You repay your federal student loan to your loan servicer monthly."),
    "grants": ("Pell grants", "Who gets a grant", "A Pell grant goes to undergraduates with exceptional need."),
    "forms": ("The FAFSA form", "Filing the form", "You file the FAFSA form online each year before the deadline."),
}


GRANT_QUESTION = "Can a poor family get free money for school?"
"""Shares no word with the grants section: only a learned phrasing sends it there."""


def _doc2dial(folder, n_dialogues: int = 12):
    """A doc2dial folder: one document per topic (a title line, then a heading and its section), and dialogues
    cycling through the topics. Loans and forms dialogues ask with the section's words; their even dialogues' agents
    reply with the section's own sentence (what the scripted backend drafts), odd ones with words no section has.
    Grants dialogues ask `GRANT_QUESTION` and the agent answers with the grants section's sentence."""
    d2d = folder / "doc2dial"
    d2d.mkdir(parents=True)
    docs, turns = [], []
    for key, (title, heading, text) in TOPICS.items():
        body = f"{title}\n\n{heading}\n{text}"
        docs.append({"doc_id": f"{key}#1_0", "domain": "studentaid", "doc_text": body})
        docs.append({"doc_id": f"other-{key}", "domain": "ssa", "doc_text": f"{title}\n\n{heading}\n{text}"})
    for i in range(n_dialogues):
        key = list(TOPICS)[i % len(TOPICS)]
        title, heading, text = TOPICS[key]
        reply = text if i % 2 == 0 or key == "grants" else "Please call our office and a counsellor will explain it."
        question = GRANT_QUESTION if key == "grants" else f"{heading}: {text.lower()}"
        opening = "Hello, I have a question." if key == "grants" else f"Hello, I have a question about {title.lower()}."
        history = [{"turn_id": 1, "role": "user", "utterance": opening},
                   {"turn_id": 2, "role": "agent", "utterance": "Sure, go ahead."},
                   {"turn_id": 3, "role": "user", "utterance": question}]  # fmt: skip
        start = len(f"{title}\n\n")
        turns.append({"id": f"d{i}_3", "dial_id": f"d{i}", "turn_id": 3, "domain": "studentaid",
                      "doc_id": f"{key}#1_0", "history": history,
                      "grounding": {"text": text, "answer_start": start}, "agent_reply": reply})  # fmt: skip
        turns.append({"id": f"d{i}_1", "dial_id": f"d{i}", "turn_id": 1, "domain": "studentaid",
                      "doc_id": f"{key}#1_0", "history": history[:1],
                      "grounding": {"text": text, "answer_start": start},
                      "agent_reply": "What would you like to know?"})  # fmt: skip
    (d2d / "documents_validation_no_dmv.jsonl").write_text("".join(json.dumps(d) + "\n" for d in docs))
    (d2d / "turns_validation_no_dmv.jsonl").write_text("".join(json.dumps(t) + "\n" for t in turns))
    return folder


def _record(sample_id: str, draft: str | None, score: float, unsupported: tuple[str, ...] = ()) -> ReplayRecord:
    return ReplayRecord(sample_id, "c", "draft" if draft else "handoff", draft, 1 if draft else None, "f", score,
                        unsupported, False)  # fmt: skip


# -- the measure -----------------------------------------------------------------------------------------------------
def test_rouge_l_is_the_f1_of_the_longest_common_word_subsequence():
    assert rouge_l("You repay the loan monthly.", "you repay the loan monthly") == 1.0
    # LCS "the loan" of 4 and 3 words: precision 2/4, recall 2/3
    assert rouge_l("pay the loan now", "the big loan") == pytest.approx(2 * 0.5 * (2 / 3) / (0.5 + 2 / 3))
    assert rouge_l("", "anything") == 0.0
    assert rouge_l("apples", "pears") == 0.0


def test_a_draft_is_accepted_from_the_threshold_on_and_a_handoff_never():
    assert _record("a", "text", 0.4).accepted(0.4)
    assert not _record("a", "text", 0.39).accepted(0.4)
    assert not _record("a", None, 0.0).accepted(0.0001)


# -- the data --------------------------------------------------------------------------------------------------------
def test_samples_keep_answers_with_their_grounding_section_and_drop_questions_back(tmp_path):
    from training.grounded import doc2dial_sections

    data = _doc2dial(tmp_path)
    sections = doc2dial_sections(data / "doc2dial" / "documents_validation_no_dmv.jsonl", ("studentaid",))
    samples = doc2dial_samples(data / "doc2dial" / "turns_validation_no_dmv.jsonl", sections)
    assert len(samples) == 12  # the turn-1 rows reply with a question and are left out
    first = samples[0]
    assert first.history[-1].role == "user" and first.history[1].role == "assistant"
    assert first.gold == section_of(sections, "loans#1_0", len("Student loans\n\n"))
    assert first.gold is not None and first.gold.startswith("loans#1_0@")
    assert section_of(sections, "unknown-doc", 10) is None


def test_split_is_disjoint_by_dialogue_and_refuses_sizes_the_data_cannot_fill(tmp_path):
    from training.grounded import doc2dial_sections

    data = _doc2dial(tmp_path)
    sections = doc2dial_sections(data / "doc2dial" / "documents_validation_no_dmv.jsonl", ("studentaid",))
    samples = doc2dial_samples(data / "doc2dial" / "turns_validation_no_dmv.jsonl", sections)
    parts = split_samples(samples, (2, 5, 5), seed=1)
    assert split_samples(samples, (2, 5, 5), seed=1, all_turns=True) == parts  # one answering turn per dialogue here
    dialogues = [{s.dialogue for s in part} for part in parts]
    assert [len(d) for d in dialogues] == [2, 5, 5]
    assert not (dialogues[0] & dialogues[1] or dialogues[1] & dialogues[2] or dialogues[0] & dialogues[2])
    assert split_samples(samples, (2, 5, 5), seed=1) == parts
    with pytest.raises(ValueError, match="12 dialogues, 13 asked for"):
        split_samples(samples, (3, 5, 5))


# -- figures ---------------------------------------------------------------------------------------------------------
def test_batch_figures_count_handoffs_as_not_accepted_and_claims_over_drafts():
    records = [_record("a", "x", 0.9), _record("b", "y", 0.2, ("names 'X'",)), _record("c", None, 0.0)]
    figures = batch_figures(records, 0.5)
    assert figures["acceptance"] == pytest.approx(1 / 3, abs=1e-4)
    assert figures["acceptance_of_drafts"] == 0.5
    assert figures["draft_share"] == pytest.approx(2 / 3, abs=1e-4)
    assert figures["unsupported_share"] == 0.5
    assert figures["rouge_l"] == pytest.approx(1.1 / 3, abs=1e-4)
    assert figures["curve"]["0.2"] == pytest.approx(2 / 3, abs=1e-4) and figures["curve"]["0.95"] == 0.0


def test_paired_bootstrap_gives_the_difference_and_a_spread_that_contains_it():
    learned = [_record(str(i), "d", 0.9 if i < 6 else 0.1) for i in range(10)]
    control = [_record(str(i), "d", 0.9 if i < 2 else 0.1) for i in range(10)]
    rise = paired_bootstrap(learned, control, 0.5, 500)
    assert rise["difference"] == 0.4
    assert rise["low"] <= 0.4 <= rise["high"] and rise["std"] > 0
    same = paired_bootstrap(control, control, 0.5, 100)
    assert same == {"difference": 0.0, "std": 0.0, "low": 0.0, "high": 0.0}
    # two dialogues, one of four turns all better, one of six all equal: whole dialogues are resampled, so a
    # resample is 0 (the equal one twice), 0.4 (each once) or 1 (the better one twice)
    by_dialogue = paired_bootstrap(learned, control, 0.5, 500, groups=list("yyxxxxyyyy"))
    assert by_dialogue["difference"] == 0.4 and by_dialogue["low"] == 0.0 and by_dialogue["high"] == 1.0
    with pytest.raises(ValueError, match="same messages"):
        paired_bootstrap(learned[:5], control, 0.5, 100)


def test_bench_settings_out_of_range_are_refused_with_the_flag_to_fix():
    with pytest.raises(ValueError, match="--threshold"):
        LearnBenchConfig(threshold=0.0)
    with pytest.raises(ValueError, match="--batch-size"):
        LearnBenchConfig(batch_size=1)
    with pytest.raises(ValueError, match="--split-seeds"):
        LearnBenchConfig(split_seeds=())
    with pytest.raises(ValueError, match="--split-seeds"):
        LearnBenchConfig(split_seeds=(1, 1))
    with pytest.raises(ValueError, match="--arms must include control"):
        LearnBenchConfig(arms=("both",))
    with pytest.raises(ValueError, match="--arms"):
        LearnBenchConfig(arms=("control", "magic"))


# -- the whole loop --------------------------------------------------------------------------------------------------
def test_the_loop_learns_phrasings_and_an_adapter_and_measures_each_arm(tmp_path, app_config, smol_tokenizer,
                                                                        scripted_backend, hash_embedder):  # fmt: skip
    from tests.fixtures_training import make_tiny_lm
    from training.grounded import load_grounded
    from training.learn_bench import Paused, plot
    from training.trainer import train

    data = _doc2dial(tmp_path / "data", n_dialogues=15)
    app_config.model.adapter = "none"
    trained = []

    def trainer(config, examples, out):
        trained.append((config, load_grounded(examples)))
        return train(config, [], out, app=app_config, progress=False, loaded=make_tiny_lm(smol_tokenizer))

    cfg = LearnBenchConfig(batch_size=6, tune_size=2, steps=1, train_batch=2, bootstrap=50, gate_limit=2,
                           threshold=0.6, max_length=512, split_seeds=(0,))  # fmt: skip
    work = tmp_path / "work"
    with pytest.raises(Paused, match="continue with split-0/batch1"):  # a run stopped after one step ...
        run_learn_bench(app_config, data, work, cfg, trainer, backend=scripted_backend, embedder=hash_embedder,
                        max_stages=1)  # fmt: skip
    with pytest.raises(ValueError, match="no split replayed"):  # nothing to report yet
        run_learn_bench(app_config, data, work, cfg, trainer, report_only=True)
    results = run_learn_bench(app_config, data, work, cfg, trainer, backend=scripted_backend,
                              embedder=hash_embedder)  # ... continues where it stopped # fmt: skip
    reported = run_learn_bench(app_config, data, work, cfg, trainer, report_only=True)  # runs nothing
    assert reported == results and len(trained) == 1
    with pytest.raises(ValueError, match="other settings"):
        run_learn_bench(app_config, data, work, dataclasses.replace(cfg, threshold=0.5), trainer,
                        backend=scripted_backend, embedder=hash_embedder)  # fmt: skip

    (split,) = results["splits"]
    batch1 = split["batch1"]
    assert batch1["n"] == 6 and sum(batch1["outcomes"].values()) == 6
    assert batch1["acceptance"] == batch1["outcomes"].get("approved", 0) / 6

    # Where the answer is: batch 1's grants question became a phrasing of the grants section, found from the
    # agent's reply alone; the "please call" replies no section supports taught nothing.
    learning = split["learning"]
    grants = [p for p in learning["phrasings"] if p["phrasing"] == GRANT_QUESTION]
    assert len(grants) == 1 and grants[0]["faq_id"].startswith("grants#1_0@")
    assert all(not p["phrasing"].startswith("Please call") for p in learning["phrasings"])
    assert learning["phrasings_placed_on_agents_section"] == 1.0
    assert learning["gate"]["ok"] is True  # the phrasings' FAQ version passed the FAQ gate

    # How agents say it: one training run, on the supported replies only, each with its section as source [1].
    ((train_cfg, examples),) = trained
    assert train_cfg.max_steps == 1 and train_cfg.init_adapter is None
    assert examples and all(ex.reply == ex.sources[0].answer for ex in examples)
    assert learning["example_counts"]["no_source"] >= 1  # the "please call" edits
    assert learning["adapter"]["gate"]["ok"] is True

    # Batch 2: the grants questions are now answered from the grants section; the control still misses them.
    arms = split["batch2"]
    assert set(arms) == {"control", "phrasings", "adapter", "both"}
    grant_rows = [r for r in split["replies"] if r["agent"] == TOPICS["grants"][2]]
    assert grant_rows and all(r["phrasings"] == r["agent"] and r["control"] != r["agent"] for r in grant_rows)
    assert arms["phrasings"]["rise"]["difference"] > 0 and arms["both"]["acceptance"] == arms["phrasings"]["acceptance"]
    assert arms["adapter"]["rise"]["difference"] == 0.0  # the scripted model ignores adapters
    assert arms["phrasings"]["top_source_is_agents"] > arms["control"]["top_source_is_agents"]
    assert results["summary"]["phrasings"]["rise"]["difference"] == arms["phrasings"]["rise"]["difference"]
    assert len(split["tuning"]["pairs"]) == split["sizes"]["tune"]

    figure = plot(results, tmp_path / "learn.png")
    assert figure.stat().st_size > 10_000


def test_missing_data_is_a_clear_error(tmp_path, app_config, scripted_backend):
    with pytest.raises(FileNotFoundError, match="--data"):
        run_learn_bench(app_config, tmp_path, tmp_path / "work", LearnBenchConfig(), lambda *a: {},
                        backend=scripted_backend)  # fmt: skip


def test_cli_reports_a_missing_data_folder(tmp_path, capsys):
    from cli.main import main

    assert main(["bench", "learn", "--data", str(tmp_path / "nowhere"), "--out", str(tmp_path / "o.json")]) == 2
    assert "doc2dial" in capsys.readouterr().err
    assert main(["bench", "learn", "--threshold", "2"]) == 2
    assert "--threshold" in capsys.readouterr().err
