"""Reading params.yaml (and the sections a checkpoint recorded) into the typed dataclasses of params.py.

Every key and type is checked against the dataclass hints; a mistake is a ConfigError that
names the key. Missing keys of params.yaml take today's defaults; missing keys of a recorded
section (an old meta.json) take the value they had before the key existed, or are refused.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from pathlib import Path
from typing import Any, Literal

import yaml

from .params import BEFORE_KEY_EXISTED, ConfigError, Params


def load_params(path: str | Path = "params.yaml") -> Params:
    """Read params.yaml; missing sections and keys take their defaults."""
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"params file not found: {path}")
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark else ""
        raise ConfigError(f"{path}: not valid YAML{where}") from None
    params = parse(Params, raw, "")
    params.validate()
    return params


def parse_recorded(cls: type, raw: dict, key: str, source: str) -> Any:
    """Section `key` as a checkpoint recorded it: a key it lacks means what it meant before the key
    existed (params.BEFORE_KEY_EXISTED), never today's default; a key missing from that table too
    cannot be read honestly and is refused, naming `source`."""
    raw = dict(raw)
    for field in dataclasses.fields(cls):
        name = f"{key}.{field.name}"
        if field.name not in raw:
            if name not in BEFORE_KEY_EXISTED:
                raise ConfigError(f"{source}: records no {name}, and what a model trained before that key "
                                  f"existed used is unknown; retrain it with this version")
            raw[field.name] = BEFORE_KEY_EXISTED[name]
    return parse(cls, raw, key)


def parse(cls: type, raw: Any, key: str) -> Any:
    """Build dataclass `cls` from a mapping, checking every key and type against its hints."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{key or 'params'}: expected a mapping, got {type(raw).__name__}")
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    for name in raw:
        if name not in known:
            where = f"{key}.{name}" if key else str(name)
            raise ConfigError(f"{where}: unknown key (known: {', '.join(sorted(known))})")
    defaults = cls()
    values = {}
    for name in known:
        where = f"{key}.{name}" if key else name
        if name in raw:
            values[name] = _coerce(hints[name], raw[name], where, getattr(defaults, name))
    return dataclasses.replace(defaults, **values)


def _coerce(hint: Any, value: Any, key: str, default: Any) -> Any:
    origin = typing.get_origin(hint)
    if dataclasses.is_dataclass(hint):
        if isinstance(value, hint):  # a nested default (e.g. data.faces) the user left unset
            return value
        if value is None:  # an empty section in YAML: keep its defaults
            return default
        if not isinstance(value, dict):
            return parse(hint, value, key)
        merged = {**_as_dict(default), **value}
        for given, dependents in getattr(hint, "RESETS", {}).items():
            if given in value:
                merged.update({d: hint.__dataclass_fields__[d].default for d in dependents if d not in value})
        return parse(hint, merged, key)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(hint)
        if value is None and type(None) in options:
            return None
        (inner,) = [o for o in options if o is not type(None)]
        return _coerce(inner, value, key, default)
    if origin is Literal:
        choices = typing.get_args(hint)
        if value not in choices:
            raise ConfigError(f"{key}: must be one of {', '.join(map(str, choices))}, got {value!r}")
        return value
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a mapping, got {value!r}")
        key_hint, value_hint = typing.get_args(hint)
        return {_coerce(key_hint, k, key, None): _coerce(value_hint, v, f"{key}.{k}", None) for k, v in value.items()}
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key}: expected a list, got {value!r}")
        (inner, _) = typing.get_args(hint)
        return tuple(_coerce(inner, v, f"{key}[{i}]", None) for i, v in enumerate(value))
    if hint is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if hint is float and isinstance(value, str):
        try:  # PyYAML reads 1e-4 (no dot) as a string
            return float(value)
        except ValueError:
            pass
    if hint in (int, str, bool) and type(value) is hint:
        return value
    raise ConfigError(f"{key}: expected {hint.__name__}, got {value!r}")


def _as_dict(obj: Any) -> dict:
    return {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}


def as_plain_dict(obj: Any) -> Any:
    """A dataclass as JSON-ready nested dicts and lists (for fingerprints and meta.json)."""
    if dataclasses.is_dataclass(obj):
        return {f.name: as_plain_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, (list, tuple)):
        return [as_plain_dict(v) for v in obj]
    if isinstance(obj, dict):
        return {k: as_plain_dict(v) for k, v in obj.items()}
    return obj
