"""Property tests: whatever the bytes, check_event either accepts or raises Rejection."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import jsonschema
import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas.errors import REASON_CODES, Rejection
from schemas.examples import example_events
from schemas.partners import load_registry
from schemas.pipeline import CheckedEvent, _check_thoroughly, check_event
from schemas.pseudonym import Pseudonymiser
from schemas.schema_files import load_shipped

REGISTRY = load_registry()
PSEUDONYMISER = Pseudonymiser({"k": b"p" * 32}, "k")
EXAMPLES = example_events()
SCHEMAS = {f"org.skillsync.{stem}": schema for stem, schema in load_shipped().items()}
NOW = datetime(2024, 7, 1, tzinfo=UTC)
LATEST_ALLOWED = NOW + timedelta(minutes=10)  # check_event's default skew
SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30),
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
        parent = event
        for step in path[:-1]:
            parent = parent[step]
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
        return _check_thoroughly(raw, topic_partner, REGISTRY, PSEUDONYMISER, LATEST_ALLOWED)
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
