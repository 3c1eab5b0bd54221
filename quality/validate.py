"""Run a business day's checks with Great Expectations inside PostgreSQL and judge the result."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from quality.suites import Check, Severity, staging_day_checks, staging_day_query

log = logging.getLogger("skillsync.quality")

# Validation results and Data Docs stay beside the other local state, out of git.
DEFAULT_GX_ROOT = Path(__file__).resolve().parent.parent / ".local" / "gx"


@dataclass(frozen=True)
class CheckResult:
    name: str
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
            f"{r.name}: {r.unexpected_count} of {r.element_count} rows unexpected"
            for r in self.blocking_failures)


class BlockingExpectationFailed(RuntimeError):
    """A blocking expectation failed: the day must not be loaded."""


def validate_day(database_url: str, day: date, *, gx_root: Path = DEFAULT_GX_ROOT,
                 severities: Mapping[str, Severity] | None = None,
                 checks: list[Check] | None = None) -> DayValidation:
    """Validate the day's staging rows; results and Data Docs are kept under gx_root.

    GX is imported here, not at module import: it costs seconds and DAG parsing must stay fast.
    """
    import great_expectations as gx

    checks = checks if checks is not None else staging_day_checks()
    overrides = dict(severities or {})
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
            name = str(item.expectation_config.meta.get("check"))
            declared = next(c.severity for c in checks if c.name == name)
            results.append(CheckResult(
                name=name, severity=overrides.get(name, declared), success=bool(item.success),
                element_count=int(item.result.get("element_count") or 0),
                unexpected_count=int(item.result.get("unexpected_count") or 0)))
    docs = context.get_docs_sites_urls()
    validation = DayValidation(day, results, docs[0]["site_url"] if docs else None)
    for r in results:
        if not r.success:
            log.warning("expectation failed", extra={"check": r.name, "severity": r.severity,
                                                     "unexpected": r.unexpected_count})
    return validation
