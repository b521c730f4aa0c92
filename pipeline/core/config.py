"""Build typed, frozen dataclass configs from plain mappings (parsed params.yaml).

Unknown keys, missing keys and values of the wrong type are errors that name the
full params key (``decode.num_frames``), so a typo never silently falls back to a
default. No ``**kwargs`` bags: every accepted key is a dataclass field.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import types
import typing
from collections.abc import Callable, Mapping
from typing import Any, Literal, Union, get_args, get_origin


class ConfigError(ValueError):
    """A params.yaml value that cannot be used; the message names the key."""


class FieldError(ValueError):
    """A ``__post_init__`` check of one field: ``build`` names its full params key (``ctr.lr``)."""

    def __init__(self, field: str, problem: str):
        super().__init__(f"{field} {problem}")
        self.field, self.problem = field, problem


@dataclasses.dataclass(frozen=True)
class Sections:
    """A config class's registry-keyed subsections (its ``__sections__``).

    Params keys of the section that are not fields of the class but name a registry member
    (``visual.resnet152``) are built with that member's config class and stored, by name, in the
    mapping field ``field``; ``plain`` writes them back at the section's top level, as in params.yaml.
    """

    field: str  # the dataclass field holding {name: config}
    kind: str  # what a member is, for messages ("visual extractor")
    names: Callable[[], list[str]]  # the valid member names (from a registry)
    config: Callable[[str], type]  # member name -> its config dataclass


def build(cls: type, data: Any, where: str = "") -> Any:
    """Return ``cls(**data)`` after checking keys and coercing each value to its field type."""
    if not isinstance(data, Mapping):
        raise ConfigError(f"params key '{where or '<root>'}' must be a mapping, got {type(data).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    sections: Sections | None = getattr(cls, "__sections__", None)
    members = set(sections.names()) if sections is not None else set()
    values: dict[str, Any] = {}
    if sections is not None:
        fields.pop(sections.field)  # filled from the member keys, never named in params.yaml
        values[sections.field] = {}
    for key in data:
        if key in fields:
            continue
        if key in members:
            values[sections.field][key] = build(sections.config(key), data[key], _join(where, key))
            continue
        valid = sorted(fields) + sorted(members)
        close = difflib.get_close_matches(str(key), valid, n=1)
        hint = f" (did you mean '{_join(where, close[0])}'?)" if close else ""
        also = f" or a registered {sections.kind}" if sections is not None else ""
        raise ConfigError(
            f"unknown params key '{_join(where, key)}'{hint}; "
            f"valid keys under '{where or '<root>'}'{also}: {', '.join(valid)}"
        )
    hints = typing.get_type_hints(cls)
    for name, field in fields.items():
        key = _join(where, name)
        if name in data:
            values[name] = _coerce(hints[name], data[name], key)
        elif field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING:
            raise ConfigError(f"missing params key '{key}'")
    try:
        return cls(**values)
    except FieldError as err:  # a __post_init__ check of one key
        raise ConfigError(f"params key '{_join(where, err.field)}' {err.problem}") from err
    except (ValueError, TypeError) as err:  # __post_init__ checks of several keys (cross-section ones at the root)
        raise ConfigError(f"params section '{where}': {err}" if where else f"params: {err}") from err


def _describe(tp: Any) -> str:
    """A field type in words, for messages: ``int | float | None`` reads "an integer, a number or null"."""
    origin = get_origin(tp)
    if tp is type(None):
        return "null"
    if origin is Literal:
        return f"one of {list(get_args(tp))}"
    if origin is tuple:
        return "a list"
    if dataclasses.is_dataclass(tp):
        return "a mapping"
    words = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}
    return words.get(tp, getattr(tp, "__name__", str(tp)))


def _join(where: str, key: object) -> str:
    return f"{where}.{key}" if where else str(key)


def _coerce(tp: Any, value: Any, key: str) -> Any:
    origin = get_origin(tp)
    if dataclasses.is_dataclass(tp):
        return build(tp, value, key)
    if origin is Literal:
        choices = get_args(tp)
        if value not in choices:
            raise ConfigError(f"params key '{key}' must be one of {list(choices)}, got {value!r}")
        return value
    if origin in (Union, types.UnionType):
        args = get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in (a for a in args if a is not type(None)):
            try:
                return _coerce(arg, value, key)
            except ConfigError as err:
                errors.append(str(err))
        if len(errors) == 1:
            raise ConfigError(errors[0])
        allowed = ", ".join(_describe(a) for a in args)
        raise ConfigError(
            f"params key '{key}' must be {allowed.rpartition(', ')[0]} or {allowed.rpartition(', ')[2]}, got {value!r}"
        )
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"params key '{key}' must be a list, got {value!r}")
        args = get_args(tp)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_coerce(args[0], v, f"{key}[{i}]") for i, v in enumerate(value))
        if len(args) != len(value):
            raise ConfigError(f"params key '{key}' must have {len(args)} items, got {len(value)}")
        return tuple(_coerce(a, v, f"{key}[{i}]") for i, (a, v) in enumerate(zip(args, value)))
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"params key '{key}' must be true or false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"params key '{key}' must be an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"params key '{key}' must be a number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"params key '{key}' must be a string, got {value!r}")
        return value
    raise TypeError(f"config field type {tp!r} at '{key}' is not supported")


def flat_keys(cls: Any, where: str = "") -> list[str]:
    """Every leaf params key a config class accepts, e.g. ``['decode.size', ...]``.

    Given a config instance instead of a class, registry-keyed sections (``visual.resnet152.*``) are
    listed too: which of them exist depends on the params file.
    """
    obj, cls = (None, cls) if isinstance(cls, type) else (cls, type(cls))
    keys: list[str] = []
    hints = typing.get_type_hints(cls)
    sections: Sections | None = getattr(cls, "__sections__", None)
    for field in dataclasses.fields(cls):
        if sections is not None and field.name == sections.field:
            for name, section in (getattr(obj, field.name) if obj is not None else {}).items():
                keys.extend(flat_keys(section, _join(where, name)))
            continue
        key = _join(where, field.name)
        tp = hints[field.name]
        if dataclasses.is_dataclass(tp):
            keys.extend(flat_keys(getattr(obj, field.name) if obj is not None else tp, key))
        else:
            keys.append(key)
    return keys


def check_members(names: tuple[str, ...], registry: Any, section: str, field: str, sections: Mapping[str, Any]) -> None:
    """``<section>.<field>`` lists registered names (``registry.check``), each once, each with its own
    ``<section>.<name>`` params section (a registry-keyed section, ``Sections``)."""
    for i, name in enumerate(names):
        registry.check(name, f"{section}.{field}[{i}]")
        if name not in sections:
            raise FieldError(field, f"names {name!r}, which has no {section}.{name} section")
    if len(set(names)) != len(names):
        raise FieldError(field, f"lists a name twice: {list(names)}")


def check_rate(rate: float) -> None:
    if not 0 <= rate <= 1:
        raise FieldError("max_failure_rate", f"must be a share in [0, 1], got {rate!r}")


# Range checks of single keys (FieldError: the message names the full key). Written as `not value >= x`
# so that a NaN (YAML .nan) fails them too.


def at_least(cfg: Any, minimum: int, *names: str, meaning: str = "") -> None:
    """Each of ``names`` >= ``minimum``; ``meaning`` says what the smallest value means (``0 = one per core``)."""
    for name in names:
        value = getattr(cfg, name)
        if not value >= minimum:
            raise FieldError(name, f"must be >= {minimum}{f' ({meaning})' if meaning else ''}, got {value!r}")


def positive(cfg: Any, *names: str) -> None:
    for name in names:
        value = getattr(cfg, name)
        if not (value > 0 and math.isfinite(value)):
            raise FieldError(name, f"must be a finite number > 0, got {value!r}")


def non_negative(cfg: Any, *names: str) -> None:
    for name in names:
        value = getattr(cfg, name)
        if not (value >= 0 and math.isfinite(value)):
            raise FieldError(name, f"must be a finite number >= 0, got {value!r}")


def fraction(cfg: Any, name: str) -> None:
    value = getattr(cfg, name)
    if not 0 <= value < 1:
        raise FieldError(name, f"must be in [0, 1), got {value!r}")
