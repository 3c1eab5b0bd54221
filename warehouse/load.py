"""Reconcile and load one business day, restating the late days it reopens, in one transaction."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy import Connection, Engine, text

from schemas import reference
from schemas.errors import ConfigurationError
from schemas.partners import PartnerRegistry, load_registry
from warehouse import reconcile
from warehouse.accounting import account_day, record_account, require_balanced
from warehouse.outbox import publish_changes
from warehouse.sql import statement

SUBSIDY_SCHEME = "training_subsidy"
# Taken by every load and erasure for its transaction: what they change overlaps, so they queue.
LOAD_LOCK = text("SELECT pg_advisory_xact_lock(hashtext('skillsync.load'))")


@dataclass(frozen=True)
class ReconcileRules:
    """The knobs of the night that change which facts a day gets."""

    lookback_days: int = 3
    duplicate_window_days: int = 3

    def __post_init__(self) -> None:
        if self.lookback_days < 0 or self.duplicate_window_days < 0:
            raise ConfigurationError("lookback_days and duplicate_window_days must be >= 0")


@dataclass(frozen=True)
class LoadResult:
    business_day: date
    restated_days: list[date]
    restated_persons: int
    rows: dict[str, int]


def load_day(engine: Engine, day: date, run_id: str, rules: ReconcileRules | None = None,
             registry: PartnerRegistry | None = None) -> LoadResult:
    """Load `day`: restate the records of the people its events touch and the partner figures
    of the days it reopens (warehouse.reconcile says which).

    Raises UnaccountedEvents, and commits nothing, if any event appended on `day` would be
    neither reflected nor named. All loads share one lock: what two runs restate may overlap,
    so they take turns. The sync feed's subscribers are `registry`'s (default: the one the
    settings name).
    """
    rules = rules or ReconcileRules()
    with engine.begin() as conn:
        conn.execute(LOAD_LOCK)
        horizon = conn.execute(statement(reconcile.HORIZON), {"d": day}).scalar_one()
        params = {"d": day, "h": horizon, "lookback": rules.lookback_days,
                  "duplicate_seconds": rules.duplicate_window_days * 86400,
                  "scheme": SUBSIDY_SCHEME}
        params["days"] = [d for (d,) in conn.execute(statement(reconcile.SCOPE_DAYS), params)]
        _refresh_reference(conn)
        for name in (*reconcile.SCOPE, *reconcile.INTERMEDIATE):
            conn.execute(statement(name), params)
        for table, column in reconcile.INDEXED.items():
            conn.execute(text(f"CREATE INDEX ON {table} ({column})"))
        for table in ("night_persons", "night_events", *_temp_tables(reconcile.INTERMEDIATE)):
            conn.execute(text(f"ANALYZE {table}"))
        persons = conn.execute(text("SELECT count(*) FROM night_persons")).scalar_one()
        for name in (*reconcile.DELETES, *reconcile.DIMENSIONS):
            conn.execute(statement(name), params)
        rows = {table: conn.execute(statement(name), params).rowcount
                for table, name in reconcile.FACTS.items()}
        discrepancies = sum(conn.execute(statement(name), params).rowcount
                            for name in reconcile.PERSON_DISCREPANCIES)
        rows["fact_control_totals"] = conn.execute(
            statement(reconcile.CONTROL_TOTALS), params).rowcount
        rows["discrepancy"] = discrepancies + conn.execute(
            statement(reconcile.DAY_DISCREPANCIES), params).rowcount
        rows["partner_scorecard"] = conn.execute(statement(reconcile.SCORECARD), params).rowcount
        _refresh_statistics(conn, rows)
        # Each subscriber's changes commit with the facts they describe, or not at all.
        publish_changes(conn, params["days"], run_id, registry)
        # Every event of the day is reflected or named, or the night does not commit.
        account = account_day(conn, day)
        require_balanced(account)
        record_account(conn, account)
        conn.execute(
            text("INSERT INTO ops.load_runs (business_day, run_id, table_name, rows_loaded)"
                 " SELECT :day, :run, t, n FROM unnest(CAST(:tables AS text[]),"
                 " CAST(:counts AS int[])) AS x(t, n) ON CONFLICT DO NOTHING"),
            {"day": day, "run": run_id, "tables": list(rows), "counts": list(rows.values())})
    return LoadResult(day, params["days"], persons, rows)


# A table that gained more than this share of the rows its statistics know is analysed.
STALE_STATISTICS_SHARE = 0.1


def _refresh_statistics(conn: Connection, rows: dict[str, int]) -> None:
    """Analyse the warehouse tables the night grew past what their statistics know.

    The night's own queries after this (the feed's changes, the accounting) read the rows it
    has just written, in its transaction, where autovacuum cannot see them. Planned on a
    never-analysed table's defaults, the accounting of a first 1,000,000-event night chose an
    index range per partner for each event, and was stopped after 25 minutes.
    """
    known: dict[str, float] = {name: float(estimate) for name, estimate in conn.execute(text(
        "SELECT c.relname, c.reltuples FROM pg_class c JOIN pg_namespace n"
        " ON n.oid = c.relnamespace WHERE n.nspname = 'warehouse' AND c.relname = ANY(:t)"),
        {"t": list(rows)})}
    for table, written in rows.items():
        estimate = known.get(table)
        if written and estimate is not None and (
                estimate < 0 or written > STALE_STATISTICS_SHARE * estimate):
            conn.execute(text(f"ANALYZE warehouse.{table}"))


def _temp_tables(names: tuple[str, ...]) -> list[str]:
    """int_enrollments from night/10_int_enrollments: each file creates the table it names."""
    return [name.split("/")[-1].split("_", 1)[1] for name in names]


def _refresh_reference(conn: Connection) -> None:
    """Reference dimensions follow the reference data shipped with this code version."""
    conn.execute(
        text("INSERT INTO warehouse.dim_occupation VALUES (:code, :zh, :en, :digital, :green)"
             " ON CONFLICT (code) DO UPDATE SET name_zh = EXCLUDED.name_zh,"
             " name_en = EXCLUDED.name_en, digital = EXCLUDED.digital, green = EXCLUDED.green"),
        [{"code": o.code, "zh": o.name_zh, "en": o.name_en, "digital": o.digital,
          "green": o.green} for o in reference.occupations().values()])
    conn.execute(
        text("INSERT INTO warehouse.dim_level VALUES (:level, :zh, :grade, :en)"
             " ON CONFLICT (level) DO UPDATE SET name_zh = EXCLUDED.name_zh,"
             " grade_zh = EXCLUDED.grade_zh, name_en = EXCLUDED.name_en"),
        [{"level": s.level, "zh": s.name_zh, "grade": s.grade_zh, "en": s.name_en}
         for s in reference.skill_levels().values()])
    conn.execute(
        text("INSERT INTO warehouse.dim_district VALUES (:code, :zh, :en, :retired)"
             " ON CONFLICT (code) DO UPDATE SET name_zh = EXCLUDED.name_zh,"
             " name_en = EXCLUDED.name_en, retired = EXCLUDED.retired"),
        [{"code": d.code, "zh": d.name_zh, "en": d.name_en, "retired": d.retired}
         for d in reference.divisions().values()])
    # The rules table mirrors the shipped, dated rules exactly: old rows are never edited there.
    conn.execute(text("DELETE FROM warehouse.dim_subsidy_rule"))
    conn.execute(
        text("INSERT INTO warehouse.dim_subsidy_rule VALUES"
             " (:scheme, :type, :level, :amount, :valid_from, :valid_to)"),
        [{"scheme": r.scheme, "type": r.certificate_type, "level": r.level,
          "amount": r.amount_yuan, "valid_from": r.valid_from, "valid_to": r.valid_to}
         for r in reference.subsidy_rules()])
    # Partners the registry no longer lists keep their row: old facts still point at them.
    conn.execute(
        text("INSERT INTO warehouse.dim_partner VALUES (:id, :name, :role, :district)"
             " ON CONFLICT (partner_id) DO UPDATE SET name = EXCLUDED.name,"
             " role = EXCLUDED.role, district_code = EXCLUDED.district_code"),
        [{"id": p.partner_id, "name": p.name, "role": p.role, "district": p.district_code}
         for p in load_registry()])
