"""The expectations a business day's staging rows must meet, each blocking or warning."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import date
from typing import Literal, get_args

from schemas.events import FAMILIES

Severity = Literal["blocking", "warning"]
SEVERITY_SETTING = "SKILLSYNC_EXPECTATION_SEVERITY"

# PostgreSQL's regex dialect: the same rule as schemas.identity.OCCUPATION_CODE_PATTERN.
OCCUPATION_CODE_SQL_REGEX = r"^[1-8]-[0-9]{2}-[0-9]{2}-[0-9]{2}$"
CERTIFICATE_NUMBER_SQL_REGEX = r"^[A-Z0-9]{10,30}$"
# The consumer accepts events up to this far ahead of the broker's clock.
CLOCK_SKEW_SECONDS = 600


@dataclass(frozen=True)
class Check:
    """One expectation: a stable name (for configuration and messages), its GX class and args.

    `violation` is the same rule as a SQL predicate over the day query's columns: it picks the
    failing rows for quarantine inside PostgreSQL (NULL, as in GX, is not a violation).
    Every check is a column map expectation on the one day query, so GX computes all their
    counts in a single aggregate pass over the day.
    """

    name: str
    expectation: str
    kwargs: dict[str, object]
    severity: Severity
    violation: str


def staging_day_query(day: date) -> str:
    """The day's landed events, one narrow column per check, extracted in PostgreSQL."""
    # The date is a date object formatted by isoformat(): no text from outside reaches the SQL.
    # The inner query extracts the fields first, so the sort behind key_copies moves these few
    # columns rather than each event's whole JSON document (the wide sort spilled to disk and
    # grew faster than the day).
    return f"""
        SELECT *, count(*) OVER (PARTITION BY partner_id, event_id) AS key_copies
        FROM (
            SELECT partner_id, event_id, family,
                   extract(epoch FROM occurred_at - appended_at) AS seconds_ahead_of_append,
                   CASE WHEN family = 'control.totals' THEN 'none' ELSE person END AS person,
                   coalesce(data->'course'->>'occupation_code', data->>'occupation_code')
                       AS occupation_code,
                   coalesce(data->'course'->>'level', data->>'level')::int AS level,
                   data->>'result' AS result,
                   CASE WHEN family = 'certificate.issued' THEN data->>'certificate_number' END
                       AS certificate_number
            FROM staging.events
            WHERE append_day = DATE '{day.isoformat()}'
            OFFSET 0
        ) day_fields
    """


def staging_day_checks() -> list[Check]:
    families = sorted(FAMILIES)
    family_list = ", ".join(f"'{f}'" for f in families)
    return [
        Check("event_id_present", "ExpectColumnValuesToNotBeNull", {"column": "event_id"},
              "blocking", "event_id IS NULL"),
        Check("event_unique", "ExpectColumnValuesToBeBetween",
              {"column": "key_copies", "min_value": 1, "max_value": 1}, "blocking",
              "key_copies > 1"),
        Check("family_known", "ExpectColumnValuesToBeInSet",
              {"column": "family", "value_set": families}, "blocking",
              f"family NOT IN ({family_list})"),
        Check("occupation_code_format", "ExpectColumnValuesToMatchRegex",
              {"column": "occupation_code", "regex": OCCUPATION_CODE_SQL_REGEX}, "blocking",
              f"occupation_code !~ '{OCCUPATION_CODE_SQL_REGEX}'"),
        Check("level_in_range", "ExpectColumnValuesToBeBetween",
              {"column": "level", "min_value": 1, "max_value": 5}, "blocking",
              "level NOT BETWEEN 1 AND 5"),
        Check("learner_pseudonymised", "ExpectColumnValuesToNotBeNull", {"column": "person"},
              "blocking", "person IS NULL"),
        Check("result_known", "ExpectColumnValuesToBeInSet",
              {"column": "result", "value_set": ["pass", "fail"]}, "blocking",
              "result NOT IN ('pass', 'fail')"),
        Check("certificate_number_format", "ExpectColumnValuesToMatchRegex",
              {"column": "certificate_number", "regex": CERTIFICATE_NUMBER_SQL_REGEX},
              "warning", f"certificate_number !~ '{CERTIFICATE_NUMBER_SQL_REGEX}'"),
        Check("occurred_before_appended", "ExpectColumnValuesToBeBetween",
              {"column": "seconds_ahead_of_append", "max_value": CLOCK_SKEW_SECONDS},
              "warning", f"seconds_ahead_of_append > {CLOCK_SKEW_SECONDS}"),
    ]


def with_severities(checks: list[Check], overrides: Mapping[str, str]) -> list[Check]:
    """The checks with configured severities; an unknown name or level is a configuration error."""
    known = {c.name for c in checks}
    levels = get_args(Severity)
    for name, level in overrides.items():
        if name not in known:
            raise ValueError(f"{SEVERITY_SETTING} names unknown expectation {name!r}; "
                             f"known: {sorted(known)}")
        if level not in levels:
            raise ValueError(f"{SEVERITY_SETTING}: {name} must be one of {levels}, not {level!r}")
    return [replace(c, severity=overrides[c.name]) if c.name in overrides else c  # type: ignore[arg-type]
            for c in checks]
