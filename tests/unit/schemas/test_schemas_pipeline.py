"""check_event accepts the contract's examples and refuses bad events with exact reasons."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest

from schemas.errors import REASON_CODES, Rejection
from schemas.events import TYPE_PREFIX
from schemas.examples import example_events
from schemas.identity import resident_id_check_char
from schemas.partners import load_registry
from schemas.pipeline import MAX_EVENT_BYTES, CheckedEvent, check_event, claimed_event_id
from schemas.pseudonym import Pseudonymiser

REGISTRY = load_registry()
PSEUDONYMISER = Pseudonymiser({"2024a": b"k" * 32}, "2024a")
NOW = datetime(2024, 7, 1, tzinfo=UTC)
ENROLLMENT = TYPE_PREFIX + "enrollment.created.v1"
CERTIFICATE = TYPE_PREFIX + "certificate.issued.v1"


def partner_of(event: dict[str, Any]) -> str:
    return str(event["source"]).rsplit("/", 1)[-1]


def check(event: dict[str, Any] | bytes, topic_partner: str | None = None) -> CheckedEvent:
    raw = event if isinstance(event, bytes) else orjson.dumps(event)
    if topic_partner is None:
        assert isinstance(event, dict)
        topic_partner = partner_of(event)
    return check_event(
        raw, topic_partner=topic_partner, registry=REGISTRY, pseudonymiser=PSEUDONYMISER, now=NOW
    )


def rejection(event: dict[str, Any] | bytes, topic_partner: str = "zjgj") -> Rejection:
    with pytest.raises(Rejection) as caught:
        check(event, topic_partner)
    assert caught.value.code in REASON_CODES
    return caught.value


def enrollment(mutate: Callable[[dict[str, Any]], object] | None = None) -> dict[str, Any]:
    event = example_events()[ENROLLMENT]
    if mutate:
        mutate(event)
    return event


@pytest.mark.parametrize("type_name", sorted(example_events()))
def test_every_example_is_accepted_with_its_family_and_version(type_name: str) -> None:
    event = example_events()[type_name]
    checked = check(event)
    assert checked.type == type_name
    assert type_name == f"{TYPE_PREFIX}{checked.family}.v{checked.version}"
    assert checked.event_id == event["id"]
    assert checked.partner_id == partner_of(event)
    assert checked.occurred_at.tzinfo is not None
    assert (checked.person is None) == (checked.family == "control.totals")


@pytest.mark.parametrize("type_name", sorted(example_events()))
def test_accepted_data_holds_no_plaintext_personal_data(type_name: str) -> None:
    event = example_events()[type_name]
    checked = check(event)
    landed = orjson.dumps(checked.data).decode()
    learner = event["data"].get("learner")
    if learner is None:
        return
    for secret in (learner["id_number"], learner["name"], learner["phone"]):
        assert secret not in landed
    assert set(checked.data["learner"]) == {
        "id_type",
        "person",
        "key_id",
        "id_masked",
        "name_masked",
        "phone_masked",
    }
    assert checked.data["learner"]["person"] == checked.person
    assert checked.key_id == "2024a"


def test_same_person_gets_same_pseudonym_across_partners_and_id_spellings() -> None:
    def learner(**fields: str) -> CheckedEvent:
        return check(enrollment(lambda e: e["data"]["learner"].update(fields)))

    upper = learner(id_number="11010519491231002X")
    assert learner(id_number="11010519491231002x").person == upper.person
    assert learner(id_type="resident_id_15", id_number="110105491231002").person == upper.person
    assert learner(id_number="440524188001010014").person != upper.person


def test_envelope_fields_are_carried() -> None:
    event = enrollment()
    checked = check(event)
    assert checked.subject == event["data"]["enrollment_id"]
    assert checked.occurred_at == datetime.fromisoformat(event["data"]["enrolled_at"])
    assert checked.sent_at == datetime.fromisoformat(event["time"])
    assert checked.sent_at != checked.occurred_at
    assert checked.warnings == ()


def set_in(path: str, value: object) -> Callable[[dict[str, Any]], None]:
    *parents, last = path.split(".")

    def mutate(event: dict[str, Any]) -> None:
        target = event
        for key in parents:
            target = target[key]
        target[last] = value

    return mutate


def drop(path: str) -> Callable[[dict[str, Any]], None]:
    *parents, last = path.split(".")

    def mutate(event: dict[str, Any]) -> None:
        target = event
        for key in parents:
            target = target[key]
        del target[last]

    return mutate


REFUSALS = [
    # (what is wrong, mutation, reason code, JSON path)
    (
        "bad id checksum",
        set_in("data.learner.id_number", "110105194912310021"),
        "id_number.checksum",
        "$.data.learner.id_number",
    ),
    (
        "impossible birth date",
        set_in("data.learner.id_number", "110105194902300021"),
        "id_number.birth_date",
        "$.data.learner.id_number",
    ),
    (
        "id too short",
        set_in("data.learner.id_number", "1101051949"),
        "id_number.format",
        "$.data.learner.id_number",
    ),
    (
        "permit without 8x prefix",
        set_in("data.learner.id_type", "hmt_residence_permit"),
        "id_number.format",
        "$.data.learner.id_number",
    ),
    (
        "unknown occupation",
        set_in("data.course.occupation_code", "9-99-99-99"),
        "schema.bad_format",
        "$.data.course.occupation_code",
    ),
    (
        "unlisted occupation",
        set_in("data.course.occupation_code", "1-01-01-01"),
        "occupation.unknown",
        "$.data.course.occupation_code",
    ),
    ("level 6", set_in("data.course.level", 6), "schema.out_of_range", "$.data.course.level"),
    ("level as text", set_in("data.course.level", "4"), "schema.wrong_type", "$.data.course.level"),
    ("unknown mode", set_in("data.course.mode", "mail"), "schema.bad_value", "$.data.course.mode"),
    (
        "non-Hangzhou district",
        set_in("data.district_code", "310101"),
        "division.unknown",
        "$.data.district_code",
    ),
    ("missing learner", drop("data.learner"), "schema.missing_field", "$.data.learner"),
    (
        "extra data field",
        set_in("data.learner.gender", "f"),
        "schema.extra_field",
        "$.data.learner.gender",
    ),
    (
        "extra envelope attribute",
        set_in("traceparent", "00-ab"),
        "envelope.extra_field",
        "$.traceparent",
    ),
    ("missing id", drop("id"), "envelope.missing_field", "$.id"),
    ("wrong specversion", set_in("specversion", "0.3"), "envelope.bad_value", "$.specversion"),
    ("naive time", set_in("time", "2024-03-01T09:30:00"), "time.no_offset", "$.time"),
    ("not a time", set_in("time", "yesterday"), "envelope.bad_format", "$.time"),
    ("future time", set_in("time", "2024-07-01T00:11:00+00:00"), "time.in_future", "$.time"),
    (
        "future enrolment",
        set_in("data.enrolled_at", "2030-01-01T00:00:00+08:00"),
        "time.in_future",
        "$.data.enrolled_at",
    ),
    ("unknown type", set_in("type", "org.example.thing.v1"), "type.unknown", "$.type"),
    (
        "unknown version",
        set_in("type", TYPE_PREFIX + "enrollment.created.v7"),
        "type.unknown_version",
        "$.type",
    ),
    ("type missing", drop("type"), "envelope.missing_field", "$.type"),
    (
        "source of another partner",
        set_in("source", "/partners/xgxy"),
        "authorise.source_mismatch",
        "$.source",
    ),
    (
        "source not a partner path",
        set_in("source", "https://zjgj.example"),
        "envelope.bad_source",
        "$.source",
    ),
    (
        "platform issuing certificates",
        set_in("type", CERTIFICATE),
        "authorise.type_not_allowed",
        "$.type",
    ),
]


@pytest.mark.parametrize(
    ("mutate", "code", "path"),
    [case[1:] for case in REFUSALS],
    ids=[case[0] for case in REFUSALS],
)
def test_bad_event_is_refused_with_reason_and_path(
    mutate: Callable[[dict[str, Any]], None], code: str, path: str
) -> None:
    refused = rejection(enrollment(mutate))
    assert (refused.code, refused.path) == (code, path)
    assert refused.message


def test_rejection_messages_never_echo_personal_data() -> None:
    names = ["欧阳娜娜", "13912345678"]
    mutations = [
        set_in("data.learner.name", names[0]),
        set_in("data.learner.phone", names[1]),
        set_in("data.learner.id_number", "330106199001011238"),
    ]
    for mutate in mutations:
        event = enrollment(mutate)
        event["data"]["course"]["mode"] = names[0]
        refused = rejection(event)
        assert all(secret not in str(refused) for secret in [*names, "330106199001011238"])


def test_unknown_partner_is_refused() -> None:
    assert rejection(enrollment(), topic_partner="nobody").code == "authorise.unknown_partner"


def test_clock_skew_is_configurable() -> None:
    event = enrollment(set_in("time", "2024-07-01T00:05:00+00:00"))

    def check_with_skew(skew: timedelta) -> CheckedEvent:
        return check_event(
            orjson.dumps(event),
            topic_partner="zjgj",
            registry=REGISTRY,
            pseudonymiser=PSEUDONYMISER,
            now=NOW,
            max_future_skew=skew,
        )

    assert check_with_skew(timedelta(minutes=10)).event_id == event["id"]
    with pytest.raises(Rejection):
        check_with_skew(timedelta(minutes=1))


BAD_BYTES = [
    ("invalid utf-8", b'{"id":"\xff"}', "decode.not_utf8"),
    ("not json", b"hello", "decode.not_json"),
    ("empty", b"", "decode.not_json"),
    ("NaN", b'{"a":NaN}', "decode.non_finite_number"),
    ("Infinity", b'{"a":-Infinity}', "decode.non_finite_number"),
    ("huge exponent", b'{"a":1e999}', "decode.non_finite_number"),
    ("nesting bomb", b"[" * 100_000 + b"]" * 100_000, "decode.too_deep"),
    ("array", b"[1,2]", "decode.not_object"),
    ("oversized", b" " * (MAX_EVENT_BYTES + 1), "size.too_large"),
]


@pytest.mark.parametrize(("raw", "code"), [c[1:] for c in BAD_BYTES], ids=[c[0] for c in BAD_BYTES])
def test_bad_bytes_are_refused_at_decode(raw: bytes, code: str) -> None:
    refused = rejection(raw)
    assert (refused.code, refused.stage) == (code, "decode")


def test_duplicate_key_is_refused_in_compact_and_spaced_json() -> None:
    once = b'"specversion":"1.0"'
    compact = orjson.dumps(enrollment()).replace(once, once + b"," + once)
    spaced = compact.replace(b'":', b'" :')
    escaped = compact.replace("张三".encode(), b'\\u5f20\\"')
    for raw in (compact, spaced, escaped):
        assert rejection(raw).code == "decode.duplicate_key"


def test_pretty_printed_event_without_duplicates_is_accepted() -> None:
    raw = orjson.dumps(enrollment(), option=orjson.OPT_INDENT_2)
    assert check(raw, "zjgj").event_id == enrollment()["id"]


def test_nul_character_is_refused_with_its_path() -> None:
    refused = rejection(enrollment(set_in("data.institution.name", "school\x00")))
    assert (refused.code, refused.path) == ("decode.nul_character", "$.data.institution.name")


def test_failed_credit_code_checksum_is_a_warning_not_a_refusal() -> None:
    checked = check(enrollment(set_in("data.institution.credit_code", "91330100799655058C")))
    assert checked.warnings == ("credit_code.checksum",)


def test_legacy_occupation_code_is_mapped_and_flagged() -> None:
    checked = check(enrollment(set_in("data.course.occupation_code", "4-01-02-07")))
    assert checked.data["course"]["occupation_code"] == "4-01-06-02"
    assert checked.data["course"]["occupation_code_reported"] == "4-01-02-07"
    assert "occupation.legacy_code" in checked.warnings


def test_retired_district_is_accepted_with_a_warning() -> None:
    assert check(enrollment(set_in("data.district_code", "330103"))).warnings == (
        "division.retired",
    )


def certificate(mutate: Callable[[dict[str, Any]], object]) -> dict[str, Any]:
    event = example_events()[CERTIFICATE]
    mutate(event)
    return event


@pytest.mark.parametrize(
    ("mutate", "code"),
    [
        (set_in("data.level", 3), "certificate_number.level_mismatch"),
        (set_in("data.issued_at", "2023-12-30T10:00:00+08:00"), "certificate_number.year_mismatch"),
        (set_in("data.certificate_number", "X000133000108244000001"), "certificate_number.format"),
        (drop("data.level"), "certificate.inconsistent"),
        (set_in("data.certificate_type", "special_ability"), "certificate.inconsistent"),
    ],
)
def test_certificate_number_must_agree_with_level_and_year(
    mutate: Callable[[dict[str, Any]], None], code: str
) -> None:
    assert rejection(certificate(mutate), topic_partner="eval01").code == code


def test_certificate_year_is_read_in_china_standard_time() -> None:
    # 2023-12-31T17:00Z is already 2024-01-01 in Hangzhou, the year in the number.
    checked = check(certificate(set_in("data.issued_at", "2023-12-31T17:00:00+00:00")))
    assert checked.family == "certificate.issued"


def test_scores_outside_0_to_100_are_refused() -> None:
    event = example_events()[TYPE_PREFIX + "evaluation.recorded.v1"]
    event["data"]["theory_score"] = 100.5
    refused = rejection(event, topic_partner="eval01")
    assert (refused.code, refused.path) == ("schema.out_of_range", "$.data.theory_score")


def test_pass_with_failing_score_is_flagged() -> None:
    event = example_events()[TYPE_PREFIX + "evaluation.recorded.v1"]
    event["data"]["practical_score"] = 40
    assert check(event).warnings == ("evaluation.result_inconsistent",)


def test_correction_must_change_something() -> None:
    event = example_events()[TYPE_PREFIX + "evaluation.corrected.v1"]
    del event["data"]["practical_score"]
    assert rejection(event, "eval01").code == "evaluation.empty_correction"


FAMILY = "enrollment.created"


@pytest.mark.parametrize(
    ("mutate", "code"),
    [
        (lambda data: data["counts"].update({FAMILY: 3}), "control.count_mismatch"),
        (lambda data: data["digests"].update({FAMILY: "0" * 64}), "control.digest_mismatch"),
        (lambda data: data["counts"].update({"enrolment.made": 0}), "control.unknown_family"),
        (lambda data: data["digests"].pop(FAMILY), "control.mismatched_families"),
        (
            lambda data: data["event_ids"][FAMILY].__setitem__(1, "evt-zjgj-0001"),
            "control.count_mismatch",
        ),
    ],
)
def test_control_totals_must_be_self_consistent(
    mutate: Callable[[dict[str, Any]], object], code: str
) -> None:
    event = example_events()[TYPE_PREFIX + "control.totals.v1"]
    mutate(event["data"])
    assert rejection(event).code == code


def test_evaluation_v2_is_accepted_alongside_v1() -> None:
    events = example_events()
    v1 = check(events[TYPE_PREFIX + "evaluation.recorded.v1"])
    v2 = check(events[TYPE_PREFIX + "evaluation.recorded.v2"])
    assert (v1.family, v1.version, v2.family, v2.version) == (
        "evaluation.recorded",
        1,
        "evaluation.recorded",
        2,
    )
    assert v2.data["work_type"] == "直播销售员"


@pytest.mark.parametrize(("raw", "expected"), [
    (b'{"id": "evt-1", "type": "nonsense"}', "evt-1"),
    (b'{"id": 7}', None),
    (b"[1, 2]", None),
    (b"\xff\xfe", None),
    (b'{"a":' * 5000 + b"1" + b"}" * 5000, None),
    # Bad bytes elsewhere in the message still let it be named.
    (b'{"id":"evt-9","data":"\xff"}', "evt-9"),
    (b'{"id":"' + b"a" * 300 + b'"}', "a" * 200),
    (None, None),
    # PostgreSQL text cannot hold NUL: it is named as the partner wrote it.
    (b'{"id":"a\\u0000b"}', "a\\u0000b"),
])
def test_the_claimed_id_of_any_bytes_is_read_without_raising(raw: bytes | None, expected) -> None:
    assert claimed_event_id(raw) == expected


def test_a_refusal_naming_a_field_with_nul_spells_the_nul_as_its_json_escape() -> None:
    event = example_events()[TYPE_PREFIX + "enrollment.created.v1"]
    event["data"]["sur\x00prise"] = 1

    refused = rejection(event)

    assert (refused.code, refused.path) == ("schema.extra_field", "$.data.sur\\u0000prise")
    assert "\x00" not in refused.message and "\x00" not in str(refused)


def test_a_birth_date_is_judged_against_the_events_append_day_not_the_calendar() -> None:
    born = NOW.date() + timedelta(days=1)  # after the append day, long before any test runs
    first17 = f"330106{born:%Y%m%d}123"
    id_number = first17 + resident_id_check_char(first17)
    event = enrollment(set_in("data.learner.id_number", id_number))
    raw = orjson.dumps(event)

    with pytest.raises(Rejection) as refused:
        check_event(raw, topic_partner="zjgj", registry=REGISTRY, pseudonymiser=PSEUDONYMISER,
                    now=NOW)
    assert (refused.value.code, refused.value.path) == (
        "id_number.birth_date", "$.data.learner.id_number")
    # Read a day later, as a replay would, it is a plausible birth date.
    later = check_event(raw, topic_partner="zjgj", registry=REGISTRY,
                        pseudonymiser=PSEUDONYMISER, now=NOW + timedelta(days=2))
    assert later.person is not None
