"""Loaders for the reference data shipped under schemas/reference/ (read once, then cached)."""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from functools import cache
from pathlib import Path
from types import MappingProxyType

from schemas.identity import DIVISION_CODE_PATTERN, OCCUPATION_CODE_PATTERN

REFERENCE_VERSION = "2026.1"
REFERENCE_DIR = Path(__file__).resolve().parent / "reference"


@dataclass(frozen=True, slots=True)
class Occupation:
    code: str
    name_zh: str
    name_en: str
    digital: bool
    green: bool
    work_types: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class SkillLevel:
    level: int
    name_zh: str
    grade_zh: str
    name_en: str


@dataclass(frozen=True, slots=True)
class Division:
    code: str
    name_zh: str
    name_en: str
    retired: bool


@dataclass(frozen=True, slots=True)
class SubsidyRule:
    scheme: str
    certificate_type: str
    level: int | None
    amount_yuan: int
    valid_from: date
    valid_to: date | None  # exclusive; None is open-ended

    def applies_on(self, day: date) -> bool:
        return self.valid_from <= day and (self.valid_to is None or day < self.valid_to)


def _rows(name: str) -> list[dict[str, str]]:
    with (REFERENCE_DIR / name).open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def _codes_fit(codes: Iterable[str], pattern: str, name: str) -> None:
    # The event contract holds codes to these patterns; check_event relies on reference codes
    # keeping to them too.
    if bad := [code for code in codes if not re.search(pattern, code)]:
        raise ValueError(f"{REFERENCE_DIR / name}: codes {bad} do not match {pattern}")


@cache
def occupations() -> Mapping[str, Occupation]:
    """The 2022-edition occupations in use, by code."""
    rows = _rows("occupations_2022.csv")
    _codes_fit((row["code"] for row in rows), OCCUPATION_CODE_PATTERN, "occupations_2022.csv")
    return MappingProxyType(
        {
            row["code"]: Occupation(
                code=row["code"],
                name_zh=row["name_zh"],
                name_en=row["name_en"],
                digital=row["digital"] == "true",
                green=row["green"] == "true",
                work_types=tuple(filter(None, row["work_types"].split("|"))),
            )
            for row in rows
        }
    )


@cache
def occupation_code_map() -> Mapping[str, str]:
    """Pre-2022 occupation codes to their 2022 codes."""
    name = "occupation_code_map.csv"
    rows = _rows(name)
    _codes_fit((row["old_code"] for row in rows), OCCUPATION_CODE_PATTERN, name)
    return MappingProxyType({row["old_code"]: row["new_code"] for row in rows})


def current_occupation_code(code: str) -> str | None:
    """The 2022 code for a current or mapped old code; None when unknown."""
    if code in occupations():
        return code
    return occupation_code_map().get(code)


@cache
def skill_levels() -> Mapping[int, SkillLevel]:
    return MappingProxyType(
        {
            int(row["level"]): SkillLevel(
                int(row["level"]), row["name_zh"], row["grade_zh"], row["name_en"]
            )
            for row in _rows("skill_levels.csv")
        }
    )


@cache
def divisions() -> Mapping[str, Division]:
    """Hangzhou divisions by code, current and retired."""
    rows = _rows("hangzhou_divisions.csv")
    _codes_fit((row["code"] for row in rows), DIVISION_CODE_PATTERN, "hangzhou_divisions.csv")
    return MappingProxyType(
        {
            row["code"]: Division(
                row["code"], row["name_zh"], row["name_en"], row["status"] == "retired"
            )
            for row in rows
        }
    )


def subsidy_rules() -> list[SubsidyRule]:
    """All dated subsidy rules, oldest first within each scheme."""
    return list(_subsidy_rules())


@cache
def _subsidy_rules() -> tuple[SubsidyRule, ...]:
    return tuple(
        SubsidyRule(
            scheme=row["scheme"],
            certificate_type=row["certificate_type"],
            level=int(row["level"]) if row["level"] else None,
            amount_yuan=int(row["amount_yuan"]),
            valid_from=date.fromisoformat(row["valid_from"]),
            valid_to=date.fromisoformat(row["valid_to"]) if row["valid_to"] else None,
        )
        for row in _rows("subsidy_rules.csv")
    )


def subsidy_amount(scheme: str, certificate_type: str, level: int | None, on: date) -> int | None:
    """The amount in yuan a rule grants on a day, or None when no rule applies."""
    for rule in subsidy_rules():
        matches = (rule.scheme, rule.certificate_type, rule.level) == (
            scheme,
            certificate_type,
            level,
        )
        if matches and rule.applies_on(on):
            return rule.amount_yuan
    return None
