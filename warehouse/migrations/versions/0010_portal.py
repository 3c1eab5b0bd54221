"""The web portal: its accounts, and partner and operator scopes enforced by row-level security."""

from alembic import op

revision = "0010_portal"
down_revision = "0009_operations_schema"
branch_labels = None
depends_on = None

# NOLOGIN group roles a portal login takes for one transaction (`GRANT ... WITH INHERIT FALSE`).
# skillsync_partner reads one partner's rows: the one named by the transaction's setting
# skillsync.partner_id. skillsync_operator reads what the city reads plus staging's bookkeeping.
# skillsync_portal holds what the portal's own login needs (its accounts), never warehouse rows.
PORTAL_ROLES = ("skillsync_partner", "skillsync_operator", "skillsync_portal")

MY_PARTNER = "partner_id = current_setting('skillsync.partner_id', true)"

# Warehouse tables keyed by partner: forced like the district tables of 0005, so a table owner
# that is not a superuser obeys the policies too (and writes through skillsync_loader's).
PARTNER_TABLES = ("partner_scorecard", "discrepancy")
# Staging columns each portal scope may read; person pseudonyms and landed payloads stay out,
# except the learner's masked display forms that the agencies' drill-down shows.
EVENT_COLUMNS = {
    "skillsync_partner": "partner_id, event_id, family, append_day, sent_day, appended_at, data",
    "skillsync_operator": ("partner_id, event_id, family, append_day, sent_day, appended_at,"
                           " landed_at, data"),
    "skillsync_agency": "partner_id, event_id, family, data",
}


def _create_roles() -> None:
    roles = ", ".join(f"'{r}'" for r in PORTAL_ROLES)
    op.execute(f"""
        DO $$
        DECLARE r text;
        BEGIN
          FOREACH r IN ARRAY ARRAY[{roles}] LOOP
            BEGIN
              EXECUTE format('CREATE ROLE %I NOLOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB'
                             ' NOCREATEROLE', r);
            EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
            END;
          END LOOP;
          BEGIN
            GRANT skillsync_city TO skillsync_operator;
          EXCEPTION WHEN unique_violation THEN NULL;
          END;
        END $$""")


def upgrade() -> None:
    _create_roles()
    op.execute("CREATE SCHEMA portal")
    op.execute("""CREATE TABLE portal.account (
        username text PRIMARY KEY CHECK (username ~ '^[a-z0-9][a-z0-9._-]{1,62}$'),
        kind text NOT NULL CHECK (kind IN ('partner', 'agency', 'operator')),
        partner_id text, district_code text,
        password_hash text NOT NULL,
        disabled boolean NOT NULL DEFAULT false,
        -- Raised when an account is disabled or its password changes: older sessions end.
        session_epoch integer NOT NULL DEFAULT 0,
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now(),
        CHECK ((kind = 'partner') = (partner_id IS NOT NULL)),
        CHECK ((kind = 'agency') = (district_code IS NOT NULL)))""")
    # Failed sign-ins, counted per account name and per client address to slow guessing.
    op.execute("""CREATE TABLE portal.login_failure (
        username text NOT NULL, client text NOT NULL, failed_at timestamptz NOT NULL)""")
    op.execute("CREATE INDEX login_failure_user ON portal.login_failure (username, failed_at)")
    op.execute("CREATE INDEX login_failure_client ON portal.login_failure (client, failed_at)")
    op.execute("GRANT USAGE ON SCHEMA portal TO skillsync_portal")
    op.execute("GRANT SELECT, INSERT, UPDATE ON portal.account TO skillsync_portal")
    op.execute("GRANT SELECT, INSERT, DELETE ON portal.login_failure TO skillsync_portal")

    for table in PARTNER_TABLES:
        op.execute(f"ALTER TABLE warehouse.{table} ENABLE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE warehouse.{table} FORCE ROW LEVEL SECURITY")
        op.execute(f"""CREATE POLICY loader_all ON warehouse.{table} TO skillsync_loader
                       USING (true) WITH CHECK (true)""")
        op.execute(f"""CREATE POLICY city_reads ON warehouse.{table} FOR SELECT
                       TO skillsync_city USING (true)""")
        op.execute(f"""CREATE POLICY partner_reads ON warehouse.{table} FOR SELECT
                       TO skillsync_partner USING ({MY_PARTNER})""")
    # Staging: enabled, not forced, so the consumer and the night (the owner) are untouched;
    # only the portal's scopes are granted anything there.
    for table in ("rejected", "events"):
        op.execute(f"ALTER TABLE staging.{table} ENABLE ROW LEVEL SECURITY")
        op.execute(f"""CREATE POLICY loader_all ON staging.{table} TO skillsync_loader
                       USING (true) WITH CHECK (true)""")
        op.execute(f"""CREATE POLICY city_reads ON staging.{table} FOR SELECT
                       TO skillsync_city USING (true)""")
    op.execute(f"""CREATE POLICY partner_reads ON staging.rejected FOR SELECT
                   TO skillsync_partner USING ({MY_PARTNER})""")
    # A partner reads back only its own control totals from staging.
    op.execute(f"""CREATE POLICY partner_reads ON staging.events FOR SELECT
                   TO skillsync_partner USING (family = 'control.totals' AND {MY_PARTNER})""")
    # An agency reads the events behind the facts it can see (their policies apply inside the
    # subqueries), for the learners' masked display forms; nothing else of staging.
    op.execute("""CREATE POLICY agency_reads ON staging.events FOR SELECT TO skillsync_agency
        USING (EXISTS (SELECT 1 FROM warehouse.fact_certificate c
                       WHERE c.partner_id = events.partner_id AND c.event_id = events.event_id)
               OR EXISTS (SELECT 1 FROM warehouse.fact_evaluation v
                          WHERE v.partner_id = events.partner_id
                            AND v.event_id = events.event_id))""")
    op.execute("CREATE INDEX fact_certificate_event ON warehouse.fact_certificate"
               " (partner_id, event_id)")
    op.execute("CREATE INDEX fact_evaluation_event ON warehouse.fact_evaluation"
               " (partner_id, event_id)")
    # The agency pages read a district's facts over a range of days.
    for table in ("fact_certificate", "fact_evaluation", "fact_subsidy_eligibility"):
        op.execute(f"CREATE INDEX {table}_district_day ON warehouse.{table}"
                   " (district_code, business_day)")

    op.execute("GRANT USAGE ON SCHEMA staging, warehouse, ops TO skillsync_partner")
    op.execute("GRANT USAGE ON SCHEMA staging TO skillsync_operator, skillsync_agency")
    op.execute("GRANT SELECT ON warehouse.partner_scorecard, warehouse.discrepancy,"
               " warehouse.dim_partner, ops.load_runs TO skillsync_partner")
    op.execute("GRANT SELECT ON staging.rejected TO skillsync_partner, skillsync_operator")
    op.execute("GRANT SELECT ON staging.consumer_offsets TO skillsync_operator")
    for role, columns in EVENT_COLUMNS.items():
        op.execute(f"GRANT SELECT ({columns}) ON staging.events TO {role}")


def downgrade() -> None:
    for role, columns in EVENT_COLUMNS.items():
        op.execute(f"REVOKE SELECT ({columns}) ON staging.events FROM {role}")
    op.execute("REVOKE ALL ON staging.consumer_offsets, staging.rejected"
               " FROM skillsync_partner, skillsync_operator")
    op.execute("REVOKE ALL ON warehouse.partner_scorecard, warehouse.discrepancy,"
               " warehouse.dim_partner, ops.load_runs FROM skillsync_partner")
    op.execute("REVOKE USAGE ON SCHEMA staging FROM skillsync_operator, skillsync_agency,"
               " skillsync_partner")
    op.execute("REVOKE USAGE ON SCHEMA warehouse, ops FROM skillsync_partner")
    for table in ("fact_certificate", "fact_evaluation", "fact_subsidy_eligibility"):
        op.execute(f"DROP INDEX warehouse.{table}_district_day")
    op.execute("DROP INDEX warehouse.fact_evaluation_event")
    op.execute("DROP INDEX warehouse.fact_certificate_event")
    op.execute("DROP POLICY agency_reads ON staging.events")
    for table in ("rejected", "events"):
        for policy in ("partner_reads", "city_reads", "loader_all"):
            op.execute(f"DROP POLICY {policy} ON staging.{table}")
        op.execute(f"ALTER TABLE staging.{table} DISABLE ROW LEVEL SECURITY")
    for table in PARTNER_TABLES:
        for policy in ("partner_reads", "city_reads", "loader_all"):
            op.execute(f"DROP POLICY {policy} ON warehouse.{table}")
        op.execute(f"ALTER TABLE warehouse.{table} NO FORCE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE warehouse.{table} DISABLE ROW LEVEL SECURITY")
    op.execute("DROP SCHEMA portal CASCADE")
    # Roles stay: other databases of the cluster may still use them.
