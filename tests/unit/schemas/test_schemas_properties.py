"""Property tests: whatever the bytes, check_event either accepts or raises Rejection."""

from __future__ import annotations

import contextlib
import functools
import operator
from datetime import UTC, datetime, timedelta
from typing import Any

import jsonschema
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas.errors import REASON_CODES, Rejection
from schemas.examples import example_events
from schemas.partners import load_registry
from schemas.pipeline import CheckedEvent, check_event, check_thoroughly
from schemas.pseudonym import Pseudonymiser
from schemas.schema_files import load_shipped

REGISTRY = load_registry()
PSEUDONYMISER = Pseudonymiser({"k": b"p" * 32}, "k")
EXAMPLES = example_events()
SCHEMAS = {f"org.skillsync.{stem}": schema for stem, schema in load_shipped().items()}
NOW = datetime(2024, 7, 1, tzinfo=UTC)
LATEST_ALLOWED = NOW + timedelta(minutes=10)  # check_event's default skew
SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# RFC 3339 timestamps over the whole range Python can hold, with any offset a timestamp may
# carry: at the ends of the range, moving one into another zone leaves it, so they are drawn often.
timestamps = st.builds(
    lambda moment, minutes: moment.isoformat() + f"{'+' if minutes >= 0 else '-'}"
    f"{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}",
    st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(1, 1, 2))
    | st.datetimes(min_value=datetime(9999, 12, 30), max_value=datetime(9999, 12, 31, 23, 59))
    | st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31, 23, 59, 59)),
    st.integers(min_value=-(23 * 60 + 59), max_value=23 * 60 + 59),
)

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30)
    | timestamps,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)


def outcome(raw: bytes, topic_partner: str) -> CheckedEvent | Rejection:
    try:
        return check_event(
            raw,
            topic_partner=topic_partner,
            registry=REGISTRY,
            pseudonymiser=PSEUDONYMISER,
            now=NOW,
        )
    except Rejection as refused:
        assert refused.code in REASON_CODES
        assert refused.path.startswith("$")
        assert refused.stage in {"decode", "validate", "authorise"}
        return refused


@SETTINGS
@given(st.binary(max_size=2048), st.sampled_from(["zjgj", "eval01", "nobody"]))
def test_arbitrary_bytes_only_ever_raise_rejection(raw: bytes, topic_partner: str) -> None:
    assert isinstance(outcome(raw, topic_partner), Rejection)


def at(value: Any, path: tuple[Any, ...]) -> Any:
    """What a path of keys and indexes leads to inside a JSON value."""
    return functools.reduce(operator.getitem, path, value)


def nodes(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [path]
    if isinstance(value, dict):
        for key, item in value.items():
            found += nodes(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += nodes(item, (*path, index))
    return found


@st.composite
def mutated_events(draw: st.DrawFn) -> tuple[str, dict[str, Any]]:
    type_name = draw(st.sampled_from(sorted(EXAMPLES)))
    event = example_events()[type_name]
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        path = draw(st.sampled_from(nodes(event)[1:]))
        parent = at(event, path[:-1])
        action = draw(st.sampled_from(["replace", "delete", "add"]))
        if action == "replace":
            parent[path[-1]] = draw(json_values)
        elif action == "delete":
            del parent[path[-1]]
        elif isinstance(parent, dict):
            parent[draw(st.text(max_size=10))] = draw(json_values)
        if not isinstance(event.get("data", {}), dict):
            break
    return type_name, event


@SETTINGS
@given(mutated_events(), st.sampled_from(["zjgj", "eval01"]))
def test_mutated_events_are_accepted_only_when_their_schema_agrees(
    mutated: tuple[str, dict[str, Any]], topic_partner: str
) -> None:
    _, event = mutated
    result = outcome(orjson.dumps(event), topic_partner)
    if isinstance(result, CheckedEvent):
        jsonschema.Draft202012Validator(SCHEMAS[result.type]).validate(event)
        learner = event["data"].get("learner")
        if learner:
            assert learner["id_number"] not in orjson.dumps(result.data).decode()


@SETTINGS
@given(st.sampled_from(sorted(EXAMPLES)), st.integers(min_value=0), st.binary(max_size=4))
def test_corrupted_bytes_of_valid_events_only_raise_rejection(
    type_name: str, position: int, junk: bytes
) -> None:
    raw = orjson.dumps(EXAMPLES[type_name])
    cut = position % (len(raw) + 1)
    corrupted = raw[:cut] + junk + raw[cut + len(junk) :]
    partner = str(EXAMPLES[type_name]["source"]).rsplit("/", 1)[-1]
    outcome(corrupted, partner)


def thorough_outcome(raw: bytes, topic_partner: str) -> CheckedEvent | Rejection:
    try:
        return check_thoroughly(raw, topic_partner, REGISTRY, PSEUDONYMISER, LATEST_ALLOWED)
    except Rejection as refused:
        return refused


def same_outcome(raw: bytes, topic_partner: str) -> None:
    quick, thorough = outcome(raw, topic_partner), thorough_outcome(raw, topic_partner)
    if isinstance(thorough, Rejection):
        assert isinstance(quick, Rejection), quick
        assert quick.as_dict() == thorough.as_dict()
    else:
        assert quick == thorough
        assert list(quick.data) == list(thorough.data)  # key order as sent, too


@SETTINGS
@given(mutated_events(), st.sampled_from(["zjgj", "eval01"]))
def test_mutated_events_get_the_verdict_of_the_step_by_step_check(
    mutated: tuple[str, dict[str, Any]], topic_partner: str
) -> None:
    same_outcome(orjson.dumps(mutated[1]), topic_partner)


@SETTINGS
@given(st.sampled_from(sorted(EXAMPLES)), st.integers(min_value=0), st.binary(max_size=4))
def test_corrupted_events_get_the_verdict_of_the_step_by_step_check(
    type_name: str, position: int, junk: bytes
) -> None:
    raw = orjson.dumps(EXAMPLES[type_name])
    cut = position % (len(raw) + 1)
    partner = str(EXAMPLES[type_name]["source"]).rsplit("/", 1)[-1]
    same_outcome(raw[:cut] + junk + raw[cut + len(junk) :], partner)


def timestamp_paths(event: dict[str, Any]) -> list[tuple[Any, ...]]:
    """Where an event carries a timestamp (a string with a date, a time and an offset)."""
    found = []
    for path in nodes(event)[1:]:
        value = at(event, path)
        if isinstance(value, str) and "T" in value:
            with contextlib.suppress(ValueError):
                found += [path] if datetime.fromisoformat(value).tzinfo is not None else []
    return found


def with_timestamp(type_name: str, path: tuple[Any, ...], stamp: str) -> tuple[bytes, str]:
    """The example event with one timestamp replaced; (its bytes, its partner)."""
    event = example_events()[type_name]
    at(event, path[:-1])[path[-1]] = stamp
    return orjson.dumps(event), str(event["source"]).rsplit("/", 1)[-1]


@SETTINGS
@given(st.sampled_from(sorted(EXAMPLES)), st.data())
def test_any_timestamp_in_a_timestamp_field_gets_the_verdict_of_the_step_by_step_check(
    type_name: str, data: st.DataObject
) -> None:
    path = data.draw(st.sampled_from(timestamp_paths(EXAMPLES[type_name])))
    same_outcome(*with_timestamp(type_name, path, data.draw(timestamps)))


@pytest.mark.parametrize("stamp", ["0001-01-01T00:00:00+23:59", "9999-12-31T23:59:59-23:59"])
@pytest.mark.parametrize("type_name", sorted(EXAMPLES))
def test_timestamps_at_the_ends_of_the_range_in_every_field_only_ever_raise_rejection(
    type_name: str, stamp: str
) -> None:
    # Moved into China Standard Time (a certificate's issue year), each leaves the range.
    for path in timestamp_paths(EXAMPLES[type_name]):
        same_outcome(*with_timestamp(type_name, path, stamp))
