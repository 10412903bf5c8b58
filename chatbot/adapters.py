"""The adapter registry in `$CHATBOT_HOME/adapters` and the activation gate.

Each registered adapter is a folder `$CHATBOT_HOME/adapters/NAME/` (a copy of a training output folder, without its
checkpoints). The active one is recorded in `$CHATBOT_HOME/adapters/active.json`:

    {"name": "support-v2",                 # folder name, or "none" for the base model
     "path": "/abs/.../adapters/support-v2",  # absolute folder, null for "none"
     "val_perplexity": 5.31,               # from the adapter's metrics.json (final.val_perplexity), or null
     "activated_at": "2026-11-28T20:40:00+00:00",
     "forced": false,                      # true when the gate was overridden with --force
     "previous": "shipped",                # what was active before (name), or null
     "gate": ["..."],                      # what the gate said (refusals never get a record)
     "comparison": [{"metric": ..., "active": ..., "candidate": ..., "change": ..., "worse": false}]}

replaced atomically; this module is its only reader and writer (`active_adapter()` is what the engine serves).
Without it the shipped adapter (`training/adapter/`) is the active one.

The gate (`chatbot.gate.check_adapter`): an adapter is activated only when it answers the deployment's `[eval]`
files no worse than the active one, both run through the same engine (`--force` overrides; with no `[eval]` files
the change goes through, saying so). A running `chatbot serve` follows the change within seconds
(`chatbot.adapter_watch`).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chatbot.settings import chatbot_home
from knowledge_base.files import write_atomic

ACTIVE_FILE = "active.json"
SHIPPED = "shipped"

log = logging.getLogger(__name__)


class AdapterError(RuntimeError):
    """An adapter that cannot be registered or found; the message says how to fix it."""


class GateError(AdapterError):
    """Activation refused: the candidate answers the `[eval]` files worse than the active adapter; `result` is the
    comparison (`chatbot.gate.GateResult`)."""

    def __init__(self, message: str, result: Any):
        super().__init__(message)
        self.result = result


@dataclass(frozen=True)
class AdapterInfo:
    """One adapter the registry knows."""

    name: str
    path: Path
    val_perplexity: float | None
    steps: int | None
    base_model: str | None
    active: bool = False


def registry_dir() -> Path:
    """`$CHATBOT_HOME/adapters` (created on first use)."""
    folder = chatbot_home() / "adapters"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def shipped_adapter_dirs() -> list[Path]:
    """Folders where a repository-shipped adapter may live."""
    here = Path(__file__).resolve().parent
    return [here.parent / "adapters" / "shipped", here.parent / "training" / "adapter", here / "adapter"]


def shipped_adapter() -> Path | None:
    """The adapter shipped in the repository (`training/adapter/`), if present."""
    return next((d for d in shipped_adapter_dirs() if (d / "adapter_config.json").exists()), None)


def read_metrics(path: Path) -> dict[str, Any]:
    """An adapter folder's `metrics.json` (empty when missing or unreadable)."""
    try:
        return json.loads((path / "metrics.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def info(path: Path, name: str | None = None, active: bool = False) -> AdapterInfo:
    metrics = read_metrics(path)
    final = metrics.get("final") or {}
    try:
        base = json.loads((path / "adapter_config.json").read_text(encoding="utf-8")).get("base_model_name_or_path")
    except (OSError, ValueError):
        base = None
    return AdapterInfo(name or path.name, path, final.get("val_perplexity"), final.get("step"), base, active)


def active_record() -> dict[str, Any]:
    """The active adapter as recorded (see the module docstring); the shipped adapter when nothing is recorded."""
    folder = registry_dir()
    record_file = folder / ACTIVE_FILE
    if record_file.exists():
        try:
            return json.loads(record_file.read_text(encoding="utf-8"))
        except ValueError as exc:
            raise AdapterError(f"{record_file} is not valid JSON ({exc}); delete it or activate an adapter") from exc
    shipped = shipped_adapter()
    if shipped is None:
        return {"name": "none", "path": None, "val_perplexity": None}
    return {"name": SHIPPED, "path": str(shipped), "val_perplexity": info(shipped).val_perplexity}


def active_adapter() -> Path | None:
    """The folder of the active adapter that the engine serves; None = the base model. The shipped adapter when
    nothing is recorded, or when the recorded folder is gone (logged)."""
    record = active_record()
    if record.get("name") == "none":
        return None
    path = Path(record["path"]) if record.get("path") else None
    if path is not None and (path / "adapter_config.json").exists():
        return path
    if path is not None:
        log.warning("the active adapter %s has no adapter_config.json; using the shipped adapter", path)
    return shipped_adapter()


def list_adapters() -> list[AdapterInfo]:
    """The shipped adapter (as `shipped`) and every registered one, marking the active one."""
    active = active_record().get("name")
    out = []
    shipped = shipped_adapter()
    if shipped is not None:
        out.append(info(shipped, SHIPPED, active == SHIPPED))
    for folder in sorted(registry_dir().iterdir()):
        if folder.is_dir() and (folder / "adapter_config.json").exists():
            out.append(info(folder, active=folder.name == active))
    return out


def register(source: str | Path, name: str | None = None, replace: bool = False) -> Path:
    """Copy a training output folder into the registry as `name` (default: its folder name), without checkpoints.
    Returns the registered folder."""
    source = Path(source).expanduser()
    if not (source / "adapter_config.json").exists():
        raise AdapterError(
            f"{source} is not an adapter folder (no adapter_config.json); give a `chatbot train --out` folder"
        )
    name = name or source.resolve().name
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}", name) or name in ("none", SHIPPED, "active"):
        raise AdapterError(
            f"adapter name {name!r} is not allowed: use letters, digits, '.', '_' or '-' (not none/shipped/active)"
        )
    target = registry_dir() / name
    if target.exists() and target.resolve() == source.resolve():
        return target
    if target.exists() and not replace:
        raise AdapterError(f"an adapter named {name!r} is already registered; choose another --name")
    tmp = registry_dir() / f".{name}.tmp{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(source, tmp, ignore=shutil.ignore_patterns("checkpoints", ".*"))
    shutil.rmtree(target, ignore_errors=True)
    os.replace(tmp, target)
    return target


def _resolve(name_or_path: str) -> tuple[str, Path | None]:
    if name_or_path == "none":
        return "none", None
    if name_or_path == SHIPPED:
        shipped = shipped_adapter()
        if shipped is None:
            raise AdapterError("no shipped adapter in this installation")
        return SHIPPED, shipped
    registered = registry_dir() / name_or_path
    if "/" not in name_or_path and (registered / "adapter_config.json").exists():
        return name_or_path, registered
    path = Path(name_or_path).expanduser()
    if (path / "adapter_config.json").exists():
        target = register(path)
        return target.name, target
    known = ", ".join(a.name for a in list_adapters()) or "none yet"
    raise AdapterError(
        f"unknown adapter {name_or_path!r}: give a registered name ({known}), `none`, or a trained "
        "adapter folder (it is registered on the way)"
    )


def activate(name_or_path: str, force: bool = False, *, engine: Any = None, config: Any = None,
             progress: bool = False) -> dict[str, Any]:  # fmt: skip
    """Make an adapter (`none` = the base model) the active one, through the gate; returns the new `active.json`
    record, whose `gate` lists what the gate said and `comparison` holds its table (`chatbot.gate.GateRow`s).

    Refused (`GateError`) when the candidate answers the `[eval]` files worse than the active adapter, unless
    `force`. `engine`: a warm engine serving the active adapter (the admin page's), switched to the candidate for
    the comparison and back; None loads one from `config` (default: the config file) when `[eval]` is set.
    """
    from chatbot.gate import check_adapter

    current = active_record()
    name, path = _resolve(name_or_path)
    candidate = info(path).val_perplexity if path else None
    reasons, rows = ["forced: the gate did not run"], []
    if not force:
        result = check_adapter(engine, str(path) if path else None, config, progress=progress)
        if not result.ok:
            raise GateError(
                f"adapter {name!r} answers worse than the active {current.get('name')!r}: {'; '.join(result.reasons)}"
                "; not activated (pass --force to activate it anyway)",
                result,
            )
        reasons = list(result.reasons) or ["answers no worse than the active adapter on the [eval] files"]
        rows = [dataclasses.asdict(row) for row in result.rows]
    record = {
        "name": name,
        "path": str(path.resolve()) if path else None,
        "val_perplexity": candidate,
        "activated_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "forced": bool(force),
        "previous": current.get("name"),
        "gate": reasons,
        "comparison": rows,
    }
    folder = registry_dir()
    write_atomic(folder / ACTIVE_FILE, json.dumps(record, indent=2) + "\n")
    return record


def convert_weights(folder: str | Path, dtype: str = "float16") -> int:
    """Store an adapter's weights in `dtype` (float16 halves a float32 adapter; peft casts them back to the
    model's LoRA dtype on load). Returns the new file size in bytes."""
    import torch
    from safetensors.torch import load_file, save_file

    path = Path(folder) / "adapter_model.safetensors"
    if not path.exists():
        raise AdapterError(f"{path} does not exist; give an adapter folder")
    tensors = {k: v.to(getattr(torch, dtype)).contiguous() for k, v in load_file(str(path)).items()}
    tmp = path.with_name(f".{path.name}.tmp")
    save_file(tensors, str(tmp), metadata={"format": "pt"})
    os.replace(tmp, path)
    return path.stat().st_size
