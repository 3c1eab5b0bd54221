"""Run a business day's checks with Great Expectations inside PostgreSQL and judge the result."""

from __future__ import annotations

import functools
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Engine, text

from adapters.database import scoped_engine
from adapters.settings import Settings
from quality.suites import Check, Severity, staging_day_checks, staging_day_query, with_severities
from schemas.errors import RunFailed, ServiceUnavailable

if TYPE_CHECKING:
    from great_expectations.data_context import AbstractDataContext
    from great_expectations.datasource.fluent import SQLDatasource

log = logging.getLogger("skillsync.quality")

# Runs linked from the Data Docs index (each older result keeps its own page).
DOCS_INDEX_RUNS = 60


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


class BlockingExpectationFailed(RunFailed):
    """A blocking expectation failed: the day must not be loaded."""


def validate_day(database_url: str, day: date, *, gx_root: Path,
                 severities: Mapping[str, str] | None = None,
                 checks: list[Check] | None = None) -> DayValidation:
    """Validate the day's staging rows; results and Data Docs are kept under gx_root.

    GX is imported here, not at module import: it costs seconds and DAG parsing must stay fast.
    """
    import great_expectations as gx

    checks = with_severities(checks if checks is not None else staging_day_checks(),
                             severities or {})
    context = _context(gx_root)
    # The day's fields go into a temporary table of this session, inside PostgreSQL: GX then
    # reads their columns from the catalogue (for a raw query it runs the query once and
    # fetches every row to learn them) and its one aggregate pass for all checks reads narrow
    # rows instead of recomputing the query. The table goes with the session, closed below.
    source = context.data_sources.add_or_update_sql(name="skillsync",
                                                     connection_string=database_url,
                                                     create_temp_table=True)
    try:
        asset = source.add_query_asset(name=f"staging_{day.isoformat()}",
                                       query=staging_day_query(day))
        suite = context.suites.add_or_update(gx.ExpectationSuite(
            name="staging_day",
            expectations=[getattr(gx.expectations, c.expectation)(**c.kwargs,
                                                                  meta={"check": c.name})
                          for c in checks]))
        definition = context.validation_definitions.add_or_update(gx.ValidationDefinition(
            name=f"staging_day_{day.isoformat()}",
            data=asset.add_batch_definition_whole_table("day"), suite=suite))
        checkpoint = context.checkpoints.add_or_update(gx.Checkpoint(
            name=f"nightly_{day.isoformat()}", validation_definitions=[definition],
            actions=[gx.checkpoint.UpdateDataDocsAction(name="data_docs")],
            # Counts only: the quarantine picks failing rows with its own SQL, so GX fetches
            # no unexpected values, and no personal data reaches the stored results or docs.
            result_format={"result_format": "BASIC", "partial_unexpected_count": 0}))
        outcome = checkpoint.run()
    finally:
        _close(source)
    by_name = {c.name: c for c in checks}
    results: list[CheckResult] = []
    for run in outcome.run_results.values():
        for item in run.results:
            config = item.expectation_config
            check = by_name[config.meta["check"] if config is not None else ""]
            if error := _evaluation_error(item.exception_info):
                # Not a verdict on the data (a lost connection, a bad query): fail to be retried.
                raise ServiceUnavailable(f"{day}: expectation {check.name} could not be "
                                         f"evaluated: {error}")
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


@functools.cache
def _context(gx_root: Path) -> AbstractDataContext:
    """One GX context per process and root: suites and checkpoints live in memory (they are
    code), validation results and Data Docs on disk; the database URL is never written."""
    import great_expectations as gx
    from great_expectations.data_context.types.base import DataContextConfig

    def in_memory(store: str) -> dict[str, object]:
        return {"class_name": store, "store_backend": {"class_name": "InMemoryStoreBackend"}}

    def on_disk(folder: str) -> dict[str, str]:
        return {"class_name": "TupleFilesystemStoreBackend",
                "base_directory": str(gx_root / folder)}

    return gx.get_context(mode="ephemeral", project_config=DataContextConfig(
        stores={
            "expectations_store": in_memory("ExpectationsStore"),
            "checkpoint_store": in_memory("CheckpointStore"),
            "validation_definition_store": in_memory("ValidationDefinitionStore"),
            "validation_results_store": {"class_name": "ValidationResultsStore",
                                         "store_backend": on_disk("validations")},
        },
        expectations_store_name="expectations_store", checkpoint_store_name="checkpoint_store",
        validation_results_store_name="validation_results_store",
        data_docs_sites={"local_site": {
            "class_name": "SiteBuilder", "show_how_to_buttons": False,
            "store_backend": on_disk("data_docs"),
            # A page per night's result and the index; the suite is code, it needs no page.
            "site_section_builders": {"expectations": "None", "profiling": "None"},
            # The index reads each result it lists: bounded, so it does not grow with history.
            "site_index_builder": {"class_name": "DefaultSiteIndexBuilder",
                                   "validation_results_limit": DOCS_INDEX_RUNS}}},
        analytics_enabled=False))


def _evaluation_error(info: Mapping[str, object] | None) -> str | None:
    """The message of an exception GX caught while evaluating an expectation, if any.

    GX reports either one exception or one per metric it could not compute.
    """
    found = [info] if info and "raised_exception" in info else list((info or {}).values())
    messages = [str(i.get("exception_message")) for i in found
                if isinstance(i, Mapping) and i.get("raised_exception")]
    return "; ".join(messages) or None


def _close(source: SQLDatasource) -> None:
    """Close the pools GX opened, so no connection outlives the run."""
    source.get_execution_engine().engine.dispose()
    source.get_engine().dispose()


def record_validation(engine: Engine, validation: DayValidation, run_id: str,
                      checks: list[Check] | None = None) -> int:
    """Keep the run's results and replace the day's quarantine; returns rows quarantined.

    Failing rows are picked by each check's SQL predicate inside PostgreSQL, never fetched.
    """
    by_name = {c.name: c for c in (checks if checks is not None else staging_day_checks())}
    day = validation.business_day
    with engine.begin() as conn:
        conn.execute(text(
            "INSERT INTO ops.validation_results (business_day, run_id, check_name,"
            " expectation, severity, success, element_count, unexpected_count)"
            " VALUES (:day, :run, :name, :expectation, :severity, :success, :elements,"
            " :unexpected) ON CONFLICT (business_day, run_id, check_name) DO UPDATE SET"
            " severity = EXCLUDED.severity, success = EXCLUDED.success,"
            " element_count = EXCLUDED.element_count,"
            " unexpected_count = EXCLUDED.unexpected_count, validated_at = now()"),
            [{"day": day, "run": run_id, "name": r.name, "expectation": r.expectation,
              "severity": r.severity, "success": r.success, "elements": r.element_count,
              "unexpected": r.unexpected_count} for r in validation.results])
        conn.execute(text("DELETE FROM ops.quarantine WHERE business_day = :day"),
                     {"day": day})
        failed = [r for r in validation.results if not r.success]
        if not failed:
            return 0
        # One pass over the day for all failed checks: each row joins the checks it violates.
        violated = " UNION ALL ".join(
            f"SELECT CAST(:name_{n} AS text) AS check_name, CAST(:severity_{n} AS text) AS"
            f" severity WHERE {by_name[r.name].violation}" for n, r in enumerate(failed))
        params: dict[str, object] = {"day": day, "run": run_id}
        for n, r in enumerate(failed):
            params |= {f"name_{n}": r.name, f"severity_{n}": r.severity}
        return conn.execute(text(
            "INSERT INTO ops.quarantine (business_day, partner_id, event_id,"
            " check_name, family, severity, run_id)"
            " SELECT :day, partner_id, event_id, failed.check_name, family, failed.severity, :run"
            f" FROM ({staging_day_query(day)}) day_rows CROSS JOIN LATERAL ({violated}) failed"
            " ON CONFLICT DO NOTHING"), params).rowcount


def validate_and_record(day: date, run_id: str, settings: Settings | None = None,
                        ) -> DayValidation:
    """The night's validation step: run the suite in PostgreSQL, keep the results and the
    quarantine, and judge the day (BlockingExpectationFailed names each failed expectation)."""
    s = settings or Settings.load()
    with scoped_engine(s.database.sqlalchemy) as engine:
        url = engine.url.render_as_string(hide_password=False)
        result = validate_day(url, day, gx_root=s.nightly.gx_dir,
                              severities=s.nightly.expectation_severity)
        record_validation(engine, result, run_id)
    if not result.passed:
        raise BlockingExpectationFailed(f"{day}: {result.failure_message()}")
    return result
