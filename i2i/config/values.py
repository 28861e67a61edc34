"""Typed values: convert a YAML value to a field's declared type and check its declared range,
or raise a :class:`ConfigError` that names the key."""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Annotated, Any, Literal

from ..hints import did_you_mean, number, show
from ..options import check_finite, range_of
from .sections import ConfigError


def _type_name(tp: Any) -> str:
    if typing.get_origin(tp) is Annotated:
        return _type_name(typing.get_args(tp)[0])
    if typing.get_origin(tp) is Literal:
        return " | ".join(repr(a) for a in typing.get_args(tp))
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(tp))
    return "null" if tp is type(None) else getattr(tp, "__name__", str(tp))


def convert_value(value: Any, tp: Any, path: str) -> Any:
    """Check ``value`` against type ``tp`` and return it converted (e.g. int -> float); the
    range ``tp`` declares (``Annotated[..., Range]``) is checked too. A :class:`ConfigError`
    names ``path`` otherwise."""
    value = _convert(value, tp, path)
    check_range(path, value, tp)
    return value


def _convert(value: Any, tp: Any, path: str) -> Any:
    origin = typing.get_origin(tp)
    if origin is Annotated:
        return _convert(value, typing.get_args(tp)[0], path)
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise ConfigError(f"config key {path!r} must be a mapping of {tp.__name__} fields, got {show(value)}")
        return build_dataclass(tp, value, path)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        for a in args:
            if a is type(None):
                continue
            try:
                return _convert(value, a, path)
            except ConfigError:
                pass
        raise ConfigError(f"config key {path!r} must be {_type_name(tp)}, got {show(value)}")
    if origin is tuple:
        args = typing.get_args(tp)
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"config key {path!r} must be a list, got {show(value)}")
        types_ = [args[0]] * len(value) if len(args) == 2 and args[1] is Ellipsis else list(args)
        if len(types_) != len(value):
            raise ConfigError(f"config key {path!r} must be a list of {len(types_)} values, got {show(value)}")
        return tuple(convert_value(v, t, f"{path}[{i}]") for i, (v, t) in enumerate(zip(value, types_)))
    if origin is Literal:
        choices = typing.get_args(tp)
        if value not in choices:
            hint = did_you_mean(str(value), [str(c) for c in choices])
            raise ConfigError(f"config key {path!r} is {show(value)}{hint}; choose one of "
                              f"{', '.join(map(str, choices))}")
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"config key {path!r} must be true or false, got {show(value)}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"config key {path!r} must be an integer, got {show(value)}")
        return value
    if tp is float:
        if isinstance(value, str):  # YAML 1.1 reads 1e-4 (no dot) as a string
            try:
                return float(value)
            except ValueError:
                pass
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"config key {path!r} must be a number, got {show(value)}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"config key {path!r} must be a string, got {show(value)}")
        if "\x00" in value:
            raise ConfigError(f"config key {path!r} holds a NUL character ({show(value)}); no name or path can "
                              "contain one")
        return value
    if tp is Any:
        return value
    raise TypeError(f"unsupported config type {tp!r} at {path}")  # programming error


def check_range(path: str, value: Any, annotation: Any = None) -> None:
    """Raise :class:`ConfigError` naming ``path`` when a number is NaN, infinite or outside
    the :class:`~i2i.options.Range` its ``annotation`` declares."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return
    if not check_finite(value):
        raise ConfigError(f"config key {path!r} must be a finite number, got {value}")
    allowed = range_of(annotation)
    if allowed is not None and value not in allowed:
        raise ConfigError(f"config key {path!r} is {number(value)}; allowed: {allowed.describe()}")


def field_types(cls: type) -> dict[str, Any]:
    """A dataclass's (or a callable's) annotations, resolved, with their ``Annotated`` ranges."""
    return typing.get_type_hints(cls, include_extras=True)


def build_dataclass(cls: type, data: dict[str, Any], prefix: str = "", *, owner: str | None = None,
                    elsewhere: dict[str, str] | None = None) -> Any:
    """``cls(**data)`` with every value type- and range-checked. An unknown key is an error
    naming its path; ``owner`` (e.g. "pipeline 'pix2pix'") and ``elsewhere`` (key -> where it
    does apply) make the message say why the key does not apply here."""
    hints = field_types(cls)
    names = [f.name for f in dataclasses.fields(cls) if f.init]
    kwargs = {}
    for key, value in data.items():
        path = f"{prefix}.{key}" if prefix else str(key)
        if key not in names:
            where = f"section {prefix!r}" if prefix else "the top level"
            if elsewhere and key in elsewhere:
                why = f" to {owner} (it is an option of {elsewhere[key]})"
            else:
                why = (f" to {owner}" if owner else "") + did_you_mean(str(key), names)
            verb = "does not apply" if owner else "is unknown"
            raise ConfigError(f"config key {path!r} {verb}{why}; keys allowed in {where}: {', '.join(names)}")
        kwargs[key] = convert_value(value, hints[key], path)
    return cls(**kwargs)
