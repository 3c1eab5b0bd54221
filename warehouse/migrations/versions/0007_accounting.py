"""Facts account for every staged event: change ids and days on records, control totals, keys.

Records become accumulating snapshots: a withdrawal, correction or revocation is applied to its
record whenever it lands, and the record keeps the change's event id and business day. Facts
are keyed by person as well, discrepancies name the event they are about, and every control
totals message is a row. Facts are derived from staging, so this revision empties them:
rebuild them with `python -m warehouse.rebuild` (docs/warehouse.md).
"""

from alembic import op

revision = "0007_accounting"
down_revision = "0006_sent_day"
branch_labels = None
depends_on = None

DERIVED = ("fact_enrollment", "fact_completion", "fact_evaluation", "fact_certificate",
           "fact_subsidy_eligibility", "discrepancy", "partner_scorecard")

_STATEMENTS = (
    f"TRUNCATE {', '.join(f'warehouse.{t}' for t in DERIVED)}",
    # Two people given one record id by a partner are two records, not one silently dropped.
    "ALTER TABLE warehouse.fact_enrollment DROP CONSTRAINT fact_enrollment_pkey",
    "ALTER TABLE warehouse.fact_enrollment ADD PRIMARY KEY (partner_id, enrollment_id, person)",
    "ALTER TABLE warehouse.fact_completion DROP CONSTRAINT fact_completion_pkey",
    "ALTER TABLE warehouse.fact_completion ADD PRIMARY KEY (partner_id, enrollment_id, person)",
    "ALTER TABLE warehouse.fact_evaluation DROP CONSTRAINT fact_evaluation_pkey",
    "ALTER TABLE warehouse.fact_evaluation ADD PRIMARY KEY (partner_id, evaluation_id, person)",
    # Each change on a record: the event that made it and the business day it is filed under.
    """ALTER TABLE warehouse.fact_enrollment
        ADD COLUMN withdrawal_event_id text, ADD COLUMN withdrawn_day date""",
    """ALTER TABLE warehouse.fact_evaluation
        ADD COLUMN correction_event_ids text[] NOT NULL DEFAULT '{}',
        ADD COLUMN last_corrected_day date""",
    """ALTER TABLE warehouse.fact_certificate ADD COLUMN revocation_partner_id text,
        ADD COLUMN revocation_event_id text, ADD COLUMN revoked_day date""",
    # A night restates the records of the people its events touch, wherever they are filed.
    "CREATE INDEX fact_enrollment_person ON warehouse.fact_enrollment (person)",
    "CREATE INDEX fact_completion_person ON warehouse.fact_completion (person)",
    "CREATE INDEX fact_evaluation_person ON warehouse.fact_evaluation (person)",
    "CREATE INDEX fact_certificate_person ON warehouse.fact_certificate (person)",
    "CREATE INDEX fact_subsidy_person ON warehouse.fact_subsidy_eligibility (person)",
    # A discrepancy names the event it is about; person-level ones carry the person's pseudonym.
    "ALTER TABLE warehouse.discrepancy DROP CONSTRAINT discrepancy_pkey",
    """ALTER TABLE warehouse.discrepancy
        ADD COLUMN event_id text NOT NULL, ADD COLUMN person text,
        ALTER COLUMN partner_id SET NOT NULL""",
    "ALTER TABLE warehouse.discrepancy ADD PRIMARY KEY (kind, partner_id, event_id, reference)",
    "CREATE INDEX discrepancy_day ON warehouse.discrepancy (business_day)",
    "CREATE INDEX discrepancy_person ON warehouse.discrepancy (person) WHERE person IS NOT NULL",
    "CREATE INDEX discrepancy_event ON warehouse.discrepancy (partner_id, event_id)",
    # Each loaded day's accounting identity per partner and family:
    # staged = reflected + quarantined + flagged, and unaccounted is always zero.
    """CREATE TABLE warehouse.accounting (
        business_day date NOT NULL, partner_id text NOT NULL, family text NOT NULL,
        staged integer NOT NULL, reflected integer NOT NULL, quarantined integer NOT NULL,
        flagged integer NOT NULL, unaccounted integer NOT NULL,
        PRIMARY KEY (business_day, partner_id, family))""",
    "GRANT SELECT ON warehouse.accounting TO skillsync_city",
    # A night finds every control totals message of the days it restates by the day reported.
    # (By its text: a cast to date depends on the session's DateStyle, so it cannot be indexed.)
    """CREATE INDEX events_totals_day ON staging.events ((data->>'business_day'))
       WHERE family = 'control.totals'""",
    # Every control totals message, and what became of it.
    """CREATE TABLE warehouse.fact_control_totals (
        partner_id text NOT NULL, event_id text NOT NULL, business_day date NOT NULL,
        append_day date NOT NULL, appended_at timestamptz NOT NULL,
        status text NOT NULL CHECK (status IN ('applied', 'superseded', 'late')),
        counts jsonb NOT NULL,
        PRIMARY KEY (partner_id, event_id))""",
    "CREATE INDEX fact_control_totals_day ON warehouse.fact_control_totals (business_day)",
    "CREATE INDEX fact_control_totals_append ON warehouse.fact_control_totals (append_day)",
    "GRANT SELECT ON warehouse.fact_control_totals TO skillsync_city",
)


def upgrade() -> None:
    for statement in _STATEMENTS:
        op.execute(statement)


def downgrade() -> None:
    op.execute(f"TRUNCATE {', '.join(f'warehouse.{t}' for t in DERIVED)}")
    op.execute("DROP TABLE warehouse.accounting")
    op.execute("DROP TABLE warehouse.fact_control_totals")
    op.execute("DROP INDEX staging.events_totals_day")
    for index in ("discrepancy_event", "discrepancy_person", "discrepancy_day",
                  "fact_subsidy_person", "fact_certificate_person", "fact_evaluation_person",
                  "fact_completion_person", "fact_enrollment_person"):
        op.execute(f"DROP INDEX warehouse.{index}")
    op.execute("ALTER TABLE warehouse.discrepancy DROP CONSTRAINT discrepancy_pkey")
    op.execute("""ALTER TABLE warehouse.discrepancy DROP COLUMN event_id, DROP COLUMN person,
                  ALTER COLUMN partner_id DROP NOT NULL""")
    op.execute("ALTER TABLE warehouse.discrepancy ADD PRIMARY KEY (business_day, kind, reference)")
    op.execute("""ALTER TABLE warehouse.fact_certificate DROP COLUMN revocation_partner_id,
                  DROP COLUMN revocation_event_id, DROP COLUMN revoked_day""")
    op.execute("""ALTER TABLE warehouse.fact_evaluation DROP COLUMN correction_event_ids,
                  DROP COLUMN last_corrected_day""")
    op.execute("""ALTER TABLE warehouse.fact_enrollment DROP COLUMN withdrawal_event_id,
                  DROP COLUMN withdrawn_day""")
    for table, key in (("fact_evaluation", "evaluation_id"), ("fact_completion", "enrollment_id"),
                       ("fact_enrollment", "enrollment_id")):
        op.execute(f"ALTER TABLE warehouse.{table} DROP CONSTRAINT {table}_pkey")
        op.execute(f"ALTER TABLE warehouse.{table} ADD PRIMARY KEY (partner_id, {key})")
