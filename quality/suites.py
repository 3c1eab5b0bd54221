"""The expectations a business day's staging rows must meet, each blocking or warning."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Literal

Severity = Literal["blocking", "warning"]

# PostgreSQL's regex dialect: the same rule as schemas.identity.OCCUPATION_CODE_PATTERN.
OCCUPATION_CODE_SQL_REGEX = r"^[1-8]-[0-9]{2}-[0-9]{2}-[0-9]{2}$"

FAMILIES = (
    "enrollment.created", "enrollment.withdrawn", "completion.recorded", "evaluation.recorded",
    "evaluation.corrected", "certificate.issued", "certificate.revoked", "control.totals",
)


@dataclass(frozen=True)
class Check:
    """One expectation: a stable name (for configuration and messages), its GX class and args."""

    name: str
    expectation: str
    kwargs: dict[str, object]
    severity: Severity


def staging_day_query(day: date) -> str:
    """The day's landed events with the fields the checks read, extracted in PostgreSQL."""
    # The date is a date object formatted by isoformat(): no text from outside reaches the SQL.
    return f"""
        SELECT partner_id, event_id, family, occurred_at, appended_at,
               CASE WHEN family = 'control.totals' THEN 'none' ELSE person END AS person,
               coalesce(data->'course'->>'occupation_code', data->>'occupation_code')
                   AS occupation_code,
               coalesce(data->'course'->>'level', data->>'level')::int AS level
        FROM staging.events
        WHERE append_day = DATE '{day.isoformat()}'
    """


def staging_day_checks() -> list[Check]:
    return [
        Check("event_id_present", "ExpectColumnValuesToNotBeNull", {"column": "event_id"},
              "blocking"),
        Check("event_unique", "ExpectCompoundColumnsToBeUnique",
              {"column_list": ["partner_id", "event_id"]}, "blocking"),
        Check("family_known", "ExpectColumnValuesToBeInSet",
              {"column": "family", "value_set": list(FAMILIES)}, "blocking"),
        Check("occupation_code_format", "ExpectColumnValuesToMatchRegex",
              {"column": "occupation_code", "regex": OCCUPATION_CODE_SQL_REGEX}, "blocking"),
        Check("level_in_range", "ExpectColumnValuesToBeBetween",
              {"column": "level", "min_value": 1, "max_value": 5}, "blocking"),
        Check("learner_pseudonymised", "ExpectColumnValuesToNotBeNull", {"column": "person"},
              "blocking"),
        Check("occurred_before_appended", "ExpectColumnPairValuesAToBeGreaterThanB",
              {"column_A": "appended_at", "column_B": "occurred_at", "or_equal": True},
              "warning"),
    ]
