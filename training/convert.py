"""Converters from public support-dialogue datasets to DESIGN.md's log format, and the shipped sample set.

- Taskmaster-4 (coffee ordering, customer <-> barista agent; CC BY 4.0): `user` -> user, `assistant` -> assistant.
- Schema-Guided Dialogue (CC BY-SA 4.0): dialogues whose services are all service-desk-like (default: Banks and
  Payment); `USER` -> user, `SYSTEM` -> assistant.
- Bitext customer support (CDLA-Sharing-1.0): each instruction/response pair is a one-turn conversation.
- ABCD (MIT): the `original` chat; `action` lines (the agent's tool log) are dropped.

`python -m training.convert --data ../shared/data --out training/samples` rebuilds the shipped samples
(deterministic). Every converted text is redacted with the engine's redactor.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import json
import random
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from chatbot.redact import redact

SGD_SERVICES = ("Banks", "Payment")


def _conversation(conv_id: str, turns: Sequence[tuple[str, str]], source: str) -> dict[str, Any] | None:
    messages = [{"role": role, "content": redact(" ".join(text.split()))} for role, text in turns if text.strip()]
    if not any(m["role"] == "assistant" for m in messages) or not any(m["role"] == "user" for m in messages):
        return None
    return {"id": conv_id, "messages": messages, "source": source}


def _read_json(path: Path) -> Any:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as handle:
        return json.load(handle)


def convert_taskmaster4(paths: Sequence[str | Path]) -> Iterator[dict[str, Any]]:
    """Taskmaster-4 dialog files (`data_NN.json[.gz]`, a JSON list each) to log conversations."""
    for path in paths:
        for dialog in _read_json(Path(path)):
            turns = [
                ("user" if u["speaker"] == "user" else "assistant", u.get("text") or "")
                for u in dialog.get("utterances", [])
                if u.get("speaker") in ("user", "assistant")
            ]
            conv = _conversation(f"tm4-{dialog['conversation_id']}", turns, "taskmaster4")
            if conv:
                yield conv


def convert_sgd(paths: Sequence[str | Path], services: Sequence[str] = SGD_SERVICES) -> Iterator[dict[str, Any]]:
    """SGD dialogue files (`dialogues_NNN.json[.gz]`) to log conversations, keeping dialogues whose every service
    starts with one of `services` (`Banks` matches `Banks_1` and `Banks_2`)."""
    for path in paths:
        for dialog in _read_json(Path(path)):
            if not dialog["services"] or not all(s.startswith(tuple(services)) for s in dialog["services"]):
                continue
            turns = [("user" if t["speaker"] == "USER" else "assistant", t["utterance"]) for t in dialog["turns"]]
            conv = _conversation(f"sgd-{dialog['dialogue_id']}", turns, "sgd")
            if conv:
                yield conv


def convert_bitext(path: str | Path, max_response_chars: int | None = None) -> Iterator[dict[str, Any]]:
    """Bitext's CSV (`instruction`, `response`, `intent`) to one-turn conversations; optionally only rows whose
    response is at most `max_response_chars` long."""
    with open(path, encoding="utf-8", newline="") as handle:
        for i, row in enumerate(csv.DictReader(handle), start=2):
            response = row["response"].replace("\r\n", "\n").strip()
            if max_response_chars and len(response) > max_response_chars:
                continue
            messages = [
                {"role": "user", "content": redact(row["instruction"].strip())},
                {"role": "assistant", "content": redact(response)},
            ]
            if messages[0]["content"] and messages[1]["content"]:
                yield {"id": f"bitext-{i}-{row['intent']}", "messages": messages, "source": "bitext"}


def convert_abcd(path: str | Path) -> Iterator[dict[str, Any]]:
    """ABCD conversations (`abcd_sample.json` or the full file) to log conversations, without `action` lines."""
    data = _read_json(Path(path))
    items = data if isinstance(data, list) else [c for split in data.values() for c in split]
    for conv in items:
        turns = [
            ("user" if speaker == "customer" else "assistant", text)
            for speaker, text in conv["original"]
            if speaker in ("customer", "agent")
        ]
        out = _conversation(f"abcd-{conv['convo_id']}", turns, "abcd")
        if out:
            yield out


def build_samples(
    data_dir: str | Path,
    out_dir: str | Path,
    seed: int = 0,
    n_taskmaster: int = 170,
    n_sgd: int = 110,
    n_bitext: int = 130,
    val_fraction: float = 0.1,
) -> dict[str, int]:
    """The shipped sample logs: a seeded pick from each source, split by conversation into `train.jsonl` and
    `val.jsonl` in `out_dir`. Returns counts per file and source."""
    from training.data import Conversation, parse_conversation, split_conversations, write_logs

    data = Path(data_dir)
    rng = random.Random(seed)

    def pick(items: list[dict[str, Any]], n: int) -> list[dict[str, Any]]:
        items = sorted(items, key=lambda c: c["id"])
        return rng.sample(items, min(n, len(items)))

    tm4 = pick(
        list(convert_taskmaster4(sorted((data / "taskmaster4_coffee").glob("data_0[0-6].json.gz")))), n_taskmaster
    )
    sgd_files = sorted((data / "sgd" / "train").glob("dialogues_*.json.gz"))
    sgd = pick([c for c in convert_sgd(sgd_files) if len(c["messages"]) <= 16], n_sgd)
    bitext_file = data / "bitext_customer_support" / "Bitext_Sample_Customer_Support_Training_Dataset.csv"
    bitext = pick(list(convert_bitext(bitext_file, max_response_chars=600)), n_bitext)
    abcd = list(convert_abcd(data / "abcd_sample" / "abcd_sample.json"))
    conversations: list[Conversation] = [parse_conversation(c, c["id"]) for c in tm4 + sgd + bitext + abcd]
    train, val = split_conversations(conversations, val_fraction, seed)
    out = Path(out_dir)
    counts = {"train": write_logs(train, out / "train.jsonl"), "val": write_logs(val, out / "val.jsonl")}
    for name, items in (("taskmaster4", tm4), ("sgd", sgd), ("bitext", bitext), ("abcd", abcd)):
        counts[name] = len(items)
    return counts


def build_heldout(
    data_dir: str | Path,
    out: str | Path,
    exclude: str | Path,
    seed: int = 1,
    n_taskmaster: int = 30,
    n_sgd: int = 30,
    n_bitext: int = 20,
) -> dict[str, int]:
    """A held-out evaluation log: Taskmaster-4 and Bitext conversations not in the shipped samples (`exclude`, the
    folder of `train.jsonl` and `val.jsonl`) and SGD Banks dialogues of the dev split (the samples use train only)."""
    from training.data import write_logs

    data = Path(data_dir)
    files = [Path(exclude) / "train.jsonl", Path(exclude) / "val.jsonl"]
    seen = {json.loads(line)["id"] for f in files for line in f.open(encoding="utf-8")}
    rng = random.Random(seed)

    def pick(items: list[dict[str, Any]], n: int) -> list[dict[str, Any]]:
        items = sorted((c for c in items if c["id"] not in seen), key=lambda c: c["id"])
        return rng.sample(items, min(n, len(items)))

    tm4 = pick(
        list(convert_taskmaster4(sorted((data / "taskmaster4_coffee").glob("data_0[0-6].json.gz")))), n_taskmaster
    )
    sgd = pick(list(convert_sgd(sorted((data / "sgd" / "dev").glob("dialogues_*.json.gz")))), n_sgd)
    bitext_file = data / "bitext_customer_support" / "Bitext_Sample_Customer_Support_Training_Dataset.csv"
    bitext = pick(list(convert_bitext(bitext_file, max_response_chars=600)), n_bitext)
    total = write_logs(tm4 + sgd + bitext, out)
    return {"heldout": total, "taskmaster4": len(tm4), "sgd_dev": len(sgd), "bitext": len(bitext)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.convert", description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default="../shared/data", help="folder with the public datasets")
    parser.add_argument("--out", default="training/samples", help="where train.jsonl and val.jsonl go")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--heldout",
        metavar="FILE",
        help="instead: write a held-out evaluation log of conversations not in the samples in --out",
    )
    args = parser.parse_args(argv)
    if args.heldout:
        print(json.dumps(build_heldout(args.data, args.heldout, args.out)))
        return 0
    print(json.dumps(build_samples(args.data, args.out, args.seed)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
