"""Run a business day's checks with Great Expectations inside PostgreSQL and judge the result."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from sqlalchemy import Engine, text

from quality.suites import Check, Severity, staging_day_checks, staging_day_query, with_severities

log = logging.getLogger("skillsync.quality")

# Validation results and Data Docs stay beside the other local state, out of git.
DEFAULT_GX_ROOT = Path(__file__).resolve().parent.parent / ".local" / "gx"


@dataclass(frozen=True)
class CheckResult:
    name: str
    expectation: str
    severity: Severity
    success: bool
    element_count: int
    unexpected_count: int


@dataclass(frozen=True)
class DayValidation:
    business_day: date
    results: list[CheckResult]
    docs_index: str | None = None
    blocking_failures: list[CheckResult] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "blocking_failures",
                           [r for r in self.results if r.severity == "blocking" and not r.success])

    @property
    def passed(self) -> bool:
        return not self.blocking_failures

    def failure_message(self) -> str:
        return "; ".join(
            f"blocking expectation {r.name} ({r.expectation}) failed: {r.unexpected_count} of "
            f"{r.element_count} rows unexpected" for r in self.blocking_failures)


class BlockingExpectationFailed(RuntimeError):
    """A blocking expectation failed: the day must not be loaded."""


def validate_day(database_url: str, day: date, *, gx_root: Path = DEFAULT_GX_ROOT,
                 severities: Mapping[str, str] | None = None,
                 checks: list[Check] | None = None) -> DayValidation:
    """Validate the day's staging rows; results and Data Docs are kept under gx_root.

    GX is imported here, not at module import: it costs seconds and DAG parsing must stay fast.
    """
    import great_expectations as gx

    checks = with_severities(checks if checks is not None else staging_day_checks(),
                             severities or {})
    gx_root.mkdir(parents=True, exist_ok=True)
    context = gx.get_context(mode="file", project_root_dir=str(gx_root))
    source = context.data_sources.add_or_update_sql(name="skillsync",
                                                     connection_string=database_url)
    asset_name = f"staging_{day.isoformat()}"
    if asset_name in {a.name for a in source.assets}:
        source.delete_asset(asset_name)
    asset = source.add_query_asset(name=asset_name, query=staging_day_query(day))
    batch = asset.add_batch_definition_whole_table("day")
    suite_name = "staging_day"
    if suite_name in {s.name for s in context.suites.all()}:
        context.suites.delete(suite_name)
    suite = context.suites.add(gx.ExpectationSuite(name=suite_name))
    for check in checks:
        expectation_cls = getattr(gx.expectations, check.expectation)
        suite.add_expectation(expectation_cls(**check.kwargs, meta={"check": check.name}))
    definition_name = f"staging_day_{day.isoformat()}"
    definition = context.validation_definitions.add_or_update(
        gx.ValidationDefinition(name=definition_name, data=batch, suite=suite))
    checkpoint = context.checkpoints.add_or_update(gx.Checkpoint(
        name=f"nightly_{day.isoformat()}", validation_definitions=[definition],
        actions=[gx.checkpoint.UpdateDataDocsAction(name="data_docs")],
        result_format={"result_format": "SUMMARY"}))
    outcome = checkpoint.run()
    results: list[CheckResult] = []
    for run in outcome.run_results.values():
        for item in run.results:
            config = item.expectation_config
            name = config.meta.get("check") if config is not None else None
            check = next(c for c in checks if c.name == name)
            results.append(CheckResult(
                name=check.name, expectation=check.expectation, severity=check.severity,
                success=bool(item.success),
                element_count=int(item.result.get("element_count") or 0),
                unexpected_count=int(item.result.get("unexpected_count") or 0)))
    docs = context.get_docs_sites_urls()
    validation = DayValidation(day, results, docs[0]["site_url"] if docs else None)
    for r in results:
        if not r.success:
            log.warning("expectation failed", extra={"check": r.name, "severity": r.severity,
                                                     "unexpected": r.unexpected_count})
    return validation


def record_validation(engine: Engine, validation: DayValidation, run_id: str,
                      checks: list[Check] | None = None) -> int:
    """Keep the run's results and replace the day's quarantine; returns rows quarantined.

    Failing rows are picked by each check's SQL predicate inside PostgreSQL, never fetched.
    """
    by_name = {c.name: c for c in (checks if checks is not None else staging_day_checks())}
    day = validation.business_day
    quarantined = 0
    with engine.begin() as conn:
        conn.execute(text(
            "INSERT INTO warehouse.validation_results (business_day, run_id, check_name,"
            " expectation, severity, success, element_count, unexpected_count)"
            " VALUES (:day, :run, :name, :expectation, :severity, :success, :elements,"
            " :unexpected) ON CONFLICT (business_day, run_id, check_name) DO UPDATE SET"
            " severity = EXCLUDED.severity, success = EXCLUDED.success,"
            " element_count = EXCLUDED.element_count,"
            " unexpected_count = EXCLUDED.unexpected_count, validated_at = now()"),
            [{"day": day, "run": run_id, "name": r.name, "expectation": r.expectation,
              "severity": r.severity, "success": r.success, "elements": r.element_count,
              "unexpected": r.unexpected_count} for r in validation.results])
        conn.execute(text("DELETE FROM warehouse.quarantine WHERE business_day = :day"),
                     {"day": day})
        for result in validation.results:
            if result.success:
                continue
            quarantined += conn.execute(text(
                "INSERT INTO warehouse.quarantine (business_day, partner_id, event_id,"
                " check_name, family, severity, run_id)"
                " SELECT :day, partner_id, event_id, :name, family, :severity, :run"
                f" FROM ({staging_day_query(day)}) day_rows"
                f" WHERE {by_name[result.name].violation} ON CONFLICT DO NOTHING"),
                {"day": day, "name": result.name, "severity": result.severity,
                 "run": run_id}).rowcount
    return quarantined
