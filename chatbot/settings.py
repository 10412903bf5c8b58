"""Loading config dataclasses from TOML files and flag overrides.

One loader for every component: read the file, apply overrides, validate with pydantic's `TypeAdapter` (the
config classes stay plain dataclasses). Unknown keys are an error that names the key and the section, never a
silently ignored setting. This module imports nothing heavy (pydantic comes with FastAPI).
"""

from __future__ import annotations

import dataclasses
import json
import os
import tomllib
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TypeVar

from pydantic import ConfigDict, TypeAdapter, ValidationError

T = TypeVar("T")


class ConfigError(ValueError):
    """A config file or flag that cannot be used; the message says which key and how to fix it."""


def chatbot_home() -> Path:
    """The data folder: `$CHATBOT_HOME`, default `./var`. Created on first use."""
    home = Path(os.environ.get("CHATBOT_HOME", "var")).expanduser()
    home.mkdir(parents=True, exist_ok=True)
    return home


_PYDANTIC = ConfigDict(extra="forbid", use_attribute_docstrings=True)


def _adapter(cls: type[T]) -> TypeAdapter[T]:
    """pydantic's validator of config dataclass `cls` (nested dataclasses too): unknown keys forbidden, the field
    docstrings kept as descriptions (`config_schema`)."""
    for klass in _dataclasses(cls):
        if "__pydantic_config__" not in vars(klass):
            klass.__pydantic_config__ = _PYDANTIC  # type: ignore[attr-defined]
    return TypeAdapter(cls)


def _dataclasses(cls: Any) -> Iterator[type]:
    if dataclasses.is_dataclass(cls):
        yield cls
    for hint in typing.get_type_hints(cls).values() if dataclasses.is_dataclass(cls) else typing.get_args(cls):
        if dataclasses.is_dataclass(hint) or typing.get_args(hint):
            yield from _dataclasses(hint)


def _section(cls: Any, loc: tuple[Any, ...]) -> Any:
    """The dataclass that the error location `loc` (without its last key) points into."""
    for key in loc:
        hints = typing.get_type_hints(cls) if dataclasses.is_dataclass(cls) else {}
        nested = [h for h in (hints.get(key), *typing.get_args(hints.get(key))) if dataclasses.is_dataclass(h)]
        if not nested:
            break
        cls = nested[0]
    return cls


def _problem(cls: type, error: Any, where: str) -> str:
    loc = tuple(str(part) for part in error["loc"])
    dotted = ".".join(filter(None, (where, *loc)))
    if error["type"] == "unexpected_keyword_argument":
        section = ".".join(filter(None, (where, *loc[:-1])))
        known = sorted(f.name for f in dataclasses.fields(_section(cls, loc[:-1])) if f.init)
        prefix = f"[{section}] " if section else ""
        return f"{prefix}unknown key(s) {loc[-1]}; known keys: {', '.join(known)}"
    if error["type"] == "value_error":  # a __post_init__ check: its message names the key
        return str(error["ctx"]["error"])
    return f"{dotted}: {error['msg'].lower()}, got {error['input']!r}"


def from_dict(cls: type[T], data: dict[str, Any], where: str = "") -> T:
    """Build dataclass `cls` from a TOML-like mapping with pydantic, strictly as JSON types go (a string is a path,
    a list a tuple; `"2"` is not an int, `true` not a number); a bad or unknown key raises `ConfigError` naming it."""
    try:
        return _adapter(cls).validate_json(json.dumps(data), strict=True)
    except ValidationError as exc:
        raise ConfigError("; ".join(_problem(cls, e, where) for e in exc.errors())) from None


def config_schema(cls: type) -> dict[str, Any]:
    """The JSON schema of config dataclass `cls`: each field's type, default and docstring (`description`), from
    which `chatbot train` builds its flags."""
    return _adapter(cls).json_schema()


def load_toml(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"config file {path} does not exist")
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from exc


def apply_overrides(data: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """Apply dotted overrides (`{"kb.answer_threshold": 0.6}`) on top of a nested mapping."""
    merged = {k: dict(v) if isinstance(v, dict) else v for k, v in data.items()}
    for dotted, value in overrides.items():
        node = merged
        *parents, leaf = dotted.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return merged


def load_config(cls: type[T], path: str | Path | None = None, overrides: dict[str, Any] | None = None) -> T:
    """File first, then flags: the one way every component's config is built."""
    data = load_toml(path) if path else {}
    return from_dict(cls, apply_overrides(data, overrides or {}))
