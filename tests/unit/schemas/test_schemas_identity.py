"""Identifier rules: GB 11643 resident IDs, GB 32100 credit codes, certificate numbers."""

from __future__ import annotations

import re
from datetime import date

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.identity import (
    IdentifierError,
    canonical_identity,
    certificate_number,
    credit_code_check_char,
    credit_code_is_valid,
    resident_id_check_char,
    upgrade_legacy_id,
    validate_certificate_number,
    validate_resident_id,
)


@pytest.mark.parametrize("number", ["11010519491231002X", "440524188001010014"])
def test_standard_examples_are_valid_resident_ids(number: str) -> None:
    assert validate_resident_id(number) == number
    assert resident_id_check_char(number[:17]) == number[17]


def test_lower_case_x_is_normalised() -> None:
    assert validate_resident_id("11010519491231002x") == "11010519491231002X"


@pytest.mark.parametrize(
    ("number", "code"),
    [
        ("110105194912310021", "id_number.checksum"),
        ("110105194902300021", "id_number.birth_date"),
        ("11010519491231002", "id_number.format"),
        ("1101051949123100 X", "id_number.format"),
    ],
)
def test_invalid_resident_ids_say_why(number: str, code: str) -> None:
    with pytest.raises(IdentifierError) as caught:
        validate_resident_id(number)
    assert caught.value.code == code


def test_every_wrong_check_character_is_detected() -> None:
    first17 = "11010519491231002"
    wrong = [c for c in "0123456789X" if c != resident_id_check_char(first17)]
    for check_char in wrong:
        with pytest.raises(IdentifierError):
            validate_resident_id(first17 + check_char)


def test_legacy_15_digit_id_upgrades_to_its_18_character_form() -> None:
    assert upgrade_legacy_id("110105491231002") == "11010519491231002X"
    assert canonical_identity("resident_id_15", "110105491231002") == (
        "resident_id",
        "11010519491231002X",
    )


@pytest.mark.parametrize(
    ("id_type", "number", "canonical"),
    [
        ("passport", "e12345678", "E12345678"),
        ("foreign_permanent_residence", "usa330106800101", "USA330106800101"),
    ],
)
def test_other_documents_are_carried_by_their_id_type(
    id_type: str, number: str, canonical: str
) -> None:
    assert canonical_identity(id_type, number) == (id_type, canonical)


def test_residence_permit_needs_its_prefix_and_checksum() -> None:
    permit_17 = "81000019900101001"
    permit = permit_17 + resident_id_check_char(permit_17)
    assert canonical_identity("hmt_residence_permit", permit)[1] == permit
    with pytest.raises(IdentifierError):
        canonical_identity("hmt_residence_permit", "11010519491231002X")


@pytest.mark.parametrize("code", ["91350100M000100Y43", "91330100799655058B"])
def test_standard_examples_are_valid_credit_codes(code: str) -> None:
    assert credit_code_is_valid(code)
    assert credit_code_check_char(code[:17]) == code[17]


@pytest.mark.parametrize(
    "code", ["91330100799655058C", "91330100799655058", "9133010079965505IB", ""]
)
def test_bad_credit_codes_are_not_valid(code: str) -> None:
    assert not credit_code_is_valid(code)


def test_certificate_number_carries_level_and_year_where_the_standard_puts_them() -> None:
    number = certificate_number("S", "0001", "33", "000108", 2024, 3, 42)
    assert len(number) == 22
    assert (number[0], number[5:7], number[13:15], number[15], number[16:]) == (
        "S",
        "33",
        "24",
        "3",
        "000042",
    )
    validate_certificate_number(number, "skill_level_2020", 3, 2024)


@pytest.mark.parametrize(
    ("level", "year", "code"),
    [(2, 2024, "certificate_number.level_mismatch"), (3, 2025, "certificate_number.year_mismatch")],
)
def test_certificate_number_must_agree_with_level_and_year(
    level: int, year: int, code: str
) -> None:
    number = certificate_number("Y", "0000", "33", "000001", 2024, 3, 1)
    with pytest.raises(IdentifierError) as caught:
        validate_certificate_number(number, "skill_level_2020", level, year)
    assert caught.value.code == code


def test_certificate_number_builder_refuses_bad_parts() -> None:
    with pytest.raises(ValueError):
        certificate_number("Q", "0001", "33", "000108", 2024, 3, 1)
    with pytest.raises(ValueError):
        certificate_number("S", "01", "33", "000108", 2024, 3, 1)
    with pytest.raises(ValueError):
        certificate_number("S", "0001", "33", "000108", 2024, 6, 1)


GB_11643_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)


def by_the_standard(number: str, today: date) -> str:
    """The normalised ID or the reason code, computed the way GB 11643 words it, on `today`."""
    if not re.fullmatch(r"[0-9]{17}[0-9Xx]", number):
        return "id_number.format"
    try:
        born = date(int(number[6:10]), int(number[10:12]), int(number[12:14]))
    except ValueError:
        return "id_number.birth_date"
    if born.year < 1880 or born > today:
        return "id_number.birth_date"
    total = sum(
        int(digit) * weight for digit, weight in zip(number[:17], GB_11643_WEIGHTS, strict=True)
    )
    if "10X98765432"[total % 11] != number[17].upper():
        return "id_number.checksum"
    return number.upper()


def outcome(number: str, today: date) -> str:
    try:
        return validate_resident_id(number, today)
    except IdentifierError as refused:
        return refused.code


digits = st.text(alphabet="0123456789", min_size=1, max_size=1)
resident_ids = st.builds(
    lambda place, day, sequence, check: f"{place}{day}{sequence}{check}",
    st.text(alphabet="0123456789", min_size=6, max_size=6),
    st.dates(min_value=date(1860, 1, 1), max_value=date(2200, 12, 31)).map(
        lambda day: day.strftime("%Y%m%d")
    )
    | st.text(alphabet="0123456789", min_size=8, max_size=8),
    st.text(alphabet="0123456789", min_size=3, max_size=3),
    st.sampled_from("0123456789Xx"),
)


# The day an event is judged on: birth dates after it are not plausible.
judging_days = st.dates(min_value=date(2000, 1, 1), max_value=date(2100, 12, 31))


@settings(max_examples=2000)
@given(resident_ids, judging_days)
def test_resident_ids_are_judged_as_the_standard_words_it(number: str, today: date) -> None:
    assert outcome(number, today) == by_the_standard(number, today)


@settings(max_examples=500)
@given(st.text(alphabet="0123456789Xx \n\u0661", max_size=19), judging_days)
def test_odd_strings_are_judged_as_the_standard_words_it(number: str, today: date) -> None:
    if number.isascii():
        assert outcome(number, today) == by_the_standard(number, today)
    else:
        assert outcome(number, today).startswith("id_number.")


@settings(max_examples=1000)
@given(st.text(alphabet="0123456789", min_size=17, max_size=17))
def test_check_character_is_the_weighted_sum_of_the_standard(first17: str) -> None:
    total = sum(
        int(digit) * weight for digit, weight in zip(first17, GB_11643_WEIGHTS, strict=True)
    )
    assert resident_id_check_char(first17) == "10X98765432"[total % 11]
