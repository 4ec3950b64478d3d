"""Command-line flags generated from a pydantic spec, so a recipe key and its flag are declared once.

`add_flags(parser, Spec)` adds `--field-name` for each scalar field (type, choices and help from the
field; lists and nested models stay recipe-only); `from_flags(Spec, args)` builds the spec from the
flags given, so the defaults and constraints are the spec's, and a bad value is one line naming its flag.
"""

from __future__ import annotations

import argparse
import types
import typing

from pydantic import BaseModel, ValidationError


class FlagError(ValueError):
    """A flag value the spec refuses; the message is one line naming the flag."""


def flag_name(field: str) -> str:
    return "--" + field.replace("_", "-")


def _kind(annotation) -> tuple[type | None, tuple | None]:
    """(argparse type, choices) of a field annotation; (None, None) for what a flag cannot express."""
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if typing.get_origin(annotation) is typing.Literal:
        return type(typing.get_args(annotation)[0]), typing.get_args(annotation)
    if typing.get_origin(annotation) in (typing.Union, types.UnionType) and len(args) == 1:
        return _kind(args[0])
    return (annotation, None) if annotation in (int, float, str, bool) else (None, None)


def flag_fields(spec: type[BaseModel], exclude: typing.Iterable[str] = ()) -> list[str]:
    """The fields of `spec` that are flags: the scalar ones, less `exclude`."""
    return [n for n, f in spec.model_fields.items() if n not in exclude and _kind(f.annotation)[0] is not None]


def add_flags(parser: argparse.ArgumentParser, spec: type[BaseModel], exclude: typing.Iterable[str] = ()) -> None:
    for name in flag_fields(spec, exclude):
        field = spec.model_fields[name]
        typ, choices = _kind(field.annotation)
        default = field.get_default(call_default_factory=True)
        help_ = (field.description or name.replace("_", " ")) + ("" if default is None else f" (default {default})")
        if typ is bool:
            parser.add_argument(flag_name(name), action=argparse.BooleanOptionalAction, default=None, help=help_)
        else:
            parser.add_argument(flag_name(name), type=typ, choices=choices, default=None, help=help_)


def from_flags(spec: type[BaseModel], args: argparse.Namespace, exclude: typing.Iterable[str] = (), **values) -> BaseModel:
    """The spec from the flags that were given (the others keep the spec's defaults) and `values` (which win);
    `exclude` as given to `add_flags`."""
    given = {n: getattr(args, n) for n in flag_fields(spec, exclude) if getattr(args, n, None) is not None}
    try:
        return spec(**{**given, **values})
    except ValidationError as e:
        err = e.errors()[0]
        where = flag_name(str(err["loc"][0])) if err["loc"] else spec.__name__
        raise FlagError(f"{where}: {err['msg'].removeprefix('Value error, ')}") from None
