"""Warehouse star schema: dimensions, lifecycle facts, reconciliation and validation records."""

from alembic import op

revision = "0003_star_schema"
down_revision = "0002_warehouse_enrollment"
branch_labels = None
depends_on = None

_STATEMENTS = (
    # The night looks events up by person, certificate number, evaluation and enrollment id
    # for the few people each day touches; these keep those look-ups off the whole history.
    """CREATE INDEX events_certificate_number ON staging.events ((data->>'certificate_number'))
       WHERE family IN ('certificate.issued', 'certificate.revoked')""",
    """CREATE INDEX events_evaluation_id ON staging.events (partner_id, (data->>'evaluation_id'))
       WHERE family IN ('evaluation.recorded', 'evaluation.corrected')""",
    """CREATE INDEX events_enrollment_id ON staging.events (partner_id, (data->>'enrollment_id'))
       WHERE family IN ('enrollment.created', 'enrollment.withdrawn', 'completion.recorded')""",
    "CREATE INDEX redeliveries_day ON staging.redeliveries (append_day, partner_id)",
    # The day a fact belongs to: when it happened, if that is within the look-back of when the
    # broker appended it; otherwise the append day (too late to reopen a closed day).
    """CREATE FUNCTION warehouse.fact_day(occurred_at timestamptz, append_day date, lookback int)
       RETURNS date LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
         SELECT CASE WHEN (occurred_at AT TIME ZONE 'Asia/Shanghai')::date
                          BETWEEN append_day - lookback AND append_day
                     THEN (occurred_at AT TIME ZONE 'Asia/Shanghai')::date
                     ELSE append_day END
       $$""",
    # -- dimensions ------------------------------------------------------------------------
    """CREATE TABLE warehouse.dim_date (
        day date PRIMARY KEY, year smallint NOT NULL, month smallint NOT NULL,
        iso_week smallint NOT NULL, iso_dow smallint NOT NULL)""",
    """CREATE TABLE warehouse.dim_person (person text PRIMARY KEY, key_id text NOT NULL)""",
    """CREATE TABLE warehouse.dim_occupation (
        code text PRIMARY KEY, name_zh text NOT NULL, name_en text NOT NULL,
        digital boolean NOT NULL, green boolean NOT NULL)""",
    """CREATE TABLE warehouse.dim_level (
        level smallint PRIMARY KEY, name_zh text NOT NULL, grade_zh text NOT NULL,
        name_en text NOT NULL)""",
    """CREATE TABLE warehouse.dim_district (
        code text PRIMARY KEY, name_zh text NOT NULL, name_en text NOT NULL,
        retired boolean NOT NULL)""",
    """CREATE TABLE warehouse.dim_institution (credit_code text PRIMARY KEY, name text NOT NULL)""",
    """CREATE TABLE warehouse.dim_partner (
        partner_id text PRIMARY KEY, name text, role text, district_code text)""",
    """CREATE TABLE warehouse.dim_subsidy_rule (
        scheme text NOT NULL, certificate_type text NOT NULL, level smallint,
        amount_yuan integer NOT NULL, valid_from date NOT NULL, valid_to date,
        UNIQUE NULLS NOT DISTINCT (scheme, certificate_type, level, valid_from))""",
    # -- facts -----------------------------------------------------------------------------
    """ALTER TABLE warehouse.fact_enrollment
        ADD COLUMN status text NOT NULL DEFAULT 'active',
        ADD COLUMN withdrawn_at timestamptz,
        ADD COLUMN withdrawal_reason text,
        ADD COLUMN canonical_partner_id text,
        ADD COLUMN canonical_enrollment_id text""",
    """CREATE INDEX fact_enrollment_canonical
        ON warehouse.fact_enrollment (canonical_partner_id, canonical_enrollment_id)""",
    """CREATE TABLE warehouse.fact_completion (
        partner_id text NOT NULL, enrollment_id text NOT NULL, event_id text NOT NULL,
        business_day date NOT NULL, person text NOT NULL, completed_at timestamptz NOT NULL,
        hours_attended numeric NOT NULL, enrollment_found boolean NOT NULL,
        PRIMARY KEY (partner_id, enrollment_id))""",
    "CREATE INDEX fact_completion_day ON warehouse.fact_completion (business_day)",
    """CREATE TABLE warehouse.fact_evaluation (
        partner_id text NOT NULL, evaluation_id text NOT NULL, event_id text NOT NULL,
        business_day date NOT NULL, person text NOT NULL, occupation_code text NOT NULL,
        level smallint NOT NULL, theory_score numeric NOT NULL, practical_score numeric NOT NULL,
        result text NOT NULL, evaluated_at timestamptz NOT NULL, organisation_code text,
        district_code text, enrollment_id text, work_type text,
        corrections integer NOT NULL, last_corrected_at timestamptz,
        PRIMARY KEY (partner_id, evaluation_id))""",
    "CREATE INDEX fact_evaluation_day ON warehouse.fact_evaluation (business_day)",
    """CREATE TABLE warehouse.fact_certificate (
        certificate_number text NOT NULL, person text NOT NULL, partner_id text NOT NULL,
        event_id text NOT NULL, business_day date NOT NULL, certificate_type text NOT NULL,
        scheme text NOT NULL, occupation_code text, level smallint,
        issued_at timestamptz NOT NULL, evaluation_id text NOT NULL, organisation_code text,
        district_code text, evaluation_level smallint, paired_certificate_number text,
        status text NOT NULL,
        revoked_at timestamptz, revocation_reason text,
        passing_evaluation boolean NOT NULL, number_shared boolean NOT NULL,
        PRIMARY KEY (certificate_number, person))""",
    "CREATE INDEX fact_certificate_day ON warehouse.fact_certificate (business_day)",
    """CREATE TABLE warehouse.fact_subsidy_eligibility (
        certificate_number text NOT NULL, person text NOT NULL, business_day date NOT NULL,
        partner_id text NOT NULL, district_code text, occupation_code text, level smallint,
        certificate_type text NOT NULL, issued_day date NOT NULL, scheme text NOT NULL,
        eligible boolean NOT NULL, reason text NOT NULL, amount_yuan integer,
        first_claim_number text,
        PRIMARY KEY (certificate_number, person))""",
    "CREATE INDEX fact_subsidy_day ON warehouse.fact_subsidy_eligibility (business_day)",
    """CREATE TABLE warehouse.discrepancy (
        business_day date NOT NULL, kind text NOT NULL, reference text NOT NULL,
        severity text NOT NULL CHECK (severity IN ('error', 'warning', 'info')),
        partner_id text, detail jsonb NOT NULL,
        PRIMARY KEY (business_day, kind, reference))""",
    """CREATE TABLE warehouse.partner_scorecard (
        business_day date NOT NULL, partner_id text NOT NULL, received integer NOT NULL,
        valid integer NOT NULL, rejected integer NOT NULL, rejected_by_reason jsonb NOT NULL,
        duplicates integer NOT NULL, late integer NOT NULL, missing integer NOT NULL,
        extra integer NOT NULL,
        PRIMARY KEY (business_day, partner_id))""",
    # One enrollment reported by several partners, as one record naming all its sources.
    """CREATE VIEW warehouse.enrollment_canonical AS
        SELECT canonical_partner_id AS partner_id, canonical_enrollment_id AS enrollment_id,
               min(business_day) AS business_day, min(person) AS person,
               min(occupation_code) AS occupation_code, min(level) AS level,
               array_agg(partner_id || ':' || enrollment_id
                         ORDER BY enrolled_at, partner_id, enrollment_id) AS sources
        FROM warehouse.fact_enrollment
        GROUP BY canonical_partner_id, canonical_enrollment_id""",
    """CREATE VIEW warehouse.subsidy_list AS
        SELECT * FROM warehouse.fact_subsidy_eligibility WHERE eligible""",
    # -- validation ------------------------------------------------------------------------
    """CREATE TABLE warehouse.validation_results (
        business_day date NOT NULL, run_id text NOT NULL, check_name text NOT NULL,
        expectation text NOT NULL, severity text NOT NULL, success boolean NOT NULL,
        element_count bigint NOT NULL, unexpected_count bigint NOT NULL,
        validated_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (business_day, run_id, check_name))""",
    """CREATE TABLE warehouse.quarantine (
        business_day date NOT NULL, partner_id text NOT NULL, event_id text NOT NULL,
        check_name text NOT NULL, family text NOT NULL, severity text NOT NULL,
        run_id text NOT NULL,
        PRIMARY KEY (business_day, partner_id, event_id, check_name))""",
    "CREATE INDEX quarantine_event ON warehouse.quarantine (partner_id, event_id)",
)


def upgrade() -> None:
    for statement in _STATEMENTS:
        op.execute(statement)


def downgrade() -> None:
    for name in ("subsidy_list", "enrollment_canonical"):
        op.execute(f"DROP VIEW warehouse.{name}")
    for name in ("quarantine", "validation_results", "partner_scorecard", "discrepancy",
                 "fact_subsidy_eligibility", "fact_certificate", "fact_evaluation",
                 "fact_completion", "dim_subsidy_rule", "dim_partner", "dim_institution",
                 "dim_district", "dim_level", "dim_occupation", "dim_person", "dim_date"):
        op.execute(f"DROP TABLE warehouse.{name}")
    op.execute("DROP INDEX warehouse.fact_enrollment_canonical")
    op.execute("""ALTER TABLE warehouse.fact_enrollment DROP COLUMN status,
        DROP COLUMN withdrawn_at, DROP COLUMN withdrawal_reason,
        DROP COLUMN canonical_partner_id, DROP COLUMN canonical_enrollment_id""")
    op.execute("DROP FUNCTION warehouse.fact_day(timestamptz, date, int)")
    for name in ("redeliveries_day", "events_enrollment_id", "events_evaluation_id",
                 "events_certificate_number"):
        op.execute(f"DROP INDEX staging.{name}")
