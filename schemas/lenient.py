"""Pattern-free twins of the event models, and cheaper checks that stand in for the patterns."""

from __future__ import annotations

import re
import types
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache, lru_cache
from operator import attrgetter
from typing import Annotated, Any, Union, get_args, get_origin

import msgspec

from schemas import events as ev
from schemas.identity import DIVISION_CODE_PATTERN, OCCUPATION_CODE_PATTERN

# A value of these passes the data rules only if the reference data lists it, and reference.py
# refuses to load codes that break these patterns: the rules vouch for them.
VOUCHED_BY_REFERENCE = frozenset({OCCUPATION_CODE_PATTERN, DIVISION_CODE_PATTERN})
# The quick path accepts only the very source the registry says the topic's partner sends, and
# tests that source against this pattern once per partner: authorisation vouches for it.
VOUCHED_BY_AUTHORISATION = frozenset({ev.SOURCE_PATTERN})

_CONSTRAINTS_KEPT = ("gt", "ge", "lt", "le", "multiple_of", "min_length", "max_length", "tz")
_VERDICTS_REMEMBERED = 4096  # per pattern, for values that recur (credit codes)


@dataclass(frozen=True, slots=True)
class LenientType:
    """An event type's pattern-free envelope, and the test its dropped patterns need instead.

    `patterns_hold` passes exactly the values the patterns pass, except those of
    VOUCHED_BY_REFERENCE and VOUCHED_BY_AUTHORISATION patterns, which it leaves to the data
    rules and to authorisation.
    """

    event_type: ev.EventType
    envelope: type[msgspec.Struct]
    patterns_hold: Callable[[msgspec.Struct], bool]


@cache
def lenient_types() -> dict[str, LenientType]:
    """Every event type's twin, by type name."""
    return {
        name: LenientType(
            event_type,
            _twin(event_type.envelope),
            _pattern_gate(pattern_fields(event_type.envelope)),
        )
        for name, event_type in ev.EVENT_TYPES.items()
    }


def pattern_fields(model: type[msgspec.Struct], prefix: str = "") -> list[tuple[str, str]]:
    """(attribute path, pattern) of every string field outside containers that has a pattern."""
    found = []
    for field in msgspec.structs.fields(model):
        path = prefix + field.name
        for kind in _alternatives(field.type):
            if isinstance(kind, type) and issubclass(kind, msgspec.Struct):
                found += pattern_fields(kind, path + ".")
            elif (pattern := _pattern_of(kind)) is not None:
                found.append((path, pattern))
    return found


@cache
def _twin(model: type[msgspec.Struct]) -> type[msgspec.Struct]:
    """The model with the patterns of its string fields dropped; patterns in containers stay."""
    fields: list[tuple[str, Any] | tuple[str, Any, Any]] = []
    for field in msgspec.structs.fields(model):
        kind = _without_pattern(field.type)
        fields.append((field.name, kind) if field.required else (field.name, kind, field.default))
    config = model.__struct_config__
    return msgspec.defstruct(
        model.__name__,
        fields,
        module=__name__,
        gc=False,  # strings, numbers, datetimes and other twins: nothing to collect
        forbid_unknown_fields=config.forbid_unknown_fields,
        tag_field=config.tag_field,
        tag=config.tag,
    )


def _without_pattern(kind: Any) -> Any:
    if isinstance(kind, type) and issubclass(kind, msgspec.Struct):
        return _twin(kind)
    if get_origin(kind) in (Union, types.UnionType):
        return Union[tuple(_without_pattern(arg) for arg in get_args(kind))]  # noqa: UP007
    if _pattern_of(kind) is None:
        return kind
    base, *metas = get_args(kind)
    kept = [
        msgspec.Meta(**constraints)
        for meta in metas
        if (constraints := {c: v for c in _CONSTRAINTS_KEPT if (v := getattr(meta, c)) is not None})
    ]
    return Annotated[(base, *kept)] if kept else base


def _alternatives(kind: Any) -> tuple[Any, ...]:
    return get_args(kind) if get_origin(kind) in (Union, types.UnionType) else (kind,)


def _pattern_of(kind: Any) -> str | None:
    if get_origin(kind) is not Annotated or get_args(kind)[0] is not str:
        return None
    patterns = (getattr(meta, "pattern", None) for meta in get_args(kind)[1:])
    return next((pattern for pattern in patterns if pattern), None)


def _pattern_gate(fields: list[tuple[str, str]]) -> Callable[[msgspec.Struct], bool]:
    """Whether an event's strings match the patterns its twin dropped, as msgspec would say."""
    vouched = VOUCHED_BY_REFERENCE | VOUCHED_BY_AUTHORISATION
    tested = [(path, pattern) for path, pattern in fields if pattern not in vouched]
    words = [path for path, pattern in tested if pattern == ev.IDENTIFIER_PATTERN]
    holds = _identifiers_hold(_reader(words), len(words))
    for path, pattern in tested:
        if pattern != ev.IDENTIFIER_PATTERN:
            holds = _also(holds, attrgetter(path), _verdict(pattern))
    return holds


def _identifiers_hold(
    read_words: Callable[[Any], tuple[Any, ...]], count: int
) -> Callable[[msgspec.Struct], bool]:
    # "%s" spells an absent optional identifier (None) as "None", which passes the identifier
    # test as any identifier would: joining with it changes no verdict.
    join_words = "%s" * count

    def identifiers_hold(envelope: msgspec.Struct) -> bool:
        words = read_words(envelope)
        # Identifiers are one character class: testing them joined tests each (the empty one,
        # which joining would hide, is looked for apart).
        joined = join_words % words
        return (
            "" not in words and joined.isascii() and joined.isprintable() and " " not in joined
        )

    return identifiers_hold


def _also(
    holds: Callable[[msgspec.Struct], bool],
    read: Callable[[Any], Any],
    verdict: Callable[[str | None], bool],
) -> Callable[[msgspec.Struct], bool]:
    # A chain of Python functions calling each other costs less than map() calling them.
    def also_holds(envelope: msgspec.Struct) -> bool:
        return holds(envelope) and verdict(read(envelope))

    return also_holds


def _reader(paths: list[str]) -> Callable[[Any], tuple[Any, ...]]:
    if not paths:
        return lambda _: ()
    read = attrgetter(*paths)
    if len(paths) == 1:
        return lambda envelope: (read(envelope),)
    return read


@cache
def _verdict(pattern: str) -> Callable[[str | None], bool]:
    """Whether a field's value matches the pattern; None, an absent optional field, does."""
    search = re.compile(pattern).search
    if pattern == ev.PHONE_PATTERN:

        def phone_matches(value: str | None) -> bool:
            # Plain digit strings are nearly every phone number; the regex takes the rest.
            if value is None or (5 <= len(value) <= 20 and value.isdigit() and value.isascii()):
                return True
            return search(value) is not None

        return phone_matches
    if pattern == ev.CERTIFICATE_NUMBER_PATTERN:
        return lambda value: value is None or search(value) is not None
    return lru_cache(maxsize=_VERDICTS_REMEMBERED)(
        lambda value: value is None or search(value) is not None
    )
