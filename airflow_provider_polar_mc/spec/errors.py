"""From pydantic's ``ValidationError`` to one list of :class:`SpecProblem`, each with its field path.

Pydantic finds every problem of a document in one pass; this module only words them the way the spec
always has: ``objects[3].filter: must be a single expression without ';'``, ``retyr: unknown option;
did you mean 'retry'?``, ``json_type: must be one of string, json; got 'xml'``. The wording of a
field comes from its declaration: the constraints pydantic checks (bounds, patterns, lengths, the
choices of a ``Literal``) and, where a sentence says it better, a :class:`Says` in the field's
``Annotated`` metadata. Checks that need code raise :func:`fail`, which reports one or more problems
below the field being validated (``columns.id``, ``tables[2]``).

Nothing here knows the spec's models: :func:`problems_from` walks the model class it is given to find
the declaration behind each error's location. This module imports nothing from Airflow.
"""

from __future__ import annotations

import difflib
import reprlib
import types
import typing
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal, Union

import annotated_types
from pydantic import BaseModel, ValidationError
from pydantic_core import PydanticCustomError

from airflow_provider_polar_mc.exceptions import SpecProblem

Location = tuple[str | int, ...]


@dataclass(frozen=True)
class Says:
    """How the problems of one field are worded (``Annotated`` metadata; pydantic ignores it).

    ``pattern`` follows the value when it does not match the field's pattern (``'Shop' must be 1-64
    characters of a-z ...``); ``too_long`` replaces the length message (``{length}`` is the value's
    length); ``missing`` is appended to "is required"; ``expected`` is what a value of the wrong type
    should have been.
    """

    pattern: str | None = None
    too_long: str | None = None
    missing: str = ""
    expected: str = "a non-empty string"


def fail(*problems: tuple[Location, str] | str) -> ValidationError:
    """An error to raise from a validator: each problem is a message for the value being validated,
    or ``(location, message)`` for a part of it (``(("id",), "...")`` for key ``id`` of a mapping).

    Pydantic prefixes the locations with the field's own, so several problems below one field are
    reported together, each at its own path.
    """
    details = []
    for problem in problems:
        location, message = problem if isinstance(problem, tuple) else ((), problem)
        details.append({"type": PydanticCustomError("spec", "{message}", {"message": message}),
                        "loc": location, "input": None})
    return ValidationError.from_exception_data("spec", details)


def problems_from(error: ValidationError, root: type[BaseModel]) -> list[SpecProblem]:
    """Every error of ``error`` as a :class:`SpecProblem`, in pydantic's order (field declaration order,
    unknown keys of a mapping after its fields)."""
    return [_problem(detail, root) for detail in error.errors(include_url=False)]


# --- one error ------------------------------------------------------------------------------------

_NUMBER_ERRORS = frozenset({"int_type", "int_parsing", "int_from_float", "float_type", "float_parsing",
                            "greater_than_equal", "less_than_equal", "greater_than", "less_than", "finite_number"})
_OUT_OF_RANGE = frozenset({"greater_than_equal", "less_than_equal", "greater_than", "less_than", "finite_number"})


def _problem(detail: Mapping[str, Any], root: type[BaseModel]) -> SpecProblem:
    loc: Location = tuple(detail["loc"])
    kind: str = detail["type"]
    value = detail.get("input")
    if kind == "spec":
        return SpecProblem(path_text(loc), detail["msg"])
    if kind == "invalid_key":  # the location is the key itself
        return SpecProblem(path_text(loc[:-1]), f"keys must be strings, got {describe(value)}")
    if kind == "extra_forbidden":
        return SpecProblem(path_text(loc), _unknown_option(str(loc[-1]), _declaration(root, loc[:-1])))
    declared = _declaration(root, loc)
    says = next((item for item in declared.metadata if isinstance(item, Says)), Says())
    return SpecProblem(path_text(loc), _message(kind, value, detail.get("ctx") or {}, declared, says, loc))


def _message(kind: str, value: Any, ctx: Mapping[str, Any], declared: _Declared, says: Says, loc: Location) -> str:
    if kind == "missing":
        return f"is required{says.missing}"
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        if not loc:
            return f"the spec must be a mapping of options, got {describe(value)}"
        keys = _keys(declared.annotation)
        return f"must be a mapping{f' ({keys})' if keys else ''}, got {describe(value)}"
    if kind in ("tuple_type", "list_type", "iterable_type"):
        return f"must be a list, got {describe(value)}"
    if kind == "too_short":
        return "must list at least one entry"
    if kind == "literal_error":
        choices = _choices(declared.annotation)
        hint = difflib.get_close_matches(str(value), choices, n=1, cutoff=0.5)
        return f"must be one of {', '.join(choices)}; got {value!r}" + (f" (did you mean {hint[0]!r}?)" if hint else "")
    if kind in ("bool_type", "bool_parsing"):
        return f"must be true or false, got {describe(value)}"
    if kind == "string_type":
        return f"must be {says.expected}, got {describe(value)}"
    if kind == "string_pattern_mismatch":
        return f"{short(value)} {says.pattern}" if says.pattern else f"must be {says.expected}, got {describe(value)}"
    if kind == "string_too_long":
        limit = ctx.get("max_length")
        return (says.too_long or "is {length} characters long; at most {limit}").format(length=len(value), limit=limit)
    if kind == "string_too_short":
        return f"must be {says.expected}, got {describe(value)}"
    if kind in _NUMBER_ERRORS:
        return _number_message(kind, value, declared)
    message = str(ctx.get("error") or "") if kind == "value_error" else ""
    return message or f"{kind.replace('_', ' ')}, got {describe(value)}"


def _number_message(kind: str, value: Any, declared: _Declared) -> str:
    minimum = next((item.ge for item in declared.metadata if isinstance(item, annotated_types.Ge)), None)
    maximum = next((item.le for item in declared.metadata if isinstance(item, annotated_types.Le)), None)
    integer = declared.annotation is int
    if minimum is None or maximum is None:
        expected = "must be an integer" if integer else "must be a number"
    elif integer:
        expected = f"must be {'a positive integer' if minimum >= 1 else 'an integer'} from " \
                   f"{number_text(minimum)} to {number_text(maximum)}"
    else:
        expected = f"must be a positive number from {number_text(minimum)} to {number_text(maximum)}"
    in_range = kind in _OUT_OF_RANGE and isinstance(value, (int, float)) and not isinstance(value, bool)
    return f"{expected}, got {number_text(value) if in_range else describe(value)}"


def _unknown_option(key: str, parent: _Declared) -> str:
    allowed = _field_keys(parent.annotation)
    suggestion = difflib.get_close_matches(key, allowed, n=1, cutoff=0.6)
    return "unknown option" + (f"; did you mean {suggestion[0]!r}?" if suggestion else f"; allowed: {', '.join(allowed)}")


# --- finding the declaration behind a location ---------------------------------------------------


@dataclass(frozen=True)
class _Declared:
    annotation: Any  # the type at the location, Annotated and Optional removed
    metadata: tuple[Any, ...] = ()  # the constraints and Says declared for it


def _declaration(root: type[BaseModel], loc: Location) -> _Declared:
    """What is declared at ``loc``: follows model fields (by alias), tuple/list items, mapping values."""
    current = _unwrap(root, ())
    for part in loc:
        annotation = current.annotation
        if isinstance(part, str) and _is_model(annotation):
            field = next((f for name, f in annotation.model_fields.items() if (f.alias or name) == part), None)
            if field is None:
                return _Declared(None)
            current = _unwrap(field.annotation, tuple(field.metadata))
        elif isinstance(part, int) and typing.get_origin(annotation) in (tuple, list):
            current = _unwrap(typing.get_args(annotation)[0], ())
        elif isinstance(part, str) and typing.get_origin(annotation) in (dict, Mapping):
            current = _unwrap(typing.get_args(annotation)[1], ())
        else:
            return _Declared(None)
    return current


def _unwrap(annotation: Any, metadata: tuple[Any, ...]) -> _Declared:
    while True:
        origin = typing.get_origin(annotation)
        if origin is Annotated:
            annotation, metadata = annotation.__origin__, (*metadata, *annotation.__metadata__)
        elif origin in (Union, types.UnionType):
            members = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
            if len(members) != 1:
                return _Declared(annotation, metadata)
            annotation = members[0]
        else:
            return _Declared(annotation, metadata)


def _is_model(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def _field_keys(annotation: Any) -> list[str]:
    return [field.alias or name for name, field in annotation.model_fields.items()] if _is_model(annotation) else []


def _keys(annotation: Any) -> str:
    return ", ".join(_field_keys(annotation))


def _choices(annotation: Any) -> list[str]:
    return [str(choice) for choice in typing.get_args(annotation)] if typing.get_origin(annotation) is Literal else []


# --- wording helpers (the precheck and the selection reuse some) ---------------------------------


def path_text(loc: Iterable[str | int]) -> str:
    """``("objects", 3, "filter")`` -> ``objects[3].filter``."""
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def number_text(value: float) -> str:
    """1440, 10,000, 0.1, 1e-300: thousands separated from 10,000 on; huge integers summarised."""
    if isinstance(value, float):
        return f"{value:,.0f}" if value.is_integer() and abs(value) < 1e15 else repr(value)
    if value.bit_length() > 50:
        return f"a {int(value.bit_length() * 0.30103) + 1}-digit number"
    return f"{value:,}" if abs(value) >= 10_000 else str(value)


# Bounded: a value may be a huge (or deeply nested, or alias-shared) structure.
_REPR = reprlib.Repr()
_REPR.maxstring = _REPR.maxother = 40


def describe(value: Any) -> str:
    """``int 42``, ``str 'shop'``, ``nothing``: the type and a bounded look at a value."""
    if value is None:
        return "nothing"
    text = _REPR.repr(value)
    return f"{type(value).__name__} {text if len(text) <= 40 else text[:37] + '...'}"


def short(text: Any) -> str:
    text = str(text)
    return repr(text) if len(text) <= 40 else repr(text[:37] + "...")


__all__ = ["Says", "describe", "fail", "number_text", "path_text", "problems_from", "short"]
