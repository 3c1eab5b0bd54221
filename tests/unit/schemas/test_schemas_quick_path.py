"""check_event's quick path accepts what the step-by-step check accepts, and nothing else."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest

from schemas.errors import Rejection
from schemas.events import EVENT_TYPES, TYPE_PREFIX
from schemas.examples import example_events
from schemas.lenient import pattern_fields
from schemas.partners import Partner, PartnerRegistry, load_registry
from schemas.pipeline import CheckedEvent, check_event, check_quickly, check_thoroughly
from schemas.pseudonym import Pseudonymiser

REGISTRY = load_registry()
PSEUDONYMISER = Pseudonymiser({"2024a": b"q" * 32}, "2024a")
NOW = datetime(2024, 7, 1, tzinfo=UTC)
LATEST_ALLOWED = NOW + timedelta(minutes=10)
ENROLLMENT = TYPE_PREFIX + "enrollment.created.v1"


def partner_of(event: dict[str, Any]) -> str:
    return str(event["source"]).rsplit("/", 1)[-1]


def verdicts(event: dict[str, Any] | bytes, partner: str) -> tuple[Any, Any]:
    """What check_event says and what the step-by-step check says, refusals as dicts."""
    raw = event if isinstance(event, bytes) else orjson.dumps(event)

    def settle(check: Callable[[], CheckedEvent]) -> Any:
        try:
            return check()
        except Rejection as refused:
            return refused.as_dict()

    return (
        settle(
            lambda: check_event(
                raw, topic_partner=partner, registry=REGISTRY, pseudonymiser=PSEUDONYMISER, now=NOW
            )
        ),
        settle(lambda: check_thoroughly(raw, partner, REGISTRY, PSEUDONYMISER, LATEST_ALLOWED)),
    )


def quick(event: dict[str, Any]) -> CheckedEvent | None:
    raw = orjson.dumps(event)
    return check_quickly(raw, partner_of(event), REGISTRY, PSEUDONYMISER, LATEST_ALLOWED)


def at(event: dict[str, Any], path: str) -> tuple[dict[str, Any], str]:
    *parents, name = path.split(".")
    target = event
    for key in parents:
        target = target[key]
    return target, name


@pytest.mark.parametrize("type_name", sorted(EVENT_TYPES))
def test_quick_path_accepts_every_example_as_the_thorough_path_does(type_name: str) -> None:
    event = example_events()[type_name]
    checked = quick(event)
    assert checked is not None
    _, thorough = verdicts(event, partner_of(event))
    assert checked == thorough
    assert list(checked.data) == list(thorough.data)


def broken_forms(value: str) -> list[str]:
    return [
        "",
        " ",
        value + "\n",
        value + " ",
        value + "\x7f",
        value.lower(),
        "é" + value[1:],
        "\u0664" + value[1:],  # ARABIC-INDIC DIGIT FOUR: a digit to str.isdigit, not to [0-9]
        value * 20,
    ]


PATTERN_CASES = [
    (type_name, path)
    for type_name, event_type in sorted(EVENT_TYPES.items())
    for path, _ in pattern_fields(event_type.envelope)
]


@pytest.mark.parametrize(("type_name", "path"), PATTERN_CASES)
def test_a_value_breaking_a_pattern_gets_the_step_by_step_verdict(
    type_name: str, path: str
) -> None:
    template = example_events()[type_name]
    parent, name = at(template, path)
    shown = parent.get(name) or "4-01-06-02"
    for broken in broken_forms(str(shown)):
        event = example_events()[type_name]
        parent, name = at(event, path)
        parent[name] = broken
        checked, thorough = verdicts(event, partner_of(event))
        assert checked == thorough, (path, broken)


@pytest.mark.parametrize(
    ("time", "occurred"),
    [
        ("2024-07-01T00:10:00+00:00", "2024-07-01T08:10:00+08:00"),  # exactly the limit
        ("2024-07-01T00:10:00.000001Z", "2024-03-01T09:12:44+08:00"),
        ("2024-07-01T08:10:00+08:00", "2024-07-01T08:10:00.000001+08:00"),
        ("2024-07-01T08:09:00+08:00", "2024-06-30T20:10:00-04:00"),
        ("2024-06-30T20:10:01-04:00", "2024-07-01T00:00:00Z"),
        ("2024-07-01T08:10:00+08:00", "2024-07-01T00:10:00"),
    ],
)
def test_timestamps_in_any_offset_meet_the_same_limit(time: str, occurred: str) -> None:
    event = example_events()[ENROLLMENT]
    event["time"], event["data"]["enrolled_at"] = time, occurred
    checked, thorough = verdicts(event, "zjgj")
    assert checked == thorough


@pytest.mark.parametrize(
    ("id_type", "id_number"),
    [
        ("resident_id", "11010519491231002x"),
        ("resident_id", "110105194912310021"),
        ("resident_id", "110105190002290013"),  # 1900 was no leap year
        ("resident_id", "110105200002290014"),
        ("resident_id", "110105187912310015"),
        ("resident_id", "11010520301231001X"),
        ("resident_id", "\u0661\u0661010519491231002X"),
        ("resident_id", " 11010519491231002X"),
        ("resident_id_15", "110105491231002"),
        ("hmt_residence_permit", "810000199408230021"),
        ("foreign_permanent_residence", "USA330119870101"),
        ("passport", "e12345678"),
    ],
)
def test_every_kind_of_identity_document_gets_the_same_verdict(
    id_type: str, id_number: str
) -> None:
    event = example_events()[ENROLLMENT]
    event["data"]["learner"].update(id_type=id_type, id_number=id_number)
    checked, thorough = verdicts(event, "zjgj")
    assert checked == thorough


@pytest.mark.parametrize(
    "phone", ["13800138000", "+86-571-8888", "0571-88881234", "1380013800a", "12345", "1234"]
)
def test_phone_numbers_get_the_same_verdict(phone: str) -> None:
    event = example_events()[ENROLLMENT]
    event["data"]["learner"]["phone"] = phone
    checked, thorough = verdicts(event, "zjgj")
    assert checked == thorough


@pytest.mark.parametrize(
    "respell",
    [
        lambda raw: raw.replace("张三".encode(), b"\\u5f20\\u4e09"),
        lambda raw: raw.replace("张三".encode(), b'\\"\\u5f20'),
        lambda raw: raw.replace(b'"name":"', b'"name":"\\\\u0000'),
        lambda raw: raw.replace(b'":', b'": '),
        lambda raw: raw.replace(b"ENR-2024-000123", b"ENR-2024-\\u0030"),
    ],
    ids=["unicode escapes", "escaped quote", "escaped backslash", "spaced", "escaped digit"],
)
def test_other_spellings_of_the_same_json_get_the_same_verdict(
    respell: Callable[[bytes], bytes],
) -> None:
    raw = respell(orjson.dumps(example_events()[ENROLLMENT]))
    checked, thorough = verdicts(raw, "zjgj")
    assert checked == thorough


def registry_of(partner_id: str, families: set[str]) -> PartnerRegistry:
    partner = Partner(partner_id, "Example", "training_platform", "330106", frozenset(families))
    return PartnerRegistry({partner_id: partner})


def check_with(registry: PartnerRegistry, event: dict[str, Any], partner: str) -> Any:
    try:
        return check_event(
            orjson.dumps(event),
            topic_partner=partner,
            registry=registry,
            pseudonymiser=PSEUDONYMISER,
            now=NOW,
        )
    except Rejection as refused:
        return refused.as_dict()


def test_a_registered_partner_id_that_breaks_the_source_pattern_is_named_at_the_source() -> None:
    event = example_events()[ENROLLMENT]
    event["source"] = "/partners/Zjgj"
    registry = registry_of("Zjgj", {"enrollment.created"})
    refused = check_with(registry, event, "Zjgj")
    assert (refused["code"], refused["path"]) == ("envelope.bad_format", "$.source")


def test_each_registry_decides_for_itself_what_a_partner_may_publish() -> None:
    event = example_events()[ENROLLMENT]
    allowing = registry_of("zjgj", {"enrollment.created"})
    refusing = registry_of("zjgj", {"completion.recorded"})
    assert isinstance(check_with(allowing, event, "zjgj"), CheckedEvent)
    refused = check_with(refusing, event, "zjgj")
    assert refused["code"] == "authorise.type_not_allowed"
    assert isinstance(check_with(allowing, event, "zjgj"), CheckedEvent)
