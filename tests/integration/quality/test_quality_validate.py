"""Great Expectations on a landed day: results kept per run, failing rows quarantined in SQL."""

from __future__ import annotations

from datetime import date

import psycopg
import pytest
from pydantic import SecretStr

from adapters.database import make_engine
from adapters.settings import DatabaseSettings, Settings
from consumers.landing import EVENT_COLUMNS
from quality.validate import (
    BlockingExpectationFailed,
    record_validation,
    validate_and_record,
    validate_day,
)
from schemas.topics import events_topic
from tests.support.events import encode, enrollment, registry_with
from tests.support.kafka import publish
from tests.support.nightly import ingest
from warehouse import nightly

pytestmark = pytest.mark.integration


@pytest.fixture
def landed_day(kafka_bootstrap, database_url, new_partners, pseudonymiser) -> date:
    """Forty enrollments landed by the real consumer, one then corrupted in staging."""
    partner = new_partners("training_platform")["training_platform"]
    publish(kafka_bootstrap, events_topic(partner), [encode(enrollment(partner, n))
                                                    for n in range(40)])
    ingest(kafka_bootstrap, database_url, [partner], registry_with({partner: "training_platform"}),
           pseudonymiser, group=f"quality-{partner}")
    with psycopg.connect(database_url) as conn:
        # What an older consumer without the level rule would have landed.
        row = conn.execute(
            "UPDATE staging.events SET data = jsonb_set(data, '{course,level}', '9')"
            " WHERE event_id = %s RETURNING append_day", (f"{partner}-evt-0000007",)).fetchone()
    assert row is not None
    return row[0]


def _settings(database_url: str) -> Settings:
    return Settings(database=DatabaseSettings(url=SecretStr(database_url)))


def _rows(database_url: str, sql: str) -> list[tuple]:
    with psycopg.connect(database_url) as conn:
        return conn.execute(sql).fetchall()


def test_a_blocking_failure_names_the_expectation_and_keeps_results_and_quarantine(
        landed_day, database_url, tmp_path):
    with pytest.raises(BlockingExpectationFailed) as failure:
        validate_and_record(landed_day, "run-1", _settings(database_url))

    assert "level_in_range" in str(failure.value)
    assert "1 of 40 rows unexpected" in str(failure.value)
    results = dict(_rows(database_url, "SELECT check_name, success FROM"
                         " ops.validation_results WHERE run_id = 'run-1'"))
    assert results["level_in_range"] is False and results["event_unique"] is True
    assert _rows(database_url, "SELECT event_id, check_name, severity FROM ops.quarantine"
                 ) == [(_rows(database_url, "SELECT event_id FROM staging.events WHERE"
                              " data->'course'->>'level' = '9'")[0][0],
                        "level_in_range", "blocking")]


def test_a_warning_override_lets_the_day_load_without_its_quarantined_row(
        landed_day, database_url, monkeypatch):
    monkeypatch.setenv("SKILLSYNC_EXPECTATION_SEVERITY", '{"level_in_range": "warning"}')
    settings = _settings(database_url)

    validation = validate_and_record(landed_day, "run-2", settings)
    nightly.load(landed_day, "run-2", settings)

    assert validation.passed and not validation.blocking_failures
    assert validation.docs_index and validation.docs_index.endswith("index.html")
    assert _rows(database_url, "SELECT count(*) FROM warehouse.fact_enrollment") == [(39,)]
    assert _rows(database_url, "SELECT count(*) FROM warehouse.fact_enrollment f JOIN"
                 " ops.quarantine q USING (partner_id, event_id)") == [(0,)]


def test_an_unknown_expectation_in_the_severity_setting_stops_with_its_name(
        database_url, monkeypatch):
    monkeypatch.setenv("SKILLSYNC_EXPECTATION_SEVERITY", '{"levels": "warning"}')
    settings = _settings(database_url)

    with pytest.raises(ValueError, match=r"SKILLSYNC_EXPECTATION_SEVERITY.*'levels'"):
        validate_and_record(date(2026, 1, 1), "run-3", settings)


def test_each_failed_check_counts_and_quarantines_the_rows_that_break_it(
        landed_day, database_url, tmp_path):
    with psycopg.connect(database_url) as conn:
        # Rows no current consumer would land, each breaking one rule. A second copy of an
        # event needs the primary key out of the way: the check must not rely on it.
        conn.execute("ALTER TABLE staging.events DROP CONSTRAINT events_pkey")
        columns = ", ".join(EVENT_COLUMNS)
        conn.execute(f"INSERT INTO staging.events ({columns}) SELECT {columns}"
                     " FROM staging.events WHERE event_id LIKE '%-evt-0000001'")
        for event, change in [
                ("0000002", "family = 'enrollment.renamed'"),
                ("0000003", "data = jsonb_set(data, '{course,occupation_code}', '\"4-1-6-2\"')"),
                ("0000004", "person = NULL"),
                ("0000005", "data = data || '{\"result\": \"absent\"}'"),
                ("0000006", "occurred_at = appended_at + interval '11 minutes'")]:
            conn.execute(f"UPDATE staging.events SET {change} WHERE event_id LIKE %s",
                         (f"%-evt-{event}",))
    engine = make_engine(database_url)

    validation = validate_day(database_url, landed_day, gx_root=tmp_path / "gx")
    quarantined = record_validation(engine, validation, "run-4")

    expected = {"event_unique": 2, "family_known": 1, "occupation_code_format": 1,
                "learner_pseudonymised": 1, "result_known": 1, "level_in_range": 1,
                "occurred_before_appended": 1}
    assert {r.name: r.unexpected_count for r in validation.results if not r.success} == expected
    assert {r.element_count for r in validation.results} == {41}
    # Quarantine holds event keys: the two copies of one event are one entry.
    per_key = expected | {"event_unique": 1}
    assert quarantined == sum(per_key.values())
    assert dict(_rows(database_url, "SELECT check_name, count(*) FROM ops.quarantine"
                      " GROUP BY check_name")) == per_key
    assert dict(_rows(database_url, "SELECT check_name, min(severity) FROM ops.quarantine"
                      " GROUP BY check_name")) == {
        name: "warning" if name == "occurred_before_appended" else "blocking" for name in expected}
    engine.dispose()
