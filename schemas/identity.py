"""Identifier rules: resident IDs (GB 11643), credit codes (GB 32100), certificate numbers."""

from __future__ import annotations

import re
import unicodedata
from datetime import date
from functools import lru_cache
from operator import mul

ID_TYPES = (
    "resident_id",
    "resident_id_15",
    "hmt_residence_permit",
    "foreign_permanent_residence",
    "passport",
)

_ID_CHECK_CHARS = "10X98765432"
# Month and day pairs real in every year; with the years below they vouch for a birth date.
_EVERY_YEARS_DAYS = frozenset(
    f"{month:02d}{day:02d}"
    for month, days in enumerate((31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31), 1)
    for day in range(1, days + 1)
)
_FIRST_BIRTH_YEAR = 1880
# Years as text compare like numbers.
_FIRST_BIRTH_YEAR_TEXT = f"{_FIRST_BIRTH_YEAR}"
# ASCII digits only: Python's \d (and str.isdigit, int()) also take full-width, Arabic-Indic and
# every other script's digits, which would give one person a second spelling.
_DIGITS17 = re.compile(r"[0-9]{17}")
_RESIDENT_ID = re.compile(r"[0-9]{17}[0-9Xx]")
_LEGACY_15 = re.compile(r"[0-9]{15}")
_FOREIGN_2017 = re.compile(r"[A-Z]{3}[0-9]{12}")
_PASSPORT = re.compile(r"[A-Z0-9]{5,20}")
_HMT_PREFIXES = ("81", "82", "83")

_CREDIT_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_CREDIT_VALUE = {ch: value for value, ch in enumerate(_CREDIT_ALPHABET)}
_CREDIT_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)


def whole(pattern: str) -> str:
    """A pattern matching whole strings under both Python and ECMA-262 regex rules.

    Python's `$` also matches before a trailing newline; the lookahead closes that gap.
    """
    return rf"^(?:{pattern})(?!\n)$"


CREDIT_CODE_PATTERN = whole("[0-9A-HJ-NPQRTUWXY]{18}")
OCCUPATION_CODE_PATTERN = whole(r"[1-8]-[0-9]{2}-[0-9]{2}-[0-9]{2}")
DIVISION_CODE_PATTERN = whole(r"[0-9]{6}")
SKILL_LEVELS = (5, 4, 3, 2, 1)

CERTIFICATE_KINDS = ("Y", "S")
_SKILL_CERTIFICATE = re.compile(r"[YS][0-9]{21}")
_QUALIFICATION_CERTIFICATE = re.compile(r"[0-9]{16}")
_SPECIAL_ABILITY_CERTIFICATE = re.compile(r"[A-Z0-9]{10,30}")


class IdentifierError(ValueError):
    """An identifier breaks its rule; `code` is the reason code a rejection carries."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def resident_id_check_char(first17: str) -> str:
    if not _DIGITS17.fullmatch(first17):
        raise IdentifierError("id_number.format",
                              "expected 17 ASCII digits before the check character")
    # Weight i is 2**(18 - i) mod 11 and 13 is 2 mod 11: read in base 13, the digits give the
    # weighted sum mod 11 up to one factor 2, in a single int() call.
    return _ID_CHECK_CHARS[int(first17, 13) * 2 % 11]


def _birth_date(yyyymmdd: str, today: date | None) -> date:
    try:
        born = date(int(yyyymmdd[:4]), int(yyyymmdd[4:6]), int(yyyymmdd[6:8]))
    except ValueError:
        raise IdentifierError("id_number.birth_date", "the birth date is not a real date") from None
    if born.year < _FIRST_BIRTH_YEAR or born > (today or date.today()):
        raise IdentifierError("id_number.birth_date", "the birth date is not plausible")
    return born


@lru_cache(maxsize=64)
def _year_text(today: date | None) -> str:
    return f"{(today or date.today()).year:04d}"


def validate_resident_id(s: str, today: date | None = None) -> str:
    """The normalised 18-character ID (upper-case X); IdentifierError says what is wrong.

    today: the day the event is judged on (its broker append day), so that a replay decides as
    the first reading did; None (the calendar's day) for requests outside any event.
    """
    # Nearly every ID is ASCII, born before this year on a day that every year has: those are
    # vouched for by cheap string tests; the rest take the regex and calendar route below.
    if (
        len(s) == 18
        and s.isascii()
        and (s.isdigit() or (s[17] in "Xx" and s[:17].isdigit()))
        and s[10:14] in _EVERY_YEARS_DAYS
        and _FIRST_BIRTH_YEAR_TEXT <= s[6:10] < _year_text(today)
    ):
        # resident_id_check_char, inlined: this is the path nearly every event takes.
        check_char = _ID_CHECK_CHARS[int(s[:17], 13) * 2 % 11]
        if s[17] == check_char:
            return s
        if s[17] == "x" and check_char == "X":
            return s[:17] + "X"
        raise IdentifierError("id_number.checksum", "the check character does not match")
    if not _RESIDENT_ID.fullmatch(s):
        raise IdentifierError("id_number.format",
                              "expected 17 ASCII digits and a check digit or X")
    _birth_date(s[6:14], today)
    normalised = s.upper()
    if resident_id_check_char(normalised[:17]) != normalised[17]:
        raise IdentifierError("id_number.checksum", "the check character does not match")
    return normalised


def upgrade_legacy_id(s: str, today: date | None = None) -> str:
    """The 18-character form of a 15-digit first-generation ID (born 19xx, check char added)."""
    if not _LEGACY_15.fullmatch(s):
        raise IdentifierError("id_number.format", "expected 15 digits")
    first17 = s[:6] + "19" + s[6:]
    _birth_date(first17[6:14], today)
    return first17 + resident_id_check_char(first17)


def canonical_identity(id_type: str, id_number: str,
                       today: date | None = None) -> tuple[str, str]:
    """(id_type, number) in the form pseudonyms are computed from; one person, one form.

    today: the day birth dates must not be after (validate_resident_id).

    A legacy 15-digit number becomes its 18-character resident ID so that both spellings of
    the same person get the same pseudonym. Full-width digits and letters (as Chinese input
    methods type them) are folded to ASCII by NFKC first, for the same reason; any other
    non-ASCII character (Arabic-Indic or other scripts' digits) is refused, never read as a digit.
    """
    if not id_number.isascii():
        id_number = unicodedata.normalize("NFKC", id_number)
        if not id_number.isascii():
            raise IdentifierError("id_number.format",
                                  "write the number with ASCII digits and letters only")
    if id_type == "resident_id":
        return id_type, validate_resident_id(id_number, today)
    if id_type == "resident_id_15":
        return "resident_id", upgrade_legacy_id(id_number, today)
    if id_type == "hmt_residence_permit":
        if not id_number.startswith(_HMT_PREFIXES):
            raise IdentifierError("id_number.format", "a residence permit starts with 81, 82 or 83")
        return id_type, validate_resident_id(id_number, today)
    if id_type == "foreign_permanent_residence":
        number = id_number.upper()
        if _FOREIGN_2017.fullmatch(number):
            return id_type, number
        if len(number) == 18 and number.startswith("9"):
            return id_type, validate_resident_id(number, today)
        raise IdentifierError("id_number.format", "expected the 15- or 18-character card number")
    if id_type == "passport":
        number = id_number.upper()
        if _PASSPORT.fullmatch(number):
            return id_type, number
        raise IdentifierError("id_number.format", "expected 5-20 letters or digits")
    raise IdentifierError("id_number.format", f"unknown id_type; expected one of {ID_TYPES}")


def credit_code_check_char(first17: str) -> str:
    if len(first17) != 17:
        raise ValueError("expected 17 characters of the credit-code alphabet")
    try:
        total = sum(map(mul, map(_CREDIT_VALUE.__getitem__, first17), _CREDIT_WEIGHTS))
    except KeyError:
        raise ValueError("expected 17 characters of the credit-code alphabet") from None
    return _CREDIT_ALPHABET[(31 - total % 31) % 31]


@lru_cache(maxsize=4096)  # a few thousand institutions send nearly all events
def credit_code_is_valid(s: str) -> bool:
    if len(s) != 18 or s[17] not in _CREDIT_VALUE:
        return False
    try:
        return credit_code_check_char(s[:17]) == s[17]
    except ValueError:
        return False


def certificate_number(
    kind: str, org_code: str, province: str, site_seq: str, issue_year: int, level: int, serial: int
) -> str:
    """A 22-character skill-level certificate number (kind Y employer, S evaluation org)."""
    if kind not in CERTIFICATE_KINDS:
        raise ValueError(f"kind must be one of {CERTIFICATE_KINDS}")
    if level not in SKILL_LEVELS:
        raise ValueError(f"level must be one of {SKILL_LEVELS}")
    parts = {"org_code": (org_code, 4), "province": (province, 2), "site_seq": (site_seq, 6)}
    for name, (value, width) in parts.items():
        if len(value) != width or not value.isdigit():
            raise ValueError(f"{name} must be {width} digits")
    if not 0 <= serial < 1_000_000:
        raise ValueError("serial must fit 6 digits")
    return f"{kind}{org_code}{province}{site_seq}{issue_year % 100:02d}{level}{serial:06d}"


def validate_certificate_number(
    number: str, scheme: str, level: int | None, issue_year: int
) -> None:
    """Raise IdentifierError unless the number fits its scheme, level and issue year."""
    if scheme == "skill_level_2020":
        if not _SKILL_CERTIFICATE.fullmatch(number):
            raise IdentifierError("certificate_number.format", "expected Y or S and 21 digits")
        if number[13:15] != f"{issue_year % 100:02d}":
            raise IdentifierError(
                "certificate_number.year_mismatch", "positions 14-15 must be the issue year"
            )
        if number[15] != str(level):
            raise IdentifierError(
                "certificate_number.level_mismatch", "position 16 must be the certificate's level"
            )
    elif scheme == "vocational_qualification":
        if not _QUALIFICATION_CERTIFICATE.fullmatch(number):
            raise IdentifierError("certificate_number.format", "expected 16 digits")
    elif not _SPECIAL_ABILITY_CERTIFICATE.fullmatch(number):
        raise IdentifierError("certificate_number.format", "expected 10-30 letters or digits")
