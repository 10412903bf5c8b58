"""`chatbot kb ...`: build, search, list, roll back, validate, diff, evaluate and calibrate the FAQ knowledge base.

The index lives in `$CHATBOT_HOME/kb`; settings come from the `[kb]` section of the config file.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def _config(args):
    from chatbot.config import AppConfig

    return AppConfig.load(getattr(args, "config", None)).kb


def _kb(args):
    from chatbot.settings import chatbot_home
    from knowledge_base.kb import KnowledgeBase

    return KnowledgeBase(chatbot_home() / "kb", _config(args))


def _guard(func):
    """Turn the knowledge base's domain errors into one clear message and exit code 1."""

    def run(args) -> int:
        from knowledge_base.kb import KnowledgeBaseError
        from knowledge_base.loaders import FaqValidationError

        try:
            return func(args)
        except (FaqValidationError, KnowledgeBaseError) as exc:
            print(f"chatbot kb: {exc}", file=sys.stderr)
            return 1

    return run


def cmd_build(args) -> int:
    from knowledge_base.kb import demo_faq_path

    path = demo_faq_path() if args.demo else args.file
    if path is None:
        print("chatbot kb build: give a FAQ file (.jsonl, .csv or .md) or --demo", file=sys.stderr)
        return 2
    kb = _kb(args)
    diff = kb.diff(path)
    info = kb.build(path, progress=not args.quiet, activate=False)
    print(
        f"built {info.version} from {path}: {info.entries} entries, embedder {info.embedder} (dim {info.dim}), "
        f"corpus {info.corpus_hash}; +{len(diff.added)} added, ~{len(diff.changed)} changed, "
        f"-{len(diff.removed)} removed"
    )
    return 0 if _activate(args, kb, info.version) else 1


def _activate(args, kb, version: str):
    """Make `version` current through the answer-quality gate (`--force` skips it); None when refused."""
    from chatbot.config import AppConfig
    from chatbot.gate import GateRefusedError, activate_version

    config = AppConfig.load(getattr(args, "config", None))
    try:
        info, result = activate_version(
            kb, version, config, force=args.force, progress=not getattr(args, "quiet", False)
        )
    except GateRefusedError as exc:
        print(exc.result.text(), file=sys.stderr)
        print(f"chatbot kb: {exc}; {version} stays on disk (`chatbot kb rollback {version} --force`)", file=sys.stderr)
        return None
    print(result.text() if result.rows else f"gate: {result.reasons[0]}")
    print(f"current version is now {info.version} ({info.entries} entries)")
    return info


def cmd_search(args) -> int:
    kb = _kb(args)
    result = kb.search(args.text, k=args.k, language=args.language)
    if args.json:
        print(
            json.dumps(
                {
                    "index_version": result.index_version,
                    "language": result.language,
                    "timings": result.timings,
                    "hits": [
                        {
                            "faq_id": h.entry.id,
                            "question": h.entry.question,
                            "answer": h.entry.answer,
                            "score": round(h.score, 4),
                            "dense": round(h.dense, 4),
                            "lexical": round(h.lexical, 4),
                            "matched": h.matched,
                            "language": h.entry.language,
                        }
                        for h in result.hits
                    ],
                },
                ensure_ascii=False,
                indent=2,
            )
        )
        return 0
    cfg = kb.config
    print(f"index {result.index_version}  (answer >= {cfg.answer_threshold}, draft >= {cfg.draft_threshold})")
    for i, h in enumerate(result.hits, 1):
        print(f"{i}. [{h.score:.3f}] {h.entry.id}: {h.entry.question}  (dense {h.dense:.3f}, bm25 {h.lexical:.3f})")
    if result.hits:
        print(f"\n{result.hits[0].entry.answer}")
    return 0


def cmd_versions(args) -> int:
    versions = _kb(args).versions()
    if args.json:
        from dataclasses import asdict

        print(json.dumps([asdict(v) for v in versions], indent=2))
        return 0
    if not versions:
        print("no versions yet: run `chatbot kb build FILE`")
    for v in versions:
        mark = "*" if v.current else " "
        print(f"{mark} {v.version}  {v.created}  {v.entries:6d} entries  {v.embedder}  corpus {v.corpus_hash}")
    return 0


def cmd_rollback(args) -> int:
    return 0 if _activate(args, _kb(args), args.version) else 1


def cmd_validate(args) -> int:
    from knowledge_base.loaders import load_faq, validate_faq

    problems = validate_faq(args.file)
    if problems:
        print(f"{args.file}: {len(problems)} problem(s)", file=sys.stderr)
        for p in problems:
            print(f"  {args.file}:{p.line}: {p.message}" if p.line else f"  {args.file}: {p.message}", file=sys.stderr)
        return 1
    entries = load_faq(args.file)
    phrasings = sum(len(e.phrasings) for e in entries)
    print(f"{args.file}: OK, {len(entries)} entries, {phrasings} phrasings")
    return 0


def cmd_diff(args) -> int:
    diff = _kb(args).diff(args.file)
    print(
        json.dumps({"added": list(diff.added), "changed": list(diff.changed), "removed": list(diff.removed)}, indent=2)
    )
    return 0


def cmd_eval(args) -> int:
    from chatbot.settings import chatbot_home
    from knowledge_base.embedder import make_embedder
    from knowledge_base.evaluate import evaluate_files

    config = _config(args)
    result = evaluate_files(
        args.faq, args.queries, config, make_embedder(config), progress=True, cache_dir=chatbot_home() / "kb" / "cache"
    )
    if args.json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key:18s} {value:.4f}" if isinstance(value, float) else f"{key:18s} {value}")
    return 0


def cmd_calibrate(args) -> int:
    import tomlkit

    from chatbot.config import config_path
    from chatbot.settings import chatbot_home
    from knowledge_base.embedder import make_embedder
    from knowledge_base.evaluate import calibrate_files

    config = _config(args)
    cal = calibrate_files(
        args.faq,
        args.queries,
        config,
        make_embedder(config),
        precision=args.precision,
        refit=args.refit,
        progress=True,
        cache_dir=chatbot_home() / "kb" / "cache",
    )
    path = config_path(getattr(args, "config", None))
    doc = tomlkit.parse(path.read_text(encoding="utf-8")) if path.exists() else tomlkit.document()
    if "kb" not in doc:
        doc["kb"] = tomlkit.table()
    section = doc["kb"]
    section["answer_threshold"] = cal.answer_threshold
    draft = float(section.get("draft_threshold", config.draft_threshold))
    if draft > cal.answer_threshold:  # keep draft <= answer
        section["draft_threshold"] = cal.answer_threshold
    if args.refit:
        section["calibration_slope"] = round(cal.slope, 4)
        section["calibration_offset"] = round(cal.offset, 4)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(tomlkit.dumps(doc), encoding="utf-8")
    print(
        f"answer_threshold = {cal.answer_threshold} (precision {cal.precision:.3f}, answers {cal.answered:.1%} of "
        f"in-scope queries, n = {cal.n}); written to {path}"
    )
    return 0


def register(subparsers) -> None:
    parser = subparsers.add_parser("kb", help="FAQ knowledge base: build, search, versions, rollback, eval")
    sub = parser.add_subparsers(dest="kb_command", required=True, metavar="ACTION")

    p = sub.add_parser(
        "build",
        help="validate an FAQ file and make it the current version (no downtime) "
        "unless it answers worse than the current one on the [eval] files",
    )
    p.add_argument("file", nargs="?", type=Path, help="FAQ file: .jsonl, .csv or .md (DESIGN.md's format)")
    p.add_argument("--demo", action="store_true", help="build the demo store FAQ shipped in the repository")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--force", action="store_true", help="make it current even when the [eval] answer gate refuses")
    p.set_defaults(func=_guard(cmd_build))

    p = sub.add_parser("search", help="search the current version")
    p.add_argument("text")
    p.add_argument("--k", type=int, default=5, help="number of hits (default 5)")
    p.add_argument("--language", help="ISO 639-1 code: entries in this language rank first")
    p.add_argument("--json", action="store_true", help="print the hits as JSON")
    p.set_defaults(func=_guard(cmd_search))

    p = sub.add_parser("versions", help="list versions on disk (* = current)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_guard(cmd_versions))

    p = sub.add_parser("rollback", help="make an older version current (through the [eval] answer gate)")
    p.add_argument("version", help="e.g. v0003 (see `chatbot kb versions`)")
    p.add_argument("--force", action="store_true", help="make it current even when the [eval] answer gate refuses")
    p.set_defaults(func=_guard(cmd_rollback))

    p = sub.add_parser("validate", help="check an FAQ file and list every problem with its line number")
    p.add_argument("file", type=Path)
    p.set_defaults(func=_guard(cmd_validate))

    p = sub.add_parser("diff", help="ids an FAQ file would add, change and remove against the current version")
    p.add_argument("file", type=Path)
    p.set_defaults(func=_guard(cmd_diff))

    p = sub.add_parser("eval", help="retrieval metrics of an FAQ file on labelled queries")
    p.add_argument("--faq", type=Path, required=True, help="FAQ file")
    p.add_argument("--queries", type=Path, required=True, help="query file: query, faq_id (empty = out of scope)")
    p.add_argument("--json", action="store_true", help="one JSON object (DESIGN.md's keys)")
    p.set_defaults(func=_guard(cmd_eval))

    p = sub.add_parser("calibrate", help="choose [kb] answer_threshold for a target precision; writes the config")
    p.add_argument("--faq", type=Path, required=True, help="FAQ file")
    p.add_argument("--queries", type=Path, required=True, help="labelled validation queries (with OOS rows)")
    p.add_argument("--precision", type=float, default=0.9, help="target precision of answered queries (0.9)")
    p.add_argument("--refit", action="store_true", help="also refit and write the score calibration (slope, offset)")
    p.set_defaults(func=_guard(cmd_calibrate))
    _ = argparse  # the module keeps argparse-level imports only
