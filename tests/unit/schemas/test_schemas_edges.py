"""Real-world edges: other scripts' digits, implausible timestamps, huge integers, bad bytes."""

from __future__ import annotations

import unicodedata
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.errors import Rejection
from schemas.examples import example_events
from schemas.identity import IdentifierError, canonical_identity
from schemas.partners import load_registry
from schemas.pipeline import CheckedEvent, check_event, check_thoroughly, claimed_event_id
from schemas.pseudonym import Pseudonymiser

REGISTRY = load_registry()
PSEUDONYMISER = Pseudonymiser({"k": b"e" * 32}, "k")
NOW = datetime(2024, 7, 1, tzinfo=UTC)
ENROLLMENT = "org.skillsync.enrollment.created.v1"
ASCII_ID = "33010619900101123X"

# Every decimal digit Unicode knows (category Nd), each block holding 0-9 in order.
unicode_digits = st.characters(categories=["Nd"])


def in_script_of(sample: str, value: int) -> str:
    """The digit `value` written in the script of the digit `sample`."""
    return chr(ord(sample) - unicodedata.decimal(sample) + value)


def respelled(number: str, draw: st.DrawFn) -> str:
    """The number with some of its ASCII digits written in other scripts' digits."""
    chars = list(number)
    for index in draw(st.sets(st.integers(0, len(chars) - 1), min_size=1)):
        if chars[index].isdigit():
            chars[index] = in_script_of(draw(unicode_digits), int(chars[index]))
    return "".join(chars)


def outcome(event: dict[str, Any]) -> Any:
    """check_event's verdict, made sure to be the step-by-step check's when it is a refusal."""
    raw = orjson.dumps(event)
    partner = str(event["source"]).rsplit("/", 1)[-1]
    quick: CheckedEvent | Rejection
    thorough: CheckedEvent | Rejection
    try:
        quick = check_event(raw, topic_partner=partner, registry=REGISTRY,
                            pseudonymiser=PSEUDONYMISER, now=NOW)
    except Rejection as refused:
        quick = refused
    try:
        thorough = check_thoroughly(raw, partner, REGISTRY, PSEUDONYMISER,
                                     NOW.replace(minute=10))
    except Rejection as refused:
        thorough = refused
    if isinstance(quick, Rejection):
        assert isinstance(thorough, Rejection) and quick.as_dict() == thorough.as_dict()
    return quick


def enrollment(**learner: str) -> dict[str, Any]:
    event = example_events()[ENROLLMENT]
    event["data"]["learner"].update(learner)
    return event


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_an_id_number_in_any_scripts_digits_is_the_same_person_or_refused(data) -> None:
    """One person, one pseudonym: another spelling either folds to the ASCII one or is refused."""
    number = respelled(ASCII_ID, data.draw)
    try:
        id_type, canonical = canonical_identity("resident_id", number)
    except IdentifierError as refused:
        assert refused.code == "id_number.format"
        # Only what NFKC cannot fold to ASCII is refused: full-width digits never are.
        assert not unicodedata.normalize("NFKC", number).isascii()
    else:
        assert (id_type, canonical) == ("resident_id", ASCII_ID)


def test_full_width_digits_are_one_person_with_the_ascii_number_and_other_scripts_are_refused(
) -> None:
    full_width = ASCII_ID.translate({ord(d): 0xFF10 + int(d) for d in "0123456789"})
    arabic_indic = ASCII_ID[:17].translate({ord(d): 0x0660 + int(d) for d in "0123456789"}) + "X"
    ascii_person = outcome(enrollment(id_number=ASCII_ID)).person
    assert outcome(enrollment(id_number=full_width)).person == ascii_person
    assert outcome(enrollment(id_number=full_width.replace("X", "Ｘ"))).person == ascii_person
    refused = outcome(enrollment(id_number=arabic_indic))
    assert isinstance(refused, Rejection)
    assert (refused.code, refused.path) == ("id_number.format", "$.data.learner.id_number")


@pytest.mark.parametrize("id_type", ["resident_id_15", "hmt_residence_permit",
                                     "foreign_permanent_residence", "passport"])
def test_every_id_type_refuses_digits_nfkc_cannot_fold(id_type: str) -> None:
    number = {"resident_id_15": "330106900101123", "hmt_residence_permit": "810000199001011234",
              "foreign_permanent_residence": "USA330619900101", "passport": "E12345678"}[id_type]
    with pytest.raises(IdentifierError) as caught:
        canonical_identity(id_type, number.replace("1", "\u0661"))
    assert caught.value.code == "id_number.format"


# Every other identifier the contract has: (where it is, a value with a digit in it).
OTHER_IDENTIFIERS = [
    (ENROLLMENT, ("data", "learner", "phone"), "$.data.learner.phone"),
    (ENROLLMENT, ("data", "institution", "credit_code"), "$.data.institution.credit_code"),
    (ENROLLMENT, ("data", "district_code"), "$.data.district_code"),
    (ENROLLMENT, ("data", "course", "occupation_code"), "$.data.course.occupation_code"),
    (ENROLLMENT, ("data", "course", "course_id"), "$.data.course.course_id"),
    (ENROLLMENT, ("data", "enrollment_id"), "$.data.enrollment_id"),
    (ENROLLMENT, ("id",), "$.id"),
    ("org.skillsync.certificate.issued.v1", ("data", "certificate_number"),
     "$.data.certificate_number"),
    ("org.skillsync.certificate.issued.v1", ("data", "evaluation_id"), "$.data.evaluation_id"),
]


@settings(max_examples=100, deadline=None)
@given(st.sampled_from(OTHER_IDENTIFIERS), st.data())
def test_other_identifiers_in_other_scripts_digits_are_refused_with_their_format_code(
        where: tuple[str, tuple[str, ...], str], data) -> None:
    type_name, path, json_path = where
    event = example_events()[type_name]
    parent = event
    for key in path[:-1]:
        parent = parent[key]
    original = parent[path[-1]]
    parent[path[-1]] = respelled(original, data.draw)
    if parent[path[-1]] == original:
        return  # nothing respelled: this draw tests nothing
    refused = outcome(event)
    assert isinstance(refused, Rejection)
    area = "envelope" if json_path == "$.id" else "schema"
    assert (refused.code, refused.path) == (f"{area}.bad_format", json_path)


@pytest.mark.parametrize("stamp", ["0001-01-01T00:00:00+14:00", "1999-12-31T23:59:59+00:00",
                                   "1970-01-01T00:00:00Z"])
@pytest.mark.parametrize("type_name", sorted(example_events()))
def test_a_timestamp_before_2000_is_refused_as_out_of_range_at_its_path(
        type_name: str, stamp: str) -> None:
    event = example_events()[type_name]
    fields = [("time", "$.time", event)] + [
        (name, f"$.data.{name}", event["data"]) for name, value in event["data"].items()
        if isinstance(value, str) and name.endswith("_at")]
    for name, path, holder in fields:
        changed = example_events()[type_name]
        (changed if holder is event else changed["data"])[name] = stamp
        refused = outcome(changed)
        assert isinstance(refused, Rejection), (name, stamp)
        area = "envelope" if path == "$.time" else "schema"
        assert (refused.code, refused.path) == (f"{area}.out_of_range", path)


def test_the_first_moment_of_2000_is_accepted() -> None:
    event = example_events()["org.skillsync.certificate.revoked.v1"]
    event["data"]["revoked_at"] = "2000-01-01T08:00:00+08:00"
    assert not isinstance(outcome(event), Rejection)


@pytest.mark.parametrize("day", ["1999-12-31", "2024-07-03"])
def test_a_control_totals_business_day_outside_2000_to_today_is_refused(day: str) -> None:
    event = example_events()["org.skillsync.control.totals.v1"]
    event["data"]["business_day"] = day
    refused = outcome(event)
    assert isinstance(refused, Rejection)
    assert (refused.code, refused.path) == ("schema.out_of_range", "$.data.business_day")


@pytest.mark.parametrize(("path", "raw_number"), [
    ("$.data.course.level", b"1000000000000000000000000000000"),
    ("$.data.course.level", b"-1000000000000000000000000000000"),
])
def test_an_integer_too_large_for_64_bits_is_out_of_range_not_a_float(
        path: str, raw_number: bytes) -> None:
    raw = orjson.dumps(example_events()[ENROLLMENT]).replace(b'"level":4', b'"level":' + raw_number)
    with pytest.raises(Rejection) as caught:
        check_event(raw, topic_partner="zjgj", registry=REGISTRY, pseudonymiser=PSEUDONYMISER,
                    now=NOW)
    assert (caught.value.code, caught.value.path) == ("schema.out_of_range", path)
    assert "out of range" in caught.value.message and "float" not in caught.value.message


def test_a_huge_count_in_control_totals_is_out_of_range() -> None:
    raw = orjson.dumps(example_events()["org.skillsync.control.totals.v1"]).replace(
        b'"counts":{"enrollment.created":2}', b'"counts":{"enrollment.created":1e30}')
    with pytest.raises(Rejection) as caught:
        check_event(raw, topic_partner="zjgj", registry=REGISTRY, pseudonymiser=PSEUDONYMISER,
                    now=NOW)
    assert caught.value.code == "schema.out_of_range"


def test_a_real_fraction_for_an_integer_is_still_a_wrong_type() -> None:
    raw = orjson.dumps(example_events()[ENROLLMENT]).replace(b'"level":4', b'"level":4.5')
    with pytest.raises(Rejection) as caught:
        check_event(raw, topic_partner="zjgj", registry=REGISTRY, pseudonymiser=PSEUDONYMISER,
                    now=NOW)
    assert caught.value.code == "schema.wrong_type"


@pytest.mark.parametrize(("bad", "offset"), [(b"\xff", 0), (b"\xed\xa0\x80", 40), (b"\xc3", 9)])
def test_bytes_that_are_not_utf8_are_refused_naming_the_byte_offset(bad: bytes,
                                                                    offset: int) -> None:
    raw = orjson.dumps(example_events()[ENROLLMENT])
    corrupted = raw[:offset] + bad + raw[offset:]
    with pytest.raises(Rejection) as caught:
        check_event(corrupted, topic_partner="zjgj", registry=REGISTRY,
                    pseudonymiser=PSEUDONYMISER, now=NOW)
    assert caught.value.code == "decode.not_utf8"
    assert f"byte offset {offset}" in caught.value.message
    assert "column" not in caught.value.message


def test_the_claimed_id_of_a_message_nested_too_deep_is_still_read() -> None:
    bomb = b'{"a":' * 5000 + b"1" + b"}" * 5000
    before = b'{"specversion":"1.0","id":"evt-deep-1","data":' + bomb + b"}"
    after = b'{"data":[' + b"[" * 5000 + b'"]"' + b"]" * 5001 + b', "id" : "evt-deep-2"}'
    assert claimed_event_id(before) == "evt-deep-1"
    assert claimed_event_id(after) == "evt-deep-2"
    assert claimed_event_id(bomb) is None
    with pytest.raises(Rejection) as caught:
        check_event(before, topic_partner="zjgj", registry=REGISTRY,
                    pseudonymiser=PSEUDONYMISER, now=NOW)
    assert caught.value.code == "decode.too_deep"
